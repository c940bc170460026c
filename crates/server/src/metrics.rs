//! `GET /metrics` for the whole server, whichever worker answers. Workers share nothing but the
//! filesystem, so each worker keeps its counters in memory and writes them, a few times a second
//! when they changed and once more at exit, to its own file in the metrics directory (write to a
//! temp name, then rename: readers never see half a file). The master merges a dead worker's file
//! into its own file and counts worker restarts there. Whoever serves /metrics sums every file,
//! with its own live counters in place of its file.
//!
//! File format: one `series value` per line, `series` being the full Prometheus series name with
//! labels (`prefork_http_requests_total{route="/ping",status="200"}`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets (seconds) of the request histogram and `*_seconds` app observations.
const SECONDS_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Buckets of `*_bytes` app observations.
const BYTES_BUCKETS: [f64; 8] = [1e3, 1e4, 1e5, 1e6, 4e6, 16e6, 64e6, 256e6];

/// How often a worker writes its file when something changed.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(250);

pub(crate) type Series = BTreeMap<String, f64>;

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn fmt_le(b: f64) -> String {
    format!("{b}")
}

fn observe(series: &mut Series, name: &str, labels: &str, value: f64, buckets: &[f64]) {
    let sep = if labels.is_empty() { "" } else { "," };
    for b in buckets {
        if value <= *b {
            *series
                .entry(format!(
                    "{name}_bucket{{{labels}{sep}le=\"{}\"}}",
                    fmt_le(*b)
                ))
                .or_default() += 1.0;
        }
    }
    *series
        .entry(format!("{name}_bucket{{{labels}{sep}le=\"+Inf\"}}"))
        .or_default() += 1.0;
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    *series.entry(format!("{name}_sum{braces}")).or_default() += value;
    *series.entry(format!("{name}_count{braces}")).or_default() += 1.0;
}

/// One worker's counters.
pub(crate) struct WorkerMetrics {
    dir: PathBuf,
    file: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Per route: the request counters and the duration histogram, kept as numbers so that
    /// counting a request formats no series name and allocates nothing (the names are made
    /// when the file is written, a few times a second).
    routes: HashMap<String, RouteCounters>,
    /// The handlers' `app_*` observations (rare: uploads, analyses), by full series name.
    series: Series,
    in_flight: i64,
    dirty: bool,
}

/// One route's share of `prefork_http_requests_total` and
/// `prefork_http_request_duration_seconds`.
#[derive(Default)]
struct RouteCounters {
    /// Requests by status code.
    statuses: Vec<(u16, u64)>,
    /// Cumulative: `buckets[i]` counts requests that took at most `SECONDS_BUCKETS[i]`.
    buckets: [u64; SECONDS_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl RouteCounters {
    fn record(&mut self, status: u16, seconds: f64) {
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.statuses.push((status, 1)),
        }
        for (n, b) in self.buckets.iter_mut().zip(SECONDS_BUCKETS) {
            if seconds <= b {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// Adds this route's series to `out`, named as [`observe`] names them; a bucket no request
    /// fell into has no series yet, as there.
    fn add_to(&self, route: &str, out: &mut Series) {
        let route = escape_label(route);
        for (status, n) in &self.statuses {
            *out.entry(format!(
                "prefork_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"
            ))
            .or_default() += *n as f64;
        }
        let name = "prefork_http_request_duration_seconds";
        for (n, b) in self.buckets.iter().zip(SECONDS_BUCKETS) {
            if *n > 0 {
                *out.entry(format!(
                    "{name}_bucket{{route=\"{route}\",le=\"{}\"}}",
                    fmt_le(b)
                ))
                .or_default() += *n as f64;
            }
        }
        if self.count > 0 {
            *out.entry(format!("{name}_bucket{{route=\"{route}\",le=\"+Inf\"}}"))
                .or_default() += self.count as f64;
            *out.entry(format!("{name}_sum{{route=\"{route}\"}}"))
                .or_default() += self.sum;
            *out.entry(format!("{name}_count{{route=\"{route}\"}}"))
                .or_default() += self.count as f64;
        }
    }
}

impl Inner {
    /// Every series of this worker, by full name.
    fn series(&self) -> Series {
        let mut out = self.series.clone();
        for (route, counters) in &self.routes {
            counters.add_to(route, &mut out);
        }
        out
    }
}

impl WorkerMetrics {
    pub(crate) fn new(dir: PathBuf, file: PathBuf) -> WorkerMetrics {
        WorkerMetrics {
            dir,
            file,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn started(&self) {
        let mut g = self.lock();
        g.in_flight += 1;
        g.dirty = true;
    }

    /// A finished request, with the observations the handler reported.
    pub(crate) fn finished(
        &self,
        route: &str,
        status: u16,
        seconds: f64,
        app_metrics: &[(String, f64)],
    ) {
        let mut g = self.lock();
        g.in_flight -= 1;
        g.dirty = true;
        match g.routes.get_mut(route) {
            Some(counters) => counters.record(status, seconds),
            None => {
                let mut counters = RouteCounters::default();
                counters.record(status, seconds);
                g.routes.insert(route.to_owned(), counters);
            }
        }
        for (name, value) in app_metrics {
            let (name, value) = (name.as_str(), *value);
            if !valid_name(name) || !value.is_finite() {
                continue;
            }
            let full = format!("app_{name}");
            if name.ends_with("_total") {
                *g.series.entry(full).or_default() += value;
            } else if name.ends_with("_seconds") {
                observe(&mut g.series, &full, "", value, &SECONDS_BUCKETS);
            } else if name.ends_with("_bytes") {
                observe(&mut g.series, &full, "", value, &BYTES_BUCKETS);
            }
        }
    }

    /// Writes the file if anything changed since the last write.
    pub(crate) fn flush(&self) -> std::io::Result<()> {
        let text = {
            let mut g = self.lock();
            if !g.dirty {
                return Ok(());
            }
            g.dirty = false;
            render_file(&g.series(), g.in_flight)
        };
        write_atomic(&self.dir, &self.file, &text)
    }

    /// The whole server's metrics: every file in the directory, this worker's live counters in
    /// place of its own file.
    pub(crate) fn render_all(&self) -> String {
        let mut total = read_dir_series(&self.dir, Some(&self.file));
        let g = self.lock();
        merge(&mut total, &g.series());
        *total
            .entry("prefork_http_requests_in_flight".to_owned())
            .or_default() += g.in_flight as f64;
        drop(g);
        render_prometheus(&total)
    }
}

fn render_file(series: &Series, in_flight: i64) -> String {
    let mut out = String::new();
    for (k, v) in series {
        out.push_str(&format!("{k} {v}\n"));
    }
    out.push_str(&format!("prefork_http_requests_in_flight {in_flight}\n"));
    out
}

pub(crate) fn write_atomic(dir: &Path, file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

pub(crate) fn parse_file(text: &str) -> Series {
    let mut out = Series::new();
    for line in text.lines() {
        if let Some((k, v)) = line.rsplit_once(' ')
            && let Ok(v) = v.parse::<f64>()
        {
            *out.entry(k.to_owned()).or_default() += v;
        }
    }
    out
}

pub(crate) fn merge(into: &mut Series, from: &Series) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// Sums every `*.prom` file in `dir` except `skip`.
pub(crate) fn read_dir_series(dir: &Path, skip: Option<&Path>) -> Series {
    let mut total = Series::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return total;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "prom") || Some(path.as_path()) == skip {
            continue;
        }
        // A file renamed away between listing and reading is simply skipped.
        if let Ok(text) = std::fs::read_to_string(&path) {
            merge(&mut total, &parse_file(&text));
        }
    }
    total
}

/// `name{labels}` -> (family for # TYPE, sort key).
fn family(series: &str) -> (String, String, f64) {
    let (name, labels) = series.split_once('{').unwrap_or((series, ""));
    let mut fam = name;
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(stem) = name.strip_suffix(suffix)
            && (stem.ends_with("_seconds") || stem.ends_with("_bytes"))
        {
            fam = stem;
        }
    }
    // Buckets in increasing `le` order, +Inf last.
    let (rest, le) = match labels.split_once("le=\"") {
        Some((before, after)) => {
            let v = after.split('"').next().unwrap_or("");
            let le = if v == "+Inf" {
                f64::INFINITY
            } else {
                v.parse().unwrap_or(f64::INFINITY)
            };
            (format!("{name}{{{before}"), le)
        }
        None => (series.to_owned(), f64::NEG_INFINITY),
    };
    (fam.to_owned(), rest, le)
}

pub(crate) fn render_prometheus(total: &Series) -> String {
    let mut rows: Vec<(String, String, f64, &String, f64)> = total
        .iter()
        .map(|(k, v)| {
            let (fam, key, le) = family(k);
            (fam, key, le, k, *v)
        })
        .collect();
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| a.2.total_cmp(&b.2))
    });
    let mut out = String::new();
    let mut last_family = String::new();
    for (fam, _, _, series, value) in rows {
        if fam != last_family {
            let kind = if fam.ends_with("_seconds") || fam.ends_with("_bytes") {
                "histogram"
            } else if fam.ends_with("_in_flight") {
                "gauge"
            } else {
                "counter"
            };
            out.push_str(&format!("# TYPE {fam} {kind}\n"));
            last_family = fam;
        }
        out.push_str(&format!("{series} {value}\n"));
    }
    out
}

/// The master's side: worker restarts by reason, and the counters of workers that have exited.
pub(crate) struct MasterMetrics {
    dir: PathBuf,
    file: PathBuf,
    series: Series,
}

impl MasterMetrics {
    /// A fresh start (not a USR2 child) clears what a previous run left behind.
    pub(crate) fn open(dir: &Path, master_pid: i32, fresh: bool) -> std::io::Result<MasterMetrics> {
        if fresh && dir.is_dir() {
            for e in std::fs::read_dir(dir)?.flatten() {
                if e.path().extension().is_some_and(|x| x == "prom") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        std::fs::create_dir_all(dir)?;
        Ok(MasterMetrics {
            dir: dir.to_path_buf(),
            file: dir.join(format!("master-{master_pid}.prom")),
            series: Series::new(),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn worker_file(&self, master_pid: i32, age: u64) -> PathBuf {
        self.dir.join(format!("worker-{master_pid}-{age}.prom"))
    }

    pub(crate) fn restart(&mut self, reason: &str) -> std::io::Result<()> {
        *self
            .series
            .entry(format!(
                "prefork_worker_restarts_total{{reason=\"{reason}\"}}"
            ))
            .or_default() += 1.0;
        self.save()
    }

    /// Folds an exited worker's file into ours (written first, so a reader may briefly count it
    /// twice but never loses it), then removes it.
    pub(crate) fn absorb(&mut self, worker_file: &Path) -> std::io::Result<()> {
        let Ok(text) = std::fs::read_to_string(worker_file) else {
            return Ok(());
        };
        let mut s = parse_file(&text);
        // An exited worker has nothing in flight, whatever its last write said.
        s.remove("prefork_http_requests_in_flight");
        merge(&mut self.series, &s);
        self.save()?;
        std::fs::remove_file(worker_file)
    }

    fn save(&self) -> std::io::Result<()> {
        write_atomic(&self.dir, &self.file, &render_file(&self.series, 0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The per-route counters name and sum their series exactly as building each series name
    /// per request did (the file format other workers and the master read).
    #[test]
    fn route_counters_make_the_series_of_one_series_per_observation() {
        let requests: [(&str, u16, f64); 7] = [
            ("/ping", 200, 0.000_031),
            ("/ping", 200, 0.2),
            ("/api/session/status", 404, 0.011),
            ("/ping", 503, 301.0),
            ("odd \"route\"\\", 200, 0.05),
            ("/api/session/status", 200, 0.004_9),
            ("/api/session/status", 200, 7.5),
        ];
        let m = WorkerMetrics::new(PathBuf::new(), PathBuf::new());
        let mut expected = Series::new();
        for (route, status, seconds) in requests {
            m.started();
            m.finished(route, status, seconds, &[]);
            let route = escape_label(route);
            *expected
                .entry(format!(
                    "prefork_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"
                ))
                .or_default() += 1.0;
            observe(
                &mut expected,
                "prefork_http_request_duration_seconds",
                &format!("route=\"{route}\""),
                seconds,
                &SECONDS_BUCKETS,
            );
        }
        let got = m.lock().series();
        assert_eq!(got, expected);
        assert_eq!(
            render_file(&got, 0),
            render_file(&expected, 0),
            "the same bytes in the file"
        );
    }

    #[test]
    fn workers_and_master_sum_through_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut master = MasterMetrics::open(dir.path(), 1, true).unwrap();
        let a = WorkerMetrics::new(dir.path().into(), master.worker_file(1, 1));
        let b = WorkerMetrics::new(dir.path().into(), master.worker_file(1, 2));
        for _ in 0..3 {
            a.started();
            a.finished("/ping", 200, 0.002, &[]);
        }
        b.started();
        b.finished(
            "/run_analysis",
            200,
            2.0,
            &[
                ("analysis_runs_total".to_owned(), 1.0),
                ("analysis_seconds".to_owned(), 2.5),
                ("Bad".to_owned(), 1.0),
                ("nan_total".to_owned(), f64::NAN),
            ],
        );
        b.started();
        a.flush().unwrap();
        b.flush().unwrap();
        master.restart("max_requests").unwrap();
        master.absorb(&master.worker_file(1, 1)).unwrap();
        let text = b.render_all();
        assert!(
            text.contains("prefork_http_requests_total{route=\"/ping\",status=\"200\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("app_analysis_runs_total 1\n"), "{text}");
        assert!(
            text.contains("app_analysis_seconds_bucket{le=\"5\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("app_analysis_seconds_count 1\n"), "{text}");
        assert!(
            text.contains("prefork_http_requests_in_flight 1\n"),
            "{text}"
        );
        assert!(text.contains("prefork_worker_restarts_total{reason=\"max_requests\"} 1\n"));
        assert!(text.contains("# TYPE prefork_http_request_duration_seconds histogram\n"));
        let le: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("prefork_http_request_duration_seconds_bucket{route=\"/ping\"")
            })
            .collect();
        assert!(le.last().unwrap().contains("+Inf"), "{le:?}");
        assert!(le[0].contains("le=\"0.005\"} 3"), "{le:?}");
        assert!(!text.contains("Bad"));
    }
}
