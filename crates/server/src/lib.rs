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

#![deny(missing_docs)]

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
    /// Answers one request on the worker's current-thread runtime. Failures are answered as
    /// responses (there is no `Err`); internal error text goes in the [`HandlerReport`], not the body.
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
    /// Worker processes to keep running (0 is taken as 1).
    pub workers: usize,
    /// Addresses to listen on; all workers accept on all of them.
    pub binds: Vec<BindAddr>,
    /// A ready worker whose heartbeat is older than this is aborted (SIGABRT, then SIGKILL).
    pub timeout: Duration,
    /// A worker that has not reported ready within this is killed and counts as a boot failure.
    pub boot_timeout: Duration,
    /// After TERM (or USR2/HUP replacing a worker), how long workers get to finish in-flight requests
    /// before SIGKILL; QUIT/INT use at most a short fixed limit.
    pub graceful_timeout: Duration,
    /// Idle time allowed on a keep-alive connection; zero turns keep-alive off.
    pub keep_alive: Duration,
    /// A worker exits gracefully after this many requests (plus jitter) and is replaced; 0 = never.
    pub max_requests: u64,
    /// Each worker's limit is `max_requests + random(0..=jitter)`, so workers do not restart together.
    pub max_requests_jitter: u64,
    /// `listen(2)` backlog of every bound socket.
    pub backlog: i32,
    /// File the master's pid is written to (removed at exit); `None` = no pid file.
    pub pidfile: Option<PathBuf>,
    /// Where access-log lines go; `None` = no access log.
    pub access_log: Option<LogTarget>,
    /// Where the error log (master and worker messages) goes.
    pub error_log: LogTarget,
    /// Lowest level written to the error log.
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
    /// The binary to execute (as it was started, so a replaced file is the one run).
    pub program: PathBuf,
    /// Its arguments, without argv\[0].
    pub args: Vec<std::ffi::OsString>,
    /// The directory the first master started in; the new master starts there.
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

/// Why the master could not start or a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bind address that does not parse.
    #[error("invalid bind address {addr:?}: {reason}")]
    BadBindAddr {
        /// The address as configured.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Binding or listening on an address failed (in use, permission denied).
    #[error("can't connect to {addr}: {source}")]
    Bind {
        /// The address as configured.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The pid file names a live process: another master runs.
    #[error("already running on PID {pid} (or pid file '{}' is stale)", path.display())]
    AlreadyRunning {
        /// The pid found in the file.
        pid: i32,
        /// The pid file.
        path: PathBuf,
    },
    /// The pid file could not be read, written or removed.
    #[error("pid file '{}': {source}", path.display())]
    Pidfile {
        /// The pid file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A log file could not be opened (or reopened on USR1).
    #[error("log file '{}': {source}", path.display())]
    LogFile {
        /// The log file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A worker's heartbeat file could not be created.
    #[error("heartbeat file in '{}': {source}", dir.display())]
    Heartbeat {
        /// The heartbeat directory.
        dir: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Installing the signal handlers or the self-pipe failed.
    #[error("signal setup: {0}")]
    Signals(#[source] nix::Error),
    /// `fork(2)` failed (out of processes or memory).
    #[error("fork: {0}")]
    Fork(#[source] nix::Error),
    /// A `forwarded_allow_ips` entry that is neither `*`, an IP address nor a CIDR network.
    #[error("invalid forwarded-allow-ips entry {entry:?}")]
    BadTrustedProxy {
        /// The entry as configured.
        entry: String,
    },
    /// The body stalled longer than `body_timeout` or came slower than `body_min_rate` (answered 408).
    #[error("the request body was not received in time ({received} bytes in {seconds} s)")]
    BodyTimeout {
        /// Body bytes received before the deadline.
        received: u64,
        /// Seconds the request had for its body.
        seconds: u64,
    },
    /// The connection failed while the body was read (client reset, malformed chunking).
    #[error("reading the request body: {0}")]
    Body(#[source] hyper::Error),
    /// The metrics directory could not be created or its worker files written.
    #[error("metrics directory '{}': {source}", dir.display())]
    MetricsDir {
        /// The metrics directory.
        dir: PathBuf,
        /// The operating system's error.
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
