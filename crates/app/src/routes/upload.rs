//! The upload routes (`POST /upload_both_files`, `POST /upload_population`): each upload starts a
//! new generation of the session, stored through mrpt-session's commit protocol, so a crash or a
//! newer upload can never leave a half or stale result that counts.

use http::{HeaderMap, Response, StatusCode};
use mrpt_session::{Artifact, SessionId, Store, UploadedTable};
use mrpt_table::{NameRule, WardTable, match_ward_names};
use serde_json::json;

use crate::pipeline::{self, InputFile, PipelineError};
use crate::routes::Routed;
use crate::{ApiError, App, ResponseBody, blocking, identity, reply, request_body};

/// The session of an upload: the one the request names explicitly (header, form or body
/// `session_id`), or a new one (with its cookies) when it names none: a cookie alone does not
/// count, so a second tab's upload never replaces the first tab's data (identity.rs).
pub(crate) async fn upload_session(
    app: &App,
    headers: &HeaderMap,
) -> Result<(SessionId, bool), ApiError> {
    if identity::is_explicit(headers) {
        Ok((app.session_of(headers).await?, false))
    } else {
        let store = app.store.clone();
        let id = blocking(move || store.create_session().map_err(ApiError::from)).await?;
        Ok((id, true))
    }
}

pub(crate) fn with_cookie(
    mut response: Response<ResponseBody>,
    request: &HeaderMap,
    id: &SessionId,
    minted: bool,
) -> Response<ResponseBody> {
    if minted {
        identity::set_cookies(response.headers_mut(), request, id.as_str());
    }
    response
}

fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// One uploaded file: its name (as sent) and bytes.
pub(crate) struct TableFile {
    pub(crate) name: String,
    pub(crate) bytes: bytes::Bytes,
}

/// The ward table's and the shapefile's names, bounded (`stored_file_name`) and checked for
/// their type: a table is .csv/.txt/.tsv/.xlsx/.xls, a shapefile a .zip (415 otherwise).
pub(crate) fn checked_names(
    table: &str,
    shapefile: Option<&str>,
) -> Result<(String, Option<String>), ApiError> {
    // Names are stored, echoed and logged: bounded first (mrpt_session::stored_file_name).
    let table = mrpt_session::stored_file_name(table);
    if !matches!(
        extension(&table).as_str(),
        "csv" | "txt" | "tsv" | "xlsx" | "xls"
    ) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{table:?} is not a CSV or Excel file: upload the ward data as .csv or .xlsx"
        )));
    }
    let shapefile = shapefile.map(mrpt_session::stored_file_name);
    if let Some(shp) = &shapefile
        && extension(shp) != "zip"
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{shp:?} is not a .zip: upload the shapefile as one zip holding its .shp, .shx and .dbf"
        )));
    }
    Ok((table, shapefile))
}

/// Checks a ward table (and shapefile) and commits them as the session's new upload, in
/// `upload` when given (a chunked upload's finalize starts it) or a new one. Blocking. The
/// answer of every upload route.
pub(crate) fn store_tables(
    store: &Store,
    id: &SessionId,
    upload: Option<mrpt_session::Upload>,
    table: TableFile,
    shapefile: Option<TableFile>,
    limits: &mrpt_formats::Limits,
) -> Result<serde_json::Value, ApiError> {
    let details = pipeline::inspect_upload(
        InputFile {
            name: &table.name,
            bytes: &table.bytes,
        },
        shapefile.as_ref().map(|f| InputFile {
            name: &f.name,
            bytes: &f.bytes,
        }),
        limits,
    )?;
    // Checked first, stored second: a bad upload leaves the previous generation untouched,
    // and so does one whose client has gone.
    pipeline::check_cancelled()?;
    let mut upload = match upload {
        Some(upload) => upload,
        None => store.begin_upload(id)?,
    };
    // Excel bytes are stored as `raw_data.xlsx` whatever the upload was called (ChatMRPT
    // stored them under the .csv name and then failed to read them).
    let raw = if mrpt_formats::is_workbook(&table.bytes) {
        Artifact::RawXlsx
    } else {
        Artifact::RawCsv
    };
    upload.write(&raw, &table.bytes)?;
    if let Some(shp) = &shapefile {
        upload.write(&Artifact::RawShapefile, &shp.bytes)?;
    }
    let upload_type = details.upload_type();
    let info = serde_json::to_value(&details)
        .map_err(|e| ApiError::internal(format!("upload record: {e}")))?;
    let generation = store.commit_upload(
        upload,
        mrpt_session::UploadInfo {
            upload_type: upload_type.to_string(),
            info,
        },
    )?;
    Ok(upload_answer(id, generation, &details))
}

fn upload_answer(
    id: &SessionId,
    generation: u64,
    details: &pipeline::UploadDetails,
) -> serde_json::Value {
    let (rows, columns) = (
        details.csv_rows.unwrap_or(0),
        details.csv_columns.unwrap_or(0),
    );
    json!({
        "status": "success",
        "session_id": id.as_str(),
        "generation": generation,
        "upload_type": details.upload_type(),
        "data_summary": details.data_summary,
        "ward_matching": details.ward_matching,
        "available_variables": details.available_variables,
        "message": format!("Loaded {rows} wards and {columns} columns. Next: run the risk analysis."),
    })
}

/// The upload answer for the session's current upload, from disk (a chunked upload whose
/// commit happened but whose answer was lost with its worker).
pub(crate) fn upload_answer_of_state(
    store: &Store,
    id: &SessionId,
) -> Result<serde_json::Value, ApiError> {
    let state = store.status(id)?;
    let details = pipeline::UploadDetails::of(&state);
    Ok(upload_answer(id, state.generation, &details))
}

/// `POST /upload_both_files` (and `/upload`).
pub async fn upload(app: &App, mut req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.upload_body_of(&mut req).await?;
    let form = request_body::multipart(&req.headers, body).await?;
    identity::adopt_form_session(
        &mut req.headers,
        form.fields.get("session_id").map(String::as_str),
    );
    let headers = &req.headers;
    let Some(table) = form.files.get("csv_file").cloned() else {
        return Err(ApiError::BadRequest(
            "the upload needs a 'csv_file' field holding the ward data (.csv or .xlsx)".to_string(),
        ));
    };
    let shapefile = form
        .files
        .get("shapefile")
        .cloned()
        .filter(|f| !f.bytes.is_empty());
    let (table_name, shapefile_name) = checked_names(
        &table.file_name,
        shapefile.as_ref().map(|f| f.file_name.as_str()),
    )?;
    let table = TableFile {
        name: table_name,
        bytes: table.bytes,
    };
    let shapefile = shapefile.zip(shapefile_name).map(|(f, name)| TableFile {
        name,
        bytes: f.bytes,
    });
    let (id, minted) = upload_session(app, headers).await?;
    let store = app.store.clone();
    let response_id = id.clone();
    let upload_bytes = table.bytes.len() + shapefile.as_ref().map_or(0, |f| f.bytes.len());
    let limits = app.config.limits;
    let body = blocking(move || store_tables(&store, &id, None, table, shapefile, &limits)).await?;
    let mut response = with_cookie(
        reply::json(StatusCode::OK, &body),
        headers,
        &response_id,
        minted,
    );
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

/// `POST /upload_lga_lookup`: multipart field `lga_lookup`, a CSV with `WardName,LGA` or
/// `LGACode,LGAName`; it names the LGAs of every later answer in the session.
pub async fn upload_lga_lookup(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.upload_body(&req.headers, req.body).await?;
    let form = request_body::multipart(&req.headers, body).await?;
    let Some(file) = form.files.get("lga_lookup").cloned() else {
        return Err(ApiError::BadRequest(
            "the upload needs an 'lga_lookup' field: a CSV with WardName,LGA or LGACode,LGAName"
                .to_string(),
        ));
    };
    let id = app.session_of(&req.headers).await?;
    let store = app.store.clone();
    let body = blocking(move || crate::explore::store_lookup(&store, &id, &file.bytes)).await?;
    Ok(reply::json(StatusCode::OK, &body))
}
