//! Black-box tests that send real signals to the real `prefork` binary (master and workers).
//! Needs `--features test-hooks`.

// Without the feature the test endpoints don't exist; `scripts/test` enables it.
#![cfg(feature = "test-hooks")]
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::support;
use crate::support::Answer;
use crate::support::{ServerBuilder, is_running, poll_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn kill_pid(pid: i32, sig: Signal) {
    kill(Pid::from_raw(pid), sig).unwrap();
}

#[test]
fn sigkilled_worker_is_replaced_within_2s_and_requests_keep_succeeding() {
    let s = ServerBuilder::new().args(&["-w", "2"]).start();
    let before = s.wait_workers(2, Duration::from_secs(30)).unwrap();
    // Both workers ready before we start timing.
    poll_until(Duration::from_secs(20), || {
        (s.count_lines("Booting worker") >= 2).then_some(())
    });
    let victim = before[0];
    kill_pid(victim, Signal::SIGKILL);
    let t0 = Instant::now();
    let after = poll_until(Duration::from_secs(10), || {
        let now = s.workers();
        (now.len() == 2 && !now.contains(&victim)).then_some(now)
    })
    .expect("count back to 2");
    let replaced_in = t0.elapsed();
    assert!(
        replaced_in < Duration::from_secs(2),
        "replaced after {replaced_in:?}"
    );
    assert!(after.contains(&before[1]));
    for _ in 0..20 {
        assert_eq!(s.get("/ping").unwrap().status, 200);
    }
    assert!(
        s.wait_for_line(Duration::from_secs(5), |l| l.contains(&format!(
            "Worker (pid:{victim}) was sent SIGKILL! Perhaps out of memory? (not sent by the master)"
        )))
        .is_some(),
        "{}",
        s.stderr()
    );
}

#[test]
fn respawned_single_worker_serves_again_quickly() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    let pid = poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok())
        .unwrap()
        .worker();
    kill_pid(pid, Signal::SIGKILL);
    let t0 = Instant::now();
    let new_pid = poll_until(Duration::from_secs(10), || {
        s.get("/_test/pid")
            .ok()
            .map(|r| r.worker())
            .filter(|p| *p != pid)
    })
    .expect("replacement serves");
    let latency = t0.elapsed();
    eprintln!("respawn latency (SIGKILL -> replacement answered): {latency:?} (new pid {new_pid})");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
}

#[test]
fn ttin_and_ttou_change_the_count_one_at_a_time_never_below_one() {
    let s = ServerBuilder::new().args(&["-w", "2"]).start();
    let initial = s.wait_workers(2, Duration::from_secs(30)).unwrap();
    s.signal(Signal::SIGTTIN);
    assert!(s.wait_for_nth(Duration::from_secs(10), "Handling signal: ttin", 1));
    s.wait_workers(3, Duration::from_secs(20))
        .expect("3 after TTIN");
    s.signal(Signal::SIGTTOU);
    assert!(s.wait_for_nth(Duration::from_secs(10), "Handling signal: ttou", 1));
    let two = s
        .wait_workers(2, Duration::from_secs(20))
        .expect("2 after TTOU");
    assert!(!two.contains(&initial[0]), "TTOU retires the oldest worker");
    s.signal(Signal::SIGTTOU);
    assert!(s.wait_for_nth(Duration::from_secs(10), "Handling signal: ttou", 2));
    s.wait_workers(1, Duration::from_secs(20))
        .expect("1 after the second TTOU");
    s.signal(Signal::SIGTTOU);
    assert!(s.wait_for_nth(Duration::from_secs(10), "Handling signal: ttou", 3));
    std::thread::sleep(Duration::from_millis(500));
    s.wait_workers(1, Duration::from_secs(10))
        .expect("never below 1");
    assert_eq!(s.get("/ping").unwrap().status, 200);
}

#[test]
fn term_lets_an_in_flight_request_finish_exits_0_and_removes_the_pidfile() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("p.pid");
    let p = pidfile.display().to_string();
    let mut s = ServerBuilder::new().args(&["-w", "1", "-p", &p]).start();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", s.pid)
    );
    let addr = s.addr();
    let req = std::thread::spawn(move || support::http_get(addr, "/_test/sleep?ms=2500&id=term"));
    assert!(
        s.wait_for_line(Duration::from_secs(20), |l| l
            .contains("REQUEST STARTED term"))
            .is_some()
    );
    s.signal(Signal::SIGTERM);
    let r = req.join().unwrap().expect("in-flight request completes");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "slept 2500");
    let status = s.wait_exit(Duration::from_secs(20)).expect("master exits");
    assert_eq!(status.code(), Some(0), "{}", s.stderr());
    assert!(!pidfile.exists(), "pidfile removed");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener closed"
    );
    assert_eq!(s.count_lines("Shutting down: Master"), 1);
}

#[test]
fn graceful_timeout_cuts_a_request_that_is_too_slow() {
    let mut s = ServerBuilder::new()
        .args(&["-w", "1", "--graceful-timeout", "2"])
        .start();
    let addr = s.addr();
    let req = std::thread::spawn(move || {
        let r = support::http_get(addr, "/_test/sleep?ms=30000&id=slow");
        (r, Instant::now())
    });
    assert!(
        s.wait_for_line(Duration::from_secs(20), |l| l
            .contains("REQUEST STARTED slow"))
            .is_some()
    );
    let t0 = Instant::now();
    s.signal(Signal::SIGTERM);
    let status = s.wait_exit(Duration::from_secs(15)).expect("master exits");
    let exited_after = t0.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        exited_after >= Duration::from_millis(1500),
        "{exited_after:?}"
    );
    assert!(exited_after < Duration::from_secs(7), "{exited_after:?}");
    let (result, cut_at) = req.join().unwrap();
    assert!(
        result.is_err() || result.unwrap().status != 200,
        "the slow request is cut"
    );
    assert!(cut_at.duration_since(t0) < Duration::from_secs(7));
}

#[test]
fn int_and_quit_stop_quickly() {
    for sig in [Signal::SIGINT, Signal::SIGQUIT] {
        let mut s = ServerBuilder::new().args(&["-w", "2"]).start();
        let addr = s.addr();
        let req = std::thread::spawn(move || support::http_get(addr, "/_test/sleep?ms=30000&id=q"));
        assert!(
            s.wait_for_line(Duration::from_secs(20), |l| l.contains("REQUEST STARTED q"))
                .is_some()
        );
        let t0 = Instant::now();
        s.signal(sig);
        let status = s.wait_exit(Duration::from_secs(10)).expect("master exits");
        assert_eq!(status.code(), Some(0), "{sig}");
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "{sig}: {:?}",
            t0.elapsed()
        );
        let r = req.join().unwrap();
        assert!(
            r.is_err() || r.unwrap().status != 200,
            "{sig}: in-flight request aborted"
        );
    }
}

#[test]
fn master_sigkill_leaves_no_orphan_workers() {
    let s = ServerBuilder::new().args(&["-w", "3"]).start();
    let workers = s.wait_workers(3, Duration::from_secs(30)).unwrap();
    s.signal(Signal::SIGKILL);
    let t0 = Instant::now();
    let gone = poll_until(Duration::from_secs(10), || {
        workers
            .iter()
            .all(|w| !is_running(*w))
            .then_some(t0.elapsed())
    })
    .expect("workers exit after the master dies");
    assert!(gone < Duration::from_secs(2), "{gone:?}");
}

#[test]
fn hup_rereads_the_config_and_replaces_every_worker() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("prefork.toml");
    std::fs::write(&conf, "workers = 2\n").unwrap();
    let c = conf.display().to_string();
    let s = ServerBuilder::new().args(&["-c", &c]).start();
    let old = s.wait_workers(2, Duration::from_secs(30)).unwrap();
    std::fs::write(&conf, "workers = 3\n").unwrap();
    s.signal(Signal::SIGHUP);
    let new = poll_until(Duration::from_secs(30), || {
        let now = s.workers();
        (now.len() == 3 && now.iter().all(|p| !old.contains(p))).then_some(now)
    })
    .unwrap_or_else(|| panic!("3 new workers; have {:?}\n{}", s.workers(), s.stderr()));
    assert_eq!(new.len(), 3);
    assert_eq!(s.count_lines("Hang up: Master"), 1);
    assert_eq!(s.get("/ping").unwrap().status, 200);
}

#[test]
fn hup_with_a_broken_config_keeps_the_old_one_and_workers() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("prefork.toml");
    std::fs::write(&conf, "workers = 2\n").unwrap();
    let c = conf.display().to_string();
    let mut s = ServerBuilder::new().args(&["-c", &c]).start();
    let old = s.wait_workers(2, Duration::from_secs(30)).unwrap();
    std::fs::write(&conf, "workers = \"lots\"\n").unwrap();
    s.signal(Signal::SIGHUP);
    assert!(
        s.wait_for_line(Duration::from_secs(10), |l| l
            .contains("Reload failed, keeping the current configuration"))
            .is_some(),
        "{}",
        s.stderr()
    );
    assert_eq!(s.wait_workers(2, Duration::from_secs(5)).unwrap(), old);
    assert_eq!(s.get("/ping").unwrap().status, 200);
    s.signal(Signal::SIGTERM);
    assert_eq!(
        s.wait_exit(Duration::from_secs(20)).unwrap().code(),
        Some(0)
    );
}

#[test]
fn usr1_reopens_the_access_log_in_every_worker() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let l = log.display().to_string();
    let s = ServerBuilder::new()
        .args(&["-w", "2", "--access-logfile", &l])
        .start();
    let workers = s.wait_workers(2, Duration::from_secs(30)).unwrap();
    assert_eq!(s.get("/ping?before").unwrap().status, 200);
    assert!(
        poll_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|t| t.contains("/ping?before"))
        })
        .is_some()
    );
    std::fs::rename(&log, &rotated).unwrap();
    s.signal(Signal::SIGUSR1);
    assert!(s.wait_for_nth(Duration::from_secs(10), "Handling signal: usr1", 1));
    // Keep asking until each worker has written into the new file.
    let mut reopened = std::collections::BTreeSet::new();
    let mut n = 0;
    let ok = poll_until(Duration::from_secs(20), || {
        n += 1;
        let marker = format!("/ping?n={n}");
        let r = s.get(&marker).ok()?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&format!("{marker} ")) {
            reopened.insert(r.worker());
        }
        (reopened.len() == workers.len()).then_some(())
    });
    assert!(
        ok.is_some(),
        "workers reopened: {reopened:?} of {workers:?}"
    );
    let old_len = std::fs::metadata(&rotated).unwrap().len();
    for i in 0..10 {
        assert_eq!(s.get(&format!("/ping?after={i}")).unwrap().status, 200);
    }
    let text = poll_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("/ping?after=9 "))
    })
    .unwrap();
    assert_eq!(text.matches("/ping?after=").count(), 10);
    assert_eq!(
        std::fs::metadata(&rotated).unwrap().len(),
        old_len,
        "rotated file stops growing"
    );
}

#[test]
fn hup_with_a_new_bind_address_moves_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("prefork.toml");
    std::fs::write(&conf, "workers = 1\nbind = [\"127.0.0.1:0\"]\n").unwrap();
    let c = conf.display().to_string();
    let s = ServerBuilder::new()
        .without_default_bind()
        .args(&["-c", &c])
        .start();
    let old = s.addr();
    assert_eq!(
        poll_until(Duration::from_secs(20), || s.get("/ping").ok())
            .unwrap()
            .status,
        200
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let new: std::net::SocketAddr = free.local_addr().unwrap();
    drop(free);
    std::fs::write(&conf, format!("workers = 1\nbind = [\"{new}\"]\n")).unwrap();
    s.signal(Signal::SIGHUP);
    assert!(
        s.wait_for_line(Duration::from_secs(20), |l| l
            .contains(&format!("Listening at: http://{new} ")))
            .is_some(),
        "{}",
        s.stderr()
    );
    let r = poll_until(Duration::from_secs(20), || {
        support::http_get(new, "/ping").ok()
    })
    .unwrap();
    assert_eq!(r.status, 200);
    // Once the old worker has retired nobody holds the old socket.
    assert!(
        poll_until(Duration::from_secs(20), || std::net::TcpStream::connect(
            old
        )
        .is_err()
        .then_some(()))
        .is_some()
    );
}

#[test]
fn quit_during_a_graceful_stop_escalates_to_a_quick_stop() {
    let mut s = ServerBuilder::new()
        .args(&["-w", "1", "--graceful-timeout", "60"])
        .start();
    let addr = s.addr();
    let req = std::thread::spawn(move || support::http_get(addr, "/_test/sleep?ms=60000&id=esc"));
    assert!(
        s.wait_for_line(Duration::from_secs(20), |l| l
            .contains("REQUEST STARTED esc"))
            .is_some()
    );
    s.signal(Signal::SIGTERM);
    assert!(s.wait_for_nth(Duration::from_secs(10), "Handling signal: term", 1));
    let t0 = Instant::now();
    s.signal(Signal::SIGQUIT);
    let status = s.wait_exit(Duration::from_secs(15)).expect("master exits");
    assert_eq!(status.code(), Some(0));
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(
        s.count_lines("Quick shutdown requested"),
        1,
        "{}",
        s.stderr()
    );
    let r = req.join().unwrap();
    assert!(r.is_err() || r.unwrap().status != 200);
}

#[test]
fn a_worker_that_aborts_itself_is_not_said_to_be_aborted_by_the_master() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    let pid = poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok())
        .unwrap()
        .worker();
    // abort() on a blocking-pool thread, as an allocation failure in the app would.
    let r = support::http_get(s.addr(), "/_test/abort");
    assert!(r.is_err() || r.unwrap().status != 200);
    let line = s
        .wait_for_line(Duration::from_secs(20), |l| {
            l.contains(&format!("Worker (pid:{pid}) aborted itself"))
        })
        .unwrap_or_else(|| panic!("no line about the abort:\n{}", s.stderr()));
    assert!(line.contains("SIGABRT"), "{line}");
    // A replacement serves, and nothing blamed the master.
    poll_until(Duration::from_secs(20), || {
        s.get("/_test/pid").ok().filter(|r| r.worker() != pid)
    })
    .expect("a replacement worker serves");
    let log = s.stderr();
    assert!(!log.contains("aborted by the master"), "{log}");
    assert!(!log.contains("was sent SIGABRT"), "{log}");
}

#[test]
fn a_sigabrt_from_another_process_is_named_as_such() {
    let s = ServerBuilder::new().args(&["-w", "1"]).start();
    let pid = poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok())
        .unwrap()
        .worker();
    kill_pid(pid, Signal::SIGABRT);
    let me = std::process::id();
    let line = s
        .wait_for_line(Duration::from_secs(20), |l| {
            l.contains(&format!("Worker (pid:{pid}) was sent SIGABRT by pid {me}"))
        })
        .unwrap_or_else(|| panic!("no line about the signal:\n{}", s.stderr()));
    assert!(line.contains("not the master"), "{line}");
    poll_until(Duration::from_secs(20), || {
        s.get("/_test/pid").ok().filter(|r| r.worker() != pid)
    })
    .expect("a replacement worker serves");
    assert!(
        !s.stderr().contains("aborted by the master"),
        "{}",
        s.stderr()
    );
}
