//! The upload routes (`POST /upload_both_files`, `POST /upload_population`): each upload starts a
//! new generation of the session, stored through mrpt-session's commit protocol, so a crash or a
//! newer upload can never leave a half or stale result that counts.

use http::{HeaderMap, Response, StatusCode, header};
use mrpt_session::{Artifact, SessionId, Store, UploadedTable};
use mrpt_table::{NameRule, WardTable, match_ward_names};
use serde_json::json;

use crate::pipeline::{self, InputFile, PipelineError};
use crate::routes::Routed;
use crate::{ApiError, App, ResponseBody, blocking, identity, reply, request_body};

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
pub async fn upload(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.upload_body(&req.headers, req.body).await?;
    let headers = &req.headers;
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
pub async fn upload_population(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.upload_body(&req.headers, req.body).await?;
    let headers = &req.headers;
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
