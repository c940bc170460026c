//! The configuration: one serde tree with defaults, `validate()` and unknown keys refused.
//! Precedence, highest first: command line, `PREFORK_*` environment (both via clap), the config
//! file (`-c`, else `config/default.toml` when present), built-in defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::args::ServeArgs;

/// The object store's settings from the environment: every `AWS_*` variable (endpoint, region,
/// credentials, `AWS_ALLOW_HTTP`); they never go in the configuration file.
pub fn aws_vars() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect()
}

/// The file used when no `-c` is given, relative to the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "config/default.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub workers: usize,
    pub bind: Vec<String>,
    pub timeout: u64,
    pub boot_timeout: u64,
    pub graceful_timeout: u64,
    pub keep_alive: u64,
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    pub backlog: u32,
    pub pidfile: Option<PathBuf>,
    pub access_logfile: Option<String>,
    pub error_logfile: String,
    pub log_level: String,
    pub worker_tmp_dir: Option<PathBuf>,
    pub instance_dir: PathBuf,
    /// The session store shared by every host: `s3://BUCKET/PREFIX`; `None` = local disk under
    /// `instance_dir` (which then holds only this host's state).
    pub store: Option<String>,
    /// This instance's runtime state (metrics files): never shared with another instance.
    /// Default: `<instance_dir>/run/<hostname>-<port of the first bind>` (see [`Config::runtime_dir`]).
    pub runtime_dir: Option<PathBuf>,
    pub header_timeout: u64,
    /// Seconds; 0 = no request-body deadline.
    pub body_timeout: u64,
    /// Bytes per second; 0 = no minimum rate.
    pub body_min_rate: u64,
    pub worker_connections: usize,
    pub limit_request_line: usize,
    pub limit_request_fields: usize,
    pub limit_request_field_size: usize,
    pub forwarded_allow_ips: String,
    /// MiB; 0 = no limit.
    pub max_worker_memory: u64,
    pub metrics: bool,
    pub app: AppSettings,
    pub sessions: SessionSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 6,
            bind: vec!["127.0.0.1:8000".to_owned()],
            timeout: 30,
            boot_timeout: 120,
            graceful_timeout: 30,
            keep_alive: 5,
            max_requests: 0,
            max_requests_jitter: 0,
            backlog: 2048,
            pidfile: None,
            access_logfile: None,
            error_logfile: "-".to_owned(),
            log_level: "info".to_owned(),
            worker_tmp_dir: None,
            instance_dir: PathBuf::from("instance"),
            store: None,
            runtime_dir: None,
            header_timeout: 10,
            body_timeout: 30,
            body_min_rate: 4096,
            worker_connections: 1000,
            limit_request_line: 4094,
            limit_request_fields: 100,
            limit_request_field_size: 8190,
            forwarded_allow_ips: "127.0.0.1,::1".to_owned(),
            max_worker_memory: 0,
            metrics: true,
            app: AppSettings::default(),
            sessions: SessionSettings::default(),
        }
    }
}

/// The `[sessions]` table: how long session folders live (`prefork sessions gc` and the
/// workers' automatic sweep).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Days without a write after which a session with data is removed; 0 = never.
    pub ttl_days: u64,
    /// Hours without a write after which a session that holds nothing (never used, or cleared)
    /// is removed; 0 = never.
    pub empty_ttl_hours: u64,
    /// Minutes between automatic sweeps (one worker at a time; the master never); 0 = none
    /// (then run `prefork sessions gc` from cron).
    pub sweep_interval_minutes: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            ttl_days: 30,
            empty_ttl_hours: 24,
            sweep_interval_minutes: 60,
        }
    }
}

impl SessionSettings {
    fn validate(&self) -> anyhow::Result<()> {
        if self.ttl_days > 36_500 {
            bail!(
                "sessions.ttl_days must be at most 36500 (0 = never), not {}",
                self.ttl_days
            );
        }
        if self.empty_ttl_hours > 876_000 {
            bail!(
                "sessions.empty_ttl_hours must be at most 876000 (0 = never), not {}",
                self.empty_ttl_hours
            );
        }
        if self.sweep_interval_minutes > 10_080 {
            bail!(
                "sessions.sweep_interval_minutes must be at most 10080 (a week; 0 = no automatic sweep), not {}",
                self.sweep_interval_minutes
            );
        }
        Ok(())
    }

    /// What the app's workers use.
    pub fn limits(&self) -> mrpt_app::SessionLimits {
        let positive = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        mrpt_app::SessionLimits {
            idle_ttl: positive(self.ttl_days * 24 * 3600),
            empty_ttl: positive(self.empty_ttl_hours * 3600),
            sweep_every: positive(self.sweep_interval_minutes * 60),
        }
    }
}

/// The `[app]` table: settings the application reads (the server ignores them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSettings {
    /// Largest accepted upload body, in bytes.
    pub max_upload_bytes: u64,
    /// Milliseconds between `: keepalive` comments on a chat stream while a tool runs.
    pub chat_keepalive_ms: u64,
    /// Largest JSON request body (analysis, ITN, chat), in bytes.
    pub max_json_bytes: u64,
    /// Bytes of one request body held in memory; the rest is spooled to disk.
    pub body_memory_bytes: u64,
    /// Bytes of unfinished request bodies one worker holds in memory, all requests together.
    pub max_body_memory: u64,
    /// Most columns of an uploaded table (at most the default, 1000).
    pub max_table_columns: usize,
    /// Most cells (rows x columns) of an uploaded table (at most the default).
    pub max_table_cells: usize,
    /// Most bytes inflated from one uploaded zip (at most the default, 512 MiB).
    pub max_inflated_bytes: u64,
    /// Most entries in an uploaded zip (at most the default, 1000).
    pub max_zip_entries: usize,
    /// Longest variable name a request may send, in bytes.
    pub max_variable_name_bytes: usize,
    /// Largest chunk of a resumable upload (`/upload/chunk`), in bytes; a whole upload is still
    /// capped by `max_upload_bytes`.
    pub max_chunk_bytes: u64,
    /// A built single-page app (`index.html`, `assets/`) served at `/` instead of the built-in
    /// page, e.g. ChatMRPT's React client (`--ui-dir`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui_dir: Option<PathBuf>,
    pub llm: LlmSettings,
}

impl Default for AppSettings {
    fn default() -> Self {
        let app = mrpt_app::AppConfig::default();
        AppSettings {
            max_upload_bytes: app.max_upload_bytes,
            chat_keepalive_ms: 5000,
            max_json_bytes: app.max_json_bytes,
            body_memory_bytes: app.body_memory_bytes,
            max_body_memory: app.max_body_memory,
            max_table_columns: app.limits.max_columns,
            max_table_cells: app.limits.max_cells,
            max_inflated_bytes: app.limits.max_inflated_bytes,
            max_zip_entries: app.limits.max_zip_entries,
            max_variable_name_bytes: app.max_variable_name_bytes,
            max_chunk_bytes: app.max_chunk_bytes,
            ui_dir: None,
            llm: LlmSettings::default(),
        }
    }
}

impl AppSettings {
    /// The caps on reading uploads, for the app.
    pub fn limits(&self) -> mrpt_formats::Limits {
        mrpt_formats::Limits {
            max_columns: self.max_table_columns,
            max_cells: self.max_table_cells,
            max_inflated_bytes: self.max_inflated_bytes,
            max_zip_entries: self.max_zip_entries,
            ..mrpt_formats::Limits::default()
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.max_upload_bytes == 0 {
            bail!("app.max_upload_bytes must be at least 1");
        }
        if self.max_json_bytes == 0 {
            bail!("app.max_json_bytes must be at least 1");
        }
        if !(4096..=self.max_body_memory).contains(&self.body_memory_bytes) {
            bail!(
                "app.body_memory_bytes must be between 4096 and app.max_body_memory ({}), not {}",
                self.max_body_memory,
                self.body_memory_bytes
            );
        }
        // Stored uploads are read back with the defaults, so a cap may be lowered but never
        // raised above its default: what an upload passed, every later read accepts.
        let ceiling = mrpt_formats::Limits::default();
        let caps: [(&str, u64, u64, u64); 4] = [
            (
                "max_table_columns",
                self.max_table_columns as u64,
                2,
                ceiling.max_columns as u64,
            ),
            (
                "max_table_cells",
                self.max_table_cells as u64,
                4,
                ceiling.max_cells as u64,
            ),
            (
                "max_inflated_bytes",
                self.max_inflated_bytes,
                1 << 20,
                ceiling.max_inflated_bytes,
            ),
            (
                "max_zip_entries",
                self.max_zip_entries as u64,
                3,
                ceiling.max_zip_entries as u64,
            ),
        ];
        for (key, value, low, high) in caps {
            if !(low..=high).contains(&value) {
                bail!("app.{key} must be between {low} and {high} (the default), not {value}");
            }
        }
        if !(16..=65_536).contains(&self.max_variable_name_bytes) {
            bail!(
                "app.max_variable_name_bytes must be between 16 and 65536, not {}",
                self.max_variable_name_bytes
            );
        }
        if !(1..=15_000).contains(&self.chat_keepalive_ms) {
            bail!("app.chat_keepalive_ms must be between 1 and 15000");
        }
        if self.max_chunk_bytes < 4096 {
            bail!(
                "app.max_chunk_bytes must be at least 4096, not {}",
                self.max_chunk_bytes
            );
        }
        if let Some(dir) = &self.ui_dir {
            if dir.as_os_str().is_empty() {
                bail!("app.ui_dir must not be empty (leave it out for the built-in page)");
            }
            if !dir.join("index.html").is_file() {
                bail!(
                    "app.ui_dir {}: no index.html there (give the folder of a built single-page app, e.g. the client's dist/)",
                    dir.display()
                );
            }
        }
        self.llm.validate()
    }
}

/// The `[app.llm]` table: which interpreter answers chat messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// "none" (rule-based, no network) or "openai" (any OpenAI-compatible server).
    pub backend: String,
    pub base_url: String,
    pub model: String,
    /// Name of the environment variable holding the API key; empty = no key.
    pub api_key_env: String,
    pub timeout_ms: u64,
}

impl Default for LlmSettings {
    fn default() -> Self {
        let d = mrpt_app::OpenAiConfig::default();
        LlmSettings {
            backend: "none".to_owned(),
            base_url: d.base_url,
            model: d.model,
            api_key_env: d.api_key_env,
            timeout_ms: d.timeout_ms,
        }
    }
}

impl LlmSettings {
    fn validate(&self) -> anyhow::Result<()> {
        match self.backend.as_str() {
            "none" => Ok(()),
            "openai" => self
                .config_with_key(None)
                .validate()
                .map_err(|e| anyhow::anyhow!("app.llm: {e}")),
            other => bail!("app.llm.backend must be \"none\" or \"openai\", not {other:?}"),
        }
    }

    fn config_with_key(&self, api_key: Option<String>) -> mrpt_app::OpenAiConfig {
        mrpt_app::OpenAiConfig {
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            api_key_env: self.api_key_env.clone(),
            api_key,
            timeout_ms: self.timeout_ms,
            ..mrpt_app::OpenAiConfig::default()
        }
    }

    /// The model config for the app, with the key read from the variable `api_key_env` names
    /// (only the cli reads the environment); `None` for the rule-based interpreter.
    pub fn openai_config(&self) -> Option<mrpt_app::OpenAiConfig> {
        if self.backend != "openai" {
            return None;
        }
        let key = (!self.api_key_env.is_empty())
            .then(|| std::env::var(&self.api_key_env).ok())
            .flatten()
            .filter(|k| !k.is_empty());
        Some(self.config_with_key(key))
    }
}

impl Config {
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("config file {}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            // toml's message spans several lines (a source excerpt); keep it to one.
            let msg = e.message().to_owned();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].lines().count().max(1);
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            anyhow::anyhow!("config file {}{at}: {msg}", path.display())
        })
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.workers == 0 {
            bail!("workers must be at least 1");
        }
        if self.bind.is_empty() {
            bail!("bind needs at least one address");
        }
        for b in &self.bind {
            b.parse::<prefork_server::BindAddr>()?;
        }
        if self.backlog == 0 || self.backlog > i32::MAX as u32 {
            bail!("backlog must be between 1 and {}", i32::MAX);
        }
        self.log_level
            .parse::<prefork_server::Level>()
            .map_err(anyhow::Error::msg)?;
        if self.error_logfile.is_empty() {
            bail!("error_logfile must be \"-\" or a path");
        }
        if self.access_logfile.as_deref() == Some("") {
            bail!("access_logfile must be \"-\" or a path");
        }
        if self.instance_dir.as_os_str().is_empty() {
            bail!("instance_dir must not be empty");
        }
        if let Some(url) = &self.store
            && let Err(e) = mrpt_session::object::parse_s3_url(url)
        {
            bail!(
                "store = {url:?}: {e} (expected s3://BUCKET/PREFIX, or leave store unset for local disk)"
            );
        }
        if self.header_timeout == 0 {
            bail!("header_timeout must be at least 1");
        }
        if self.worker_connections == 0 {
            bail!("worker_connections must be at least 1");
        }
        if self.body_min_rate > 0 && self.body_timeout == 0 {
            bail!(
                "body_min_rate = {} needs a body_timeout (the grace before the rate applies); \
                 set body_timeout to at least 1 or body_min_rate to 0",
                self.body_min_rate
            );
        }
        self.forwarded_allow_ips
            .parse::<prefork_server::TrustedProxies>()?;
        self.sessions.validate()?;
        self.app.validate()
    }

    /// Overlays what the command line (or the environment, through clap) set.
    fn apply(&mut self, args: &ServeArgs) {
        fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *slot = v.clone();
            }
        }
        set(&mut self.workers, &args.workers);
        if !args.bind.is_empty() {
            self.bind = args.bind.clone();
        }
        set(&mut self.timeout, &args.timeout);
        set(&mut self.boot_timeout, &args.boot_timeout);
        set(&mut self.graceful_timeout, &args.graceful_timeout);
        set(&mut self.keep_alive, &args.keep_alive);
        set(&mut self.max_requests, &args.max_requests);
        set(&mut self.max_requests_jitter, &args.max_requests_jitter);
        set(&mut self.backlog, &args.backlog);
        if args.pid.is_some() {
            self.pidfile = args.pid.clone();
        }
        if args.access_logfile.is_some() {
            self.access_logfile = args.access_logfile.clone();
        }
        set(&mut self.error_logfile, &args.error_logfile);
        set(&mut self.log_level, &args.log_level);
        if args.worker_tmp_dir.is_some() {
            self.worker_tmp_dir = args.worker_tmp_dir.clone();
        }
        set(&mut self.instance_dir, &args.instance_dir);
        if args.store.is_some() {
            self.store = args.store.clone();
        }
        if args.runtime_dir.is_some() {
            self.runtime_dir = args.runtime_dir.clone();
        }
        set(&mut self.header_timeout, &args.header_timeout);
        set(&mut self.body_timeout, &args.body_timeout);
        set(&mut self.body_min_rate, &args.body_min_rate);
        set(&mut self.worker_connections, &args.worker_connections);
        set(&mut self.limit_request_line, &args.limit_request_line);
        set(&mut self.limit_request_fields, &args.limit_request_fields);
        set(
            &mut self.limit_request_field_size,
            &args.limit_request_field_size,
        );
        set(&mut self.forwarded_allow_ips, &args.forwarded_allow_ips);
        set(&mut self.max_worker_memory, &args.max_worker_memory);
        set(&mut self.metrics, &args.metrics);
        if args.ui_dir.is_some() {
            self.app.ui_dir = args.ui_dir.clone();
        }
    }

    /// The session store this configuration names, opened (for S3, in the calling process:
    /// build it after a fork, never before). Contacts nothing.
    pub fn open_store(&self) -> anyhow::Result<mrpt_session::Store> {
        match &self.store {
            None => mrpt_session::Store::open(&self.instance_dir)
                .with_context(|| format!("session store in {}", self.instance_dir.display())),
            Some(url) => mrpt_session::Store::open_s3(url, aws_vars(), &self.instance_dir)
                .with_context(|| format!("store = {url:?}")),
        }
    }

    /// What the master needs; call after `validate()`.
    pub fn server_settings(&self) -> anyhow::Result<prefork_server::Settings> {
        use prefork_server::LogTarget;
        let target = |s: &str, dash: LogTarget| {
            if s == "-" {
                dash
            } else {
                LogTarget::File(PathBuf::from(s))
            }
        };
        Ok(prefork_server::Settings {
            workers: self.workers,
            binds: self
                .bind
                .iter()
                .map(|b| b.parse())
                .collect::<Result<_, _>>()?,
            timeout: Duration::from_secs(self.timeout),
            boot_timeout: Duration::from_secs(self.boot_timeout),
            graceful_timeout: Duration::from_secs(self.graceful_timeout),
            keep_alive: Duration::from_secs(self.keep_alive),
            max_requests: self.max_requests,
            max_requests_jitter: self.max_requests_jitter,
            backlog: i32::try_from(self.backlog).context("backlog")?,
            pidfile: self.pidfile.clone(),
            access_log: self
                .access_logfile
                .as_deref()
                .map(|s| target(s, LogTarget::Stdout)),
            error_log: target(&self.error_logfile, LogTarget::Stderr),
            log_level: self.log_level.parse().map_err(anyhow::Error::msg)?,
            heartbeat_dir: self.worker_tmp_dir.clone(),
            header_timeout: Duration::from_secs(self.header_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
            body_min_rate: self.body_min_rate,
            worker_connections: self.worker_connections,
            limit_request_line: self.limit_request_line,
            limit_request_fields: self.limit_request_fields,
            limit_request_field_size: self.limit_request_field_size,
            forwarded_allow_ips: self.forwarded_allow_ips.parse()?,
            max_worker_memory: (self.max_worker_memory > 0)
                .then(|| self.max_worker_memory.saturating_mul(1 << 20)),
            // `serve` creates it (`create_runtime_dir`).
            metrics_dir: self.metrics.then(|| self.runtime_dir().join("metrics")),
            ..prefork_server::Settings::default()
        })
    }
}

impl Config {
    /// This instance's runtime directory: `runtime_dir`, or a folder under
    /// `<instance_dir>/run/` named after this host and the port (or socket) of the first bind,
    /// so that two instances sharing one instance directory (two hosts on NFS, or two instances
    /// on one host) never share metrics files.
    pub fn runtime_dir(&self) -> PathBuf {
        match &self.runtime_dir {
            Some(dir) => dir.clone(),
            None => mrpt_session::runtime_dir(&self.instance_dir, &self.instance_name()),
        }
    }

    /// `<hostname>-<first bind's port or socket name>` (`pid<N>` for port 0), reduced to
    /// `[A-Za-z0-9_-]`.
    pub fn instance_name(&self) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".to_owned());
        let bind = self.bind.first().map(String::as_str).unwrap_or("");
        let tail = bind.rsplit([':', '/']).next().unwrap_or(bind);
        // Port 0 (any free port) says nothing about the instance: use this process instead.
        let pid;
        let tail = if tail == "0" {
            pid = format!("pid{}", std::process::id());
            pid.as_str()
        } else {
            tail
        };
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("{}-{}", clean(&host), clean(tail))
    }
}

/// File (or defaults), then command line and environment on top, then validation.
pub fn load(args: &ServeArgs) -> anyhow::Result<Config> {
    let file = match &args.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
    };
    let mut config = match &file {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply(args);
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn manifest_path(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    #[test]
    fn example_and_default_files_load_and_validate() {
        let example = Config::from_file(&manifest_path("config/example.toml")).unwrap();
        example.validate().unwrap();
        let default = Config::from_file(&manifest_path("config/default.toml")).unwrap();
        default.validate().unwrap();
        assert_eq!(
            default,
            Config::default(),
            "default.toml must say what the defaults are"
        );
    }

    #[test]
    fn environment_files_load_and_validate() {
        for name in ["staging", "production"] {
            let c = Config::from_file(&manifest_path(&format!("config/{name}.toml"))).unwrap();
            c.validate().unwrap();
            let s = c.server_settings().unwrap();
            assert!(
                s.metrics_dir.is_some() && s.max_worker_memory.is_some(),
                "{name}"
            );
            assert!(
                s.forwarded_allow_ips.trusts("10.1.2.3".parse().unwrap()),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_limits_and_proxies_are_rejected() {
        let c = Config {
            forwarded_allow_ips: "10.0.0.0/40".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            header_timeout: 0,
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            worker_connections: 0,
            ..Config::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("worker_connections")
        );
        let c = Config {
            body_timeout: 0,
            ..Config::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("body_min_rate")
        );
        let c = Config {
            body_timeout: 0,
            body_min_rate: 0,
            ..Config::default()
        };
        assert_eq!(c.server_settings().unwrap().body_timeout, Duration::ZERO);
        let c = Config {
            max_worker_memory: 512,
            ..Config::default()
        };
        assert_eq!(
            c.server_settings().unwrap().max_worker_memory,
            Some(512 << 20)
        );
    }

    #[test]
    fn upload_caps_may_be_lowered_not_raised_and_errors_name_the_key() {
        let with = |app: AppSettings| Config {
            app,
            ..Config::default()
        };
        let lowered = with(AppSettings {
            max_table_columns: 200,
            max_table_cells: 100_000,
            ..AppSettings::default()
        });
        lowered.validate().unwrap();
        assert_eq!(lowered.app.limits().max_columns, 200);
        for (app, key) in [
            (
                AppSettings {
                    max_table_columns: 1001,
                    ..AppSettings::default()
                },
                "app.max_table_columns must be between 2 and 1000 (the default), not 1001",
            ),
            (
                AppSettings {
                    max_zip_entries: 0,
                    ..AppSettings::default()
                },
                "app.max_zip_entries",
            ),
            (
                AppSettings {
                    max_json_bytes: 0,
                    ..AppSettings::default()
                },
                "app.max_json_bytes",
            ),
            (
                AppSettings {
                    body_memory_bytes: 128 << 20,
                    ..AppSettings::default()
                },
                "app.body_memory_bytes",
            ),
            (
                AppSettings {
                    max_variable_name_bytes: 1,
                    ..AppSettings::default()
                },
                "app.max_variable_name_bytes",
            ),
        ] {
            let err = with(app).validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn example_lists_every_key() {
        let text = std::fs::read_to_string(manifest_path("config/example.toml")).unwrap();
        let full = Config {
            pidfile: Some("x".into()),
            access_logfile: Some("-".into()),
            worker_tmp_dir: Some("/dev/shm".into()),
            ..Config::default()
        };
        let value = toml::Value::try_from(&full).unwrap();
        let table = value.as_table().unwrap();
        for (key, v) in table {
            if let Some(sub) = v.as_table() {
                assert!(
                    text.contains(&format!("[{key}]")),
                    "example.toml lacks [{key}]"
                );
                for (subkey, sv) in sub {
                    let present = match sv.as_table() {
                        Some(inner) => {
                            text.contains(&format!("[{key}.{subkey}]"))
                                && inner.keys().all(|k| text.contains(&format!("{k} =")))
                        }
                        None => text.contains(&format!("{subkey} =")),
                    };
                    assert!(present, "example.toml lacks {key}.{subkey}");
                }
            } else {
                assert!(
                    text.contains(&format!("{key} =")),
                    "example.toml lacks {key}"
                );
            }
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "workers = 2\nwrokers = 3\n").unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("wrokers") && !e.contains('\n'), "{e}");
        std::fs::write(&p, "[app]\nmax_upload_bytes = \"big\"\n").unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && !e.contains('\n'), "{e}");

        let bad = [
            Config {
                bind: vec!["unix:".into()],
                ..Config::default()
            },
            Config {
                log_level: "loud".into(),
                ..Config::default()
            },
            Config {
                workers: 0,
                ..Config::default()
            },
            Config {
                app: AppSettings {
                    max_upload_bytes: 0,
                    ..AppSettings::default()
                },
                ..Config::default()
            },
            Config {
                sessions: SessionSettings {
                    sweep_interval_minutes: 20_000,
                    ..SessionSettings::default()
                },
                ..Config::default()
            },
            Config {
                sessions: SessionSettings {
                    ttl_days: 100_000,
                    ..SessionSettings::default()
                },
                ..Config::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn session_limits_follow_the_settings() {
        let limits = SessionSettings::default().limits();
        assert_eq!(limits.idle_ttl, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(limits.empty_ttl, Some(Duration::from_secs(86_400)));
        assert_eq!(limits.sweep_every, Some(Duration::from_secs(3600)));
        assert_eq!(limits, mrpt_app::SessionLimits::default());
        let off = SessionSettings {
            ttl_days: 0,
            empty_ttl_hours: 0,
            sweep_interval_minutes: 0,
        }
        .limits();
        assert_eq!(
            (off.idle_ttl, off.empty_ttl, off.sweep_every),
            (None, None, None)
        );
        let c = Config {
            sessions: SessionSettings {
                ttl_days: 100_000,
                ..SessionSettings::default()
            },
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("sessions.ttl_days") && e.contains("100000"),
            "{e}"
        );
    }

    #[test]
    fn command_line_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "workers = 2\ntimeout = 7\n").unwrap();
        let args = ServeArgs {
            config: Some(p),
            workers: Some(4),
            ..ServeArgs::default()
        };
        let c = load(&args).unwrap();
        assert_eq!((c.workers, c.timeout), (4, 7));
        let s = c.server_settings().unwrap();
        assert_eq!(s.workers, 4);
        assert_eq!(s.timeout, Duration::from_secs(7));
        assert_eq!(s.error_log, prefork_server::LogTarget::Stderr);
    }
}
