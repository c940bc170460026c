//! The exploration statistics and LGA aggregates on the Kano sample against values pandas and
//! scipy computed once (`tests/fixtures/explore_scipy.json`, made by
//! `scripts/fixtures/explore_scipy.py`).
#![allow(clippy::unwrap_used)]

mod reference_data;

use mrpt_analysis::explore::{self, describe};
use mrpt_analysis::lga::{aggregate_by_lga, assign_lgas, join_shapefile_lgas};
use mrpt_analysis::stats::CorrelationMethod;
use mrpt_table::{Cell, Column, ColumnData, Table};
use reference_data::{kano_input, read_plain_table, read_shapefile};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/explore_scipy.json")).unwrap()
}

fn kano() -> Table {
    read_plain_table(&kano_input("kano_wards.csv"))
}

fn attributes() -> Table {
    let (_, attrs) = read_shapefile(&kano_input("kano_wards_shapefile.zip"));
    let names = ["WardName", "WardCode", "LGACode"];
    Table::new(
        names
            .iter()
            .map(|n| {
                Column::new(
                    *n,
                    ColumnData::texts(attrs.iter().map(|a| a.get(*n).cloned().unwrap_or_default())),
                )
            })
            .collect(),
    )
    .unwrap()
}

fn float(c: Cell) -> f64 {
    match c {
        Cell::Float(f) => f,
        Cell::Int(i) => i as f64,
        other => panic!("{other:?}"),
    }
}

fn close(got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs().max(1e-300),
        "{got} vs {want}"
    );
}

#[test]
fn describe_matches_pandas() {
    let t = kano();
    let want = &fixture()["describe"];
    for (column, stats) in want.as_object().unwrap() {
        let d = describe(&t, column, None).unwrap();
        for (ours, theirs) in [
            ("count", "count"),
            ("mean", "mean"),
            ("std", "std"),
            ("min", "min"),
            ("25%", "25%"),
            ("50%", "50%"),
            ("75%", "75%"),
            ("max", "max"),
        ] {
            close(
                float(explore::cell(&d, ours, 0)),
                stats[theirs].as_f64().unwrap(),
                1e-12,
            );
        }
    }
}

#[test]
fn correlations_match_scipy() {
    let t = kano();
    for c in fixture()["correlations"].as_array().unwrap() {
        let (a, b) = (c["a"].as_str().unwrap(), c["b"].as_str().unwrap());
        let (_, _, p) = explore::correlate(&t, a, b, CorrelationMethod::Pearson).unwrap();
        let (_, _, s) = explore::correlate(&t, a, b, CorrelationMethod::Spearman).unwrap();
        assert_eq!(p.n as u64, c["n"].as_u64().unwrap());
        close(p.r, c["pearson_r"].as_f64().unwrap(), 1e-12);
        close(p.p, c["pearson_p"].as_f64().unwrap(), 1e-9);
        close(s.r, c["spearman_r"].as_f64().unwrap(), 1e-12);
        close(s.p, c["spearman_p"].as_f64().unwrap(), 1e-9);
    }
}

#[test]
fn lga_weighted_means_match_pandas() {
    let mut t = kano();
    // `total` stands in for population: the weights of the mean and the rate.
    let total = t.remove("total").unwrap();
    t.push("population", total.data).unwrap();
    let lgas = join_shapefile_lgas(&t, &attributes()).unwrap();
    let assignment = assign_lgas(&t, Some(&lgas), None).unwrap();
    assert_eq!(assignment.source, "shapefile");
    let agg = aggregate_by_lga(&t, &assignment, &[]).unwrap();
    let want = fixture()["lga_weighted_by_total"].clone();
    let want = want.as_object().unwrap();
    assert_eq!(agg.n_rows(), want.len());
    for r in 0..agg.n_rows() {
        let Cell::Text(code) = explore::cell(&agg, "LGA", r) else {
            panic!()
        };
        let w = &want[&code];
        assert_eq!(
            explore::cell(&agg, "wards", r),
            Cell::Int(w["wards"].as_i64().unwrap())
        );
        close(
            float(explore::cell(&agg, "population", r)),
            w["population"].as_f64().unwrap(),
            1e-12,
        );
        for c in ["rainfall", "test_positivity_rate", "housing_quality"] {
            close(
                float(explore::cell(&agg, c, r)),
                w[c].as_f64().unwrap(),
                1e-12,
            );
        }
    }
}
