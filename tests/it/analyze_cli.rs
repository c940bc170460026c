//! `prefork analyze` end to end: the real binary reads the Kano inputs, writes the session files,
//! and they agree with ChatMRPT's reference outputs (kano_auto: five named variables, ITN [J]).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Rows of a simple CSV (no quoted commas in these files) keyed by the first column.
fn rows(path: &Path) -> (Vec<String>, HashMap<String, Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let map = lines
        .map(|l| {
            let cells: Vec<String> = l.split(',').map(str::to_string).collect();
            (cells[0].clone(), cells)
        })
        .collect();
    (header, map)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn analyze_reproduces_the_kano_reference() {
    let out = tempfile::tempdir().unwrap();
    let kano = fixtures().join("kano");
    let reference = fixtures().join("reference/kano");
    let status = Command::new(env!("CARGO_BIN_EXE_prefork"))
        .args(["analyze", "--csv"])
        .arg(kano.join("kano_wards.csv"))
        .arg("--shapefile")
        .arg(kano.join("kano_wards_shapefile.zip"))
        .args([
            "--variables",
            "rainfall,total,nets_per_capita,distance_to_water_bodies,dumpsites",
        ])
        .arg("--population")
        .arg(reference.join("kano_auto_population_input.csv"))
        .args(["--total-nets", "100000", "--strategy", "rank", "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "prefork analyze failed: {status}");

    for file in [
        "analysis_cleaned_data.csv",
        "analysis_normalized_data.csv",
        "analysis_composite_scores.csv",
        "model_formulas.csv",
        "analysis_pca_scores.csv",
        "pca_variable_importance.json",
        "pca_explained_variance.json",
        "unified_dataset.csv",
        "unified_dataset.geoparquet",
        "itn_distribution_results.json",
    ] {
        assert!(out.path().join(file).is_file(), "{file} was not written");
    }

    // Composite rankings: same wards, ranks and categories; scores to 1e-9.
    let (ref_h, ref_rows) = rows(&reference.join("kano_auto_analysis_vulnerability_rankings.csv"));
    let (our_h, our_rows) = rows(&out.path().join("analysis_vulnerability_rankings.csv"));
    assert_eq!(ref_rows.len(), 66);
    assert_eq!(ref_rows.len(), our_rows.len());
    for (ward, r) in &ref_rows {
        let o = our_rows
            .get(ward)
            .unwrap_or_else(|| panic!("ward {ward} missing"));
        for name in ["overall_rank", "vulnerability_category"] {
            assert_eq!(
                r[column(&ref_h, name)],
                o[column(&our_h, name)],
                "{ward} {name}"
            );
        }
        let (a, b): (f64, f64) = (
            r[column(&ref_h, "median_score")].parse().unwrap(),
            o[column(&our_h, "median_score")].parse().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{ward}: median_score {a} vs {b}");
    }

    // ITN [J]: the same wards get exactly the same nets (Fagg c has no population and is left out).
    let (ref_h, ref_itn) = rows(&reference.join("kano_auto_itn_allocation_composite.csv"));
    let (our_h, our_itn) = rows(&out.path().join("itn_allocation.csv"));
    assert_eq!(ref_itn.len(), 29);
    assert_eq!(ref_itn.len(), our_itn.len());
    for (ward, r) in &ref_itn {
        let o = our_itn
            .get(ward)
            .unwrap_or_else(|| panic!("ITN ward {ward} missing"));
        for name in [
            "nets_needed",
            "nets_allocated",
            "allocation_phase",
            "overall_rank",
        ] {
            assert_eq!(
                r[column(&ref_h, name)],
                o[column(&our_h, name)],
                "{ward} {name}"
            );
        }
    }
}

#[test]
fn analyze_refuses_a_table_without_a_ward_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "a,b\n1,2\n3,4\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_prefork"))
        .args(["analyze", "--csv"])
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("a") && stderr.to_lowercase().contains("ward"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("out").exists(),
        "nothing is written for bad input"
    );
}
