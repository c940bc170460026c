//! The tests' side of the workspace's one HTTP/1.1 client (`prefork_loadgen::http`): every call
//! here opens a NEW connection (`Connection: close`), so successive requests are spread over the
//! server's workers; bodies are kept as bytes (files are compared byte for byte). [`Answer`] adds
//! the assertions tests make on a reply, and [`Session`] carries a session id in the
//! `X-Session-ID` header or the `session_id` cookie.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use prefork_loadgen::http::{self, Body, Failure, Part, Reply, Request, Timeouts};
use serde_json::Value;

use super::fixture;

/// Generous: an analysis on a loaded two-core box takes a while.
pub const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(10),
    io: Duration::from_secs(120),
};

/// What tests assert on a reply, panicking with the body when it is not so.
pub trait Answer {
    /// The body as JSON.
    fn json_body(&self) -> Value;
    /// The pid of the worker that answered (the server's `x-worker-pid` header).
    fn worker(&self) -> i32;
    /// The reply itself when its status is `want`.
    fn expect(self, want: u16, what: &str) -> Reply;
}

impl Answer for Reply {
    fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    fn worker(&self) -> i32 {
        self.worker_pid()
            .unwrap_or_else(|| panic!("no x-worker-pid header: {:?}", self.headers))
    }

    fn expect(self, want: u16, what: &str) -> Reply {
        assert_eq!(self.status, want, "{what}: {}", self.text());
        self
    }
}

/// One request on a fresh connection, read to EOF.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Body<'_>,
) -> Result<Reply, Failure> {
    http::send(
        addr,
        &Request::new(method, path).headers(headers).body(body),
        TIMEOUTS,
    )
}

/// One GET on a fresh connection, with the User-Agent the access-log tests look for.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<Reply, Failure> {
    request(
        addr,
        "GET",
        path,
        &[("User-Agent", "prefork-tests")],
        Body::Empty,
    )
}

/// The same over a unix socket.
pub fn http_get_unix(socket: &Path, path: &str) -> Result<Reply, Failure> {
    http::send_unix(socket, &Request::get(path), TIMEOUTS)
}

/// Sends `request` as is on a fresh connection and reads the answer to EOF (so the request
/// should say `Connection: close`, or the server must close).
pub fn raw_request(addr: SocketAddr, request: &[u8]) -> Result<Reply, Failure> {
    http::send_raw(addr, request, TIMEOUTS)
}

/// `GET /metrics` as (series, value) pairs, comments skipped.
pub fn metrics_of(addr: SocketAddr) -> Option<Vec<(String, f64)>> {
    let r = http_get(addr, "/metrics").ok()?;
    (r.status == 200).then(|| {
        r.text()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect()
    })
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
        let r = request(addr, "POST", "/api/session", &[], Body::Empty).unwrap();
        assert_eq!(r.status, 201, "create session: {}", r.text());
        let id = r.json_body()["session_id"].as_str().unwrap().to_owned();
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

    pub fn try_send(&self, method: &str, path: &str, body: Body<'_>) -> Result<Reply, Failure> {
        let (k, v) = self.auth();
        request(self.addr, method, path, &[(k, v.as_str())], body)
    }

    pub fn send(&self, method: &str, path: &str, body: Body<'_>) -> Reply {
        self.try_send(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Body::Empty)
    }

    pub fn post_json(&self, path: &str, json: &Value) -> Reply {
        let bytes = serde_json::to_vec(json).unwrap();
        self.send("POST", path, Body::Sized("application/json", &bytes))
    }

    pub fn post_form(&self, path: &str, parts: &[Part<'_>]) -> Reply {
        let (ct, body) = http::multipart(parts);
        self.send("POST", path, Body::Sized(&ct, &body))
    }

    /// `GET /api/session/status`, which must answer 200.
    pub fn status(&self) -> (i32, Value) {
        let r = self.get("/api/session/status").expect(200, "status");
        let v = r.json_body();
        assert_eq!(
            i64::from(r.worker()),
            v["worker_pid"].as_i64().unwrap(),
            "worker_pid field and header disagree"
        );
        (r.worker(), v)
    }

    /// Uploads a ward table and an optional shapefile zip to `/upload_both_files`.
    pub fn upload(&self, csv: (&str, &[u8]), shapefile: Option<(&str, &[u8])>) -> Reply {
        let mut parts = vec![Part::file("csv_file", csv.0, csv.1)];
        if let Some((name, bytes)) = shapefile {
            parts.push(Part::file("shapefile", name, bytes));
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
            &[Part::file("population_file", name, bytes)],
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
    replies.iter().map(|r| r.worker()).collect()
}
