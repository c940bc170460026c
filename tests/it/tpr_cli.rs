//! `prefork tpr` end to end: the real binary reads the Kano facility export (CSV, streamed),
//! the shapefile and the population table, and writes the files of tpr.md §8.1, equal to
//! `shared/data/tpr/expected/` (copied to tests/fixtures/tpr/expected).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn tpr_writes_the_expected_files() {
    let out = tempfile::tempdir().unwrap();
    let f = fixtures();
    let status = Command::new(env!("CARGO_BIN_EXE_prefork"))
        .arg("tpr")
        .arg("--input")
        .arg(f.join("tpr/kano_nmep_2021_2024.csv"))
        .arg("--shapefile")
        .arg(f.join("kano/kano_wards_shapefile.zip"))
        .arg("--population")
        .arg(f.join("tpr/kano_population_synthetic.csv"))
        .args(["--reprioritise", "14", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "{stderr}");
    assert!(
        stderr.contains("Test positivity rate, %, all ages"),
        "{stderr}"
    );
    assert!(stderr.contains("Top 14 wards to reprioritise"), "{stderr}");
    for (ours, expected) in [
        ("tpr_results.csv", "tpr_results__all_all_ages_both.csv"),
        (
            "tpr_time_series.csv",
            "tpr_time_series__all_all_ages_both.csv",
        ),
        ("trend_summary.csv", "trend_summary__all_all_ages_both.csv"),
        ("tpr_hotspots.csv", "hotspots__all_all_ages_both.csv"),
        ("tpr_lga_summary.csv", "lga_summary__all_all_ages_both.csv"),
        ("tpr_lga_trend.csv", "lga_trend__all_all_ages_both.csv"),
        (
            "tpr_reprioritise.csv",
            "reprioritise_top14__all_all_ages_both.csv",
        ),
        ("tpr_missingness.csv", "missingness.csv"),
        ("ward_matching.csv", "ward_matching.csv"),
    ] {
        let a = std::fs::read(out.path().join(ours)).unwrap();
        let b = std::fs::read(f.join("tpr/expected").join(expected)).unwrap();
        assert!(a == b, "{ours} differs from {expected}");
    }
    let selection: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("tpr_selection.json")).unwrap())
            .unwrap();
    assert_eq!(selection["header_row_index"], 0);
    assert_eq!(selection["prefix"], "kn");
    assert_eq!(selection["selection"]["test_method"], "both");
}

#[test]
fn tpr_refuses_an_unmappable_export_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    std::fs::write(&input, "ward,lga,Outpatients\nA,B,3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prefork"))
        .arg("tpr")
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("Error: no malaria testing columns"),
        "{stderr}"
    );
    assert!(stderr.contains("Outpatients"), "{stderr}");
    assert!(!dir.path().join("out").exists());
}
