//! Two independent instances (two masters, two command lines) on one instance directory, as two
//! hosts on one NFS export would be: each keeps its own runtime state (metrics), a session made
//! on one is served by the other, and concurrent analyses split between them compute once.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde_json::json;

use crate::support::{Answer, ServerBuilder, Session, metrics_of, poll_until};

fn requests_to(m: &[(String, f64)], route: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| {
            k.starts_with("prefork_http_requests_total{") && k.contains(&format!("\"{route}\""))
        })
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn two_instances_share_sessions_but_not_runtime_state() {
    let shared = tempfile::tempdir().unwrap();
    let instance = shared.path().join("instance");
    let b_runtime = tempfile::tempdir().unwrap();
    let dir_arg = format!("--instance-dir={}", instance.display());
    // A uses the default runtime folder (`run/<host>-pid<N>` for port 0), B an explicit one.
    let a = ServerBuilder::new().args(&["-w", "2", &dir_arg]).start();
    a.wait_workers(2, Duration::from_secs(30)).unwrap();
    let a_pings = 5;
    for _ in 0..a_pings {
        a.get("/ping").unwrap().expect(200, "ping A");
    }
    poll_until(Duration::from_secs(15), || {
        (requests_to(&metrics_of(a.addr())?, "/ping") == f64::from(a_pings)).then_some(())
    })
    .expect("A counts its pings");
    let b = ServerBuilder::new()
        .args(&[
            "-w",
            "2",
            &dir_arg,
            &format!("--runtime-dir={}", b_runtime.path().display()),
        ])
        .start();
    b.wait_workers(2, Duration::from_secs(30)).unwrap();
    assert!(b_runtime.path().join("metrics").is_dir());

    // B's start did not delete A's metrics files, and neither counts the other's requests.
    for _ in 0..3 {
        b.get("/ping").unwrap().expect(200, "ping B");
    }
    poll_until(Duration::from_secs(15), || {
        (requests_to(&metrics_of(b.addr())?, "/ping") == 3.0).then_some(())
    })
    .expect("B counts only its own pings");
    let a_now = requests_to(&metrics_of(a.addr()).unwrap(), "/ping");
    assert_eq!(a_now, f64::from(a_pings), "A's /metrics counts only A");
    let run: Vec<_> = std::fs::read_dir(instance.join("run"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert!(
        run.iter().any(|n| n.ends_with(&format!("-pid{}", a.pid))),
        "A's runtime folder is named after it: {run:?}"
    );

    // A session minted on A, uploaded through B, analysed by 8 callers split across both.
    let on_a = Session::create(a.addr());
    let on_b = Session {
        addr: b.addr(),
        ..on_a.clone()
    };
    on_b.upload_kano().expect(200, "upload through B");
    assert!(
        instance
            .join("uploads")
            .join(&on_a.id)
            .join("conversation.json")
            .is_file()
    );
    let callers = 8;
    let barrier = Arc::new(Barrier::new(callers));
    let handles: Vec<_> = (0..callers)
        .map(|n| {
            let s = if n % 2 == 0 {
                on_a.clone()
            } else {
                on_b.clone()
            };
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                s.run_analysis(&json!({}))
                    .expect(200, "run_analysis")
                    .json_body()
            })
        })
        .collect();
    let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let fresh = answers.iter().filter(|v| v["reused"] == false).count();
    assert_eq!(
        fresh, 1,
        "one computation across both instances: {answers:?}"
    );
    let ids: std::collections::BTreeSet<_> = answers
        .iter()
        .map(|v| v["analysis_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (_, sa) = on_a.status();
    let (_, sb) = on_b.status();
    assert_eq!(sa["analysis_id"], sb["analysis_id"]);
    assert_eq!(sa["generation"], sb["generation"]);
    assert_eq!(
        (
            sa["analyses_started"].clone(),
            sa["analyses_committed"].clone()
        ),
        (json!(1), json!(1))
    );
    // A clear through A is seen by B at once (state is re-derived from the shared folder).
    on_a.post_json("/clear_session", &json!({}));
    let (_, sb) = on_b.status();
    assert_eq!(sb["data_loaded"], false, "{sb}");
}
