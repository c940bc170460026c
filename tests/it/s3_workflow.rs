//! The HTTP workflow on the S3 session store (`--store s3://BUCKET/PREFIX`) against a real
//! S3-compatible server (moto_server on a loopback port, started by the harness): the real binary
//! with 6 workers; two instances (two masters, their own instance dirs) on one bucket with one
//! user's requests alternating between them; bad input answered as on local disk.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::moto::Moto;
use crate::support::{self, Answer, Body, Carry, Server, ServerBuilder, Session};

const DEADLINE: Duration = Duration::from_secs(30);

/// An instance on `s3://<bucket>/<prefix>` with its own (host-local) instance dir.
fn start_on(moto: &Moto, url: &str, workers: usize) -> (Server, TempDir) {
    let host = tempfile::tempdir().unwrap();
    let mut b = ServerBuilder::new().args(&[
        "-w".to_owned(),
        workers.to_string(),
        "--store".to_owned(),
        url.to_owned(),
        "--instance-dir".to_owned(),
        host.path().join("instance").display().to_string(),
    ]);
    for (k, v) in moto.env() {
        b = b.env(&k, &v);
    }
    let server = b.start();
    server.wait_workers(workers, DEADLINE).expect("workers up");
    (server, host)
}

fn flag(v: &Value, key: &str) -> bool {
    v[key]
        .as_bool()
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
}

fn ensure(cond: bool, why: &str) -> Result<(), String> {
    if cond { Ok(()) } else { Err(why.to_owned()) }
}

/// Upload Kano -> analysis -> population -> ITN -> downloads, map, export zip -> chat -> status,
/// across 6 workers, on S3.
#[test]
fn whole_workflow_on_s3_across_six_workers() {
    let moto = Moto::start("prefork-wf");
    let (server, host) = start_on(&moto, "s3://prefork-wf/sessions", 6);
    let s = Session::create(server.addr()).with_carry(Carry::Header);
    let mut served = BTreeSet::new();

    let up = s.upload_kano().expect(200, "upload Kano");
    served.insert(up.worker());
    let up = up.json_body();
    assert_eq!(up["generation"], 1, "{up}");
    assert_eq!(up["upload_type"], "csv_shapefile", "{up}");
    let seen = s.status_from_workers(3, DEADLINE, |v| {
        ensure(flag(v, "data_loaded"), "data_loaded false after upload")?;
        ensure(flag(v, "shapefile_loaded"), "shapefile_loaded false")?;
        ensure(!flag(v, "analysis_complete"), "analysed before analysis")
    });
    served.extend(seen.keys());

    let run = s.run_analysis(&json!({})).expect(200, "run_analysis");
    served.insert(run.worker());
    let run = run.json_body();
    let aid = run["analysis_id"].as_str().unwrap().to_owned();
    assert_eq!(run["reused"], false, "{run}");
    let seen = s.status_from_workers(4, DEADLINE, |v| {
        ensure(flag(v, "analysis_complete"), "analysis_complete false")?;
        ensure(v["analysis_id"] == aid.as_str(), "another analysis_id")?;
        ensure(v["analyses_started"] == 1, "analyses_started != 1")?;
        ensure(v["analyses_committed"] == 1, "analyses_committed != 1")
    });
    served.extend(seen.keys());
    let again = s.run_analysis(&json!({})).expect(200, "again").json_body();
    assert_eq!(again["reused"], true, "{again}");
    assert_eq!(again["analysis_id"], aid.as_str());

    s.upload_kano_population().expect(200, "population");
    let itn = s
        .plan_itn(&json!({"total_nets": 50000, "avg_household_size": 5.0}))
        .expect(200, "ITN plan")
        .json_body();
    assert_eq!(itn["analysis_id"], aid.as_str(), "{itn}");
    assert!(itn["stats"].is_object(), "{itn}");
    let map_path = itn["map_path"].as_str().unwrap().to_owned();
    s.status_from_workers(3, DEADLINE, |v| {
        ensure(flag(v, "itn_complete"), "itn_complete false after the plan")?;
        ensure(v["analyses_started"] == 1, "the ITN plan ran an analysis")
    });

    // Downloads and maps, from any worker.
    let rankings = s
        .download("analysis_vulnerability_rankings.csv")
        .expect(200, "rankings");
    assert!(rankings.body.len() > 100);
    s.download("raw_data.csv").expect(200, "raw data");
    s.download("itn_distribution_results.json")
        .expect(200, "ITN results");
    let map = s.get(&map_path).expect(200, "ITN map");
    assert!(map.header("content-type").unwrap().starts_with("text/html"));
    // The export package (a zip written to the store, served from it).
    let report = s
        .send("POST", "/generate_report", Body::Empty)
        .expect(200, "report")
        .json_body();
    let url = report["download_url"].as_str().unwrap().to_owned();
    let zip = s.get(&url).expect(200, "export zip");
    assert_eq!(&zip.body[..2], b"PK", "not a zip");
    let info = s
        .get("/session_info")
        .expect(200, "session info")
        .json_body();
    assert!(info.to_string().contains("itn"), "{info}");

    // Chat: answers from the stored analysis; the conversation is kept in the store.
    let a = support::chat::send(server.addr(), &s.id, "which ward is the most vulnerable?");
    assert!(!a.text().is_empty());
    let b = support::chat::send(server.addr(), &s.id, "how many wards are there?");
    assert!(!b.text().is_empty());
    let convs = s.get("/api/conversations").expect(200, "conversations");
    assert!(convs.text().contains(&s.id), "{}", convs.text());

    // Nothing of a session is on this host's disk: only spool, scratch and the cache.
    let uploads = host.path().join("instance/uploads");
    assert!(
        !uploads.exists() || std::fs::read_dir(&uploads).unwrap().count() == 0,
        "session folders on the host"
    );

    // Clear: a new generation with nothing in it, the old files gone.
    s.send("POST", "/clear_session", Body::Empty)
        .expect(200, "clear");
    let (_, v) = s.status();
    assert!(!flag(&v, "data_loaded"), "{v}");
    assert_eq!(s.download("raw_data.csv").status, 404);
    assert_eq!(s.get(&map_path).status, 404);

    // Chunked uploads are the one thing the S3 store does not offer: a clear JSON 501.
    let r = s.get("/upload/status?upload_id=abc");
    assert_eq!(r.status, 501, "{}", r.text());
    assert!(r.text().contains("S3"), "{}", r.text());

    eprintln!(
        "FIGURE s3 workflow served by {} distinct workers of 6",
        served.len()
    );
    assert!(served.len() >= 3, "{served:?}");
}

/// Two instances (two masters, own instance dirs) on one bucket; one user's requests alternate
/// between them. Concurrent analyses from both: computed once per generation; chat turns from
/// both: none lost.
#[test]
fn two_instances_on_one_bucket_alternate_requests() {
    let moto = Moto::start("prefork-two");
    let url = "s3://prefork-two/shared";
    let (a, _ha) = start_on(&moto, url, 2);
    let (b, _hb) = start_on(&moto, url, 2);
    let sa = Session::create(a.addr()).with_carry(Carry::Header);
    let sb = Session {
        addr: b.addr(),
        ..sa.clone()
    };

    for generation in 1..=2u64 {
        // Upload on one instance, analyse from both at once.
        let up = if generation == 1 {
            sa.upload_kano()
        } else {
            sb.upload_ilorin()
        };
        assert_eq!(
            up.expect(200, "upload").json_body()["generation"],
            generation
        );
        let mut runners = Vec::new();
        for i in 0..8 {
            let s = if i % 2 == 0 { sa.clone() } else { sb.clone() };
            runners.push(std::thread::spawn(move || s.run_analysis(&json!({}))));
        }
        let answers: Vec<Value> = runners
            .into_iter()
            .map(|t| t.join().unwrap().expect(200, "run_analysis").json_body())
            .collect();
        let ids: BTreeSet<_> = answers
            .iter()
            .map(|v| v["analysis_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 1, "one analysis per generation: {answers:?}");
        let fresh = answers.iter().filter(|v| v["reused"] == false).count();
        assert_eq!(fresh, 1, "computed once: {answers:?}");
        for s in [&sa, &sb] {
            let (_, v) = s.status();
            assert_eq!(v["generation"], generation, "{v}");
            assert_eq!(v["analyses_started"], generation, "{v}");
            assert_eq!(v["analyses_committed"], generation, "{v}");
            assert_eq!(v["analysis_id"], ids.iter().next().unwrap().as_str(), "{v}");
        }
        if generation == 1 {
            // Population on one instance, ITN on the other: it sees the analysis and the
            // population, and runs no analysis.
            sa.upload_kano_population().expect(200, "population");
            let itn = sb
                .plan_itn(&json!({"total_nets": 40000}))
                .expect(200, "ITN")
                .json_body();
            assert_eq!(itn["analysis_id"], ids.iter().next().unwrap().as_str());
            let (_, v) = sa.status();
            assert!(flag(&v, "itn_complete"), "{v}");
            assert_eq!(v["analyses_started"], 1, "{v}");
        }
    }

    // Chat turns alternating between the instances, some at once: no turn lost.
    let mut turns = Vec::new();
    for i in 0..6 {
        let (addr, id) = if i % 2 == 0 {
            (a.addr(), sa.id.clone())
        } else {
            (b.addr(), sb.id.clone())
        };
        turns.push(std::thread::spawn(move || {
            support::chat::send(addr, &id, &format!("how many wards are there? ({i})"))
        }));
    }
    for t in turns {
        t.join().unwrap();
    }
    let resumed = sa
        .send(
            "POST",
            &format!("/api/conversations/{}/resume", sa.id),
            Body::Empty,
        )
        .expect(200, "resume")
        .json_body();
    let text = resumed.to_string();
    for i in 0..6 {
        assert!(text.contains(&format!("({i})")), "turn {i} lost: {resumed}");
    }
}

/// Bad input on S3 behaves as on local disk: a JSON error, nothing partial visible.
#[test]
fn bad_input_on_s3_is_refused_and_leaves_the_session_as_it_was() {
    let moto = Moto::start("prefork-bad");
    let (server, _host) = start_on(&moto, "s3://prefork-bad/p", 2);
    let s = Session::create(server.addr()).with_carry(Carry::Header);
    s.upload_kano().expect(200, "upload");
    let (_, before) = s.status();

    // Not a table; a shapefile that is not a zip; an unknown session.
    let r = s.upload(("wards.csv", b"\x00\x01\x02 not a table"), None);
    assert!(r.status >= 400 && r.status < 500, "{}", r.text());
    assert_eq!(r.json_body()["status"], "error", "{}", r.text());
    let csv = support::fixture("kano/kano_wards.csv");
    let r = s.upload(("wards.csv", &csv), Some(("shapes.zip", b"not a zip")));
    assert!(r.status >= 400 && r.status < 500, "{}", r.text());
    assert_eq!(r.json_body()["status"], "error");
    let (_, after) = s.status();
    assert_eq!(before, after, "a refused upload changed the session");

    let ghost = Session {
        id: "0123456789abcdef0123456789abcdef".to_owned(),
        ..s.clone()
    };
    let r = ghost.run_analysis(&json!({}));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json_body()["status"], "error");
    let r = ghost.get("/api/session/status");
    assert_eq!(r.status, 404, "{}", r.text());

    // ITN before any analysis: 409, nothing stored.
    let r = s.plan_itn(&json!({"total_nets": 1000}));
    assert_eq!(r.status, 409, "{}", r.text());
    let (_, now) = s.status();
    assert!(!flag(&now, "itn_complete"), "{now}");
    assert_eq!(s.download("itn_distribution_results.json").status, 404);

    // Bad analysis request (unknown variable): a JSON error, no analysis committed.
    let r = s.run_analysis(&json!({"selected_variables": ["no_such_variable"]}));
    assert!(r.status >= 400 && r.status < 500, "{}", r.text());
    let (_, now) = s.status();
    assert!(!flag(&now, "analysis_complete"), "{now}");
    assert_eq!(now["analyses_committed"], 0, "{now}");
}

/// `--check-config` with a store: lists the bucket; an unknown bucket or a bad URL is one
/// `Error:` line naming the setting and its value, exit 1.
#[test]
fn check_config_validates_the_store() {
    let moto = Moto::start("prefork-cc");
    let host = tempfile::tempdir().unwrap();
    let run = |url: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_prefork"));
        cmd.args(["--check-config", "--store", url, "--instance-dir"])
            .arg(host.path().join("instance"))
            .current_dir(host.path());
        for (k, v) in moto.env() {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run("s3://prefork-cc/p");
    assert_eq!(code, Some(0), "{err}");
    for bad in ["s3://no-such-bucket/p", "https://prefork-cc/p", "s3:///p"] {
        let (code, err) = run(bad);
        assert_eq!(code, Some(1), "{bad}: {err}");
        assert!(err.starts_with("Error: store = "), "{bad}: {err}");
        assert!(err.contains(bad), "{bad}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{bad}: {err}");
    }
    // A check creates nothing on the host.
    assert!(!host.path().join("instance").exists());
}
