//! Black-box lifecycle and configuration tests of the real `prefork` binary (no signals sent by
//! the test; those are in server_signals.rs). Needs `--features test-hooks`.

// Without the feature the test endpoints don't exist; `scripts/test` enables it.
#![cfg(feature = "test-hooks")]
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::support;
use crate::support::Answer;
use crate::support::{
    Connection, Request, ServerBuilder, TIMEOUTS, Timeouts, poll_until, run_to_exit, socket_inodes,
};

#[test]
fn master_and_workers_share_one_listening_socket_and_serve_ping() {
    let s = ServerBuilder::new().args(&["-w", "3"]).start();
    let workers = s
        .wait_workers(3, Duration::from_secs(30))
        .expect("3 workers");
    let master_sockets = socket_inodes(s.pid);
    assert!(!master_sockets.is_empty());
    for w in &workers {
        let theirs = socket_inodes(*w);
        assert!(
            master_sockets.iter().any(|m| theirs.contains(m)),
            "worker {w} does not hold the master's listener ({master_sockets:?} vs {theirs:?})"
        );
    }
    let r = s.get("/ping").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"status":"ok"}"#);
    assert!(
        workers.contains(&r.worker()),
        "answered by a worker, not the master"
    );
    let r = s.get("/nope").unwrap();
    assert_eq!(r.status, 404);
    assert!(r.text().contains(r#""status":"error""#), "{}", r.text());
    assert_eq!(s.count_lines("Booting worker with pid:"), 3);
}

#[test]
fn default_worker_count_is_six() {
    let s = ServerBuilder::new().start();
    s.wait_workers(6, Duration::from_secs(30))
        .expect("6 workers by default");
}

#[test]
fn boot_failure_exits_3_with_one_reason() {
    let mut s = ServerBuilder::new()
        .args(&["-w", "2"])
        .env("PREFORK_TEST_FAIL_BOOT", "1")
        .spawn();
    let status = s.wait_exit(Duration::from_secs(60)).expect("master exits");
    assert_eq!(status.code(), Some(3), "{}", s.stderr());
    assert_eq!(
        s.count_lines("Reason: Worker failed to boot."),
        1,
        "{}",
        s.stderr()
    );
    // No respawn storm: a handful of boots at most.
    assert!(
        s.count_lines("Booting worker with pid:") <= 6,
        "{}",
        s.stderr()
    );
}

#[test]
fn max_requests_recycles_after_exactly_n_requests() {
    let s = ServerBuilder::new()
        .args(&["-w", "1", "--max-requests", "5"])
        .start();
    let first = s.get("/_test/pid").unwrap();
    let pid = first.worker();
    for i in 2..=5 {
        let r = s.get("/_test/pid").unwrap();
        assert_eq!(r.worker(), pid, "request {i} from the same worker");
        if i == 5 {
            assert_eq!(r.header("connection"), Some("close"));
        }
    }
    let sixth = s.get("/_test/pid").unwrap();
    assert_eq!(sixth.status, 200);
    assert_ne!(sixth.worker(), pid, "request 6 must come from a new worker");
    assert_eq!(
        s.count_lines("Autorestarting worker after current request."),
        1
    );
}

#[test]
fn heartbeat_timeout_spares_slow_async_requests_but_kills_a_blocked_loop() {
    let s = ServerBuilder::new()
        .args(&["-w", "1", "--timeout", "2"])
        .start();
    let pid = s.get("/_test/pid").unwrap().worker();
    // An async wait longer than the timeout: the event loop keeps beating.
    let r = s.get("/_test/sleep?ms=4500&id=async").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.worker(), pid);
    assert_eq!(s.count_lines("WORKER TIMEOUT"), 0, "{}", s.stderr());

    let addr = s.addr();
    let blocked =
        std::thread::spawn(move || support::http_get(addr, "/_test/block?ms=20000&id=blk"));
    assert!(
        s.wait_for_line(Duration::from_secs(20), |l| l
            .contains("REQUEST STARTED blk"))
            .is_some()
    );
    let started = Instant::now();
    let line = s
        .wait_for_line(Duration::from_secs(20), |l| {
            l.contains("WORKER TIMEOUT (pid:")
        })
        .expect("the blocked worker is timed out");
    let waited = started.elapsed();
    assert!(line.contains(&format!("(pid:{pid})")), "{line}");
    assert!(
        waited >= Duration::from_millis(1200),
        "killed too early: {waited:?}"
    );
    // SIGABRT cannot be handled by a blocked loop; SIGKILL follows and the client sees no 200.
    let result = blocked.join().unwrap();
    assert!(result.is_err() || result.unwrap().status != 200);
    let replacement = poll_until(Duration::from_secs(20), || {
        s.get("/_test/pid")
            .ok()
            .map(|r| r.worker())
            .filter(|p| *p != pid)
    });
    assert!(replacement.is_some(), "a replacement worker serves");
}

#[test]
fn a_boot_slower_than_timeout_survives_but_boot_timeout_is_a_boot_failure() {
    let s = ServerBuilder::new()
        .args(&["-w", "1", "--timeout", "1", "--boot-timeout", "30"])
        .env("PREFORK_TEST_BOOT_DELAY_MS", "2500")
        .start();
    let r = poll_until(Duration::from_secs(30), || s.get("/ping").ok()).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(s.count_lines("TIMEOUT"), 0, "{}", s.stderr());
    drop(s);

    let mut s = ServerBuilder::new()
        .args(&["-w", "1", "--boot-timeout", "1"])
        .env("PREFORK_TEST_BOOT_DELAY_MS", "30000")
        .spawn();
    let status = s
        .wait_exit(Duration::from_secs(60))
        .expect("master gives up");
    assert_eq!(status.code(), Some(3), "{}", s.stderr());
    assert!(s.count_lines("WORKER BOOT TIMEOUT") >= 1, "{}", s.stderr());
}

#[test]
fn live_pidfile_refuses_to_start_and_stale_one_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("prefork.pid");
    // Our own pid is alive.
    std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
    let p = pidfile.display().to_string();
    let (code, _, err) = run_to_exit(&["-b", "127.0.0.1:0", "-p", &p], &[], dir.path());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("already running on PID"), "{err}");
    assert!(!err.contains("Listening at"), "{err}");

    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(&pidfile, format!("{dead_pid}\n")).unwrap();
    let s = ServerBuilder::new().args(&["-w", "1", "-p", &p]).start();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", s.pid)
    );
}

#[test]
fn config_precedence_cli_over_env_over_file_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let workers = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["--print-config"];
        all.extend_from_slice(args);
        let (code, out, err) = run_to_exit(&all, env, cwd);
        assert_eq!(code, Some(0), "{err}");
        let line = out
            .lines()
            .find(|l| l.starts_with("workers ="))
            .unwrap()
            .to_owned();
        line.trim_start_matches("workers =")
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!(workers(&[], &[]), 6, "defaults");
    std::fs::create_dir(cwd.join("config")).unwrap();
    std::fs::write(cwd.join("config/default.toml"), "workers = 2\n").unwrap();
    assert_eq!(workers(&[], &[]), 2, "config/default.toml");
    assert_eq!(
        workers(&[], &[("PREFORK_WORKERS", "3")]),
        3,
        "env over file"
    );
    assert_eq!(
        workers(&["-w", "4"], &[("PREFORK_WORKERS", "3")]),
        4,
        "CLI over env"
    );
    std::fs::write(cwd.join("other.toml"), "workers = 5\n").unwrap();
    assert_eq!(
        workers(&["-c", "other.toml"], &[]),
        5,
        "-c replaces default.toml"
    );
    assert_eq!(
        workers(&[], &[("PREFORK_CONFIG", "other.toml")]),
        5,
        "config path via env"
    );

    // And the file really drives the server.
    let s = ServerBuilder::new().cwd(cwd).start();
    s.wait_workers(2, Duration::from_secs(30))
        .expect("2 workers from config/default.toml");
}

#[test]
fn check_config_validates_without_binding() {
    let dir = tempfile::tempdir().unwrap();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = holder.local_addr().unwrap().to_string();
    let (code, _, err) = run_to_exit(&["--check-config", "-b", &busy], &[], dir.path());
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("Listening at"), "{err}");

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml");
    let (code, _, err) = run_to_exit(&["--check-config", "-c", example], &[], dir.path());
    assert_eq!(code, Some(0), "example.toml must load: {err}");

    std::fs::write(dir.path().join("bad.toml"), "workers = \"many\"\n").unwrap();
    let (code, _, err) = run_to_exit(&["--check-config", "-c", "bad.toml"], &[], dir.path());
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert!(
        err.starts_with("Error:") && err.contains("bad.toml"),
        "{err}"
    );

    std::fs::write(dir.path().join("unknown.toml"), "wrokers = 2\n").unwrap();
    let (code, _, err) = run_to_exit(&["--check-config", "-c", "unknown.toml"], &[], dir.path());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("wrokers"), "{err}");
}

#[test]
fn unknown_flag_and_bad_values_exit_non_zero_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run_to_exit(&["--no-such-flag"], &[], dir.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");

    for args in [
        &["-w", "abc"][..],
        &["-w", "0"],
        &["-b", "unix:"],
        &["--log-level", "loud"],
    ] {
        let (code, _, err) = run_to_exit(args, &[], dir.path());
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("Error:"), "{args:?}: {err}");
    }
    let (code, _, err) = run_to_exit(&[], &[("PREFORK_TIMEOUT", "soon")], dir.path());
    assert_eq!(code, Some(1), "bad env value: {err}");
}

#[test]
fn serves_on_a_unix_socket_next_to_tcp_with_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("prefork.sock");
    let bind_unix = format!("unix:{}", sock.display());
    let s = ServerBuilder::new()
        .args(&[
            "-w",
            "1",
            "-b",
            "127.0.0.1:0",
            "-b",
            &bind_unix,
            "--access-logfile",
            "-",
        ])
        .start();
    assert!(
        s.wait_for_line(Duration::from_secs(10), |l| l
            .contains(&format!("Listening at: {bind_unix}")))
            .is_some()
    );
    let r = poll_until(Duration::from_secs(20), || {
        support::http_get_unix(&sock, "/ping").ok()
    })
    .unwrap();
    assert_eq!(r.status, 200);
    let r = s.get("/ping?x=1").unwrap();
    assert_eq!(r.status, 200);
    let line = poll_until(Duration::from_secs(10), || {
        s.stdout_lines()
            .into_iter()
            .find(|l| l.contains("/ping?x=1"))
    })
    .expect("access log line on stdout");
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains("\"GET /ping?x=1 HTTP/1.1\" 200 15 \"-\" \"prefork-tests\""),
        "{line}"
    );
    assert!(
        s.stdout_lines()
            .iter()
            .any(|l| l.starts_with("- - - [") && l.contains("\"GET /ping HTTP/1.1\" 200"))
    );
}

#[test]
fn max_requests_jitter_stays_within_the_window() {
    let s = ServerBuilder::new()
        .args(&[
            "-w",
            "1",
            "--max-requests",
            "3",
            "--max-requests-jitter",
            "2",
        ])
        .start();
    let pid = s.get("/_test/pid").unwrap().worker();
    let mut served_by_first = 1;
    loop {
        let r = s.get("/_test/pid").unwrap();
        if r.worker() != pid {
            break;
        }
        served_by_first += 1;
        assert!(served_by_first <= 5, "jitter 2 allows at most 5 requests");
    }
    assert!(
        served_by_first >= 3,
        "at least max_requests: {served_by_first}"
    );
}

#[test]
fn serves_on_an_inherited_listening_socket_fd() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = std::os::fd::OwnedFd::from(listener);
    let s = ServerBuilder::new()
        .args(&["-w", "1", "-b", "fd://0"])
        .stdin(std::process::Stdio::from(fd))
        .start();
    assert_eq!(s.addr(), addr, "the inherited socket, not a new bind");
    let r = poll_until(Duration::from_secs(20), || {
        support::http_get(addr, "/ping").ok()
    })
    .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn a_busy_port_is_retried_then_fails_with_exit_1() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = holder.local_addr().unwrap().to_string();
    let mut s = ServerBuilder::new().args(&["-w", "1", "-b", &busy]).spawn();
    let status = s.wait_exit(Duration::from_secs(30)).expect("gives up");
    assert_eq!(status.code(), Some(1), "{}", s.stderr());
    assert!(s.count_lines("Connection in use") >= 2, "{}", s.stderr());
    assert!(s.stderr().contains("can't connect to"), "{}", s.stderr());
    assert_eq!(s.count_lines("Booting worker"), 0);
}

#[test]
fn one_worker_serves_many_connections_at_once() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    let addr = s.addr();
    let clients: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                support::http_get(addr, &format!("/_test/sleep?ms=4000&id=c{i}"))
            })
        })
        .collect();
    // All 20 are in flight in the one worker before the first finishes.
    assert!(
        s.wait_for_nth(Duration::from_secs(30), "REQUEST STARTED c", 20),
        "{}",
        s.stderr()
    );
    let pids: std::collections::BTreeSet<i32> = clients
        .into_iter()
        .map(|c| {
            let r = c.join().unwrap().unwrap();
            assert_eq!(r.status, 200);
            r.worker()
        })
        .collect();
    assert_eq!(pids.len(), 1);
}

#[test]
fn keep_alive_reuses_a_connection_and_closes_it_when_idle() {
    let s = ServerBuilder::new()
        .args(&["-w", "1", "--keep-alive", "1"])
        .start();
    let timeouts = Timeouts {
        io: Duration::from_secs(20),
        ..TIMEOUTS
    };
    let mut conn = Connection::open(s.addr(), timeouts).unwrap();
    for _ in 0..2 {
        let r = conn.send(&Request::get("/ping")).unwrap();
        assert_eq!((r.status, r.version.as_str()), (200, "HTTP/1.1"));
        assert!(!r.closes_connection(), "{:?}", r.headers);
    }
    // Idle: the server closes after about --keep-alive, with no more data.
    conn.expect_close().unwrap();
}

#[test]
fn workers_hold_only_their_own_heartbeat_file_and_not_the_signal_fd() {
    let s = ServerBuilder::new().args(&["-w", "3"]).start();
    let workers = s.wait_workers(3, Duration::from_secs(30)).unwrap();
    let links = |pid: i32| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|t| t.to_string_lossy().into_owned())
            .collect()
    };
    let heartbeat_files = |fds: &[String]| fds.iter().filter(|l| l.ends_with("(deleted)")).count();
    let master = links(s.pid);
    assert!(master.iter().any(|l| l.contains("signalfd")), "{master:?}");
    assert_eq!(heartbeat_files(&master), 3, "{master:?}");
    for w in workers {
        let fds = links(w);
        assert!(
            !fds.iter().any(|l| l.contains("signalfd")),
            "worker {w}: {fds:?}"
        );
        assert_eq!(heartbeat_files(&fds), 1, "worker {w}: {fds:?}");
    }
}

#[test]
fn an_unusable_heartbeat_dir_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing").display().to_string();
    let (code, _, err) = run_to_exit(
        &["-b", "127.0.0.1:0", "--worker-tmp-dir", &missing],
        &[],
        dir.path(),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("heartbeat"), "{err}");
}
