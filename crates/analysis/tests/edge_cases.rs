//! The edge cases of issue 4: each gives a clear error or a warning, never a panic.
#![allow(clippy::unwrap_used)]

use mrpt_analysis::{
    AnalysisInput, AnalysisOptions, Direction, DirectionSource, Error, ItnOptions, ItnRankingRow,
    PopulationRow, WarningKind, analyze, plan_itn,
};
use mrpt_table::{Column, ColumnData, ItnStrategy, RankingMethod, Table, WardTable};

fn names(n: usize) -> Column {
    Column::new(
        "WardName",
        ColumnData::Text((0..n).map(|i| Some(format!("Ward {i}"))).collect()),
    )
}

fn num(name: &str, v: &[f64]) -> Column {
    Column::new(
        name,
        ColumnData::Float(
            v.iter()
                .map(|x| if x.is_nan() { None } else { Some(*x) })
                .collect(),
        ),
    )
}

fn input(columns: Vec<Column>) -> AnalysisInput {
    AnalysisInput {
        table: WardTable::from_table(Table::new(columns).unwrap()).unwrap(),
        geometries: None,
        geometry_index: Vec::new(),
        shapefile_state: None,
    }
}

fn vars(v: &[&str]) -> AnalysisOptions {
    AnalysisOptions {
        variables: Some(v.iter().map(|s| s.to_string()).collect()),
        ..AnalysisOptions::default()
    }
}

#[test]
fn fewer_than_two_usable_variables() {
    let i = input(vec![
        names(4),
        num("a", &[1.0, 2.0, 3.0, 4.0]),
        num("flat", &[2.0; 4]),
    ]);
    let e = analyze(&i, &vars(&["a", "flat"])).unwrap_err();
    assert!(matches!(e, Error::TooFewVariables { found: 1, .. }), "{e}");
    assert!(e.to_string().contains("constant"), "{e}");
    let e = analyze(&i, &vars(&["a"])).unwrap_err();
    assert!(matches!(e, Error::TooFewVariables { found: 1, .. }));
    // Automatic selection has only one usable column.
    let e = analyze(&i, &AnalysisOptions::default()).unwrap_err();
    assert!(matches!(e, Error::TooFewVariables { .. }), "{e}");
}

#[test]
fn all_missing_column_is_zero_filled_and_never_selected() {
    let nan = f64::NAN;
    let i = input(vec![
        names(4),
        num("a", &[1.0, 2.0, 3.0, 4.0]),
        num("b", &[4.0, 1.0, 3.0, 2.0]),
        num("empty", &[nan; 4]),
    ]);
    let r = analyze(&i, &AnalysisOptions::default()).unwrap();
    assert_eq!(r.selection.variables, vec!["a", "b"]);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == WarningKind::ColumnAllMissing)
    );
    assert_eq!(
        r.cleaned.table.column("empty").unwrap().data,
        ColumnData::Float(vec![Some(0.0); 4])
    );
    let e = analyze(&i, &vars(&["a", "empty"])).unwrap_err();
    assert!(matches!(e, Error::TooFewVariables { .. }));
}

#[test]
fn one_ward_and_two_wards() {
    let e = analyze(
        &input(vec![names(1), num("a", &[1.0]), num("b", &[2.0])]),
        &vars(&["a", "b"]),
    )
    .unwrap_err();
    assert_eq!(e, Error::TooFewWards { found: 1 });
    let e = analyze(
        &input(vec![names(0), num("a", &[]), num("b", &[])]),
        &vars(&["a", "b"]),
    )
    .unwrap_err();
    assert_eq!(e, Error::NoWards);

    let r = analyze(
        &input(vec![names(2), num("a", &[1.0, 2.0]), num("b", &[3.0, 5.0])]),
        &vars(&["a", "b"]),
    )
    .unwrap();
    let ranks: Vec<usize> = r.composite.rankings.iter().map(|w| w.rank).collect();
    assert_eq!(ranks, vec![1, 2]);
    assert_eq!(r.composite.rankings[0].ward_name, "Ward 1");
    // n < 3: everyone is Medium.
    assert!(
        r.composite
            .rankings
            .iter()
            .all(|w| w.category.label() == "Medium Risk")
    );
    // Two variables: PCA runs but is flagged unsuitable.
    assert!(r.pca.is_some());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == WarningKind::PcaUnsuitable)
    );
}

#[test]
fn pca_that_cannot_run_is_a_warning_not_an_error() {
    // 2 wards, 5 variables: 4 components > 2 wards.
    let cols: Vec<Column> = std::iter::once(names(2))
        .chain((0..5).map(|i| num(&format!("v{i}"), &[i as f64, (i * i + 1) as f64])))
        .collect();
    let r = analyze(&input(cols), &vars(&["v0", "v1", "v2", "v3", "v4"])).unwrap();
    assert!(r.pca.is_none());
    assert!(r.warnings.iter().any(|w| w.kind == WarningKind::PcaFailed));
    assert_eq!(r.composite.models.len(), 26);
}

#[test]
fn more_than_fifteen_variables() {
    let n = 5;
    let mut cols = vec![names(n)];
    let mut wanted = Vec::new();
    for v in 0..16 {
        let name = format!("var{v}");
        cols.push(num(
            &name,
            &(0..n)
                .map(|i| ((i * (v + 3)) % 7) as f64)
                .collect::<Vec<_>>(),
        ));
        wanted.push(name);
    }
    let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let e = analyze(&input(cols), &vars(&refs)).unwrap_err();
    assert_eq!(e, Error::TooManyVariables { count: 16, max: 15 });
}

#[test]
fn inverse_variable_with_zero_or_negative_values_warns() {
    let i = input(vec![
        names(4),
        num("distance_to_clinic", &[0.0, 2.0, 3.0, 4.0]),
        num("rainfall", &[1.0, 2.0, 3.0, 4.0]),
    ]);
    let r = analyze(&i, &vars(&["distance_to_clinic", "rainfall"])).unwrap();
    let w = r
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::InverseNonPositive)
        .expect("warning");
    assert!(w.message.contains("distance_to_clinic"));
    // The zero ward takes the whole inverse range, as ChatMRPT's formula does.
    let nc = &r.normalized[0];
    assert_eq!(nc.values[0], 1.0);
    assert!(nc.values[1] < 1e-9);
}

#[test]
fn relationship_overrides_are_applied_and_reported() {
    let mut o = vars(&["distance_to_clinic", "rainfall"]);
    o.relationships
        .insert("Distance_To_Clinic".into(), Direction::Direct);
    o.relationships.insert("nope".into(), Direction::Inverse);
    let i = input(vec![
        names(3),
        num("distance_to_clinic", &[1.0, 2.0, 3.0]),
        num("rainfall", &[1.0, 3.0, 2.0]),
    ]);
    let r = analyze(&i, &o).unwrap();
    assert_eq!(r.directions[0].direction, Direction::Direct);
    assert_eq!(r.directions[0].source, DirectionSource::Override);
    assert_eq!(r.normalized[0].values, vec![0.0, 0.5, 1.0]);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == WarningKind::OverrideIgnored)
    );
}

#[test]
fn malformed_tables() {
    // No ward column and ragged columns cannot reach `analyze`: the table types refuse them.
    let e = WardTable::from_table(Table::new(vec![num("a", &[1.0, 2.0])]).unwrap()).unwrap_err();
    assert!(matches!(e, mrpt_table::Error::NoWardColumn { .. }), "{e}");
    let e = Table::new(vec![names(3), num("a", &[1.0, 2.0])]).unwrap_err();
    assert!(matches!(e, mrpt_table::Error::ColumnLength { .. }), "{e}");
    let mut i = input(vec![names(2), num("a", &[1.0, 2.0]), num("b", &[2.0, 1.0])]);
    i.geometries = Some(vec![]);
    i.geometry_index = vec![Some(0), None];
    let e = analyze(&i, &vars(&["a", "b"])).unwrap_err();
    assert!(matches!(e, Error::BadGeometryIndex { row: 0, .. }), "{e}");
}

#[test]
fn duplicate_names_with_codes_are_renamed() {
    let i = input(vec![
        Column::new(
            "WardName",
            ColumnData::Text(vec![Some("A".into()), Some("A".into()), Some("B".into())]),
        ),
        Column::new(
            "WardCode",
            ColumnData::Text(vec![
                Some("KN1".into()),
                Some("KN2".into()),
                Some("KN3".into()),
            ]),
        ),
        num("x", &[1.0, 2.0, 3.0]),
        num("y", &[3.0, 1.0, 2.0]),
    ]);
    let r = analyze(&i, &vars(&["x", "y"])).unwrap();
    assert_eq!(r.ward_names(), vec!["A (KN1)", "A (KN2)", "B"]);
    assert_eq!(r.pca.unwrap().rows.len(), 3);
    // Without codes PCA keeps the first of each name.
    let i = input(vec![
        Column::new(
            "WardName",
            ColumnData::Text(vec![Some("A".into()), Some("A".into()), Some("B".into())]),
        ),
        num("x", &[1.0, 2.0, 3.0]),
        num("y", &[3.0, 1.0, 2.0]),
    ]);
    let r = analyze(&i, &vars(&["x", "y"])).unwrap();
    assert_eq!(r.pca.unwrap().rows, vec![0, 2]);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == WarningKind::DuplicateWardNames)
    );
}

fn ranking(n: usize, urban: Option<f64>) -> Vec<ItnRankingRow> {
    (0..n)
        .map(|i| ItnRankingRow {
            ward_name: format!("Ward {i}"),
            ward_code: None,
            score: 1.0 - i as f64 / n as f64,
            rank: i + 1,
            category: "Medium Risk".into(),
            urban_pct: urban,
            centroid: None,
        })
        .collect()
}

fn nets(total: i64, strategy: ItnStrategy) -> ItnOptions {
    ItnOptions {
        total_nets: total,
        strategy: Some(strategy),
        ..ItnOptions::default()
    }
}

#[test]
fn total_nets_zero_or_negative() {
    let pop = vec![PopulationRow {
        ward_name: "Ward 0".into(),
        admin2: None,
        ward_code: None,
        population: 100.0,
        latitude: None,
        longitude: None,
    }];
    for total in [0, -5] {
        let e = plan_itn(&ranking(3, None), &pop, &nets(total, ItnStrategy::Rank)).unwrap_err();
        assert_eq!(e, Error::InvalidTotalNets(total));
    }
    let mut o = nets(10, ItnStrategy::Rank);
    o.avg_household_size = 0.0;
    assert!(matches!(
        plan_itn(&ranking(3, None), &pop, &o).unwrap_err(),
        Error::InvalidHouseholdSize(_)
    ));
}

#[test]
fn missing_population_for_every_ward() {
    let pop = vec![PopulationRow {
        ward_name: "Elsewhere".into(),
        admin2: None,
        ward_code: None,
        population: 100.0,
        latitude: None,
        longitude: None,
    }];
    let e = plan_itn(&ranking(3, None), &pop, &nets(1000, ItnStrategy::Rank)).unwrap_err();
    assert!(matches!(
        e,
        Error::NoPopulationMatch {
            rankings: 3,
            population: 1
        }
    ));
    let e = plan_itn(&ranking(3, None), &[], &nets(1000, ItnStrategy::Rank)).unwrap_err();
    assert!(matches!(e, Error::NoPopulationMatch { .. }));
    // [N]: everyone gets 10,000 people, with a warning.
    let plan = plan_itn(
        &ranking(3, Some(0.0)),
        &[],
        &nets(100_000, ItnStrategy::RuralFirst),
    )
    .unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.kind == WarningKind::UnmatchedPopulation)
    );
    assert!(
        plan.allocations
            .iter()
            .all(|a| a.population == 10_000.0 && a.population_imputed)
    );
    assert_eq!(plan.matching.unmatched_wards, 3);
    assert_eq!(plan.stats.allocated, 3 * 5556);
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.kind == WarningKind::NetsLeftOver)
    );
}

#[test]
fn empty_or_nan_ranking() {
    let mut r = ranking(2, None);
    for w in &mut r {
        w.score = f64::NAN;
    }
    assert_eq!(
        plan_itn(&r, &[], &nets(10, ItnStrategy::Rank)).unwrap_err(),
        Error::EmptyRanking
    );
}

#[test]
fn default_strategy_follows_urban_data() {
    let pop: Vec<PopulationRow> = (0..3)
        .map(|i| PopulationRow {
            ward_name: format!("Ward {i}"),
            admin2: None,
            ward_code: None,
            population: 900.0,
            latitude: None,
            longitude: None,
        })
        .collect();
    let o = ItnOptions {
        total_nets: 10_000,
        ..ItnOptions::default()
    };
    assert_eq!(
        plan_itn(&ranking(3, None), &pop, &o).unwrap().strategy,
        ItnStrategy::Rank
    );
    let plan = plan_itn(&ranking(3, Some(10.0)), &pop, &o).unwrap();
    assert_eq!(plan.strategy, ItnStrategy::RuralFirst);
    assert_eq!(plan.urban_threshold, 75.0);
}

#[test]
fn population_from_a_data_column() {
    let i = input(vec![
        names(3),
        num("a", &[1.0, 2.0, 3.0]),
        num("b", &[3.0, 1.0, 2.0]),
        num("Population", &[900.0, f64::NAN, 1800.0]),
    ]);
    let r = analyze(&i, &vars(&["a", "b"])).unwrap();
    let pop = mrpt_analysis::population_from_table(&r).unwrap();
    assert_eq!(pop.len(), 3);
    // The gap was imputed like any other numeric column (neighbour/column mean).
    assert_eq!(pop[1].population, 1350.0);
    let rows = mrpt_analysis::itn_rankings(&r, RankingMethod::Composite, None, None).unwrap();
    let plan = plan_itn(&rows, &pop, &nets(1_000, ItnStrategy::Rank)).unwrap();
    assert_eq!(plan.stats.allocated, 1_000);
    assert_eq!(plan.allocations[0].ward_name, "Ward 2");
    assert_eq!(plan.allocations[0].nets_needed, 1000);
}
