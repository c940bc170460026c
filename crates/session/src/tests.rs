//! Behaviour tests of the whole crate: single-process protocol tests, and multi-process tests
//! that re-execute this test binary as child workers (role chosen by `MRPT_SESSION_CHILD`), with
//! crash points from `crate::fault`.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::*;
// The local backend itself (the facade `crate::Store` is tested over HTTP and in backend.rs).
#[allow(unused_imports)]
use crate::store::{Store, Upload};

mod chunks;
mod lifecycle;
mod object_model;
mod shared_dir;
mod tpr;

// ---- fixtures ---------------------------------------------------------------------------------

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn upload(store: &Store, id: &SessionId, csv: &str) -> u64 {
    let mut up = store.begin_upload(id).unwrap();
    up.write(&Artifact::RawCsv, csv.as_bytes()).unwrap();
    up.write(&Artifact::RawShapefile, b"zip bytes").unwrap();
    store
        .commit_upload(
            up,
            UploadInfo {
                upload_type: String::new(),
                info: json!({"rows": 1}),
            },
        )
        .unwrap()
}

/// A stand-in for the pipeline whose outputs are derived from the uploaded CSV, so a test can
/// tell which generation's data a file came from.
fn fake_pipeline(inputs: &AnalysisInputs, staging: &AnalysisStaging) -> Result<AnalysisResult> {
    let csv = String::from_utf8(inputs.read(&Artifact::RawCsv)?.unwrap_or_default()).unwrap();
    staging.write(&Artifact::Rankings, format!("rankings of {csv}").as_bytes())?;
    staging.write(&Artifact::CleanedData, format!("cleaned {csv}").as_bytes())?;
    staging.write(&Artifact::UnifiedCsv, format!("unified {csv}").as_bytes())?;
    staging.write(&Artifact::RankingsPca, format!("pca of {csv}").as_bytes())?;
    Ok(AnalysisResult {
        variables_used: vec!["tpr".into(), "rainfall".into()],
        summary: json!({"top": csv}),
    })
}

fn analyse(store: &Store, id: &SessionId, request: &AnalysisRequest) -> AnalysisOutcome {
    store.run_analysis_once(id, request, fake_pipeline).unwrap()
}

fn read_string(store: &Store, id: &SessionId, artifact: &Artifact) -> Result<String> {
    store
        .read_artifact(id, artifact)
        .map(|b| String::from_utf8(b).unwrap())
}

fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---- ids and sessions -------------------------------------------------------------------------

#[test]
fn unknown_and_malformed_ids_are_rejected_without_creating_folders() {
    let (dir, store) = store();
    let minted = store.create_session().unwrap();
    assert_eq!(store.session(minted.as_str()).unwrap(), minted);

    let unknown = "0123456789abcdef0123456789abcdef";
    assert!(matches!(
        store.session(unknown),
        Err(Error::SessionNotFound(_))
    ));
    let id = SessionId::parse(unknown).unwrap();
    assert!(matches!(store.status(&id), Err(Error::SessionNotFound(_))));
    assert!(matches!(
        store.begin_upload(&id),
        Err(Error::SessionNotFound(_))
    ));
    assert!(matches!(
        store.run_analysis_once(&id, &AnalysisRequest::default(), fake_pipeline),
        Err(RunError::Session(Error::SessionNotFound(_)))
    ));
    assert!(matches!(
        store.update_conversation(&id, |_| json!([])),
        Err(Error::SessionNotFound(_))
    ));
    for bad in [
        "../../etc",
        "..",
        "0123456789ABCDEF0123456789ABCDEF",
        "abc",
        "/tmp/x",
        "0123456789abcdef0123456789abcde/",
    ] {
        assert!(
            matches!(store.session(bad), Err(Error::MalformedSessionId)),
            "{bad}"
        );
    }
    let folders: Vec<_> = fs::read_dir(dir.path().join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(folders, vec![std::ffi::OsString::from(minted.as_str())]);
    assert!(!dir.path().join("etc").exists());
}

#[test]
fn the_uploaded_table_is_read_back_as_stored_csv_or_excel() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    assert_eq!(store.read_uploaded_table(&id).unwrap(), None);
    upload(&store, &id, "WardName\nDala\n");
    let table = store.read_uploaded_table(&id).unwrap().unwrap();
    assert_eq!(table.artifact, Artifact::RawCsv);
    assert_eq!(table.bytes, b"WardName\nDala\n");
    let inputs_csv = store
        .run_analysis_once(&id, &AnalysisRequest::default(), |inputs, staging| {
            let t = inputs.uploaded_table()?.unwrap();
            staging.write(&Artifact::Rankings, &t.bytes)?;
            Ok::<_, Error>(AnalysisResult::default())
        })
        .unwrap();
    assert!(!inputs_csv.reused);

    // A new upload stored as a workbook replaces the CSV.
    let mut up = store.begin_upload(&id).unwrap();
    up.write(&Artifact::RawXlsx, b"PK\x03\x04 workbook")
        .unwrap();
    store.commit_upload(up, UploadInfo::default()).unwrap();
    let table = store.read_uploaded_table(&id).unwrap().unwrap();
    assert_eq!(table.artifact, Artifact::RawXlsx);
    assert_eq!(table.bytes, b"PK\x03\x04 workbook");
}

#[test]
fn runtime_directories_are_made_under_run_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let made = create_runtime_dir(dir.path(), "metrics").unwrap();
    assert_eq!(made, dir.path().join("run").join("metrics"));
    assert_eq!(made, runtime_dir(dir.path(), "metrics"));
    assert!(made.is_dir());
    for bad in ["", "..", "a/b/c", "/tmp", ".hidden"] {
        assert!(create_runtime_dir(dir.path(), bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_file_named_like_a_session_is_not_a_session() {
    let (dir, store) = store();
    let name = "00000000000000000000000000000000";
    fs::write(dir.path().join("uploads").join(name), b"x").unwrap();
    assert!(matches!(
        store.session(name),
        Err(Error::SessionNotFound(_))
    ));
}

// ---- upload, analysis, ITN, clear ----------------------------------------------------------

#[test]
fn workflow_state_is_derived_from_disk() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    let s = store.status(&id).unwrap();
    assert!(!s.data_loaded && !s.analysis_complete && !s.itn_complete && s.analysis_id.is_none());
    assert!(matches!(
        store.run_analysis_once(&id, &AnalysisRequest::default(), fake_pipeline),
        Err(RunError::Session(Error::NoData(_)))
    ));

    let g1 = upload(&store, &id, "kano");
    let s = store.status(&id).unwrap();
    assert!(s.data_loaded && s.csv_loaded && s.shapefile_loaded && !s.analysis_complete);
    assert_eq!(
        (s.generation, s.upload_type.as_deref()),
        (g1, Some("csv_shapefile"))
    );
    assert_eq!(s.upload_info, json!({"rows": 1}));

    let first = analyse(&store, &id, &AnalysisRequest::default());
    assert!(!first.reused);
    let s = store.status(&id).unwrap();
    assert!(s.analysis_complete && !s.itn_complete);
    assert_eq!(s.analysis_id.as_deref(), Some(first.analysis_id.as_str()));
    assert_eq!(s.variables_used, ["tpr", "rainfall"]);
    assert_eq!(
        read_string(&store, &id, &Artifact::Rankings).unwrap(),
        "rankings of kano"
    );
    assert!(
        s.files
            .contains(&"analysis_vulnerability_rankings.csv".to_owned())
    );

    // Mirrors under the api.md names for older tools.
    let dir = store.session_dir(&id).unwrap();
    assert_eq!(
        fs::read_to_string(dir.join("analysis_vulnerability_rankings.csv")).unwrap(),
        "rankings of kano"
    );
    assert_eq!(fs::read(dir.join("raw_data.csv")).unwrap(), b"kano");

    // ITN for the current analysis.
    let map = Artifact::Visualization(RelPath::parse("itn_map.html").unwrap());
    let itn = store
        .commit_itn(
            &id,
            &first.analysis_id,
            &json!({"stats": {"total_nets": 10000}}),
            &[(map.clone(), b"<html>".as_slice())],
        )
        .unwrap();
    assert_eq!(store.list_visualizations(&id).unwrap(), ["itn_map.html"]);
    assert_eq!(itn.analysis_id, first.analysis_id);
    assert!(store.status(&id).unwrap().itn_complete);
    let doc: Value =
        serde_json::from_slice(&store.read_artifact(&id, &Artifact::ItnResults).unwrap()).unwrap();
    assert_eq!(doc["analysis_id"], json!(first.analysis_id));
    assert_eq!(doc["stats"]["total_nets"], json!(10000));

    // A new upload: nothing of the old analysis counts, or can be read, or is mirrored.
    let g2 = upload(&store, &id, "niger");
    assert_eq!(g2, g1 + 1);
    let s = store.status(&id).unwrap();
    assert!(s.data_loaded && !s.analysis_complete && !s.itn_complete && s.analysis_id.is_none());
    assert!(matches!(
        store.read_artifact(&id, &Artifact::Rankings),
        Err(Error::ArtifactNotFound(_))
    ));
    assert!(matches!(
        store.read_artifact(&id, &Artifact::ItnResults),
        Err(Error::ArtifactNotFound(_))
    ));
    assert!(!dir.join("analysis_vulnerability_rankings.csv").exists());
    assert!(!dir.join("itn_distribution_results.json").exists());
    assert!(store.list_visualizations(&id).unwrap().is_empty());
    assert!(matches!(
        store.commit_itn(
            &id,
            &first.analysis_id,
            &json!({}),
            &[(map, b"old".as_slice())]
        ),
        Err(Error::StaleAnalysis { current: None, .. })
    ));
    assert!(
        store.list_visualizations(&id).unwrap().is_empty(),
        "no map for a stale plan"
    );

    let second = analyse(&store, &id, &AnalysisRequest::default());
    assert_ne!(second.analysis_id, first.analysis_id);
    assert_eq!(
        read_string(&store, &id, &Artifact::Rankings).unwrap(),
        "rankings of niger"
    );

    // Clear (H9): reports no data at once; the id stays valid but empty.
    store
        .update_conversation(&id, |_| json!(["hello"]))
        .unwrap();
    store.clear_session(&id).unwrap();
    let s = store.status(&id).unwrap();
    assert!(!s.data_loaded && !s.analysis_complete && !s.itn_complete && s.files.is_empty());
    assert!(store.read_conversation(&id).unwrap().is_none());
    for name in [
        "raw_data.csv",
        "analysis_vulnerability_rankings.csv",
        "unified_dataset.csv",
    ] {
        assert!(!dir.join(name).exists(), "{name}");
    }
    assert_eq!(fs::read_dir(dir.join(".data")).unwrap().count(), 0);
}

#[test]
fn reuse_force_and_different_variables() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let auto = analyse(&store, &id, &AnalysisRequest::default());
    let again = analyse(&store, &id, &AnalysisRequest::default());
    assert!(again.reused);
    assert_eq!(again.analysis_id, auto.analysis_id);
    assert_eq!(again.summary, json!({"top": "kano"}));

    // Asking explicitly for the variables the automatic run used is the same request.
    let same = AnalysisRequest {
        variables: Some(vec!["tpr".into(), "rainfall".into()]),
        ..Default::default()
    };
    assert!(analyse(&store, &id, &same).reused);

    let other = AnalysisRequest {
        variables: Some(vec!["tpr".into()]),
        ..Default::default()
    };
    let changed = analyse(&store, &id, &other);
    assert!(!changed.reused);
    assert_ne!(changed.analysis_id, auto.analysis_id);
    assert!(analyse(&store, &id, &other).reused);

    let forced = analyse(
        &store,
        &id,
        &AnalysisRequest {
            force: true,
            ..other.clone()
        },
    );
    assert!(!forced.reused);
    assert_ne!(forced.analysis_id, changed.analysis_id);

    let options = AnalysisRequest {
        options: json!({"method": "pca"}),
        ..other
    };
    assert!(!analyse(&store, &id, &options).reused);

    let s = store.status(&id).unwrap();
    assert_eq!((s.analyses_started, s.analyses_committed), (4, 4));
}

#[test]
fn a_failed_computation_stores_nothing() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let good = analyse(&store, &id, &AnalysisRequest::default());
    let failed = store.run_analysis_once(
        &id,
        &AnalysisRequest {
            force: true,
            ..Default::default()
        },
        |_, staging| {
            staging.write(&Artifact::Rankings, b"half").unwrap();
            Err::<AnalysisResult, &str>("no numeric columns")
        },
    );
    assert!(matches!(
        failed,
        Err(RunError::Compute("no numeric columns"))
    ));
    let s = store.status(&id).unwrap();
    assert_eq!(s.analysis_id.as_deref(), Some(good.analysis_id.as_str()));
    assert_eq!(
        read_string(&store, &id, &Artifact::Rankings).unwrap(),
        "rankings of kano"
    );
    assert_eq!(
        fs::read_dir(store.session_dir(&id).unwrap().join(".staging"))
            .unwrap()
            .count(),
        0
    );
    // Outputs without any of the four evidence files never count as an analysis.
    let partial: Result<_, RunError<Error>> = store.run_analysis_once(
        &id,
        &AnalysisRequest {
            force: true,
            ..Default::default()
        },
        |_, staging| {
            staging.write(&Artifact::CleanedData, b"cleaned")?;
            Ok(AnalysisResult::default())
        },
    );
    assert!(matches!(
        partial,
        Err(RunError::Session(Error::IncompleteAnalysis))
    ));
    assert_eq!(
        store.status(&id).unwrap().analysis_id,
        Some(good.analysis_id)
    );
}

#[test]
fn an_analysis_cannot_write_inputs_and_an_upload_cannot_write_outputs() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    let mut up = store.begin_upload(&id).unwrap();
    assert!(matches!(
        up.write(&Artifact::Rankings, b"x"),
        Err(Error::WrongArtifactKind { .. })
    ));
    // An upload with no data file is refused and the session stays empty.
    up.write(&Artifact::RawShapefile, b"zip").unwrap();
    assert!(matches!(
        store.commit_upload(up, UploadInfo::default()),
        Err(Error::NoData(_))
    ));
    assert!(!store.status(&id).unwrap().shapefile_loaded);
    upload(&store, &id, "kano");
    let r = store.run_analysis_once(&id, &AnalysisRequest::default(), |_, staging| {
        staging
            .write(&Artifact::RawCsv, b"evil")
            .map(|_| AnalysisResult::default())
    });
    assert!(matches!(
        r,
        Err(RunError::Compute(Error::WrongArtifactKind { .. }))
    ));
    assert_eq!(
        store.read_artifact(&id, &Artifact::RawCsv).unwrap(),
        b"kano"
    );
}

#[test]
fn an_abandoned_upload_leaves_the_previous_generation_exactly_as_it_was() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    analyse(&store, &id, &AnalysisRequest::default());
    let before = store.status(&id).unwrap();
    {
        let mut up = store.begin_upload(&id).unwrap();
        up.write(&Artifact::RawXlsx, b"half an excel file").unwrap();
        // dropped: the request failed (e.g. 413 or a parse error)
    }
    assert_eq!(store.status(&id).unwrap(), before);
    assert_eq!(
        store.read_artifact(&id, &Artifact::RawCsv).unwrap(),
        b"kano"
    );
    assert_eq!(
        fs::read_dir(store.session_dir(&id).unwrap().join(".staging"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn xlsx_upload_replaces_csv() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let mut up = store.begin_upload(&id).unwrap();
    up.write(&Artifact::RawXlsx, b"xlsx").unwrap();
    store.commit_upload(up, UploadInfo::default()).unwrap();
    let s = store.status(&id).unwrap();
    assert!(s.data_loaded && !s.shapefile_loaded);
    assert_eq!(s.upload_type.as_deref(), Some("csv_only"));
    assert!(matches!(
        store.read_artifact(&id, &Artifact::RawCsv),
        Err(Error::ArtifactNotFound(_))
    ));
    assert!(
        !store
            .session_dir(&id)
            .unwrap()
            .join("raw_data.csv")
            .exists()
    );
}

#[test]
fn population_belongs_to_the_generation_and_invalidates_itn() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    assert!(matches!(
        store.commit_population(&id, b"p", Value::Null),
        Err(Error::NoData(_))
    ));
    upload(&store, &id, "kano");
    let a = analyse(&store, &id, &AnalysisRequest::default());
    store
        .commit_itn(&id, &a.analysis_id, &json!({}), &[])
        .unwrap();
    store
        .commit_population(&id, b"WardName,Population", json!({"wards": 1}))
        .unwrap();
    let s = store.status(&id).unwrap();
    assert!(s.population_loaded && s.analysis_complete && !s.itn_complete);
    assert_eq!(
        store.read_artifact(&id, &Artifact::Population).unwrap(),
        b"WardName,Population"
    );
    upload(&store, &id, "kano 2");
    assert!(!store.status(&id).unwrap().population_loaded);
}

// ---- the Python system's folders --------------------------------------------------------------

#[test]
fn a_python_folder_with_only_rankings_counts_as_analysed_and_supports_itn() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    let folder = dir.path().join("uploads").join(id.as_str());
    fs::remove_file(folder.join("manifest.json")).unwrap();
    fs::write(
        folder.join("analysis_vulnerability_rankings.csv"),
        "WardName,median_score,overall_rank\nA,0.5,1\n",
    )
    .unwrap();

    let s = store.status(&id).unwrap();
    assert!(s.analysis_complete && s.legacy && !s.data_loaded && !s.itn_complete);
    let legacy_id = s.analysis_id.clone().unwrap();
    assert!(legacy_id.starts_with("legacy-"));
    assert_eq!(
        store.status(&id).unwrap().analysis_id.as_deref(),
        Some(legacy_id.as_str()),
        "stable"
    );
    let view = store.current_analysis(&id).unwrap().unwrap();
    assert!(view.legacy);
    assert!(
        view.read(&Artifact::Rankings)
            .unwrap()
            .starts_with(b"WardName")
    );
    assert!(
        store
            .read_artifact(&id, &Artifact::Rankings)
            .unwrap()
            .starts_with(b"WardName")
    );

    // A reused "analysis" keeps the legacy id; ITN commits against it and adopts the folder.
    let reused = store.run_analysis_once(
        &id,
        &AnalysisRequest::default(),
        |_, _| -> Result<AnalysisResult, ()> { panic!("must not recompute a legacy analysis") },
    );
    assert_eq!(reused.unwrap().analysis_id, legacy_id);
    store
        .commit_itn(&id, &legacy_id, &json!({"stats": {}}), &[])
        .unwrap();
    let s = store.status(&id).unwrap();
    assert!(s.analysis_complete && s.itn_complete && !s.legacy);
    assert_eq!(s.analysis_id.as_deref(), Some(legacy_id.as_str()));
    assert!(
        store
            .read_artifact(&id, &Artifact::Rankings)
            .unwrap()
            .starts_with(b"WardName")
    );
}

#[test]
fn a_python_folder_with_unified_dataset_and_raw_files() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    let folder = dir.path().join("uploads").join(id.as_str());
    fs::remove_file(folder.join("manifest.json")).unwrap();
    fs::write(folder.join("raw_data.csv"), "kano").unwrap();
    fs::write(folder.join("raw_shapefile.zip"), "zip").unwrap();
    fs::write(
        folder.join("unified_dataset.csv"),
        "WardName,composite_rank\n",
    )
    .unwrap();
    fs::write(
        folder.join("unified_variable_metadata.json"),
        r#"{"selected_variables":["tpr","u5"]}"#,
    )
    .unwrap();
    fs::write(folder.join("itn_distribution_results.json"), "{}").unwrap();
    let s = store.status(&id).unwrap();
    assert!(
        s.data_loaded && s.shapefile_loaded && s.analysis_complete && s.legacy && s.itn_complete
    );
    assert_eq!(s.variables_used, ["tpr", "u5"]);

    // A forced analysis of the Python folder's raw data replaces its results.
    let fresh = analyse(
        &store,
        &id,
        &AnalysisRequest {
            force: true,
            ..Default::default()
        },
    );
    let s = store.status(&id).unwrap();
    assert!(!s.legacy);
    assert_eq!(s.analysis_id.as_deref(), Some(fresh.analysis_id.as_str()));
    assert_eq!(
        read_string(&store, &id, &Artifact::UnifiedCsv).unwrap(),
        "unified kano"
    );
    assert_eq!(
        fs::read_to_string(folder.join("unified_dataset.csv")).unwrap(),
        "unified kano"
    );
    assert!(!folder.join("unified_variable_metadata.json").exists());

    // A new upload over a Python folder starts a clean generation.
    upload(&store, &id, "niger");
    let s = store.status(&id).unwrap();
    assert!(!s.analysis_complete);
    assert_eq!(
        fs::read_to_string(folder.join("raw_data.csv")).unwrap(),
        "niger"
    );
}

// ---- loose files and isolation ---------------------------------------------------------------

#[test]
fn loose_files_stay_inside_their_session() {
    let (dir, store) = store();
    let a = store.create_session().unwrap();
    let b = store.create_session().unwrap();
    let viz = |p: &str| Artifact::Visualization(RelPath::parse(p).unwrap());
    store
        .write_file(&a, &viz("maps/itn.html"), b"<html>a</html>")
        .unwrap();
    store
        .write_file(
            &b,
            &Artifact::Export(RelPath::parse("report.zip").unwrap()),
            b"zip b",
        )
        .unwrap();
    assert_eq!(
        store.read_artifact(&a, &viz("maps/itn.html")).unwrap(),
        b"<html>a</html>"
    );
    assert!(matches!(
        store.read_artifact(&b, &viz("maps/itn.html")),
        Err(Error::ArtifactNotFound(_))
    ));
    assert_eq!(store.list_visualizations(&a).unwrap(), ["maps/itn.html"]);

    // A planted symlink from a's folder into b's is refused for reading and writing.
    let a_dir = dir.path().join("uploads").join(a.as_str());
    let b_dir = dir.path().join("uploads").join(b.as_str());
    std::os::unix::fs::symlink(b_dir.join("exports"), a_dir.join("exports")).unwrap();
    let export = Artifact::Export(RelPath::parse("report.zip").unwrap());
    assert!(matches!(
        store.read_artifact(&a, &export),
        Err(Error::Tampered { .. })
    ));
    assert!(matches!(
        store.write_file(&a, &export, b"overwrite"),
        Err(Error::UnsafePath { .. })
    ));
    std::os::unix::fs::symlink(
        "/etc/passwd",
        a_dir.join("visualizations").join("passwd.html"),
    )
    .unwrap();
    assert!(matches!(
        store.read_artifact(&a, &viz("passwd.html")),
        Err(Error::Tampered { .. })
    ));
    assert_eq!(store.read_artifact(&b, &export).unwrap(), b"zip b");

    // Fixed artifacts cannot be written as loose files.
    assert!(matches!(
        store.write_file(&a, &Artifact::Rankings, b"x"),
        Err(Error::WrongArtifactKind { .. })
    ));

    // Data of one session never shows up in another.
    upload(&store, &a, "only a");
    analyse(&store, &a, &AnalysisRequest::default());
    assert!(!store.status(&b).unwrap().data_loaded);
    assert!(matches!(
        store.read_artifact(&b, &Artifact::Rankings),
        Err(Error::ArtifactNotFound(_))
    ));
}

#[test]
fn conversation_updates_from_threads_are_not_lost() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (store, id) = (&store, &id);
            scope.spawn(move || {
                for i in 0..10 {
                    store
                        .update_conversation(id, |doc| {
                            let mut turns =
                                doc.and_then(|d| d.as_array().cloned()).unwrap_or_default();
                            turns.push(json!(format!("{t}-{i}")));
                            Value::Array(turns)
                        })
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(
        store
            .read_conversation(&id)
            .unwrap()
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        40
    );
}

#[test]
fn readers_never_see_a_torn_or_regressed_state() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let mut last_generation = 0;
                    let mut reads = 0u32;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let s = store.status(&id).unwrap();
                        assert!(s.generation >= last_generation);
                        last_generation = s.generation;
                        assert!(s.data_loaded);
                        if s.analysis_complete {
                            // Whatever is complete is readable, or already replaced.
                            match read_string(&store, &id, &Artifact::Rankings) {
                                Ok(text) => assert!(text.starts_with("rankings of gen"), "{text}"),
                                Err(Error::ArtifactNotFound(_)) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for g in 0..15 {
            upload(&store, &id, &format!("gen{g}"));
            let out = analyse(&store, &id, &AnalysisRequest::default());
            assert_eq!(
                read_string(&store, &id, &Artifact::Rankings).unwrap(),
                format!("rankings of gen{g}")
            );
            assert!(!out.reused);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    });
}

// ---- multi-process -------------------------------------------------------------------------

const CHILD_ROLE: &str = "MRPT_SESSION_CHILD";

/// Entry point of child processes; a no-op in a normal test run.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(CHILD_ROLE) else {
        return;
    };
    let env = |k: &str| std::env::var(k).unwrap();
    let store = Store::open(env("MRPT_INSTANCE")).unwrap();
    let id = SessionId::parse(&env("MRPT_SESSION")).unwrap();
    let out = PathBuf::from(env("MRPT_OUT"));
    let result = match role.as_str() {
        "analyse" => {
            let started = std::env::var("MRPT_STARTED").ok().map(PathBuf::from);
            let go = std::env::var("MRPT_GO").ok().map(PathBuf::from);
            if let Ok(arrived) = std::env::var("MRPT_ARRIVED") {
                fs::write(arrived, b"").unwrap();
            }
            let r = store.run_analysis_once(&id, &AnalysisRequest::default(), |inputs, staging| {
                if let Some(started) = &started {
                    fs::write(started, b"").unwrap();
                }
                if let Some(go) = &go {
                    wait_for("the go file", Duration::from_secs(120), || go.exists());
                }
                fake_pipeline(inputs, staging)
            });
            match r {
                Ok(o) => json!({"analysis_id": o.analysis_id, "reused": o.reused}),
                Err(e) => json!({"error": e.to_string()}),
            }
        }
        "upload" => {
            let mut up = store.begin_upload(&id).unwrap();
            up.write(&Artifact::RawCsv, env("MRPT_CSV").as_bytes())
                .unwrap();
            up.write(&Artifact::RawShapefile, b"zip").unwrap();
            json!({"generation": store.commit_upload(up, UploadInfo::default()).unwrap()})
        }
        "itn" => {
            let analysis_id = env("MRPT_ANALYSIS");
            // With MRPT_PLAN: the plan's map and table, named after it (lifecycle tests).
            let plan = std::env::var("MRPT_PLAN").ok();
            let loose = plan
                .as_deref()
                .map(lifecycle::plan_files)
                .unwrap_or_default();
            let maps: Vec<(Artifact, &[u8])> = loose
                .iter()
                .map(|a| (a.clone(), b"plan".as_slice()))
                .collect();
            json!({"itn": store.commit_itn(&id, &analysis_id, &json!({"stats": {}}), &maps).map(|r| r.analysis_id).map_err(|e| e.to_string()).is_ok()})
        }
        "sweep" => {
            if let Ok(go) = std::env::var("MRPT_GO") {
                wait_for("the go file", Duration::from_secs(120), || {
                    Path::new(&go).exists()
                });
            }
            let report = store
                .sweep_if_due(&lifecycle::POLICY, Duration::from_secs(3600))
                .unwrap();
            json!({"swept": report.is_some(), "report": report})
        }
        "hold-lock" => {
            // Holds the session lock (as a request in flight would) until the go file exists.
            let dir = store.session_dir(&id).unwrap();
            let _lock = crate::durable::LockGuard::acquire(&dir.join(crate::store::LOCK)).unwrap();
            fs::write(env("MRPT_STARTED"), b"").unwrap();
            let go = env("MRPT_GO");
            wait_for("the go file", Duration::from_secs(120), || {
                Path::new(&go).exists()
            });
            json!({"held": true})
        }
        "finalize" => store
            .finalize_chunks(&id, chunks::UPLOAD, &[("csv", chunks::TOTAL)], |f| {
                chunks::commit_csv(&store, &id, f)
            })
            .unwrap(),
        "chunks" => {
            // Stores the chunks listed in MRPT_CHUNKS (of the upload `chunks::UPLOAD`), as one
            // worker of several would.
            let mut stored = Vec::new();
            for index in env("MRPT_CHUNKS").split(',') {
                let index: u32 = index.parse().unwrap();
                let bytes = chunks::chunk_bytes(index);
                store
                    .put_chunk(
                        &id,
                        Chunk {
                            upload_id: chunks::UPLOAD,
                            part: "csv",
                            index,
                            total: chunks::TOTAL,
                            bytes: &bytes,
                        },
                        &chunks::LIMITS,
                    )
                    .unwrap();
                stored.push(index);
            }
            json!({"stored": stored})
        }
        other => panic!("unknown child role {other}"),
    };
    fs::write(out, serde_json::to_vec(&result).unwrap()).unwrap();
}

struct ChildSpec<'a> {
    role: &'a str,
    instance: &'a Path,
    session: &'a SessionId,
    out: PathBuf,
    env: Vec<(&'a str, String)>,
}

fn spawn(spec: ChildSpec<'_>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "tests::child_process",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(CHILD_ROLE, spec.role)
    .env("MRPT_INSTANCE", spec.instance)
    .env("MRPT_SESSION", spec.session.as_str())
    .env("MRPT_OUT", &spec.out)
    .env_remove("MRPT_FAULT")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    for (k, v) in spec.env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn wait_child(child: &mut Child) -> ExitStatus {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < end, "child did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn outcome_of(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn twelve_processes_compute_once() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let work = tempfile::tempdir().unwrap();
    let go = work.path().join("go");
    let mut children: Vec<(Child, PathBuf)> = (0..12)
        .map(|n| {
            let out = work.path().join(format!("out-{n}"));
            let child = spawn(ChildSpec {
                role: "analyse",
                instance: dir.path(),
                session: &id,
                out: out.clone(),
                env: vec![
                    (
                        "MRPT_ARRIVED",
                        work.path()
                            .join(format!("arrived-{n}"))
                            .display()
                            .to_string(),
                    ),
                    (
                        "MRPT_STARTED",
                        work.path().join("started").display().to_string(),
                    ),
                    ("MRPT_GO", go.display().to_string()),
                ],
            });
            (child, out)
        })
        .collect();
    // Hold the computation until every child has arrived, so they really compete.
    wait_for(
        "12 children to arrive and one to compute",
        Duration::from_secs(60),
        || {
            work.path().join("started").exists()
                && (0..12).all(|n| work.path().join(format!("arrived-{n}")).exists())
        },
    );
    fs::write(&go, b"").unwrap();
    let mut ids = HashSet::new();
    let mut computed = 0;
    for (child, out) in &mut children {
        assert!(wait_child(child).success());
        let o = outcome_of(out);
        ids.insert(o["analysis_id"].as_str().unwrap().to_owned());
        computed += usize::from(o["reused"] == json!(false));
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(computed, 1);
    let s = store.status(&id).unwrap();
    assert_eq!((s.analyses_started, s.analyses_committed), (1, 1));
    assert_eq!(s.analysis_id.as_ref(), ids.iter().next());
}

#[test]
fn a_killed_analysis_holder_does_not_wedge_the_session() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let work = tempfile::tempdir().unwrap();
    let started = work.path().join("started");
    let mut child = spawn(ChildSpec {
        role: "analyse",
        instance: dir.path(),
        session: &id,
        out: work.path().join("out"),
        env: vec![
            ("MRPT_STARTED", started.display().to_string()),
            ("MRPT_GO", work.path().join("never").display().to_string()),
        ],
    });
    wait_for(
        "the child to start computing",
        Duration::from_secs(60),
        || started.exists(),
    );
    // It is mid-computation with outputs being staged; SIGKILL it.
    child.kill().unwrap();
    assert!(!wait_child(&mut child).success());
    let s = store.status(&id).unwrap();
    assert!(!s.analysis_complete);
    assert_eq!(s.analyses_started, 1);

    let request = AnalysisRequest {
        wait: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let out = analyse(&store, &id, &request);
    assert!(!out.reused);
    let s = store.status(&id).unwrap();
    assert!(s.analysis_complete);
    assert_eq!((s.analyses_started, s.analyses_committed), (2, 1));
    assert_eq!(
        read_string(&store, &id, &Artifact::Rankings).unwrap(),
        "rankings of kano"
    );
}

#[test]
fn a_new_upload_during_a_slow_analysis_wins() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let old = analyse(&store, &id, &AnalysisRequest::default());
    let work = tempfile::tempdir().unwrap();
    let (started, go, out) = (
        work.path().join("started"),
        work.path().join("go"),
        work.path().join("out"),
    );
    upload(&store, &id, "niger");
    // A slow analysis of niger; "ghana" is uploaded while it computes.
    let mut child = spawn(ChildSpec {
        role: "analyse",
        instance: dir.path(),
        session: &id,
        out: out.clone(),
        env: vec![
            ("MRPT_STARTED", started.display().to_string()),
            ("MRPT_GO", go.display().to_string()),
        ],
    });
    wait_for(
        "the child to start computing",
        Duration::from_secs(60),
        || started.exists(),
    );
    upload(&store, &id, "ghana");
    fs::write(&go, b"").unwrap();
    assert!(wait_child(&mut child).success());
    let o = outcome_of(&out);
    assert!(
        o["error"]
            .as_str()
            .unwrap()
            .contains("changed while this ran"),
        "{o}"
    );

    let s = store.status(&id).unwrap();
    assert!(!s.analysis_complete && s.analysis_id.is_none());
    assert_ne!(s.analysis_id.as_deref(), Some(old.analysis_id.as_str()));
    assert!(matches!(
        store.read_artifact(&id, &Artifact::Rankings),
        Err(Error::ArtifactNotFound(_))
    ));
    assert!(
        !store
            .session_dir(&id)
            .unwrap()
            .join("analysis_vulnerability_rankings.csv")
            .exists()
    );
    assert_eq!((s.analyses_started, s.analyses_committed), (2, 1));

    analyse(&store, &id, &AnalysisRequest::default());
    assert_eq!(
        read_string(&store, &id, &Artifact::Rankings).unwrap(),
        "rankings of ghana"
    );
}

/// Crashes at every point of every protocol: before the commit point nothing changes; after it
/// the new state is complete; and the next operation succeeds.
#[test]
fn crashes_at_every_point_leave_nothing_that_counts() {
    for point in fault::POINTS {
        if point.starts_with("chunk-") || point.starts_with("finalize-") {
            // tests::chunks::a_crash_after_a_chunk_or_after_the_commit_...
            continue;
        }
        let (dir, store) = store();
        let id = store.create_session().unwrap();
        upload(&store, &id, "kano");
        let first = analyse(&store, &id, &AnalysisRequest::default());
        let work = tempfile::tempdir().unwrap();
        let out = work.path().join("out");
        let fault = vec![("MRPT_FAULT", point.to_owned())];
        let spec = |role, env| ChildSpec {
            role,
            instance: dir.path(),
            session: &id,
            out: out.clone(),
            env,
        };

        if point.starts_with("upload") {
            let before = store.status(&id).unwrap();
            let mut env = fault.clone();
            env.push(("MRPT_CSV", "niger".to_owned()));
            let mut child = spawn(spec("upload", env));
            assert!(
                !wait_child(&mut child).success(),
                "{point}: the child should have crashed"
            );
            let after = store.status(&id).unwrap();
            if point == "upload-after-manifest" {
                assert_eq!(after.generation, before.generation + 1, "{point}");
                assert!(after.data_loaded && !after.analysis_complete, "{point}");
                assert_eq!(
                    store.read_artifact(&id, &Artifact::RawCsv).unwrap(),
                    b"niger"
                );
            } else {
                assert_eq!(after, before, "{point}");
                assert_eq!(
                    store.read_artifact(&id, &Artifact::RawCsv).unwrap(),
                    b"kano"
                );
                assert_eq!(
                    read_string(&store, &id, &Artifact::Rankings).unwrap(),
                    "rankings of kano"
                );
            }
            upload(&store, &id, "ghana");
            analyse(&store, &id, &AnalysisRequest::default());
            assert_eq!(
                read_string(&store, &id, &Artifact::Rankings).unwrap(),
                "rankings of ghana",
                "{point}"
            );
        } else if point.starts_with("analysis") {
            upload(&store, &id, "niger");
            let mut child = spawn(spec("analyse", fault.clone()));
            assert!(
                !wait_child(&mut child).success(),
                "{point}: the child should have crashed"
            );
            let s = store.status(&id).unwrap();
            let committed = matches!(point, "analysis-after-manifest" | "analysis-mid-publish");
            assert_eq!(s.analysis_complete, committed, "{point}");
            if committed {
                assert_ne!(s.analysis_id.as_deref(), Some(first.analysis_id.as_str()));
                assert_eq!(
                    read_string(&store, &id, &Artifact::Rankings).unwrap(),
                    "rankings of niger"
                );
                assert_eq!(
                    read_string(&store, &id, &Artifact::RankingsPca).unwrap(),
                    "pca of niger"
                );
            } else {
                assert!(s.analysis_id.is_none(), "{point}");
                assert!(matches!(
                    store.read_artifact(&id, &Artifact::Rankings),
                    Err(Error::ArtifactNotFound(_))
                ));
            }
            let next = analyse(&store, &id, &AnalysisRequest::default());
            assert_eq!(next.reused, committed, "{point}");
            let s = store.status(&id).unwrap();
            assert!(s.analysis_complete);
            assert_eq!(s.analyses_committed, 2, "{point}");
            for artifact in [
                Artifact::Rankings,
                Artifact::UnifiedCsv,
                Artifact::RankingsPca,
                Artifact::CleanedData,
            ] {
                assert!(
                    read_string(&store, &id, &artifact)
                        .unwrap()
                        .ends_with("niger"),
                    "{point}"
                );
            }
            // The next commit repaired the mirrors, whatever state the crash left them in.
            let folder = store.session_dir(&id).unwrap();
            if !committed {
                assert_eq!(
                    fs::read_to_string(folder.join("analysis_vulnerability_rankings.csv")).unwrap(),
                    "rankings of niger"
                );
            }
            assert_eq!(
                fs::read_dir(folder.join(".data")).unwrap().count(),
                2,
                "{point}: upload + analysis only"
            );
        } else {
            let mut env = fault.clone();
            env.push(("MRPT_ANALYSIS", first.analysis_id.clone()));
            let mut child = spawn(spec("itn", env));
            assert!(
                !wait_child(&mut child).success(),
                "{point}: the child should have crashed"
            );
            let s = store.status(&id).unwrap();
            assert_eq!(s.itn_complete, point == "itn-after-manifest", "{point}");
            assert_eq!(s.analysis_id.as_deref(), Some(first.analysis_id.as_str()));
            store
                .commit_itn(&id, &first.analysis_id, &json!({"stats": {}}), &[])
                .unwrap();
            assert!(store.status(&id).unwrap().itn_complete);
        }
    }
}
