//! The history checker across instances on the object backend: two prefork instances (each its
//! own `--instance-dir` for runtime state and cache, as two hosts) on ONE S3 bucket served by
//! moto_server on loopback, launched by the load tool, which SIGKILLs single workers and whole
//! instances (restarted on the same port). 0 violations, every session read back from both
//! instances, and the bucket walk finds every manifest-named object whole.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::BIN;
use crate::support::moto::Moto;
use prefork_loadgen::check::Bucket;
use prefork_loadgen::{
    ChaosConfig, Fixtures, Fleet, LaunchSpec, LoadConfig, RunConfig, render, run,
};

const USERS: u32 = 6;

#[test]
fn users_across_two_instances_on_one_bucket_with_worker_and_instance_kills() {
    let _alone = crate::support::LOAD_TESTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let moto = Moto::start("prefork-load");
    let dir = tempfile::tempdir().unwrap();
    let spec = |n: usize| LaunchSpec {
        program: BIN.into(),
        args: [
            "-w",
            "2",
            "-b",
            "127.0.0.1:{port}",
            "--store",
            "s3://prefork-load/two",
            "--instance-dir",
            &dir.path().join("host-{n}").display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec(),
        cwd: Some(dir.path().to_path_buf()),
        envs: moto.env(),
        env_remove: std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("PREFORK_") || k.starts_with("AWS_"))
            .collect(),
        log: Some(dir.path().join(format!("instance-{n}.log"))),
    };
    let fleet = Arc::new(
        Fleet::launch(vec![spec(0), spec(1)], "/ping", Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let fixtures =
        Fixtures::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")).unwrap();
    let targets = fleet.addrs();
    let mut load = LoadConfig::new(targets[0], USERS, fixtures);
    load.targets = targets;
    load.think = Duration::from_millis(50);
    load.ramp_up = Duration::from_secs(2);
    load.repeat_for = Duration::from_secs(12);
    load.reclicks = 12;
    load.duration_limit = Duration::from_secs(240);
    load.record = Some(dir.path().join("history.jsonl"));
    let config = RunConfig {
        load,
        chaos: Some(ChaosConfig {
            fleet: Some(Arc::clone(&fleet)),
            instance_every: Some(Duration::from_secs(4)),
            instance_down: Duration::from_millis(800),
            ..ChaosConfig::workers(
                &[],
                Duration::from_millis(1000),
                Duration::from_secs(14),
                23,
            )
        }),
        instance: None,
        bucket: Bucket::parse(moto.addr, "/prefork-load/two"),
        p99_limit: None,
    };
    let report = run(&config).unwrap();
    let table = render(&report);
    eprintln!("two instances on one bucket, {USERS} users, worker and instance kills:\n{table}");
    let logs = || {
        (0..2)
            .map(|n| {
                std::fs::read_to_string(dir.path().join(format!("instance-{n}.log")))
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
    assert_eq!(report.final_answered, report.final_reads, "{table}");
    assert!(
        report.check.folders >= USERS as usize,
        "the bucket walk saw the sessions: {table}"
    );
    fleet.stop_all(Duration::from_secs(15));
}
