//! The server's command-line flags (gunicorn's names where gunicorn has the option). Each flag may
//! also come from a `PREFORK_*` environment variable; the command line wins.

use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Number of worker processes [config: workers, default 6]
    #[arg(short = 'w', long, env = "PREFORK_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
    /// Address to listen on: HOST:PORT, unix:PATH or fd://N; repeatable [config: bind]
    #[arg(
        short = 'b',
        long = "bind",
        env = "PREFORK_BIND",
        value_name = "ADDRESS",
        value_delimiter = ','
    )]
    pub bind: Vec<String>,
    /// Seconds without a heartbeat before a worker is killed; 0 disables [config: timeout, 30]
    #[arg(short = 't', long, env = "PREFORK_TIMEOUT", value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Seconds a worker may take to boot; 0 disables [config: boot_timeout, 120]
    #[arg(long, env = "PREFORK_BOOT_TIMEOUT", value_name = "SECONDS")]
    pub boot_timeout: Option<u64>,
    /// Seconds in-flight requests get after TERM [config: graceful_timeout, 30]
    #[arg(long, env = "PREFORK_GRACEFUL_TIMEOUT", value_name = "SECONDS")]
    pub graceful_timeout: Option<u64>,
    /// Seconds an idle keep-alive connection is kept; 0 disables keep-alive [config: keep_alive, 5]
    #[arg(long, env = "PREFORK_KEEP_ALIVE", value_name = "SECONDS")]
    pub keep_alive: Option<u64>,
    /// Requests after which a worker is recycled; 0 = never [config: max_requests, 0]
    #[arg(long, env = "PREFORK_MAX_REQUESTS", value_name = "N")]
    pub max_requests: Option<u64>,
    /// Random extra requests (0..=N) added per worker to max-requests [config: max_requests_jitter]
    #[arg(long, env = "PREFORK_MAX_REQUESTS_JITTER", value_name = "N")]
    pub max_requests_jitter: Option<u64>,
    /// Listen queue size [config: backlog, 2048]
    #[arg(long, env = "PREFORK_BACKLOG", value_name = "N")]
    pub backlog: Option<u32>,
    /// Pid file [config: pidfile]
    #[arg(short = 'p', long = "pid", env = "PREFORK_PID", value_name = "FILE")]
    pub pid: Option<PathBuf>,
    /// Access log file, "-" for stdout; off by default [config: access_logfile]
    #[arg(long, env = "PREFORK_ACCESS_LOGFILE", value_name = "FILE")]
    pub access_logfile: Option<String>,
    /// Error log file, "-" for stderr [config: error_logfile, "-"]
    #[arg(long, env = "PREFORK_ERROR_LOGFILE", value_name = "FILE")]
    pub error_logfile: Option<String>,
    /// debug, info, warning, error or critical [config: log_level, info]
    #[arg(long, env = "PREFORK_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Directory for the workers' heartbeat files [config: worker_tmp_dir, /dev/shm if present]
    #[arg(long, env = "PREFORK_WORKER_TMP_DIR", value_name = "DIR")]
    pub worker_tmp_dir: Option<PathBuf>,
    /// Runtime state directory (uploads, sessions) [config: instance_dir, "instance"]
    #[arg(long, env = "PREFORK_INSTANCE_DIR", value_name = "DIR")]
    pub instance_dir: Option<PathBuf>,
    /// Session store shared by every host: s3://BUCKET/PREFIX (endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; AWS_ALLOW_HTTP=true for a plain-HTTP endpoint); INSTANCE_DIR then holds only this host's state [config: store, local disk under INSTANCE_DIR]
    #[arg(long, env = "PREFORK_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// This host's runtime state (metrics files); keep it on local disk, never on a directory shared between hosts [config: runtime_dir, INSTANCE_DIR/run/<host>-<port>]
    #[arg(long, env = "PREFORK_RUNTIME_DIR", value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// Seconds a client gets to finish a request head once it has started it [config: header_timeout, 10]
    #[arg(long, env = "PREFORK_HEADER_TIMEOUT", value_name = "SECONDS")]
    pub header_timeout: Option<u64>,
    /// Seconds a request body may go silent (and the grace before --body-min-rate); 408 after; 0 = off [config: body_timeout, 30]
    #[arg(long, env = "PREFORK_BODY_TIMEOUT", value_name = "SECONDS")]
    pub body_timeout: Option<u64>,
    /// Slowest average request-body rate after --body-timeout, in bytes/s; 0 = off [config: body_min_rate, 4096]
    #[arg(long, env = "PREFORK_BODY_MIN_RATE", value_name = "BYTES")]
    pub body_min_rate: Option<u64>,
    /// Most connections per worker; at the cap idle keep-alive ones are closed [config: worker_connections, 1000]
    #[arg(long, env = "PREFORK_WORKER_CONNECTIONS", value_name = "N")]
    pub worker_connections: Option<usize>,
    /// Longest request line in bytes, else 400; 0 = no limit, above 8190 clamps [config: limit_request_line, 4094]
    #[arg(long, env = "PREFORK_LIMIT_REQUEST_LINE", value_name = "BYTES")]
    pub limit_request_line: Option<usize>,
    /// Most header fields per request, else 431 [config: limit_request_fields, 100]
    #[arg(long, env = "PREFORK_LIMIT_REQUEST_FIELDS", value_name = "N")]
    pub limit_request_fields: Option<usize>,
    /// Longest header line in bytes, else 431 [config: limit_request_field_size, 8190]
    #[arg(long, env = "PREFORK_LIMIT_REQUEST_FIELD_SIZE", value_name = "BYTES")]
    pub limit_request_field_size: Option<usize>,
    /// Proxies whose X-Forwarded-For/Proto are trusted: IPs, CIDRs, or "*" [config: forwarded_allow_ips, "127.0.0.1,::1"]
    #[arg(long, env = "PREFORK_FORWARDED_ALLOW_IPS", value_name = "LIST")]
    pub forwarded_allow_ips: Option<String>,
    /// Replace a worker whose resident memory exceeds this many MiB; 0 = never [config: max_worker_memory, 0]
    #[arg(long, env = "PREFORK_MAX_WORKER_MEMORY", value_name = "MIB")]
    pub max_worker_memory: Option<u64>,
    /// Serve this built single-page app (index.html at /, its assets/) instead of the built-in
    /// page, e.g. ChatMRPT's React client [config: app.ui_dir, none]
    #[arg(long, env = "PREFORK_UI_DIR", value_name = "DIR")]
    pub ui_dir: Option<PathBuf>,
    /// Serve GET /metrics (Prometheus text) for the whole server [config: metrics, true]
    #[arg(long, env = "PREFORK_METRICS", value_name = "BOOL")]
    pub metrics: Option<bool>,
    /// TOML config file (default: config/default.toml when present)
    #[arg(
        short = 'c',
        long = "config",
        env = "PREFORK_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Load and validate the configuration, then exit (0 = valid)
    #[arg(long)]
    pub check_config: bool,
    /// Print the effective configuration as TOML, then exit
    #[arg(long)]
    pub print_config: bool,
}

/// Usage errors (unknown flag, missing argument) exit 2 with clap's usage text, as argparse does
/// for gunicorn; a bad value is a one-line "Error: ..." and exit 1, like a bad config value.
pub fn parse_or_exit<T: clap::Parser>() -> T {
    use clap::error::ErrorKind;
    match T::try_parse() {
        Ok(v) => v,
        Err(e) => match e.kind() {
            ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::InvalidUtf8 => {
                let rendered = e.to_string();
                let first = rendered.lines().next().unwrap_or("invalid value");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                eprintln!("Error: {first}");
                std::process::exit(1);
            }
            _ => e.exit(),
        },
    }
}

/// For the subcommands: an error is printed on one line and exits 1.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
