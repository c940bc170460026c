//! The chat tests' steps (`tests/it/chat_*.rs`): sessions, uploads, chat messages and SSE
//! streams against the real binary, each request on a new connection so the messages spread
//! over the workers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prefork_loadgen::http::{self, Body, Part, Reply, Request};
use serde_json::Value;

use super::Answer;

pub fn fixture(rel: &str) -> PathBuf {
    super::fixture_path(rel)
}

/// Parses a whole response read to EOF; panics on a truncated or malformed one.
pub fn parse_reply(raw: &[u8]) -> Reply {
    http::parse(raw)
        .unwrap_or_else(|e| panic!("bad response ({e}): {}", String::from_utf8_lossy(raw)))
}

/// One request on a fresh connection (`Connection: close`), read to EOF.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    session: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    let headers: Vec<(&str, &str)> = session.map(|s| ("X-Session-ID", s)).into_iter().collect();
    let body = match content_type {
        Some(ct) => Body::Sized(ct, body),
        None if body.is_empty() => Body::Empty,
        None => Body::Sized("application/octet-stream", body),
    };
    super::request(addr, method, path, &headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

pub fn create_session(addr: SocketAddr) -> String {
    let r = request(addr, "POST", "/api/session", None, None, b"");
    assert_eq!(r.status, 201, "{}", r.text());
    r.json_body()["session_id"].as_str().unwrap().to_owned()
}

/// A multipart/form-data body of file fields `(field, file name, bytes)`.
pub fn multipart(fields: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let parts: Vec<Part<'_>> = fields
        .iter()
        .map(|(name, file, bytes)| Part::file(name, file, bytes))
        .collect();
    http::multipart(&parts)
}

/// Upload a ward table and shapefile zip into `session`.
pub fn upload(addr: SocketAddr, session: &str, csv: &Path, shapefile: &Path) -> Value {
    let csv_bytes = std::fs::read(csv).unwrap();
    let shp_bytes = std::fs::read(shapefile).unwrap();
    let (ct, body) = multipart(&[
        ("csv_file", "wards.csv", &csv_bytes),
        ("shapefile", "wards_shapefile.zip", &shp_bytes),
    ]);
    let r = request(
        addr,
        "POST",
        "/upload_both_files",
        Some(session),
        Some(&ct),
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json_body()
}

pub fn upload_kano(addr: SocketAddr, session: &str) -> Value {
    upload(
        addr,
        session,
        &fixture("kano/kano_wards.csv"),
        &fixture("kano/kano_wards_shapefile.zip"),
    )
}

pub fn upload_kano_population(addr: SocketAddr, session: &str) -> Value {
    let bytes = std::fs::read(fixture("reference/kano/kano_auto_population_input.csv")).unwrap();
    let (ct, body) = multipart(&[("population_file", "population.csv", &bytes)]);
    let r = request(
        addr,
        "POST",
        "/upload_population",
        Some(session),
        Some(&ct),
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json_body()
}

pub fn status(addr: SocketAddr, session: &str) -> Value {
    let r = request(addr, "GET", "/api/session/status", Some(session), None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json_body()
}

/// `POST /send_message`; panics unless 200.
pub fn send(addr: SocketAddr, session: &str, message: &str) -> Reply {
    let body = serde_json::json!({ "message": message }).to_string();
    let r = request(
        addr,
        "POST",
        "/send_message",
        Some(session),
        Some("application/json"),
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{message:?}: {}", r.text());
    r
}

pub fn tools_of(answer: &Value) -> Vec<String> {
    answer["tools_used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

/// One item of an SSE body.
#[derive(Debug, Clone, PartialEq)]
pub enum Sse {
    Comment(String),
    Data(Value),
}

/// Split an SSE body into comments and JSON data frames; panics on anything else.
pub fn parse_sse(body: &str) -> Vec<Sse> {
    assert!(
        body.ends_with("\n\n"),
        "stream does not end with a blank line: {body:?}"
    );
    body.split_terminator("\n\n")
        .map(|event| {
            assert!(!event.contains('\n'), "multi-line event {event:?}");
            if let Some(c) = event.strip_prefix(':') {
                Sse::Comment(c.trim().to_owned())
            } else if let Some(d) = event.strip_prefix("data: ") {
                Sse::Data(serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
            } else {
                panic!("not an SSE event: {event:?}")
            }
        })
        .collect()
}

/// An SSE request read incrementally: the raw (still chunked) bytes with their arrival times.
pub struct Stream {
    pub socket: TcpStream,
    pub received: Vec<(Instant, Vec<u8>)>,
}

pub fn open_stream(addr: SocketAddr, session: &str, message: &str) -> Stream {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let body = serde_json::json!({ "message": message }).to_string();
    let request = Request::new("POST", "/send_message_streaming")
        .headers(&[("X-Session-ID", session)])
        .body(Body::Sized("application/json", body.as_bytes()))
        .to_bytes("test", true);
    s.write_all(&request).unwrap();
    Stream {
        socket: s,
        received: Vec::new(),
    }
}

impl Stream {
    /// Reads once; false at EOF.
    pub fn read_some(&mut self) -> bool {
        let mut buf = vec![0u8; 64 * 1024];
        match self.socket.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.received.push((Instant::now(), buf[..n].to_vec()));
                true
            }
            Err(e) => panic!("stream read failed: {e}"),
        }
    }

    pub fn raw(&self) -> Vec<u8> {
        self.received.iter().flat_map(|(_, b)| b.clone()).collect()
    }

    pub fn read_to_end(&mut self) -> Reply {
        while self.read_some() {}
        parse_reply(&self.raw())
    }

    /// Reads until the raw bytes contain `needle` (or EOF).
    pub fn read_until(&mut self, needle: &str) -> bool {
        loop {
            if String::from_utf8_lossy(&self.raw()).contains(needle) {
                return true;
            }
            if !self.read_some() {
                return false;
            }
        }
    }
}
