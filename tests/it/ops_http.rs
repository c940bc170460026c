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
    Connection, Failure, Request, ServerBuilder, TIMEOUTS, Timeouts, metrics_of, poll_until,
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
