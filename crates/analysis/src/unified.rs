//! The unified dataset (§1.4): the cleaned table joined with both rankings, the PCs, the model
//! scores and their agreement statistics, spatial measures and the method comparison columns, in
//! ChatMRPT's column order. The timestamp comes from the caller.

use mrpt_table::{Category, ColumnData, ColumnView, Geometry, Table, TableView};

use crate::error::Error;
use crate::linalg::pairwise_sum;
use crate::pipeline::AnalysisResult;
use crate::spatial::WardSpatial;

/// A float column where NaN and absent values are missing.
fn opt_floats(v: impl IntoIterator<Item = Option<f64>>) -> ColumnData {
    ColumnData::Float(v.into_iter().map(|x| x.filter(|f| !f.is_nan())).collect())
}

fn opt_texts<S: Into<String>>(v: impl IntoIterator<Item = Option<S>>) -> ColumnData {
    ColumnData::Text(v.into_iter().map(|x| x.map(Into::into)).collect())
}

/// A unified-dataset column: computed here, or one model's scores read from the matrix.
#[derive(Debug)]
enum UnifiedColumn {
    Owned(ColumnData),
    Model(usize),
}

fn add(cols: &mut Vec<(String, UnifiedColumn)>, name: &str, data: ColumnData) {
    cols.push((name.to_string(), UnifiedColumn::Owned(data)));
}

/// The unified dataset's columns, the model scores borrowed from the analysis result (not
/// copied: at 9,410 wards x 247 models they are most of the file). [`Unified::view`] hands
/// them to the CSV and GeoParquet writers.
#[derive(Debug)]
pub struct Unified<'a> {
    result: &'a AnalysisResult,
    rows: usize,
    columns: Vec<(String, UnifiedColumn)>,
}

impl Unified<'_> {
    /// The columns in file order (a later column of an earlier name replaces it in place).
    pub fn view(&self) -> Result<TableView<'_>, Error> {
        let scores = &self.result.composite.model_scores;
        let mut view = TableView::with_rows(self.rows);
        for (name, column) in &self.columns {
            let data = match column {
                UnifiedColumn::Owned(d) => ColumnView::Data(d),
                UnifiedColumn::Model(k) => scores.column(*k),
            };
            view.push(name, data)?;
        }
        Ok(view)
    }
}

fn opt_ints(v: impl IntoIterator<Item = Option<i64>>) -> ColumnData {
    ColumnData::Int(v.into_iter().collect())
}

/// The spatial measures of each row's ward (`None` for a ward without a shape).
pub fn row_spatial(geometries: &[Option<Geometry>]) -> Vec<Option<WardSpatial>> {
    geometries
        .iter()
        .map(|g| g.as_ref().map(WardSpatial::of))
        .collect()
}

/// `unified_dataset.csv` (the GeoParquet holds the same columns plus `geometry`).
/// `spatial` is per cleaned row ([`row_spatial`]; `None` for a ward without a shape); pass
/// `None` when there is no shapefile at all. `last_updated` is the ISO timestamp to stamp on
/// every row.
pub fn unified_table(
    result: &AnalysisResult,
    spatial: Option<&[Option<WardSpatial>]>,
    last_updated: &str,
) -> Result<Table, Error> {
    Ok(unified_columns(result, spatial, last_updated)?
        .view()?
        .to_table()?)
}

/// [`unified_table`] without copying the model scores.
pub fn unified_columns<'a>(
    result: &'a AnalysisResult,
    spatial: Option<&[Option<WardSpatial>]>,
    last_updated: &str,
) -> Result<Unified<'a>, Error> {
    let cleaned = &result.cleaned;
    let n = cleaned.table.n_rows();
    let names = result.ward_names();
    let mut cols: Vec<(String, UnifiedColumn)> = Vec::new();
    // The ward-name column first, then the rest in file order.
    let ward = cleaned.ward_column;
    let all = cleaned.table.columns();
    add(&mut cols, &all[ward].name, all[ward].data.clone());
    for (_, c) in all.iter().enumerate().filter(|(i, _)| *i != ward) {
        add(&mut cols, &c.name, c.data.clone());
    }

    let mut comp_rank: Vec<Option<usize>> = vec![None; n];
    let mut comp_cat: Vec<Option<Category>> = vec![None; n];
    for w in &result.composite.rankings {
        comp_rank[w.row] = Some(w.rank);
        comp_cat[w.row] = Some(w.category);
    }
    let rank_col = |r: &[Option<usize>]| opt_ints(r.iter().map(|x| x.map(|v| v as i64)));
    let cat_col = |c: &[Option<Category>]| opt_texts(c.iter().map(|x| x.map(Category::label)));
    add(
        &mut cols,
        "composite_score",
        ColumnData::floats(result.composite.median_score.iter().copied()),
    );
    add(&mut cols, "composite_rank", rank_col(&comp_rank));
    add(&mut cols, "composite_category", cat_col(&comp_cat));
    add(&mut cols, "overall_rank", rank_col(&comp_rank));
    add(&mut cols, "vulnerability_category", cat_col(&comp_cat));

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
        add(&mut cols, "pca_score", opt_floats(score.iter().copied()));
        add(&mut cols, "pca_rank", rank_col(&pca_rank));
        add(&mut cols, "pca_category", cat_col(&cat));
        for (c, pc) in pcs.iter().enumerate() {
            add(
                &mut cols,
                &format!("PC{}", c + 1),
                opt_floats(pc.iter().copied()),
            );
        }
        let covered = score.iter().filter(|s| s.is_some()).count();
        let coverage = covered as f64 / n.max(1) as f64 * 100.0;
        add(
            &mut cols,
            "pca_coverage",
            ColumnData::Float(vec![Some(coverage); n]),
        );
    }

    let models = &result.composite.model_scores;
    for (k, m) in result
        .composite
        .models
        .iter()
        .enumerate()
        .take(models.models())
    {
        cols.push((m.name.clone(), UnifiedColumn::Model(k)));
    }
    if models.models() >= 2 {
        let mut mean = Vec::with_capacity(n);
        let mut std = Vec::with_capacity(n);
        let mut agreement = Vec::with_capacity(n);
        let mut consensus = Vec::with_capacity(n);
        for row in 0..n {
            let vals: Vec<f64> = models
                .row(row)
                .iter()
                .copied()
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
            mean.push(mu);
            std.push(sd);
            agreement.push(agree);
            consensus.push(Some(agree >= 0.7));
        }
        add(&mut cols, "model_mean_score", ColumnData::floats(mean));
        add(&mut cols, "model_std_score", ColumnData::floats(std));
        add(&mut cols, "model_agreement", ColumnData::floats(agreement));
        add(&mut cols, "model_consensus", ColumnData::Bool(consensus));
    }

    let at = |s: &[Option<WardSpatial>], r: usize| s.get(r).copied().flatten();
    if let Some(s) = spatial {
        let field =
            |f: fn(&WardSpatial) -> f64| opt_floats((0..n).map(|r| at(s, r).map(|w| f(&w))));
        add(&mut cols, "area_km2", field(|w| w.area_km2));
        add(&mut cols, "centroid_lat", field(|w| w.centroid_lat));
        add(&mut cols, "centroid_lon", field(|w| w.centroid_lon));
        add(&mut cols, "perimeter_km", field(|w| w.perimeter_km));
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
                diff.push(None);
                diff_abs.push(None);
                agreement.push(None);
                priority.push(None);
                consensus_score.push(None);
                better.push(None);
                risk.push(None);
                continue;
            };
            let d = c as i64 - p as i64;
            diff.push(Some(d));
            diff_abs.push(Some(d.abs()));
            agreement.push(Some(
                match d.abs() {
                    0..=10 => "High Agreement",
                    11..=25 => "Moderate Agreement",
                    _ => "Low Agreement",
                }
                .to_string(),
            ));
            let mean_rank = (c + p) as f64 / 2.0;
            priority.push(Some(
                if mean_rank <= 50.0 {
                    "Very High Priority"
                } else if mean_rank <= 100.0 {
                    "High Priority"
                } else if mean_rank <= 150.0 {
                    "Medium Priority"
                } else {
                    "Low Priority"
                }
                .to_string(),
            ));
            consensus_score.push(Some(1.0 - d.abs() as f64 / (n as f64 - 1.0).max(1.0)));
            better.push(Some(
                match c.cmp(&p) {
                    std::cmp::Ordering::Less => "Composite",
                    std::cmp::Ordering::Greater => "PCA",
                    std::cmp::Ordering::Equal => "Equal",
                }
                .to_string(),
            ));
            risk.push(Some(match (comp_cat[row], cat[row]) {
                (Some(a), Some(b)) if a == b => format!("{} (Consensus)", a.label()),
                (a, b) if a == Some(Category::High) || b == Some(Category::High) => {
                    "High Risk (Mixed)".to_string()
                }
                (a, b) if a == Some(Category::Medium) || b == Some(Category::Medium) => {
                    "Medium Risk (Mixed)".to_string()
                }
                _ => "Low Risk (Mixed)".to_string(),
            }));
        }
        add(&mut cols, "rank_difference", opt_ints(diff));
        add(&mut cols, "rank_difference_abs", opt_ints(diff_abs));
        add(&mut cols, "method_agreement", opt_texts(agreement));
        add(&mut cols, "combined_priority", opt_texts(priority));
        add(
            &mut cols,
            "method_consensus_score",
            opt_floats(consensus_score),
        );
        add(&mut cols, "better_ranking_method", opt_texts(better));
        add(&mut cols, "consensus_risk_level", opt_texts(risk));
    } else {
        add(
            &mut cols,
            "intervention_priority",
            opt_texts(comp_rank.iter().map(|r| match r {
                Some(r) if *r <= 50 => Some("High"),
                Some(r) if *r <= 150 => Some("Medium"),
                Some(_) => Some("Low"),
                None => None,
            })),
        );
    }
    if let (Some(pop), Some(s)) = (
        cleaned
            .table
            .column("population")
            .and_then(|c| c.data.to_f64()),
        spatial,
    ) {
        add(
            &mut cols,
            "population_density",
            opt_floats((0..n).map(|r| match (pop[r], at(s, r)) {
                (Some(p), Some(w)) => Some(p / w.area_km2),
                _ => None,
            })),
        );
    }

    // Completeness counts the geometry column too (null where a ward has no shape).
    let n_cols = cols.len() + 1;
    let completeness: Vec<f64> = (0..n)
        .map(|r| {
            let mut nulls = cols
                .iter()
                .filter(|(_, c)| match c {
                    UnifiedColumn::Owned(d) => d.is_missing(r),
                    UnifiedColumn::Model(k) => models.get(*k, r).is_nan(),
                })
                .count();
            if spatial.and_then(|s| at(s, r)).is_none() {
                nulls += 1;
            }
            (1.0 - nulls as f64 / n_cols as f64) * 100.0
        })
        .collect();
    add(
        &mut cols,
        "data_completeness",
        ColumnData::floats(completeness),
    );
    add(
        &mut cols,
        "last_updated",
        ColumnData::texts(std::iter::repeat_n(last_updated, n)),
    );
    add(
        &mut cols,
        "dataset_version",
        ColumnData::texts(std::iter::repeat_n("1.0.0_unified", n)),
    );
    Ok(Unified {
        result,
        rows: n,
        columns: cols,
    })
}
