//! The history checker across instances: two independent prefork instances (two masters, two
//! runtime dirs) on one shared instance directory, as two hosts on one NFS export, launched by
//! the load tool itself so that its chaos mode can SIGKILL a whole instance (master and workers,
//! its process group) and start it again on the same port, besides killing single workers.
//! Users' requests alternate between the instances; a connection refused by the dead instance
//! goes to the other one (a load balancer's failover). Afterwards every session is read back from
//! both instances. 0 violations: analysis exactly once per generation, no lost or invisible
//! acknowledged write, every user crossed both instances, and the folder walk is clean.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::BIN;
use prefork_loadgen::{
    ChaosConfig, Fixtures, Fleet, LaunchSpec, LoadConfig, RunConfig, render, run,
};

/// CI-sized (a debug build on 2 shared cores); `scripts/load/two-instances.sh` runs 60 users on a
/// release build.
const USERS: u32 = 8;

#[test]
fn users_across_two_instances_on_one_directory_with_worker_and_instance_kills() {
    let _alone = crate::support::LOAD_TESTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let shared = tempfile::tempdir().unwrap();
    let instance = shared.path().join("instance");
    let spec = |n: usize| LaunchSpec {
        program: BIN.into(),
        args: [
            "-w",
            "2",
            "-b",
            "127.0.0.1:{port}",
            "--instance-dir",
            &instance.display().to_string(),
            "--runtime-dir",
            &shared.path().join("run-{n}").display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec(),
        // Not the repository: no config/default.toml (rule-based chat, no network).
        cwd: Some(shared.path().to_path_buf()),
        envs: Vec::new(),
        env_remove: std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("PREFORK_"))
            .collect(),
        log: Some(shared.path().join(format!("instance-{n}.log"))),
    };
    let fleet = Arc::new(
        Fleet::launch(vec![spec(0), spec(1)], "/ping", Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let records = tempfile::tempdir().unwrap();
    let (load, chaos) = load_and_chaos(&fleet, USERS, records.path().join("two.jsonl"), 13, 17);
    let config = RunConfig {
        load,
        chaos: Some(chaos),
        instance: Some(instance),
        bucket: None,
        p99_limit: None,
    };
    let report = run(&config).unwrap();
    let table = render(&report);
    eprintln!("two instances, {USERS} users, worker and instance kills:\n{table}");
    let logs = || {
        (0..2)
            .map(|n| {
                std::fs::read_to_string(shared.path().join(format!("instance-{n}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    assert!(report.ok(), "{table}\n{}", logs());
    assert_eq!(report.finished_users, USERS, "{table}");
    let monkey = report.chaos.clone().unwrap();
    assert!(monkey.kills >= 3, "{table}");
    assert!(monkey.instance_kills >= 2, "{table}");
    assert_eq!(monkey.instance_restarts, monkey.instance_kills, "{table}");
    // Each session answered from both instances after the run.
    assert!(report.final_reads >= u64::from(USERS) * 2, "{table}");
    assert_eq!(report.final_answered, report.final_reads, "{table}");
    // Every incarnation came back on the same port: the instances were started more than twice.
    assert!(fleet.starts(0) + fleet.starts(1) >= 4, "{table}");
    fleet.stop_all(Duration::from_secs(15));
    assert_eq!(fleet.master(0), None);
}

/// The load and chaos of a two-instance run (shared by the S3 variant): `users` users keep
/// starting workflows for 12 s across the fleet's instances (so the kills land whatever the
/// machine's speed), a person clicks again after each failure (whole-instance kills cut more
/// requests short), a worker is killed every second for `chaos_s` seconds and a whole instance
/// every 4 s (down 0.8 s).
pub(crate) fn load_and_chaos(
    fleet: &Arc<Fleet>,
    users: u32,
    record: std::path::PathBuf,
    chaos_s: u64,
    seed: u64,
) -> (LoadConfig, ChaosConfig) {
    let fixtures =
        Fixtures::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")).unwrap();
    let targets = fleet.addrs();
    let mut load = LoadConfig::new(targets[0], users, fixtures);
    load.targets = targets;
    load.think = Duration::from_millis(50);
    load.ramp_up = Duration::from_secs(2);
    load.repeat_for = Duration::from_secs(12);
    load.reclicks = 12;
    // A bound, not a timing.
    load.duration_limit = Duration::from_secs(240);
    load.record = Some(record);
    let chaos = ChaosConfig {
        fleet: Some(Arc::clone(fleet)),
        instance_every: Some(Duration::from_secs(4)),
        instance_down: Duration::from_millis(800),
        ..ChaosConfig::workers(
            &[],
            Duration::from_millis(1000),
            Duration::from_secs(chaos_s),
            seed,
        )
    };
    (load, chaos)
}
