//! Automatic variable selection on real inputs, with §0.5's fixes (token-based fallback filter,
//! whole-word ward-name heuristic). These differ from ChatMRPT's buggy picks on purpose.
#![allow(clippy::unwrap_used)]

mod reference_data;

use std::path::PathBuf;

use mrpt_analysis::{AnalysisInput, AnalysisOptions, SelectionMethod, analyze};
use reference_data::{read_shapefile, read_table, repo_root};

fn load(dir: &str, csv: &str, zip: &str, state_field: Option<&str>) -> AnalysisInput {
    let base: PathBuf = repo_root().join("tests/fixtures").join(dir);
    let mut table = read_table(&base.join(csv));
    let (geoms, attrs) = read_shapefile(&base.join(zip));
    let shp: Vec<Option<String>> = attrs.iter().map(|a| Some(a["WardName"].clone())).collect();
    let join = mrpt_table::match_wards(&mut table, &shp).unwrap();
    AnalysisInput {
        table,
        geometries: Some(geoms),
        geometry_index: join.geometry_index,
        shapefile_state: state_field.map(|f| attrs[0][f].clone()),
    }
}

#[test]
fn kano_fallback_keeps_tpr_and_housing() {
    let input = load("kano", "kano_wards.csv", "kano_wards_shapefile.zip", None);
    let r = analyze(&input, &AnalysisOptions::default()).unwrap();
    assert_eq!(r.selection.method, SelectionMethod::FallbackNumeric);
    // ChatMRPT's substring filter dropped test_positivity_rate and housing_quality (both
    // contain "y"); tokens keep them. enhanced_vegetation_index still goes: "index" is one of
    // the excluded tokens. Cap of 8.
    assert_eq!(
        r.selection.variables,
        vec![
            "rainfall",
            "total",
            "nets_per_capita",
            "settlement_type_poor",
            "distance_to_water_bodies",
            "test_positivity_rate",
            "housing_quality",
            "dumpsites",
        ]
    );
    assert_eq!(r.composite.models.len(), 247);
}

#[test]
fn ilorin_runs_and_uses_the_shapefile_state_code() {
    let input = load(
        "ilorin",
        "ilorin_wards.csv",
        "ilorin_wards_shapefile.zip",
        Some("StateCode"),
    );
    let r = analyze(&input, &AnalysisOptions::default()).unwrap();
    // Kwara is North_Central; "Balogun" no longer reads as Ogun (South_West).
    assert_eq!(r.selection.zone.as_deref(), Some("North_Central"));
    assert!(r.selection.variables.len() >= 2);
    assert!(
        !r.selection
            .variables
            .iter()
            .any(|v| v == "X" || v.starts_with("Unnamed"))
    );
    assert_eq!(r.composite.rankings.len(), input.table.table.n_rows());
    // Without state information the ward-name heuristic decides: "Balogun" no longer counts,
    // but "Oka-Ogun" holds the whole word "ogun".
    let mut no_state = input.clone();
    no_state.shapefile_state = None;
    let r = analyze(&no_state, &AnalysisOptions::default()).unwrap();
    assert_eq!(r.selection.zone.as_deref(), Some("South_West"));
    assert_eq!(r.selection.zone_source.as_deref(), Some("ward_names"));
}
