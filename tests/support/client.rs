//! A small HTTP/1.1 client for the workflow tests: every request opens a NEW TCP connection
//! (`Connection: close`), so successive requests are spread over the server's workers; bodies are
//! kept as bytes (files are compared byte for byte); multipart uploads; a `Session` that carries
//! its id in the `X-Session-ID` header or the `session_id` cookie.
//!
//! Use from a test file with `mod common;` and `#[path = "common/http_client.rs"] mod http_client;`.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One answer, body as bytes.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// The pid of the worker that answered (the server's `x-worker-pid` header).
    pub fn worker_pid(&self) -> i32 {
        self.header("x-worker-pid")
            .unwrap_or_else(|| panic!("no x-worker-pid header: {:?}", self.headers))
            .parse()
            .unwrap()
    }

    /// Panics with the body unless the status is `want`.
    pub fn expect(self, want: u16, what: &str) -> Reply {
        assert_eq!(self.status, want, "{what}: {}", self.text());
        self
    }
}

/// How a request names its body.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    None,
    /// Content type and bytes, sent with Content-Length.
    Full(&'a str, &'a [u8]),
    /// Content type and bytes, sent with `Transfer-Encoding: chunked` (no length up front).
    Chunked(&'a str, &'a [u8]),
}

/// One request on a fresh connection, read to EOF.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Body<'_>,
) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nUser-Agent: prefork-workflow-tests\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let payload: Vec<u8> = match &body {
        Body::None => {
            head.push_str("Content-Length: 0\r\n\r\n");
            Vec::new()
        }
        Body::Full(ct, bytes) => {
            head.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                bytes.len()
            ));
            bytes.to_vec()
        }
        Body::Chunked(ct, bytes) => {
            head.push_str(&format!(
                "Content-Type: {ct}\r\nTransfer-Encoding: chunked\r\n\r\n"
            ));
            let mut out = Vec::new();
            for chunk in bytes.chunks(16 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
    };
    s.write_all(head.as_bytes())?;
    // A server that refuses a large body (413) may answer and close before reading all of it;
    // the answer is what matters, so a failed body write is not an error by itself.
    let wrote = s.write_all(&payload);
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    if raw.is_empty() {
        wrote?;
        read?;
    }
    parse(&raw)
}

/// Parses a whole response as read to EOF (chunked or sized body; a truncated body is an error).
pub fn parse(raw: &[u8]) -> std::io::Result<Reply> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("incomplete response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        reply.body = dechunk(rest).ok_or_else(|| bad("truncated chunked body"))?;
    } else if let Some(len) = reply
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        if rest.len() < len {
            return Err(bad("truncated body"));
        }
        reply.body = rest[..len].to_vec();
    } else {
        reply.body = rest.to_vec();
    }
    Ok(reply)
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// One part of a multipart/form-data body; `file_name` makes it a file field.
pub struct Part<'a> {
    pub name: &'a str,
    pub file_name: Option<&'a str>,
    pub bytes: &'a [u8],
}

pub fn file_part<'a>(name: &'a str, file_name: &'a str, bytes: &'a [u8]) -> Part<'a> {
    Part {
        name,
        file_name: Some(file_name),
        bytes,
    }
}

/// (content type, body) of a multipart/form-data form.
pub fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----prefork-workflow-test-7d2f9c";
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match p.file_name {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n",
                    p.name
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                    p.name
                )
                .as_bytes(),
            ),
        }
        body.extend_from_slice(p.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The repository's test fixtures.
pub fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// How a session's id travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carry {
    Header,
    Cookie,
}

/// A client of one session. Every call is a new connection.
#[derive(Clone, Debug)]
pub struct Session {
    pub addr: SocketAddr,
    pub id: String,
    pub carry: Carry,
}

impl Session {
    /// `POST /api/session`: a new session minted by the server.
    pub fn create(addr: SocketAddr) -> Session {
        let r = request(addr, "POST", "/api/session", &[], Body::None).unwrap();
        assert_eq!(r.status, 201, "create session: {}", r.text());
        let id = r.json()["session_id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(
            r.header("set-cookie")
                .is_some_and(|c| c.contains(&format!("session_id={id}"))),
            "{:?}",
            r.headers
        );
        Session {
            addr,
            id,
            carry: Carry::Header,
        }
    }

    pub fn with_carry(mut self, carry: Carry) -> Session {
        self.carry = carry;
        self
    }

    fn auth(&self) -> (&'static str, String) {
        match self.carry {
            Carry::Header => ("X-Session-ID", self.id.clone()),
            Carry::Cookie => ("Cookie", format!("theme=dark; session_id={}", self.id)),
        }
    }

    pub fn try_send(&self, method: &str, path: &str, body: Body<'_>) -> std::io::Result<Reply> {
        let (k, v) = self.auth();
        request(self.addr, method, path, &[(k, v.as_str())], body)
    }

    pub fn send(&self, method: &str, path: &str, body: Body<'_>) -> Reply {
        self.try_send(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Body::None)
    }

    pub fn post_json(&self, path: &str, json: &Value) -> Reply {
        let bytes = serde_json::to_vec(json).unwrap();
        self.send("POST", path, Body::Full("application/json", &bytes))
    }

    pub fn post_form(&self, path: &str, parts: &[Part<'_>]) -> Reply {
        let (ct, body) = multipart(parts);
        self.send("POST", path, Body::Full(&ct, &body))
    }

    /// `GET /api/session/status`, which must answer 200.
    pub fn status(&self) -> (i32, Value) {
        let r = self.get("/api/session/status").expect(200, "status");
        let v = r.json();
        assert_eq!(
            i64::from(r.worker_pid()),
            v["worker_pid"].as_i64().unwrap(),
            "worker_pid field and header disagree"
        );
        (r.worker_pid(), v)
    }

    /// Uploads a ward table and an optional shapefile zip to `/upload_both_files`.
    pub fn upload(&self, csv: (&str, &[u8]), shapefile: Option<(&str, &[u8])>) -> Reply {
        let mut parts = vec![file_part("csv_file", csv.0, csv.1)];
        if let Some((name, bytes)) = shapefile {
            parts.push(file_part("shapefile", name, bytes));
        }
        self.post_form("/upload_both_files", &parts)
    }

    pub fn upload_kano(&self) -> Reply {
        let csv = fixture("kano/kano_wards.csv");
        let shp = fixture("kano/kano_wards_shapefile.zip");
        self.upload(
            ("kano_wards.csv", &csv),
            Some(("kano_wards_shapefile.zip", &shp)),
        )
    }

    pub fn upload_ilorin(&self) -> Reply {
        let csv = fixture("ilorin/ilorin_wards.csv");
        let shp = fixture("ilorin/ilorin_wards_shapefile.zip");
        self.upload(
            ("ilorin_wards.csv", &csv),
            Some(("ilorin_wards_shapefile.zip", &shp)),
        )
    }

    pub fn upload_population(&self, name: &str, bytes: &[u8]) -> Reply {
        self.post_form(
            "/upload_population",
            &[file_part("population_file", name, bytes)],
        )
    }

    pub fn upload_kano_population(&self) -> Reply {
        let pop = fixture("reference/kano/kano_auto_population_input.csv");
        self.upload_population("kano_auto_population_input.csv", &pop)
    }

    pub fn run_analysis(&self, body: &Value) -> Reply {
        self.post_json("/run_analysis", body)
    }

    pub fn plan_itn(&self, body: &Value) -> Reply {
        self.post_json("/api/itn/update-distribution", body)
    }

    /// `GET /export/download/<own id>/<file>`.
    pub fn download(&self, file: &str) -> Reply {
        self.get(&format!("/export/download/{}/{file}", self.id))
    }

    /// Polls status on new connections until `workers` distinct worker pids have answered.
    /// EVERY answer (not just the last) must satisfy `check`: this asserts what each worker
    /// reports now, it does not wait for a state to appear. Returns pid -> status.
    pub fn status_from_workers(
        &self,
        workers: usize,
        deadline: Duration,
        check: impl Fn(&Value) -> Result<(), String>,
    ) -> BTreeMap<i32, Value> {
        let end = Instant::now() + deadline;
        let mut seen = BTreeMap::new();
        let mut asked = 0;
        while seen.len() < workers {
            assert!(
                Instant::now() < end,
                "only {} distinct workers answered in {asked} requests ({:?})",
                seen.len(),
                seen.keys().collect::<Vec<_>>()
            );
            let (pid, v) = self.status();
            asked += 1;
            if let Err(why) = check(&v) {
                panic!("worker {pid} reports a wrong state ({why}): {v}");
            }
            seen.insert(pid, v);
        }
        seen
    }
}

/// The distinct worker pids among replies.
pub fn pids(replies: &[&Reply]) -> std::collections::BTreeSet<i32> {
    replies.iter().map(|r| r.worker_pid()).collect()
}

/// Names of every entry under `dir`, recursively, relative to it (sorted).
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The WardName column of a CSV (first column named WardName, no quoting inside names).
pub fn ward_names(csv: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(csv);
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_owned())
        .collect();
    let col = header
        .iter()
        .position(|h| h == "WardName")
        .unwrap_or_else(|| panic!("no WardName column in {header:?}"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .nth(col)
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_owned()
        })
        .collect()
}

/// Ward names compared the way the ward matcher does before fuzzy matching: case, spaces and
/// punctuation ignored ("Bakin-Ruwa" in a CSV is "Bakin Ruwa" in the shapefile).
pub fn normalize_ward(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The normalized ward names of a fixture CSV.
pub fn fixture_wards(rel: &str) -> BTreeSet<String> {
    ward_names(&fixture(rel))
        .iter()
        .map(|w| normalize_ward(w))
        .collect()
}

/// `names` (results of an analysis) come from the dataset whose wards are `own`: none is a ward
/// of `other`, and at least half are wards of `own` (the rest are shapefile spellings that fuzzy
/// matching picked).
pub fn wards_from(names: &[String], own: &BTreeSet<String>, other: &BTreeSet<String>) -> bool {
    let normalized: Vec<String> = names.iter().map(|n| normalize_ward(n)).collect();
    let mine = normalized.iter().filter(|n| own.contains(*n)).count();
    !names.is_empty()
        && normalized
            .iter()
            .all(|n| !other.contains(n) || own.contains(n))
        && mine * 2 >= names.len()
}
