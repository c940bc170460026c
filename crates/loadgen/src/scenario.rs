//! The simulated users: each one creates its own session and walks the whole workflow with think
//! time, sequentially (a user never has two requests in flight, so the order of its records is
//! the order in which the server saw them).
//!
//! Retry policy: only idempotent requests (GETs, the status included) that failed at the
//! connection level are retried, on a new connection, a bounded number of times. A failed
//! non-idempotent request is recorded as a client-visible error; the user may then click again,
//! which is a new request with its own record, exactly like a person would.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Error;
use crate::chaos::Rng;
use crate::http::{self, Body, Failure, Part, Reply, Request, Timeouts};
use crate::record::{Observed, Outcome, Record, Recorder};

/// Load traffic names itself in the server's access log.
const USER_AGENT: &str = "prefork-load";

/// The files every user uploads.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// The ward table (`kano_wards.csv`).
    pub csv: Vec<u8>,
    /// The zipped ward shapefile.
    pub shapefile: Vec<u8>,
    /// The population table for the ITN plan.
    pub population: Vec<u8>,
}

impl Fixtures {
    /// Reads `kano/kano_wards.csv`, `kano/kano_wards_shapefile.zip` and
    /// `reference/kano/kano_auto_population_input.csv` under `dir` (the repository's
    /// `tests/fixtures`).
    pub fn load(dir: &Path) -> Result<Fixtures, Error> {
        let read = |rel: &str| {
            let path = dir.join(rel);
            std::fs::read(&path).map_err(|source| Error::Fixture { path, source })
        };
        Ok(Fixtures {
            csv: read("kano/kano_wards.csv")?,
            shapefile: read("kano/kano_wards_shapefile.zip")?,
            population: read("reference/kano/kano_auto_population_input.csv")?,
        })
    }
}

/// A load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server (or first instance).
    pub addr: SocketAddr,
    /// Several instances serving one store (`--url` repeated): each request of a user goes to
    /// one of them chosen by a hash of (user, attempt number), so every session crosses
    /// instances, repeatably. Empty = `addr` only.
    pub targets: Vec<SocketAddr>,
    /// Simulated users, each on its own thread and session.
    pub users: u32,
    /// Pause after every step (jittered 50-150 % per user, deterministically).
    pub think: Duration,
    /// No user starts a request after this; users still in the workflow count as unfinished.
    pub duration_limit: Duration,
    /// Users start spread over this window rather than all in the same millisecond.
    pub ramp_up: Duration,
    /// Each user starts a new workflow (on a new session) while less than this has passed since
    /// the run began; zero = exactly one workflow per user.
    pub repeat_for: Duration,
    /// The files every user uploads.
    pub fixtures: Fixtures,
    /// Where the history goes (JSONL); `None` keeps it in memory only.
    pub record: Option<PathBuf>,
    /// Attempts for an idempotent request that fails at the connection level.
    pub idempotent_attempts: u32,
    /// How often a user clicks again after a failed non-idempotent step.
    pub reclicks: u32,
    /// Total nets for the ITN plan.
    pub total_nets: u64,
    /// Connect and per-read/write timeouts of every request.
    pub timeouts: Timeouts,
}

impl LoadConfig {
    /// A run with the defaults: 1 s think time, 10 min limit, 10 s ramp-up, one workflow per user,
    /// 120,000 nets, 10 s connect and 180 s I/O timeouts, no history file.
    pub fn new(addr: SocketAddr, users: u32, fixtures: Fixtures) -> LoadConfig {
        LoadConfig {
            addr,
            targets: Vec::new(),
            users,
            think: Duration::from_millis(1000),
            duration_limit: Duration::from_secs(600),
            ramp_up: Duration::from_secs(10),
            repeat_for: Duration::ZERO,
            fixtures,
            record: None,
            idempotent_attempts: 5,
            reclicks: 6,
            total_nets: 120_000,
            timeouts: Timeouts {
                connect: Duration::from_secs(10),
                io: Duration::from_secs(180),
            },
        }
    }
}

/// The three chat messages; they only read results (none of them starts an analysis).
pub const CHAT_MESSAGES: [&str; 3] = [
    "which wards are most at risk?",
    "show me the vulnerability map",
    "compare Dala and Fagge A",
];

/// What one user did.
#[derive(Debug, Clone, Default)]
pub struct UserOutcome {
    /// The user's number (0-based).
    pub user: u32,
    /// The session of the workflow in progress.
    pub session: Option<String>,
    /// Every session this user created, in order.
    pub sessions: Vec<String>,
    /// Workflows walked to the end.
    pub workflows: u32,
    /// Every workflow this user started ended well.
    pub finished: bool,
    /// Why it stopped early, when it did.
    pub stopped: Option<String>,
    /// Pids of the workers that answered this user.
    pub workers: BTreeSet<i32>,
    /// The instances (indexes into `targets`) that answered this user.
    pub instances: BTreeSet<u32>,
    /// Sum over its finished workflows of the last status answer's `analyses_started`.
    pub analyses_started: u64,
    /// Requests this user attempted, retries included.
    pub attempts: u64,
    /// Records this user wrote (must equal `attempts`).
    pub records: u64,
}

/// Everything the users did; the records are also in the history file when one was asked for.
#[derive(Debug, Default)]
pub struct RunOutput {
    /// One outcome per user, in user order.
    pub users: Vec<UserOutcome>,
    /// Every attempt, in arrival order.
    pub records: Vec<Record>,
    /// Whether the chat steps were part of the workflow.
    pub chat: bool,
    /// Wall-clock time from the first user's start to the last user's end.
    pub wall: Duration,
}

/// Whether the server has the chat route: 404 = not (yet); anything else = yes. The probe has
/// no session, so it changes nothing and may be retried (a few times, on connection failures).
pub fn chat_available(addr: SocketAddr, timeouts: Timeouts) -> Result<bool, Error> {
    let mut last = String::new();
    for attempt in 1..=5u64 {
        match http::send(
            addr,
            &Request::new("POST", "/send_message")
                .headers(&[("User-Agent", USER_AGENT)])
                .body(Body::Sized("application/json", br#"{"message":"ping"}"#)),
            timeouts,
        ) {
            Ok(reply) => return Ok(reply.status != 404),
            Err(f) => last = f.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200 * attempt));
    }
    Err(Error::Probe(last))
}

/// Runs the users to completion (or to the duration limit) and returns what they saw. `chat`:
/// whether to send the three chat messages (see [`chat_available`]).
pub fn run_users(config: &LoadConfig, chat: bool) -> Result<RunOutput, Error> {
    let recorder = Arc::new(Recorder::new(config.record.as_deref())?);
    run_users_into(config, chat, &recorder)
}

/// [`run_users`] writing to a recorder the caller keeps (for the final reads after the run).
pub fn run_users_into(
    config: &LoadConfig,
    chat: bool,
    recorder: &Arc<Recorder>,
) -> Result<RunOutput, Error> {
    let deadline = Instant::now() + config.duration_limit;
    let started = Instant::now();
    let attempts = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for user in 0..config.users {
        let config = config.clone();
        let recorder = Arc::clone(recorder);
        let attempts = Arc::clone(&attempts);
        let delay = config
            .ramp_up
            .mul_f64(f64::from(user) / f64::from(config.users.max(1)));
        handles.push(std::thread::spawn(move || {
            std::thread::sleep(delay);
            let mut u = User::new(user, &config, &recorder, &attempts, deadline, chat);
            let records = u.run(started);
            (u.outcome, records)
        }));
    }
    let mut out = RunOutput {
        chat,
        ..RunOutput::default()
    };
    for h in handles {
        let (outcome, records) = h.join().map_err(|_| Error::Poisoned("a user thread"))?;
        out.users.push(outcome);
        out.records.extend(records);
    }
    recorder.flush()?;
    out.records.sort_by_key(|r| r.seq);
    out.wall = started.elapsed();
    // Loss accounting: every attempt started must have ended in exactly one record.
    let attempted = attempts.load(Ordering::SeqCst);
    if attempted != out.records.len() as u64 {
        return Err(Error::Accounting {
            attempted,
            recorded: out.records.len() as u64,
        });
    }
    Ok(out)
}

/// After the run (chaos over, every instance up): every session the users created is read back
/// (`GET /api/session/status`, route `final_status`) from every instance in turn, so the checker
/// can tell whether each acknowledged write is visible everywhere. Connection failures are
/// retried like any idempotent read. Returns the records, in order (also written to `recorder`).
pub fn final_reads(
    config: &LoadConfig,
    users: &[UserOutcome],
    recorder: &Recorder,
) -> Result<Vec<Record>, Error> {
    let attempts = AtomicU64::new(0);
    let deadline = Instant::now()
        + Duration::from_secs(120).min(config.duration_limit.max(Duration::from_secs(30)));
    let targets = config.targets.len().max(1);
    let mut records = Vec::new();
    for u in users {
        let mut user = User::new(u.user, config, recorder, &attempts, deadline, false);
        for sid in &u.sessions {
            user.outcome.session = Some(sid.clone());
            for ix in 0..targets {
                user.pin = Some(ix);
                // A failure is in the records; the caller judges them.
                let _ = user.get("final_status", "/api/session/status", 200);
            }
        }
        records.append(&mut user.records);
    }
    recorder.flush()?;
    let attempted = attempts.load(Ordering::SeqCst);
    if attempted != records.len() as u64 {
        return Err(Error::Accounting {
            attempted,
            recorded: records.len() as u64,
        });
    }
    records.sort_by_key(|r| r.seq);
    Ok(records)
}

/// A step that did not produce a usable answer: the user stops.
struct Stop(String);

struct User<'a> {
    config: &'a LoadConfig,
    recorder: &'a Recorder,
    attempts: &'a AtomicU64,
    deadline: Instant,
    chat: bool,
    rng: Rng,
    outcome: UserOutcome,
    records: Vec<Record>,
    /// Send every attempt to this target (the final reads); `None` = spread by hash.
    pin: Option<usize>,
}

impl<'a> User<'a> {
    fn new(
        user: u32,
        config: &'a LoadConfig,
        recorder: &'a Recorder,
        attempts: &'a AtomicU64,
        deadline: Instant,
        chat: bool,
    ) -> User<'a> {
        User {
            config,
            recorder,
            attempts,
            deadline,
            chat,
            rng: Rng::new(0x5EED ^ (u64::from(user) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            outcome: UserOutcome {
                user,
                ..UserOutcome::default()
            },
            records: Vec::new(),
            pin: None,
        }
    }

    fn run(&mut self, run_started: Instant) -> Vec<Record> {
        // Bounded by the duration limit: every request checks the deadline first.
        loop {
            self.outcome.session = None;
            match self.workflow() {
                Ok(()) => {
                    self.outcome.workflows += 1;
                    self.outcome.finished = true;
                }
                Err(Stop(why)) => {
                    self.outcome.stopped = Some(why);
                    self.outcome.finished = false;
                    break;
                }
            }
            if run_started.elapsed() >= self.config.repeat_for || Instant::now() >= self.deadline {
                break;
            }
        }
        if let Err(e) = self.recorder.flush() {
            self.outcome.stopped.get_or_insert(e.to_string());
            self.outcome.finished = false;
        }
        std::mem::take(&mut self.records)
    }

    fn workflow(&mut self) -> Result<(), Stop> {
        let created = self.click("create_session", "POST", "/api/session", None, 201)?;
        let sid = created
            .json()
            .and_then(|v| {
                v.get("session_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .ok_or_else(|| Stop("POST /api/session answered without a session_id".into()))?;
        self.outcome.session = Some(sid.clone());
        self.outcome.sessions.push(sid.clone());
        self.think();

        let f = &self.config.fixtures;
        let (ct, body) = http::multipart(&[
            Part::file("csv_file", "kano_wards.csv", &f.csv),
            Part::file("shapefile", "kano_wards_shapefile.zip", &f.shapefile),
        ]);
        self.click(
            "upload",
            "POST",
            "/upload_both_files",
            Some((&ct, &body)),
            200,
        )?;
        self.think();
        let s = self.status()?;
        if s.data_loaded != Some(true) {
            return Err(Stop(
                "status after the upload: data_loaded is not true".into(),
            ));
        }
        self.think();

        let analysis = self.click(
            "run_analysis",
            "POST",
            "/run_analysis",
            Some(("application/json", b"{}")),
            200,
        )?;
        let viz_url = analysis.json().and_then(|v| {
            v.get("visualizations")?
                .as_array()?
                .first()?
                .get("url")?
                .as_str()
                .map(str::to_owned)
        });
        self.think();
        let s = self.status()?;
        if s.analysis_complete != Some(true) {
            return Err(Stop(
                "status after the analysis: analysis_complete is not true".into(),
            ));
        }
        self.think();

        let (ct, body) = http::multipart(&[Part::file(
            "population_file",
            "kano_auto_population_input.csv",
            &f.population,
        )]);
        self.click(
            "upload_population",
            "POST",
            "/upload_population",
            Some((&ct, &body)),
            200,
        )?;
        self.think();

        let itn_body = json!({"total_nets": self.config.total_nets}).to_string();
        let itn = self.click(
            "itn",
            "POST",
            "/api/itn/update-distribution",
            Some(("application/json", itn_body.as_bytes())),
            200,
        )?;
        let map_path = itn
            .json()
            .and_then(|v| v.get("map_path").and_then(Value::as_str).map(str::to_owned));
        self.think();

        let maps: Vec<String> = viz_url.into_iter().chain(map_path).collect();
        if maps.is_empty() {
            return Err(Stop(
                "neither the analysis nor the ITN plan named a map".into(),
            ));
        }
        for url in maps {
            self.get("map", &url, 200)?;
            self.think();
        }

        if self.chat {
            for message in CHAT_MESSAGES {
                let body = json!({ "message": message }).to_string();
                // A chat turn is not idempotent (it is appended to the conversation) and not a
                // prerequisite of anything: a failed one is recorded and the user moves on.
                match self.once(
                    "chat",
                    "POST",
                    "/send_message",
                    Some(("application/json", body.as_bytes())),
                    200,
                ) {
                    Ok(_) | Err(AttemptError::Answer(_) | AttemptError::Connection(_)) => {}
                    Err(AttemptError::Deadline) => {
                        return Err(Stop("duration limit reached".into()));
                    }
                    Err(AttemptError::Fatal(why)) => return Err(Stop(why)),
                }
                self.think();
            }
        }

        let report = self.click("generate_report", "POST", "/generate_report", None, 200)?;
        let url = report
            .json()
            .and_then(|v| {
                v.get("download_url")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .ok_or_else(|| Stop("generate_report answered without a download_url".into()))?;
        self.think();
        let zip = self.get("download", &url, 200)?;
        if !zip.body.starts_with(b"PK") {
            return Err(Stop("the report download is not a zip".into()));
        }
        self.think();
        let s = self.status()?;
        self.outcome.analyses_started += s.analyses_started.unwrap_or(0);
        Ok(())
    }

    fn think(&mut self) {
        if self.config.think.is_zero() {
            return;
        }
        let factor = 0.5 + (self.rng.next() % 1000) as f64 / 1000.0;
        let pause = self.config.think.mul_f64(factor);
        let left = self.deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(pause.min(left));
    }

    fn status(&mut self) -> Result<Observed, Stop> {
        let reply = self.get("status", "/api/session/status", 200)?;
        Ok(reply
            .json()
            .map(|v| Observed::from_json(&v))
            .unwrap_or_default())
    }

    /// An idempotent GET: retried on a new connection when it failed at the connection level.
    fn get(&mut self, route: &str, path: &str, want: u16) -> Result<Reply, Stop> {
        let mut last = String::new();
        for attempt in 1..=self.config.idempotent_attempts.max(1) {
            match self.attempt(route, "GET", path, None, attempt, want) {
                Ok(reply) => return Ok(reply),
                Err(AttemptError::Answer(why)) => return Err(Stop(why)),
                Err(AttemptError::Connection(why)) => last = why,
                Err(AttemptError::Deadline) => return Err(Stop("duration limit reached".into())),
                Err(AttemptError::Fatal(why)) => return Err(Stop(why)),
            }
            std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
        }
        Err(Stop(format!("{route}: no answer after retries ({last})")))
    }

    /// A non-idempotent step that the rest depends on: on failure the user clicks again (a new
    /// request, recorded as such), a bounded number of times.
    fn click(
        &mut self,
        route: &str,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        want: u16,
    ) -> Result<Reply, Stop> {
        let mut last = String::new();
        for click in 0..=self.config.reclicks {
            match self.once(route, method, path, body, want) {
                Ok(reply) => return Ok(reply),
                Err(AttemptError::Deadline) => return Err(Stop("duration limit reached".into())),
                Err(AttemptError::Fatal(why)) => return Err(Stop(why)),
                Err(AttemptError::Answer(why) | AttemptError::Connection(why)) => last = why,
            }
            // A person notices the error and tries again a little later.
            std::thread::sleep(Duration::from_millis(200 * u64::from(click + 1)));
        }
        Err(Stop(format!(
            "{route}: failed after {} clicks ({last})",
            self.config.reclicks + 1
        )))
    }

    fn once(
        &mut self,
        route: &str,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        want: u16,
    ) -> Result<Reply, AttemptError> {
        self.attempt(route, method, path, body, 1, want)
    }

    fn attempt(
        &mut self,
        route: &str,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        attempt: u32,
        want: u16,
    ) -> Result<Reply, AttemptError> {
        if Instant::now() >= self.deadline {
            return Err(AttemptError::Deadline);
        }
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.outcome.attempts += 1;
        let session = self.outcome.session.clone();
        let t0 = Instant::now();
        let mut headers = vec![("User-Agent", USER_AGENT)];
        if let Some(sid) = session.as_deref() {
            headers.push(("X-Session-ID", sid));
        }
        let body = body.map_or(Body::Empty, |(ct, bytes)| Body::Sized(ct, bytes));
        let request = Request::new(method, path).headers(&headers).body(body);
        let n = self.config.targets.len();
        // In turn would put every step at a fixed parity (each user's statuses all on one
        // instance); a hash of (user, attempt) spreads them, repeatably.
        let spread = || {
            let mix = splitmix(u64::from(self.outcome.user) << 32 ^ self.outcome.attempts);
            usize::try_from(mix >> 33).unwrap_or(0)
        };
        let first = self.pin.unwrap_or_else(spread).checked_rem(n).unwrap_or(0);
        let mut failovers = 0u32;
        let (target, result) = loop {
            let ix = (first + failovers as usize) % n.max(1);
            let (target, addr) = match n {
                0 | 1 => (None, self.config.addr),
                _ => (u32::try_from(ix).ok(), self.config.targets[ix]),
            };
            match http::send(addr, &request, self.config.timeouts) {
                // Refused: nothing was sent, so any request may go elsewhere, as a load balancer
                // sends it to the next healthy backend (a dead instance's port refuses). Pinned
                // reads stay where they were sent: they are about that instance.
                Err(Failure::Connect(_)) if self.pin.is_none() && (failovers as usize) + 1 < n => {
                    failovers += 1;
                }
                result => break (target, result),
            }
        };
        let latency_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let (seq, t_ms) = self.recorder.stamp();
        let mut record = Record {
            seq,
            t_ms,
            latency_ms,
            user: self.outcome.user,
            route: route.to_owned(),
            method: method.to_owned(),
            session,
            attempt,
            outcome: Outcome::Connection,
            http: None,
            error: None,
            worker_pid: None,
            target,
            failovers,
            state: Observed::default(),
        };
        let verdict = match result {
            Ok(reply) => {
                record.http = Some(reply.status);
                // Release builds send no x-worker-pid header; the status route names the worker.
                record.worker_pid = reply.worker_pid().or_else(|| {
                    reply
                        .json()
                        .and_then(|v| v.get("worker_pid").and_then(Value::as_i64))
                        .and_then(|p| i32::try_from(p).ok())
                });
                if let Some(pid) = record.worker_pid {
                    self.outcome.workers.insert(pid);
                }
                // Any complete answer came from the instance behind that port (release builds
                // name the worker only in status answers).
                if let Some(t) = target {
                    self.outcome.instances.insert(t);
                }
                let parsed = reply.json();
                if let Some(v) = &parsed {
                    record.state = Observed::from_json(v);
                }
                if reply.status == want {
                    record.outcome = Outcome::Ok;
                    Ok(reply)
                } else {
                    record.outcome = Outcome::Http;
                    let message = parsed
                        .as_ref()
                        .and_then(|v| v.get("message").and_then(Value::as_str))
                        .unwrap_or("")
                        .chars()
                        .take(200)
                        .collect::<String>();
                    let why = format!("{route}: HTTP {} {message}", reply.status);
                    record.error = Some(why.clone());
                    Err(AttemptError::Answer(why))
                }
            }
            Err(failure) => {
                let why = format!("{route}: {failure}");
                record.error = Some(why.clone());
                Err(match failure {
                    Failure::Malformed(_) => AttemptError::Answer(why),
                    Failure::Connect(_) | Failure::NoAnswer(_) | Failure::Exchange(_) => {
                        AttemptError::Connection(why)
                    }
                })
            }
        };
        if let Err(e) = self.recorder.write(&record) {
            // A history that misses a record cannot be checked: stop this user loudly.
            self.records.push(record);
            self.outcome.records += 1;
            return Err(AttemptError::Fatal(e.to_string()));
        }
        self.records.push(record);
        self.outcome.records += 1;
        verdict
    }
}

/// splitmix64's finaliser: a well-spread hash of a counter.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

enum AttemptError {
    /// A complete answer, but not the expected one.
    Answer(String),
    /// No complete answer.
    Connection(String),
    Deadline,
    /// The run itself broke (the history cannot be written).
    Fatal(String),
}

/// Percentiles of one route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteStats {
    /// The workflow step (`status`, `run_analysis`, ...).
    pub route: String,
    /// Attempts with a complete answer.
    pub answered: u64,
    /// Attempts that failed (a non-2xx answer or no answer).
    pub errors: u64,
    /// Connection-level failures of idempotent requests that a retry then covered.
    pub retried: u64,
    /// Connections refused by a dead instance and sent to another one (load balancer failover).
    pub failovers: u64,
    /// Median latency, milliseconds (nearest rank).
    pub p50_ms: f64,
    /// 95th-percentile latency, milliseconds (nearest rank).
    pub p95_ms: f64,
    /// 99th-percentile latency, milliseconds (nearest rank).
    pub p99_ms: f64,
    /// Slowest attempt, milliseconds.
    pub max_ms: f64,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Per-route figures, in workflow order.
pub fn route_stats(records: &[Record]) -> Vec<RouteStats> {
    const ORDER: [&str; 11] = [
        "create_session",
        "upload",
        "status",
        "run_analysis",
        "upload_population",
        "itn",
        "map",
        "chat",
        "generate_report",
        "download",
        "final_status",
    ];
    let mut by: BTreeMap<&str, (Vec<f64>, u64)> = BTreeMap::new();
    // Attempts after the first of one idempotent request (each followed a connection failure).
    let mut retried: BTreeMap<&str, u64> = BTreeMap::new();
    let mut failovers: BTreeMap<&str, u64> = BTreeMap::new();
    for r in records {
        *failovers.entry(r.route.as_str()).or_default() += u64::from(r.failovers);
        let e = by.entry(r.route.as_str()).or_default();
        match r.outcome {
            Outcome::Ok => e.0.push(r.latency_ms),
            Outcome::Http => {
                e.0.push(r.latency_ms);
                e.1 += 1;
            }
            Outcome::Connection => e.1 += 1,
        }
        if r.attempt > 1 {
            *retried.entry(r.route.as_str()).or_default() += 1;
        }
    }
    let rank = |name: &str| ORDER.iter().position(|o| *o == name).unwrap_or(ORDER.len());
    let mut out: Vec<RouteStats> = by
        .into_iter()
        .map(|(route, (mut lat, errors))| {
            lat.sort_by(f64::total_cmp);
            RouteStats {
                route: route.to_owned(),
                answered: lat.len() as u64,
                errors,
                retried: retried.get(route).copied().unwrap_or(0),
                failovers: failovers.get(route).copied().unwrap_or(0),
                p50_ms: percentile(&lat, 50.0),
                p95_ms: percentile(&lat, 95.0),
                p99_ms: percentile(&lat, 99.0),
                max_ms: lat.last().copied().unwrap_or(0.0),
            }
        })
        .collect();
    out.sort_by_key(|s| rank(&s.route));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
