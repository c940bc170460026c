//! Parity with ChatMRPT's own outputs on the Kano sample (analysis.md §0.9): imputed values,
//! normalised values, per-model scores, median scores, ranks and categories (kano_auto with its
//! five variables named), PCA scores/ranks/EVR/importance (kano_auto and kano_custom), and ITN
//! allocations for the same population input ([J] rank and [N] rural-first).
#![allow(clippy::unwrap_used)]

mod reference_data;

use std::collections::HashMap;

use mrpt_analysis::{
    AnalysisInput, AnalysisOptions, AnalysisResult, ItnOptions, ItnPlan, ItnRankingRow,
    OutputTables, PcaCategories, PopulationRow, SelectionMethod, WardSpatial, analyze,
    composite_scores, itn_rankings, output_tables, plan_itn, unified_table,
};
use mrpt_table::{ItnStrategy, RankingMethod, Table};
use reference_data::{
    close, f, kano_input, read_csv_raw, read_records, read_shapefile, read_table, reference,
};

const TOL: f64 = 1e-9;

struct Kano {
    input: AnalysisInput,
    attrs: Vec<HashMap<String, String>>,
}

fn kano() -> Kano {
    let mut table = read_table(&kano_input("kano_wards.csv"));
    let (geoms, attrs) = read_shapefile(&kano_input("kano_wards_shapefile.zip"));
    let shp_names: Vec<Option<String>> =
        attrs.iter().map(|a| Some(a["WardName"].clone())).collect();
    let join = mrpt_table::match_wards(&mut table, &shp_names).unwrap();
    assert_eq!(join.report.unmatched_table, vec!["Fagg c".to_string()]);
    assert_eq!(join.report.fuzzy.len(), 3);
    Kano {
        input: AnalysisInput {
            table,
            geometries: Some(geoms),
            geometry_index: join.geometry_index,
            shapefile_state: None,
        },
        attrs,
    }
}

/// Runs with ChatMRPT's PCA category quirk so whole files compare; the default (§3.6 thirds)
/// is checked separately in `pca_default_categories_are_thirds`.
fn run(k: &Kano, vars: &[&str]) -> AnalysisResult {
    let options = AnalysisOptions {
        variables: Some(vars.iter().map(|s| s.to_string()).collect()),
        pca_categories: PcaCategories::ChatMrptLabelSlice,
        ..AnalysisOptions::default()
    };
    analyze(&k.input, &options).unwrap()
}

/// Headers equal; numeric cells within TOL; other cells equal as text.
fn assert_table_matches(ours: &Table, reference_file: &str) {
    let (headers, rows) = read_csv_raw(&reference(reference_file));
    let our_headers: Vec<&str> = ours.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(our_headers, headers, "{reference_file}: headers");
    assert_eq!(ours.n_rows(), rows.len(), "{reference_file}: row count");
    for (ci, col) in ours.columns().iter().enumerate() {
        for (ri, row) in rows.iter().enumerate() {
            let expected = &row[ci];
            let got = col.data.cell_text(ri).unwrap_or_default();
            match (expected.parse::<f64>(), got.parse::<f64>()) {
                (Ok(e), Ok(g)) => assert!(
                    close(g, e, TOL),
                    "{reference_file} row {ri} column {}: got {got}, expected {expected}",
                    col.name
                ),
                _ => assert_eq!(
                    &got, expected,
                    "{reference_file} row {ri} column {}",
                    col.name
                ),
            }
        }
    }
}

/// The output table of a §1.5 file name.
fn table<'a>(tables: &'a OutputTables, scores: &'a Table, name: &str) -> &'a Table {
    let pca = tables.pca.as_ref();
    match name {
        "analysis_cleaned_data.csv" => &tables.cleaned,
        "analysis_normalized_data.csv" => &tables.normalized,
        "analysis_vulnerability_rankings.csv" => &tables.rankings,
        "composite_scores.csv" | "analysis_composite_scores.csv" => scores,
        "model_formulas.csv" => &tables.model_formulas,
        "analysis_vulnerability_rankings_pca.csv" => &pca.unwrap().rankings,
        "analysis_pca_scores.csv" => &pca.unwrap().scores,
        other => panic!("no output table {other}"),
    }
}

fn population() -> Vec<PopulationRow> {
    read_records(&reference("kano_auto_population_input.csv"))
        .into_iter()
        .map(|r| PopulationRow {
            ward_name: r["AdminLevel3"].clone(),
            admin2: Some(r["AdminLevel2"].clone()),
            ward_code: None,
            population: f(&r["N_FamilyMembers"]),
            latitude: Some(f(&r["AvgLatitude"])),
            longitude: Some(f(&r["AvgLongitude"])),
        })
        .collect()
}

fn summary(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(reference(name)).unwrap()).unwrap()
}

fn assert_stats(plan: &ItnPlan, expected: &serde_json::Value) {
    let ours = serde_json::to_value(&plan.stats).unwrap();
    assert_eq!(&ours, expected, "ITN stats");
}

fn itn(rankings: &[ItnRankingRow], strategy: ItnStrategy) -> ItnPlan {
    plan_itn(
        rankings,
        &population(),
        &ItnOptions {
            total_nets: 100_000,
            avg_household_size: 5.0,
            urban_threshold: None,
            strategy: Some(strategy),
        },
    )
    .unwrap()
}

const AUTO_VARS: &[&str] = &[
    "rainfall",
    "total",
    "nets_per_capita",
    "distance_to_water_bodies",
    "dumpsites",
];

const CUSTOM_VARS: &[&str] = &[
    "test_positivity_rate",
    "enhanced_vegetation_index",
    "housing_quality",
    "distance_to_water_bodies",
    "rainfall",
    "dumpsites",
    "settlement_type_poor",
];

#[test]
fn kano_auto_composite_and_pca_match_reference() {
    let k = kano();
    let r = run(&k, AUTO_VARS);
    assert_eq!(r.selection.variables, AUTO_VARS);
    assert_eq!(r.selection.method, SelectionMethod::UserSpecified);
    assert_eq!(r.composite.models.len(), 26);
    let tables = output_tables(&r).unwrap();
    let scores = composite_scores(&r).view().unwrap().to_table().unwrap();
    for (ours, theirs) in [
        (
            "analysis_cleaned_data.csv",
            "kano_auto_analysis_cleaned_data.csv",
        ),
        (
            "analysis_normalized_data.csv",
            "kano_auto_analysis_normalized_data.csv",
        ),
        ("composite_scores.csv", "kano_auto_composite_scores.csv"),
        ("model_formulas.csv", "kano_auto_model_formulas.csv"),
        (
            "analysis_vulnerability_rankings.csv",
            "kano_auto_analysis_vulnerability_rankings.csv",
        ),
        (
            "analysis_vulnerability_rankings_pca.csv",
            "kano_auto_analysis_vulnerability_rankings_pca.csv",
        ),
        (
            "analysis_pca_scores.csv",
            "kano_auto_analysis_pca_scores.csv",
        ),
    ] {
        assert_table_matches(table(&tables, &scores, ours), theirs);
    }
    let s = summary("kano_auto_summary.json");
    let pca = r.pca.as_ref().unwrap();
    assert_eq!(pca.n_components, 4);
    let evr = s["pca_explained_variance"]["per_component"]
        .as_array()
        .unwrap();
    for (o, e) in pca.explained_variance.per_component.iter().zip(evr) {
        assert!(close(*o, e.as_f64().unwrap(), TOL));
    }
    let imp = s["pca_variable_importance"].as_object().unwrap();
    assert!(pca.importance.windows(2).all(|w| w[0].1 >= w[1].1));
    for (v, x) in &pca.importance {
        assert!(close(*x, imp[v].as_f64().unwrap(), TOL), "importance {v}");
    }
    // KMO 0.683 per analysis.md §4.5: suitable.
    assert!((pca.suitability.kmo.unwrap() - 0.683).abs() < 5e-4);
    assert!(pca.suitability.suitable);
}

#[test]
fn kano_auto_itn_rank_strategy_matches_reference() {
    let k = kano();
    let r = run(&k, AUTO_VARS);
    let s = summary("kano_auto_summary.json");
    for (method, file, stats) in [
        (
            RankingMethod::Composite,
            "kano_auto_itn_allocation_composite.csv",
            "itn_composite_stats",
        ),
        (
            RankingMethod::Pca,
            "kano_auto_itn_allocation_pca.csv",
            "itn_pca_stats",
        ),
    ] {
        let rankings = itn_rankings(&r, method, None, None).unwrap();
        let plan = itn(&rankings, ItnStrategy::Rank);
        assert_table_matches(&plan.allocation_table().unwrap(), file);
        assert_stats(&plan, &s[stats]);
        assert_eq!(plan.excluded_wards, vec!["Fagg c".to_string()]);
    }
}

#[test]
fn kano_custom_imputation_normalisation_and_pca_match_reference() {
    let k = kano();
    let r = run(&k, CUSTOM_VARS);
    assert_eq!(r.selection.variables, CUSTOM_VARS);
    assert_eq!(r.composite.models.len(), 120);
    let tables = output_tables(&r).unwrap();
    let scores = composite_scores(&r).view().unwrap().to_table().unwrap();
    for (ours, theirs) in [
        (
            "analysis_cleaned_data.csv",
            "kano_custom_analysis_cleaned_data.csv",
        ),
        (
            "analysis_normalized_data.csv",
            "kano_custom_analysis_normalized_data.csv",
        ),
        (
            "analysis_vulnerability_rankings_pca.csv",
            "kano_custom_analysis_vulnerability_rankings_pca.csv",
        ),
        (
            "analysis_pca_scores.csv",
            "kano_custom_analysis_pca_scores.csv",
        ),
    ] {
        assert_table_matches(table(&tables, &scores, ours), theirs);
    }
    let s = summary("kano_custom_summary.json");
    let pca = r.pca.as_ref().unwrap();
    assert_eq!(pca.n_components, 5);
    let evr = s["pca_explained_variance"]["per_component"]
        .as_array()
        .unwrap();
    for (o, e) in pca.explained_variance.per_component.iter().zip(evr) {
        assert!(close(*o, e.as_f64().unwrap(), TOL));
    }
    let imp = s["pca_variable_importance"].as_object().unwrap();
    for (v, x) in &pca.importance {
        assert!(close(*x, imp[v].as_f64().unwrap(), TOL), "importance {v}");
    }
    assert!((pca.suitability.kmo.unwrap() - 0.858).abs() < 5e-4);
    // Fagg c has no shape: its gap took the column mean (analysis.md §2.2 oracle check).
    let cleaned = &r.cleaned.table;
    let dist = cleaned
        .column("distance_to_water_bodies")
        .unwrap()
        .data
        .to_f64()
        .unwrap();
    let names = r.ward_names();
    let fagg = names.iter().position(|n| n == "Fagg c").unwrap();
    assert_eq!(dist[fagg], Some(6.132296545135592));
}

/// Rankings as an old session folder has them: only `analysis_vulnerability_rankings*.csv`.
fn rankings_from_file(
    file: &str,
    score_col: &str,
    rank_col: &str,
    urban: &HashMap<String, f64>,
) -> Vec<ItnRankingRow> {
    read_records(&reference(file))
        .into_iter()
        .map(|r| ItnRankingRow {
            ward_name: r["WardName"].clone(),
            ward_code: None,
            score: f(&r[score_col]),
            rank: r[rank_col].parse().unwrap(),
            category: r["vulnerability_category"].clone(),
            urban_pct: urban.get(&r["WardName"]).copied(),
            centroid: None,
        })
        .collect()
}

#[test]
fn kano_custom_itn_from_rankings_files_matches_reference() {
    let k = kano();
    let s = summary("kano_custom_summary.json");
    let none = HashMap::new();
    // [J] on ChatMRPT's own (five-variable capped) composite ranking, read from its file.
    let rk = rankings_from_file(
        "kano_custom_analysis_vulnerability_rankings.csv",
        "median_score",
        "overall_rank",
        &none,
    );
    let plan = itn(&rk, ItnStrategy::Rank);
    assert_table_matches(
        &plan.allocation_table().unwrap(),
        "kano_custom_itn_allocation_composite.csv",
    );
    assert_stats(&plan, &s["itn_composite_stats"]);
    // [J] on our PCA ranking.
    let r = run(&k, CUSTOM_VARS);
    let plan = itn(
        &itn_rankings(&r, RankingMethod::Pca, None, None).unwrap(),
        ItnStrategy::Rank,
    );
    assert_table_matches(
        &plan.allocation_table().unwrap(),
        "kano_custom_itn_allocation_pca.csv",
    );
    assert_stats(&plan, &s["itn_pca_stats"]);

    // [N] two-tier: the oracle injected urban_percentage = 100 where the shapefile says
    // Urban == "Yes", else 0; wards without a shape have no value (counted as 50).
    let urban: HashMap<String, f64> = k
        .attrs
        .iter()
        .map(|a| {
            let u = if a["Urban"] == "Yes" { 100.0 } else { 0.0 };
            (a["WardName"].clone(), u)
        })
        .collect();
    let s2 = summary("kano_custom_itn2026_summary.json");
    for (file, score, rank, out, key) in [
        (
            "kano_custom_analysis_vulnerability_rankings.csv",
            "median_score",
            "overall_rank",
            "kano_custom_itn2026_allocation_composite.csv",
            "composite",
        ),
        (
            "kano_custom_analysis_vulnerability_rankings_pca.csv",
            "pca_score",
            "pca_rank",
            "kano_custom_itn2026_allocation_pca.csv",
            "pca",
        ),
    ] {
        let rk = rankings_from_file(file, score, rank, &urban);
        let plan = itn(&rk, ItnStrategy::RuralFirst);
        assert_eq!(plan.urban_threshold, 75.0);
        assert_table_matches(&plan.allocation_table().unwrap(), out);
        assert_stats(&plan, &s2[key]["stats"]);
        let m = &s2["ward_matching_report"];
        assert_eq!(
            plan.matching.matched_wards as u64,
            m["matched_wards"].as_u64().unwrap()
        );
        assert!(close(
            plan.matching.average_match_score.unwrap(),
            m["average_match_score"].as_f64().unwrap(),
            TOL
        ));
    }
}

#[test]
fn pca_default_categories_are_thirds() {
    let k = kano();
    let quirk = run(&k, AUTO_VARS);
    let options = AnalysisOptions {
        variables: Some(AUTO_VARS.iter().map(|s| s.to_string()).collect()),
        ..AnalysisOptions::default()
    };
    let thirds = analyze(&k.input, &options).unwrap();
    let (a, b) = (quirk.pca.unwrap(), thirds.pca.unwrap());
    assert_eq!(a.pca_score, b.pca_score);
    let mut counts = [0; 3];
    for (x, y) in a.rankings.iter().zip(&b.rankings) {
        assert_eq!((x.row, x.rank), (y.row, y.rank));
        counts[y.category as usize] += 1;
    }
    assert_eq!(counts, [22, 22, 22]);
    // ChatMRPT's label-slice quirk gave 23/20/23 here.
    let quirk_high = a
        .rankings
        .iter()
        .filter(|w| w.category == mrpt_table::Category::High)
        .count();
    assert_eq!(quirk_high, 23);
}

#[test]
fn kano_auto_unified_dataset_matches_reference() {
    let k = kano();
    let r = run(&k, AUTO_VARS);
    // Geometry measures are the caller's (mrpt-formats); take the reference's own values so
    // every other column, data_completeness included, can be compared.
    let records = read_records(&reference("kano_auto_unified_dataset.csv"));
    let by_name: HashMap<String, &HashMap<String, String>> =
        records.iter().map(|r| (r["WardName"].clone(), r)).collect();
    let spatial: Vec<Option<WardSpatial>> = r
        .ward_names()
        .iter()
        .map(|name| {
            let rec = by_name[name];
            (!rec["area_km2"].is_empty()).then(|| WardSpatial {
                area_km2: f(&rec["area_km2"]),
                centroid_lat: f(&rec["centroid_lat"]),
                centroid_lon: f(&rec["centroid_lon"]),
                perimeter_km: f(&rec["perimeter_km"]),
            })
        })
        .collect();
    let t = unified_table(&r, Some(&spatial), "2026-11-29T05:39:49.053110").unwrap();
    // The reference's floats went through pandas' fast CSV parser: equal to ~1e-15.
    assert_table_matches(&t, "kano_auto_unified_dataset.csv");
}

/// Area, perimeter and centroid agree with geopandas (reference kano_custom_unified_dataset.csv),
/// and a ward without a shape has none.
#[test]
fn spatial_measures_match_geopandas() {
    let k = kano();
    let geometry_of = |name: &str| {
        let row = k
            .input
            .table
            .ward_names()
            .iter()
            .position(|n| n.as_deref() == Some(name))
            .unwrap();
        k.input.geometry_index[row].map(|g| k.input.geometries.as_ref().unwrap()[g].clone())
    };
    let expected = [
        (
            "Adakawa",
            0.21752752982193116,
            12.010156126362066,
            8.511851697016311,
            3.531105485733615,
        ),
        (
            "Bakin Ruwa",
            0.3083461171643668,
            11.998105155143984,
            8.503949925993542,
            3.1658106235496635,
        ),
        (
            "Gawuna",
            1.2235728859620776,
            12.025827803714657,
            8.551049766575128,
            7.47312598070347,
        ),
        (
            "Zaitawa",
            0.6609701552111218,
            12.007771186468645,
            8.519951924459235,
            4.6426786143914445,
        ),
    ];
    for (name, area, lat, lon, perimeter) in expected {
        let geometry = geometry_of(name).flatten().unwrap();
        let s = WardSpatial::of(&geometry);
        let near = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * b.abs();
        assert!(near(s.area_km2, area, 1e-9), "{name} area {}", s.area_km2);
        assert!(
            near(s.perimeter_km, perimeter, 1e-9),
            "{name} perimeter {}",
            s.perimeter_km
        );
        assert!(
            near(s.centroid_lat, lat, 1e-12),
            "{name} lat {}",
            s.centroid_lat
        );
        assert!(
            near(s.centroid_lon, lon, 1e-12),
            "{name} lon {}",
            s.centroid_lon
        );
    }
    let rows = mrpt_analysis::row_spatial(&[geometry_of("Fagg c").flatten()]);
    assert_eq!(rows, [None]);
}
