//! The result files of §1.5 as typed tables (and the two PCA JSON documents), one named field
//! per file, so the caller maps each to where it is stored without ever naming a file, and
//! mrpt-formats writes them byte-compatible with pandas.

use mrpt_table::{Column, ColumnData, ColumnView, ItnStrategy, Table, TableView};
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::itn::ItnPlan;
use crate::pipeline::AnalysisResult;

/// Every result table of one analysis (analysis.md §1.5).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTables {
    /// `analysis_cleaned_data.csv`: the table after the duplicate-name fix and imputation.
    pub cleaned: Table,
    /// `analysis_normalized_data.csv`: the cleaned columns plus `normalization_<var>`.
    pub normalized: Table,
    /// `analysis_vulnerability_rankings.csv`, sorted by rank.
    pub rankings: Table,
    /// `model_formulas.csv`.
    pub model_formulas: Table,
    /// When PCA ran.
    pub pca: Option<PcaTables>,
}

/// `analysis_composite_scores.csv` (and its twin `composite_scores.csv`): `WardName, model_1..N`,
/// the scores borrowed from the analysis' matrix ([`CompositeScores::view`]), never copied into
/// a table of their own.
#[derive(Debug)]
pub struct CompositeScores<'a> {
    ward_names: ColumnData,
    result: &'a AnalysisResult,
}

impl CompositeScores<'_> {
    /// The file's columns (`WardName`, `model_1..N`), borrowed; fails only on a length bug.
    pub fn view(&self) -> Result<TableView<'_>, Error> {
        let scores = &self.result.composite.model_scores;
        let mut view = TableView::with_rows(self.ward_names.len());
        view.push("WardName", ColumnView::Data(&self.ward_names))?;
        for (k, m) in self
            .result
            .composite
            .models
            .iter()
            .enumerate()
            .take(scores.models())
        {
            view.push(&m.name, scores.column(k))?;
        }
        Ok(view)
    }
}

/// The composite-score file of an analysis.
pub fn composite_scores(result: &AnalysisResult) -> CompositeScores<'_> {
    CompositeScores {
        ward_names: ColumnData::texts(result.ward_names()),
        result,
    }
}

/// The PCA result tables.
#[derive(Debug, Clone, PartialEq)]
pub struct PcaTables {
    /// `analysis_vulnerability_rankings_pca.csv`, sorted by rank.
    pub rankings: Table,
    /// `analysis_pca_scores.csv`: `PC1..PCk, WardName` in table order.
    pub scores: Table,
}

/// The PCA JSON documents.
#[derive(Debug, Clone, PartialEq)]
pub struct PcaDocuments {
    /// `pca_variable_importance.json`
    pub variable_importance: Value,
    /// `pca_explained_variance.json`
    pub explained_variance: Value,
}

/// Builds a table from columns of equal length (the analysis makes every column one value per
/// ward, so a mismatch would be a bug here: reported, not hidden).
pub(crate) fn table(columns: Vec<(&str, ColumnData)>) -> Result<Table, Error> {
    let columns = columns
        .into_iter()
        .map(|(name, data)| Column::new(name, data))
        .collect();
    Ok(Table::new(columns)?)
}

fn ranks(v: impl IntoIterator<Item = usize>) -> ColumnData {
    ColumnData::ints(v.into_iter().map(|r| r as i64))
}

/// The analysis tables of §1.5.
pub fn output_tables(result: &AnalysisResult) -> Result<OutputTables, Error> {
    let cleaned = result.cleaned.table.clone();
    let mut normalized = cleaned.clone();
    for nc in &result.normalized {
        // Same length by construction (one normalised value per row); a repeated name replaces.
        normalized.push(
            nc.column_name.clone(),
            ColumnData::floats(nc.values.iter().copied()),
        )?;
    }
    let r = &result.composite.rankings;
    let rankings = table(vec![
        (
            "WardName",
            ColumnData::texts(r.iter().map(|w| w.ward_name.clone())),
        ),
        (
            "median_score",
            ColumnData::floats(r.iter().map(|w| w.score)),
        ),
        ("overall_rank", ranks(r.iter().map(|w| w.rank))),
        (
            "vulnerability_category",
            ColumnData::texts(r.iter().map(|w| w.category.label())),
        ),
    ])?;
    let models = &result.composite.models;
    let model_formulas = table(vec![
        (
            "model",
            ColumnData::texts(models.iter().map(|m| m.name.clone())),
        ),
        (
            "variables",
            ColumnData::texts(models.iter().map(|m| m.formula())),
        ),
        ("method", ColumnData::texts(models.iter().map(|_| "mean"))),
    ])?;
    let pca = match &result.pca {
        None => None,
        Some(p) => {
            let pos_of_row: std::collections::HashMap<usize, usize> =
                p.rows.iter().enumerate().map(|(i, r)| (*r, i)).collect();
            let pc1: Vec<f64> = p
                .rankings
                .iter()
                .map(|w| pos_of_row.get(&w.row).map_or(f64::NAN, |&i| p.scores[i][0]))
                .collect();
            let rk = &p.rankings;
            let rankings = table(vec![
                (
                    "WardName",
                    ColumnData::texts(rk.iter().map(|w| w.ward_name.clone())),
                ),
                ("pca_score", ColumnData::floats(rk.iter().map(|w| w.score))),
                ("pc1_score", ColumnData::floats(pc1)),
                ("pca_rank", ranks(rk.iter().map(|w| w.rank))),
                (
                    "vulnerability_category",
                    ColumnData::texts(rk.iter().map(|w| w.category.label())),
                ),
                ("overall_rank", ranks(rk.iter().map(|w| w.rank))),
                (
                    "median_score",
                    ColumnData::floats(rk.iter().map(|w| w.score)),
                ),
                ("value", ColumnData::floats(rk.iter().map(|w| w.score))),
            ])?;
            let names: Vec<String> = (0..p.n_components)
                .map(|c| format!("PC{}", c + 1))
                .collect();
            let mut cols: Vec<(&str, ColumnData)> = names
                .iter()
                .enumerate()
                .map(|(c, name)| {
                    (
                        name.as_str(),
                        ColumnData::floats(p.scores.iter().map(|s| s[c])),
                    )
                })
                .collect();
            cols.push(("WardName", ColumnData::texts(p.ward_names.iter().cloned())));
            Some(PcaTables {
                rankings,
                scores: table(cols)?,
            })
        }
    };
    Ok(OutputTables {
        cleaned,
        normalized,
        rankings,
        model_formulas,
        pca,
    })
}

/// `pca_variable_importance.json` and `pca_explained_variance.json` (when PCA ran).
pub fn pca_documents(result: &AnalysisResult) -> Option<PcaDocuments> {
    let p = result.pca.as_ref()?;
    let mut imp = Map::new();
    for (v, x) in &p.importance {
        imp.insert(v.clone(), json!(x));
    }
    Some(PcaDocuments {
        variable_importance: Value::Object(imp),
        explained_variance: json!({
            "per_component": p.explained_variance.per_component,
            "cumulative": p.explained_variance.cumulative,
            "total_explained": p.explained_variance.total_explained,
        }),
    })
}

impl ItnPlan {
    /// The per-ward allocation table (`prioritized`), columns as ChatMRPT writes them for the
    /// strategy: \[J\] for `rank`, \[N\] (with PopWardName, MatchScore, priority_tier) for
    /// `rural_first`.
    pub fn allocation_table(&self) -> Result<Table, Error> {
        let a = &self.allocations;
        let rural_first = self.strategy == ItnStrategy::RuralFirst;
        let mut cols = vec![(
            "WardName",
            ColumnData::texts(a.iter().map(|r| r.ward_name.clone())),
        )];
        if rural_first && a.iter().any(|r| r.ward_code.is_some()) {
            cols.push((
                "WardCode",
                ColumnData::Text(a.iter().map(|r| r.ward_code.clone()).collect()),
            ));
        }
        cols.push(("score", ColumnData::floats(a.iter().map(|r| r.score))));
        cols.push(("overall_rank", ranks(a.iter().map(|r| r.overall_rank))));
        cols.push((
            "vulnerability_category",
            ColumnData::texts(a.iter().map(|r| r.vulnerability_category.clone())),
        ));
        let population = (
            "Population",
            ColumnData::floats(a.iter().map(|r| r.population)),
        );
        let urban = (
            "urban_pct",
            ColumnData::floats(a.iter().map(|r| r.urban_pct)),
        );
        if rural_first {
            cols.push(urban);
            cols.push((
                "PopWardName",
                ColumnData::Text(a.iter().map(|r| r.pop_ward_name.clone()).collect()),
            ));
            cols.push((
                "MatchScore",
                ColumnData::Int(a.iter().map(|r| r.match_score).collect()),
            ));
            cols.push(population);
        } else {
            cols.push(population);
            cols.push(urban);
        }
        cols.push((
            "nets_needed",
            ColumnData::ints(a.iter().map(|r| r.nets_needed)),
        ));
        cols.push((
            "nets_allocated",
            ColumnData::ints(a.iter().map(|r| r.nets_allocated)),
        ));
        cols.push((
            "coverage_percent",
            ColumnData::floats(a.iter().map(|r| r.coverage_percent)),
        ));
        cols.push((
            "allocation_phase",
            ColumnData::texts(a.iter().map(|r| r.allocation_phase.clone())),
        ));
        if rural_first {
            cols.push((
                "priority_tier",
                ColumnData::Int(a.iter().map(|r| r.priority_tier.map(i64::from)).collect()),
            ));
        }
        cols.push((
            "population_covered",
            ColumnData::floats(a.iter().map(|r| r.population_covered)),
        ));
        table(cols)
    }
}
