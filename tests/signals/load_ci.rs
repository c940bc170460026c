//! The CI-sized load and chaos checks of issue 9, against the real binary with 6 workers and a
//! temp instance dir: 12 users walk the whole workflow with no errors and exactly one analysis
//! each; then 12 more users walk it while a random worker is SIGKILLed every 0.5 s for 10 s (and
//! the master gets one HUP), and the history checker and the folder walk find no violation.
//! Latency is reported, never judged here (scripts/load/ measures it on a release build).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use crate::support::ServerBuilder;
use prefork_loadgen::{ChaosConfig, Fixtures, LoadConfig, RunConfig, render, run};

fn load_config(addr: std::net::SocketAddr, users: u32, record: &Path) -> LoadConfig {
    let fixtures =
        Fixtures::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")).unwrap();
    let mut load = LoadConfig::new(addr, users, fixtures);
    load.think = Duration::from_millis(50);
    load.ramp_up = Duration::from_millis(500);
    // A bound, not a timing: the whole test must stay well under a minute.
    load.duration_limit = Duration::from_secs(40);
    load.record = Some(record.to_path_buf());
    load
}

#[test]
fn twelve_users_then_ten_seconds_of_chaos() {
    let _alone = crate::support::LOAD_TESTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let server = ServerBuilder::new().args(&["-w", "6"]).start();
    server.wait_workers(6, Duration::from_secs(60)).unwrap();
    let instance = server.dir.path().join("instance");
    let records = tempfile::tempdir().unwrap();

    let load = RunConfig {
        load: load_config(server.addr(), 12, &records.path().join("load.jsonl")),
        chaos: None,
        instance: Some(instance.clone()),
        bucket: None,
        p99_limit: None,
    };
    let report = run(&load).unwrap();
    let table = render(&report);
    eprintln!("load, 12 users:\n{table}");
    assert!(report.ok(), "{table}");
    assert_eq!(report.finished_users, 12, "{table}");
    assert_eq!(report.visible_errors, 0, "{table}");
    assert_eq!(report.workflows, 12, "{table}");
    assert_eq!(report.analysis_runs, 12, "{table}");
    assert!(
        report.workers_per_user.2 >= 2,
        "requests spread over workers: {table}"
    );

    let mut chaos_load = load_config(server.addr(), 12, &records.path().join("chaos.jsonl"));
    // Users keep starting workflows (new sessions) for as long as the monkey runs.
    chaos_load.repeat_for = Duration::from_secs(10);
    let chaos = RunConfig {
        load: chaos_load,
        chaos: Some(ChaosConfig {
            hup_after: Some(Duration::from_secs(3)),
            ..ChaosConfig::workers(
                &[server.pid],
                Duration::from_millis(500),
                Duration::from_secs(10),
                9,
            )
        }),
        instance: Some(instance),
        bucket: None,
        p99_limit: None,
    };
    let report = run(&chaos).unwrap();
    let table = render(&report);
    eprintln!("chaos, 12 users:\n{table}");
    assert!(report.ok(), "{table}");
    let monkey = report.chaos.clone().unwrap();
    assert!(monkey.kills >= 5, "{table}");
    assert!(monkey.hup_sent, "{table}");

    // The offline checker agrees with the in-process one on the recorded history.
    let offline = prefork_loadgen::check::check(
        &records.path().join("chaos.jsonl"),
        None,
        prefork_loadgen::Mode::Chaos,
    )
    .unwrap();
    assert!(offline.ok(), "{:?}", offline.violations);
    assert_eq!(offline.records as u64, report.attempts);
}
