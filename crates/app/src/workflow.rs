//! The workflow routes: upload, population, analysis, ITN. Each derives the session's state from
//! disk, does CPU work off the async threads, and stores results through mrpt-session's commit
//! protocols (so a crash or a newer upload can never leave a half or stale result that counts).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use mrpt_analysis as analysis;
use mrpt_session::{AnalysisRequest, Artifact, RunError, SessionId, Store, UploadedTable};
use mrpt_table::{ItnStrategy, NameRule, RankingMethod, WardTable, match_ward_names};
use serde_json::{Value, json};

use crate::pipeline::{self, InputFile, PipelineError};
use crate::{ApiError, App, ResponseBody, blocking, identity, reply, request_body};

/// How long a request waits for another worker's analysis of the same session.
const ANALYSIS_WAIT: Duration = Duration::from_secs(300);

impl From<PipelineError> for ApiError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::Input(m) => ApiError::BadRequest(m),
            PipelineError::UnsupportedType(m) => ApiError::UnsupportedMediaType(m),
            PipelineError::Unprocessable(m) => ApiError::Unprocessable(m),
            PipelineError::Internal(m) => ApiError::internal(m),
        }
    }
}

/// The session of an upload: the one the request names, or a new one (with its cookie) when it
/// names none, so a first upload from a fresh browser or script just works.
async fn upload_session(app: &App, headers: &HeaderMap) -> Result<(SessionId, bool), ApiError> {
    match identity::requested_session(headers) {
        Some(_) => Ok((app.session_of(headers).await?, false)),
        None => {
            let store = app.store.clone();
            let id = blocking(move || store.create_session().map_err(ApiError::from)).await?;
            Ok((id, true))
        }
    }
}

fn with_cookie(
    mut response: Response<ResponseBody>,
    id: &SessionId,
    minted: bool,
) -> Response<ResponseBody> {
    if minted {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, identity::set_cookie(id.as_str()));
    }
    response
}

fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// `POST /upload_both_files` (and `/upload`).
pub async fn upload(
    app: &App,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<ResponseBody>, ApiError> {
    let form = request_body::multipart(headers, body).await?;
    let Some(mut table) = form.files.get("csv_file").cloned() else {
        return Err(ApiError::BadRequest(
            "the upload needs a 'csv_file' field holding the ward data (.csv or .xlsx)".to_string(),
        ));
    };
    // Names are stored, echoed and logged: bounded first (mrpt_session::stored_file_name).
    table.file_name = mrpt_session::stored_file_name(&table.file_name);
    if !matches!(
        extension(&table.file_name).as_str(),
        "csv" | "txt" | "tsv" | "xlsx" | "xls"
    ) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{:?} is not a CSV or Excel file: upload the ward data as .csv or .xlsx",
            table.file_name
        )));
    }
    let mut shapefile = form
        .files
        .get("shapefile")
        .cloned()
        .filter(|f| !f.bytes.is_empty());
    if let Some(shp) = &mut shapefile {
        shp.file_name = mrpt_session::stored_file_name(&shp.file_name);
        if extension(&shp.file_name) != "zip" {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{:?} is not a .zip: upload the shapefile as one zip holding its .shp, .shx and .dbf",
                shp.file_name
            )));
        }
    }
    let (id, minted) = upload_session(app, headers).await?;
    let store = app.store.clone();
    let response_id = id.clone();
    let upload_bytes = table.bytes.len() + shapefile.as_ref().map_or(0, |f| f.bytes.len());
    let limits = app.config.limits;
    let body = blocking(move || {
        let details = pipeline::inspect_upload(
            InputFile { name: &table.file_name, bytes: &table.bytes },
            shapefile.as_ref().map(|f| InputFile { name: &f.file_name, bytes: &f.bytes }),
            &limits,
        )?;
        // Checked first, stored second: a bad upload leaves the previous generation untouched,
        // and so does one whose client has gone.
        pipeline::check_cancelled()?;
        let mut upload = store.begin_upload(&id)?;
        // Excel bytes are stored as `raw_data.xlsx` whatever the upload was called (ChatMRPT
        // stored them under the .csv name and then failed to read them).
        let raw = if mrpt_formats::is_workbook(&table.bytes) { Artifact::RawXlsx } else { Artifact::RawCsv };
        upload.write(&raw, &table.bytes)?;
        if let Some(shp) = &shapefile {
            upload.write(&Artifact::RawShapefile, &shp.bytes)?;
        }
        let upload_type = details.upload_type();
        let info = serde_json::to_value(&details)
            .map_err(|e| ApiError::internal(format!("upload record: {e}")))?;
        let generation = store.commit_upload(
            upload,
            mrpt_session::UploadInfo { upload_type: upload_type.to_string(), info },
        )?;
        let (rows, columns) = (details.csv_rows.unwrap_or(0), details.csv_columns.unwrap_or(0));
        Ok(json!({
            "status": "success",
            "session_id": id.as_str(),
            "generation": generation,
            "upload_type": upload_type,
            "data_summary": details.data_summary,
            "ward_matching": details.ward_matching,
            "available_variables": details.available_variables,
            "message": format!("Loaded {rows} wards and {columns} columns. Next: run the risk analysis."),
        }))
    })
    .await?;
    let mut response = with_cookie(reply::json(StatusCode::OK, &body), &response_id, minted);
    crate::add_metric(
        &mut response,
        &format!("uploads_total=1, upload_bytes={upload_bytes}"),
    );
    Ok(response)
}

/// `POST /upload_population`: a WardName + Population table for ITN planning.
pub async fn upload_population(
    app: &App,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<ResponseBody>, ApiError> {
    let form = request_body::multipart(headers, body).await?;
    let Some(mut file) = form.files.get("population_file").cloned() else {
        return Err(ApiError::BadRequest(
            "the upload needs a 'population_file' field (.csv or .xlsx with WardName and Population)".to_string(),
        ));
    };
    file.file_name = mrpt_session::stored_file_name(&file.file_name);
    let id = app.session_of(headers).await?;
    let store = app.store.clone();
    let limits = app.config.limits;
    let body = blocking(move || {
        let population =
            mrpt_formats::population::read_population_with(&file.bytes, &file.file_name, &limits)
                .map_err(PipelineError::from)?;
        let stored = population.to_table().map_err(PipelineError::from)?;
        let csv = mrpt_formats::write_csv_verbatim(&stored);
        // Reported as ITN planning will join it (the `rank` strategy's exact rule, the default
        // without urban data) against the wards as the analysis names them.
        let known = analysed_ward_names(&store, &id)?;
        let wards = population.ward_names.len();
        store.commit_population(
            &id,
            &csv,
            json!({"file_name": file.file_name, "wards": wards}),
        )?;
        let unmatched: Vec<&String> = if known.is_empty() {
            Vec::new()
        } else {
            let names: Vec<Option<String>> =
                population.ward_names.iter().cloned().map(Some).collect();
            match_ward_names(&names, &known, NameRule::PopulationExact)
                .iter()
                .zip(&population.ward_names)
                .filter(|(hit, _)| hit.is_none())
                .map(|(_, name)| name)
                .collect()
        };
        Ok(json!({
            "status": "success",
            "wards": wards,
            "matched": wards - unmatched.len(),
            "unmatched": unmatched,
            "skipped_rows": population.skipped_rows.len(),
        }))
    })
    .await?;
    Ok(reply::json(StatusCode::OK, &body))
}

/// The current upload's ward table, read back (the one way: mrpt-session hands the bytes,
/// mrpt-formats parses them).
pub(crate) fn uploaded_wards(store: &Store, id: &SessionId) -> Result<Option<WardTable>, ApiError> {
    match store.read_uploaded_table(id)? {
        Some(table) => Ok(Some(parse_uploaded(&table)?)),
        None => Ok(None),
    }
}

fn parse_uploaded(table: &UploadedTable) -> Result<WardTable, ApiError> {
    let name = table.artifact.file_name();
    mrpt_formats::read_ward_table(&table.bytes, &name)
        .map_err(|e| ApiError::internal(format!("reading the stored {name}: {e}")))
}

/// The ward names of the current upload as the analysis names them (matched to the shapefile,
/// duplicates fixed); empty before any upload.
fn analysed_ward_names(store: &Store, id: &SessionId) -> Result<Vec<Option<String>>, ApiError> {
    let Some(mut wards) = uploaded_wards(store, id)? else {
        return Ok(Vec::new());
    };
    let shapes = match store.read_artifact(id, &Artifact::RawShapefile) {
        Ok(bytes) => Some(mrpt_formats::read_shapefile_zip(&bytes).map_err(PipelineError::from)?),
        Err(mrpt_session::Error::ArtifactNotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    pipeline::match_to_shapes(&mut wards, shapes.as_ref())?;
    mrpt_table::fix_duplicate_ward_names(&mut wards).map_err(PipelineError::from)?;
    Ok(wards.ward_names().to_vec())
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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

/// The analysis' files streamed into its staging folder.
struct StagingSink<'a>(&'a mrpt_session::AnalysisStaging);

impl pipeline::ArtifactSink for StagingSink<'_> {
    fn write(
        &mut self,
        artifact: &Artifact,
        body: &mut dyn FnMut(&mut (dyn std::io::Write + Send)) -> Result<(), PipelineError>,
    ) -> Result<(), PipelineError> {
        let mut file = self
            .0
            .create(artifact)
            .map_err(|e| pipeline::write_error(artifact, e))?;
        body(&mut file)
    }

    fn link(&mut self, existing: &Artifact, twin: &Artifact) -> Result<(), PipelineError> {
        self.0
            .link(existing, twin)
            .map_err(|e| pipeline::write_error(twin, e))
    }
}

/// `POST /run_analysis`: once per upload and variable set, whichever worker is asked.
pub async fn run_analysis(
    app: &App,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<ResponseBody>, ApiError> {
    let request: RunAnalysisBody = request_body::json(&body)?;
    request.validate(app.config.max_variable_name_bytes)?;
    let id = app.session_of(headers).await?;
    let store = app.store.clone();
    let started = std::time::Instant::now();
    let body = blocking(move || analyse(&store, &id, request)).await?;
    let mut response = reply::json(StatusCode::OK, &body);
    if body.get("reused") == Some(&Value::Bool(false)) {
        let seconds = started.elapsed().as_secs_f64();
        crate::add_metric(
            &mut response,
            &format!("analysis_runs_total=1, analysis_seconds={seconds:.6}"),
        );
    }
    Ok(response)
}

pub(crate) fn analyse(
    store: &Store,
    id: &SessionId,
    request: RunAnalysisBody,
) -> Result<Value, ApiError> {
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
            &params,
            &mut StagingSink(staging),
        )?;
        Ok(mrpt_session::AnalysisResult {
            variables_used: files.variables_used,
            summary: files.summary,
        })
    });
    let outcome = match outcome {
        Ok(o) => o,
        Err(RunError::Session(e)) => return Err(e.into()),
        Err(RunError::Compute(e)) => return Err(e),
    };
    let state = store.status(id)?;
    let summary = &outcome.summary;
    let mut visualizations = Vec::new();
    if state.shapefile_loaded {
        visualizations = crate::visuals::ensure_vulnerability_maps(store, id)?;
    }
    Ok(json!({
        "status": "success",
        "analysis_id": outcome.analysis_id,
        "reused": outcome.reused,
        "generation": outcome.generation,
        "variables_used": outcome.variables_used,
        "selection_method": summary.get("selection_method"),
        "composite": summary.get("composite"),
        "pca": summary.get("pca"),
        "warnings": summary.get("warnings").cloned().unwrap_or_else(|| json!([])),
        "ward_count": summary.get("ward_count"),
        "model_count": summary.get("model_count"),
        "analyses_started": state.analyses_started,
        "visualizations": visualizations,
        "message": if outcome.reused {
            "This upload was already analysed with these variables; the existing results are returned."
        } else {
            "Analysis complete. Next: plan ITN distribution with the number of nets available."
        },
    }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ItnBody {
    total_nets: Option<Value>,
    #[serde(default)]
    avg_household_size: Option<f64>,
    #[serde(default)]
    urban_threshold: Option<f64>,
    #[serde(default)]
    method: Option<RankingMethod>,
    #[serde(default)]
    strategy: Option<ItnStrategy>,
}

/// `POST /api/itn/update-distribution` (and `/api/itn/plan`). Never runs the analysis.
pub async fn plan_itn(
    app: &App,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<ResponseBody>, ApiError> {
    let request: ItnBody = request_body::json(&body)?;
    let total_nets = match &request.total_nets {
        None | Some(Value::Null) => {
            return Err(ApiError::BadRequest(
                "total_nets is required: how many nets are available to distribute?".to_string(),
            ));
        }
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .or_else(|| {
                v.as_str()
                    .and_then(|s| s.replace([',', '_', ' '], "").parse().ok())
            })
            .ok_or_else(|| {
                ApiError::BadRequest(format!("total_nets must be a whole number, got {v}"))
            })?,
    };
    let params = pipeline::ItnParams {
        total_nets,
        avg_household_size: request.avg_household_size,
        urban_threshold: request.urban_threshold,
        method: request.method.unwrap_or_default(),
        strategy: request.strategy,
    };
    // Checked here too (planning checks again) so a bad parameter costs no disk read.
    params.validate()?;
    let id = app.session_of(headers).await?;
    let store = app.store.clone();
    let body = blocking(move || crate::visuals::plan_and_store_itn(&store, &id, &params)).await?;
    Ok(reply::json(StatusCode::OK, &body))
}
