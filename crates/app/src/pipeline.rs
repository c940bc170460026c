//! The workflows that join the pure crates: uploaded bytes -> checked tables (mrpt-formats) ->
//! analysis and ITN (mrpt-analysis) -> result files as bytes. No session folder and no HTTP here:
//! the routes store what this returns through mrpt-session, and `prefork analyze` writes it to a
//! directory, so both produce the same files.

use std::collections::BTreeMap;

use mrpt_analysis as analysis;
use mrpt_formats as formats;
use mrpt_session::Artifact;
use mrpt_table::summary::DataSummary;
use mrpt_table::{
    DuplicateNames, FuzzyMatch, Geometry, ItnStrategy, RankedWard, RankingMethod, WardMatch,
    WardTable, fix_duplicate_ward_names, match_wards,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How many top wards a summary carries.
const TOP_WARDS: usize = 10;

/// Failures of a workflow, split by whose fault they are.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The uploaded data could not be read (400 / 415).
    #[error("{0}")]
    Input(String),
    /// The file type is not one we read (415).
    #[error("{0}")]
    UnsupportedType(String),
    /// The data parse but cannot be analysed or planned as asked (422).
    #[error("{0}")]
    Unprocessable(String),
    /// Our own failure (500).
    #[error("{0}")]
    Internal(String),
}

impl From<formats::Error> for PipelineError {
    fn from(err: formats::Error) -> Self {
        match err {
            formats::Error::UnsupportedFileType { .. } | formats::Error::TprFileType { .. } => {
                PipelineError::UnsupportedType(err.to_string())
            }
            e if e.is_over_limit() => PipelineError::Unprocessable(e.to_string()),
            // Nobody reads this answer: the client has gone.
            formats::Error::Cancelled => PipelineError::Input(err.to_string()),
            formats::Error::NoHeaderRow { .. }
            | formats::Error::TprMissingFields { .. }
            | formats::Error::NoIndicatorPair { .. }
            | formats::Error::TprMapping { .. } => PipelineError::Unprocessable(err.to_string()),
            e if e.is_input_error() => PipelineError::Input(e.to_string()),
            e => PipelineError::Internal(e.to_string()),
        }
    }
}

impl From<mrpt_table::Error> for PipelineError {
    fn from(err: mrpt_table::Error) -> Self {
        PipelineError::from(formats::Error::from(err))
    }
}

impl From<analysis::Error> for PipelineError {
    fn from(err: analysis::Error) -> Self {
        PipelineError::Unprocessable(err.to_string())
    }
}

/// A file the user sent.
#[derive(Debug, Clone, Copy)]
pub struct InputFile<'a> {
    /// The file name as uploaded (its extension picks the reader).
    pub name: &'a str,
    /// The file's content.
    pub bytes: &'a [u8],
}

/// What an upload is: recorded with it (mrpt-session keeps it as JSON) and read back, typed, by
/// `/session_info`, the assistant and the analysis package.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadDetails {
    /// The ward table's file name as uploaded.
    pub csv_filename: Option<String>,
    /// The shapefile zip's name as uploaded; `None` for a table-only upload.
    pub shapefile_filename: Option<String>,
    /// Data rows of the ward table.
    pub csv_rows: Option<usize>,
    /// Columns of the ward table.
    pub csv_columns: Option<usize>,
    /// Shapes in the shapefile.
    pub shapefile_features: Option<usize>,
    /// Numeric columns that can enter the analysis.
    pub available_variables: Vec<String>,
    /// How the table's ward names met the shapefile's; `None` without a shapefile.
    pub ward_matching: Option<WardMatching>,
    /// The upload's data summary (columns, completeness, quality issues).
    pub data_summary: Option<DataSummary>,
}

impl UploadDetails {
    /// The record of the session's current upload (empty for a legacy folder, which has none).
    pub fn of(state: &mrpt_session::SessionState) -> UploadDetails {
        serde_json::from_value(state.upload_info.clone()).unwrap_or_default()
    }

    /// `csv_shapefile` when a shapefile came with the table, else `csv_only`.
    pub fn upload_type(&self) -> &'static str {
        if self.shapefile_filename.is_some() {
            "csv_shapefile"
        } else {
            "csv_only"
        }
    }
}

/// How the table's ward names met the shapefile's, as the upload reports it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WardMatching {
    /// Table rows with a shapefile ward.
    pub matched: usize,
    /// Table rows whose name is identical in the shapefile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<usize>,
    /// Table names renamed to a close shapefile name, with the score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuzzy: Option<Vec<FuzzyMatch>>,
    /// Table names without a shapefile ward.
    #[serde(default)]
    pub unmatched: Vec<String>,
    /// Shapefile names no table row carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched_shapefile: Option<Vec<String>>,
    /// Rows of the ward table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_wards: Option<usize>,
    /// A sentence for the user about the matching, when there is something to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Ward names carried by several rows, and whether their codes told them apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_names: Option<DuplicateNames>,
}

/// §1.3 steps 1-2 (`mrpt-table`'s matcher): the table's wards renamed to their shapefile names
/// and each row's shape found. The upload report, the analysis and the assistant's maps of
/// uploaded data all call this, so they cannot disagree.
pub fn match_to_shapes(
    wards: &mut WardTable,
    shapes: Option<&formats::WardShapes>,
) -> Result<Option<WardMatch>, PipelineError> {
    match shapes {
        Some(shapes) => Ok(Some(match_wards(wards, &shapes.ward_names())?)),
        None => Ok(None),
    }
}

/// Read and check an upload without storing anything: the table must load within `limits` and
/// have a ward column; the shapefile (if any) must load within them too; names are matched for
/// the report exactly as the analysis will match them.
pub fn inspect_upload(
    table: InputFile<'_>,
    shapefile: Option<InputFile<'_>>,
    limits: &formats::Limits,
) -> Result<UploadDetails, PipelineError> {
    let raw = formats::read_ward_table_with(table.bytes, table.name, limits)?;
    check_cancelled()?;
    let summary = formats::summary::summarize(&raw.table, Some(raw.ward_column));
    check_cancelled()?;
    let available_variables = raw.candidate_variables();
    let shapes = match shapefile {
        Some(file) => Some(formats::shapefile::read_shapefile_zip_with(
            file.bytes, limits,
        )?),
        None => None,
    };
    check_cancelled()?;
    // What the analysis will do to the names: steps 1-2, then step 3 (which `analyze` runs).
    let mut wards = raw.clone();
    let matched = match_to_shapes(&mut wards, shapes.as_ref())?;
    let duplicates = fix_duplicate_ward_names(&mut wards)?;
    let duplicate_names = (duplicates.rows > 0).then_some(duplicates);
    let ward_matching = match matched {
        Some(m) => WardMatching {
            matched: m.report.matched,
            exact: Some(m.report.exact),
            fuzzy: Some(m.report.fuzzy),
            unmatched: m.report.unmatched_table,
            unmatched_shapefile: Some(m.report.unmatched_shape),
            total_wards: Some(wards.table.n_rows()),
            note: None,
            duplicate_names,
        },
        None => WardMatching {
            note: Some("no shapefile uploaded: maps and spatial imputation need one".to_string()),
            duplicate_names,
            ..WardMatching::default()
        },
    };
    Ok(UploadDetails {
        csv_filename: Some(table.name.to_string()),
        shapefile_filename: shapefile.map(|f| f.name.to_string()),
        csv_rows: Some(raw.table.n_rows()),
        csv_columns: Some(raw.table.n_columns()),
        shapefile_features: shapes.as_ref().map(|s| s.geometries.len()),
        available_variables,
        ward_matching: Some(ward_matching),
        data_summary: Some(summary),
    })
}

/// Stops a workflow between its steps when its request was abandoned (`mrpt_table::cancel`).
pub fn check_cancelled() -> Result<(), PipelineError> {
    if mrpt_table::cancel::cancelled() {
        return Err(PipelineError::from(formats::Error::Cancelled));
    }
    Ok(())
}

/// What the user asked the analysis for.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnalysisParams {
    /// Named variables; `None` = automatic selection.
    pub variables: Option<Vec<String>>,
    /// Per-variable direction overrides: "direct" | "inverse".
    #[serde(default)]
    pub relationships: BTreeMap<String, analysis::Direction>,
}

/// Where an analysis puts its files: a session's staging folder, an output directory, or memory
/// ([`AnalysisFiles`]). Each file is streamed once, straight from the result; the Python
/// system's twin names (`composite_scores.csv`) are links to the first name, not second writes.
///
/// Sinks are shared by the threads that write files side by side (`&self`, `Sync`).
pub trait ArtifactSink: Sync {
    /// Creates `artifact` and lets `body` stream its bytes.
    fn write(
        &self,
        artifact: &Artifact,
        body: &mut dyn FnMut(&mut (dyn std::io::Write + Send)) -> Result<(), PipelineError>,
    ) -> Result<(), PipelineError>;

    /// Makes `twin` another name of the already written `existing`.
    fn link(&self, existing: &Artifact, twin: &Artifact) -> Result<(), PipelineError>;
}

/// A write failure of a result file.
pub fn write_error(artifact: &Artifact, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Internal(format!("writing {artifact}: {e}"))
}

/// Every file an analysis produces, each with the artifact it is stored as, and its summary,
/// in memory (tests, and callers that want the bytes).
#[derive(Debug, Clone, Default)]
pub struct AnalysisFiles {
    /// Every output file with the artifact it is stored as, in writing order.
    pub files: Vec<(Artifact, Vec<u8>)>,
    /// The variables the ranking used.
    pub variables_used: Vec<String>,
    /// The analysis' warnings, as sentences for the user.
    pub warnings: Vec<String>,
    /// Stored with the analysis so a reused answer can repeat it (top wards, PCA facts...).
    pub summary: Value,
}

impl AnalysisFiles {
    /// The bytes of one artifact, when the analysis produced it.
    pub fn get(&self, artifact: &Artifact) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(a, _)| a == artifact)
            .map(|(_, b)| b.as_slice())
    }
}

/// Files collected in memory, in the order they were finished.
impl ArtifactSink for std::sync::Mutex<AnalysisFiles> {
    fn write(
        &self,
        artifact: &Artifact,
        body: &mut dyn FnMut(&mut (dyn std::io::Write + Send)) -> Result<(), PipelineError>,
    ) -> Result<(), PipelineError> {
        let mut bytes = Vec::new();
        body(&mut bytes)?;
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .files
            .push((artifact.clone(), bytes));
        Ok(())
    }

    fn link(&self, existing: &Artifact, twin: &Artifact) -> Result<(), PipelineError> {
        let mut files = self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bytes = files
            .get(existing)
            .ok_or_else(|| write_error(twin, format!("{existing} was not written")))?
            .to_vec();
        files.files.push((twin.clone(), bytes));
        Ok(())
    }
}

/// What an analysis reports besides its files.
#[derive(Debug, Clone)]
pub struct AnalysisReport {
    /// The variables the ranking used.
    pub variables_used: Vec<String>,
    /// The analysis' warnings, as sentences for the user.
    pub warnings: Vec<String>,
    /// Stored with the analysis so a reused answer can repeat it (top wards, PCA facts...).
    pub summary: Value,
    /// What ITN planning reads of this analysis, when asked for ([`run_analysis_for_itn`]).
    pub itn_basis: Option<ItnBasis>,
}

/// What ITN planning reads of a fresh analysis, kept in memory so that `prefork analyze
/// --total-nets` plans without reading its own files back (the unified dataset is 50 MB at
/// national scale, almost all of it per-model scores that ITN never reads): the rankings files
/// as written, and the unified dataset's other columns as the same CSV text the file holds
/// (formatted once more, a few % of the file), so the plan is the plan the files give.
#[derive(Debug, Clone, Default)]
pub struct ItnBasis {
    /// `Rankings` and, when PCA ran, `RankingsPca`, byte for byte as written.
    pub rankings: Vec<(Artifact, Vec<u8>)>,
    /// The unified dataset without its `model_<k>` and `PC<k>` columns (CSV).
    pub data: Option<Vec<u8>>,
}

impl ItnBasis {
    /// [`ItnSources`] for `method`, with an optional population file; `None` when this
    /// analysis has no rankings of that method.
    pub fn sources<'a>(
        &'a self,
        method: RankingMethod,
        population: Option<InputFile<'a>>,
    ) -> Option<ItnSources<'a>> {
        let wanted = rankings_artifact(method);
        let (artifact, bytes) = self.rankings.iter().find(|(a, _)| *a == wanted)?;
        Some(ItnSources {
            rankings: (artifact, bytes),
            data: self.data.as_deref(),
            population,
        })
    }
}

/// Run the full analysis on uploaded bytes: read, match names, impute, select, score, rank,
/// and encode every output file, the unified dataset included, into memory.
pub fn run_analysis(
    table: InputFile<'_>,
    shapefile: Option<InputFile<'_>>,
    params: &AnalysisParams,
) -> Result<AnalysisFiles, PipelineError> {
    let sink = std::sync::Mutex::new(AnalysisFiles::default());
    let report = run_analysis_into(table, shapefile, params, &sink)?;
    let mut files = sink
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Written side by side: listed in the order the analysis names them.
    files.files.sort_by_key(|(a, _)| file_order(a));
    files.variables_used = report.variables_used;
    files.warnings = report.warnings;
    files.summary = report.summary;
    Ok(files)
}

fn csv_file(
    sink: &dyn ArtifactSink,
    artifact: &Artifact,
    table: &mrpt_table::TableView<'_>,
) -> Result<(), PipelineError> {
    sink.write(artifact, &mut |w| {
        formats::write_csv_to(table, w)
            .map(drop)
            .map_err(|e| write_error(artifact, e))
    })
}

fn json_file(
    sink: &dyn ArtifactSink,
    artifact: &Artifact,
    value: &Value,
) -> Result<(), PipelineError> {
    sink.write(artifact, &mut |w| {
        let mut w = std::io::BufWriter::new(w);
        serde_json::to_writer_pretty(&mut w, value).map_err(|e| write_error(artifact, e))?;
        std::io::Write::flush(&mut w).map_err(|e| write_error(artifact, e))
    })
}

/// [`run_analysis`], every file streamed into `sink` as soon as it can be written (the model
/// scores straight from the analysis' matrix: no text table, no second copy).
pub fn run_analysis_into(
    table: InputFile<'_>,
    shapefile: Option<InputFile<'_>>,
    params: &AnalysisParams,
    sink: &dyn ArtifactSink,
) -> Result<AnalysisReport, PipelineError> {
    analysis_into(table, shapefile, params, sink, false)
}

/// [`run_analysis_into`], also keeping what ITN planning reads ([`AnalysisReport::itn_basis`]).
pub fn run_analysis_for_itn(
    table: InputFile<'_>,
    shapefile: Option<InputFile<'_>>,
    params: &AnalysisParams,
    sink: &dyn ArtifactSink,
) -> Result<AnalysisReport, PipelineError> {
    analysis_into(table, shapefile, params, sink, true)
}

/// A CSV result file written from memory (kept for ITN planning).
fn kept_csv_file(
    sink: &dyn ArtifactSink,
    artifact: &Artifact,
    table: &mrpt_table::TableView<'_>,
    kept: &mut Vec<(Artifact, Vec<u8>)>,
) -> Result<(), PipelineError> {
    let bytes = formats::write_csv_to(table, Vec::new()).map_err(|e| write_error(artifact, e))?;
    sink.write(artifact, &mut |w| {
        std::io::Write::write_all(w, &bytes).map_err(|e| write_error(artifact, e))
    })?;
    kept.push((artifact.clone(), bytes));
    Ok(())
}

/// Every result file but the model scores (see [`analysis_into`]); returns what ITN planning
/// reads when `keep_itn_basis`.
fn write_the_rest(
    result: &analysis::AnalysisResult,
    row_geometries: Option<&[Option<Geometry>]>,
    sink: &dyn ArtifactSink,
    keep_itn_basis: bool,
) -> Result<Option<ItnBasis>, PipelineError> {
    let mut kept_rankings = Vec::new();
    let tables = analysis::output_tables(result)?;
    csv_file(sink, &Artifact::CleanedData, &(&tables.cleaned).into())?;
    csv_file(
        sink,
        &Artifact::NormalizedData,
        &(&tables.normalized).into(),
    )?;
    if keep_itn_basis {
        kept_csv_file(
            sink,
            &Artifact::Rankings,
            &(&tables.rankings).into(),
            &mut kept_rankings,
        )?;
    } else {
        csv_file(sink, &Artifact::Rankings, &(&tables.rankings).into())?;
    }
    csv_file(
        sink,
        &Artifact::ModelFormulas,
        &(&tables.model_formulas).into(),
    )?;
    if let Some(pca) = &tables.pca {
        if keep_itn_basis {
            kept_csv_file(
                sink,
                &Artifact::RankingsPca,
                &(&pca.rankings).into(),
                &mut kept_rankings,
            )?;
        } else {
            csv_file(sink, &Artifact::RankingsPca, &(&pca.rankings).into())?;
        }
        csv_file(sink, &Artifact::PcaScores, &(&pca.scores).into())?;
    }
    drop(tables);
    if let Some(docs) = analysis::pca_documents(result) {
        json_file(
            sink,
            &Artifact::PcaVariableImportance,
            &docs.variable_importance,
        )?;
        json_file(
            sink,
            &Artifact::PcaExplainedVariance,
            &docs.explained_variance,
        )?;
    }
    let spatial = row_geometries.map(analysis::row_spatial);
    let unified = analysis::unified_columns(result, spatial.as_deref(), &now_iso())?;
    let view = unified.view()?;
    csv_file(sink, &Artifact::UnifiedCsv, &view)?;
    let itn_basis = if keep_itn_basis {
        let mut data = mrpt_table::TableView::with_rows(view.n_rows());
        for (name, column) in view.columns() {
            if !is_score_column(name) {
                data.push(name, *column)?;
            }
        }
        let data = formats::write_csv_to(&data, Vec::new())
            .map_err(|e| write_error(&Artifact::UnifiedCsv, e))?;
        Some(ItnBasis {
            rankings: kept_rankings,
            data: Some(data),
        })
    } else {
        None
    };
    if let Some(rows) = row_geometries {
        sink.write(&Artifact::UnifiedGeoparquet, &mut |w| {
            formats::geoparquet::write_geoparquet_to(&view, rows, w)?;
            Ok(())
        })?;
    }
    Ok(itn_basis)
}

/// The order the files of an analysis were always listed in.
fn file_order(artifact: &Artifact) -> usize {
    [
        Artifact::CleanedData,
        Artifact::NormalizedData,
        Artifact::Rankings,
        Artifact::CompositeScores,
        Artifact::CompositeScoresCopy,
        Artifact::ModelFormulas,
        Artifact::RankingsPca,
        Artifact::PcaScores,
        Artifact::PcaVariableImportance,
        Artifact::PcaExplainedVariance,
        Artifact::UnifiedCsv,
        Artifact::UnifiedGeoparquet,
    ]
    .iter()
    .position(|a| a == artifact)
    .unwrap_or(usize::MAX)
}

fn analysis_into(
    table: InputFile<'_>,
    shapefile: Option<InputFile<'_>>,
    params: &AnalysisParams,
    sink: &dyn ArtifactSink,
    keep_itn_basis: bool,
) -> Result<AnalysisReport, PipelineError> {
    let shapes = match shapefile {
        Some(file) => Some(formats::read_shapefile_zip(file.bytes)?),
        None => None,
    };
    let mut wards = formats::read_ward_table(table.bytes, table.name)?;
    // §1.3 steps 1-2 here, step 3 inside `analyze` (which reports it as a warning).
    let matched = match_to_shapes(&mut wards, shapes.as_ref())?;
    let geometry_index = matched.map(|m| m.geometry_index).unwrap_or_default();
    let row_geometries: Option<Vec<Option<Geometry>>> = shapes.as_ref().map(|shapes| {
        geometry_index
            .iter()
            .map(|i| i.and_then(|i| shapes.geometries.get(i).cloned().flatten()))
            .collect()
    });
    let shapefile_state = shapes.as_ref().and_then(shapefile_state);
    let input = analysis::AnalysisInput {
        table: wards,
        geometries: shapes.map(|s| s.geometries),
        geometry_index,
        shapefile_state,
    };
    let options = analysis::AnalysisOptions {
        variables: params.variables.clone().filter(|v| !v.is_empty()),
        relationships: params.relationships.clone(),
        ..analysis::AnalysisOptions::default()
    };
    let result = analysis::analyze(&input, &options)?;
    drop(input);

    // The two largest files take a core each: the model scores (45 MB of text at national
    // scale) on a thread of their own, everything else (the unified dataset's 50 MB of text and
    // its GeoParquet the largest) here.
    let cancel = mrpt_table::cancel::current();
    let (scores_written, rest) = std::thread::scope(|scope| {
        let scores_job = scope.spawn(|| {
            let work = || -> Result<(), PipelineError> {
                let scores = analysis::composite_scores(&result);
                csv_file(sink, &Artifact::CompositeScores, &scores.view()?)?;
                sink.link(&Artifact::CompositeScores, &Artifact::CompositeScoresCopy)
            };
            match &cancel {
                Some(flag) => flag.scope(work),
                None => work(),
            }
        });
        let rest = write_the_rest(&result, row_geometries.as_deref(), sink, keep_itn_basis);
        let scores = scores_job.join().unwrap_or_else(|_| {
            Err(PipelineError::Internal(
                "the model scores writer panicked".to_string(),
            ))
        });
        (scores, rest)
    });
    let itn_basis = rest?;
    scores_written?;

    let variables_used = result.selection.variables.clone();
    let warnings: Vec<String> = result.warnings.iter().map(|w| w.message.clone()).collect();
    let summary = analysis_summary(&result, &warnings);
    Ok(AnalysisReport {
        variables_used,
        warnings,
        summary,
        itn_basis,
    })
}

fn analysis_summary(result: &analysis::AnalysisResult, warnings: &[String]) -> Value {
    let top = |wards: &[RankedWard]| -> Vec<Value> {
        wards
            .iter()
            .take(TOP_WARDS)
            .map(|w| {
                json!({"ward_name": w.ward_name, "score": w.score, "rank": w.rank, "category": w.category.label()})
            })
            .collect()
    };
    let pca = result.pca.as_ref().map(|p| {
        json!({
            "top_wards": top(&p.rankings),
            "n_components": p.n_components,
            "explained_variance": p.explained_variance,
            "variable_importance": p.importance.iter().map(|(v, i)| json!({"variable": v, "importance": i})).collect::<Vec<_>>(),
            "suitability": p.suitability,
        })
    });
    json!({
        "variables_used": result.selection.variables,
        "selection_method": result.selection.method,
        "zone": result.selection.zone,
        "directions": result.directions,
        "ward_count": result.composite.median_score.len(),
        "model_count": result.composite.models.len(),
        "composite": {"top_wards": top(&result.composite.rankings)},
        "pca": pca,
        "warnings": warnings,
    })
}

/// The shapefile's state name for zone detection. Only name columns count: analysis.md §2.3
/// rule 4 says ChatMRPT never used the shapefile's `StateCode` for the zone.
fn shapefile_state(shapes: &formats::WardShapes) -> Option<String> {
    let table = &shapes.attributes;
    ["State", "STATE_NAME", "StateName"]
        .iter()
        .filter_map(|name| table.column(name))
        .flat_map(|c| c.data.to_text().into_iter().flatten())
        .find(|v| !v.trim().is_empty())
}

/// UTC now as `YYYY-MM-DDTHH:MM:SS` (the unified dataset's `last_updated`).
fn now_iso() -> String {
    prefork_utc::UtcDateTime::now().iso8601()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> Vec<u8> {
        let path = format!("{}/../../tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The analysed wards: (name, has a shape) per row of the unified dataset.
    fn analysed(files: &AnalysisFiles) -> Vec<(String, bool)> {
        let csv = files.get(&Artifact::UnifiedCsv).unwrap_or_default();
        let table =
            formats::read_table(csv, "unified_dataset.csv").unwrap_or_else(|e| panic!("{e}"));
        let wards = WardTable::from_table(table).unwrap_or_else(|e| panic!("{e}"));
        let area = wards
            .table
            .column("area_km2")
            .and_then(|c| c.data.to_f64())
            .unwrap_or_else(|| vec![None; wards.table.n_rows()]);
        wards
            .ward_names()
            .iter()
            .zip(area)
            .map(|(n, a)| (n.clone().unwrap_or_default(), a.is_some()))
            .collect()
    }

    /// What the upload report says the analysis will do, checked against what it did: the same
    /// number of wards, the same wards with and without a shape, every fuzzy rename and every
    /// duplicate fix carried out. Returns the report.
    fn assert_report_agrees(csv: &[u8], shapefile: &[u8]) -> WardMatching {
        let table = InputFile {
            name: "wards.csv",
            bytes: csv,
        };
        let shapes = InputFile {
            name: "wards.zip",
            bytes: shapefile,
        };
        let details = inspect_upload(table, Some(shapes), &formats::Limits::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let report = details.ward_matching.unwrap_or_default();
        let files = run_analysis(table, Some(shapes), &AnalysisParams::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let wards = analysed(&files);
        assert_eq!(Some(wards.len()), report.total_wards);
        assert_eq!(details.csv_rows, Some(wards.len()));
        let with_shape = wards.iter().filter(|(_, shaped)| *shaped).count();
        assert_eq!(report.matched, with_shape, "wards with a shape");
        let without: std::collections::BTreeSet<&str> = wards
            .iter()
            .filter(|(_, shaped)| !*shaped)
            .map(|(n, _)| n.as_str())
            .collect();
        let unmatched: std::collections::BTreeSet<&str> =
            report.unmatched.iter().map(String::as_str).collect();
        assert_eq!(without, unmatched, "wards without a shape");
        let names: Vec<&str> = wards.iter().map(|(n, _)| n.as_str()).collect();
        let renamed = report.duplicate_names.as_ref().is_some_and(|d| d.renamed);
        for pair in report.fuzzy.as_deref().unwrap_or_default() {
            assert!(!names.contains(&pair.table_name.as_str()), "{pair:?}");
            let carried = names.iter().any(|n| {
                *n == pair.shape_name
                    || (renamed && n.starts_with(&format!("{} (", pair.shape_name)))
            });
            assert!(carried, "{pair:?} not applied: {names:?}");
        }
        if let Some(d) = &report.duplicate_names {
            for name in &d.names {
                let rows = names.iter().filter(|n| **n == name.as_str()).count();
                if d.renamed {
                    assert_eq!(rows, 0, "{name} kept although renamed");
                    let coded = names
                        .iter()
                        .filter(|n| n.starts_with(&format!("{name} (")))
                        .count();
                    assert!(coded >= 2, "{name}: {names:?}");
                } else {
                    assert!(rows >= 2, "{name}: {names:?}");
                }
            }
        }
        report
    }

    /// Text cells, headers and integer formatting come out byte for byte as pandas writes them
    /// (ChatMRPT's kano_auto run, five variables named); computed floats agree to ~1e-15 but
    /// may differ in the last printed digit (summation order), so only what is not computed is
    /// compared.
    #[test]
    fn csv_text_matches_pandas_where_no_float_is_computed() {
        let params = AnalysisParams {
            variables: Some(
                [
                    "rainfall",
                    "total",
                    "nets_per_capita",
                    "distance_to_water_bodies",
                    "dumpsites",
                ]
                .map(String::from)
                .to_vec(),
            ),
            ..AnalysisParams::default()
        };
        let csv = fixture("kano/kano_wards.csv");
        let shapefile = fixture("kano/kano_wards_shapefile.zip");
        let files = run_analysis(
            InputFile {
                name: "kano_wards.csv",
                bytes: &csv,
            },
            Some(InputFile {
                name: "kano_wards_shapefile.zip",
                bytes: &shapefile,
            }),
            &params,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = |a: &Artifact| String::from_utf8(files.get(a).unwrap_or_default().to_vec());
        let reference = |name: &str| {
            String::from_utf8(fixture(&format!("reference/kano/{name}"))).unwrap_or_default()
        };
        assert_eq!(
            text(&Artifact::ModelFormulas).ok(),
            Some(reference("kano_auto_model_formulas.csv"))
        );
        let cleaned_columns = 12;
        for (ours, theirs) in [
            (Artifact::CleanedData, "kano_auto_analysis_cleaned_data.csv"),
            (
                Artifact::NormalizedData,
                "kano_auto_analysis_normalized_data.csv",
            ),
        ] {
            let ours = text(&ours).unwrap_or_default();
            let theirs = reference(theirs);
            // Header and the first row (no imputed or computed value in the cleaned columns).
            let head = |t: &str| t.lines().take(2).map(str::to_string).collect::<Vec<_>>();
            let (o, e) = (head(&ours), head(&theirs));
            assert_eq!(o[0], e[0]);
            let first: Vec<&str> = o[1].split(',').take(cleaned_columns).collect();
            let want: Vec<&str> = e[1].split(',').take(cleaned_columns).collect();
            assert_eq!(first, want);
        }
    }

    /// `prefork analyze --total-nets` plans from what the analysis kept in memory; the plan must
    /// be the one the written files give (results and allocation table, byte for byte), for
    /// both rankings, with the ward data's populations and with a population file, on Kano,
    /// Ilorin, a table with duplicate ward names and a table without a shapefile.
    #[test]
    fn itn_from_the_kept_basis_is_itn_from_the_files() {
        let kano_pop = fixture("reference/kano/kano_auto_population_input.csv");
        let ilorin_pop = fixture("golden/ilorin_population.csv");
        /// (ward table, shapefile, population file) fixtures of one case.
        type Case<'a> = (&'a str, Option<&'a str>, Option<&'a [u8]>);
        let cases: [Case; 5] = [
            (
                "kano/kano_wards.csv",
                Some("kano/kano_wards_shapefile.zip"),
                Some(&kano_pop),
            ),
            (
                "kano/kano_wards.csv",
                Some("kano/kano_wards_shapefile.zip"),
                None,
            ),
            (
                "ilorin/ilorin_wards.csv",
                Some("ilorin/ilorin_wards_shapefile.zip"),
                Some(&ilorin_pop),
            ),
            (
                "formats/kano_duplicate_names.csv",
                Some("kano/kano_wards_shapefile.zip"),
                Some(&kano_pop),
            ),
            ("kano/kano_wards.csv", None, Some(&kano_pop)),
        ];
        let mut planned = 0;
        for (csv, shapefile, population) in cases {
            let csv_bytes = fixture(csv);
            let shp_bytes = shapefile.map(fixture);
            let sink = std::sync::Mutex::new(AnalysisFiles::default());
            let report = run_analysis_for_itn(
                InputFile {
                    name: "wards.csv",
                    bytes: &csv_bytes,
                },
                shp_bytes.as_deref().map(|bytes| InputFile {
                    name: "wards.zip",
                    bytes,
                }),
                &AnalysisParams::default(),
                &sink,
            )
            .unwrap_or_else(|e| panic!("{csv}: {e}"));
            let files = sink
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let basis = report
                .itn_basis
                .unwrap_or_else(|| panic!("{csv}: no basis"));
            let unified = files.get(&Artifact::UnifiedCsv).map(<[u8]>::to_vec);
            for method in [RankingMethod::Composite, RankingMethod::Pca] {
                for strategy in [Some(ItnStrategy::Rank), Some(ItnStrategy::RuralFirst), None] {
                    let params = ItnParams {
                        total_nets: 120_000,
                        avg_household_size: Some(5.0),
                        urban_threshold: None,
                        method,
                        strategy,
                    };
                    let population = population.map(|bytes| InputFile {
                        name: "population.csv",
                        bytes,
                    });
                    let artifact = rankings_artifact(method);
                    let Some(rankings) = files.get(&artifact) else {
                        assert!(basis.sources(method, population).is_none(), "{csv}");
                        continue;
                    };
                    let from_files = plan_itn(
                        ItnSources {
                            rankings: (&artifact, rankings),
                            data: unified.as_deref(),
                            population,
                        },
                        &params,
                    );
                    let kept = basis
                        .sources(method, population)
                        .unwrap_or_else(|| panic!("{csv}: {method:?}"));
                    let from_memory = plan_itn(kept, &params);
                    let what = format!(
                        "{csv} {shapefile:?} {method:?} {strategy:?} population file: {}",
                        population.is_some()
                    );
                    match (from_files, from_memory) {
                        (Ok(a), Ok(b)) => {
                            let mut ra = a.results.clone();
                            let mut rb = b.results.clone();
                            for r in [&mut ra, &mut rb] {
                                if let Value::Object(m) = r {
                                    m.remove("timestamp");
                                }
                            }
                            assert_eq!(ra, rb, "{what}");
                            assert_eq!(a.allocation_csv, b.allocation_csv, "{what}");
                            planned += 1;
                        }
                        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}"),
                        (a, b) => panic!(
                            "{what}: {:?} vs {:?}",
                            a.map(|o| o.plan.stats),
                            b.map(|o| o.plan.stats)
                        ),
                    }
                }
            }
        }
        assert!(planned >= 12, "only {planned} plans compared");
    }

    #[test]
    fn the_upload_report_and_the_analysis_agree() {
        let kano_shapes = fixture("kano/kano_wards_shapefile.zip");
        let kano = assert_report_agrees(&fixture("kano/kano_wards.csv"), &kano_shapes);
        assert_eq!(
            (kano.matched, kano.unmatched.clone()),
            (65, vec!["Fagg c".to_string()])
        );
        assert_eq!(kano.fuzzy.map(|f| f.len()), Some(3));

        let ilorin = assert_report_agrees(
            &fixture("ilorin/ilorin_wards.csv"),
            &fixture("ilorin/ilorin_wards_shapefile.zip"),
        );
        assert_eq!(ilorin.matched, 35);

        // Gwale renamed Dala: an exact duplicate. Gwammaja renamed Gawuna: a duplicate only
        // once Gawunab is matched to Gawuna (step 2 before step 3). With codes both get renamed.
        let dup = fixture("formats/kano_duplicate_names.csv");
        let report = assert_report_agrees(&dup, &kano_shapes);
        let d = report.duplicate_names.unwrap_or_default();
        assert_eq!(d.names, ["Dala", "Gawuna"]);
        assert_eq!((d.rows, d.renamed), (4, true));
        // Without the code column the duplicates keep their names (PCA keeps the first).
        let text = String::from_utf8(dup).unwrap_or_default();
        let without_codes: String = text
            .lines()
            .map(|l| {
                let mut cells: Vec<&str> = l.split(',').collect();
                cells.remove(3);
                cells.join(",") + "\n"
            })
            .collect();
        let report = assert_report_agrees(without_codes.as_bytes(), &kano_shapes);
        let d = report.duplicate_names.unwrap_or_default();
        assert_eq!((d.names.len(), d.rows, d.renamed), (2, 4, false));
    }
}

/// What the user asked ITN planning for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItnParams {
    /// Nets available, 1 to [`MAX_TOTAL_NETS`].
    pub total_nets: i64,
    /// People per household, within [`HOUSEHOLD_SIZE_RANGE`]; `None` = the analysis default (5).
    pub avg_household_size: Option<f64>,
    /// Urban share, percent, within [`URBAN_THRESHOLD_RANGE`]; `None` = the strategy's default.
    pub urban_threshold: Option<f64>,
    /// The ranking the nets follow.
    pub method: RankingMethod,
    /// The distribution strategy; `None` = rural-first when the data has urban shares, else rank.
    pub strategy: Option<ItnStrategy>,
}

/// The ranges ITN planning accepts: a campaign of at most a billion nets, households of 1 to 50
/// people, an urban threshold that is a percentage.
pub const MAX_TOTAL_NETS: i64 = 1_000_000_000;
/// Accepted people per household, inclusive.
pub const HOUSEHOLD_SIZE_RANGE: (f64, f64) = (1.0, 50.0);
/// Accepted urban threshold, percent, inclusive.
pub const URBAN_THRESHOLD_RANGE: (f64, f64) = (0.0, 100.0);

impl ItnParams {
    /// Refuses a parameter outside its range, naming the parameter and the range (400).
    pub fn validate(&self) -> Result<(), PipelineError> {
        if !(1..=MAX_TOTAL_NETS).contains(&self.total_nets) {
            return Err(PipelineError::Input(format!(
                "total_nets must be a whole number of nets from 1 to {MAX_TOTAL_NETS}, got {}",
                self.total_nets
            )));
        }
        let check =
            |name: &str, value: Option<f64>, (low, high): (f64, f64), unit: &str| match value {
                Some(v) if !(v.is_finite() && (low..=high).contains(&v)) => {
                    Err(PipelineError::Input(format!(
                        "{name} must be between {low} and {high} {unit}, got {v}"
                    )))
                }
                _ => Ok(()),
            };
        check(
            "avg_household_size",
            self.avg_household_size,
            HOUSEHOLD_SIZE_RANGE,
            "people",
        )?;
        check(
            "urban_threshold",
            self.urban_threshold,
            URBAN_THRESHOLD_RANGE,
            "(percent urban)",
        )
    }
}

/// The rankings file of a method.
pub fn rankings_artifact(method: RankingMethod) -> Artifact {
    match method {
        RankingMethod::Composite => Artifact::Rankings,
        RankingMethod::Pca => Artifact::RankingsPca,
    }
}

/// The files ITN planning reads, each with the artifact it was stored as: the rankings of the
/// chosen method (or the unified dataset of an old folder), the ward data (for urban %,
/// centroids and a population column) and the population table, each if present.
#[derive(Debug, Clone, Copy)]
pub struct ItnSources<'a> {
    /// The rankings file and the artifact it was stored as (a rankings CSV or the unified dataset).
    pub rankings: (&'a Artifact, &'a [u8]),
    /// The ward data (`unified_dataset.csv` or the uploaded table), for urban shares and centroids.
    pub data: Option<&'a [u8]>,
    /// The uploaded population table.
    pub population: Option<InputFile<'a>>,
}

/// An ITN plan and its files.
#[derive(Debug, Clone)]
pub struct ItnOutput {
    /// The plan as computed.
    pub plan: analysis::ItnPlan,
    /// `itn_distribution_results.json` without the session fields (analysis id, map path).
    pub results: Value,
    /// The per-ward allocation table as CSV (the Flask system lost it; we keep it).
    pub allocation_csv: Vec<u8>,
}

/// Plan ITN distribution from stored rankings. Never runs the analysis.
pub fn plan_itn(sources: ItnSources<'_>, params: &ItnParams) -> Result<ItnOutput, PipelineError> {
    params.validate()?;
    let (artifact, bytes) = sources.rankings;
    let rankings_table = formats::read_result_table(bytes, &artifact.file_name())?;
    let data = match sources.data {
        // Everything but the per-model and per-component scores, which ITN never reads and
        // which are most of the file.
        Some(bytes) => Some(formats::read_result_columns(
            bytes,
            &Artifact::UnifiedCsv.file_name(),
            &|name| !is_score_column(name),
        )?),
        None => None,
    };
    let rankings =
        analysis::itn_rankings_from_tables(&rankings_table, data.as_ref(), params.method)?;
    let population_table = match sources.population {
        Some(file) => {
            Some(formats::population::read_population(file.bytes, file.name)?.to_table()?)
        }
        None => None,
    };
    let population: Vec<analysis::PopulationRow> = population_table
        .as_ref()
        .or(data.as_ref())
        .and_then(analysis::population_rows_from_data)
        .ok_or_else(|| {
            PipelineError::Unprocessable(
                "ITN planning needs ward populations: upload a population table \
                 (POST /upload_population with WardName and Population columns) or include a \
                 Population column in the ward data"
                    .to_string(),
            )
        })?;
    let options = analysis::ItnOptions {
        total_nets: params.total_nets,
        avg_household_size: params.avg_household_size.unwrap_or(5.0),
        urban_threshold: params.urban_threshold,
        strategy: params.strategy,
    };
    let plan = analysis::plan_itn(&rankings, &population, &options)?;
    let table = plan.allocation_table()?;
    let results = json!({
        "status": "success",
        "stats": plan.stats,
        "method": params.method,
        "strategy": plan.strategy,
        "urban_threshold": plan.urban_threshold,
        "avg_household_size": plan.avg_household_size,
        "total_nets": plan.total_nets,
        "timestamp": now_iso(),
        "prioritized": table.records(),
        "reprioritized": [],
        "unallocated_wards": plan.unallocated_wards,
        "excluded_wards": plan.excluded_wards,
        "matching": plan.matching,
        "warnings": plan.warnings.iter().map(|w| w.message.clone()).collect::<Vec<_>>(),
    });
    Ok(ItnOutput {
        results,
        allocation_csv: formats::write_csv(&table),
        plan,
    })
}

/// `model_<k>` and `PC<k>`: the unified dataset's per-model and per-component scores.
fn is_score_column(name: &str) -> bool {
    let digits = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix("model_").is_some_and(digits) || name.strip_prefix("PC").is_some_and(digits)
}

/// Ward shapes and their results, read back from `unified_dataset.geoparquet`.
pub fn map_input_from_unified(geoparquet: &[u8]) -> Result<mrpt_maps::MapInput, PipelineError> {
    let (table, geometries) = formats::read_geoparquet(geoparquet)?;
    let wards = WardTable::from_table(table).map_err(formats::Error::from)?;
    let t = &wards.table;
    let floats = |name: &str| t.column(name).and_then(|c| c.data.to_f64());
    let texts = |name: &str| t.column(name).map(|c| c.data.to_text());
    let vulnerability = |score: &str, rank: &str, category: &str| {
        let (s, r, c) = (floats(score), floats(rank), texts(category));
        move |row: usize| -> Option<mrpt_maps::Vulnerability> {
            let score = s.as_ref()?.get(row).copied().flatten()?;
            let rank = r.as_ref()?.get(row).copied().flatten()?;
            let category = c
                .as_ref()
                .and_then(|c| c.get(row).cloned().flatten())
                .unwrap_or_default();
            Some(mrpt_maps::Vulnerability {
                score,
                rank: rank.max(0.0) as u32,
                category,
            })
        }
    };
    let composite = vulnerability("composite_score", "composite_rank", "composite_category");
    let pca = vulnerability("pca_score", "pca_rank", "pca_category");
    let names = wards.ward_names();
    let mut out = Vec::with_capacity(names.len());
    for (row, name) in names.iter().enumerate() {
        out.push(mrpt_maps::WardInput {
            lga: None,
            name: name.clone().unwrap_or_default(),
            geometry: geometries.get(row).cloned().flatten(),
            composite: composite(row),
            pca: pca(row),
            itn: None,
        });
    }
    Ok(mrpt_maps::MapInput {
        area: None,
        wards: out,
    })
}

/// Add the shapefile's wards that are not on the map yet (no table row matched them), without
/// data, so the map shows every ward of the area.
pub fn add_unmatched_shapes(
    input: &mut mrpt_maps::MapInput,
    shapefile_zip: &[u8],
) -> Result<(), PipelineError> {
    let shapes = formats::read_shapefile_zip(shapefile_zip)?;
    let present: std::collections::HashSet<String> =
        input.wards.iter().map(|w| w.name.clone()).collect();
    for (name, geometry) in shapes.ward_names().into_iter().zip(&shapes.geometries) {
        let (Some(name), Some(geometry)) = (name, geometry) else {
            continue;
        };
        if present.contains(&name) {
            continue;
        }
        input.wards.push(mrpt_maps::WardInput {
            lga: None,
            name,
            geometry: Some(geometry.clone()),
            composite: None,
            pca: None,
            itn: None,
        });
    }
    Ok(())
}

/// Attach an ITN plan's per-ward figures to the map input (by ward name).
pub fn attach_itn(input: &mut mrpt_maps::MapInput, plan: &analysis::ItnPlan) {
    let by_name: std::collections::HashMap<&str, &analysis::AllocationRow> = plan
        .allocations
        .iter()
        .map(|a| (a.ward_name.as_str(), a))
        .collect();
    for ward in &mut input.wards {
        ward.itn = by_name.get(ward.name.as_str()).map(|a| mrpt_maps::ItnWard {
            population: Some(a.population),
            nets_needed: a.nets_needed.max(0) as u64,
            nets_allocated: a.nets_allocated.max(0) as u64,
            coverage_percent: a.coverage_percent,
            phase: a.allocation_phase.clone(),
            tier: a.priority_tier,
            urban_pct: Some(a.urban_pct),
            people_covered: Some(a.population_covered),
        });
        if ward.itn.is_none() && plan.unallocated_wards.iter().any(|w| w == &ward.name) {
            ward.itn = Some(mrpt_maps::ItnWard {
                population: None,
                nets_needed: 0,
                nets_allocated: 0,
                coverage_percent: 0.0,
                phase: "No allocation".to_string(),
                tier: None,
                urban_pct: None,
                people_covered: Some(0.0),
            });
        }
    }
}

/// The map's summary of a plan; `lga_totals` is the plan's per-LGA table
/// (`mrpt_analysis::lga::itn_by_lga`), when the wards have LGAs.
pub fn itn_summary(
    plan: &analysis::ItnPlan,
    method: RankingMethod,
    lga_totals: Option<&mrpt_table::Table>,
) -> mrpt_maps::ItnSummary {
    mrpt_maps::ItnSummary {
        lga_totals: lga_totals.map(itn_lga_rows).unwrap_or_default(),
        total_nets: plan.total_nets.max(0) as u64,
        allocated: plan.stats.allocated.max(0) as u64,
        remaining: plan.stats.remaining.max(0) as u64,
        coverage_percent: plan.stats.coverage_percent,
        avg_household_size: plan.avg_household_size,
        urban_threshold: plan.urban_threshold,
        method,
        strategy: Some(plan.strategy),
    }
}

/// The rows of `itn_by_lga`'s table as the ITN map reads them.
fn itn_lga_rows(table: &mrpt_table::Table) -> Vec<mrpt_maps::ItnLgaTotal> {
    let Some(lgas) = table.column("LGA").map(|c| c.data.to_text()) else {
        return Vec::new();
    };
    let numbers = |name: &str| {
        table
            .column(name)
            .and_then(|c| c.data.to_f64())
            .unwrap_or_else(|| vec![None; lgas.len()])
    };
    let (nets, wards, people) = (
        numbers("nets_allocated"),
        numbers("wards_with_nets"),
        numbers("people_covered"),
    );
    lgas.into_iter()
        .enumerate()
        .filter_map(|(row, lga)| {
            Some(mrpt_maps::ItnLgaTotal {
                lga: lga?,
                nets_allocated: nets.get(row).copied().flatten().unwrap_or(0.0).max(0.0) as u64,
                wards_with_nets: wards.get(row).copied().flatten().unwrap_or(0.0).max(0.0) as usize,
                people_covered: people.get(row).copied().flatten(),
            })
        })
        .collect()
}
