//! HUP under constant load: zero failed requests, the new configuration in effect after, every
//! worker pid new; a broken configuration keeps the old one. Needs `--features test-hooks`.

#![cfg(feature = "test-hooks")]
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use crate::support::Answer;
use crate::support::{Load, ServerBuilder, poll_until};
use nix::sys::signal::Signal;

#[test]
fn hup_under_load_fails_no_request_and_replaces_every_worker() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    std::fs::write(&conf, "workers = 2\nbind = [\"127.0.0.1:0\"]\n").unwrap();
    let s = ServerBuilder::new()
        .without_default_bind()
        .args(&["-c", conf.to_str().unwrap(), "--log-level", "debug"])
        .start();
    assert!(
        s.wait_for_line(Duration::from_secs(30), |l| l
            .contains("All 2 workers are ready"))
            .is_some()
    );
    let before: HashSet<i32> = s
        .wait_workers(2, Duration::from_secs(30))
        .unwrap()
        .into_iter()
        .collect();

    let load = Load::start(s.addr(), "/_test/pid", 2, 2, Duration::from_millis(2));
    assert!(
        load.wait_more(200, Duration::from_secs(30)),
        "load never got going"
    );
    std::fs::write(&conf, "workers = 3\nbind = [\"127.0.0.1:0\"]\n").unwrap();
    s.signal(Signal::SIGHUP);
    assert!(
        s.wait_for_line(Duration::from_secs(60), |l| l
            .contains("All 3 workers are ready (generation 1)"))
            .is_some()
    );
    let after: HashSet<i32> = s
        .wait_workers(3, Duration::from_secs(30))
        .unwrap()
        .into_iter()
        .collect();
    assert!(load.wait_more(200, Duration::from_secs(30)));
    let stats = load.stop();
    eprintln!(
        "HUP under load: answered {} non-2xx {} failed {} refused {} stale keep-alive retries {}; errors {:?}",
        stats.answered,
        stats.non_2xx,
        stats.failed,
        stats.refused,
        stats.retried_stale_keepalive,
        stats.errors
    );
    assert!(stats.answered > 100, "{stats:?}");
    assert_eq!(
        (stats.failed, stats.refused, stats.non_2xx),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(before.is_disjoint(&after), "{before:?} {after:?}");
    // New workers came up one at a time: after the HUP, every "Booting worker" line is followed
    // by the master's "ready" line for that worker before the next worker boots.
    let lines = s.lines();
    let hup = lines
        .iter()
        .position(|l| l.contains("Hang up: Master"))
        .unwrap();
    let mut booting: Option<String> = None;
    let mut booted = 0;
    for l in &lines[hup..] {
        if let Some(pid) = l.split("Booting worker with pid: ").nth(1) {
            assert!(
                booting.is_none(),
                "{pid} booted while {booting:?} was still booting"
            );
            booting = Some(pid.trim().to_owned());
            booted += 1;
        } else if let Some(pid) = &booting
            && l.contains(&format!("Worker (pid:{pid}) ready after"))
        {
            booting = None;
        }
    }
    assert_eq!(booted, 3);
    let pids: HashSet<i32> = (0..30)
        .filter_map(|_| s.get("/_test/pid").ok().map(|r| r.worker()))
        .collect();
    assert!(pids.is_subset(&after), "{pids:?} {after:?}");
    assert!(s.lines().iter().all(|l| !l.contains("failed to boot")));
}

#[test]
fn hup_with_a_broken_config_keeps_serving_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    std::fs::write(&conf, "workers = 2\nbind = [\"127.0.0.1:0\"]\n").unwrap();
    let mut s = ServerBuilder::new()
        .without_default_bind()
        .args(&["-c", conf.to_str().unwrap()])
        .start();
    let before = s.wait_workers(2, Duration::from_secs(30)).unwrap();
    let load = Load::start(s.addr(), "/_test/pid", 1, 1, Duration::from_millis(5));
    assert!(load.wait_more(50, Duration::from_secs(30)));
    std::fs::write(&conf, "workers = \"many\"\n").unwrap();
    s.signal(Signal::SIGHUP);
    let line = s
        .wait_for_line(Duration::from_secs(10), |l| {
            l.contains("Reload failed, keeping the current configuration")
        })
        .unwrap();
    assert!(
        line.contains("[ERROR]") && line.contains("c.toml"),
        "{line}"
    );
    assert!(load.wait_more(50, Duration::from_secs(30)));
    let stats = load.stop();
    assert_eq!(
        (stats.failed, stats.refused, stats.non_2xx),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(s.workers(), before);
    assert!(poll_until(Duration::from_secs(5), || s.get("/_test/pid").ok()).is_some());
    s.signal(Signal::SIGTERM);
    let status = s.wait_exit(Duration::from_secs(30)).unwrap();
    assert_eq!(status.code(), Some(0));
}
