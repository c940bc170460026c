//! mrpt-app: the HTTP routes, the workflows that join the crates, the web UI assets, and the one
//! ApiError -> response mapping.
//!
//! Must not depend on the server crate: it speaks plain `http` types, so the binary can hand it to
//! any server (and tests can call it without a socket). Every request derives session state from
//! disk through `mrpt-session`; nothing about a session is kept in this process between requests.

mod chat;
mod error;
mod files;
mod identity;
pub mod pipeline;
mod reply;
mod request_body;
mod sessions;
mod ui;
mod visuals;
mod workflow;

use std::path::PathBuf;

use bytes::Bytes;
use http::{Method, Request, Response};

pub use error::ApiError;
pub use mrpt_interpreter::OpenAiConfig;
pub use reply::ResponseBody;
pub use sessions::SessionLimits;

/// What the app needs to know, from the binary's configuration.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The `instance/` folder (sessions live in `uploads/` below it).
    pub instance_dir: PathBuf,
    /// Largest request body accepted (uploads included); larger ones get 413 and store nothing.
    pub max_upload_bytes: u64,
    /// The chat model; `None` = the rule-based interpreter (no model, no network). The caller
    /// fills `api_key` (this crate reads no environment).
    pub llm: Option<mrpt_interpreter::OpenAiConfig>,
    /// Interval of `: keepalive` comments on a chat stream while a tool runs (at most 15 s).
    pub chat_keepalive: std::time::Duration,
    /// When idle sessions are removed, and how often a worker looks (see `sessions.rs`).
    pub sessions: SessionLimits,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            instance_dir: PathBuf::from("instance"),
            max_upload_bytes: 32 * 1024 * 1024,
            llm: None,
            chat_keepalive: std::time::Duration::from_secs(5),
            sessions: SessionLimits::default(),
        }
    }
}

/// Failures that stop the app from starting in a worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot prepare the instance directory {path}: {source}")]
    InstanceDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the session store: {0}")]
    Store(#[from] mrpt_session::Error),
    #[error("cannot set up the chat model: {0}")]
    Interpreter(#[from] mrpt_interpreter::Error),
}

/// The service: one per worker process, built after fork.
#[derive(Debug, Clone)]
pub struct App {
    config: AppConfig,
    store: mrpt_session::Store,
    interpreter: mrpt_interpreter::Interpreter,
    /// This worker's pid (status answers carry it; read once, the app is built after the fork).
    pid: u32,
}

impl App {
    pub fn new(config: AppConfig) -> Result<Self, Error> {
        let uploads = config.instance_dir.join("uploads");
        std::fs::create_dir_all(&uploads).map_err(|source| Error::InstanceDir {
            path: uploads.clone(),
            source,
        })?;
        let store = mrpt_session::Store::open(&config.instance_dir)?;
        let interpreter = match &config.llm {
            Some(llm) => mrpt_interpreter::Interpreter::openai(llm.clone())?,
            None => mrpt_interpreter::Interpreter::rule_based(),
        };
        Ok(App {
            config,
            store,
            interpreter,
            pid: std::process::id(),
        })
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// Answer one request. Never fails: every error becomes a JSON answer here.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let mut response = match self.route(req).await {
            Ok(response) => response,
            Err(err) => {
                let mut response = reply::error(&err);
                if let ApiError::Internal { context } = &err {
                    // The server writes this to its error log and strips it (no dependency on
                    // the server crate; see crates/server/README.md, "Side channel").
                    let line = format!("{method} {path}: {context}").replace(['\r', '\n'], " ");
                    if let Ok(value) = http::HeaderValue::from_str(&line) {
                        response.headers_mut().insert("x-prefork-error", value);
                    }
                }
                response
            }
        };
        response.headers_mut().insert(
            "x-prefork-route",
            http::HeaderValue::from_static(route_label(&method, &path)),
        );
        response
    }

    async fn route<B>(&self, req: Request<B>) -> Result<Response<ResponseBody>, ApiError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = parts.method.clone();
        let is = |m: &Method| method == *m || (*m == Method::GET && method == Method::HEAD);
        match segments.as_slice() {
            ["ping"] if is(&Method::GET) => Ok(reply::json(
                http::StatusCode::OK,
                &serde_json::json!({"status": "ok"}),
            )),
            [""] if is(&Method::GET) => ui::index(self, &parts.headers).await,
            ["static", file] if is(&Method::GET) => ui::asset(file),
            ["api", "session"] if method == Method::POST => sessions::create(self).await,
            ["api", "session", "status"] if is(&Method::GET) => {
                sessions::status(self, &parts.headers).await
            }
            ["session_info"] if is(&Method::GET) => sessions::info(self, &parts.headers).await,
            ["clear_session"] if method == Method::POST => {
                sessions::clear(self, &parts.headers).await
            }
            ["upload_both_files"] | ["upload"] if method == Method::POST => {
                let body = self.body(&parts.headers, body).await?;
                workflow::upload(self, &parts.headers, body).await
            }
            ["upload_population"] if method == Method::POST => {
                let body = self.body(&parts.headers, body).await?;
                workflow::upload_population(self, &parts.headers, body).await
            }
            ["run_analysis"] if method == Method::POST => {
                let body = self.body(&parts.headers, body).await?;
                workflow::run_analysis(self, &parts.headers, body).await
            }
            ["api", "itn", "update-distribution"] | ["api", "itn", "plan"]
                if method == Method::POST =>
            {
                let body = self.body(&parts.headers, body).await?;
                workflow::plan_itn(self, &parts.headers, body).await
            }
            ["send_message"] if method == Method::POST => {
                let body = self.body(&parts.headers, body).await?;
                chat::send_message(self, &parts.headers, body).await
            }
            ["send_message_streaming"] if method == Method::POST => {
                let body = self.body(&parts.headers, body).await?;
                chat::send_message_streaming(self, &parts.headers, body).await
            }
            ["serve_viz_file", sid, rest @ ..] if is(&Method::GET) && !rest.is_empty() => {
                files::serve_viz(self, &parts.headers, sid, &rest.join("/")).await
            }
            ["export", "download", sid, rest @ ..] if is(&Method::GET) && !rest.is_empty() => {
                files::download(self, &parts.headers, sid, &rest.join("/")).await
            }
            ["generate_report"] if method == Method::POST => {
                files::generate_report(self, &parts.headers).await
            }
            _ => {
                let _ = body;
                Err(ApiError::NotFound(format!("no route for {method} {path}")))
            }
        }
    }

    /// The whole request body, within the upload limit (413 otherwise, nothing stored).
    async fn body<B>(&self, headers: &http::HeaderMap, body: B) -> Result<Bytes, ApiError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        request_body::collect(headers, body, self.config.max_upload_bytes).await
    }

    /// The session named by the request, which must exist.
    async fn session_of(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<mrpt_session::SessionId, ApiError> {
        let Some(text) = identity::requested_session(headers) else {
            return Err(ApiError::BadRequest(
                "no session: start one with POST /api/session (or open the page), then send its id \
                 in the session_id cookie or the X-Session-ID header"
                    .to_string(),
            ));
        };
        // One stat of the session folder: cheaper inline than a hand-off to the blocking pool.
        self.store.session(&text).map_err(ApiError::from)
    }
}

/// The route template of a request, for the server's per-route metrics (never a raw path: ids
/// would make the label set unbounded).
fn route_label(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let post = *method == Method::POST;
    match segments.as_slice() {
        ["ping"] => "/ping",
        [""] => "/",
        ["static", ..] => "/static",
        ["api", "session"] if post => "/api/session",
        ["api", "session", "status"] => "/api/session/status",
        ["session_info"] => "/session_info",
        ["clear_session"] => "/clear_session",
        ["upload_both_files"] | ["upload"] => "/upload_both_files",
        ["upload_population"] => "/upload_population",
        ["run_analysis"] => "/run_analysis",
        ["api", "itn", _] => "/api/itn/update-distribution",
        ["send_message"] => "/send_message",
        ["send_message_streaming"] => "/send_message_streaming",
        ["serve_viz_file", ..] => "/serve_viz_file",
        ["export", "download", ..] => "/export/download",
        ["generate_report"] => "/generate_report",
        _ => "other",
    }
}

/// Add an application metric observation for the server to record (`name=value`, see
/// crates/server/README.md).
pub(crate) fn add_metric(response: &mut Response<ResponseBody>, observation: &str) {
    let value = match response
        .headers()
        .get("x-prefork-metric")
        .and_then(|v| v.to_str().ok())
    {
        Some(existing) => format!("{existing}, {observation}"),
        None => observation.to_string(),
    };
    if let Ok(value) = http::HeaderValue::from_str(&value) {
        response.headers_mut().insert("x-prefork-metric", value);
    }
}

/// One line on stderr in the server's log format, for failures that cannot ride on a response
/// header (a stream already under way). Under systemd stderr is the journal.
pub(crate) fn log_line(level: &str, message: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stamp = pipeline::iso_from_unix(now).replace('T', " ");
    eprintln!(
        "[{stamp} +0000] [{}] [{level}] {message}",
        std::process::id()
    );
}

/// Run filesystem or CPU work off the async threads.
async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) => Err(ApiError::internal(format!(
            "a blocking task failed: {join}"
        ))),
    }
}
