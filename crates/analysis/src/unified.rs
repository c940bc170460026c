//! The unified dataset (§1.4): the cleaned table joined with both rankings, the PCs, the model
//! scores and their agreement statistics, spatial measures and the method comparison columns, in
//! ChatMRPT's column order. Geometry-derived numbers and the timestamp come from the caller.

use serde::{Deserialize, Serialize};

use crate::linalg::pairwise_sum;
use crate::output::{Cell, OutputColumn, OutputTable};
use crate::pipeline::AnalysisResult;
use crate::ranking::Category;

/// Per-ward measures from the geometry (mrpt-formats computes them: area and perimeter in
/// EPSG:3857, centroid in the native CRS).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WardSpatial {
    pub area_km2: f64,
    pub centroid_lat: f64,
    pub centroid_lon: f64,
    pub perimeter_km: f64,
}

fn col(name: &str, cells: Vec<Cell>) -> OutputColumn {
    OutputColumn {
        name: name.to_string(),
        cells,
    }
}

fn opt_float(v: Option<f64>) -> Cell {
    match v {
        Some(f) if !f.is_nan() => Cell::Float(f),
        _ => Cell::Null,
    }
}

fn is_null(c: &Cell) -> bool {
    match c {
        Cell::Null => true,
        Cell::Float(f) => f.is_nan(),
        _ => false,
    }
}

/// `unified_dataset.csv` (the geoparquet holds the same columns plus `geometry`).
/// `spatial` is per cleaned row (`None` for a ward without a shape); pass `None` when there is
/// no shapefile at all. `last_updated` is the ISO timestamp to stamp on every row.
pub fn unified_table(
    result: &AnalysisResult,
    spatial: Option<&[Option<WardSpatial>]>,
    last_updated: &str,
) -> OutputTable {
    let n = result.cleaned.n_rows();
    let names = result.ward_names();
    let mut cols: Vec<OutputColumn> = Vec::new();
    let cleaned = crate::output::cleaned_columns(result);
    // The ward-name column first, then the rest in file order.
    if let Some(w) = cleaned.iter().find(|c| c.name == result.ward_column) {
        cols.push(w.clone());
    }
    cols.extend(cleaned.into_iter().filter(|c| c.name != result.ward_column));

    let mut comp_rank: Vec<Option<usize>> = vec![None; n];
    let mut comp_cat: Vec<Option<Category>> = vec![None; n];
    for w in &result.composite.rankings {
        comp_rank[w.row] = Some(w.rank);
        comp_cat[w.row] = Some(w.category);
    }
    let rank_cells = |r: &[Option<usize>]| -> Vec<Cell> {
        r.iter()
            .map(|x| x.map_or(Cell::Null, |v| Cell::Int(v as i64)))
            .collect()
    };
    let cat_cells = |c: &[Option<Category>]| -> Vec<Cell> {
        c.iter()
            .map(|x| x.map_or(Cell::Null, |v| Cell::Text(v.label().to_string())))
            .collect()
    };
    cols.push(col(
        "composite_score",
        result
            .composite
            .median_score
            .iter()
            .map(|s| opt_float(Some(*s)))
            .collect(),
    ));
    cols.push(col("composite_rank", rank_cells(&comp_rank)));
    cols.push(col("composite_category", cat_cells(&comp_cat)));
    cols.push(col("overall_rank", rank_cells(&comp_rank)));
    cols.push(col("vulnerability_category", cat_cells(&comp_cat)));

    let mut pca_rank: Vec<Option<usize>> = vec![None; n];
    let mut cat: Vec<Option<Category>> = vec![None; n];
    if let Some(p) = &result.pca {
        let mut score = vec![None; n];
        let mut pcs: Vec<Vec<Option<f64>>> = vec![vec![None; n]; p.n_components];
        for w in &p.rankings {
            score[w.row] = Some(w.score);
            pca_rank[w.row] = Some(w.rank);
            cat[w.row] = Some(w.category);
        }
        // ChatMRPT joins on ward name, so rows sharing a dropped duplicate's name get its values.
        let by_name: std::collections::HashMap<&str, usize> = p
            .ward_names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.as_str(), i))
            .collect();
        for row in 0..n {
            if let Some(&i) = by_name.get(names[row].as_str()) {
                let r = p.rows[i];
                score[row] = score[r];
                pca_rank[row] = pca_rank[r];
                cat[row] = cat[r];
                for (c, pc) in pcs.iter_mut().enumerate() {
                    pc[row] = Some(p.scores[i][c]);
                }
            }
        }
        cols.push(col(
            "pca_score",
            score.iter().map(|s| opt_float(*s)).collect(),
        ));
        cols.push(col("pca_rank", rank_cells(&pca_rank)));
        cols.push(col("pca_category", cat_cells(&cat)));
        for (c, pc) in pcs.iter().enumerate() {
            cols.push(col(
                &format!("PC{}", c + 1),
                pc.iter().map(|v| opt_float(*v)).collect(),
            ));
        }
        let covered = score.iter().filter(|s| s.is_some()).count();
        let coverage = covered as f64 / n.max(1) as f64 * 100.0;
        cols.push(col("pca_coverage", vec![Cell::Float(coverage); n]));
    }

    let models = &result.composite.model_scores;
    for (m, s) in result.composite.models.iter().zip(models) {
        cols.push(col(
            &m.name,
            s.iter().map(|v| opt_float(Some(*v))).collect(),
        ));
    }
    if models.len() >= 2 {
        let mut mean = Vec::with_capacity(n);
        let mut std = Vec::with_capacity(n);
        let mut agreement = Vec::with_capacity(n);
        let mut consensus = Vec::with_capacity(n);
        for row in 0..n {
            let vals: Vec<f64> = models
                .iter()
                .map(|m| m[row])
                .filter(|v| !v.is_nan())
                .collect();
            let count = vals.len() as f64;
            let mu = pairwise_sum(&vals) / count;
            let sq: Vec<f64> = vals.iter().map(|v| (v - mu) * (v - mu)).collect();
            let sd = (pairwise_sum(&sq) / (count - 1.0)).sqrt();
            let mut agree = 1.0 - sd / mu.abs();
            if agree.is_nan() {
                agree = 0.0;
            }
            mean.push(opt_float(Some(mu)));
            std.push(opt_float(Some(sd)));
            agreement.push(Cell::Float(agree));
            consensus.push(Cell::Bool(agree >= 0.7));
        }
        cols.push(col("model_mean_score", mean));
        cols.push(col("model_std_score", std));
        cols.push(col("model_agreement", agreement));
        cols.push(col("model_consensus", consensus));
    }

    let area: Option<Vec<Option<f64>>> = spatial.map(|s| {
        (0..n)
            .map(|r| s.get(r).copied().flatten().map(|w| w.area_km2))
            .collect()
    });
    if let Some(s) = spatial {
        let field = |f: fn(&WardSpatial) -> f64| -> Vec<Cell> {
            (0..n)
                .map(|r| opt_float(s.get(r).copied().flatten().map(|w| f(&w))))
                .collect()
        };
        cols.push(col("area_km2", field(|w| w.area_km2)));
        cols.push(col("centroid_lat", field(|w| w.centroid_lat)));
        cols.push(col("centroid_lon", field(|w| w.centroid_lon)));
        cols.push(col("perimeter_km", field(|w| w.perimeter_km)));
    }

    if result.pca.is_some() {
        let mut diff = Vec::with_capacity(n);
        let mut diff_abs = Vec::with_capacity(n);
        let mut agreement = Vec::with_capacity(n);
        let mut priority = Vec::with_capacity(n);
        let mut consensus_score = Vec::with_capacity(n);
        let mut better = Vec::with_capacity(n);
        let mut risk = Vec::with_capacity(n);
        for row in 0..n {
            let (Some(c), Some(p)) = (comp_rank[row], pca_rank[row]) else {
                for v in [
                    &mut diff,
                    &mut diff_abs,
                    &mut agreement,
                    &mut priority,
                    &mut consensus_score,
                    &mut better,
                    &mut risk,
                ] {
                    v.push(Cell::Null);
                }
                continue;
            };
            let d = c as i64 - p as i64;
            diff.push(Cell::Int(d));
            diff_abs.push(Cell::Int(d.abs()));
            agreement.push(Cell::Text(
                match d.abs() {
                    0..=10 => "High Agreement",
                    11..=25 => "Moderate Agreement",
                    _ => "Low Agreement",
                }
                .into(),
            ));
            let mean_rank = (c + p) as f64 / 2.0;
            priority.push(Cell::Text(
                if mean_rank <= 50.0 {
                    "Very High Priority"
                } else if mean_rank <= 100.0 {
                    "High Priority"
                } else if mean_rank <= 150.0 {
                    "Medium Priority"
                } else {
                    "Low Priority"
                }
                .into(),
            ));
            consensus_score.push(Cell::Float(
                1.0 - d.abs() as f64 / (n as f64 - 1.0).max(1.0),
            ));
            better.push(Cell::Text(
                match c.cmp(&p) {
                    std::cmp::Ordering::Less => "Composite",
                    std::cmp::Ordering::Greater => "PCA",
                    std::cmp::Ordering::Equal => "Equal",
                }
                .into(),
            ));
            let pca_cat = cat[row];
            let comp = comp_cat[row];
            risk.push(match (comp, pca_cat) {
                (Some(a), Some(b)) if a == b => Cell::Text(format!("{} (Consensus)", a.label())),
                (a, b) if a == Some(Category::High) || b == Some(Category::High) => {
                    Cell::Text("High Risk (Mixed)".into())
                }
                (a, b) if a == Some(Category::Medium) || b == Some(Category::Medium) => {
                    Cell::Text("Medium Risk (Mixed)".into())
                }
                _ => Cell::Text("Low Risk (Mixed)".into()),
            });
        }
        cols.push(col("rank_difference", diff));
        cols.push(col("rank_difference_abs", diff_abs));
        cols.push(col("method_agreement", agreement));
        cols.push(col("combined_priority", priority));
        cols.push(col("method_consensus_score", consensus_score));
        cols.push(col("better_ranking_method", better));
        cols.push(col("consensus_risk_level", risk));
    } else {
        cols.push(col(
            "intervention_priority",
            comp_rank
                .iter()
                .map(|r| match r {
                    Some(r) if *r <= 50 => Cell::Text("High".into()),
                    Some(r) if *r <= 150 => Cell::Text("Medium".into()),
                    Some(_) => Cell::Text("Low".into()),
                    None => Cell::Null,
                })
                .collect(),
        ));
    }
    if let (Some(pop), Some(area)) = (
        result
            .cleaned
            .column("population")
            .and_then(|c| c.data.to_f64()),
        &area,
    ) {
        cols.push(col(
            "population_density",
            (0..n)
                .map(|r| match (pop[r], area[r]) {
                    (Some(p), Some(a)) => opt_float(Some(p / a)),
                    _ => Cell::Null,
                })
                .collect(),
        ));
    }

    // Completeness counts the geometry column too (null where a ward has no shape).
    let n_cols = cols.len() + 1;
    let completeness: Vec<Cell> = (0..n)
        .map(|r| {
            let mut nulls = cols.iter().filter(|c| is_null(&c.cells[r])).count();
            if spatial.and_then(|s| s.get(r).copied().flatten()).is_none() {
                nulls += 1;
            }
            Cell::Float((1.0 - nulls as f64 / n_cols as f64) * 100.0)
        })
        .collect();
    cols.push(col("data_completeness", completeness));
    cols.push(col(
        "last_updated",
        vec![Cell::Text(last_updated.to_string()); n],
    ));
    cols.push(col(
        "dataset_version",
        vec![Cell::Text("1.0.0_unified".into()); n],
    ));
    OutputTable {
        file_name: "unified_dataset.csv".into(),
        columns: cols,
    }
}
