//! prefork-loadgen: the 60-user load test, the chaos test and the history checker of issue 9.
//!
//! Owns: simulated users that each walk the whole workflow on their own session over real
//! sockets (`scenario`), the workspace's one HTTP/1.1 client (`http`, std only, strict parsing;
//! the repository's integration tests use it too), the JSONL history of every answer
//! (`record`), the checker of that history and of the session folders (`check`), the worker and
//! whole-instance killer (`chaos`) and the instances it may launch and restart itself (`fleet`).
//! [`run`] ties them together and decides pass/fail.
//!
//! Must not depend on the server, app or session crates: it judges them from the outside, by
//! what the HTTP answers and the files on disk say (the folder rules it enforces are restated in
//! `check`, taken from mrpt-session's README). Only ever talks to the address it is given (the
//! scripts and tests give 127.0.0.1), and every loop is bounded in count and time.

#![deny(missing_docs)]

pub mod chaos;
pub mod check;
pub mod fleet;
pub mod http;
pub mod record;
pub mod scenario;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

pub use chaos::{ChaosConfig, ChaosReport};
pub use check::{CheckReport, Mode};
pub use fleet::{Fleet, LaunchSpec};
pub use scenario::{Fixtures, LoadConfig, RouteStats};

/// Everything that can stop a run before it produces figures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A fixture file could not be read.
    #[error("cannot read the fixture {path}: {source}")]
    Fixture {
        /// The fixture file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The history (JSONL) file could not be created, written or read.
    #[error("cannot write or read the history {path}: {source}")]
    Record {
        /// The history file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A history line is not a JSON record.
    #[error("history {path} line {line} is not a record: {message}")]
    BadRecord {
        /// The history file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The JSON parser's message.
        message: String,
    },
    /// A record could not be serialised to JSON.
    #[error("cannot encode a record: {0}")]
    Encode(String),
    /// A session folder of the instance directory could not be listed or read.
    #[error("cannot walk the instance directory at {path}: {source}")]
    Walk {
        /// The folder or file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The chat route probe got no answer at all (not even 404).
    #[error("the server did not answer the chat probe: {0}")]
    Probe(String),
    /// The pid given for chaos has no live child: not a prefork master, or all workers are gone.
    #[error("process {0} has no live children: not a prefork master (or all its workers are gone)")]
    NoWorkers(i32),
    /// SIGHUP could not be sent to the master.
    #[error("cannot signal process {pid}: {message}")]
    Signal {
        /// The master's pid.
        pid: i32,
        /// The system's error.
        message: String,
    },
    /// An instance could not be launched (its command, port or readiness).
    #[error("launching an instance: {0}")]
    Launch(String),
    /// A worker thread of the tool panicked (or a lock it held was poisoned).
    #[error("{0} panicked or was poisoned")]
    Poisoned(&'static str),
    /// Attempts and records disagree: a request went unrecorded (a bug of the tool, never ignored).
    #[error(
        "{attempted} requests were attempted but {recorded} records exist: a request was lost without a trace"
    )]
    Accounting {
        /// Requests started.
        attempted: u64,
        /// Records written.
        recorded: u64,
    },
}

/// A whole run: the load, optionally with chaos, then the checker.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Users, their workflow and the server's address.
    pub load: LoadConfig,
    /// SIGKILLs of workers during the load; `None` = a plain load run.
    pub chaos: Option<ChaosConfig>,
    /// The server's instance directory, for the folder walk; `None` skips it.
    pub instance: Option<PathBuf>,
    /// The object backend's bucket, for the bucket walk (`check::check_bucket`); `None` skips it.
    pub bucket: Option<check::Bucket>,
    /// p99 bound for every route except `run_analysis`; `None` = latency is reported, not judged
    /// (tests on a shared debug build must not be timing tests).
    pub p99_limit: Option<Duration>,
}

/// What a run measured and what it violated.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Users started.
    pub users: u32,
    /// Users whose every workflow ended well.
    pub finished_users: u32,
    /// Workflows walked to the end (one session each).
    pub workflows: u64,
    /// Whether the server had the chat route (the three chat messages were sent).
    pub chat: bool,
    /// Wall-clock time of the load phase.
    pub wall: Duration,
    /// Latency percentiles and error counts per route.
    pub routes: Vec<RouteStats>,
    /// Request attempts, retries included.
    pub attempts: u64,
    /// Requests without a 2xx answer that the client reported (after retries).
    pub visible_errors: u64,
    /// Idempotent requests retried after a connection-level failure.
    pub retries: u64,
    /// Requests refused by a dead instance and sent to another one (an availability figure).
    pub failovers: u64,
    /// Final reads: sessions read back from every instance after the run.
    pub final_reads: u64,
    /// How many of the final reads answered (all of them, when every instance is back up).
    pub final_answered: u64,
    /// Sum over the users' sessions of the last status's `analyses_started`.
    pub analysis_runs: u64,
    /// Distinct workers that answered each user: (min, median, max).
    pub workers_per_user: (usize, usize, usize),
    /// What the chaos thread did; `None` without chaos.
    pub chaos: Option<ChaosReport>,
    /// The history and folder checks.
    pub check: CheckReport,
    /// Every broken rule: the checker's, lost or unfinished users, a p99 over the limit.
    pub violations: Vec<String>,
}

impl RunReport {
    /// Whether the run passed (no violation).
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs the users (with the chaos monkey when configured), checks the history and the folders,
/// and lists every violation. `Err` only when the run itself could not happen.
pub fn run(config: &RunConfig) -> Result<RunReport, Error> {
    // Probed before any worker is killed, so the answer is about the route, not the chaos.
    let chat = scenario::chat_available(config.load.addr, config.load.timeouts)?;
    let recorder = std::sync::Arc::new(record::Recorder::new(config.load.record.as_deref())?);
    let monkey = match &config.chaos {
        Some(c) => Some(chaos::Monkey::start(c.clone())?),
        None => None,
    };
    let users = scenario::run_users_into(&config.load, chat, &recorder);
    // Stop the monkey before looking at anything, even when the users failed. It leaves every
    // instance it killed started again and healthy.
    let chaos_report = match monkey {
        Some(m) => Some(m.stop()?),
        None => None,
    };
    let mut out = users?;
    // Every acknowledged write must be visible from every instance once the dust settles.
    let finals = scenario::final_reads(&config.load, &out.users, &recorder)?;
    let final_reads = finals.len() as u64;
    let final_answered = finals
        .iter()
        .filter(|r| r.outcome == record::Outcome::Ok)
        .count() as u64;
    out.records.extend(finals);
    let mode = if config.chaos.is_some() {
        Mode::Chaos
    } else {
        Mode::Strict
    };
    let mut check = check::check_history(&out.records);
    if let Some(dir) = &config.instance {
        check::check_folders(dir, mode, &mut check)?;
    }
    if let Some(bucket) = &config.bucket {
        check::check_bucket(bucket, mode, &mut check)?;
    }

    let routes = scenario::route_stats(&out.records);
    let mut report = RunReport {
        users: config.load.users,
        finished_users: out.users.iter().filter(|u| u.finished).count() as u32,
        chat: out.chat,
        wall: out.wall,
        attempts: out.records.len() as u64,
        retries: out.records.iter().filter(|r| r.attempt > 1).count() as u64,
        failovers: out.records.iter().map(|r| u64::from(r.failovers)).sum(),
        final_reads,
        final_answered,
        workflows: out.users.iter().map(|u| u64::from(u.workflows)).sum(),
        analysis_runs: out.users.iter().map(|u| u.analyses_started).sum(),
        chaos: chaos_report,
        ..RunReport::default()
    };
    report.visible_errors = visible_errors(&out.records);
    let mut per_user: Vec<usize> = out.users.iter().map(|u| u.workers.len()).collect();
    per_user.sort_unstable();
    if let (Some(first), Some(last)) = (per_user.first(), per_user.last()) {
        report.workers_per_user = (*first, per_user[per_user.len() / 2], *last);
    }

    let mut v = Vec::new();
    for u in out.users.iter().filter(|u| !u.finished) {
        v.push(format!(
            "user {} did not finish: {}",
            u.user,
            u.stopped.as_deref().unwrap_or("unknown")
        ));
    }
    // Several instances: every finished user must have crossed them (else the run proves nothing
    // about sharing the store).
    if config.load.targets.len() > 1 {
        for u in out
            .users
            .iter()
            .filter(|u| u.finished && u.instances.len() < 2)
        {
            v.push(format!(
                "user {} was answered by {} instance(s) only: {:?}",
                u.user,
                u.instances.len(),
                u.instances
            ));
        }
    }
    if config.chaos.is_none() {
        let failures = out
            .records
            .iter()
            .filter(|r| r.outcome != record::Outcome::Ok)
            .count();
        if failures > 0 {
            v.push(format!(
                "{failures} request attempts failed in a run without chaos"
            ));
            for r in out
                .records
                .iter()
                .filter(|r| r.outcome != record::Outcome::Ok)
                .take(5)
            {
                v.push(format!("  e.g. {}", r.error.as_deref().unwrap_or("?")));
            }
        }
        if report.analysis_runs != report.workflows {
            v.push(format!(
                "analysis runs {} != workflows {} (exactly once per user session)",
                report.analysis_runs, report.workflows
            ));
        }
    }
    if let Some(limit) = config.p99_limit {
        let ms = limit.as_secs_f64() * 1000.0;
        for r in routes.iter().filter(|r| r.route != "run_analysis") {
            if r.p99_ms >= ms {
                v.push(format!("{}: p99 {:.0} ms >= {ms:.0} ms", r.route, r.p99_ms));
            }
        }
    }
    if let Some(c) = &report.chaos
        && c.kills == 0
    {
        v.push("chaos run without a single kill".into());
    }
    if let (Some(c), Some(plan)) = (&report.chaos, &config.chaos)
        && plan.fleet.is_some()
        && plan.instance_every.is_some()
    {
        if c.instance_kills == 0 {
            v.push("whole-instance chaos without a single instance killed".into());
        }
        if c.instance_restarts < c.instance_kills {
            v.push(format!(
                "{} instances killed but only {} came back",
                c.instance_kills, c.instance_restarts
            ));
        }
    }
    if let (Some(c), Some(plan)) = (&report.chaos, &config.chaos)
        && plan.hup_after.is_some()
        && !c.hup_sent
    {
        v.push(format!(
            "the HUP planned after {:?} was never sent: the load ended first",
            plan.hup_after.unwrap_or_default()
        ));
    }
    v.extend(check.violations.iter().cloned());
    report.routes = routes;
    report.check = check;
    report.violations = v;
    Ok(report)
}

/// Workflow requests that ended without the expected answer, counting a retried idempotent
/// request once, by its last attempt.
fn visible_errors(records: &[record::Record]) -> u64 {
    // The last attempt of each (user, route, first-attempt seq) chain decides.
    let mut chains: BTreeMap<(u32, u64), bool> = BTreeMap::new();
    let mut current: BTreeMap<u32, u64> = BTreeMap::new();
    let mut sorted: Vec<&record::Record> = records.iter().collect();
    sorted.sort_by_key(|r| r.seq);
    for r in sorted {
        if r.attempt <= 1 {
            current.insert(r.user, r.seq);
        }
        let head = current.get(&r.user).copied().unwrap_or(r.seq);
        chains.insert((r.user, head), r.outcome == record::Outcome::Ok);
    }
    chains.values().filter(|ok| !**ok).count() as u64
}

/// The figures as a text table.
pub fn render(report: &RunReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<18} {:>7} {:>6} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "route", "answers", "errors", "retry", "failover", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for r in &report.routes {
        let _ = writeln!(
            s,
            "{:<18} {:>7} {:>6} {:>6} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            r.route,
            r.answered,
            r.errors,
            r.retried,
            r.failovers,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.max_ms
        );
    }
    let _ = writeln!(
        s,
        "users {} (finished {}), workflows {}, chat {}, wall {:.1} s, request attempts {}",
        report.users,
        report.finished_users,
        report.workflows,
        if report.chat {
            "yes (3 messages)"
        } else {
            "absent (404)"
        },
        report.wall.as_secs_f64(),
        report.attempts
    );
    let _ = writeln!(
        s,
        "client-visible errors {}, idempotent retries {}, failovers {} (refused by a dead instance, sent to another), analysis runs {} (workflows {})",
        report.visible_errors,
        report.retries,
        report.failovers,
        report.analysis_runs,
        report.workflows
    );
    let _ = writeln!(
        s,
        "final reads (every session from every instance after the run): {} answered of {}",
        report.final_answered, report.final_reads
    );
    let (lo, mid, hi) = report.workers_per_user;
    let _ = writeln!(
        s,
        "distinct workers per user: min {lo}, median {mid}, max {hi}"
    );
    if let Some(c) = &report.chaos {
        let _ = writeln!(
            s,
            "chaos: {} workers SIGKILLed ({} distinct pids), HUP sent: {}, rounds with no worker: {}",
            c.kills,
            c.victims.len(),
            c.hup_sent,
            c.idle_rounds
        );
        if c.instance_kills > 0 || c.instance_restarts > 0 {
            let mut ms = c.restart_ms.clone();
            ms.sort_by(f64::total_cmp);
            let _ = writeln!(
                s,
                "chaos: {} whole instances SIGKILLed (master + workers), {} restarted; spawn to healthy p50 {:.0} ms, max {:.0} ms",
                c.instance_kills,
                c.instance_restarts,
                scenario::percentile(&ms, 50.0),
                ms.last().copied().unwrap_or(0.0)
            );
        }
    }
    let c = &report.check;
    let _ = writeln!(
        s,
        "checker: {} records, {} sessions, {} folders, {} files parsed, {} tolerated debris ({} loose temp files that only a next upload/clear removes), {} violations",
        c.records,
        c.sessions,
        c.folders,
        c.files_checked,
        c.debris.len(),
        c.unswept_temp,
        c.violations.len()
    );
    for d in c.debris.iter().take(10) {
        let _ = writeln!(s, "  debris: {d}");
    }
    if report.violations.is_empty() {
        let _ = writeln!(s, "RESULT: PASS (0 violations)");
    } else {
        let _ = writeln!(s, "RESULT: FAIL ({} violations)", report.violations.len());
        for v in report.violations.iter().take(40) {
            let _ = writeln!(s, "  violation: {v}");
        }
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use record::{Observed, Outcome, Record};

    fn rec(seq: u64, user: u32, route: &str, attempt: u32, outcome: Outcome) -> Record {
        Record {
            seq,
            t_ms: seq,
            latency_ms: seq as f64,
            user,
            route: route.into(),
            method: "GET".into(),
            session: None,
            attempt,
            outcome,
            http: None,
            error: None,
            worker_pid: None,
            target: None,
            failovers: 0,
            state: Observed::default(),
        }
    }

    #[test]
    fn a_retry_that_succeeds_is_not_a_visible_error() {
        let h = vec![
            rec(0, 1, "map", 1, Outcome::Connection),
            rec(1, 2, "itn", 1, Outcome::Connection),
            rec(2, 1, "map", 2, Outcome::Ok),
            rec(3, 2, "itn", 1, Outcome::Ok),
            rec(4, 1, "download", 1, Outcome::Connection),
            rec(5, 1, "download", 2, Outcome::Connection),
        ];
        // itn's failed click and the download that failed twice; the map was covered by its retry.
        assert_eq!(visible_errors(&h), 2);
        let stats = scenario::route_stats(&h);
        let names: Vec<&str> = stats.iter().map(|s| s.route.as_str()).collect();
        assert_eq!(names, ["itn", "map", "download"]);
        let map = &stats[1];
        assert_eq!((map.answered, map.errors, map.retried), (1, 1, 1));
    }
}
