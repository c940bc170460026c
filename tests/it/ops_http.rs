//! Black-box tests of the HTTP surface the server owns: gunicorn's request limits at their exact
//! boundaries (raw TCP requests), the slow-client header timeout, X-Forwarded-For from trusted
//! proxies in the access log, `/metrics` summed over workers, and memory-based recycling.
//! Needs `--features test-hooks`.

#![cfg(feature = "test-hooks")]
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::Answer;
use crate::support::{
    Connection, Failure, Reply, Request, ServerBuilder, TIMEOUTS, Timeouts, metrics_of, poll_until,
    raw_request,
};

/// A request whose request line is exactly `len` bytes (CRLF excluded).
fn request_with_line(len: usize) -> Vec<u8> {
    let prefix = "/_test/pid?x=";
    let target = format!("{prefix}{}", "a".repeat(len - 13 - prefix.len()));
    let line = format!("GET {target} HTTP/1.1");
    assert_eq!(line.len(), len);
    format!("{line}\r\nHost: t\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Host + Connection + `extra` more header fields.
fn request_with_fields(extra: usize) -> Vec<u8> {
    let mut r = String::from("GET /_test/pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for i in 0..extra {
        r.push_str(&format!("X-H{i}: v\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// One header line of exactly `len` bytes including CRLF.
fn request_with_field_line(len: usize) -> Vec<u8> {
    let line = format!("X-Long: {}\r\n", "v".repeat(len - 8 - 2));
    assert_eq!(line.len(), len);
    format!("GET /_test/pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{line}\r\n").into_bytes()
}

#[test]
fn request_limits_match_gunicorn_at_the_boundaries() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    let addr = s.addr();
    poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok()).unwrap();
    let status = |req: Vec<u8>| raw_request(addr, &req).unwrap().status;
    assert_eq!(status(request_with_line(4094)), 200);
    let r = raw_request(addr, &request_with_line(4095)).unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("Request Line is too large (4095 > 4094)"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("connection"), Some("close"));
    // 100 fields (Host included) pass, 101 do not.
    assert_eq!(status(request_with_fields(98)), 200);
    assert_eq!(status(request_with_fields(99)), 431);
    assert_eq!(status(request_with_field_line(8190)), 200);
    assert_eq!(status(request_with_field_line(8191)), 431);
    // The server still serves after all that.
    assert_eq!(s.get("/_test/pid").unwrap().status, 200);
}

#[test]
fn limits_are_configurable() {
    let s = ServerBuilder::new()
        .args(&[
            "-w",
            "1",
            "--limit-request-line",
            "100",
            "--limit-request-fields",
            "5",
            "--limit-request-field-size",
            "50",
        ])
        .start();
    let addr = s.addr();
    poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok()).unwrap();
    let status = |req: Vec<u8>| raw_request(addr, &req).unwrap().status;
    assert_eq!(status(request_with_line(100)), 200);
    assert_eq!(status(request_with_line(101)), 400);
    assert_eq!(status(request_with_fields(3)), 200);
    assert_eq!(status(request_with_fields(4)), 431);
    assert_eq!(status(request_with_field_line(50)), 200);
    assert_eq!(status(request_with_field_line(51)), 431);
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off_without_holding_the_worker() {
    // A long keep-alive (as behind a load balancer) does not extend the time to send a head.
    let s = ServerBuilder::new()
        .args(&["-w", "1", "--keep-alive", "60", "--header-timeout", "2"])
        .start();
    let addr = s.addr();
    poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok()).unwrap();
    // An idle keep-alive connection that finished its request is not a slow client.
    let mut idle = Connection::open(addr, TIMEOUTS).unwrap();
    assert_eq!(idle.send(&Request::get("/_test/pid")).unwrap().status, 200);
    let mut slow = Connection::open(
        addr,
        Timeouts {
            io: Duration::from_secs(20),
            ..TIMEOUTS
        },
    )
    .unwrap();
    let t0 = Instant::now();
    slow.write_raw(b"GET /_test/pid HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // The only worker keeps answering others meanwhile.
    for _ in 0..5 {
        assert_eq!(s.get("/_test/pid").unwrap().status, 200);
    }
    // Cut off: closed without an answer, or a complete 408.
    let answer = slow.read_reply("GET");
    let cut_after = t0.elapsed();
    match &answer {
        Err(Failure::NoAnswer(_)) => {}
        Ok(r) if r.status == 408 => slow.expect_close().unwrap(),
        other => panic!("unexpected answer: {other:?}"),
    }
    assert!(
        cut_after >= Duration::from_millis(1500) && cut_after < Duration::from_secs(10),
        "cut after {cut_after:?}"
    );
    assert_eq!(idle.send(&Request::get("/_test/pid")).unwrap().status, 200);
}

#[test]
fn forwarded_for_from_a_trusted_proxy_is_the_logged_client() {
    for (allow, expected) in [
        (None, "203.0.113.7"),
        (Some("10.0.0.0/8"), "127.0.0.1"),
        (Some("*"), "203.0.113.7"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let mut args = vec![
            "-w".to_owned(),
            "1".to_owned(),
            "--access-logfile".to_owned(),
            log.display().to_string(),
        ];
        if let Some(a) = allow {
            args.extend(["--forwarded-allow-ips".to_owned(), a.to_owned()]);
        }
        let s = ServerBuilder::new().args(&args).start();
        poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok()).unwrap();
        let r = raw_request(
            s.addr(),
            b"GET /_test/pid?fwd=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
              X-Forwarded-For: 203.0.113.7, 127.0.0.1\r\nX-Forwarded-Proto: https\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        let line = poll_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&log)
                .ok()?
                .lines()
                .find(|l| l.contains("fwd=1"))
                .map(str::to_owned)
        })
        .unwrap();
        assert!(
            line.starts_with(&format!("{expected} ")),
            "allow {allow:?}: {line}"
        );
    }
}

#[test]
fn contradictory_scheme_headers_from_a_trusted_proxy_are_a_400() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok()).unwrap();
    let r = raw_request(
        s.addr(),
        b"GET /_test/pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
          X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 400);
}

fn requests_total(m: &[(String, f64)]) -> f64 {
    m.iter()
        .filter(|(k, _)| {
            k.starts_with("prefork_http_requests_total{") && !k.contains("route=\"/metrics\"")
        })
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn metrics_totals_equal_the_requests_sent_whichever_workers_served_them() {
    let s = ServerBuilder::new()
        .args(&["-w", "3", "--max-requests", "25"])
        .start();
    s.wait_workers(3, Duration::from_secs(30)).unwrap();
    poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok()).unwrap();
    // Counters start at zero apart from that probe.
    let mut sent = 1u32;
    let mut pids = HashSet::new();
    for _ in 0..120 {
        let r = s.get("/_test/pid").unwrap();
        assert_eq!(r.status, 200);
        pids.insert(r.worker());
        sent += 1;
    }
    assert!(pids.len() >= 3, "served by {pids:?}");
    // Each worker writes its file within 250 ms; retired workers (max-requests) are folded
    // into the master's file.
    let got = poll_until(Duration::from_secs(15), || {
        let m = metrics_of(s.addr())?;
        (requests_total(&m) == f64::from(sent)).then_some(m)
    });
    let m = got.unwrap_or_else(|| {
        panic!(
            "totals never reached {sent}: {:?}",
            metrics_of(s.addr()).map(|m| requests_total(&m))
        )
    });
    let count: f64 = m
        .iter()
        .filter(|(k, _)| {
            k.starts_with("prefork_http_request_duration_seconds_count{") && !k.contains("/metrics")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(count, f64::from(sent));
    let restarts: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("prefork_worker_restarts_total{reason=\"max_requests\"}"))
        .map(|(_, v)| v)
        .sum();
    assert!(restarts >= 3.0, "{m:?}");
    let body = support::http_get(s.addr(), "/metrics").unwrap();
    assert_eq!(
        body.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = body.text();
    assert!(text.contains("# TYPE prefork_http_requests_total counter"));
    assert!(text.contains("prefork_http_requests_in_flight"));
}

#[test]
fn a_worker_over_the_memory_limit_is_replaced_gracefully() {
    let s = ServerBuilder::new()
        .args(&["-w", "1", "--max-worker-memory", "1"])
        .start();
    let first = poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok())
        .unwrap()
        .worker();
    assert!(
        s.wait_for_line(Duration::from_secs(20), |l| l
            .contains(&format!("Worker (pid:{first}) uses"))
            && l.contains("over max_worker_memory"))
            .is_some()
    );
    // The replacement serves, and no request failed meanwhile.
    let next = poll_until(Duration::from_secs(20), || {
        let r = s.get("/_test/pid").unwrap();
        assert_eq!(r.status, 200);
        Some(r.worker()).filter(|p| *p != first)
    });
    assert!(next.is_some());
}

#[test]
fn a_handler_report_is_recorded_and_never_sent() {
    let s = ServerBuilder::new().args(&["-w", "2"]).start();
    poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok()).unwrap();
    for secs in ["2.5", "0.25", "40"] {
        let r = s
            .get(&format!(
                "/_test/app_metric?route=/run_analysis&m=analysis_runs_total=1,analysis_seconds={secs},upload_bytes=2000&error=secret-{secs}"
            ))
            .unwrap();
        assert_eq!(r.status, 200);
        assert!(!r.text().contains("secret"));
        assert!(
            r.headers
                .iter()
                .all(|(k, v)| !k.to_ascii_lowercase().starts_with("x-prefork")
                    && !v.contains("secret")),
            "{:?}",
            r.headers
        );
    }
    assert!(
        s.wait_for_line(Duration::from_secs(10), |l| l
            .contains("[ERROR] /run_analysis 200: secret-40"))
            .is_some(),
        "{}",
        s.stderr()
    );
    let m = poll_until(Duration::from_secs(15), || {
        let m = metrics_of(s.addr())?;
        m.iter()
            .any(|(k, v)| k == "app_analysis_runs_total" && *v == 3.0)
            .then_some(m)
    })
    .expect("app counters");
    let get = |name: &str| m.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    assert_eq!(get("app_analysis_seconds_count"), Some(3.0));
    assert_eq!(get("app_analysis_seconds_sum"), Some(42.75));
    assert_eq!(get("app_analysis_seconds_bucket{le=\"5\"}"), Some(2.0));
    assert_eq!(get("app_upload_bytes_count"), Some(3.0));
    assert_eq!(
        get("prefork_http_requests_total{route=\"/run_analysis\",status=\"200\"}"),
        Some(3.0)
    );
}

#[test]
fn an_internal_error_of_the_app_is_logged_and_never_sent() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    poll_until(Duration::from_secs(30), || s.get("/ping").ok()).unwrap();
    let created = raw_request(
        s.addr(),
        b"POST /api/session HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created
        .text()
        .split("\"session_id\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let manifest = s
        .dir
        .path()
        .join("instance/uploads")
        .join(&id)
        .join("manifest.json");
    std::fs::write(&manifest, "{ broken").unwrap();
    let r = raw_request(
        s.addr(),
        format!(
            "GET /api/session/status HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Session-ID: {id}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.headers
            .iter()
            .all(|(k, _)| !k.to_ascii_lowercase().starts_with("x-prefork")),
        "{:?}",
        r.headers
    );
    assert!(!r.text().contains("manifest"), "{}", r.text());
    let line = s
        .wait_for_line(Duration::from_secs(10), |l| {
            l.contains("[ERROR] /api/session/status 500: GET /api/session/status: ")
        })
        .unwrap_or_else(|| panic!("no error line:\n{}", s.stderr()));
    assert!(line.contains("manifest"), "{line}");
}

// ---- HTTP edges (RFC 9112) that hyper lets through, and request-body deadlines ----

/// Writes the parts on one connection (pausing between them) and reads every answer until the
/// server closes it.
fn converse(addr: std::net::SocketAddr, parts: &[&[u8]], pause: Duration) -> Vec<Reply> {
    let mut c = Connection::open(addr, TIMEOUTS).unwrap();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        // The server may already have answered and closed.
        let _ = c.write_raw(part);
    }
    let mut got = Vec::new();
    while let Ok(reply) = c.read_reply("POST") {
        got.push(reply);
    }
    got
}

fn one_answer(addr: std::net::SocketAddr, request: &str) -> Reply {
    let mut got = converse(addr, &[request.as_bytes()], Duration::ZERO);
    assert_eq!(got.len(), 1, "{request:?} -> {got:?}");
    got.remove(0)
}

fn statuses(got: &[Reply]) -> Vec<u16> {
    got.iter().map(|r| r.status).collect()
}

#[test]
fn host_header_rules_of_rfc_9112() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok()).unwrap();
    let a = s.addr();
    let status = |req: &str| one_answer(a, req).status;
    let missing = one_answer(a, "GET /_test/pid HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(missing.status, 400);
    assert!(
        missing.text().contains("Missing Host header"),
        "{}",
        missing.text()
    );
    assert_eq!(
        status("GET /_test/pid HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"),
        400
    );
    for bad in ["exa mple.com", "a/b", "user@host", "h:80:1", "[::1"] {
        let r = one_answer(
            a,
            &format!("GET /_test/pid HTTP/1.1\r\nHost: {bad}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(r.status, 400, "Host: {bad}");
        assert!(r.text().contains("Invalid Host header"), "{}", r.text());
    }
    for good in ["example.com", "example.com:8080", "[::1]:8000", "127.0.0.1"] {
        assert_eq!(
            status(&format!(
                "GET /_test/pid HTTP/1.1\r\nHost: {good}\r\nConnection: close\r\n\r\n"
            )),
            200,
            "Host: {good}"
        );
    }
    // HTTP/1.0 needs no Host.
    assert_eq!(status("GET /_test/pid HTTP/1.0\r\n\r\n"), 200);
}

#[test]
fn stacked_chunked_and_whitespace_after_a_chunk_size_are_refused() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    poll_until(Duration::from_secs(30), || s.get("/ping").ok()).unwrap();
    let a = s.addr();
    let post = |te: &str, body: &str| {
        format!(
            "POST /send_message HTTP/1.1\r\nHost: t\r\n{te}Content-Type: application/json\r\n\r\n{body}"
        )
    };
    let json = "{\"message\":\"hi\"}";
    let chunked_json = format!("{:x}\r\n{json}\r\n0\r\n\r\n", json.len());
    for te in [
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ] {
        let r = one_answer(a, &post(te, &chunked_json));
        assert_eq!(r.status, 400, "{te:?}");
        assert!(
            r.text().contains("chunked is applied more than once"),
            "{}",
            r.text()
        );
    }
    let r = one_answer(
        a,
        &post("Transfer-Encoding: gzip, chunked\r\n", &chunked_json),
    );
    assert_eq!(r.status, 501, "{}", r.text());
    // Whitespace after the size: refused, and nothing pipelined behind it is served.
    for size_line in [format!("{:x} ", json.len()), format!("{:x}\t", json.len())] {
        let body =
            format!("{size_line}\r\n{json}\r\n0\r\n\r\nGET /_test/pid HTTP/1.1\r\nHost: t\r\n\r\n");
        let got = converse(
            a,
            &[post("Transfer-Encoding: chunked\r\n", &body).as_bytes()],
            Duration::ZERO,
        );
        assert_eq!(statuses(&got), [400], "{got:?}");
        assert!(
            got[0].text().contains("Invalid chunk size"),
            "{}",
            got[0].text()
        );
    }
    // Whitespace before a chunk extension is the grammar's BWS: the body is read (the app then
    // answers on its own: no session here).
    let ext = format!("{:x} ;x=1\r\n{json}\r\n0\r\n\r\n", json.len());
    let r = one_answer(
        a,
        &post("Transfer-Encoding: chunked\r\nConnection: close\r\n", &ext),
    );
    assert!(!r.text().contains("Invalid chunk size"), "{}", r.text());
    assert!(r.text().contains("no session"), "{}", r.text());
}

#[test]
fn an_authority_form_target_is_refused_unless_connect() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    poll_until(Duration::from_secs(30), || s.get("/ping").ok()).unwrap();
    let a = s.addr();
    let r = one_answer(
        a,
        "GET example.com:80 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("authority form"), "{}", r.text());
    let r = one_answer(a, "GET * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 400, "{}", r.text());
    // The origin form still serves the page.
    let r = one_answer(a, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn an_http2_prior_knowledge_preface_gets_a_505_not_silence() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    poll_until(Duration::from_secs(30), || s.get("/ping").ok()).unwrap();
    let got = converse(
        s.addr(),
        &[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"],
        Duration::ZERO,
    );
    assert_eq!(statuses(&got), [505], "{got:?}");
    assert!(got[0].text().contains("HTTP/1.1 only"), "{}", got[0].text());
    // Sent in pieces, the preface is recognised too; a PUT (same first letter) is not it.
    let got = converse(
        s.addr(),
        &[b"PRI * HT", b"TP/2.0\r\n\r\nSM\r\n\r\n"],
        Duration::from_millis(200),
    );
    assert_eq!(statuses(&got), [505], "{got:?}");
    let r = one_answer(
        s.addr(),
        "PUT /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    // A known path with another method: 405 naming the methods it takes.
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}

#[test]
fn an_unread_small_body_does_not_break_the_pipelined_request_behind_it() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    poll_until(Duration::from_secs(30), || s.get("/ping").ok()).unwrap();
    let a = s.addr();
    // POST /api/session answers without reading its body.
    let next = "GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let chunked = format!(
        "POST /api/session HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n{next}"
    );
    let got = converse(a, &[chunked.as_bytes()], Duration::ZERO);
    assert_eq!(statuses(&got), [201, 200], "{got:?}");
    // The body arrives after the answer was written, then the next request.
    let head = "POST /api/session HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n";
    let got = converse(
        a,
        &[head.as_bytes(), b"hello world", next.as_bytes()],
        Duration::from_millis(300),
    );
    assert_eq!(statuses(&got), [201, 200], "{got:?}");
    // A body over the drain limit is not read: the answer says Connection: close.
    let big = format!(
        "POST /api/session HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        prefork_server::DRAIN_LIMIT + 1
    );
    let got = converse(
        a,
        &[big.as_bytes(), &[b'x'; 1000]],
        Duration::from_millis(100),
    );
    assert_eq!(statuses(&got), [201], "{got:?}");
    assert!(got[0].closes_connection(), "{:?}", got[0].headers);
}

/// A connection that sent a request head announcing `length` body bytes, plus `sent` of them.
fn start_body(addr: std::net::SocketAddr, path: &str, length: usize, sent: usize) -> Connection {
    let mut c = Connection::open(addr, TIMEOUTS).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    c.write_raw(head.as_bytes()).unwrap();
    c.write_raw(&vec![b' '; sent]).unwrap();
    c
}

#[test]
fn a_stalled_body_is_cut_off_with_408_while_ping_keeps_answering() {
    let s = ServerBuilder::new()
        .args(&["-w", "1", "--body-timeout", "2"])
        .start();
    poll_until(Duration::from_secs(30), || s.get("/ping").ok()).unwrap();
    let t0 = Instant::now();
    // A head announcing 10 bytes and none of them; another that sent 3 and stopped.
    let mut none = start_body(s.addr(), "/send_message", 10, 0);
    let mut some = start_body(s.addr(), "/send_message", 10, 3);
    for _ in 0..5 {
        assert_eq!(s.get("/ping").unwrap().status, 200);
    }
    for stalled in [&mut none, &mut some] {
        let r = stalled.read_reply("POST").unwrap();
        assert_eq!(r.status, 408, "{}", r.text());
        assert!(r.text().contains("body_timeout"), "{}", r.text());
        stalled.expect_close().unwrap();
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(30),
        "cut after {took:?}"
    );
    assert_eq!(s.get("/ping").unwrap().status, 200);
}

#[test]
fn a_trickled_body_is_cut_by_the_minimum_rate_and_a_steady_one_is_not() {
    let s = ServerBuilder::new()
        .args(&["-w", "1", "--body-timeout", "2", "--body-min-rate", "2000"])
        .start();
    poll_until(Duration::from_secs(30), || s.get("/ping").ok()).unwrap();
    let addr = s.addr();
    // 500 bytes/s, never silent for long: the rate ends it (after ~2.7 s), not the idle limit.
    let trickle = std::thread::spawn(move || {
        let mut c = start_body(addr, "/_test/body", 100_000, 0);
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < 100_000 && t0.elapsed() < Duration::from_secs(40) {
            if c.write_raw(&[b'x'; 100]).is_err() {
                break;
            }
            sent += 100;
            std::thread::sleep(Duration::from_millis(200));
        }
        (sent, t0.elapsed(), c.read_reply("POST"))
    });
    // 20 kB/s, ten times the minimum: the whole body is read.
    let mut c = start_body(addr, "/_test/body", 40_000, 0);
    for _ in 0..10 {
        c.write_raw(&[b'y'; 4000]).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    let steady = c.read_reply("POST").unwrap();
    assert_eq!(steady.status, 200, "{}", steady.text());
    assert_eq!(steady.text(), "read 40000 bytes");
    let (sent, took, got) = trickle.join().unwrap();
    // Cut after ~2.7 s (1,400 bytes); 10,000 bytes would be 20 s of trickle.
    assert!(sent <= 10_000, "the trickle went on for {sent} bytes");
    assert_eq!(got.map(|r| r.status), Ok(408));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(30),
        "cut after {took:?}"
    );
}

#[test]
fn at_worker_connections_the_quietest_connection_makes_room() {
    let s = ServerBuilder::new()
        .args(&["-w", "1", "--worker-connections", "4", "--keep-alive", "60"])
        .start();
    poll_until(Duration::from_secs(30), || s.get("/ping").ok()).unwrap();
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut c = Connection::open(s.addr(), TIMEOUTS).unwrap();
        assert_eq!(c.send(&Request::get("/ping")).unwrap().status, 200);
        idle.push(c);
        std::thread::sleep(Duration::from_millis(50));
    }
    // A fifth client is served at once: the longest-idle keep-alive connection is closed for it.
    let t0 = Instant::now();
    assert_eq!(s.get("/ping").unwrap().status, 200);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    idle[0].expect_close().unwrap();
    assert!(
        s.wait_for_line(Duration::from_secs(10), |l| l
            .contains("worker_connections (4) reached"))
            .is_some(),
        "{}",
        s.stderr()
    );
    drop(idle);
    // Four stalled bodies (body_timeout is 30 s): the one silent longest gives way to a new
    // client, which is served at once.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(start_body(s.addr(), "/send_message", 10, 0));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    assert_eq!(s.get("/ping").unwrap().status, 200);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    stalled[0].expect_close().unwrap();
}

#[test]
fn running_out_of_file_descriptors_cannot_stop_ping() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("prefork-ulimit");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nulimit -n 96\nexec '{}' \"$@\"\n", support::BIN),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();
    // Default timeouts: no stalled body ends for 30 s, so only making room lets /ping in.
    let s = ServerBuilder::new()
        .program(&wrapper)
        .args(&["-w", "1"])
        .start();
    poll_until(Duration::from_secs(30), || s.get("/ping").ok()).unwrap();
    assert!(
        s.wait_for_line(Duration::from_secs(10), |l| l
            .contains("does not fit the open-file limit"))
            .is_some(),
        "{}",
        s.stderr()
    );
    // More stalled bodies than the worker has descriptors.
    let stalled: Vec<Connection> = (0..150)
        .map(|_| start_body(s.addr(), "/send_message", 10, 0))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    assert_eq!(s.get("/ping").unwrap().status, 200);
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    drop(stalled);
    let log = s.stderr();
    assert!(!log.contains("Too many open files"), "{log}");
}
