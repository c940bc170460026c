//! The history: one JSON line per request attempt, with the session state the answer reported
//! and when. The checker reads nothing else, so a recorded run can be re-checked later.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A complete 2xx answer.
    Ok,
    /// A complete answer with another status.
    Http,
    /// No complete answer (connect, reset, EOF, timeout): a client-visible error.
    Connection,
}

/// The session facts an answer carried (fields absent from that route's answer stay `None`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The session's upload generation (bumped by every upload and clear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Whether the session had data loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_loaded: Option<bool>,
    /// Whether the session's analysis was complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_complete: Option<bool>,
    /// Whether the session's ITN plan was complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itn_complete: Option<bool>,
    /// `Some(None)` = the answer said `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub analysis_id: Option<Option<String>>,
    /// Lifetime count of analyses started in the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyses_started: Option<u64>,
    /// Lifetime count of analyses committed in the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyses_committed: Option<u64>,
    /// `run_analysis` only: the answer reused a committed analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused: Option<bool>,
}

impl Observed {
    /// Picks the session fields out of a JSON answer (wrong types count as absent).
    pub fn from_json(v: &Value) -> Observed {
        let b = |k: &str| v.get(k).and_then(Value::as_bool);
        let n = |k: &str| v.get(k).and_then(Value::as_u64);
        Observed {
            generation: n("generation"),
            data_loaded: b("data_loaded"),
            analysis_complete: b("analysis_complete"),
            itn_complete: b("itn_complete"),
            analysis_id: v
                .get("analysis_id")
                .map(|id| id.as_str().map(str::to_owned)),
            analyses_started: n("analyses_started"),
            analyses_committed: n("analyses_committed"),
            reused: b("reused"),
        }
    }
}

/// A field that is present (even as `null`) is `Some`; serde's default would fold `null` into
/// "absent".
fn present<'de, D>(d: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(d).map(Some)
}

/// One request attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Order in which answers (or failures) arrived, over the whole run.
    pub seq: u64,
    /// Wall clock when the attempt ended, ms since the Unix epoch.
    pub t_ms: u64,
    /// From the start of the connect to the end of the answer (or the failure), milliseconds.
    pub latency_ms: f64,
    /// The simulated user (0-based).
    pub user: u32,
    /// The workflow step (`status`, `run_analysis`, ...).
    pub route: String,
    /// The HTTP method sent.
    pub method: String,
    /// The session id the request was made for; `None` before the first upload.
    pub session: Option<String>,
    /// 1 for the first attempt; retries (idempotent requests only) count up.
    pub attempt: u32,
    /// How the attempt ended.
    pub outcome: Outcome,
    /// The status code, when an answer arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<u16>,
    /// Why the attempt failed: the connection error, or the answer's `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The worker that answered: its `x-worker-pid` header (test builds), else the JSON `worker_pid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_pid: Option<i32>,
    /// Which of several `--url`s (instances) answered, 0-based; absent with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<u32>,
    /// Instances that refused the connection before `target` took it (the load balancer's
    /// failover; nothing had been sent to them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failovers: u32,
    /// The session facts the answer carried.
    #[serde(default)]
    pub state: Observed,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Appends records to a JSONL file (or only keeps count when there is no file).
pub struct Recorder {
    seq: AtomicU64,
    out: Option<Mutex<BufWriter<File>>>,
    path: Option<PathBuf>,
}

impl Recorder {
    /// Writes to a new (truncated) JSONL file at `path`, or counts only when `None`.
    pub fn new(path: Option<&Path>) -> Result<Recorder, Error> {
        let out = match path {
            Some(p) => Some(Mutex::new(BufWriter::new(File::create(p).map_err(
                |source| Error::Record {
                    path: p.to_owned(),
                    source,
                },
            )?))),
            None => None,
        };
        Ok(Recorder {
            seq: AtomicU64::new(0),
            out,
            path: path.map(Path::to_owned),
        })
    }

    /// The next sequence number and the wall clock, taken together when an attempt ends.
    pub fn stamp(&self) -> (u64, u64) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        let t_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        (seq, t_ms)
    }

    /// Appends one record as a JSON line (nothing without a file).
    pub fn write(&self, record: &Record) -> Result<(), Error> {
        let Some(out) = &self.out else {
            return Ok(());
        };
        let line = serde_json::to_string(record).map_err(|e| Error::Encode(e.to_string()))?;
        let mut out = out.lock().map_err(|_| Error::Poisoned("the record file"))?;
        writeln!(out, "{line}").map_err(|source| self.io_error(source))
    }

    /// Flushes the buffered lines to the file.
    pub fn flush(&self) -> Result<(), Error> {
        if let Some(out) = &self.out {
            let mut out = out.lock().map_err(|_| Error::Poisoned("the record file"))?;
            out.flush().map_err(|source| self.io_error(source))?;
        }
        Ok(())
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::Record {
            path: self.path.clone().unwrap_or_default(),
            source,
        }
    }
}

/// Reads a JSONL history; a line that does not parse is an error (a torn record would hide
/// exactly what the checker looks for).
pub fn read(path: &Path) -> Result<Vec<Record>, Error> {
    let file = File::open(path).map_err(|source| Error::Record {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| Error::Record {
            path: path.to_owned(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line).map_err(|e| Error::BadRecord {
            path: path.to_owned(),
            line: i + 1,
            message: e.to_string(),
        })?;
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let rec = Recorder::new(Some(&path)).unwrap();
        let (seq, t_ms) = rec.stamp();
        let r = Record {
            seq,
            t_ms,
            latency_ms: 1.5,
            user: 3,
            route: "status".into(),
            method: "GET".into(),
            session: Some("ab".into()),
            attempt: 1,
            outcome: Outcome::Ok,
            http: Some(200),
            error: None,
            worker_pid: Some(7),
            target: None,
            failovers: 0,
            state: Observed::from_json(&serde_json::json!({
                "generation": 1, "analysis_id": null, "analysis_complete": false
            })),
        };
        rec.write(&r).unwrap();
        rec.flush().unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back, vec![r]);
        assert_eq!(back[0].state.analysis_id, Some(None));
    }
}
