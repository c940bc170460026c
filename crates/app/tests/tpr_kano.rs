//! Parity with `shared/data/tpr/expected/` (copied to tests/fixtures/tpr/expected) as tpr.md
//! §0.10 says: values parsed from the CSV, exact for counts and rounded values, 1e-12 for
//! Kendall tau and the Mann-Kendall p-value.
#![allow(clippy::unwrap_used)]

use mrpt_app::pipeline::InputFile;
use mrpt_app::tpr::{TprOutput, TprParams, compute, join_into_ward_table, link_wards, read_export};
use mrpt_table::tpr::{AgeChoice, LevelChoice, MethodChoice, Selection};

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/../../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn run(export_name: &str, selection: Selection, n: usize) -> TprOutput {
    let bytes = fixture(&format!("tpr/{export_name}"));
    let export = read_export(
        InputFile {
            name: export_name,
            bytes: &bytes,
        },
        &Default::default(),
    )
    .unwrap();
    let shapefile = fixture("kano/kano_wards_shapefile.zip");
    let population = fixture("tpr/kano_population_synthetic.csv");
    let links = link_wards(
        &export,
        Some(&shapefile),
        Some(InputFile {
            name: "kano_population_synthetic.csv",
            bytes: &population,
        }),
        selection.age,
    )
    .unwrap()
    .links;
    let params = TprParams {
        selection,
        reprioritise_n: n,
        ..Default::default()
    };
    compute(&export, links, &params).unwrap()
}

fn file<'a>(out: &'a TprOutput, name: &str) -> &'a [u8] {
    &out.files.iter().find(|(n, _)| n == name).unwrap().1
}

/// Compares two CSV files cell by cell (tpr.md §0.10).
fn assert_csv_equal(ours: &[u8], expected_path: &str) {
    let expected = fixture(&format!("tpr/expected/{expected_path}"));
    let parse = |b: &[u8]| -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(b)
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    };
    let (a, b) = (parse(ours), parse(&expected));
    assert_eq!(a[0], b[0], "{expected_path}: header");
    assert_eq!(a.len(), b.len(), "{expected_path}: row count");
    let loose: Vec<bool> = b[0]
        .iter()
        .map(|h| h == "Kendall_Tau" || h == "MK_P_Value")
        .collect();
    for (i, (ra, rb)) in a.iter().zip(&b).enumerate().skip(1) {
        for (j, (x, y)) in ra.iter().zip(rb).enumerate() {
            let same = match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(p), Ok(q)) if loose[j] => (p - q).abs() <= 1e-12,
                (Ok(p), Ok(q)) => p == q,
                _ => x == y,
            };
            assert!(
                same,
                "{expected_path}: row {i} column {}: ours {x:?}, expected {y:?}",
                b[0][j]
            );
        }
    }
}

#[test]
fn all_levels_all_ages_both_methods_equal_expected() {
    for export in ["kano_nmep_2021_2024.xlsx", "kano_nmep_2021_2024.csv"] {
        let out = run(export, Selection::default(), 14);
        let pairs = [
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
        ];
        for (ours, expected) in pairs {
            assert_csv_equal(file(&out, ours), expected);
        }
        // Files are written the way the reference wrote them: byte for byte.
        assert_eq!(
            file(&out, "tpr_results.csv"),
            fixture("tpr/expected/tpr_results__all_all_ages_both.csv")
        );
        let s = &out.summary;
        assert_eq!(s["wards"], 67);
        assert_eq!(s["wards_without_tests"], serde_json::json!(["Kabuga"]));
        assert_eq!(s["wards_microscopy_used"].as_array().unwrap().len(), 15);
        assert_eq!(s["trend"]["worsening"], 8);
        let unmatched: Vec<&str> = s["unmatched_wards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["ward"].as_str().unwrap())
            .collect();
        assert_eq!(unmatched, ["Kurna Asabe", "Sabon Gari"]);
    }
}

#[test]
fn primary_under_fives_rdt_equal_expected() {
    let out = run(
        "kano_nmep_2021_2024.csv",
        Selection {
            level: LevelChoice::Primary,
            age: AgeChoice::U5,
            method: MethodChoice::Rdt,
            ..Default::default()
        },
        10,
    );
    assert_csv_equal(
        file(&out, "tpr_results.csv"),
        "tpr_results__primary_u5_rdt.csv",
    );
}

#[test]
fn summaries_equal_expected() {
    let bytes = fixture("tpr/kano_nmep_2021_2024.csv");
    let export = read_export(
        InputFile {
            name: "k.csv",
            bytes: &bytes,
        },
        &Default::default(),
    )
    .unwrap();
    let ours = serde_json::to_value(mrpt_analysis::tpr::summaries(&export, None).unwrap()).unwrap();
    // The reference wrote NaN for undefined TPRs (Python's json); we write null.
    let text = String::from_utf8(fixture("tpr/expected/summaries.json"))
        .unwrap()
        .replace("NaN", "null");
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in ["states", "facility_levels", "age_groups", "methods"] {
        let (a, b) = (
            ours[key].as_array().unwrap(),
            expected[key].as_array().unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{key}");
        for (x, y) in a.iter().zip(b) {
            for (field, want) in y.as_object().unwrap() {
                let got = &x[field];
                let same = match (got.as_f64(), want.as_f64()) {
                    (Some(p), Some(q)) => p == q,
                    _ => got == want,
                };
                assert!(same, "{key} {field}: ours {got}, expected {want} in {y}");
            }
        }
    }
}

#[test]
fn join_into_the_ward_table_equals_expected() {
    let out = run("kano_nmep_2021_2024.csv", Selection::default(), 10);
    let table = fixture("kano/kano_wards.csv");
    let (bytes, report) = join_into_ward_table(
        InputFile {
            name: "raw_data.csv",
            bytes: &table,
        },
        &fixture("kano/kano_wards_shapefile.zip"),
        &out.result,
        &out.links,
        "TPR",
        false,
    )
    .unwrap();
    assert_csv_equal(&bytes, "raw_data_with_tpr__all_all_ages_both.csv");
    assert!(report.blank.contains(&"Fagg c".to_string()));
    assert!(report.blank.contains(&"Yakasai".to_string()));
    assert!(report.blank.contains(&"Kabuga".to_string()));
    assert_eq!(report.other_tpr_columns, ["test_positivity_rate"]);
    // A second join into the joined table needs replace.
    let again = join_into_ward_table(
        InputFile {
            name: "raw_data.csv",
            bytes: &bytes,
        },
        &fixture("kano/kano_wards_shapefile.zip"),
        &out.result,
        &out.links,
        "TPR",
        false,
    );
    assert!(again.is_err());
}
