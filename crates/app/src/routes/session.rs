//! Session routes: mint, status, info, clear. Every answer is derived from disk in this request.
//! Also this worker's share of the automatic session sweep.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};
use mrpt_session::{SessionId, StatusHead, SweepPolicy};
use serde::Serialize;
use serde_json::{Value, json};

use crate::routes::Routed;
use crate::{ApiError, App, ResponseBody, blocking, identity, reply};

/// When idle sessions are removed. `None`: never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session with data (or a chat history) this long without a write is removed.
    pub idle_ttl: Option<Duration>,
    /// A session that never held data (or was cleared) this long without a write is removed.
    pub empty_ttl: Option<Duration>,
    /// How often, at most, one worker sweeps (across all processes); `None`: no automatic sweep.
    pub sweep_every: Option<Duration>,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle_ttl: Some(Duration::from_secs(30 * 24 * 3600)),
            empty_ttl: Some(Duration::from_secs(24 * 3600)),
            sweep_every: Some(Duration::from_secs(3600)),
        }
    }
}

impl SessionLimits {
    pub fn policy(&self) -> SweepPolicy {
        SweepPolicy {
            idle: self.idle_ttl,
            empty: self.empty_ttl,
        }
    }
}

/// `POST /api/session`: a new, empty session and its cookie.
pub async fn create(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let store = app.store.clone();
    let id = blocking(move || store.create_session().map_err(ApiError::from)).await?;
    let mut response = reply::json(
        StatusCode::CREATED,
        &json!({"status": "success", "session_id": id.as_str()}),
    );
    identity::set_cookies(response.headers_mut(), &req.headers, id.as_str());
    Ok(response)
}

/// The status answer, serialised straight from the manifest's head (no JSON tree).
#[derive(Serialize)]
struct StatusAnswer<'a> {
    status: &'static str,
    session_id: Option<&'a str>,
    data_loaded: bool,
    csv_loaded: bool,
    shapefile_loaded: bool,
    population_loaded: bool,
    analysis_complete: bool,
    itn_complete: bool,
    analysis_id: Option<&'a str>,
    generation: u64,
    analyses_started: u64,
    analyses_committed: u64,
    worker_pid: u32,
}

impl<'a> StatusAnswer<'a> {
    fn new(session_id: Option<&'a str>, head: &'a StatusHead, worker_pid: u32) -> Self {
        StatusAnswer {
            status: "success",
            session_id,
            data_loaded: head.data_loaded,
            csv_loaded: head.data_loaded,
            shapefile_loaded: head.shapefile_loaded,
            population_loaded: head.population_loaded,
            analysis_complete: head.analysis_id.is_some(),
            itn_complete: head.itn_complete,
            analysis_id: head.analysis_id.as_deref(),
            generation: head.generation,
            analyses_started: head.analyses_started,
            analyses_committed: head.analyses_committed,
            worker_pid,
        }
    }
}

/// `GET /api/session/status`: the hot path of every page and poller. Read from disk in this
/// request: the manifest's head line (one open without following links, one read of at most
/// 1 KiB, a typed parse), answered inline (a page-cache read is cheaper than the hand-off to
/// the blocking pool; measured with scripts/bench/profile_status.sh). A request that names no
/// session gets the state of "nothing yet" (`session_id: null`): sessions are minted by the
/// first upload or chat, not by looking at the page. A browser whose cookie names a session
/// that no longer exists gets the 404 and an expired cookie, so its next upload starts afresh.
pub async fn status(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let headers = &req.headers;
    let default = StatusHead::default();
    let body = match identity::requested_session(headers) {
        None => serde_json::to_vec(&StatusAnswer::new(None, &default, app.pid)),
        Some(text) => {
            let id = SessionId::parse(&text)?;
            let head = match app.status_head(&id).await {
                Ok(head) => head,
                Err(e @ mrpt_session::Error::SessionNotFound(_))
                    if identity::by_cookie_only(headers) =>
                {
                    let mut response = reply::error(&ApiError::from(e));
                    response
                        .headers_mut()
                        .insert(header::SET_COOKIE, identity::expire_cookie());
                    return Ok(response);
                }
                Err(e) => return Err(e.into()),
            };
            serde_json::to_vec(&StatusAnswer::new(Some(id.as_str()), &head, app.pid))
        }
    }
    .map_err(|e| ApiError::internal(format!("status answer: {e}")))?;
    let mut response = Response::new(reply::full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

impl App {
    /// Starts this worker's part of the automatic sweep of idle sessions (call it in the worker,
    /// inside its runtime): a task that now and then asks the store whether a sweep is due. The
    /// store lets one process at a time sweep, at most once per `sweep_every` across all of
    /// them, and never makes anyone wait; the sweep itself runs on the blocking pool. The master
    /// takes no part (it never runs a runtime).
    pub fn start_session_sweeper(&self) {
        start_sweeper(self);
    }
}

fn start_sweeper(app: &App) {
    let limits = app.config.sessions;
    let Some(every) = limits.sweep_every else {
        return;
    };
    let store = app.store.clone();
    let policy = limits.policy();
    // Look every minute (or every interval if shorter); the first look soon after boot, spread
    // over the workers so they do not all try the lock at the same instant.
    let period = every.min(Duration::from_secs(60));
    let first = Duration::from_millis(1000 + u64::from(app.pid % 4000));
    tokio::spawn(async move {
        tokio::time::sleep(first).await;
        loop {
            let store = store.clone();
            let swept =
                tokio::task::spawn_blocking(move || store.sweep_if_due(&policy, every)).await;
            match swept {
                Ok(Ok(Some(report))) => crate::log_line(
                    "info",
                    &format!(
                        "Session sweep: removed {} idle and {} empty sessions of {} ({} bytes), {} busy, {} leftovers, {} ms",
                        report.removed_idle,
                        report.removed_empty,
                        report.sessions,
                        report.bytes_freed,
                        report.busy,
                        report.debris,
                        report.elapsed_ms
                    ),
                ),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => crate::log_line("error", &format!("Session sweep failed: {e}")),
                Err(e) => crate::log_line("error", &format!("Session sweep task failed: {e}")),
            }
            tokio::time::sleep(period).await;
        }
    });
}

/// `GET /session_info`: the status plus files, counts and the variables available.
pub async fn info(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let headers = &req.headers;
    let id = app.session_of(headers).await?;
    let store = app.store.clone();
    let state = blocking(move || store.status(&id).map_err(ApiError::from)).await?;
    // The status route's fields, then the rest.
    let head = state.head();
    let mut body = serde_json::to_value(StatusAnswer::new(Some(&state.session_id), &head, app.pid))
        .map_err(|e| ApiError::internal(format!("session info answer: {e}")))?;
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
pub async fn clear(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let headers = &req.headers;
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
    identity::set_cookies(response.headers_mut(), headers, new_id.as_str());
    Ok(response)
}
