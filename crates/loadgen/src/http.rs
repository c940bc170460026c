//! The workspace's one HTTP/1.1 client, over `std` sockets only: the load tool and the
//! repository's integration tests (`tests/`) both use it.
//!
//! - [`send`] (TCP), [`send_unix`] (unix socket) and [`send_raw`] (bytes written as they are)
//!   open a NEW connection per request with `Connection: close` and read the answer to EOF, so
//!   successive requests are spread over the server's workers and a killed worker can only break
//!   the requests it was serving.
//! - [`Connection`] keeps one connection alive and reads exactly one answer per request.
//!
//! Parsing is strict (RFC 9112): a status line `HTTP/1.x NNN reason`, field lines `name: value`
//! with a token name (no folding, no bare CR or LF), one agreed `Content-Length` or
//! `Transfer-Encoding: chunked` (never both), chunk lines and the CRLF after every chunk checked,
//! interim 1xx answers skipped, no bytes after the end of an answer read to EOF. Failures are
//! split into "no answer" (connection level: the request may or may not have been applied) and
//! answers with any status, which is what the load tool's retry policy and loss accounting need.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// Why a request got no complete answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The connection could not be made (nothing was sent).
    #[error("connect: {0}")]
    Connect(String),
    /// The connection ended (closed, reset, timed out) before any byte of the answer arrived; on
    /// a reused keep-alive connection this is the server closing it idle (RFC 9112 9.3.1).
    #[error("no answer: {0}")]
    NoAnswer(String),
    /// The answer started but did not complete: reset, EOF, truncated body, timeout.
    #[error("exchange: {0}")]
    Exchange(String),
    /// Bytes arrived but they are not a valid HTTP/1.1 answer.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

/// One complete answer (after any interim 1xx answers).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code (the final one, never 1xx).
    pub status: u16,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    /// Field lines in order, names as sent, values without surrounding whitespace.
    pub headers: Vec<(String, String)>,
    /// The body with any chunked framing removed.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, `None` when it is not.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The answering worker, from the server's `x-worker-pid` header (test builds only).
    pub fn worker_pid(&self) -> Option<i32> {
        self.header("x-worker-pid")
            .and_then(|v| v.trim().parse().ok())
    }

    /// Whether the server closes the connection after this answer.
    pub fn closes_connection(&self) -> bool {
        let tokens =
            |v: &str, want: &str| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(want));
        let listed = |want: &str| {
            self.headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("connection") && tokens(v, want))
        };
        listed("close") || (self.version == "HTTP/1.0" && !listed("keep-alive"))
    }
}

/// How a request carries its body.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// No body (`Content-Length: 0` on methods that may carry one).
    Empty,
    /// Content type and bytes, sent with `Content-Length`.
    Sized(&'a str, &'a [u8]),
    /// Content type and bytes, sent with `Transfer-Encoding: chunked` (no length up front).
    Chunked(&'a str, &'a [u8]),
}

/// What to send. `Host`, `User-Agent` and the framing fields are added unless `headers` has them.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ... (sent as is, so tests can send invalid methods).
    pub method: &'a str,
    /// The request target: `/path?query`.
    pub path: &'a str,
    /// Extra header fields in order; a `Host`, `User-Agent`, `Content-Length` or
    /// `Transfer-Encoding` here replaces the one the client would add.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body and its framing.
    pub body: Body<'a>,
}

/// The `User-Agent` of requests that do not name one.
pub const USER_AGENT: &str = "prefork-client";

impl<'a> Request<'a> {
    /// A request without extra headers and without a body.
    pub fn new(method: &'a str, path: &'a str) -> Request<'a> {
        Request {
            method,
            path,
            headers: &[],
            body: Body::Empty,
        }
    }

    /// A `GET` of `path` (`/path?query`).
    pub fn get(path: &'a str) -> Request<'a> {
        Request::new("GET", path)
    }

    /// The same request with these header fields.
    pub fn headers(self, headers: &'a [(&'a str, &'a str)]) -> Request<'a> {
        Request { headers, ..self }
    }

    /// The same request with this body.
    pub fn body(self, body: Body<'a>) -> Request<'a> {
        Request { body, ..self }
    }

    /// The request on the wire; `close` asks the server to close the connection after answering.
    pub fn to_bytes(&self, host: &str, close: bool) -> Vec<u8> {
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !has("host") {
            head.push_str(&format!("Host: {host}\r\n"));
        }
        if close && !has("connection") {
            head.push_str("Connection: close\r\n");
        }
        if !has("user-agent") {
            head.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
        }
        for (k, v) in self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let mut out = Vec::new();
        match self.body {
            Body::Empty => {
                if !matches!(self.method, "GET" | "HEAD" | "DELETE" | "OPTIONS") {
                    head.push_str("Content-Length: 0\r\n");
                }
                head.push_str("\r\n");
                out.extend_from_slice(head.as_bytes());
            }
            Body::Sized(content_type, bytes) => {
                head.push_str(&format!(
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    bytes.len()
                ));
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(bytes);
            }
            Body::Chunked(content_type, bytes) => {
                head.push_str(&format!(
                    "Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
                ));
                out.extend_from_slice(head.as_bytes());
                for chunk in bytes.chunks(16 * 1024) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        out
    }
}

/// Timeouts of one exchange.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For the TCP connect.
    pub connect: Duration,
    /// Per read/write call; an analysis on a busy machine needs a long one.
    pub io: Duration,
}

/// Sends one request on a fresh TCP connection (`Connection: close`) and reads the answer to EOF.
pub fn send(addr: SocketAddr, req: &Request<'_>, timeouts: Timeouts) -> Result<Reply, Failure> {
    let stream = connect(addr, timeouts)?;
    exchange(stream, &req.to_bytes(&addr.to_string(), true), req.method)
}

/// The same over a unix socket.
pub fn send_unix(socket: &Path, req: &Request<'_>, timeouts: Timeouts) -> Result<Reply, Failure> {
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| Failure::Connect(format!("{}: {e}", socket.display())))?;
    let setup = |e: std::io::Error| Failure::Connect(e.to_string());
    stream.set_read_timeout(Some(timeouts.io)).map_err(setup)?;
    stream.set_write_timeout(Some(timeouts.io)).map_err(setup)?;
    exchange(stream, &req.to_bytes("localhost", true), req.method)
}

/// Writes `request` exactly as given on a fresh connection and reads the answer to EOF (so the
/// request should say `Connection: close`, or the server must close).
pub fn send_raw(addr: SocketAddr, request: &[u8], timeouts: Timeouts) -> Result<Reply, Failure> {
    let stream = connect(addr, timeouts)?;
    let method = request.split(|b| *b == b' ').next().unwrap_or_default();
    exchange(stream, request, &String::from_utf8_lossy(method))
}

fn connect(addr: SocketAddr, timeouts: Timeouts) -> Result<TcpStream, Failure> {
    let stream = TcpStream::connect_timeout(&addr, timeouts.connect)
        .map_err(|e| Failure::Connect(e.to_string()))?;
    let setup = |e: std::io::Error| Failure::Connect(e.to_string());
    stream.set_read_timeout(Some(timeouts.io)).map_err(setup)?;
    stream.set_write_timeout(Some(timeouts.io)).map_err(setup)?;
    Ok(stream)
}

fn exchange(mut stream: impl Read + Write, request: &[u8], method: &str) -> Result<Reply, Failure> {
    // A server that refuses a large body (413) may answer and close before reading all of it:
    // the answer is what matters, so a failed write is only reported when nothing came back.
    let wrote = stream.write_all(request);
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    match (raw.is_empty(), wrote, read) {
        (true, Err(e), _) => Err(Failure::NoAnswer(format!("sending the request: {e}"))),
        (true, Ok(()), Err(e)) => Err(Failure::NoAnswer(e.to_string())),
        // A complete answer followed by a reset (the server closed with our body unread) is
        // still the answer; an incomplete one is reported with the read error.
        (false, _, Err(e)) => parse_for(&raw, method).map_err(|failure| match failure {
            Failure::Malformed(_) => failure,
            _ => Failure::Exchange(format!("after {} bytes of the answer: {e}", raw.len())),
        }),
        _ => parse_for(&raw, method),
    }
}

/// Parses a whole answer read to EOF (`Connection: close`): exactly one answer, after any interim
/// 1xx answers, and nothing after it.
pub fn parse(raw: &[u8]) -> Result<Reply, Failure> {
    parse_for(raw, "GET")
}

/// [`parse`] for an answer to `method` (the answer to `HEAD` has no body).
pub fn parse_for(raw: &[u8], method: &str) -> Result<Reply, Failure> {
    let (reply, used) = parse_message(raw, true, method.eq_ignore_ascii_case("HEAD"))?
        .ok_or_else(|| Failure::Exchange("incomplete answer".into()))?;
    if used < raw.len() {
        return Err(Failure::Malformed(format!(
            "{} bytes after the end of the answer: {:?}",
            raw.len() - used,
            String::from_utf8_lossy(&raw[used..raw.len().min(used + 80)])
        )));
    }
    Ok(reply)
}

/// One kept-alive connection: requests without `Connection: close`, exactly one answer read per
/// request; bytes after an answer stay buffered for the next one.
pub struct Connection<S = TcpStream> {
    stream: S,
    host: String,
    buf: Vec<u8>,
    eof: bool,
}

impl Connection<TcpStream> {
    /// Connects to `addr` for several requests on one keep-alive connection.
    pub fn open(addr: SocketAddr, timeouts: Timeouts) -> Result<Connection<TcpStream>, Failure> {
        Ok(Connection::over(
            connect(addr, timeouts)?,
            &addr.to_string(),
        ))
    }
}

impl<S: Read + Write> Connection<S> {
    /// A connection over a stream the caller opened (and set timeouts on).
    pub fn over(stream: S, host: &str) -> Connection<S> {
        Connection {
            stream,
            host: host.to_owned(),
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Sends `req` (keep-alive) and reads its answer.
    pub fn send(&mut self, req: &Request<'_>) -> Result<Reply, Failure> {
        self.write_raw(&req.to_bytes(&self.host, false))?;
        self.read_reply(req.method)
    }

    /// Writes bytes as they are (a hand-made or partial request).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| Failure::NoAnswer(format!("sending the request: {e}")))
    }

    /// Reads the next answer (to a request with `method`).
    pub fn read_reply(&mut self, method: &str) -> Result<Reply, Failure> {
        let head_only = method.eq_ignore_ascii_case("HEAD");
        loop {
            if let Some((reply, used)) = parse_message(&self.buf, self.eof, head_only)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            self.fill()?;
        }
    }

    /// Reads until the server closes the connection; bytes arriving first are a failure.
    pub fn expect_close(&mut self) -> Result<(), Failure> {
        while !self.eof {
            self.fill()?;
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Failure::Malformed(format!(
                "{} unexpected bytes before the close: {:?}",
                self.buf.len(),
                String::from_utf8_lossy(&self.buf[..self.buf.len().min(80)])
            )))
        }
    }

    /// The underlying stream.
    pub fn stream(&mut self) -> &mut S {
        &mut self.stream
    }

    fn fill(&mut self) -> Result<(), Failure> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                Ok(())
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) if self.buf.is_empty() => Err(Failure::NoAnswer(e.to_string())),
            Err(e) => Err(Failure::Exchange(format!(
                "after {} bytes of the answer: {e}",
                self.buf.len()
            ))),
        }
    }
}

/// A head longer than this is refused (the server's own limits are far below it).
const MAX_HEAD: usize = 256 * 1024;

/// Parses the answer at the start of `buf`: `Ok(None)` = more bytes are needed (never when
/// `eof`), otherwise the answer and how many bytes it used.
fn parse_message(
    buf: &[u8],
    eof: bool,
    head_only: bool,
) -> Result<Option<(Reply, usize)>, Failure> {
    let mut start = 0;
    loop {
        let rest = &buf[start..];
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            if rest.len() > MAX_HEAD {
                return Err(Failure::Malformed(format!("a head over {MAX_HEAD} bytes")));
            }
            if !eof {
                return Ok(None);
            }
            return Err(if buf.is_empty() {
                Failure::NoAnswer("closed before any byte of the answer".into())
            } else {
                Failure::Exchange(format!(
                    "closed inside the answer's head after {} bytes",
                    buf.len()
                ))
            });
        };
        let (version, status, headers) = parse_head(&rest[..head_end])?;
        let body_at = start + head_end + 4;
        // Interim answers (100 Continue, 103 Early Hints) come before the real one.
        if (100..200).contains(&status) && status != 101 {
            start = body_at;
            continue;
        }
        let mut reply = Reply {
            status,
            version,
            headers,
            body: Vec::new(),
        };
        let framing = framing(&reply, head_only)?;
        let body = &buf[body_at..];
        let used = match framing {
            Framing::None => 0,
            Framing::Length(len) => {
                if body.len() < len {
                    if !eof {
                        return Ok(None);
                    }
                    return Err(Failure::Exchange(format!(
                        "body truncated: {} of {len} bytes",
                        body.len()
                    )));
                }
                reply.body = body[..len].to_vec();
                len
            }
            Framing::Chunked => match dechunk(body)? {
                Some((data, used)) => {
                    reply.body = data;
                    used
                }
                None if !eof => return Ok(None),
                None => return Err(Failure::Exchange("chunked body truncated".into())),
            },
            Framing::UntilClose => {
                if !eof {
                    return Ok(None);
                }
                reply.body = body.to_vec();
                body.len()
            }
        };
        return Ok(Some((reply, body_at + used)));
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

type Head = (String, u16, Vec<(String, String)>);

fn parse_head(head: &[u8]) -> Result<Head, Failure> {
    let bad = |m: String| Failure::Malformed(m);
    // Field values may carry obs-text (bytes over 0x7f); names and the status line are checked.
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status_error = || bad(format!("status line {status_line:?}"));
    let (version, rest) = status_line.split_once(' ').ok_or_else(status_error)?;
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(status_error());
    }
    let (code, reason) = rest.split_once(' ').ok_or_else(status_error)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) || code.starts_with('0') {
        return Err(status_error());
    }
    if reason.chars().any(|c| c.is_control() && c != '\t') {
        return Err(status_error());
    }
    let status: u16 = code.parse().map_err(|_| status_error())?;
    let mut headers = Vec::new();
    for line in lines {
        headers.push(parse_field(line)?);
    }
    Ok((version.to_owned(), status, headers))
}

/// `name: value` with a token name; folded lines and stray CR/LF are refused.
fn parse_field(line: &str) -> Result<(String, String), Failure> {
    let bad = || Failure::Malformed(format!("field line {line:?}"));
    let (name, value) = line.split_once(':').ok_or_else(bad)?;
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(tchar) {
        return Err(bad());
    }
    let value = value.trim_matches([' ', '\t']);
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad());
    }
    Ok((name.to_owned(), value.to_owned()))
}

enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

/// How the body of `reply` is delimited (RFC 9112 6.3).
fn framing(reply: &Reply, head_only: bool) -> Result<Framing, Failure> {
    let bad = |m: String| Failure::Malformed(m);
    let named = |name: &str| -> Vec<&str> {
        reply
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let lengths = named("content-length");
    let encodings = named("transfer-encoding");
    let length = match lengths.as_slice() {
        [] => None,
        [first, others @ ..] => {
            if others.iter().any(|o| o != first)
                || first.is_empty()
                || !first.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad(format!("content-length {lengths:?}")));
            }
            Some(
                first
                    .parse::<usize>()
                    .map_err(|_| bad(format!("content-length {first:?}")))?,
            )
        }
    };
    let chunked = match encodings.as_slice() {
        [] => false,
        [only] if only.eq_ignore_ascii_case("chunked") => true,
        _ => return Err(bad(format!("transfer-encoding {encodings:?}"))),
    };
    if chunked && length.is_some() {
        return Err(bad(
            "both content-length and transfer-encoding (a smuggling hazard)".into(),
        ));
    }
    match reply.status {
        204 if chunked || length.is_some_and(|l| l > 0) => {
            Err(bad("a 204 answer with a body".into()))
        }
        304 if chunked => Err(bad("a 304 answer with a body".into())),
        204 | 304 => Ok(Framing::None),
        _ if head_only => Ok(Framing::None),
        _ if chunked => Ok(Framing::Chunked),
        _ => Ok(length.map_or(Framing::UntilClose, Framing::Length)),
    }
}

/// Decodes a chunked body at the start of `raw`: `Ok(None)` = incomplete, otherwise the data and
/// the bytes used (trailer fields included, checked and dropped).
fn dechunk(raw: &[u8]) -> Result<Option<(Vec<u8>, usize)>, Failure> {
    let bad = |m: String| Failure::Malformed(m);
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = find(&raw[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&raw[at..at + eol]);
        let size_hex = line
            .split(';')
            .next()
            .unwrap_or_default()
            .trim_end_matches([' ', '\t']);
        if size_hex.is_empty()
            || size_hex.len() > 15
            || !size_hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad(format!("chunk size line {line:?}")));
        }
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| bad(format!("chunk size {size_hex:?}")))?;
        at += eol + 2;
        if size == 0 {
            // Trailer fields, then the empty line.
            loop {
                let Some(eol) = find(&raw[at..], b"\r\n") else {
                    return Ok(None);
                };
                let line = &raw[at..at + eol];
                at += eol + 2;
                if line.is_empty() {
                    return Ok(Some((body, at)));
                }
                parse_field(&String::from_utf8_lossy(line))?;
            }
        }
        if raw.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&raw[at..at + size]);
        at += size;
        if &raw[at..at + 2] != b"\r\n" {
            return Err(bad(format!("no CRLF after a chunk of {size} bytes")));
        }
        at += 2;
    }
}

/// One part of a `multipart/form-data` body; `file_name` makes it a file field.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    /// The form field's name.
    pub name: &'a str,
    /// The uploaded file's name (`filename=`); `None` for a plain field.
    pub file_name: Option<&'a str>,
    /// The field's content.
    pub bytes: &'a [u8],
}

impl<'a> Part<'a> {
    /// A file field (sent as `application/octet-stream`).
    pub fn file(name: &'a str, file_name: &'a str, bytes: &'a [u8]) -> Part<'a> {
        Part {
            name,
            file_name: Some(file_name),
            bytes,
        }
    }

    /// A plain form field.
    pub fn text(name: &'a str, value: &'a str) -> Part<'a> {
        Part {
            name,
            file_name: None,
            bytes: value.as_bytes(),
        }
    }
}

/// A `multipart/form-data` body: (content type with its boundary, body). The boundary is chosen
/// so that it occurs in no part.
pub fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let mut boundary = String::from("prefork-form-boundary-7d1c0a9e4b");
    let mut n = 0u32;
    while parts
        .iter()
        .any(|p| find(p.bytes, boundary.as_bytes()).is_some())
    {
        n += 1;
        boundary = format!("prefork-form-boundary-7d1c0a9e4b-{n}");
    }
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match p.file_name {
            Some(f) => format!(
                "Content-Disposition: form-data; name=\"{}\"; filename=\"{f}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n",
                p.name
            ),
            None => format!(
                "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                p.name
            ),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(p.bytes);
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
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nab\r\n1\r\nc\r\n0\r\nX-T: 1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abc");
        // Close-delimited, an empty reason, an interim answer first.
        let r = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 201 \r\nA:b\r\n\r\nrest").unwrap();
        assert_eq!(
            (r.status, r.text().as_str(), r.header("a")),
            (201, "rest", Some("b"))
        );
        assert!(r.closes_connection());
        // No body on 204/304 or for HEAD, whatever the length says.
        let r = parse(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").unwrap();
        assert!(r.body.is_empty());
        let r = parse_for(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HEAD").unwrap();
        assert!(r.body.is_empty());
    }

    #[test]
    fn truncated_or_empty_answers_are_failures() {
        assert!(matches!(parse(b""), Err(Failure::NoAnswer(_))));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi"),
            Err(Failure::Exchange(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nCont"),
            Err(Failure::Exchange(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
            Err(Failure::Exchange(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"),
            Err(Failure::Exchange(_))
        ));
    }

    #[test]
    fn what_is_not_http_1_1_is_malformed() {
        let answers: [&[u8]; 16] = [
            b"SSH-2.0\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 200\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\nC: d\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nab",
            // Bytes after the end of an answer read to EOF.
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab",
        ];
        for raw in answers {
            let got = parse(raw);
            assert!(
                matches!(got, Err(Failure::Malformed(_))),
                "{:?}: {got:?}",
                String::from_utf8_lossy(raw)
            );
        }
        // Identical repeated lengths are one length.
        assert!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\na").is_ok()
        );
    }

    #[test]
    fn a_connection_reads_one_answer_per_request_and_keeps_the_rest() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n";
        let stream = std::io::Cursor::new(two.to_vec());
        let mut conn = Connection::over(ReadOnly(stream), "t");
        assert_eq!(conn.read_reply("GET").unwrap().body, b"a");
        assert_eq!(conn.read_reply("GET").unwrap().body, b"b");
        conn.expect_close().unwrap();
        assert!(matches!(conn.read_reply("GET"), Err(Failure::NoAnswer(_))));
    }

    struct ReadOnly(std::io::Cursor<Vec<u8>>);
    impl Read for ReadOnly {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            // One byte at a time: every split point of the input is exercised.
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }
    impl Write for ReadOnly {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn requests_are_framed() {
        let raw = Request::new("POST", "/u")
            .headers(&[("X-Session-ID", "abc")])
            .body(Body::Chunked("text/plain", b"hello"))
            .to_bytes("h", true);
        let text = String::from_utf8(raw).unwrap();
        assert!(
            text.starts_with("POST /u HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"),
            "{text}"
        );
        assert!(text.contains("X-Session-ID: abc\r\n"), "{text}");
        assert!(
            text.ends_with("Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            "{text}"
        );
        let get = String::from_utf8(Request::get("/p").to_bytes("h", false)).unwrap();
        assert_eq!(
            get,
            format!("GET /p HTTP/1.1\r\nHost: h\r\nUser-Agent: {USER_AGENT}\r\n\r\n")
        );
        let (ct, body) = multipart(&[Part::text("a", "prefork-form-boundary-7d1c0a9e4b")]);
        assert!(ct.ends_with("-1"), "{ct}");
        assert!(String::from_utf8(body).unwrap().ends_with("-1--\r\n"));
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
            &Request::new("POST", "/x")
                .headers(&[("X-Session-ID", "abc")])
                .body(Body::Sized("application/json", b"{}")),
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
