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

fn run_tpr(args: &[&str], extra: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_prefork"))
        .arg("tpr")
        .args(args)
        .args(extra)
        .output()
        .unwrap()
}

/// `--years`, `--metric burden` and the maps: a year range narrows every per-year output, the
/// burden metric names its columns, and with a shapefile the four documents of tpr.md §8.1 are
/// written under `visualizations/`.
#[test]
fn tpr_years_metric_and_maps() {
    let out = tempfile::tempdir().unwrap();
    let f = fixtures();
    let input = f.join("tpr/kano_nmep_2021_2024.csv");
    let shp = f.join("kano/kano_wards_shapefile.zip");
    let pop = f.join("tpr/kano_population_synthetic.csv");
    let o = run_tpr(
        &["--years", "2022-2024", "--metric", "burden", "--out"],
        &[
            out.path().as_os_str(),
            "--input".as_ref(),
            input.as_os_str(),
            "--shapefile".as_ref(),
            shp.as_os_str(),
            "--population".as_ref(),
            pop.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("Malaria burden"), "{stderr}");
    assert!(stderr.contains("2022–2024"), "{stderr}");
    let sel: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("tpr_selection.json")).unwrap())
            .unwrap();
    assert_eq!(sel["years"], serde_json::json!([2022, 2023, 2024]));
    let trend = std::fs::read_to_string(out.path().join("trend_summary.csv")).unwrap();
    let header = trend.lines().next().unwrap();
    assert!(header.contains("Burden_First,Burden_Latest"), "{header}");
    let series = std::fs::read_to_string(out.path().join("tpr_time_series.csv")).unwrap();
    assert!(!series.lines().skip(1).any(|l| l.contains(",2021,")));
    for doc in [
        "tpr_map.html",
        "tpr_map_slope.html",
        "tpr_trend_chart.html",
        "tpr_map_missingness.html",
    ] {
        let html = std::fs::read_to_string(out.path().join("visualizations").join(doc)).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{doc}");
        assert!(!html.contains("https://"), "{doc} loads nothing");
    }
    let map = std::fs::read_to_string(out.path().join("visualizations/tpr_map.html")).unwrap();
    assert!(map.contains("Burden per 1,000"));
}

/// Burden of an age group needs that group's population column; without it the run still
/// succeeds on TPR and says which column is missing. A bad `--years` is refused by the parser.
#[test]
fn tpr_age_burden_needs_its_column_and_years_are_checked() {
    let out = tempfile::tempdir().unwrap();
    let f = fixtures();
    let input = f.join("tpr/kano_nmep_2021_2024.csv");
    let shp = f.join("kano/kano_wards_shapefile.zip");
    let pop = f.join("tpr/kano_population_synthetic.csv");
    let o = run_tpr(
        &["--age-group", "u5", "--out"],
        &[
            out.path().as_os_str(),
            "--input".as_ref(),
            input.as_os_str(),
            "--shapefile".as_ref(),
            shp.as_os_str(),
            "--population".as_ref(),
            pop.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("no Population_u5 column"), "{stderr}");
    let results = std::fs::read_to_string(out.path().join("tpr_results.csv")).unwrap();
    assert!(!results.lines().next().unwrap().contains("Burden"));
    let o = run_tpr(
        &["--years", "2024-2021", "--out"],
        &[
            out.path().as_os_str(),
            "--input".as_ref(),
            input.as_os_str(),
        ],
    );
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("runs backwards"), "{stderr}");
}

/// An export with two states: without `--state` the command names them and stops; with
/// `--state` it computes that state only; `--state all` computes both.
#[test]
fn tpr_asks_for_a_state_when_there_are_several() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("two_states.csv");
    let mut csv = String::from(
        "orgunitlevel2,orgunitlevel3,orgunitlevel4,organisationunitid,periodcode,\
         Persons presenting with fever & tested by RDT <5yrs,\
         Persons tested positive for malaria by RDT <5yrs\n",
    );
    for (state, lga, ward, fac, t, p) in [
        (
            "kn Kano State",
            "kn Dala LGA",
            "kn Adakawa Ward",
            "F1",
            100,
            40,
        ),
        (
            "kn Kano State",
            "kn Dala LGA",
            "kn Gwammaja Ward",
            "F2",
            50,
            10,
        ),
        (
            "kn Kwara State",
            "kn Ilorin LGA",
            "kn Adewole Ward",
            "F3",
            80,
            20,
        ),
    ] {
        csv.push_str(&format!("{state},{lga},{ward},{fac},202301,{t},{p}\n"));
    }
    std::fs::write(&input, csv).unwrap();
    let out = dir.path().join("out");
    let o = run_tpr(
        &["--out"],
        &[out.as_os_str(), "--input".as_ref(), input.as_os_str()],
    );
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("2 states (Kano, Kwara); choose one with --state"),
        "{stderr}"
    );
    assert!(!out.exists());
    let o = run_tpr(
        &["--state", "kwara", "--out"],
        &[out.as_os_str(), "--input".as_ref(), input.as_os_str()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results = std::fs::read_to_string(out.join("tpr_results.csv")).unwrap();
    assert_eq!(results.lines().count(), 2, "{results}");
    assert!(results.contains("Adewole"));
    let o = run_tpr(
        &["--state", "all", "--out"],
        &[out.as_os_str(), "--input".as_ref(), input.as_os_str()],
    );
    assert!(o.status.success());
    let results = std::fs::read_to_string(out.join("tpr_results.csv")).unwrap();
    assert_eq!(results.lines().count(), 4, "{results}");
}
