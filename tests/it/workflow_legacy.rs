//! Folders written by the old Python system (api.md "Session folder"; chatmrpt-server.md §2.5):
//! no manifest of ours, only the api.md file names. They count as analysed on every worker, with
//! one stable id, and ITN planning works from `analysis_vulnerability_rankings.csv` alone,
//! without running an analysis. Real binary, 6 workers, a new connection per request.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::Answer;
use crate::support::{Server, ServerBuilder};
use crate::support::{Session, fixture};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

fn start() -> Server {
    let server = ServerBuilder::new().args(&["-w", "6"]).start();
    server.wait_workers(6, DEADLINE).expect("6 workers");
    server
}

/// A session minted by the server whose folder is then replaced by a Python-era one: `files`
/// written, `manifest.json` removed.
fn legacy_session(server: &Server, files: &[(&str, &[u8])]) -> (Session, PathBuf) {
    let s = Session::create(server.addr());
    let dir = server.dir.path().join("instance/uploads").join(&s.id);
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    (s, dir)
}

fn ensure(cond: bool, why: &str) -> Result<(), String> {
    if cond { Ok(()) } else { Err(why.to_owned()) }
}

/// Every worker reports the folder as analysed (not planned) with the same `legacy-` id.
fn legacy_id_on_workers(s: &Session, data_loaded: bool) -> String {
    let seen = s.status_from_workers(4, DEADLINE, |v| {
        ensure(v["analysis_complete"] == true, "not analysed")?;
        ensure(v["data_loaded"] == data_loaded, "data_loaded")?;
        ensure(v["itn_complete"] == false, "itn_complete")?;
        ensure(
            v["analysis_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("legacy-")),
            "no legacy- analysis id",
        )?;
        ensure(v["analyses_started"] == 0, "an analysis ran")
    });
    let ids: std::collections::BTreeSet<&str> = seen
        .values()
        .map(|v| v["analysis_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "the legacy id differs between workers: {ids:?}"
    );
    ids.first().unwrap().to_string()
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

#[test]
fn python_folder_with_rankings_is_analysed_and_plans_itn_with_uploaded_population() {
    let server = start();
    let raw = fixture("kano/kano_wards.csv");
    let rankings = fixture("reference/kano/kano_auto_analysis_vulnerability_rankings.csv");
    let (s, dir) = legacy_session(
        &server,
        &[
            ("raw_data.csv", &raw),
            ("analysis_vulnerability_rankings.csv", &rankings),
        ],
    );
    let legacy = legacy_id_on_workers(&s, true);
    let info = s
        .get("/session_info")
        .expect(200, "session_info")
        .json_body();
    assert_eq!(info["legacy"], true, "{info}");

    // Kano's ward table has no population: the plan says what is missing, then works once a
    // population table is uploaded.
    let r = s.plan_itn(&json!({"total_nets": 50000}));
    assert!(
        r.status == 422 || r.status == 409 || r.status == 400,
        "ITN without any population: {} {}",
        r.status,
        r.text()
    );
    assert!(
        r.text().to_lowercase().contains("population"),
        "{}",
        r.text()
    );
    s.upload_kano_population().expect(200, "population");
    let itn = s
        .plan_itn(&json!({"total_nets": 50000, "avg_household_size": 5}))
        .expect(200, "ITN from the old rankings")
        .json_body();
    assert_eq!(itn["analysis_id"], legacy.as_str(), "{itn}");
    assert!(itn["prioritized_wards"].as_u64().unwrap() > 0, "{itn}");

    s.status_from_workers(4, DEADLINE, |v| {
        ensure(v["analysis_complete"] == true, "not analysed")?;
        ensure(v["itn_complete"] == true, "itn_complete false")?;
        ensure(v["analysis_id"] == legacy.as_str(), "another analysis id")?;
        ensure(v["analyses_started"] == 0, "an analysis ran")
    });
    // The old files are evidence, not garbage: adopting the folder keeps them as they were.
    assert!(read(&dir, "analysis_vulnerability_rankings.csv") == rankings);
    assert!(read(&dir, "raw_data.csv") == raw);
    let served = s
        .download("analysis_vulnerability_rankings.csv")
        .expect(200, "rankings");
    assert!(served.body == rankings);
}

/// `/run_analysis` with no variables on a Python folder answers with the folder's analysis, as
/// on any analysed session (mrpt-session reuses a legacy record for a default request), instead
/// of recomputing over the old files.
#[test]
fn run_analysis_on_a_python_folder_reuses_its_analysis() {
    let server = start();
    let raw = fixture("kano/kano_wards.csv");
    let rankings = fixture("reference/kano/kano_auto_analysis_vulnerability_rankings.csv");
    let (s, dir) = legacy_session(
        &server,
        &[
            ("raw_data.csv", &raw),
            ("analysis_vulnerability_rankings.csv", &rankings),
        ],
    );
    let legacy = legacy_id_on_workers(&s, true);
    let run = s
        .run_analysis(&json!({}))
        .expect(200, "run_analysis")
        .json_body();
    assert_eq!(
        (
            &run["reused"],
            &run["analysis_id"],
            &run["analyses_started"]
        ),
        (&json!(true), &json!(legacy), &json!(0)),
        "the Python analysis was recomputed: {}",
        serde_json::to_string(&run)
            .unwrap()
            .chars()
            .take(300)
            .collect::<String>()
    );
    assert!(read(&dir, "analysis_vulnerability_rankings.csv") == rankings);
}

/// The old rankings plus an old `unified_dataset.csv` whose ward data carries a Population
/// column: ITN planning needs nothing else (no upload, no population table, no analysis).
#[test]
fn python_folder_with_a_population_column_plans_itn_directly() {
    let server = start();
    let rankings = fixture("reference/kano/kano_auto_analysis_vulnerability_rankings.csv");
    let unified = with_population_column(&fixture("formats/reference_kano_unified_dataset.csv"));
    let (s, _) = legacy_session(
        &server,
        &[
            ("analysis_vulnerability_rankings.csv", &rankings),
            ("unified_dataset.csv", &unified),
        ],
    );
    let legacy = legacy_id_on_workers(&s, false);
    let itn = s
        .plan_itn(&json!({"total_nets": 30000}))
        .expect(200, "ITN from rankings + data with Population")
        .json_body();
    assert_eq!(itn["analysis_id"], legacy.as_str(), "{itn}");
    assert!(itn["prioritized_wards"].as_u64().unwrap() > 0, "{itn}");
    let (_, v) = s.status();
    assert_eq!(v["itn_complete"], true, "{v}");
    assert_eq!(v["analyses_started"], 0, "{v}");
}

/// issue 5: a Python folder with "only `unified_dataset.csv`" also counts as analysed, "and ITN
/// planning works from it" (the Python system's later SessionContextService looked only at this
/// file; it carries composite_score/composite_rank per ward).
#[test]
fn python_folder_with_only_the_unified_dataset_is_analysed_and_plans_itn() {
    let server = start();
    let unified = with_population_column(&fixture("formats/reference_kano_unified_dataset.csv"));
    let (s, _) = legacy_session(&server, &[("unified_dataset.csv", &unified)]);
    let legacy = legacy_id_on_workers(&s, false);
    let r = s.plan_itn(&json!({"total_nets": 50000}));
    let body: Value = r.json_body();
    assert_eq!(
        r.status, 200,
        "ITN from a Python folder holding only unified_dataset.csv: {body}"
    );
    assert_eq!(body["analysis_id"], legacy.as_str(), "{body}");
}

/// A CSV with a `Population` column appended (plausible values, one per row).
fn with_population_column(csv: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(csv.to_vec()).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let extra = if i == 0 {
            "Population".to_owned()
        } else {
            format!("{}", 20000 + 370 * i)
        };
        out.push_str(&format!("{line},{extra}\n"));
    }
    out.into_bytes()
}

/// An empty rankings file is no evidence (the design-note rule says "exists and non-empty").
#[test]
fn python_folder_with_an_empty_rankings_file_is_not_analysed() {
    let server = start();
    let raw = fixture("kano/kano_wards.csv");
    let (s, _) = legacy_session(
        &server,
        &[
            ("raw_data.csv", &raw),
            ("analysis_vulnerability_rankings.csv", b""),
        ],
    );
    s.status_from_workers(3, DEADLINE, |v| {
        ensure(v["data_loaded"] == true, "data_loaded false")?;
        ensure(
            v["analysis_complete"] == false,
            "analysed from an empty file",
        )?;
        ensure(v["analysis_id"].is_null(), "analysis id")
    });
    let r = s.plan_itn(&json!({"total_nets": 50000}));
    assert_eq!(r.status, 409, "{}", r.text());
}
