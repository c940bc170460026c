//! The session context the interpreter plans from, derived from the session folder on each
//! message (never from this process's memory).

use mrpt_formats as formats;
use mrpt_interpreter::{
    self as interp, ItnContext, Pending, SessionContext, Turn, VariableContribution, VariableInfo,
    VariableKind, WardDetail,
};
use mrpt_session::{AnalysisView, Artifact, SessionId, Store};
use mrpt_table::summary::DataSummary;
use mrpt_table::{Category, Column, RankedWard, Table, find_ward_column};
use serde_json::Value;

use crate::ApiError;
use crate::pipeline::UploadDetails;
use crate::visuals::{StoredItn, read_itn};

/// Turns of the conversation handed to the interpreter with each message.
const CONTEXT_TURNS: usize = 10;
/// Wards whose details are loaded for one message.
const MAX_WARD_DETAILS: usize = 3;
/// How many drivers a ward explanation lists.
const TOP_DRIVERS: usize = 5;

/// Derive everything the interpreter may know about the session from the folder, now.
pub(crate) fn session_context(
    store: &Store,
    id: &SessionId,
    message: &str,
) -> Result<(SessionContext, u64), ApiError> {
    let state = store.status(id)?;
    let mut ctx = SessionContext {
        data_loaded: state.data_loaded,
        shapefile_loaded: state.shapefile_loaded,
        analysis_complete: state.analysis_complete,
        analysis_id: state.analysis_id.clone(),
        itn_complete: state.itn_complete,
        variables_used: state.variables_used.clone(),
        files: state.files.clone(),
        tpr_loaded: store.tpr(id)?.is_some(),
        ..SessionContext::default()
    };
    if state.data_loaded {
        let details = UploadDetails::of(&state);
        let summary = details.data_summary.as_ref();
        ctx.row_count = summary.map(|s| s.total_rows as u64);
        ctx.variables = variables_from_summary(summary);
    }
    let view = if state.analysis_complete {
        store.current_analysis(id)?
    } else {
        None
    };
    let tables = match &view {
        Some(v) => Some(AnalysisTables::load(v)?),
        None => None,
    };
    if let Some(t) = &tables {
        ctx.wards = t.composite.iter().map(|w| w.ward_name.clone()).collect();
        ctx.top_wards = t.composite.iter().take(10).cloned().collect();
        ctx.ward_column = Some(t.ward_column.clone());
    } else if state.data_loaded
        && let Some(raw) = crate::routes::upload::uploaded_wards(store, id)?
    {
        ctx.ward_column = raw
            .table
            .columns()
            .get(raw.ward_column)
            .map(|c| c.name.clone());
        ctx.wards = raw.ward_names().iter().flatten().cloned().collect();
    }
    if let (Some(t), Some(v)) = (&tables, &view) {
        let mentioned = interp::wards_mentioned(message, &ctx);
        for ward in mentioned.iter().take(MAX_WARD_DETAILS) {
            if let Some(d) = t.detail(v, ward) {
                ctx.ward_details.push(d);
            }
        }
    }
    if state.itn_complete {
        ctx.itn = read_itn(store, id)?.map(|v| itn_context(&v));
    }
    if state.data_loaded {
        // The LGAs, and the analysed table's own columns, so typed arguments naming them
        // validate (issue 14).
        let known: Vec<String> = ctx.variables.iter().map(|v| v.name.clone()).collect();
        let (lgas, extra) = crate::explore::context_extras(store, id, &known);
        ctx.lgas = lgas;
        ctx.variables
            .extend(extra.into_iter().map(|(name, numeric)| VariableInfo {
                name,
                kind: if numeric {
                    VariableKind::Numeric
                } else {
                    VariableKind::Text
                },
                completeness_pct: 100.0,
            }));
    }
    if let Some(doc) = store.read_conversation(id)? {
        // A document that does not parse reads as an empty conversation (it is rewritten whole
        // by the next turn).
        let stored: StoredConversation = serde_json::from_value(doc).unwrap_or_default();
        let turns = stored.turns.unwrap_or_default();
        let skip = turns.len().saturating_sub(CONTEXT_TURNS);
        ctx.recent_turns = turns
            .into_iter()
            .skip(skip)
            .filter_map(|t| serde_json::from_value::<Turn>(t).ok())
            .collect();
        // A question asked about an earlier upload does not carry over to new data.
        if stored.pending_generation == Some(state.generation) {
            ctx.pending = stored.pending;
        }
    }
    Ok((ctx, state.generation))
}

/// What chat reads of `conversation.json`: the turns (each parsed on its own, so one damaged
/// turn drops only itself), and the pending question with the upload generation it belongs to.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct StoredConversation {
    #[serde(deserialize_with = "crate::visuals::lenient")]
    turns: Option<Vec<Value>>,
    #[serde(deserialize_with = "crate::visuals::lenient")]
    pending: Option<Pending>,
    #[serde(deserialize_with = "crate::visuals::lenient")]
    pending_generation: Option<u64>,
}

/// The upload's columns as the assistant describes them: every named column but pandas'
/// `Unnamed: N` row indexes.
fn variables_from_summary(summary: Option<&DataSummary>) -> Vec<VariableInfo> {
    let Some(summary) = summary else {
        return Vec::new();
    };
    summary
        .column_names
        .iter()
        .filter(|n| !n.trim().is_empty() && !n.starts_with("Unnamed:"))
        .map(|name| VariableInfo {
            name: name.clone(),
            kind: if summary.is_numeric(name) {
                VariableKind::Numeric
            } else {
                VariableKind::Text
            },
            completeness_pct: summary.completeness(name),
        })
        .collect()
}

/// The upload's data summary: as stored with the upload, or (a folder written before uploads
/// were recorded) computed from the stored table.
pub(super) fn data_summary(
    store: &Store,
    id: &SessionId,
    details: &UploadDetails,
) -> Result<DataSummary, ApiError> {
    if let Some(summary) = &details.data_summary {
        return Ok(summary.clone());
    }
    let wards = crate::routes::upload::uploaded_wards(store, id)?
        .ok_or_else(|| ApiError::Conflict("no data has been uploaded yet".into()))?;
    Ok(formats::summary::summarize(
        &wards.table,
        Some(wards.ward_column),
    ))
}

/// The interpreter's view of the stored ITN plan.
pub(super) fn itn_context(results: &StoredItn) -> ItnContext {
    let params = results.parameters.clone().unwrap_or_default();
    let old = &results.top_level;
    let stats = results.stats.clone().unwrap_or_default();
    ItnContext {
        total_nets: params
            .total_nets
            .or(old.total_nets)
            .map_or(0, |n| n.max(0.0) as u64),
        avg_household_size: params.avg_household_size.or(old.avg_household_size),
        urban_threshold: params.urban_threshold.or(old.urban_threshold),
        method: params.method.or(old.method).unwrap_or_default(),
        allocated: stats.allocated.map(|n| n.max(0.0) as u64),
        coverage_percent: stats.coverage_percent,
    }
}

/// The result tables of one analysis that chat answers read.
pub(super) struct AnalysisTables {
    pub(super) ward_column: String,
    /// Composite ranking, best first.
    pub(super) composite: Vec<RankedWard>,
    pub(super) pca: Option<Vec<RankedWard>>,
    pub(super) variables: Vec<String>,
}

pub(super) fn read_table(
    view: &AnalysisView,
    artifact: &Artifact,
) -> Result<Option<Table>, ApiError> {
    if !view.has(artifact) {
        return Ok(None);
    }
    let bytes = view.read(artifact)?;
    formats::read_result_table(&bytes, &artifact.file_name())
        .map(Some)
        .map_err(|e| ApiError::internal(format!("reading {artifact}: {e}")))
}

/// A result table's ward-name column, by the one ward-column rule.
pub(super) fn ward_column_of(table: &Table) -> Option<&Column> {
    find_ward_column(table).map(|i| &table.columns()[i])
}

/// A ranking file as ranked wards, best first. A category label the file does not spell the
/// way this service and ChatMRPT do is re-derived from the rank (§3.6 thirds).
pub(super) fn ranking(
    table: &Table,
    score: &[&str],
    rank: &[&str],
    category: &[&str],
) -> Option<(String, Vec<RankedWard>)> {
    let ward_col = ward_column_of(table)?;
    let names = ward_col.data.to_text();
    let scores = table.first_column(score)?.data.to_f64()?;
    let ranks = table.first_column(rank).and_then(|c| c.data.to_f64());
    let categories = table.first_column(category).map(|c| c.data.to_text());
    let total = names.iter().flatten().count();
    let mut out: Vec<RankedWard> = names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let name = name.clone()?;
            let score = scores.get(i).copied().flatten()?;
            let rank = ranks
                .as_ref()
                .and_then(|r| r.get(i).copied().flatten())
                .map_or(i + 1, |r| r.max(0.0) as usize);
            let category = categories
                .as_ref()
                .and_then(|c| c.get(i).cloned().flatten())
                .and_then(|c| Category::from_label(&c))
                .unwrap_or_else(|| Category::of_rank(rank, total));
            Some(RankedWard {
                ward_name: name,
                score,
                rank,
                category,
                row: i,
            })
        })
        .collect();
    out.sort_by_key(|w| w.rank);
    Some((ward_col.name.clone(), out))
}

impl AnalysisTables {
    pub(super) fn load(view: &AnalysisView) -> Result<AnalysisTables, ApiError> {
        let composite = read_table(view, &Artifact::Rankings)?.and_then(|t| {
            ranking(
                &t,
                &["median_score", "composite_score", "score"],
                &["overall_rank", "composite_rank", "rank"],
                &["vulnerability_category", "composite_category", "category"],
            )
        });
        let pca = read_table(view, &Artifact::RankingsPca)?.and_then(|t| {
            ranking(
                &t,
                &["pca_score", "score"],
                &["pca_rank", "overall_rank", "rank"],
                &["vulnerability_category", "pca_category", "category"],
            )
        });
        let (ward_column, composite) = match (composite, &pca) {
            (Some(c), _) => c,
            // A legacy folder may hold only the PCA ranking.
            (None, Some((col, p))) => (col.clone(), p.clone()),
            (None, None) => {
                return Err(ApiError::internal(
                    "the analysis has no readable ranking file",
                ));
            }
        };
        Ok(AnalysisTables {
            ward_column,
            composite,
            pca: pca.map(|(_, p)| p),
            variables: view.variables_used.clone(),
        })
    }

    /// Rank, category, scores and the variables that push `ward`'s score most.
    pub(super) fn detail(&self, view: &AnalysisView, ward: &str) -> Option<WardDetail> {
        let w = self.composite.iter().find(|w| w.ward_name == ward)?;
        let pca = self
            .pca
            .as_ref()
            .and_then(|p| p.iter().find(|x| x.ward_name == ward));
        let normalized = read_table(view, &Artifact::NormalizedData).ok().flatten();
        let cleaned = read_table(view, &Artifact::CleanedData).ok().flatten();
        let row_of = |t: &Table| -> Option<usize> {
            ward_column_of(t)?
                .data
                .to_text()
                .iter()
                .position(|n| n.as_deref() == Some(ward))
        };
        let value = |t: &Table, row: usize, name: &str| -> Option<f64> {
            t.column(name)?.data.to_f64()?.get(row).copied().flatten()
        };
        let mut drivers: Vec<VariableContribution> = Vec::new();
        if let Some(n) = &normalized
            && let Some(row) = row_of(n)
        {
            let raw_row = cleaned.as_ref().and_then(|c| row_of(c).map(|r| (c, r)));
            for v in &self.variables {
                let norm = value(n, row, &format!("normalization_{}", v.to_lowercase()));
                let Some(normalised) = norm.filter(|x| x.is_finite()) else {
                    continue;
                };
                drivers.push(VariableContribution {
                    variable: v.clone(),
                    raw_value: raw_row.and_then(|(c, r)| value(c, r, v)),
                    normalised,
                });
            }
        }
        drivers.sort_by(|a, b| b.normalised.total_cmp(&a.normalised));
        drivers.truncate(TOP_DRIVERS);
        Some(WardDetail {
            ward: w.ward_name.clone(),
            rank: w.rank as u32,
            total_wards: self.composite.len() as u32,
            category: w.category.label().to_string(),
            score: w.score,
            pca_rank: pca.map(|p| p.rank as u32),
            pca_score: pca.map(|p| p.score),
            top_variables: drivers,
        })
    }
}
