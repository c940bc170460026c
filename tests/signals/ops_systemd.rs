//! systemd integration, black-box: sd_notify messages captured by a test that plays
//! NOTIFY_SOCKET (a unix datagram socket), socket activation with a pre-bound descriptor, and
//! `systemd-analyze verify` on config/prefork.service where that command exists.
//! Needs `--features test-hooks`.

#![cfg(feature = "test-hooks")]
#![allow(clippy::unwrap_used)]

use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::{ServerBuilder, http_get_unix, poll_until};
use nix::sys::signal::Signal;

/// Collects every datagram with its arrival time.
fn notify_listener(path: &std::path::Path) -> Arc<Mutex<Vec<(Instant, String)>>> {
    let sock = UnixDatagram::bind(path).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            sink.lock().unwrap().push((Instant::now(), msg));
        }
    });
    got
}

fn wait_msg(
    got: &Mutex<Vec<(Instant, String)>>,
    after: usize,
    pred: impl Fn(&str) -> bool,
) -> Option<(usize, Instant, String)> {
    poll_until(Duration::from_secs(30), || {
        got.lock()
            .unwrap()
            .iter()
            .enumerate()
            .skip(after)
            .find(|(_, (_, m))| pred(m))
            .map(|(i, (t, m))| (i, *t, m.clone()))
    })
}

#[test]
fn sd_notify_ready_only_after_the_workers_reloading_watchdog_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let got = notify_listener(&path);
    let mut s = ServerBuilder::new()
        .args(&["-w", "2"])
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "400000")
        .env("PREFORK_TEST_BOOT_DELAY_MS", "1500")
        .start();
    let (i_boot, t_boot, _) =
        wait_msg(&got, 0, |m| m.starts_with("STATUS=Booting 2 workers")).unwrap();
    let (i_ready, t_ready, ready) = wait_msg(&got, 0, |m| m.contains("READY=1")).unwrap();
    assert!(i_ready > i_boot);
    assert!(
        t_ready.duration_since(t_boot) >= Duration::from_millis(1400),
        "READY=1 before the workers finished booting ({:?})",
        t_ready.duration_since(t_boot)
    );
    assert!(ready.contains("STATUS=Serving with 2 workers"), "{ready}");
    // Answered by then.
    assert_eq!(s.get("/_test/pid").unwrap().status, 200);
    assert!(wait_msg(&got, 0, |m| m == "WATCHDOG=1").is_some());

    s.signal(Signal::SIGHUP);
    let (i_rel, _, reloading) =
        wait_msg(&got, i_ready + 1, |m| m.starts_with("RELOADING=1")).unwrap();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let (_, _, again) = wait_msg(&got, i_rel + 1, |m| m.contains("READY=1")).unwrap();
    assert!(again.contains("STATUS=Serving"), "{again}");

    s.signal(Signal::SIGTERM);
    assert!(wait_msg(&got, i_rel + 1, |m| m.starts_with("STOPPING=1")).is_some());
    assert_eq!(
        s.wait_exit(Duration::from_secs(30)).unwrap().code(),
        Some(0)
    );
}

#[test]
fn socket_activation_serves_the_passed_tcp_socket_without_binding() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let s = ServerBuilder::new()
        .listen_fd(listener.as_raw_fd())
        .args(&["-w", "1", "-b", "127.0.0.1:1"])
        .start();
    // The configured bind (port 1, which we could not bind) is ignored for the passed socket.
    assert_eq!(s.addr(), addr);
    drop(listener);
    assert_eq!(
        poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok())
            .unwrap()
            .status,
        200
    );
}

#[test]
fn socket_activated_unix_socket_is_not_unlinked_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("act.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut s = ServerBuilder::new()
        .listen_fd(listener.as_raw_fd())
        .args(&["-w", "1"])
        .spawn();
    assert!(
        s.wait_for_line(Duration::from_secs(30), |l| l
            .contains("Listening at: unix:"))
            .is_some(),
        "{}",
        s.stderr()
    );
    drop(listener);
    assert_eq!(
        poll_until(Duration::from_secs(30), || http_get_unix(
            &sock,
            "/_test/pid"
        )
        .ok())
        .unwrap()
        .status,
        200
    );
    s.signal(Signal::SIGTERM);
    assert_eq!(
        s.wait_exit(Duration::from_secs(30)).unwrap().code(),
        Some(0)
    );
    assert!(sock.exists(), "systemd owns the socket path");
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let unit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prefork.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for needed in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "User=prefork",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=",
        "PrivateTmp=yes",
    ] {
        assert!(text.contains(needed), "unit lacks {needed}");
    }
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("SKIPPED: systemd-analyze is not installed here; the unit was only linted");
        return;
    };
    assert!(out.status.success());
    // verify insists that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("prefork.service");
    std::fs::write(
        &copy,
        text.replace("/opt/prefork/current/prefork", support::BIN),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

fn environ_of(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn usr2_under_socket_activation_passes_the_socket_on_and_moves_mainpid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let got = notify_listener(&path);
    let pidfile = dir.path().join("p.pid");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = ServerBuilder::new()
        .listen_fd(listener.as_raw_fd())
        .args(&["-w", "1", "-p", pidfile.to_str().unwrap()])
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .start();
    drop(listener);
    let old = s.pid;
    let (i_ready, _, _) = wait_msg(&got, 0, |m| m.contains("READY=1")).unwrap();
    s.signal(Signal::SIGUSR2);
    let marker = dir.path().join("p.pid.2.ready");
    let new: i32 = poll_until(Duration::from_secs(60), || {
        std::fs::read_to_string(&marker).ok()?.trim().parse().ok()
    })
    .expect("new master ready");
    // The new master got the socket as PREFORK_FD, and no LISTEN_* meant for its parent.
    let env = environ_of(new);
    assert!(env.iter().any(|e| e == "PREFORK_FD=3"), "{env:?}");
    assert!(
        env.iter()
            .any(|e| *e == format!("PREFORK_PARENT_PID={old}"))
    );
    assert!(!env.iter().any(|e| e.starts_with("LISTEN_")), "{env:?}");
    // An unpromoted child does not claim readiness for the service.
    assert!(
        got.lock().unwrap()[i_ready + 1..]
            .iter()
            .all(|(_, m)| !m.contains("READY=1"))
    );

    s.signal(Signal::SIGTERM);
    let (i_hand, _, hand) = wait_msg(&got, i_ready + 1, |m| m.starts_with("MAINPID=")).unwrap();
    assert!(hand.starts_with(&format!("MAINPID={new}\n")), "{hand}");
    assert!(!hand.contains("STOPPING=1"), "{hand}");
    assert_eq!(
        s.wait_exit(Duration::from_secs(30)).unwrap().code(),
        Some(0)
    );
    let (_, _, promoted) = wait_msg(&got, i_hand + 1, |m| m.contains("READY=1")).unwrap();
    assert!(
        promoted.starts_with(&format!("MAINPID={new}\nREADY=1")),
        "{promoted}"
    );
    assert_eq!(
        poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok())
            .unwrap()
            .status,
        200
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(new), Signal::SIGTERM).unwrap();
    assert!(wait_msg(&got, i_hand + 1, |m| m.starts_with("STOPPING=1")).is_some());
}
