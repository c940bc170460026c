//! The history checker: what every recorded answer said about its session, and what is on disk
//! afterwards.
//!
//! History rules, per session, in the order the answers arrived (one user per session, one
//! request at a time, so that order is the server's order):
//! - the generation never decreases (status, upload and analysis answers alike);
//! - within a generation, `analysis_complete` never goes true -> false, `analysis_id` never
//!   changes or disappears once set, `itn_complete` never goes true -> false, and ITN is never
//!   reported without a complete analysis;
//! - the lifetime counters `analyses_started` / `analyses_committed` never decrease, and
//!   committed <= started;
//! - acknowledged work is never lost: after a 200 from `run_analysis` (generation G, id X) every
//!   later status of G reports X complete; after a 200 from the ITN plan for analysis X, every
//!   later status with X reports ITN complete; after a 200 upload of generation G, data is loaded;
//! - exactly once per generation: all analysis answers of one generation carry one id, a
//!   non-reused answer never follows an analysis of the same generation, and at the end
//!   `fresh answers <= analyses_started <= fresh answers + failed analysis requests` (a request
//!   that got no answer may have started an analysis that a SIGKILL then cut short) and
//!   `distinct ids <= analyses_committed <= analyses_started`.
//!
//! Final reads (route `final_status`, sent after the run when every instance is up again): each
//! session is read from every instance; every read must answer, all must report the same state,
//! and they are statuses for the rules above (so every acknowledged write must be visible from
//! every instance).
//!
//! Folder rules (`instance/uploads/*`), decided from mrpt-session's README and store.rs:
//! - `manifest.json` parses and every `.data/<token>` it names exists;
//! - every committed file parses: `.json` as JSON, `.csv` with one field count on every row,
//!   `.zip` has its end-of-central-directory record, `.geoparquet`/`.parquet` start and end with
//!   `PAR1`, `.html`/`.svg` are closed, `.png` ends with IEND;
//! - debris the store itself defines as counting for nothing and sweeps (`.staging/*`: analysis
//!   staging at the next analysis, the rest after an hour; `.tmp-*` in the session root: swept
//!   by `collect_garbage` after an hour; `.data/<token>` the manifest does not name: removed by
//!   the next commit) is listed, and tolerated only in a chaos run (a SIGKILL between creating
//!   and renaming is exactly how it arises); in a run without kills it is a violation;
//! - a `.tmp-*` under `visualizations/` or `exports/` (a loose file whose writer was killed
//!   between create and rename) is never served (`RelPath` refuses hidden names) and is removed
//!   with its directory by the session's next upload or clear, but no time-based sweep covers it:
//!   it is tolerated in a chaos run like the debris above, and counted apart
//!   ([`CheckReport::unswept_temp`]) because it stays until that session is uploaded to again;
//! - a `.tmp-*` anywhere else (inside `.data/`, which is immutable once committed) is an
//!   orphaned temp file: always a violation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Error;
use crate::record::{Outcome, Record};

/// Whether debris left by killed processes is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No process was killed: the folders must be exactly clean.
    Strict,
    /// Workers were SIGKILLed: store-swept debris is listed, not a violation.
    Chaos,
}

/// What the checker found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// History records checked.
    pub records: usize,
    /// Distinct sessions in the history.
    pub sessions: usize,
    /// Session folders walked under `<instance>/uploads` (0 without an instance directory).
    pub folders: usize,
    /// Files whose content was checked (JSON parses, CSV complete).
    pub files_checked: usize,
    /// Tolerated debris (chaos mode): path and the store rule that sweeps it.
    pub debris: Vec<String>,
    /// Of `debris`: temp files under `visualizations/`/`exports/`, which only the session's next
    /// upload or clear removes.
    pub unswept_temp: usize,
    /// Broken rules, one sentence each naming the session; empty = the run passed.
    pub violations: Vec<String>,
}

impl CheckReport {
    /// Whether no rule was broken.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks a recorded history and, when given, the instance directory.
pub fn check(record: &Path, instance: Option<&Path>, mode: Mode) -> Result<CheckReport, Error> {
    let records = crate::record::read(record)?;
    let mut report = check_history(&records);
    if let Some(dir) = instance {
        check_folders(dir, mode, &mut report)?;
    }
    Ok(report)
}

#[derive(Default)]
struct SessionHistory {
    last_generation: Option<u64>,
    /// Per generation: analysis seen complete, its id, ITN seen complete.
    complete: BTreeSet<u64>,
    ids: BTreeMap<u64, String>,
    itn: BTreeSet<u64>,
    acked_analysis: BTreeMap<u64, String>,
    acked_itn: BTreeSet<String>,
    acked_upload: Option<u64>,
    started: Option<u64>,
    committed: Option<u64>,
    fresh_answers: u64,
    failed_analysis_requests: u64,
    all_ids: BTreeSet<String>,
}

/// The final reads (`final_status`) of each session (one per instance, in turn, nothing running in between) must
/// each have answered, and all of them must report the same state: an instance that shows an
/// older generation, another analysis or a lost ITN plan is serving a stale or diverged store.
pub fn check_final_reads(records: &[Record]) -> Vec<String> {
    let finals: Vec<&Record> = records
        .iter()
        .filter(|r| r.route == "final_status")
        .collect();
    // Each session is read once from every instance: the instances are the targets seen.
    let instances = finals
        .iter()
        .map(|r| r.target)
        .collect::<BTreeSet<_>>()
        .len()
        .max(1);
    let mut by_session: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in finals {
        if let Some(sid) = r.session.as_deref() {
            by_session.entry(sid).or_default().push(r);
        }
    }
    let mut v = Vec::new();
    for (sid, reads) in by_session {
        let ok: Vec<&&Record> = reads.iter().filter(|r| r.outcome == Outcome::Ok).collect();
        let answered: BTreeSet<Option<u32>> = ok.iter().map(|r| r.target).collect();
        if answered.len() < instances {
            let last = reads
                .last()
                .and_then(|r| r.error.as_deref())
                .unwrap_or("no answer");
            v.push(format!(
                "session {sid}: read back after the run by {} of {instances} instance(s) only ({last})",
                answered.len()
            ));
        }
        let mut states = ok.iter().map(|r| {
            let s = &r.state;
            (
                s.generation,
                s.data_loaded,
                s.analysis_complete,
                s.itn_complete,
                s.analysis_id.clone(),
                s.analyses_started,
                s.analyses_committed,
            )
        });
        if let Some(first) = states.next()
            && let Some(other) = states.find(|s| *s != first)
        {
            v.push(format!(
                "session {sid}: instances disagree after the run: {first:?} vs {other:?}"
            ));
        }
    }
    v
}

/// The history rules (see the module documentation) over records of any number of sessions.
pub fn check_history(records: &[Record]) -> CheckReport {
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|r| r.seq);
    let mut sessions: BTreeMap<&str, SessionHistory> = BTreeMap::new();
    let mut violations = Vec::new();
    for r in &sorted {
        let Some(sid) = r.session.as_deref() else {
            continue;
        };
        let h = sessions.entry(sid).or_default();
        let at = format!("session {sid} record {} ({} {})", r.seq, r.method, r.route);
        if r.route == "run_analysis" && r.outcome != Outcome::Ok {
            h.failed_analysis_requests += 1;
        }
        if r.outcome != Outcome::Ok {
            continue;
        }
        let s = &r.state;
        if let Some(g) = s.generation {
            if let Some(last) = h.last_generation
                && g < last
            {
                violations.push(format!("{at}: generation went back from {last} to {g}"));
            }
            h.last_generation = Some(h.last_generation.map_or(g, |l| l.max(g)));
        }
        for (name, value, last) in [
            ("analyses_started", s.analyses_started, &mut h.started),
            ("analyses_committed", s.analyses_committed, &mut h.committed),
        ] {
            if let Some(v) = value {
                if let Some(l) = *last
                    && v < l
                {
                    violations.push(format!("{at}: {name} went back from {l} to {v}"));
                }
                *last = Some(last.map_or(v, |l| l.max(v)));
            }
        }
        if let (Some(st), Some(co)) = (s.analyses_started, s.analyses_committed)
            && co > st
        {
            violations.push(format!(
                "{at}: {co} analyses committed but only {st} started"
            ));
        }
        match r.route.as_str() {
            // The final reads after the run are statuses like any other (from every instance).
            "status" | "final_status" => {
                let Some(g) = s.generation else {
                    violations.push(format!("{at}: status without a generation"));
                    continue;
                };
                let complete = s.analysis_complete == Some(true);
                let itn = s.itn_complete == Some(true);
                let id = s.analysis_id.clone().flatten();
                if h.complete.contains(&g) && !complete {
                    violations.push(format!(
                        "{at}: analysis_complete went true -> false in generation {g}"
                    ));
                }
                if let Some(seen) = h.ids.get(&g)
                    && id.as_ref() != Some(seen)
                {
                    violations.push(format!(
                        "{at}: analysis_id changed from {seen} to {id:?} in generation {g}"
                    ));
                }
                if itn && !complete {
                    violations.push(format!("{at}: ITN reported before the analysis"));
                }
                if h.itn.contains(&g) && !itn {
                    violations.push(format!(
                        "{at}: itn_complete went true -> false in generation {g}"
                    ));
                }
                if let Some(acked) = h.acked_analysis.get(&g)
                    && (!complete || id.as_ref() != Some(acked))
                {
                    violations.push(format!(
                        "{at}: analysis {acked} was acknowledged for generation {g} but status says complete={complete} id={id:?}"
                    ));
                }
                if let Some(x) = &id
                    && h.acked_itn.contains(x)
                    && !itn
                {
                    violations.push(format!(
                        "{at}: ITN for analysis {x} was acknowledged but status says it is not complete"
                    ));
                }
                if h.acked_upload == Some(g) && s.data_loaded != Some(true) {
                    violations.push(format!(
                        "{at}: upload of generation {g} was acknowledged but data_loaded is not true"
                    ));
                }
                if let Some(acked) = h.acked_upload
                    && g < acked
                {
                    violations.push(format!(
                        "{at}: upload of generation {acked} was acknowledged but status reports generation {g}"
                    ));
                }
                if complete {
                    h.complete.insert(g);
                }
                if itn {
                    h.itn.insert(g);
                }
                if let Some(x) = id {
                    h.ids.entry(g).or_insert_with(|| x.clone());
                    h.all_ids.insert(x);
                }
            }
            "run_analysis" => {
                let (Some(g), Some(Some(id))) = (s.generation, s.analysis_id.clone()) else {
                    violations.push(format!("{at}: analysis answer without generation and id"));
                    continue;
                };
                if let Some(seen) = h.ids.get(&g)
                    && *seen != id
                {
                    violations.push(format!(
                        "{at}: a second analysis {id} in generation {g} (already {seen})"
                    ));
                }
                if s.reused == Some(false) {
                    if h.ids.contains_key(&g) {
                        violations.push(format!(
                            "{at}: generation {g} was analysed again although {} was committed",
                            h.ids[&g]
                        ));
                    }
                    h.fresh_answers += 1;
                }
                h.acked_analysis.insert(g, id.clone());
                h.ids.entry(g).or_insert_with(|| id.clone());
                h.complete.insert(g);
                h.all_ids.insert(id);
            }
            "itn" => {
                if let Some(Some(id)) = &s.analysis_id {
                    if let Some(g) = h.last_generation
                        && let Some(seen) = h.ids.get(&g)
                        && seen != id
                    {
                        violations.push(format!(
                            "{at}: ITN planned on analysis {id}, but generation {g} is {seen}"
                        ));
                    }
                    h.acked_itn.insert(id.clone());
                } else {
                    violations.push(format!("{at}: ITN answer without an analysis_id"));
                }
            }
            "upload" => {
                if let Some(g) = s.generation {
                    h.acked_upload = Some(g);
                }
            }
            _ => {}
        }
    }
    for (sid, h) in &sessions {
        let Some(started) = h.started else {
            continue;
        };
        let committed = h.committed.unwrap_or(0);
        if started < h.fresh_answers {
            violations.push(format!(
                "session {sid}: {} fresh analysis answers but analyses_started is {started}",
                h.fresh_answers
            ));
        }
        if started > h.fresh_answers + h.failed_analysis_requests {
            violations.push(format!(
                "session {sid}: analyses_started is {started} but only {} fresh answers and {} failed requests could have started one",
                h.fresh_answers, h.failed_analysis_requests
            ));
        }
        if (committed as usize) < h.all_ids.len() {
            violations.push(format!(
                "session {sid}: {} distinct analysis ids seen but analyses_committed is {committed}",
                h.all_ids.len()
            ));
        }
    }
    violations.extend(check_final_reads(records));
    CheckReport {
        records: records.len(),
        sessions: sessions.len(),
        violations,
        ..CheckReport::default()
    }
}

/// Where the object backend's sessions live, for [`check_bucket`]: an S3 endpoint that does not
/// verify signatures (moto_server on loopback; a placeholder `Authorization` is sent), a bucket
/// and the store's prefix (`s3://BUCKET/PREFIX`).
#[derive(Debug, Clone)]
pub struct Bucket {
    /// The S3 endpoint's address (loopback only).
    pub endpoint: std::net::SocketAddr,
    /// The bucket name.
    pub bucket: String,
    /// The store's key prefix inside the bucket (empty for none; no leading or trailing `/`).
    pub prefix: String,
}

impl Bucket {
    /// `http://HOST:PORT/BUCKET[/PREFIX]`, the endpoint resolved by the caller.
    pub fn parse(endpoint: std::net::SocketAddr, url_path: &str) -> Option<Bucket> {
        let path = url_path.trim_matches('/');
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        (!bucket.is_empty()).then(|| Bucket {
            endpoint,
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    fn get(&self, target: &str) -> Result<Vec<u8>, Error> {
        let walk = |message: String| Error::Walk {
            path: PathBuf::from(format!("s3://{}/{target}", self.bucket)),
            source: std::io::Error::other(message),
        };
        let timeouts = crate::http::Timeouts {
            connect: std::time::Duration::from_secs(5),
            io: std::time::Duration::from_secs(60),
        };
        let reply = crate::http::send(
            self.endpoint,
            &crate::http::Request::new("GET", target).headers(&[
                ("User-Agent", "prefork-load"),
                // moto answers an unsigned GetObject with 403 (anonymous access to a private
                // object) but does not verify signatures: a placeholder makes it a signed read.
                ("Authorization", PLACEHOLDER_AUTH),
            ]),
            timeouts,
        )
        .map_err(|e| walk(e.to_string()))?;
        if reply.status != 200 {
            return Err(walk(format!(
                "HTTP {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )));
        }
        Ok(reply.body)
    }

    /// Every key under `prefix` (ListObjectsV2, all pages).
    fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10_000 {
            let mut target = format!(
                "/{}?list-type=2&prefix={}",
                self.bucket,
                percent_encode(prefix)
            );
            if let Some(t) = &token {
                target.push_str("&continuation-token=");
                target.push_str(&percent_encode(t));
            }
            let body = String::from_utf8_lossy(&self.get(&target)?).into_owned();
            keys.extend(xml_values(&body, "Key"));
            token = xml_values(&body, "NextContinuationToken")
                .into_iter()
                .next();
            let truncated = xml_values(&body, "IsTruncated")
                .first()
                .is_some_and(|v| v == "true");
            if !truncated || token.is_none() {
                return Ok(keys);
            }
        }
        Ok(keys)
    }

    fn object(&self, key: &str) -> Result<Vec<u8>, Error> {
        self.get(&format!("/{}/{}", self.bucket, percent_encode_path(key)))
    }
}

const PLACEHOLDER_AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_encode_path(s: &str) -> String {
    s.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// The text of every `<tag>...</tag>` (S3's listing XML; entities decoded).
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    out
}

/// Walks the object backend's sessions (`<prefix>/uploads/<id>/...`) in a bucket, the object
/// store's counterpart of [`check_folders`]: every `manifest.json` parses, every `data/<token>/`
/// it names holds every file its record lists, and every object of a named token is whole (by
/// extension, as on disk); `conv/*.json` and `analysis.lease` parse. A `data/<token>/` that no
/// manifest names is debris (the store's GC removes unnamed tokens after its grace period; a
/// killed upload or analysis leaves one): tolerated under chaos, a violation otherwise.
pub fn check_bucket(bucket: &Bucket, mode: Mode, report: &mut CheckReport) -> Result<(), Error> {
    let root = if bucket.prefix.is_empty() {
        "uploads/".to_owned()
    } else {
        format!("{}/uploads/", bucket.prefix)
    };
    let mut sessions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in bucket.list(&root)? {
        let Some(rest) = key.strip_prefix(&root) else {
            continue;
        };
        let Some((sid, rel)) = rest.split_once('/') else {
            continue;
        };
        sessions
            .entry(sid.to_owned())
            .or_default()
            .push(rel.to_owned());
    }
    for (sid, rels) in &sessions {
        report.folders += 1;
        let at = |rel: &str| format!("s3://{}/{root}{sid}/{rel}", bucket.bucket);
        let mut named: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if rels.iter().any(|r| r == "manifest.json") {
            let bytes = bucket.object(&format!("{root}{sid}/manifest.json"))?;
            report.files_checked += 1;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(m) => {
                    for key in ["upload", "population", "analysis", "itn"] {
                        let Some(rec) = m.get(key) else { continue };
                        if let Some(dir) = rec.get("dir").and_then(Value::as_str) {
                            let mut files: Vec<String> = ["files", "loose"]
                                .iter()
                                .filter_map(|f| rec.get(*f).and_then(Value::as_array))
                                .flatten()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect();
                            if key == "itn" {
                                // The plan itself is implied by the record (ItnResults).
                                files.clear();
                            }
                            named.entry(dir.to_owned()).or_default().extend(files);
                        }
                    }
                }
                Err(e) => report
                    .violations
                    .push(format!("{}: does not parse: {e}", at("manifest.json"))),
            }
        } else {
            report
                .violations
                .push(format!("{}: objects without a manifest.json", at("")));
        }
        for (token, files) in &named {
            let present: BTreeSet<&str> = rels
                .iter()
                .filter_map(|r| r.strip_prefix(&format!("data/{token}/")))
                .collect();
            if present.is_empty() {
                report.violations.push(format!(
                    "{}: the manifest names data/{token}/, which holds nothing",
                    at("")
                ));
            }
            for f in files {
                if !present.contains(f.as_str()) {
                    report.violations.push(format!(
                        "{}: the manifest names data/{token}/{f}, which does not exist",
                        at("")
                    ));
                }
            }
        }
        for rel in rels {
            let whole = |report: &mut CheckReport| -> Result<(), Error> {
                let bytes = bucket.object(&format!("{root}{sid}/{rel}"))?;
                report.files_checked += 1;
                let ext = rel
                    .rsplit_once('.')
                    .map_or("", |(_, e)| e)
                    .to_ascii_lowercase();
                if let Err(why) = complete(&ext, &bytes) {
                    report
                        .violations
                        .push(format!("partial object {}: {why}", at(rel)));
                }
                Ok(())
            };
            if let Some(data) = rel.strip_prefix("data/") {
                let token = data.split('/').next().unwrap_or("");
                if named.contains_key(token) {
                    whole(report)?;
                } else {
                    let line = format!(
                        "{} (unnamed data token: removed by the store's GC after its grace period)",
                        at(rel)
                    );
                    match mode {
                        Mode::Chaos => report.debris.push(line),
                        Mode::Strict => report
                            .violations
                            .push(format!("debris after a run without kills: {line}")),
                    }
                }
            } else if rel == "manifest.json" {
                // Read and parsed above.
            } else if rel.ends_with(".json") || rel == "analysis.lease" {
                let bytes = bucket.object(&format!("{root}{sid}/{rel}"))?;
                report.files_checked += 1;
                if let Err(e) = serde_json::from_slice::<Value>(&bytes) {
                    report
                        .violations
                        .push(format!("{}: does not parse: {e}", at(rel)));
                }
            } else {
                whole(report)?;
            }
        }
    }
    Ok(())
}

/// Walks `<instance>/uploads/*` (see the module documentation for the rules).
pub fn check_folders(instance: &Path, mode: Mode, report: &mut CheckReport) -> Result<(), Error> {
    let uploads = instance.join("uploads");
    let entries = std::fs::read_dir(&uploads).map_err(|source| Error::Walk {
        path: uploads.clone(),
        source,
    })?;
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        report.folders += 1;
        check_session_folder(&dir, mode, report)?;
    }
    Ok(())
}

fn check_session_folder(dir: &Path, mode: Mode, report: &mut CheckReport) -> Result<(), Error> {
    let manifest_path = dir.join("manifest.json");
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    if manifest_path.exists() {
        let bytes = read(&manifest_path)?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(m) => {
                for key in ["upload", "population", "analysis", "itn"] {
                    if let Some(d) = m
                        .get(key)
                        .and_then(|r| r.get("dir"))
                        .and_then(Value::as_str)
                    {
                        referenced.insert(d.to_owned());
                        if !dir.join(".data").join(d).is_dir() {
                            report.violations.push(format!(
                                "{}: the manifest names .data/{d}, which does not exist",
                                dir.display()
                            ));
                        }
                    }
                }
            }
            Err(e) => report
                .violations
                .push(format!("{}: does not parse: {e}", manifest_path.display())),
        }
    }
    let debris = |path: &Path, rule: &str, report: &mut CheckReport| {
        let line = format!("{} ({rule})", path.display());
        match mode {
            Mode::Chaos => report.debris.push(line),
            Mode::Strict => report
                .violations
                .push(format!("debris after a run without kills: {line}")),
        }
    };
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Walk {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".staging" {
            for e in read_dir(&path)? {
                debris(
                    &e,
                    "staging: counts for nothing, swept by the store",
                    report,
                );
            }
            continue;
        }
        if name == ".data" {
            for e in read_dir(&path)? {
                let token = e
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if referenced.contains(&token) {
                    walk_committed(&e, None, report)?;
                } else {
                    debris(
                        &e,
                        "unreferenced data dir: removed by the next commit",
                        report,
                    );
                }
            }
            continue;
        }
        if name.starts_with(".tmp-") {
            debris(
                &path,
                "temp file in the session root: swept by collect_garbage",
                report,
            );
            continue;
        }
        if path.is_dir() {
            let loose = (name == "visualizations" || name == "exports").then_some(mode);
            walk_committed(&path, loose, report)?;
        } else {
            check_file(&path, report)?;
        }
    }
    Ok(())
}

/// Every file below `dir` must be complete. `loose` is the run's mode for the loose-file
/// directories (`visualizations/`, `exports/`), where a killed writer's temp file is tolerated in
/// a chaos run; `None` for `.data/`, where a temp file is orphaned.
fn walk_committed(dir: &Path, loose: Option<Mode>, report: &mut CheckReport) -> Result<(), Error> {
    for path in read_dir(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with(".tmp-") {
            let rule = "loose temp file: never served, removed by the next upload or clear, no timed sweep";
            match loose {
                Some(Mode::Chaos) => {
                    report.debris.push(format!("{} ({rule})", path.display()));
                    report.unswept_temp += 1;
                }
                Some(Mode::Strict) => report.violations.push(format!(
                    "debris after a run without kills: {} ({rule})",
                    path.display()
                )),
                None => report.violations.push(format!(
                    "orphaned temp file inside committed data: {}",
                    path.display()
                )),
            }
        } else if path.is_dir() {
            walk_committed(&path, loose, report)?;
        } else {
            check_file(&path, report)?;
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Walk {
        path: dir.to_owned(),
        source,
    })?;
    let mut out: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Walk {
        path: path.to_owned(),
        source,
    })
}

fn check_file(path: &Path, report: &mut CheckReport) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name == ".lock" || name == ".analysis.lock" {
        return Ok(());
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let bytes = read(path)?;
    report.files_checked += 1;
    if let Err(why) = complete(ext, &bytes) {
        report
            .violations
            .push(format!("partial file {}: {why}", path.display()));
    }
    Ok(())
}

/// Whether `bytes` are a whole file of the kind its extension says.
pub fn complete(ext: &str, bytes: &[u8]) -> Result<(), String> {
    match ext {
        "json" => serde_json::from_slice::<Value>(bytes)
            .map(|_| ())
            .map_err(|e| format!("JSON does not parse: {e}")),
        "csv" => csv_shape(bytes),
        "zip" => {
            let tail = &bytes[bytes.len().saturating_sub(65_557)..];
            if tail.windows(4).any(|w| w == b"PK\x05\x06") {
                Ok(())
            } else {
                Err("zip without its end-of-central-directory record".into())
            }
        }
        "geoparquet" | "parquet" => {
            if bytes.len() >= 8 && bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1") {
                Ok(())
            } else {
                Err("parquet without PAR1 at both ends".into())
            }
        }
        "html" => {
            let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
            if text.trim_end().ends_with("</html>") {
                Ok(())
            } else {
                Err("HTML not closed by </html>".into())
            }
        }
        "svg" => {
            let text = String::from_utf8_lossy(bytes);
            if text.trim_end().ends_with("</svg>") {
                Ok(())
            } else {
                Err("SVG not closed by </svg>".into())
            }
        }
        "png" => {
            if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.ends_with(b"IEND\xae\x42\x60\x82") {
                Ok(())
            } else {
                Err("PNG without signature or IEND".into())
            }
        }
        _ if bytes.is_empty() => Err("empty file".into()),
        _ => Ok(()),
    }
}

/// A CSV is whole when it has a header and every record has the header's field count
/// (RFC 4180 quoting: a quoted field may hold commas, quotes and newlines).
fn csv_shape(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("CSV is not UTF-8: {e}"))?;
    let mut counts: Vec<usize> = Vec::new();
    let (mut fields, mut in_quotes, mut record_has_content) = (1usize, false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
            }
            ('"', _) => {
                in_quotes = !in_quotes;
                record_has_content = true;
            }
            (',', false) => {
                fields += 1;
                record_has_content = true;
            }
            ('\n', false) => {
                if record_has_content {
                    counts.push(fields);
                }
                fields = 1;
                record_has_content = false;
            }
            ('\r', false) => {}
            _ => record_has_content = true,
        }
    }
    if in_quotes {
        return Err("CSV ends inside a quoted field".into());
    }
    if record_has_content {
        counts.push(fields);
    }
    let Some(header) = counts.first().copied() else {
        return Err("CSV without a header".into());
    };
    if let Some((i, n)) = counts.iter().enumerate().find(|(_, n)| **n != header) {
        return Err(format!(
            "CSV record {} has {n} fields, the header has {header}",
            i + 1
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::Observed;

    fn rec(seq: u64, route: &str, state: serde_json::Value) -> Record {
        Record {
            seq,
            t_ms: seq,
            latency_ms: 1.0,
            user: 0,
            route: route.into(),
            method: if route == "status" { "GET" } else { "POST" }.into(),
            session: Some("s1".into()),
            attempt: 1,
            outcome: Outcome::Ok,
            http: Some(200),
            error: None,
            worker_pid: None,
            target: None,
            failovers: 0,
            state: Observed::from_json(&state),
        }
    }

    fn status(
        seq: u64,
        g: u64,
        complete: bool,
        id: Option<&str>,
        itn: bool,
        started: u64,
    ) -> Record {
        rec(
            seq,
            "status",
            serde_json::json!({"generation": g, "data_loaded": true, "analysis_complete": complete,
                "analysis_id": id, "itn_complete": itn, "analyses_started": started,
                "analyses_committed": u64::from(complete)}),
        )
    }

    fn analysis(seq: u64, g: u64, id: &str, reused: bool, started: u64) -> Record {
        rec(
            seq,
            "run_analysis",
            serde_json::json!({"generation": g, "analysis_id": id, "reused": reused, "analyses_started": started}),
        )
    }

    fn final_read(seq: u64, target: u32, g: u64, id: Option<&str>, itn: bool) -> Record {
        let mut r = status(seq, g, id.is_some(), id, itn, 1);
        r.route = "final_status".into();
        r.target = Some(target);
        r
    }

    #[test]
    fn final_reads_must_answer_everywhere_and_agree() {
        let acked = vec![
            rec(0, "upload", serde_json::json!({"generation": 1})),
            analysis(1, 1, "a1", false, 1),
            rec(2, "itn", serde_json::json!({"analysis_id": "a1"})),
        ];
        let mut good = acked.clone();
        good.extend([
            final_read(3, 0, 1, Some("a1"), true),
            final_read(4, 1, 1, Some("a1"), true),
        ]);
        assert!(check_history(&good).ok(), "{:?}", check_history(&good));

        // Instance 1 lost the acknowledged ITN plan: both the agreement and the history catch it.
        let mut stale = acked.clone();
        stale.extend([
            final_read(3, 0, 1, Some("a1"), true),
            final_read(4, 1, 1, Some("a1"), false),
        ]);
        let v = check_history(&stale).violations;
        assert!(v.iter().any(|v| v.contains("instances disagree")), "{v:?}");
        assert!(v.iter().any(|v| v.contains("ITN for analysis a1")), "{v:?}");

        // Instance 1 never answered.
        let mut silent = acked;
        silent.push(final_read(3, 0, 1, Some("a1"), true));
        let mut refused = final_read(4, 1, 1, None, false);
        refused.outcome = Outcome::Connection;
        refused.error = Some("connect: refused".into());
        silent.push(refused);
        let v = check_history(&silent).violations;
        assert!(
            v.iter().any(|v| v.contains("by 1 of 2 instance(s)")),
            "{v:?}"
        );
    }

    #[test]
    fn s3_listing_parts() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>p/uploads/a/manifest.json</Key></Contents><Contents><Key>p/uploads/a/data/t&amp;1/x.csv</Key></Contents><NextContinuationToken>ab+/=</NextContinuationToken></ListBucketResult>";
        assert_eq!(
            xml_values(xml, "Key"),
            ["p/uploads/a/manifest.json", "p/uploads/a/data/t&1/x.csv"]
        );
        assert_eq!(xml_values(xml, "IsTruncated"), ["true"]);
        assert_eq!(percent_encode("ab+/="), "ab%2B%2F%3D");
        assert_eq!(percent_encode_path("p/a b/c"), "p/a%20b/c");
        let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        let b = Bucket::parse(addr, "/bkt/some/prefix/").unwrap();
        assert_eq!(
            (b.bucket.as_str(), b.prefix.as_str()),
            ("bkt", "some/prefix")
        );
        assert!(Bucket::parse(addr, "/").is_none());
    }

    #[test]
    fn a_clean_workflow_passes() {
        let h = vec![
            rec(0, "upload", serde_json::json!({"generation": 1})),
            status(1, 1, false, None, false, 0),
            analysis(2, 1, "a1", false, 1),
            status(3, 1, true, Some("a1"), false, 1),
            rec(4, "itn", serde_json::json!({"analysis_id": "a1"})),
            status(5, 1, true, Some("a1"), true, 1),
        ];
        let r = check_history(&h);
        assert!(r.ok(), "{:?}", r.violations);
        assert_eq!(r.sessions, 1);
    }

    #[test]
    fn regressions_and_double_analyses_are_caught() {
        let cases: Vec<(Vec<Record>, &str)> = vec![
            (
                vec![
                    status(0, 2, false, None, false, 0),
                    status(1, 1, false, None, false, 0),
                ],
                "generation went back",
            ),
            (
                vec![
                    status(0, 1, true, Some("a1"), false, 1),
                    status(1, 1, false, None, false, 1),
                ],
                "true -> false",
            ),
            (
                vec![
                    status(0, 1, true, Some("a1"), false, 1),
                    status(1, 1, true, Some("a2"), false, 2),
                ],
                "analysis_id changed",
            ),
            (
                vec![status(0, 1, false, None, true, 0)],
                "ITN reported before",
            ),
            (
                vec![
                    analysis(0, 1, "a1", false, 1),
                    analysis(1, 1, "a2", false, 2),
                ],
                "second analysis",
            ),
            (
                vec![
                    analysis(0, 1, "a1", false, 1),
                    status(1, 1, false, None, false, 1),
                ],
                "acknowledged",
            ),
            (vec![analysis(0, 1, "a1", false, 2)], "could have started"),
            (
                vec![
                    status(0, 1, false, None, false, 1),
                    status(1, 1, false, None, false, 0),
                ],
                "analyses_started went back",
            ),
        ];
        for (history, want) in cases {
            let r = check_history(&history);
            assert!(
                r.violations.iter().any(|v| v.contains(want)),
                "expected {want:?} in {:?}",
                r.violations
            );
        }
    }

    #[test]
    fn a_failed_request_may_account_for_one_extra_start() {
        let mut failed = analysis(0, 1, "x", false, 0);
        failed.outcome = Outcome::Connection;
        failed.state = Observed::default();
        let h = vec![
            failed,
            analysis(1, 1, "a1", false, 2),
            status(2, 1, true, Some("a1"), false, 2),
        ];
        let r = check_history(&h);
        assert!(r.ok(), "{:?}", r.violations);
    }

    #[test]
    fn file_completeness() {
        assert!(complete("json", b"{\"a\":1}").is_ok());
        assert!(complete("json", b"{\"a\":").is_err());
        assert!(complete("csv", b"a,b\n1,\"x,y\"\n2,3\n").is_ok());
        assert!(complete("csv", b"a,b\n1,2\n3").is_err());
        assert!(complete("csv", b"a,b\n1,\"open").is_err());
        assert!(complete("parquet", b"PAR1....PAR1").is_ok());
        assert!(complete("geoparquet", b"PAR1....").is_err());
        assert!(complete("html", b"<html></html>\n").is_ok());
        assert!(complete("html", b"<html><body>").is_err());
        assert!(complete("zip", b"PK\x03\x04....PK\x05\x06..................").is_ok());
        assert!(complete("zip", b"PK\x03\x04....").is_err());
    }

    #[test]
    fn folders_strict_and_chaos() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("uploads/abc");
        std::fs::create_dir_all(s.join(".data/u-1")).unwrap();
        std::fs::create_dir_all(s.join(".staging/a-2")).unwrap();
        std::fs::create_dir_all(s.join("visualizations")).unwrap();
        std::fs::write(s.join("manifest.json"), br#"{"upload":{"dir":"u-1"}}"#).unwrap();
        std::fs::write(s.join(".data/u-1/raw_data.csv"), b"a,b\n1,2\n").unwrap();
        std::fs::write(s.join("raw_data.csv"), b"a,b\n1,2\n").unwrap();
        std::fs::write(s.join(".tmp-raw_data.csv-1234"), b"a,").unwrap();
        std::fs::write(s.join("visualizations/map.html"), b"<html></html>").unwrap();

        let mut chaos = CheckReport::default();
        check_folders(dir.path(), Mode::Chaos, &mut chaos).unwrap();
        assert!(chaos.ok(), "{:?}", chaos.violations);
        assert_eq!(chaos.debris.len(), 2, "{:?}", chaos.debris);
        assert_eq!(chaos.files_checked, 4);

        let mut strict = CheckReport::default();
        check_folders(dir.path(), Mode::Strict, &mut strict).unwrap();
        assert_eq!(strict.violations.len(), 2, "{:?}", strict.violations);

        std::fs::write(s.join("visualizations/.tmp-map.html-99"), b"<html>").unwrap();
        let mut chaos = CheckReport::default();
        check_folders(dir.path(), Mode::Chaos, &mut chaos).unwrap();
        assert!(chaos.ok(), "{:?}", chaos.violations);
        assert_eq!((chaos.debris.len(), chaos.unswept_temp), (3, 1));

        std::fs::write(s.join(".data/u-1/.tmp-raw_data.csv-77"), b"a").unwrap();
        std::fs::write(s.join(".data/u-1/broken.json"), b"{").unwrap();
        let mut chaos = CheckReport::default();
        check_folders(dir.path(), Mode::Chaos, &mut chaos).unwrap();
        assert!(
            chaos
                .violations
                .iter()
                .any(|v| v.contains("orphaned temp file"))
        );
        assert!(chaos.violations.iter().any(|v| v.contains("partial file")));
    }
}
