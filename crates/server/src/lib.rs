//! prefork-server: the master process and its workers, with gunicorn's semantics.
//!
//! Owns: binding listeners, forking workers, supervising them (reap, respawn, heartbeat timeouts,
//! boot failures, memory limits), signals as named intents (rolling HUP reload, USR2 binary
//! upgrade), the pidfile, sd_notify and socket activation, the error and access logs, each
//! worker's tokio + hyper HTTP/1.1 accept loop with graceful drain, gunicorn's request limits,
//! trusted X-Forwarded-* handling, and `GET /metrics` aggregated through per-worker files.
//!
//! Must not depend on any mrpt-* crate: it serves whatever [`Handler`] it is handed, built per
//! worker by a [`HandlerFactory`]. It reads no environment variables and no config files: the
//! caller passes [`Settings`] and a [`Reloader`] that produces new ones on SIGHUP.
//!
//! The master stays single-threaded (no tokio, no logging thread) so that `fork` is sound; each
//! worker builds its own current-thread runtime after the fork.

mod abort;
mod bind;
mod body;
mod conns;
mod heartbeat;
mod limits;
mod logging;
mod master;
mod metrics;
mod notify;
mod pidfile;
mod signals;
#[cfg(feature = "test-hooks")]
mod test_hooks;
mod wire;
mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use bind::BindAddr;
pub use body::{DRAIN_LIMIT, RequestBody};
pub use limits::{ClientInfo, TrustedProxies};
pub use logging::{Level, LogTarget};
pub use signals::Intent;

/// The body type every handler answers with.
pub type ResponseBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// A service the workers run. The server puts the client's [`std::net::SocketAddr`] into the
/// request extensions (absent for unix-socket clients; from X-Forwarded-For, with port 0, when
/// the peer is a trusted proxy) next to a [`ClientInfo`], and writes the access log itself. It
/// answers `GET /metrics` without calling the handler, and takes a [`HandlerReport`] out of the
/// response extensions (route label, metric observations, internal error text) before sending.
pub trait Handler: Send + Sync + 'static {
    fn call(
        &self,
        req: http::Request<RequestBody>,
    ) -> Pin<Box<dyn Future<Output = http::Response<ResponseBody>> + Send>>;
}

impl<F, Fut> Handler for F
where
    F: Fn(http::Request<RequestBody>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = http::Response<ResponseBody>> + Send + 'static,
{
    fn call(
        &self,
        req: http::Request<RequestBody>,
    ) -> Pin<Box<dyn Future<Output = http::Response<ResponseBody>> + Send>> {
        Box::pin(self(req))
    }
}

/// What a handler tells the server about one response, as a response extension
/// (`response.extensions_mut().insert(report)`). The server removes it before the response is
/// written, so nothing in it can reach the client: the route labels the request in `/metrics`,
/// the observations become `app_*` series, and `error` is written to the error log at ERROR as
/// `ROUTE STATUS: ERROR`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandlerReport {
    /// The route template for the `route` label (keep it a template, never a raw path with ids,
    /// to bound cardinality); `None` = `other`.
    pub route: Option<std::borrow::Cow<'static, str>>,
    /// `(name, value)` with `name` matching `[a-z_][a-z0-9_]*`: `*_total` adds to a counter,
    /// `*_seconds` and `*_bytes` are histogram observations, anything else is ignored. Exported as
    /// `app_<name>`.
    pub metrics: Vec<(String, f64)>,
    /// The handler's internal failure, for the operator's error log only.
    pub error: Option<String>,
}

/// Builds the handler inside each worker, after the fork and inside the worker's runtime, so the
/// handler may spawn tasks and open files of its own. An error is a worker boot failure (the worker
/// exits with code 3; repeated boot failures stop the master with exit code 3).
pub type HandlerFactory = Box<dyn Fn() -> Result<Arc<dyn Handler>, String> + Send + Sync>;

/// Called by the master on SIGHUP: re-read the configuration and hand back the new settings and a
/// factory for the new workers. An error keeps the running configuration and workers.
pub type Reloader = Box<dyn FnMut() -> Result<(Settings, HandlerFactory), String>>;

/// A body made of one in-memory chunk.
pub fn full_body(bytes: impl Into<bytes::Bytes>) -> ResponseBody {
    use http_body_util::BodyExt;
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Everything the master needs to run. Durations of zero disable the matching check.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub workers: usize,
    pub binds: Vec<BindAddr>,
    /// A ready worker whose heartbeat is older than this is aborted (SIGABRT, then SIGKILL).
    pub timeout: Duration,
    /// A worker that has not reported ready within this is killed and counts as a boot failure.
    pub boot_timeout: Duration,
    pub graceful_timeout: Duration,
    /// Idle time allowed on a keep-alive connection; zero turns keep-alive off.
    pub keep_alive: Duration,
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    pub backlog: i32,
    pub pidfile: Option<PathBuf>,
    pub access_log: Option<LogTarget>,
    pub error_log: LogTarget,
    pub log_level: Level,
    /// Where the unlinked heartbeat files live; `None` = /dev/shm when present, else the temp dir.
    pub heartbeat_dir: Option<PathBuf>,
    /// Time a client gets to finish a request head once it has sent its first byte. Silence
    /// before that is bounded by `keep_alive` (or this, when keep-alive is off).
    pub header_timeout: Duration,
    /// While a handler waits for request-body bytes: the longest silence, and the grace before
    /// `body_min_rate` applies; past it the request gets 408 and the connection closes. Zero =
    /// no deadline.
    pub body_timeout: Duration,
    /// Slowest average body rate in bytes per second after `body_timeout`, so a body of N bytes
    /// gets at most `body_timeout + N / body_min_rate`; zero = no minimum.
    pub body_min_rate: u64,
    /// Most connections a worker holds at once (gunicorn's `worker_connections`); a client that
    /// arrives at the cap gets the slot of the quietest connection (idle keep-alive first, then
    /// one stalled in a head or body). Also bounded by the open-file limit.
    pub worker_connections: usize,
    /// Longest request line in bytes (CRLF excluded), else 400; 0 = no limit of ours.
    pub limit_request_line: usize,
    /// Most header fields (Host included), else 431.
    pub limit_request_fields: usize,
    /// Longest header line in bytes (name, colon, value, CRLF), else 431.
    pub limit_request_field_size: usize,
    /// Peers whose X-Forwarded-For / X-Forwarded-Proto are believed.
    pub forwarded_allow_ips: TrustedProxies,
    /// A ready worker whose resident set exceeds this many bytes is replaced gracefully.
    pub max_worker_memory: Option<u64>,
    /// Directory of the per-worker metric files behind `GET /metrics`; `None` = no /metrics.
    pub metrics_dir: Option<PathBuf>,
    /// systemd's NOTIFY_SOCKET (a path, or `@name` for the abstract namespace).
    pub notify_socket: Option<PathBuf>,
    /// systemd's watchdog interval (WATCHDOG_USEC): WATCHDOG=1 is sent at half of it.
    pub watchdog: Option<Duration>,
    /// Listening descriptors handed over by the parent (socket activation or a USR2 upgrade);
    /// when non-empty they are served instead of binding `binds`.
    pub inherited_fds: Vec<i32>,
    /// Set in a master started by USR2: the old master's pid. It writes `PIDFILE.2` until the old
    /// master exits, then takes over the pidfile ("Master has been promoted.").
    pub upgrade_parent: Option<i32>,
    /// How USR2 starts the new binary; `None` = USR2 is ignored.
    pub exec: Option<ExecSpec>,
}

/// The command line a USR2 upgrade runs (the path, not /proc/self/exe, so a binary replaced on
/// disk is the one started), from the directory the first master started in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub program: PathBuf,
    pub args: Vec<std::ffi::OsString>,
    pub cwd: PathBuf,
}

/// Environment variable naming the inherited listening descriptors in a USR2 child
/// (comma-separated numbers).
pub const ENV_UPGRADE_FDS: &str = "PREFORK_FD";
/// Environment variable holding the old master's pid in a USR2 child.
pub const ENV_UPGRADE_PARENT: &str = "PREFORK_PARENT_PID";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: 6,
            binds: vec![BindAddr::Tcp("127.0.0.1:8000".to_owned())],
            timeout: Duration::from_secs(30),
            boot_timeout: Duration::from_secs(120),
            graceful_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            max_requests: 0,
            max_requests_jitter: 0,
            backlog: 2048,
            pidfile: None,
            access_log: None,
            error_log: LogTarget::Stderr,
            log_level: Level::Info,
            heartbeat_dir: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            body_min_rate: 4096,
            worker_connections: 1000,
            limit_request_line: 4094,
            limit_request_fields: 100,
            limit_request_field_size: 8190,
            forwarded_allow_ips: TrustedProxies::default(),
            max_worker_memory: None,
            metrics_dir: None,
            notify_socket: None,
            watchdog: None,
            inherited_fds: Vec::new(),
            upgrade_parent: None,
            exec: None,
        }
    }
}

/// Exit status of a master that stopped because workers kept failing to boot.
pub const EXIT_WORKER_BOOT_ERROR: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid bind address {addr:?}: {reason}")]
    BadBindAddr { addr: String, reason: String },
    #[error("can't connect to {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("already running on PID {pid} (or pid file '{}' is stale)", path.display())]
    AlreadyRunning { pid: i32, path: PathBuf },
    #[error("pid file '{}': {source}", path.display())]
    Pidfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("log file '{}': {source}", path.display())]
    LogFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("heartbeat file in '{}': {source}", dir.display())]
    Heartbeat {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signal setup: {0}")]
    Signals(#[source] nix::Error),
    #[error("fork: {0}")]
    Fork(#[source] nix::Error),
    #[error("invalid forwarded-allow-ips entry {entry:?}")]
    BadTrustedProxy { entry: String },
    #[error("the request body was not received in time ({received} bytes in {seconds} s)")]
    BodyTimeout { received: u64, seconds: u64 },
    #[error("reading the request body: {0}")]
    Body(#[source] hyper::Error),
    #[error("metrics directory '{}': {source}", dir.display())]
    MetricsDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the master until it stops. Returns the process exit status (0 after TERM/INT/QUIT,
/// [`EXIT_WORKER_BOOT_ERROR`] when workers keep failing to boot); an `Err` means the server
/// could not start (bind, pidfile, log file) and nothing is left running.
///
/// Must be called while the process is single-threaded: it forks.
pub fn run(settings: Settings, factory: HandlerFactory, reload: Reloader) -> Result<u8, Error> {
    master::Master::start(settings, factory, reload)?.run()
}
