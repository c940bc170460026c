//! `POST /run_analysis`: the analysis of the current upload, run at most once per upload and
//! variable set across every worker (mrpt-session's analysis lock), and its maps.

use std::time::Duration;

use http::{Response, StatusCode};
use mrpt_analysis as analysis;
use mrpt_session::{AnalysisRequest, Artifact, RunError, SessionId, Store};
use serde_json::Value;

use crate::analysis_slots::AnalysisSlots;
use crate::pipeline::{self, InputFile, PipelineError};
use crate::routes::Routed;
use crate::{ApiError, App, ResponseBody, blocking, reply, request_body};

/// How long a request waits for another worker's analysis of the same session.
const ANALYSIS_WAIT: Duration = Duration::from_secs(300);

/// Unknown keys (the React client's `session_id`, `use_llm_selection`, `analysis_type`) are
/// ignored, not refused.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RunAnalysisBody {
    #[serde(default, alias = "variables")]
    pub selected_variables: Option<Vec<String>>,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub relationships: std::collections::BTreeMap<String, analysis::Direction>,
}

/// Most variable names one analysis request may list (at most 15 are analysed; the rest leaves
/// room for names that match nothing).
pub(crate) const MAX_LISTED_VARIABLES: usize = 100;

impl RunAnalysisBody {
    /// Refuses (400) more than [`MAX_LISTED_VARIABLES`] names or a name longer than
    /// `max_name_bytes`, before any of them is matched (matching costs CPU per byte, and answers
    /// echo the names).
    pub(crate) fn validate(&self, max_name_bytes: usize) -> Result<(), ApiError> {
        let listed = self.selected_variables.as_deref().unwrap_or_default();
        for (parameter, count) in [
            ("selected_variables", listed.len()),
            ("relationships", self.relationships.len()),
        ] {
            if count > MAX_LISTED_VARIABLES {
                return Err(ApiError::BadRequest(format!(
                    "{parameter} may name at most {MAX_LISTED_VARIABLES} variables, got {count}"
                )));
            }
        }
        let names = listed
            .iter()
            .map(|n| ("selected_variables", n))
            .chain(self.relationships.keys().map(|n| ("relationships", n)));
        for (parameter, name) in names {
            if name.len() > max_name_bytes {
                let start: String = name.chars().take(40).collect();
                return Err(ApiError::BadRequest(format!(
                    "{parameter}: a variable name may be at most {max_name_bytes} bytes long; \
                     \"{start}...\" has {}",
                    name.len()
                )));
            }
        }
        Ok(())
    }
}

/// `POST /run_analysis`: once per upload and variable set, whichever worker is asked.
pub async fn run_analysis(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let mut req = req;
    let body = app.json_body(&mut req).await?;
    let headers = &req.headers;
    let request: RunAnalysisBody = request_body::json(&body)?;
    request.validate(app.config.max_variable_name_bytes)?;
    let id = app.session_of(headers).await?;
    let (store, slots) = (app.store.clone(), app.analysis_slots.clone());
    let started = std::time::Instant::now();
    let body = blocking(move || analyse(&store, &slots, &id, request)).await?;
    let mut response = reply::json(StatusCode::OK, &body);
    if !body.reused {
        let seconds = started.elapsed().as_secs_f64();
        crate::add_metric(
            &mut response,
            &format!("analysis_runs_total=1, analysis_seconds={seconds:.6}"),
        );
    }
    Ok(response)
}

/// The analysis' files streamed into its staging folder.
struct StagingSink<'a>(&'a mrpt_session::AnalysisStaging);

impl pipeline::ArtifactSink for StagingSink<'_> {
    fn write(
        &self,
        artifact: &Artifact,
        body: &mut dyn FnMut(&mut (dyn std::io::Write + Send)) -> Result<(), PipelineError>,
    ) -> Result<(), PipelineError> {
        let mut file = self
            .0
            .create(artifact)
            .map_err(|e| pipeline::write_error(artifact, e))?;
        body(&mut file)
    }

    fn link(&self, existing: &Artifact, twin: &Artifact) -> Result<(), PipelineError> {
        self.0
            .link(existing, twin)
            .map_err(|e| pipeline::write_error(twin, e))
    }
}

/// The answer of an analysis (fields alphabetical, the order the answer always had). Chat reads
/// the typed fields; the summary's figures pass through as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Analysed {
    pub analyses_started: u64,
    pub analysis_id: String,
    pub composite: Option<Value>,
    pub generation: u64,
    pub message: &'static str,
    pub model_count: Option<Value>,
    pub pca: Option<Value>,
    pub reused: bool,
    pub selection_method: Option<Value>,
    pub status: &'static str,
    pub variables_used: Vec<String>,
    pub visualizations: Vec<crate::visuals::MapLink>,
    pub ward_count: Option<Value>,
    pub warnings: Vec<String>,
}

/// Runs (or reuses) the analysis. A computation takes one of this worker's analysis slots and
/// runs at lower CPU priority (`analysis_slots.rs`); its files and its three maps are staged
/// together and committed at once, so a new upload meanwhile leaves none of them behind (409).
pub(crate) fn analyse(
    store: &Store,
    slots: &AnalysisSlots,
    id: &SessionId,
    request: RunAnalysisBody,
) -> Result<Analysed, ApiError> {
    let params = pipeline::AnalysisParams {
        variables: request.selected_variables.clone().filter(|v| !v.is_empty()),
        relationships: request.relationships.clone(),
    };
    let session_request = AnalysisRequest {
        variables: params.variables.clone(),
        // No options is `null`, which is also what an old-system analysis was run with, so
        // such a folder's analysis is reused rather than recomputed.
        options: if params.relationships.is_empty() {
            Value::Null
        } else {
            serde_json::to_value(&params.relationships).unwrap_or(Value::Null)
        },
        force: request.force,
        wait: Some(ANALYSIS_WAIT),
    };
    let outcome = store.run_analysis_once(id, &session_request, |inputs, staging| {
        slots.run(|| compute(store, id, inputs, staging, &params))?
    });
    let outcome = match outcome {
        Ok(o) => o,
        Err(RunError::Session(e)) => return Err(e.into()),
        Err(RunError::Compute(e)) => return Err(e),
    };
    let state = store.status(id)?;
    let summary = &outcome.summary;
    // Drawn and placed by the commit; drawn here only for an analysis committed without them
    // (an older folder, a crash between the commit and the maps' placing).
    let mut visualizations = Vec::new();
    if state.shapefile_loaded {
        visualizations = crate::visuals::ensure_vulnerability_maps(store, id)?;
    }
    let warnings: Vec<String> = summary
        .get("warnings")
        .cloned()
        .and_then(|w| serde_json::from_value(w).ok())
        .unwrap_or_default();
    Ok(Analysed {
        analyses_started: state.analyses_started,
        analysis_id: outcome.analysis_id,
        composite: summary.get("composite").cloned(),
        generation: outcome.generation,
        message: if outcome.reused {
            "This upload was already analysed with these variables; the existing results are returned."
        } else {
            "Analysis complete. Next: plan ITN distribution with the number of nets available."
        },
        model_count: summary.get("model_count").cloned(),
        pca: summary.get("pca").cloned(),
        reused: outcome.reused,
        selection_method: summary.get("selection_method").cloned(),
        status: "success",
        variables_used: outcome.variables_used,
        visualizations,
        ward_count: summary.get("ward_count").cloned(),
        warnings,
    })
}

/// One computation: the analysis' files and its vulnerability maps, into its staging folder.
fn compute(
    store: &Store,
    id: &SessionId,
    inputs: &mrpt_session::AnalysisInputs,
    staging: &mrpt_session::AnalysisStaging,
    params: &pipeline::AnalysisParams,
) -> Result<mrpt_session::AnalysisResult, ApiError> {
    let Some(table) = inputs.uploaded_table().map_err(ApiError::from)? else {
        return Err(ApiError::Conflict(
            "no ward data uploaded: upload a CSV first".into(),
        ));
    };
    let shapefile = inputs
        .read(&Artifact::RawShapefile)
        .map_err(ApiError::from)?;
    let (table_name, shapefile_name) = (
        table.artifact.file_name(),
        Artifact::RawShapefile.file_name(),
    );
    let files = pipeline::run_analysis_into(
        InputFile {
            name: &table_name,
            bytes: &table.bytes,
        },
        shapefile.as_deref().map(|bytes| InputFile {
            name: &shapefile_name,
            bytes,
        }),
        params,
        &StagingSink(staging),
    )?;
    if let Some(shapefile) = &shapefile {
        crate::visuals::stage_vulnerability_maps(store, id, staging, shapefile)?;
    }
    Ok(mrpt_session::AnalysisResult {
        variables_used: files.variables_used,
        summary: files.summary,
    })
}
