//! Crash consistency of the workflow against the real binary (6 workers): a worker aborts
//! (like SIGKILL: no destructors, no unlocks) at each named point of the session commit
//! protocols (`MRPT_FAULT=<point>`, compiled in by the `fault-injection` feature). Then no worker
//! reports a partial or stale analysis, upload or ITN plan, the files served are complete, and
//! the next run on a server without the fault succeeds.
//!
//! One instance directory holds one session per crash point. Phase 1 prepares them on a clean
//! server; phase 2 starts a server with one fault at a time and triggers it; phase 3 checks and
//! finishes every session on a clean server again. The env var is inherited by respawned
//! workers, hence a fresh server per point rather than a respawned worker.

// Without the feature the crash points are compiled out; `scripts/test` enables it (test-hooks).
#![cfg(feature = "fault-injection")]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support;
use crate::support::Answer;
use crate::support::{Server, ServerBuilder};
use crate::support::{Session, fixture, fixture_wards, ward_names, wards_from};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    /// Analysis of a new (Ilorin) upload that follows an analysed and planned Kano upload.
    Analysis,
    /// A new (Ilorin) upload over an analysed and planned Kano upload.
    Upload,
    /// An ITN plan over an analysed Kano upload with population.
    Itn,
}

struct Case {
    point: &'static str,
    action: Action,
    /// Whether the crash comes after the commit point (the manifest write).
    committed: bool,
}

const CASES: [Case; 11] = [
    Case {
        point: "analysis-started",
        action: Action::Analysis,
        committed: false,
    },
    Case {
        point: "analysis-after-first-output",
        action: Action::Analysis,
        committed: false,
    },
    Case {
        point: "analysis-before-commit",
        action: Action::Analysis,
        committed: false,
    },
    Case {
        point: "analysis-after-data-rename",
        action: Action::Analysis,
        committed: false,
    },
    Case {
        point: "analysis-after-manifest",
        action: Action::Analysis,
        committed: true,
    },
    Case {
        point: "analysis-mid-publish",
        action: Action::Analysis,
        committed: true,
    },
    Case {
        point: "upload-after-first-input",
        action: Action::Upload,
        committed: false,
    },
    Case {
        point: "upload-before-commit",
        action: Action::Upload,
        committed: false,
    },
    Case {
        point: "upload-after-manifest",
        action: Action::Upload,
        committed: true,
    },
    Case {
        point: "itn-before-commit",
        action: Action::Itn,
        committed: false,
    },
    Case {
        point: "itn-after-manifest",
        action: Action::Itn,
        committed: true,
    },
];

/// Analysis outputs by their api.md names: none may sit in the folder of an unanalysed upload.
const ANALYSIS_FILES: [&str; 14] = [
    "unified_dataset.geoparquet",
    "unified_dataset.csv",
    "analysis_vulnerability_rankings.csv",
    "analysis_vulnerability_rankings_pca.csv",
    "analysis_cleaned_data.csv",
    "analysis_normalized_data.csv",
    "analysis_composite_scores.csv",
    "composite_scores.csv",
    "model_formulas.csv",
    "analysis_pca_scores.csv",
    "pca_variable_importance.json",
    "pca_explained_variance.json",
    "unified_variable_metadata.json",
    "itn_distribution_results.json",
];

/// What phase 1 left in a session, before its crash.
struct Prepared {
    session: Session,
    kano_analysis: String,
    itn_map: Option<String>,
    manifest: Vec<u8>,
}

fn server(instance: &Path, fault: Option<&str>) -> Server {
    let dir = instance.display().to_string();
    let mut b = ServerBuilder::new().args(&["-w", "6", "--instance-dir", &dir]);
    if let Some(point) = fault {
        b = b.env("MRPT_FAULT", point);
    }
    let s = b.start();
    s.wait_workers(6, DEADLINE).expect("6 workers");
    s
}

fn on(server: &Server, s: &Session) -> Session {
    Session {
        addr: server.addr(),
        ..s.clone()
    }
}

fn folder(instance: &Path, s: &Session) -> PathBuf {
    instance.join("uploads").join(&s.id)
}

fn flag(v: &Value, k: &str) -> bool {
    v[k].as_bool().unwrap_or_else(|| panic!("{k} missing: {v}"))
}

fn ensure(cond: bool, why: String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(why) }
}

fn act(s: &Session, action: Action) -> Result<support::Reply, support::Failure> {
    match action {
        Action::Analysis => s.try_send(
            "POST",
            "/run_analysis",
            support::Body::Sized("application/json", b"{}"),
        ),
        Action::Upload => {
            let csv = fixture("ilorin/ilorin_wards.csv");
            let shp = fixture("ilorin/ilorin_wards_shapefile.zip");
            let (ct, body) = support::multipart(&[
                support::Part::file("csv_file", "ilorin_wards.csv", &csv),
                support::Part::file("shapefile", "ilorin_wards_shapefile.zip", &shp),
            ]);
            s.try_send(
                "POST",
                "/upload_both_files",
                support::Body::Sized(&ct, &body),
            )
        }
        Action::Itn => s.try_send(
            "POST",
            "/api/itn/update-distribution",
            support::Body::Sized("application/json", br#"{"total_nets": 50000}"#),
        ),
    }
}

/// Every result file the session lists is served whole: non-empty, and the rankings rank the
/// wards of the current data, every one of them.
fn check_served_results(s: &Session, own: &str, other: &str, wards: usize) {
    let info = s
        .get("/session_info")
        .expect(200, "session_info")
        .json_body();
    for f in info["files"].as_array().unwrap() {
        let name = f.as_str().unwrap();
        if ANALYSIS_FILES.contains(&name) {
            let r = s.download(name);
            assert_eq!(r.status, 200, "{name} listed but not served: {}", r.text());
            assert!(!r.body.is_empty(), "{name} served empty");
        }
    }
    let ranked = ward_names(&s.download("analysis_vulnerability_rankings.csv").body);
    assert_eq!(ranked.len(), wards, "partial rankings: {ranked:?}");
    assert!(
        wards_from(&ranked, &fixture_wards(own), &fixture_wards(other)),
        "rankings of other data: {ranked:?}"
    );
}

#[test]
fn a_worker_dying_at_any_commit_point_leaves_a_consistent_session() {
    let tmp = tempfile::tempdir().unwrap();
    let instance = tmp.path().join("instance");
    let ilorin_rows = ward_names(&fixture("ilorin/ilorin_wards.csv")).len();
    let kano_csv = fixture("kano/kano_wards.csv");
    let ilorin_csv = fixture("ilorin/ilorin_wards.csv");

    // Phase 1: a clean server prepares one session per crash point.
    let mut prepared = Vec::new();
    {
        let clean = server(&instance, None);
        for case in &CASES {
            let s = Session::create(clean.addr());
            s.upload_kano().expect(200, "upload Kano");
            let aid = s
                .run_analysis(&json!({}))
                .expect(200, "analysis")
                .json_body()["analysis_id"]
                .as_str()
                .unwrap()
                .to_owned();
            s.upload_kano_population().expect(200, "population");
            let mut itn_map = None;
            if case.action != Action::Itn {
                let itn = s.plan_itn(&json!({"total_nets": 50000})).expect(200, "ITN");
                itn_map = Some(itn.json_body()["map_path"].as_str().unwrap().to_owned());
            }
            if case.action == Action::Analysis {
                s.upload_ilorin().expect(200, "upload Ilorin");
            }
            let manifest = std::fs::read(folder(&instance, &s).join("manifest.json")).unwrap();
            prepared.push(Prepared {
                session: s,
                kano_analysis: aid,
                itn_map,
                manifest,
            });
        }
    }

    // Phase 2: one server per crash point; the request that reaches it kills its worker.
    for (case, p) in CASES.iter().zip(&prepared) {
        let point = case.point;
        let faulty = server(&instance, Some(point));
        let s = on(&faulty, &p.session);
        match act(&s, case.action) {
            Err(_) => {}
            Ok(r) => assert!(
                r.status >= 500,
                "{point}: the request survived the crash point: {} {}",
                r.status,
                r.text()
            ),
        }
        assert!(
            faulty.wait_for_nth(DEADLINE, "Booting worker with pid:", 7),
            "{point}: no worker died and was replaced"
        );
        let dir = folder(&instance, &s);

        match (case.action, case.committed) {
            (Action::Analysis, false) => {
                s.status_from_workers(4, DEADLINE, |v| {
                    ensure(v["generation"] == 2, format!("{point}: generation"))?;
                    ensure(
                        !flag(v, "analysis_complete") && v["analysis_id"].is_null(),
                        format!("{point}: an analysis is reported"),
                    )?;
                    ensure(!flag(v, "itn_complete"), format!("{point}: ITN reported"))?;
                    ensure(
                        v["analyses_committed"] == 1,
                        format!("{point}: analyses_committed"),
                    )
                });
                assert_eq!(
                    s.download("analysis_vulnerability_rankings.csv").status,
                    404,
                    "{point}: rankings served"
                );
                for name in ANALYSIS_FILES {
                    assert!(
                        !dir.join(name).exists(),
                        "{point}: {name} in the folder of an unanalysed upload"
                    );
                }
                let r = s.plan_itn(&json!({"total_nets": 50000}));
                assert_eq!(r.status, 409, "{point}: ITN without analysis: {}", r.text());
            }
            (Action::Analysis, true) => {
                let seen = s.status_from_workers(4, DEADLINE, |v| {
                    ensure(v["generation"] == 2, format!("{point}: generation"))?;
                    ensure(
                        flag(v, "analysis_complete"),
                        format!("{point}: committed analysis not reported"),
                    )?;
                    ensure(
                        v["analysis_id"] != p.kano_analysis.as_str(),
                        format!("{point}: the old analysis is reported"),
                    )
                });
                let ids: std::collections::BTreeSet<String> = seen
                    .values()
                    .map(|v| v["analysis_id"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(ids.len(), 1, "{point}: {ids:?}");
                check_served_results(
                    &s,
                    "ilorin/ilorin_wards.csv",
                    "kano/kano_wards.csv",
                    ilorin_rows,
                );
            }
            (Action::Upload, false) => {
                let after = std::fs::read(dir.join("manifest.json")).unwrap();
                assert!(
                    after == p.manifest,
                    "{point}: the manifest changed on a failed upload"
                );
                s.status_from_workers(4, DEADLINE, |v| {
                    ensure(
                        v["generation"] == 1
                            && v["analysis_id"] == p.kano_analysis.as_str()
                            && flag(v, "itn_complete"),
                        format!("{point}: the previous generation changed"),
                    )
                });
                let raw = s.download("raw_data.csv").expect(200, "raw data");
                assert!(raw.body == kano_csv, "{point}: raw_data.csv changed");
                let map = p.itn_map.as_deref().unwrap();
                assert_eq!(s.get(map).status, 200, "{point}: the ITN map is gone");
            }
            (Action::Upload, true) => {
                s.status_from_workers(4, DEADLINE, |v| {
                    ensure(v["generation"] == 2, format!("{point}: generation"))?;
                    ensure(
                        flag(v, "data_loaded")
                            && !flag(v, "analysis_complete")
                            && v["analysis_id"].is_null()
                            && !flag(v, "itn_complete"),
                        format!("{point}: the old analysis or plan is reported"),
                    )
                });
                let raw = s.download("raw_data.csv").expect(200, "raw data");
                assert!(
                    raw.body == ilorin_csv,
                    "{point}: raw_data.csv is not the new upload"
                );
                assert_eq!(
                    s.download("analysis_vulnerability_rankings.csv").status,
                    404,
                    "{point}: old rankings served for the new upload"
                );
                let r = s.plan_itn(&json!({"total_nets": 50000}));
                assert_eq!(r.status, 409, "{point}: ITN on old results: {}", r.text());
            }
            (Action::Itn, false) => {
                s.status_from_workers(4, DEADLINE, |v| {
                    ensure(
                        flag(v, "analysis_complete") && !flag(v, "itn_complete"),
                        format!("{point}: an uncommitted plan is reported"),
                    )
                });
                assert_eq!(
                    s.download("itn_distribution_results.json").status,
                    404,
                    "{point}: uncommitted plan served"
                );
            }
            (Action::Itn, true) => {
                s.status_from_workers(4, DEADLINE, |v| {
                    ensure(
                        flag(v, "itn_complete") && v["analysis_id"] == p.kano_analysis.as_str(),
                        format!("{point}: the committed plan is not reported"),
                    )
                });
                let doc = s
                    .download("itn_distribution_results.json")
                    .expect(200, "ITN results")
                    .json_body();
                assert_eq!(doc["analysis_id"], p.kano_analysis.as_str(), "{point}");
            }
        }
        drop(faulty);
    }

    // Phase 3: a clean server on the same instance dir finishes every session.
    let clean = server(&instance, None);
    for (case, p) in CASES.iter().zip(&prepared) {
        let point = case.point;
        let s = on(&clean, &p.session);
        let (_, before) = s.status();
        match case.action {
            Action::Analysis | Action::Upload => {
                if case.action == Action::Upload && !case.committed {
                    s.upload_ilorin().expect(200, "upload after the crash");
                }
                let run = s
                    .run_analysis(&json!({}))
                    .expect(200, &format!("{point}: analysis after the crash"))
                    .json_body();
                assert_eq!(
                    run["reused"],
                    case.committed && case.action == Action::Analysis,
                    "{point}: {run}"
                );
                if case.action == Action::Analysis && case.committed {
                    assert_eq!(run["analysis_id"], before["analysis_id"], "{point}");
                }
                check_served_results(
                    &s,
                    "ilorin/ilorin_wards.csv",
                    "kano/kano_wards.csv",
                    ilorin_rows,
                );
                s.upload_population(
                    "population.csv",
                    &population_for(&ward_names(&fixture("ilorin/ilorin_wards.csv"))),
                )
                .expect(200, "population");
            }
            Action::Itn => {}
        }
        let itn = s
            .plan_itn(&json!({"total_nets": 50000}))
            .expect(200, &format!("{point}: ITN after the crash"))
            .json_body();
        s.status_from_workers(3, DEADLINE, |v| {
            ensure(
                flag(v, "analysis_complete")
                    && flag(v, "itn_complete")
                    && v["analysis_id"] == itn["analysis_id"],
                format!("{point}: final state"),
            )
        });
        assert!(
            !folder(&instance, &s).join(".staging").exists()
                || std::fs::read_dir(folder(&instance, &s).join(".staging"))
                    .unwrap()
                    .flatten()
                    .all(|e| !e.file_name().to_string_lossy().starts_with("a-")),
            "{point}: a dead analysis's staging survived the next analysis"
        );
    }
}

/// A WardName,Population table for the given wards.
fn population_for(wards: &[String]) -> Vec<u8> {
    let mut out = String::from("WardName,Population\n");
    for (i, w) in wards.iter().enumerate() {
        out.push_str(&format!("{w},{}\n", 1000 + 10 * i));
    }
    out.into_bytes()
}

/// A worker that dies right after an upload's commit point (the manifest write) leaves the
/// previous generation's derived files behind: its maps under `visualizations/` are still served
/// at their old URLs, and its analysis and ITN mirrors stay in the folder root (where the
/// Python-era tools and the folder contract of api.md look) next to a manifest that says "new
/// data, not analysed". The session README promises that a new upload removes both.
#[test]
fn a_worker_dying_after_an_upload_commit_leaves_no_maps_or_mirrors_of_the_old_data() {
    let tmp = tempfile::tempdir().unwrap();
    let instance = tmp.path().join("instance");
    let (s, map) = {
        let clean = server(&instance, None);
        let s = Session::create(clean.addr());
        s.upload_kano().expect(200, "upload Kano");
        s.run_analysis(&json!({})).expect(200, "analysis");
        s.upload_kano_population().expect(200, "population");
        let itn = s.plan_itn(&json!({"total_nets": 50000})).expect(200, "ITN");
        (s, itn.json_body()["map_path"].as_str().unwrap().to_owned())
    };
    let faulty = server(&instance, Some("upload-after-manifest"));
    let s = on(&faulty, &s);
    assert!(act(&s, Action::Upload).map_or(true, |r| r.status >= 500));
    assert!(faulty.wait_for_nth(DEADLINE, "Booting worker with pid:", 7));
    drop(faulty);

    let clean = server(&instance, None);
    let s = on(&clean, &s);
    let (_, v) = s.status();
    assert_eq!(
        (&v["generation"], &v["analysis_complete"]),
        (&json!(2), &json!(false)),
        "{v}"
    );
    let dir = folder(&instance, &s);
    let stale: Vec<&str> = ANALYSIS_FILES
        .iter()
        .copied()
        .filter(|n| dir.join(n).exists())
        .collect();
    let map_status = s.get(&map).status;
    let raw_mirror_is_new =
        std::fs::read(dir.join("raw_data.csv")).ok() == Some(fixture("ilorin/ilorin_wards.csv"));
    assert!(
        stale.is_empty() && map_status == 404 && raw_mirror_is_new,
        "after the new upload committed: the old ITN map answers {map_status}; the folder root \
         still holds the old analysis/ITN files {stale:?}; its raw_data.csv is the new upload: \
         {raw_mirror_is_new}"
    );
}
