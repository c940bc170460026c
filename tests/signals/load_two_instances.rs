//! The history checker across instances: two independent prefork instances (two masters) on one
//! shared instance directory, as two hosts on one NFS export; users whose requests alternate
//! between the instances, while random workers of both are SIGKILLed. 0 violations, analysis
//! exactly once per generation, every user crossed both instances, and the folder walk is clean.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use crate::support::ServerBuilder;
use prefork_loadgen::{ChaosConfig, Fixtures, LoadConfig, RunConfig, render, run};

/// CI-sized (a debug build on 2 shared cores); `scripts/load/two-instances.sh` runs 60 users on a
/// release build.
const USERS: u32 = 12;

#[test]
fn users_across_two_instances_on_one_directory_with_chaos() {
    let _alone = crate::support::LOAD_TESTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let shared = tempfile::tempdir().unwrap();
    let instance = shared.path().join("instance");
    let dir_arg = format!("--instance-dir={}", instance.display());
    let a = ServerBuilder::new().args(&["-w", "3", &dir_arg]).start();
    let b = ServerBuilder::new().args(&["-w", "3", &dir_arg]).start();
    a.wait_workers(3, Duration::from_secs(60)).unwrap();
    b.wait_workers(3, Duration::from_secs(60)).unwrap();
    let records = tempfile::tempdir().unwrap();
    let fixtures =
        Fixtures::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")).unwrap();
    let mut load = LoadConfig::new(a.addr(), USERS, fixtures);
    load.targets = vec![a.addr(), b.addr()];
    load.think = Duration::from_millis(50);
    load.ramp_up = Duration::from_secs(2);
    // A bound, not a timing.
    load.duration_limit = Duration::from_secs(150);
    load.record = Some(records.path().join("two.jsonl"));
    let config = RunConfig {
        load,
        chaos: Some(ChaosConfig {
            master_pid: a.pid,
            other_masters: vec![b.pid],
            interval: Duration::from_millis(700),
            limit: Duration::from_secs(10),
            hup_after: None,
            seed: 17,
        }),
        instance: Some(instance),
        p99_limit: None,
    };
    let report = run(&config).unwrap();
    let table = render(&report);
    eprintln!("two instances, {USERS} users, chaos:\n{table}");
    assert!(report.ok(), "{table}");
    assert_eq!(report.finished_users, USERS, "{table}");
    assert!(report.chaos.as_ref().unwrap().kills >= 3, "{table}");
}
