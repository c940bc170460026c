//! Concurrency across workers, against the real binary with 6 workers and a new connection per
//! request: 12 simultaneous `/run_analysis` for one session compute once; uploads racing
//! analyses never let an analysis of older data pass for the current one; readers during
//! commits never see an error or a regressed state (H12); concurrent sessions stay apart (H7).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use crate::support;
use crate::support::Answer;
use crate::support::ServerBuilder;
use crate::support::{Session, fixture_wards, ward_names, wards_from};
use serde_json::{Value, json};

fn start() -> support::Server {
    let server = ServerBuilder::new().args(&["-w", "6"]).start();
    server
        .wait_workers(6, Duration::from_secs(30))
        .expect("6 workers");
    server
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn twelve_concurrent_analyses_of_one_session_compute_once() {
    let server = start();
    let s = Session::create(server.addr());
    s.upload_kano().expect(200, "upload");

    let callers = 12;
    let barrier = Arc::new(Barrier::new(callers));
    let done = Arc::new(AtomicBool::new(false));
    // A reader during the whole race: every answer is 200, and once the analysis is reported it
    // stays reported with the same id (no parse error, no regression; H12).
    let reader = {
        let (s, done) = (s.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut first_id: Option<Value> = None;
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) {
                let (_, v) = s.status();
                reads += 1;
                match &first_id {
                    Some(id) => assert_eq!(&v["analysis_id"], id, "state regressed: {v}"),
                    None if v["analysis_complete"] == true => {
                        first_id = Some(v["analysis_id"].clone());
                    }
                    None => assert!(v["analysis_id"].is_null(), "{v}"),
                }
            }
            reads
        })
    };
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let (s, barrier) = (s.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                s.run_analysis(&json!({}))
            })
        })
        .collect();
    let replies: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    done.store(true, Ordering::SeqCst);
    let reads = reader.join().unwrap();

    let mut ids = BTreeSet::new();
    let mut computed = 0;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json_body();
        ids.insert(v["analysis_id"].as_str().unwrap().to_owned());
        if v["reused"] == false {
            computed += 1;
        }
    }
    let pids = support::pids(&replies.iter().collect::<Vec<_>>());
    eprintln!(
        "12 concurrent /run_analysis: served by {} workers {pids:?}; {computed} computed; \
         {reads} status reads during the race",
        pids.len()
    );
    assert_eq!(ids.len(), 1, "several analysis ids: {ids:?}");
    assert_eq!(computed, 1, "answers claiming a fresh computation");
    assert!(pids.len() >= 2, "all 12 served by one worker: {pids:?}");
    let (_, v) = s.status();
    assert_eq!(v["analyses_started"], 1, "{v}");
    assert_eq!(v["analyses_committed"], 1, "{v}");
    assert_eq!(v["analysis_id"], ids.first().unwrap().as_str());
}

/// A new upload while analyses of the previous data are running: every analysis answer is
/// labelled with the generation whose data it analysed, and no reader ever sees an analysis of
/// one upload reported as complete for another (variables of one dataset with the other's
/// upload, in one `/session_info` snapshot).
#[test]
fn uploads_racing_analyses_never_report_another_uploads_analysis() {
    let server = start();
    let s = Session::create(server.addr());
    let kano_vars: BTreeSet<String> =
        strings(&s.upload_kano().expect(200, "upload").json_body()["available_variables"]);
    let ilorin_wards = fixture_wards("ilorin/ilorin_wards.csv");
    let kano_wards = fixture_wards("kano/kano_wards.csv");

    // generation -> "kano" | "ilorin"
    let generations: Arc<Mutex<BTreeMap<u64, &'static str>>> =
        Arc::new(Mutex::new(BTreeMap::from([(1, "kano")])));
    let done = Arc::new(AtomicBool::new(false));

    let uploader = {
        let (s, generations) = (s.clone(), Arc::clone(&generations));
        std::thread::spawn(move || {
            for i in 0..12 {
                let (which, r) = if i % 2 == 0 {
                    ("ilorin", s.upload_ilorin())
                } else {
                    ("kano", s.upload_kano())
                };
                let v = r.expect(200, "racing upload").json_body();
                let g = v["generation"].as_u64().unwrap();
                generations.lock().unwrap().insert(g, which);
            }
        })
    };
    let analysts: Vec<_> = (0..3)
        .map(|_| {
            let (s, done) = (s.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut out = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    out.push(s.run_analysis(&json!({})));
                }
                out
            })
        })
        .collect();
    let reader = {
        let (s, done) = (s.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut out = Vec::new();
            while !done.load(Ordering::SeqCst) {
                out.push(
                    s.get("/session_info")
                        .expect(200, "session_info")
                        .json_body(),
                );
            }
            out
        })
    };
    uploader.join().unwrap();
    done.store(true, Ordering::SeqCst);
    let analyses: Vec<_> = analysts
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let infos = reader.join().unwrap();
    let generations = generations.lock().unwrap().clone();

    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for r in &analyses {
        *by_status.entry(r.status).or_default() += 1;
        assert!(
            r.status == 200 || r.status == 409,
            "run_analysis during uploads: {} {}",
            r.status,
            r.text()
        );
        if r.status != 200 {
            continue;
        }
        let v = r.json_body();
        let g = v["generation"].as_u64().unwrap();
        let (own, other) = if generations[&g] == "kano" {
            (&kano_wards, &ilorin_wards)
        } else {
            (&ilorin_wards, &kano_wards)
        };
        let top: Vec<String> = v["composite"]["top_wards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["ward_name"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            wards_from(&top, own, other),
            "analysis labelled generation {g} ({}) ranks {top:?}",
            generations[&g]
        );
    }
    let mut last_generation = 0;
    for v in &infos {
        let g = v["generation"].as_u64().unwrap();
        assert!(g >= last_generation, "generation went back: {v}");
        last_generation = g;
        if v["analysis_complete"] == true {
            let available = strings(&v["available_variables"]);
            let used = strings(&v["variables_used"]);
            assert!(
                !used.is_empty() && used.is_subset(&available),
                "analysis of another upload reported for generation {g}: used {used:?}, \
                 available {available:?}"
            );
        }
    }
    eprintln!(
        "uploads racing analyses: {} analysis answers by status {by_status:?}; {} session_info reads",
        analyses.len(),
        infos.len()
    );

    // Quiet again: the current data (the last upload, Kano) analyses and ranks Kano wards.
    let last = *generations.keys().last().unwrap();
    assert_eq!(generations[&last], "kano");
    let v = s
        .run_analysis(&json!({}))
        .expect(200, "final analysis")
        .json_body();
    assert_eq!(v["generation"].as_u64(), Some(last), "{v}");
    assert!(strings(&v["variables_used"]).is_subset(&kano_vars), "{v}");
    let ranked = ward_names(&s.download("analysis_vulnerability_rankings.csv").body);
    assert!(
        wards_from(&ranked, &kano_wards, &ilorin_wards),
        "{ranked:?}"
    );
}

/// H7: sessions uploading and analysing at the same time each see only their own data.
#[test]
fn concurrent_sessions_stay_apart() {
    let server = start();
    let addr = server.addr();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            std::thread::spawn(move || {
                let s = Session::create(addr);
                let kano = i % 2 == 0;
                if kano {
                    s.upload_kano().expect(200, "upload");
                } else {
                    s.upload_ilorin().expect(200, "upload");
                }
                s.run_analysis(&json!({})).expect(200, "analysis");
                (s, kano)
            })
        })
        .collect();
    let sessions: Vec<(Session, bool)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ids: BTreeSet<&str> = sessions.iter().map(|(s, _)| s.id.as_str()).collect();
    assert_eq!(ids.len(), 6);
    let kano_wards = fixture_wards("kano/kano_wards.csv");
    let ilorin_wards = fixture_wards("ilorin/ilorin_wards.csv");
    for (s, kano) in &sessions {
        let info = s.get("/session_info").expect(200, "info").json_body();
        let want = if *kano {
            "kano_wards.csv"
        } else {
            "ilorin_wards.csv"
        };
        assert_eq!(info["csv_filename"], want, "{info}");
        let ranked = ward_names(&s.download("analysis_vulnerability_rankings.csv").body);
        let (own, other) = if *kano {
            (&kano_wards, &ilorin_wards)
        } else {
            (&ilorin_wards, &kano_wards)
        };
        assert!(
            wards_from(&ranked, own, other),
            "session {} ranks another dataset's wards: {ranked:?}",
            s.id
        );
        assert_eq!(info["analyses_started"], 1, "{info}");
    }
}
