//! Session routes: mint, status, info, clear. Every answer is derived from disk in this request.

use http::{HeaderMap, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::{ApiError, App, ResponseBody, blocking, identity, reply};

/// `POST /api/session`: a new, empty session and its cookie.
pub async fn create(app: &App) -> Result<Response<ResponseBody>, ApiError> {
    let store = app.store.clone();
    let id = blocking(move || store.create_session().map_err(ApiError::from)).await?;
    let mut response = reply::json(
        StatusCode::CREATED,
        &json!({"status": "success", "session_id": id.as_str()}),
    );
    response
        .headers_mut()
        .insert(header::SET_COOKIE, identity::set_cookie(id.as_str()));
    Ok(response)
}

/// The api.md status fields, as derived from disk now.
pub fn status_fields(state: &mrpt_session::SessionState) -> Value {
    json!({
        "status": "success",
        "session_id": state.session_id,
        "data_loaded": state.data_loaded,
        "csv_loaded": state.csv_loaded,
        "shapefile_loaded": state.shapefile_loaded,
        "population_loaded": state.population_loaded,
        "analysis_complete": state.analysis_complete,
        "itn_complete": state.itn_complete,
        "analysis_id": state.analysis_id,
        "generation": state.generation,
        "analyses_started": state.analyses_started,
        "analyses_committed": state.analyses_committed,
        "worker_pid": std::process::id(),
    })
}

/// `GET /api/session/status`.
pub async fn status(app: &App, headers: &HeaderMap) -> Result<Response<ResponseBody>, ApiError> {
    let id = app.session_of(headers).await?;
    // The hot path of every page and poller: a small manifest read from the page cache is
    // cheaper inline than the futex hand-off to the blocking pool (measured with
    // scripts/bench/profile_status.sh).
    let state = app.store.status(&id)?;
    Ok(reply::json(StatusCode::OK, &status_fields(&state)))
}

/// `GET /session_info`: the status plus files, counts and the variables available.
pub async fn info(app: &App, headers: &HeaderMap) -> Result<Response<ResponseBody>, ApiError> {
    let id = app.session_of(headers).await?;
    let store = app.store.clone();
    let state = blocking(move || store.status(&id).map_err(ApiError::from)).await?;
    let mut body = status_fields(&state);
    if let Value::Object(map) = &mut body {
        map.insert("files".into(), json!(state.files));
        map.insert("upload_type".into(), json!(state.upload_type));
        map.insert("variables_used".into(), json!(state.variables_used));
        map.insert("legacy".into(), json!(state.legacy));
        let details = crate::pipeline::UploadDetails::of(&state);
        if let Ok(Value::Object(fields)) = serde_json::to_value(&details) {
            map.extend(fields);
        }
    }
    Ok(reply::json(StatusCode::OK, &body))
}

/// `POST /clear_session`: the old id reports no data (H9) and a fresh session replaces it.
pub async fn clear(app: &App, headers: &HeaderMap) -> Result<Response<ResponseBody>, ApiError> {
    let old = match identity::requested_session(headers) {
        Some(text) => {
            let store = app.store.clone();
            blocking(move || store.session(&text).map_err(ApiError::from))
                .await
                .ok()
        }
        None => None,
    };
    let store = app.store.clone();
    let new_id = blocking(move || {
        if let Some(old) = &old {
            store.clear_session(old)?;
        }
        store.create_session().map_err(ApiError::from)
    })
    .await?;
    let mut response = reply::json(
        StatusCode::OK,
        &json!({"status": "success", "new_session_id": new_id.as_str(), "session_id": new_id.as_str()}),
    );
    response
        .headers_mut()
        .insert(header::SET_COOKIE, identity::set_cookie(new_id.as_str()));
    Ok(response)
}
