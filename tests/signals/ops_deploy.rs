//! scripts/deploy.sh and scripts/upgrade.sh, run for real: `--dry-run` prints every step and
//! touches nothing; a deploy to a local target directory starts the server and checks /ping
//! through the real port; a second deploy upgrades it in place with USR2; a broken release is
//! rolled back. Needs `--features test-hooks` (the binary under test is the debug build) and curl.

#![cfg(feature = "test-hooks")]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support;
use crate::support::{http_get, is_running, poll_until};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(root().join("scripts/deploy.sh"));
    cmd.args(args).env("DEPLOY_TIMEOUT", "60");
    for (k, _) in std::env::vars() {
        if k.starts_with("PREFORK_") || k.starts_with("DEPLOY_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn have_curl() -> bool {
    Command::new("curl").arg("--version").output().is_ok()
}

fn master_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("run/prefork.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Stops whatever master the local target runs, even when an assertion failed.
struct StopOnDrop(PathBuf);
impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = master_pid(&self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGQUIT,
            );
            poll_until(Duration::from_secs(10), || (!is_running(pid)).then_some(()));
        }
    }
}

#[test]
fn dry_run_prints_every_step_and_changes_nothing() {
    let (code, out) = deploy(&["--dry-run", "production"], &[]);
    assert_eq!(code, 0, "{out}");
    for step in [
        "cargo build --release",
        "--check-config",
        "rsync -a",
        "current.new",
        "systemctl daemon-reload",
        "upgrade.sh",
        "/ping",
    ] {
        assert!(out.contains(step), "dry run lacks {step:?}:\n{out}");
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t");
    let (code, out) = deploy(
        &["--dry-run", "staging"],
        &[("DEPLOY_TARGET", target.to_str().unwrap())],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("local target"), "{out}");
    assert!(!target.exists(), "a dry run created {}", target.display());
    let (code, _) = deploy(&["qa"], &[]);
    assert_eq!(code, 2);
    let out = Command::new(root().join("scripts/upgrade.sh"))
        .args([
            "--dry-run",
            "/nonexistent/prefork.pid",
            "http://127.0.0.1:1/ping",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for step in ["kill -USR2", ".2.ready", "curl", "kill -TERM"] {
        assert!(
            text.contains(step),
            "upgrade dry run lacks {step:?}:\n{text}"
        );
    }
}

#[test]
fn deploy_to_a_local_directory_upgrades_in_place_and_rolls_back_a_broken_release() {
    if !have_curl() {
        eprintln!("SKIPPED: curl is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("srv");
    let _stop = StopOnDrop(target.clone());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let envs = [
        ("DEPLOY_TARGET", target.to_str().unwrap()),
        ("DEPLOY_BIND", bind.as_str()),
    ];

    // First deploy: nothing runs yet, so it starts the server.
    let (code, out) = deploy(&["--binary", support::BIN, "staging"], &envs);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("healthy"), "{out}");
    let first = master_pid(&target).unwrap();
    let addr = bind.parse().unwrap();
    assert_eq!(http_get(addr, "/ping").unwrap().status, 200);
    let release1 = std::fs::read_link(target.join("current")).unwrap();

    // Second deploy: USR2 upgrade of the running master.
    let (code, out) = deploy(&["--binary", support::BIN, "staging"], &envs);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("upgraded: master {first} -> ")),
        "{out}"
    );
    let second = master_pid(&target).unwrap();
    assert_ne!(first, second);
    assert!(
        poll_until(Duration::from_secs(30), || (!is_running(first))
            .then_some(()))
        .is_some()
    );
    assert_eq!(http_get(addr, "/ping").unwrap().status, 200);
    let release2 = std::fs::read_link(target.join("current")).unwrap();
    assert_ne!(release1, release2);

    // A release that passes --check-config but cannot boot: rolled back, still serving.
    let broken = dir.path().join("broken");
    std::fs::write(
        &broken,
        "#!/bin/sh\ncase \"$*\" in *--check-config*) exit 0;; esac\necho broken >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, out) = deploy(&["--binary", broken.to_str().unwrap(), "staging"], &envs);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rolling back to"), "{out}");
    assert!(
        out.contains("rolled back to") && out.contains("(healthy)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_link(target.join("current")).unwrap(),
        release2
    );
    assert_eq!(http_get(addr, "/ping").unwrap().status, 200);
}
