//! The history checker across instances on the object backend: two prefork instances (each its
//! own `--instance-dir` for runtime state and cache, as two hosts) on ONE S3 bucket served by
//! moto_server on loopback, launched by the load tool, which SIGKILLs single workers and whole
//! instances (restarted on the same port). 0 violations, every session read back from both
//! instances, and the bucket walk finds every manifest-named object whole.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::support::BIN;
use crate::support::moto::Moto;
use prefork_loadgen::check::Bucket;
use prefork_loadgen::{Fleet, LaunchSpec, RunConfig, render, run};

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
    let (load, chaos) = super::load_two_instances::load_and_chaos(
        &fleet,
        USERS,
        dir.path().join("history.jsonl"),
        14,
        23,
    );
    let config = RunConfig {
        load,
        chaos: Some(chaos),
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
