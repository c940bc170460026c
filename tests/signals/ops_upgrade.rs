//! USR2 binary upgrade, black-box: the new master is a child of the old one and writes
//! `PIDFILE.2`; both serve on the same sockets; a second USR2 is ignored; TERM to the old master
//! promotes the new one, which takes the pidfile; no connection is refused meanwhile. A new
//! binary that fails leaves the old master serving, and USR2 can be retried.
//! Needs `--features test-hooks`.

#![cfg(feature = "test-hooks")]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use crate::support::Answer;
use crate::support::{BIN, Load, ServerBuilder, children_of, is_running, poll_until, stat_of};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn usr2_then_term_old_master_hands_over_without_refusing_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("prefork.pid");
    let pidfile2 = dir.path().join("prefork.pid.2");
    let mut s = ServerBuilder::new()
        .args(&["-w", "2", "-p", pidfile.to_str().unwrap()])
        .start();
    let old = s.pid;
    assert!(
        s.wait_for_line(Duration::from_secs(30), |l| l
            .contains("All 2 workers are ready"))
            .is_some()
    );
    let old_workers = s.workers();
    let load = Load::start(s.addr(), "/_test/pid", 1, 2, Duration::from_millis(5));
    assert!(load.wait_more(100, Duration::from_secs(30)));

    s.signal(Signal::SIGUSR2);
    let new = poll_until(Duration::from_secs(30), || read_pid(&pidfile2)).expect("PIDFILE.2");
    assert_ne!(new, old);
    assert_eq!(
        stat_of(new).map(|(_, ppid)| ppid),
        Some(old),
        "new master is the old one's child"
    );
    assert_eq!(read_pid(&pidfile), Some(old));
    // The new master's workers are up (its log line has its pid), and it says so in a file.
    let marker = dir.path().join("prefork.pid.2.ready");
    assert!(
        poll_until(Duration::from_secs(60), || (read_pid(&marker) == Some(new))
            .then_some(()))
        .is_some()
    );
    assert!(
        s.wait_for_line(Duration::from_secs(60), |l| l.contains(&format!("[{new}]"))
            && l.contains("All 2 workers are ready"))
            .is_some()
    );
    let new_workers = poll_until(Duration::from_secs(10), || {
        let w: Vec<i32> = children_of(new).into_iter().filter(|p| *p != old).collect();
        (w.len() == 2).then_some(w)
    })
    .unwrap();
    // Both generations serve on the same socket.
    let seen = poll_until(Duration::from_secs(30), || {
        let mut pids = std::collections::HashSet::new();
        for _ in 0..40 {
            pids.insert(s.get("/_test/pid").ok()?.worker());
        }
        (pids.iter().any(|p| new_workers.contains(p))
            && pids.iter().any(|p| old_workers.contains(p)))
        .then_some(pids)
    });
    assert!(seen.is_some(), "old {old_workers:?} new {new_workers:?}");

    s.signal(Signal::SIGUSR2);
    assert!(
        s.wait_for_line(Duration::from_secs(10), |l| l
            .contains("USR2 signal ignored. Child exists."))
            .is_some()
    );

    assert!(load.wait_more(100, Duration::from_secs(30)));
    s.signal(Signal::SIGTERM);
    assert_eq!(
        s.wait_exit(Duration::from_secs(60)).unwrap().code(),
        Some(0)
    );
    assert!(
        s.wait_for_line(Duration::from_secs(10), |l| l.contains(&format!("[{new}]"))
            && l.contains("Master has been promoted."))
            .is_some()
    );
    assert!(
        poll_until(Duration::from_secs(10), || (read_pid(&pidfile)
            == Some(new))
        .then_some(()))
        .is_some()
    );
    assert!(
        poll_until(Duration::from_secs(10), || (!pidfile2.exists())
            .then_some(()))
        .is_some()
    );
    assert!(!marker.exists());
    assert!(load.wait_more(100, Duration::from_secs(30)));
    let stats = load.stop();
    eprintln!(
        "USR2 under load: answered {} non-2xx {} failed {} refused {} stale keep-alive retries {}; errors {:?}",
        stats.answered,
        stats.non_2xx,
        stats.failed,
        stats.refused,
        stats.retried_stale_keepalive,
        stats.errors
    );
    assert_eq!(
        (stats.failed, stats.refused, stats.non_2xx),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(old_workers.iter().all(|p| !is_running(*p)));
    assert!(is_running(new));
    // Only the new generation answers now.
    for _ in 0..10 {
        assert!(new_workers.contains(&s.get("/_test/pid").unwrap().worker()));
    }
    kill(Pid::from_raw(new), Signal::SIGTERM).unwrap();
    assert!(poll_until(Duration::from_secs(30), || (!is_running(new)).then_some(())).is_some());
    assert!(!pidfile.exists());
}

#[test]
fn a_failed_upgrade_keeps_the_old_master_serving_and_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("prefork");
    std::os::unix::fs::symlink(BIN, &program).unwrap();
    let pidfile = dir.path().join("p.pid");
    let s = ServerBuilder::new()
        .program(&program)
        .args(&["-w", "1", "-p", pidfile.to_str().unwrap()])
        .start();
    poll_until(Duration::from_secs(30), || s.get("/_test/pid").ok()).unwrap();

    // A "new binary" that cannot start.
    let broken = dir.path().join("broken.sh");
    std::fs::write(&broken, "#!/bin/sh\necho 'broken build' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::remove_file(&program).unwrap();
    std::os::unix::fs::symlink(&broken, &program).unwrap();
    s.signal(Signal::SIGUSR2);
    assert!(
        s.wait_for_line(Duration::from_secs(20), |l| l
            .contains("Upgrade master (pid:")
            && l.contains("exited with code 3; still serving here"))
            .is_some()
    );
    assert_eq!(s.get("/_test/pid").unwrap().status, 200);
    assert_eq!(read_pid(&pidfile), Some(s.pid));

    // Fixed binary: the retry works.
    std::fs::remove_file(&program).unwrap();
    std::os::unix::fs::symlink(BIN, &program).unwrap();
    s.signal(Signal::SIGUSR2);
    let pidfile2 = dir.path().join("p.pid.2");
    let new = poll_until(Duration::from_secs(30), || read_pid(&pidfile2)).expect("retry");
    assert_eq!(stat_of(new).map(|(_, ppid)| ppid), Some(s.pid));
}
