//! The error log and the access log, written with one `write` per line on an `O_APPEND`
//! descriptor so lines from the master and every worker never interleave. No thread, no buffer:
//! the master forks, and a forked child must not inherit a half-written buffer or a held lock.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use prefork_utc::UtcDateTime;

use crate::Error;

/// Severity of an error-log line; a configured level writes that level and above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for debugging: signals handled, children reaped, sd_notify failures.
    Debug,
    /// Lifecycle: listening, booting and exiting workers (the default).
    Info,
    /// Something recovered from: a connection evicted at the cap, a USR2 ignored.
    Warning,
    /// A failure the server survives: a bind retry, a pid file not written, a worker that crashed.
    Error,
    /// A failure that stops the server or a worker (timeouts, boot failures).
    Critical,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warning" | "warn" => Ok(Level::Warning),
            "error" => Ok(Level::Error),
            "critical" => Ok(Level::Critical),
            _ => Err(format!(
                "unknown log level {s:?} (expected debug, info, warning, error or critical)"
            )),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label().to_ascii_lowercase())
    }
}

/// Where a log goes. In the configuration "-" means stdout for the access log and stderr for the
/// error log, as in gunicorn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// The process's standard output (`-` for the access log).
    Stdout,
    /// The process's standard error (`-` for the error log).
    Stderr,
    /// A file opened for append, reopened on USR1 (log rotation).
    File(PathBuf),
}

impl LogTarget {
    fn open(&self) -> Result<File, Error> {
        let dup = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map(File::from)
                .map_err(|source| Error::LogFile {
                    path: PathBuf::from("-"),
                    source,
                })
        };
        use std::os::fd::AsFd;
        match self {
            LogTarget::Stdout => dup(std::io::stdout().as_fd()),
            LogTarget::Stderr => dup(std::io::stderr().as_fd()),
            LogTarget::File(path) => OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| Error::LogFile {
                    path: path.clone(),
                    source,
                }),
        }
    }
}

struct Sinks {
    error_target: LogTarget,
    error: File,
    access_target: Option<LogTarget>,
    access: Option<File>,
    level: Level,
}

/// Shared by the master and (after fork, as a copy) by each worker.
#[derive(Clone)]
pub(crate) struct Logger {
    sinks: Arc<Mutex<Sinks>>,
}

impl Logger {
    pub(crate) fn open(
        error_target: &LogTarget,
        access_target: Option<&LogTarget>,
        level: Level,
    ) -> Result<Logger, Error> {
        let error = error_target.open()?;
        let access = access_target.map(LogTarget::open).transpose()?;
        Ok(Logger {
            sinks: Arc::new(Mutex::new(Sinks {
                error_target: error_target.clone(),
                error,
                access_target: access_target.cloned(),
                access,
                level,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sinks> {
        // A panic while holding the lock leaves nothing half-updated worth refusing to log over.
        self.sinks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the new targets first so a bad path keeps the current ones.
    pub(crate) fn reconfigure(
        &self,
        error_target: &LogTarget,
        access_target: Option<&LogTarget>,
        level: Level,
    ) -> Result<(), Error> {
        let error = error_target.open()?;
        let access = access_target.map(LogTarget::open).transpose()?;
        let mut sinks = self.lock();
        sinks.error_target = error_target.clone();
        sinks.error = error;
        sinks.access_target = access_target.cloned();
        sinks.access = access;
        sinks.level = level;
        Ok(())
    }

    /// USR1: reopen by path so a rotated file is left behind.
    pub(crate) fn reopen(&self) -> Result<(), Error> {
        let (error_target, access_target, level) = {
            let sinks = self.lock();
            (
                sinks.error_target.clone(),
                sinks.access_target.clone(),
                sinks.level,
            )
        };
        self.reconfigure(&error_target, access_target.as_ref(), level)
    }

    pub(crate) fn log(&self, level: Level, message: impl fmt::Display) {
        let mut sinks = self.lock();
        if level < sinks.level {
            return;
        }
        let line = format!(
            "[{}] [{}] [{}] {}\n",
            format_time(SystemTime::now(), TimeStyle::ErrorLog),
            std::process::id(),
            level.label(),
            message
        );
        // Nowhere left to report a failing error log.
        let _ = sinks.error.write_all(line.as_bytes());
    }

    pub(crate) fn debug(&self, message: impl fmt::Display) {
        self.log(Level::Debug, message);
    }
    pub(crate) fn info(&self, message: impl fmt::Display) {
        self.log(Level::Info, message);
    }
    pub(crate) fn warning(&self, message: impl fmt::Display) {
        self.log(Level::Warning, message);
    }
    pub(crate) fn error(&self, message: impl fmt::Display) {
        self.log(Level::Error, message);
    }
    pub(crate) fn critical(&self, message: impl fmt::Display) {
        self.log(Level::Critical, message);
    }

    pub(crate) fn access_enabled(&self) -> bool {
        self.lock().access.is_some()
    }

    pub(crate) fn access(&self, record: &AccessRecord<'_>) {
        let mut sinks = self.lock();
        if let Some(file) = sinks.access.as_mut() {
            let line = record.combined();
            if let Err(e) = file.write_all(line.as_bytes()) {
                drop(sinks);
                self.error(format!("access log write failed: {e}"));
            }
        }
    }
}

/// One request, in gunicorn's default access format (Apache combined):
/// `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`.
pub(crate) struct AccessRecord<'a> {
    pub remote: Option<std::net::IpAddr>,
    pub method: &'a str,
    pub target: &'a str,
    pub version: http::Version,
    pub status: u16,
    pub bytes: Option<u64>,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl AccessRecord<'_> {
    fn combined(&self) -> String {
        let version = match self.version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2",
            _ => "HTTP/1.1",
        };
        format!(
            "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\"\n",
            self.remote
                .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
            format_time(SystemTime::now(), TimeStyle::AccessLog),
            escape(self.method),
            escape(self.target),
            version,
            self.status,
            self.bytes.map_or_else(|| "-".to_owned(), |b| b.to_string()),
            escape(self.referer.unwrap_or("-")),
            escape(self.user_agent.unwrap_or("-")),
        )
    }
}

/// Quotes and control bytes would let a client forge log fields.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[derive(Clone, Copy)]
enum TimeStyle {
    /// `2026-11-29 05:39:23 +0000`
    ErrorLog,
    /// `29/Nov/2026:05:39:25 +0000`
    AccessLog,
}

/// Always UTC (see prefork-utc).
fn format_time(t: SystemTime, style: TimeStyle) -> String {
    let utc = UtcDateTime::from_system_time(t);
    let UtcDateTime {
        year,
        month,
        day,
        hour: h,
        minute: m,
        second: s,
    } = utc;
    match style {
        TimeStyle::ErrorLog => {
            format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} +0000")
        }
        TimeStyle::AccessLog => {
            let name = utc.month_abbrev();
            format!("{day:02}/{name}/{year:04}:{h:02}:{m:02}:{s:02} +0000")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_both_time_styles() {
        // 2026-11-29 05:39:23 UTC
        let t = UNIX_EPOCH + Duration::from_secs(1_795_930_763);
        assert_eq!(
            format_time(t, TimeStyle::ErrorLog),
            "2026-11-29 05:39:23 +0000"
        );
        assert_eq!(
            format_time(t, TimeStyle::AccessLog),
            "29/Nov/2026:05:39:23 +0000"
        );
    }

    #[test]
    fn access_line_is_combined_format_with_escaped_quotes() {
        let rec = AccessRecord {
            remote: Some("127.0.0.1".parse().unwrap()),
            method: "GET",
            target: "/x?y=1",
            version: http::Version::HTTP_11,
            status: 200,
            bytes: Some(22),
            referer: None,
            user_agent: Some("ua \"q\""),
        };
        let line = rec.combined();
        assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
        assert!(
            line.ends_with("] \"GET /x?y=1 HTTP/1.1\" 200 22 \"-\" \"ua \\\"q\\\"\"\n"),
            "{line}"
        );
    }

    #[test]
    fn level_parses_and_filters() {
        assert_eq!("WARNING".parse::<Level>(), Ok(Level::Warning));
        assert!("loud".parse::<Level>().is_err());
        assert!(Level::Error > Level::Info);
    }

    #[test]
    fn reopen_follows_the_path_after_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("error.log");
        let logger = Logger::open(&LogTarget::File(path.clone()), None, Level::Info).unwrap();
        logger.info("first");
        std::fs::rename(&path, dir.path().join("error.log.1")).unwrap();
        logger.reopen().unwrap();
        logger.info("second");
        logger.debug("filtered out");
        let new = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(dir.path().join("error.log.1")).unwrap();
        assert!(old.contains("[INFO] first") && !old.contains("second"));
        assert!(new.contains("[INFO] second") && !new.contains("filtered"));
    }
}
