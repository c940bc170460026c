//! mrpt-app: the HTTP routes, the workflows that join the crates, the web UI assets, and the one
//! ApiError -> response mapping.
//!
//! Must not depend on the server crate: it speaks plain `http` types, so the binary can hand it to
//! any server (and tests can call it without a socket). Every request derives session state from
//! disk through `mrpt-session`; nothing about a session is kept in this process between requests.
//!
//! # Layout
//! - `routes/mod.rs`: the route table (method, path pattern, metric label, handler: one line per
//!   route) and the matcher. Handlers by concern: `ui` (page, assets), `ops` (ping), `session`
//!   (mint, status, info, clear, sweep), `upload`, `analysis`, `itn`, `files` (maps, downloads,
//!   export package), `chat/` (`mod.rs` the two routes, `stream` SSE framing, `conversation` one
//!   message start to end, `context` what the interpreter knows, read from disk, `tools` running
//!   the interpreter's tool calls).
//! - `pipeline`, `tpr`, `visuals`: workflows with no HTTP in them (the CLI uses the first two).
//! - `error` ([`ApiError`]) and `reply`: the one mapping from failures to answers.
//! - `request_body`, `identity`: reading bodies within their limits; the session a request names.
//!
//! # How to add a route
//! 1. Write the handler in the module of its concern under `routes/` (a new concern gets a new
//!    module, declared in `routes/mod.rs`):
//!    `pub async fn name(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError>`.
//!    Read the body with `app.body(&req.headers, req.body)` (JSON, `max_json_bytes`) or
//!    `app.upload_body(..)` (`max_upload_bytes`), then `request_body::json` / `multipart`; the
//!    session with `app.session_of(&req.headers)`; path parameters with `req.param(i)`. Run disk
//!    and CPU work inside `crate::blocking` (cancelled when the client goes away).
//! 2. Add ONE line to `ROUTES` in `routes/mod.rs`:
//!    `route!(POST "/api/thing/{id}" => thing::name, label "/api/thing")`. The label (defaults to
//!    the pattern) is the route's metric label: give one whenever the pattern has a parameter.
//!    `GET` routes answer `HEAD` too; another method on the path gets 405 with `Allow`.
//! 3. Errors: return an [`ApiError`] variant that names the status. Input problems carry a message
//!    the user can act on (it is sent as `{"status":"error","message":..}`); anything on our side is
//!    `ApiError::internal(context)`: the context goes to the operator's log through the response's
//!    [`RequestReport`], the client gets a generic sentence. `?` on `mrpt_session::Error` and
//!    `pipeline::PipelineError` already maps them (see `error.rs`).
//! 4. Test its error answers without a socket in `src/tests/routes.rs` (`App::handle` with an
//!    in-memory body), and README.md's API table gets the route.

mod error;
mod explore;
mod identity;
pub mod pipeline;
mod reply;
mod request_body;
mod routes;
#[cfg(test)]
mod tests;
pub mod tpr;
mod visuals;

use std::path::PathBuf;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;

use routes::{Found, Routed};

pub use error::ApiError;
pub use mrpt_interpreter::OpenAiConfig;
pub use reply::ResponseBody;
pub use routes::session::SessionLimits;

/// What the app needs to know, from the binary's configuration.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The `instance/` folder (sessions live in `uploads/` below it). With an object store
    /// (`store`), only this host's state: spool files, analysis scratch, cache.
    pub instance_dir: PathBuf,
    /// The session store: `None` = local disk under `instance_dir`; `Some("s3://BUCKET/PREFIX")`
    /// = the object store, shared by every host.
    pub store: Option<String>,
    /// The object store's `AWS_*` settings (endpoint, region, credentials, `AWS_ALLOW_HTTP`);
    /// the binary reads them from the environment (this crate reads none).
    pub store_vars: Vec<(String, String)>,
    /// Largest request body accepted (uploads included); larger ones get 413 and store nothing.
    pub max_upload_bytes: u64,
    /// The chat model; `None` = the rule-based interpreter (no model, no network). The caller
    /// fills `api_key` (this crate reads no environment).
    pub llm: Option<mrpt_interpreter::OpenAiConfig>,
    /// Interval of `: keepalive` comments on a chat stream while a tool runs (at most 15 s).
    pub chat_keepalive: std::time::Duration,
    /// Largest JSON body (analysis, ITN and chat requests), never above `max_upload_bytes`;
    /// larger ones get 413.
    pub max_json_bytes: u64,
    /// Bytes of one request body kept in memory while it arrives; the rest goes to a spool file
    /// on disk (`mrpt_session::Store::spool`).
    pub body_memory_bytes: u64,
    /// Bytes of unfinished request bodies this worker holds in memory, all requests together;
    /// past it every body spools to disk.
    pub max_body_memory: u64,
    /// Caps on reading uploaded tables and zips.
    pub limits: mrpt_formats::Limits,
    /// Longest variable name a request may send (selected variables, relationships).
    pub max_variable_name_bytes: usize,
    /// When idle sessions are removed, and how often a worker looks (see `sessions.rs`).
    pub sessions: SessionLimits,
    /// Largest chunk of a resumable upload (`/upload/chunk`); an upload's chunks together stay
    /// within `max_upload_bytes`.
    pub max_chunk_bytes: u64,
    /// A built single-page app (`index.html`, `assets/`) served at `/` instead of the built-in
    /// page (`--ui-dir`); `None`: the built-in page.
    pub ui_dir: Option<PathBuf>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            instance_dir: PathBuf::from("instance"),
            store: None,
            store_vars: Vec::new(),
            max_upload_bytes: 32 * 1024 * 1024,
            llm: None,
            chat_keepalive: std::time::Duration::from_secs(5),
            max_json_bytes: 1 << 20,
            body_memory_bytes: 1 << 20,
            max_body_memory: 64 << 20,
            limits: mrpt_formats::Limits::default(),
            max_variable_name_bytes: 256,
            sessions: SessionLimits::default(),
            max_chunk_bytes: 8 << 20,
            ui_dir: None,
        }
    }
}

/// Failures that stop the app from starting in a worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// Bytes of unfinished request bodies this worker holds in memory (all requests).
    body_memory: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// This worker's pid (status answers carry it; read once, the app is built after the fork).
    pid: u32,
}

impl App {
    pub fn new(config: AppConfig) -> Result<Self, Error> {
        let store = match &config.store {
            None => mrpt_session::Store::open(&config.instance_dir)?,
            Some(url) => mrpt_session::Store::open_s3(
                url,
                config.store_vars.iter().cloned(),
                &config.instance_dir,
            )?,
        };
        let interpreter = match &config.llm {
            Some(llm) => mrpt_interpreter::Interpreter::openai(llm.clone())?,
            None => mrpt_interpreter::Interpreter::rule_based(),
        };
        Ok(App {
            config,
            store,
            interpreter,
            body_memory: Default::default(),
            pid: std::process::id(),
        })
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// Answer one request. Never fails: every error becomes a JSON answer here. The response
    /// carries a [`RequestReport`] extension (route label, metric observations, internal error
    /// text) for the host; nothing of it is a header, so no host can send it to the client.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let found = routes::find(&method, &path);
        let label = match &found {
            Found::Route(route, _) => route.label,
            Found::WrongMethod { label, .. } => label,
            Found::Nowhere => routes::UNMATCHED_LABEL,
        };
        let answer = match found {
            Found::Route(route, params) => {
                let (mut parts, body) = req.into_parts();
                // `?session_id=` names the session as explicitly as the header (identity.rs).
                identity::adopt_query_session(&mut parts.headers, parts.uri.query());
                let routed = Routed {
                    headers: parts.headers,
                    uri: parts.uri,
                    params,
                    body: body.map_err(Into::into).boxed_unsync(),
                };
                (route.handler)(self, routed).await
            }
            Found::WrongMethod { allow, .. } => Err(ApiError::MethodNotAllowed {
                message: format!("{method} is not allowed on {path}; allowed: {allow}"),
                allow,
            }),
            Found::Nowhere => match self.ui_top_level(&method, &path).await {
                Some(response) => Ok(response),
                None => Err(ApiError::NotFound(format!("no route for {method} {path}"))),
            },
        };
        let (mut response, internal_error) = match answer {
            Ok(response) => (response, None),
            Err(err) => {
                let context = match &err {
                    ApiError::Internal { context } => {
                        Some(format!("{method} {path}: {context}").replace(['\r', '\n'], " "))
                    }
                    _ => None,
                };
                (reply::error(&err), context)
            }
        };
        let report = report_of(&mut response);
        report.route = label;
        report.internal_error = internal_error;
        response
    }

    /// The whole JSON body, within `max_json_bytes` (413 otherwise).
    async fn body<B>(&self, headers: &http::HeaderMap, body: B) -> Result<Bytes, ApiError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let spool = self.spool(headers);
        let limit = self.config.max_json_bytes.min(self.config.max_upload_bytes);
        request_body::collect(headers, body, limit, &spool).await
    }

    /// The whole JSON body of a routed request, within `max_json_bytes`; a `session_id` in it
    /// names the request's session when no header does (identity.rs).
    async fn json_body(&self, req: &mut Routed) -> Result<Bytes, ApiError> {
        let body = std::mem::replace(&mut req.body, routes::empty_body());
        let bytes = self.body(&req.headers, body).await?;
        identity::adopt_body_session(&mut req.headers, &bytes);
        Ok(bytes)
    }

    /// The whole upload body of a routed request, within `max_upload_bytes`.
    async fn upload_body_of(&self, req: &mut Routed) -> Result<Bytes, ApiError> {
        let body = std::mem::replace(&mut req.body, routes::empty_body());
        self.upload_body(&req.headers, body).await
    }

    /// A top-level file of the `--ui-dir` bundle (`/favicon.ico`), for a GET no route took.
    async fn ui_top_level(
        &self,
        method: &http::Method,
        path: &str,
    ) -> Option<Response<ResponseBody>> {
        let dir = self.config.ui_dir.as_ref()?;
        if *method != http::Method::GET && *method != http::Method::HEAD {
            return None;
        }
        routes::spa::top_level(dir, path.trim_start_matches('/')).await
    }

    /// The whole upload body, within `max_upload_bytes` (413 otherwise, nothing stored).
    async fn upload_body<B>(&self, headers: &http::HeaderMap, body: B) -> Result<Bytes, ApiError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let spool = self.spool(headers);
        request_body::collect(headers, body, self.config.max_upload_bytes, &spool).await
    }

    /// Where this request's body spools: the staging area of the session it names, if valid.
    fn spool(&self, headers: &http::HeaderMap) -> request_body::Spool {
        request_body::Spool {
            store: self.store.clone(),
            session: identity::requested_session(headers).and_then(|t| self.store.session(&t).ok()),
            per_body: self.config.body_memory_bytes,
            held: self.body_memory.clone(),
            max_held: self.config.max_body_memory,
        }
    }

    /// The status route's fields of a session: inline on local disk (a page-cache read is
    /// cheaper than the hand-off to the blocking pool), on a blocking thread for the object
    /// store (one GET of the manifest).
    async fn status_head(
        &self,
        id: &mrpt_session::SessionId,
    ) -> Result<mrpt_session::StatusHead, mrpt_session::Error> {
        if self.store.is_local() {
            return self.store.status_head(id);
        }
        let (store, id) = (self.store.clone(), id.clone());
        tokio::task::spawn_blocking(move || store.status_head(&id))
            .await
            .map_err(|e| mrpt_session::Error::Io {
                op: "read the session status",
                path: PathBuf::new(),
                source: std::io::Error::other(e.to_string()),
            })?
    }

    /// The session named by the request, which must exist.
    async fn session_of(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<mrpt_session::SessionId, ApiError> {
        let Some(text) = identity::requested_session(headers) else {
            return Err(ApiError::BadRequest(
                "no session: start one with POST /api/session (or upload your data from the page), then send its id \
                 in the X-Session-ID header, as session_id in the JSON body or query, or in the session_id cookie"
                    .to_string(),
            ));
        };
        // One stat of the session folder: cheaper inline than a hand-off to the blocking pool.
        self.store.session(&text).map_err(ApiError::from)
    }
}

/// What the app reports to its host about one response, attached as a response extension
/// (`response.extensions().get::<RequestReport>()`). Extensions are never serialised by an HTTP
/// server, so the internal error text cannot reach a client whichever host serves the app; the
/// binary hands the report to the server crate, which records the metrics and logs the error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestReport {
    /// The route template, for per-route metrics (never a raw path: ids would make the label set
    /// unbounded).
    pub route: &'static str,
    /// Application metric observations `(name, value)`: `*_total` adds to a counter, `*_seconds`
    /// and `*_bytes` are histogram observations (see crates/server/README.md).
    pub metrics: Vec<(String, f64)>,
    /// The context of an internal error (a 500), for the operator's error log only.
    pub internal_error: Option<String>,
}

/// The response's report, created empty when absent.
fn report_of(response: &mut Response<ResponseBody>) -> &mut RequestReport {
    response
        .extensions_mut()
        .get_or_insert_with(RequestReport::default)
}

/// Add application metric observations for the host to record: `name=value` items separated by
/// commas (`"uploads_total=1, upload_bytes=123"`); items that do not parse are dropped.
pub(crate) fn add_metric(response: &mut Response<ResponseBody>, observation: &str) {
    let report = report_of(response);
    for item in observation.split(',') {
        if let Some((name, value)) = item.split_once('=')
            && let Ok(value) = value.trim().parse::<f64>()
        {
            report.metrics.push((name.trim().to_string(), value));
        }
    }
}

/// One line on stderr in the server's log format, for failures that cannot ride on the response's
/// [`RequestReport`] (a stream already under way). Under systemd stderr is the journal.
pub(crate) fn log_line(level: &str, message: &str) {
    let stamp = prefork_utc::UtcDateTime::now().iso8601().replace('T', " ");
    eprintln!(
        "[{stamp} +0000] [{}] [{level}] {message}",
        std::process::id()
    );
}

/// Run filesystem or CPU work off the async threads. If the request is abandoned while the
/// work runs (the client closed the connection, so the server dropped the handler), the work's
/// [`mrpt_table::cancel`] flag is raised and the readers and the analysis stop at their next
/// check instead of computing an answer nobody will read.
async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    /// Raises the flag unless disarmed: dropping the future mid-wait cancels the work.
    struct CancelOnDrop(Option<mrpt_table::cancel::CancelFlag>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            if let Some(flag) = self.0.take() {
                flag.cancel();
            }
        }
    }
    let flag = mrpt_table::cancel::CancelFlag::new();
    let mut guard = CancelOnDrop(Some(flag.clone()));
    let joined = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let result = flag.scope(work);
        if flag.is_cancelled() {
            log_line(
                "INFO",
                &format!(
                    "work of an abandoned request stopped after {} ms (the client had gone)",
                    started.elapsed().as_millis()
                ),
            );
        }
        result
    })
    .await;
    guard.0 = None;
    match joined {
        Ok(result) => result,
        Err(join) => Err(ApiError::internal(format!(
            "a blocking task failed: {join}"
        ))),
    }
}
