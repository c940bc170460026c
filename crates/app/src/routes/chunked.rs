//! Resumable uploads: `POST /upload/chunk` (multipart `upload_id`, `file_type` csv|shapefile,
//! `chunk_index`, `total_chunks`, `chunk`, as ChatMRPT's React client sends them),
//! `GET /upload/status?upload_id=` (which chunks the server holds, so a client resumes after a
//! dropped connection) and `POST /upload/finalize` (JSON `{upload_id, csv_filename,
//! shapefile_filename, csv_total_chunks, shp_total_chunks}`), which commits the joined files as
//! one upload, exactly once. Chunks live in the session's staging area on disk
//! (`mrpt_session::Store::put_chunk`), so any worker may take any chunk.
//!
//! Which session: the one the request names explicitly (header, form or body `session_id`);
//! else the cookie's session when it already holds this upload's chunks; else (a first upload
//! from a fresh tab) a new session, whose cookie is set. The client learns the id from the
//! answer (`session_id`).

use http::{Response, StatusCode};
use mrpt_session::{ChunkLimits, ChunkStatus, Finalizing, SessionId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::routes::Routed;
use crate::routes::upload::{TableFile, checked_names, store_tables, upload_answer_of_state};
use crate::{ApiError, App, ResponseBody, blocking, identity, reply, request_body};

/// Most chunks one file may be cut into.
const MAX_CHUNKS: u32 = 100_000;

fn limits(app: &App) -> ChunkLimits {
    ChunkLimits {
        // Never above the upload limit (a small max_upload_bytes keeps the default valid).
        max_chunk_bytes: app.config.max_chunk_bytes.min(app.config.max_upload_bytes),
        max_upload_bytes: app.config.max_upload_bytes,
        max_chunks: MAX_CHUNKS,
    }
}

/// The session for a chunk request (see the module's rule) and whether it was minted here.
async fn chunk_session(
    app: &App,
    headers: &http::HeaderMap,
    upload_id: &str,
    may_mint: bool,
) -> Result<(SessionId, bool), ApiError> {
    if identity::is_explicit(headers) {
        return Ok((app.session_of(headers).await?, false));
    }
    if let Some(text) = identity::requested_session(headers) {
        let store = app.store.clone();
        let upload = upload_id.to_string();
        let holder = blocking(move || {
            let Ok(id) = store.session(&text) else {
                return Ok(None);
            };
            Ok::<_, ApiError>(store.chunk_status(&id, &upload)?.map(|_| id))
        })
        .await?;
        if let Some(id) = holder {
            return Ok((id, false));
        }
    }
    if !may_mint {
        return Err(ApiError::NotFound(format!(
            "no chunk of upload {upload_id} is on the server for this browser's session; send the chunks (with X-Session-ID if the upload was started with it)"
        )));
    }
    let store = app.store.clone();
    let id = blocking(move || store.create_session().map_err(ApiError::from)).await?;
    Ok((id, true))
}

fn field<'a>(form: &'a request_body::Form, name: &str) -> Result<&'a str, ApiError> {
    form.fields.get(name).map(|v| v.trim()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "a chunk needs the multipart fields upload_id, file_type (csv or shapefile), chunk_index, total_chunks and the file field chunk; '{name}' is missing"
        ))
    })
}

fn number(form: &request_body::Form, name: &str) -> Result<u32, ApiError> {
    field(form, name)?
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{name} must be a whole number")))
}

fn status_json(id: &SessionId, status: &ChunkStatus) -> Value {
    let missing: serde_json::Map<String, Value> = status
        .parts
        .iter()
        .map(|(part, s)| (part.clone(), json!(s.missing())))
        .collect();
    json!({
        "status": "success",
        "session_id": id.as_str(),
        "upload_id": status.upload_id,
        "parts": status.parts,
        "missing": missing,
        "bytes": status.bytes,
        "finalized": status.finalized,
    })
}

/// `POST /upload/chunk`.
pub async fn chunk(app: &App, mut req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.upload_body_of(&mut req).await?;
    let form = request_body::multipart(&req.headers, body).await?;
    identity::adopt_form_session(
        &mut req.headers,
        form.fields.get("session_id").map(String::as_str),
    );
    let upload_id = field(&form, "upload_id")?.to_string();
    mrpt_session::check_upload_id(&upload_id)?;
    let part = match field(&form, "file_type")? {
        "csv" => "csv",
        "shapefile" | "shp" => "shapefile",
        other => {
            return Err(ApiError::BadRequest(format!(
                "file_type {other:?} is not csv or shapefile"
            )));
        }
    };
    let index = number(&form, "chunk_index")?;
    let total = number(&form, "total_chunks")?;
    let Some(chunk) = form.files.get("chunk").cloned() else {
        return Err(ApiError::BadRequest(
            "the chunk's bytes must be sent as a file field named 'chunk'".to_string(),
        ));
    };
    let (id, minted) = chunk_session(app, &req.headers, &upload_id, true).await?;
    let store = app.store.clone();
    let limits = limits(app);
    let target = id.clone();
    let status = blocking(move || {
        store
            .put_chunk(
                &target,
                mrpt_session::Chunk {
                    upload_id: &upload_id,
                    part,
                    index,
                    total,
                    bytes: &chunk.bytes,
                },
                &limits,
            )
            .map_err(ApiError::from)
    })
    .await?;
    let mut answer = status_json(&id, &status);
    answer["file_type"] = json!(part);
    answer["chunk_index"] = json!(index);
    answer["total_chunks"] = json!(total);
    let mut response = reply::json(StatusCode::OK, &answer);
    if minted {
        identity::set_cookies(response.headers_mut(), &req.headers, id.as_str());
    }
    Ok(response)
}

/// `GET /upload/status?upload_id=<id>`: what the server holds of the upload.
pub async fn status(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let upload_id = req
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "upload_id")
        .map(|(_, v)| v.to_string())
        .ok_or_else(|| ApiError::BadRequest("add ?upload_id=<the upload's id>".to_string()))?;
    mrpt_session::check_upload_id(&upload_id)?;
    let (id, _) = chunk_session(app, &req.headers, &upload_id, false).await?;
    let store = app.store.clone();
    let target = id.clone();
    let found = blocking(move || {
        store
            .chunk_status(&target, &upload_id)
            .map_err(ApiError::from)
    })
    .await?;
    match found {
        Some(status) => Ok(reply::json(StatusCode::OK, &status_json(&id, &status))),
        None => Err(ApiError::NotFound(
            "the server holds no chunk of this upload: send all of it".to_string(),
        )),
    }
}

#[derive(Deserialize)]
struct FinalizeBody {
    upload_id: String,
    csv_filename: Option<String>,
    shapefile_filename: Option<String>,
    csv_total_chunks: Option<u32>,
    shp_total_chunks: Option<u32>,
}

/// `POST /upload/finalize`: joins the chunks and commits them as one upload, answering as
/// `/upload_both_files` does. Repeated, it answers the same without committing again.
pub async fn finalize(app: &App, mut req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.json_body(&mut req).await?;
    let b: FinalizeBody = request_body::json(&body)?;
    mrpt_session::check_upload_id(&b.upload_id)?;
    let csv_total = b.csv_total_chunks.unwrap_or(0);
    if csv_total == 0 {
        return Err(ApiError::BadRequest(
            "csv_total_chunks is missing: an upload needs the ward table (csv_filename, csv_total_chunks)".to_string(),
        ));
    }
    let shp_total = b.shp_total_chunks.unwrap_or(0);
    let (csv_name, shp_name) = checked_names(
        b.csv_filename.as_deref().unwrap_or("data.csv"),
        (shp_total > 0).then(|| b.shapefile_filename.as_deref().unwrap_or("shapefile.zip")),
    )?;
    let (id, _) = chunk_session(app, &req.headers, &b.upload_id, false).await?;
    let store = app.store.clone();
    let limits = app.config.limits;
    let target = id.clone();
    let upload_id = b.upload_id.clone();
    let answer = blocking(move || {
        let mut expected = vec![("csv", csv_total)];
        if shp_total > 0 {
            expected.push(("shapefile", shp_total));
        }
        store.finalize_chunks(
            &target,
            &upload_id,
            &expected,
            |finalizing| match finalizing {
                Finalizing::Parts { upload, parts } => {
                    let mut csv = None;
                    let mut shp = None;
                    for p in parts {
                        match p.part.as_str() {
                            "csv" => csv = Some(p.bytes),
                            _ => shp = Some(p.bytes),
                        }
                    }
                    let csv = csv.unwrap_or_default();
                    store_tables(
                        &store,
                        &target,
                        Some(upload.into()),
                        TableFile {
                            name: csv_name.clone(),
                            bytes: csv.into(),
                        },
                        shp.zip(shp_name.clone()).map(|(bytes, name)| TableFile {
                            name,
                            bytes: bytes.into(),
                        }),
                        &limits,
                    )
                }
                Finalizing::Committed => upload_answer_of_state(&store, &target),
            },
        )
    })
    .await?;
    let mut response = reply::json(StatusCode::OK, &answer);
    if identity::by_cookie_only(&req.headers)
        && identity::requested_session(&req.headers).as_deref() != Some(id.as_str())
    {
        identity::set_cookies(response.headers_mut(), &req.headers, id.as_str());
    }
    crate::add_metric(&mut response, "uploads_total=1, chunked_uploads_total=1");
    Ok(response)
}
