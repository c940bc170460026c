//! Property tests over seeded random datasets: scores in [0, 1], ranks a permutation,
//! categories sized as §3.6, monotonicity of the composite score, allocations within the nets
//! available, determinism.
#![allow(clippy::unwrap_used)]

mod synthetic;

use mrpt_analysis::{AnalysisOptions, ItnOptions, analyze, itn_rankings, plan_itn};
use mrpt_table::{Category, ColumnData, ItnStrategy, RankingMethod};
use synthetic::{Rng, dataset, population};

const CASES: u64 = 40;

fn options(p: usize) -> AnalysisOptions {
    AnalysisOptions {
        variables: Some(
            synthetic::VARIABLE_NAMES[..p]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        ..AnalysisOptions::default()
    }
}

fn check_ranking(ranks: &[usize], cats: &[Category], n: usize) {
    let mut sorted = ranks.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=n).collect::<Vec<_>>(),
        "ranks are a permutation"
    );
    let high = cats.iter().filter(|c| **c == Category::High).count();
    let low = cats.iter().filter(|c| **c == Category::Low).count();
    assert_eq!(high, n / 3);
    assert_eq!(low, n / 3);
}

#[test]
fn scores_ranks_and_categories() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed);
        let n = 2 + rng.below(80);
        let p = 2 + rng.below(5);
        let input = dataset(n, p, 0.1, seed);
        let r = analyze(&input, &options(p)).unwrap();
        let m = &r.composite.model_scores;
        for s in (0..m.rows()).flat_map(|row| m.row(row)) {
            assert!((0.0..=1.0).contains(s), "model score {s}");
        }
        for s in &r.composite.median_score {
            assert!((0.0..=1.0).contains(s), "median score {s}");
        }
        for nc in &r.normalized {
            assert!(nc.values.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        let ranks: Vec<usize> = r.composite.rankings.iter().map(|w| w.rank).collect();
        let cats: Vec<Category> = r.composite.rankings.iter().map(|w| w.category).collect();
        check_ranking(&ranks, &cats, n);
        // Sorted descending by score.
        assert!(
            r.composite
                .rankings
                .windows(2)
                .all(|w| w[0].score >= w[1].score)
        );
        if let Some(pca) = &r.pca {
            let ranks: Vec<usize> = pca.rankings.iter().map(|w| w.rank).collect();
            let cats: Vec<Category> = pca.rankings.iter().map(|w| w.category).collect();
            check_ranking(&ranks, &cats, pca.rows.len());
            let total: f64 = pca.importance.iter().map(|x| x.1).sum();
            assert!((total - 1.0).abs() < 1e-12);
            assert!(pca.explained_variance.total_explained <= 1.0 + 1e-12);
        }
        // No gaps remain after imputation.
        for c in r.cleaned.table.columns() {
            assert_eq!(c.data.missing_count(), 0, "column {}", c.name);
        }
    }
}

#[test]
fn raising_a_direct_variable_never_lowers_a_wards_score() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed + 1000);
        let n = 3 + rng.below(40);
        let p = 2 + rng.below(4);
        // "tpr" and "rainfall" are direct; keep the first variable direct and complete.
        let input = dataset(n, p, 0.0, seed);
        let base = analyze(&input, &options(p)).unwrap();
        let ward = rng.below(n);
        let mut raised = input.clone();
        if let ColumnData::Float(v) = &raised.table.table.columns()[1].data {
            let mut v = v.clone();
            let old = v[ward].unwrap();
            v[ward] = Some(old + rng.unit() * 5.0);
            raised
                .table
                .table
                .set_data(1, ColumnData::Float(v))
                .unwrap();
        }
        let after = analyze(&raised, &options(p)).unwrap();
        assert!(
            after.composite.median_score[ward] >= base.composite.median_score[ward] - 1e-12,
            "seed {seed}: {} -> {}",
            base.composite.median_score[ward],
            after.composite.median_score[ward]
        );
    }
}

#[test]
fn allocation_never_exceeds_nets() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed + 5000);
        let n = 2 + rng.below(60);
        let input = dataset(n, 3, 0.05, seed);
        let r = analyze(&input, &options(3)).unwrap();
        let mut rows = itn_rankings(&r, RankingMethod::Composite, None, None).unwrap();
        for row in &mut rows {
            row.urban_pct = Some((rng.below(101)) as f64);
        }
        let pop = population(n, seed);
        for strategy in [ItnStrategy::Rank, ItnStrategy::RuralFirst] {
            let total = 1 + rng.below(200_000) as i64;
            let plan = plan_itn(
                &rows,
                &pop,
                &ItnOptions {
                    total_nets: total,
                    strategy: Some(strategy),
                    ..ItnOptions::default()
                },
            )
            .unwrap();
            let allocated: i64 = plan.allocations.iter().map(|a| a.nets_allocated).sum();
            assert!(allocated <= total);
            assert_eq!(plan.stats.allocated, allocated);
            assert_eq!(plan.stats.remaining, total - allocated);
            for a in &plan.allocations {
                assert!(a.nets_allocated <= a.nets_needed && a.nets_allocated > 0);
            }
            // At most one partial ward, and it is the last one allocated.
            let partial: Vec<usize> = plan
                .allocations
                .iter()
                .enumerate()
                .filter(|(_, a)| a.nets_allocated < a.nets_needed)
                .map(|(i, _)| i)
                .collect();
            assert!(partial.len() <= 1);
            if let Some(&i) = partial.first() {
                assert_eq!(i, plan.allocations.len() - 1);
                assert_eq!(plan.stats.remaining, 0);
            }
        }
    }
}

#[test]
fn determinism() {
    for seed in 0..5 {
        let input = dataset(120, 5, 0.1, seed);
        let a = serde_json::to_string(&analyze(&input, &options(5)).unwrap()).unwrap();
        let b = serde_json::to_string(&analyze(&input, &options(5)).unwrap()).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn input_and_result_round_trip_through_serde() {
    let input = dataset(30, 4, 0.1, 7);
    let json = serde_json::to_string(&input).unwrap();
    let back: mrpt_analysis::AnalysisInput = serde_json::from_str(&json).unwrap();
    assert_eq!(back, input);
    let r = analyze(&input, &options(4)).unwrap();
    let back: mrpt_analysis::AnalysisResult =
        serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back.composite.rankings, r.composite.rankings);
}

/// Whatever the table holds (infinities, text, booleans, empty columns, odd geometry), the
/// analysis and ITN planning return a result or an error; they never panic.
#[test]
fn arbitrary_tables_never_panic() {
    use mrpt_analysis::{AnalysisInput, PopulationRow, output_tables, unified_table};
    use mrpt_table::{Column, Geometry, Polygon, Table, WardTable};
    let mut analysed = 0;
    for seed in 0..300u64 {
        let mut rng = Rng::new(seed + 9000);
        let n = rng.below(12);
        let mut columns = vec![Column::new(
            "WardName",
            ColumnData::Text(
                (0..n)
                    .map(|i| (rng.below(8) > 0).then(|| format!("W{}", i % (1 + rng.below(n + 1)))))
                    .collect(),
            ),
        )];
        let mut names = Vec::new();
        for c in 0..rng.below(6) {
            let name = format!(
                "{}_{c}",
                ["tpr", "distance", "urban_percentage", "x"][rng.below(4)]
            );
            let data = match rng.below(5) {
                0 => ColumnData::Text(
                    (0..n)
                        .map(|_| (rng.below(3) > 0).then(|| "a".to_string()))
                        .collect(),
                ),
                1 => ColumnData::Bool(
                    (0..n)
                        .map(|_| (rng.below(3) > 0).then(|| rng.below(2) == 0))
                        .collect(),
                ),
                2 => ColumnData::Int((0..n).map(|_| Some(rng.below(5) as i64 - 2)).collect()),
                _ => ColumnData::Float(
                    (0..n)
                        .map(|_| match rng.below(8) {
                            0 => None,
                            1 => Some(f64::INFINITY),
                            2 => Some(f64::NAN),
                            3 => Some(0.0),
                            _ => Some(rng.unit() * 10.0 - 2.0),
                        })
                        .collect(),
                ),
            };
            names.push(name.clone());
            columns.push(Column::new(name, data));
        }
        let geoms: Vec<Option<Geometry>> = (0..rng.below(n + 2))
            .map(|_| {
                Some(Geometry::MultiPolygon(vec![Polygon {
                    exterior: (0..rng.below(5))
                        .map(|_| {
                            [
                                rng.below(3) as f64,
                                if rng.below(10) == 0 {
                                    f64::NAN
                                } else {
                                    rng.below(3) as f64
                                },
                            ]
                        })
                        .collect(),
                    holes: vec![],
                }]))
            })
            .collect();
        let geometry_index = (0..n)
            .map(|_| (!geoms.is_empty() && rng.below(4) > 0).then(|| rng.below(geoms.len())))
            .collect();
        let input = AnalysisInput {
            table: WardTable::from_table(Table::new(columns).unwrap()).unwrap(),
            geometries: (rng.below(2) == 0).then_some(geoms),
            geometry_index,
            shapefile_state: None,
        };
        let options = if rng.below(2) == 0 {
            mrpt_analysis::AnalysisOptions::default()
        } else {
            mrpt_analysis::AnalysisOptions {
                variables: Some(names.clone()),
                ..mrpt_analysis::AnalysisOptions::default()
            }
        };
        let Ok(r) = analyze(&input, &options) else {
            continue;
        };
        analysed += 1;
        let _ = output_tables(&r);
        let _ = unified_table(&r, None, "t");
        let rows = itn_rankings(&r, RankingMethod::Composite, None, None).unwrap();
        let pop: Vec<PopulationRow> = r
            .ward_names()
            .into_iter()
            .map(|w| PopulationRow {
                ward_name: w,
                admin2: None,
                ward_code: None,
                population: rng.unit() * 1e4,
                latitude: None,
                longitude: None,
            })
            .collect();
        for strategy in [ItnStrategy::Rank, ItnStrategy::RuralFirst] {
            let _ = plan_itn(
                &rows,
                &pop,
                &ItnOptions {
                    total_nets: rng.below(50_000) as i64 - 10,
                    strategy: Some(strategy),
                    ..ItnOptions::default()
                },
            );
        }
    }
    // Enough random tables got through to exercise everything after the analysis.
    assert!(analysed >= 20, "only {analysed} analyses succeeded");
}
