//! A deliberately small HTTP/1.1 client over `std::net::TcpStream`: one new connection per
//! request (`Connection: close`), so successive requests of a user are spread over the server's
//! workers and a killed worker can only break the requests it was serving. Failures are split
//! into "no answer" (connection level: the request may or may not have been applied) and
//! answers with any status, which is what the retry policy and the loss accounting need.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Why a request got no complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The TCP connection could not be made (nothing was sent).
    Connect(String),
    /// Sending, or reading the answer, failed: reset, EOF, truncated body, timeout.
    Exchange(String),
    /// Bytes arrived but they are not an HTTP/1.1 answer.
    Malformed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(m) => write!(f, "connect: {m}"),
            Failure::Exchange(m) => write!(f, "exchange: {m}"),
            Failure::Malformed(m) => write!(f, "malformed answer: {m}"),
        }
    }
}

/// One complete answer.
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

    /// The body as JSON, `None` when it is not.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The answering worker, from the `x-worker-pid` header or a `worker_pid` JSON field.
    pub fn worker_pid(&self) -> Option<i32> {
        self.header("x-worker-pid")
            .and_then(|v| v.trim().parse().ok())
            .or_else(|| {
                self.json()
                    .and_then(|v| v.get("worker_pid").and_then(serde_json::Value::as_i64))
                    .and_then(|p| i32::try_from(p).ok())
            })
    }
}

/// What to send.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub session: Option<&'a str>,
    /// Content type and bytes.
    pub body: Option<(&'a str, &'a [u8])>,
}

/// Timeouts of one exchange.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Per read/write call; an analysis on a busy machine needs a long one.
    pub io: Duration,
}

/// Sends one request on a fresh connection and reads the answer to EOF.
pub fn send(addr: SocketAddr, req: &Request<'_>, timeouts: Timeouts) -> Result<Reply, Failure> {
    let mut stream = TcpStream::connect_timeout(&addr, timeouts.connect)
        .map_err(|e| Failure::Connect(e.to_string()))?;
    let exchange = |e: std::io::Error| Failure::Exchange(e.to_string());
    stream
        .set_read_timeout(Some(timeouts.io))
        .map_err(exchange)?;
    stream
        .set_write_timeout(Some(timeouts.io))
        .map_err(exchange)?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: prefork-load\r\n",
        req.method, req.path
    );
    if let Some(sid) = req.session {
        head.push_str(&format!("X-Session-ID: {sid}\r\n"));
    }
    match req.body {
        Some((content_type, bytes)) => head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            bytes.len()
        )),
        None => head.push_str("Content-Length: 0\r\n\r\n"),
    }
    let mut out = head.into_bytes();
    if let Some((_, bytes)) = req.body {
        out.extend_from_slice(bytes);
    }
    stream.write_all(&out).map_err(exchange)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(exchange)?;
    parse(&raw)
}

/// Parses a whole `Connection: close` answer; a body shorter than announced is a failure.
pub fn parse(raw: &[u8]) -> Result<Reply, Failure> {
    if raw.is_empty() {
        return Err(Failure::Exchange(
            "closed before any byte of the answer".into(),
        ));
    }
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(Failure::Exchange(format!(
            "closed inside the answer's head after {} bytes",
            raw.len()
        )));
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| Failure::Malformed(format!("status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = find("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| Failure::Malformed(format!("content-length {len:?}")))?;
        if rest.len() < len {
            return Err(Failure::Exchange(format!(
                "body truncated: {} of {len} bytes",
                rest.len()
            )));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Err(Failure::Exchange(
                "chunked body truncated (size line)".into(),
            ));
        };
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| Failure::Malformed(format!("chunk size {size_hex:?}")))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(Failure::Exchange("chunked body truncated (data)".into()));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A `multipart/form-data` body of file fields: (field, file name, bytes). Returns the content
/// type (with its boundary) and the body.
pub fn multipart(files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "prefork-load-boundary-7d1c0a9e4b";
    let mut body = Vec::new();
    for (field, name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let r =
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Worker-Pid: 42\r\n\r\nhi").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));
        assert_eq!(r.worker_pid(), Some(42));
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abc");
    }

    #[test]
    fn truncated_or_empty_answers_are_failures() {
        assert!(matches!(parse(b""), Err(Failure::Exchange(_))));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi"),
            Err(Failure::Exchange(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nCont"),
            Err(Failure::Exchange(_))
        ));
        assert!(matches!(
            parse(b"SSH-2.0\r\n\r\n"),
            Err(Failure::Malformed(_))
        ));
    }

    #[test]
    fn exchanges_with_a_real_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            text
        });
        let timeouts = Timeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_secs(5),
        };
        let reply = send(
            addr,
            &Request {
                method: "POST",
                path: "/x",
                session: Some("abc"),
                body: Some(("application/json", b"{}")),
            },
            timeouts,
        )
        .unwrap();
        assert_eq!(reply.status, 201);
        let seen = server.join().unwrap();
        assert!(seen.starts_with("POST /x HTTP/1.1\r\n"), "{seen}");
        assert!(seen.contains("X-Session-ID: abc\r\n"), "{seen}");
        assert!(seen.ends_with("\r\n\r\n{}"), "{seen}");
    }
}
