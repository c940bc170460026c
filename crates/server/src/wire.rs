//! The connection's byte stream as the server sees it before hyper: a thin pre-parse of the
//! message framing, which hyper 1.x does not let us configure.
//!
//! - **Slow heads.** hyper has one timer for "waiting for a head", which is also the idle
//!   keep-alive timeout, so a long keep-alive (65 s behind a load balancer) would let a client
//!   dribble a head for that long. The head clock starts at the first byte of a head (leading
//!   blank lines skipped, as hyper does) and stops at the blank line that ends it.
//! - **Framing.** Each head is read far enough to know its body (`Transfer-Encoding` ending in
//!   `chunked`, else `Content-Length`), and the body is followed to its end, so the next head is
//!   found even when requests are pipelined. Inside a chunked body, whitespace after a chunk size
//!   that no extension follows (`5 \r\n`) is refused (hyper accepts it; gunicorn and RFC 9112's
//!   grammar do not): the bytes before it reach hyper, the next read fails, hyper ends the body
//!   with an error and the worker answers 400 and closes. Anything this pre-parse does not
//!   understand (what hyper itself refuses) stops the tracking until the next response.
//! - **HTTP/2 prior knowledge.** hyper closes silently on the HTTP/2 preface; [`sniff`] reads the
//!   first bytes of a connection and, when they are the preface, the worker answers 505 instead.
//! - **Quiet connections**, for the per-worker connection cap: one between requests with nothing
//!   in flight, or one whose client owes the rest of a head or body, may be closed to admit a new
//!   one ([`Wire::quiet`], [`Wire::evict`]).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Bytes of a header line kept to read `Transfer-Encoding` / `Content-Length` (longer lines of
/// those two headers make the framing unknown; the worker refuses such requests anyway).
const LINE_KEEP: usize = 256;

/// Why a request was refused by the pre-parse (the 400 page's text).
pub(crate) const CHUNK_SIZE_WHITESPACE: &str = "Invalid chunk size: whitespace after the size";

#[derive(Debug, Default)]
struct Head {
    /// The current line's first bytes (CR dropped).
    line: Vec<u8>,
    /// The current line is longer than `LINE_KEEP`.
    truncated: bool,
    /// Complete lines of this head (the request line included).
    lines: usize,
    http10: bool,
    te: bool,
    te_chunked: bool,
    content_length: Option<u64>,
    /// A framing header we could not read: follow nothing until the next response.
    unsure: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size { size: u64, digits: bool, ws: bool },
    Extension { size: u64 },
    SizeLf { size: u64 },
    Data(u64),
    DataCr,
    DataLf,
    Trailer { line_start: bool },
    EndLf,
}

#[derive(Debug)]
enum Phase {
    Head(Head),
    Fixed(u64),
    Chunked(Chunk),
    Opaque,
}

impl Phase {
    fn new_head() -> Phase {
        Phase::Head(Head::default())
    }
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// When the first byte of the current head arrived.
    head_started: Option<Instant>,
    /// Last response write (or the connection's start).
    active_at: Instant,
    /// A response was written: between requests the connection is an idle keep-alive one.
    answered: bool,
    /// Last byte received (or the connection's start).
    read_at: Instant,
    violation: Option<&'static str>,
}

/// What happened to a buffer of bytes read from the client.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    Clean,
    /// The framing is broken at this offset: only the bytes before it may reach hyper.
    Violation(usize, &'static str),
}

/// A connection that may be closed to make room under `worker_connections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quiet {
    /// Between requests, nothing in flight, since then.
    Idle(Instant),
    /// In the middle of a head or a body the client has not finished sending; last byte then.
    Owing(Instant),
}

/// One connection's shared view (the IO wrapper writes it, the worker reads it).
#[derive(Debug)]
pub(crate) struct Wire {
    state: Mutex<State>,
    head_started: Notify,
    evict: Notify,
    in_flight: AtomicUsize,
}

impl Wire {
    pub(crate) fn new() -> Arc<Wire> {
        Arc::new(Wire {
            state: Mutex::new(State {
                phase: Phase::new_head(),
                head_started: None,
                active_at: Instant::now(),
                answered: false,
                read_at: Instant::now(),
                violation: None,
            }),
            head_started: Notify::new(),
            evict: Notify::new(),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn on_read(&self, bytes: &[u8]) -> Scan {
        let mut st = self.lock();
        let st = &mut *st;
        if !bytes.is_empty() {
            st.read_at = Instant::now();
        }
        let mut i = 0;
        while i < bytes.len() {
            match &mut st.phase {
                Phase::Opaque => return Scan::Clean,
                Phase::Fixed(left) => {
                    let take =
                        usize::try_from(*left).map_or(bytes.len() - i, |l| l.min(bytes.len() - i));
                    *left -= take as u64;
                    i += take;
                    if *left == 0 {
                        st.phase = Phase::new_head();
                    }
                }
                Phase::Chunked(chunk) => {
                    if let Chunk::Data(left) = chunk {
                        let take = usize::try_from(*left)
                            .map_or(bytes.len() - i, |l| l.min(bytes.len() - i));
                        *left -= take as u64;
                        i += take;
                        if *left == 0 {
                            *chunk = Chunk::DataCr;
                        }
                        continue;
                    }
                    match chunk_step(*chunk, bytes[i]) {
                        Step::Next(next) => *chunk = next,
                        Step::MessageEnd => st.phase = Phase::new_head(),
                        Step::Lost => st.phase = Phase::Opaque,
                        Step::Violation(why) => {
                            st.violation = Some(why);
                            st.phase = Phase::Opaque;
                            return Scan::Violation(i, why);
                        }
                    }
                    i += 1;
                }
                Phase::Head(head) => {
                    if head.lines == 0 && head.line.is_empty() && !head.truncated {
                        // Blank lines before a request are skipped (hyper does the same).
                        while i < bytes.len() && matches!(bytes[i], b'\r' | b'\n') {
                            i += 1;
                        }
                        if i == bytes.len() {
                            break;
                        }
                    }
                    if st.head_started.is_none() {
                        st.head_started = Some(Instant::now());
                        self.head_started.notify_one();
                    }
                    let rest = &bytes[i..];
                    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                        head.keep(rest);
                        break;
                    };
                    head.keep(&rest[..lf]);
                    i += lf + 1;
                    if head.line.is_empty() && !head.truncated {
                        st.head_started = None;
                        st.phase = head.body();
                    } else {
                        head.end_line();
                    }
                }
            }
        }
        Scan::Clean
    }

    fn on_write(&self) {
        let mut st = self.lock();
        st.active_at = Instant::now();
        st.answered = true;
        if matches!(st.phase, Phase::Opaque) && st.violation.is_none() {
            st.phase = Phase::new_head();
            st.head_started = None;
        }
    }

    /// Resolves once a head has been in progress for longer than `limit`.
    pub(crate) async fn overdue(&self, limit: Duration) {
        loop {
            let started = self.lock().head_started;
            match started {
                Some(t) if t.elapsed() >= limit => return,
                Some(t) => tokio::time::sleep_until(t + limit).await,
                None => self.head_started.notified().await,
            }
        }
    }

    /// The framing error the pre-parse found, if any (the connection is being closed).
    pub(crate) fn violation(&self) -> Option<&'static str> {
        self.lock().violation
    }

    /// A request is being answered on this connection.
    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether the connection could be closed to make room, and since when it has been quiet.
    pub(crate) fn quiet(&self) -> Option<Quiet> {
        let busy = self.in_flight.load(Ordering::SeqCst) > 0;
        let st = self.lock();
        match &st.phase {
            Phase::Head(h) if st.head_started.is_none() && h.lines == 0 && h.line.is_empty() => {
                match (busy, st.answered) {
                    (true, _) => None,
                    (false, true) => Some(Quiet::Idle(st.active_at.max(st.read_at))),
                    // A new connection owes its first request.
                    (false, false) => Some(Quiet::Owing(st.read_at)),
                }
            }
            Phase::Head(_) | Phase::Fixed(_) | Phase::Chunked(_) => Some(Quiet::Owing(st.read_at)),
            Phase::Opaque => None,
        }
    }

    /// Asks the connection to close: at once if the client owes bytes, after the answer if it is
    /// idle, not at all if the server is busy with its request.
    pub(crate) fn evict(&self) {
        self.evict.notify_one();
    }

    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Head {
    /// Part of the current line (CR dropped), within `LINE_KEEP`.
    fn keep(&mut self, part: &[u8]) {
        // Copied in runs between CRs (usually one run: the CR ends the line), not byte by byte:
        // every request head passes through here.
        for run in part.split(|&b| b == b'\r') {
            let room = LINE_KEEP - self.line.len();
            if run.len() > room {
                self.line.extend_from_slice(&run[..room]);
                self.truncated = true;
                return;
            }
            self.line.extend_from_slice(run);
        }
    }

    fn end_line(&mut self) {
        let mut line = std::mem::take(&mut self.line);
        self.read_line(&line);
        // The buffer is reused for the next line.
        line.clear();
        self.line = line;
    }

    fn read_line(&mut self, line: &[u8]) {
        let truncated = std::mem::replace(&mut self.truncated, false);
        self.lines += 1;
        if self.lines == 1 {
            self.http10 = line.ends_with(b"HTTP/1.0");
            return;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return;
        };
        let name = line[..colon].trim_ascii();
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.te = true;
            if truncated {
                self.unsure = true;
            }
            let last = value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            self.te_chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            match (parsed, self.content_length) {
                (Some(n), None) if !truncated => self.content_length = Some(n),
                (Some(n), Some(m)) if n == m && !truncated => {}
                _ => self.unsure = true,
            }
        }
    }

    /// The phase after this head's blank line.
    fn body(&self) -> Phase {
        if self.unsure {
            return Phase::Opaque;
        }
        if self.te {
            // hyper refuses TE on HTTP/1.0 and TE not ending in chunked; nothing to follow.
            return if self.te_chunked && !self.http10 {
                Phase::Chunked(Chunk::Size {
                    size: 0,
                    digits: false,
                    ws: false,
                })
            } else {
                Phase::Opaque
            };
        }
        match self.content_length {
            Some(n) if n > 0 => Phase::Fixed(n),
            _ => Phase::new_head(),
        }
    }
}

enum Step {
    Next(Chunk),
    MessageEnd,
    /// Something hyper refuses by itself: stop following.
    Lost,
    Violation(&'static str),
}

/// One byte of a chunked body (data bytes are skipped by the caller).
fn chunk_step(chunk: Chunk, b: u8) -> Step {
    match chunk {
        Chunk::Size { size, digits, ws } => match b {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' if !ws => {
                let digit = u64::from(match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'f' => b - b'a' + 10,
                    _ => b - b'A' + 10,
                });
                match size.checked_mul(16).and_then(|s| s.checked_add(digit)) {
                    Some(size) => Step::Next(Chunk::Size {
                        size,
                        digits: true,
                        ws,
                    }),
                    None => Step::Lost,
                }
            }
            b' ' | b'\t' if digits => Step::Next(Chunk::Size {
                size,
                digits,
                ws: true,
            }),
            // Whitespace before `;` is the grammar's BWS: allowed (gunicorn allows it too).
            b';' if digits => Step::Next(Chunk::Extension { size }),
            b'\r' | b'\n' if ws => Step::Violation(CHUNK_SIZE_WHITESPACE),
            b'\r' if digits => Step::Next(Chunk::SizeLf { size }),
            _ => Step::Lost,
        },
        Chunk::Extension { size } => match b {
            b'\r' => Step::Next(Chunk::SizeLf { size }),
            b'\n' => Step::Lost,
            _ => Step::Next(chunk),
        },
        Chunk::SizeLf { size: 0 } if b == b'\n' => Step::Next(Chunk::Trailer { line_start: true }),
        Chunk::SizeLf { size } if b == b'\n' => Step::Next(Chunk::Data(size)),
        Chunk::DataCr if b == b'\r' => Step::Next(Chunk::DataLf),
        Chunk::DataLf if b == b'\n' => Step::Next(Chunk::Size {
            size: 0,
            digits: false,
            ws: false,
        }),
        Chunk::Trailer { line_start: true } if b == b'\r' => Step::Next(Chunk::EndLf),
        Chunk::Trailer { .. } if b == b'\n' => Step::Next(Chunk::Trailer { line_start: true }),
        Chunk::Trailer { .. } => Step::Next(Chunk::Trailer { line_start: false }),
        Chunk::EndLf if b == b'\n' => Step::MessageEnd,
        _ => Step::Lost,
    }
}

/// The connection, with every read shown to the [`Wire`] and every write re-arming it.
pub(crate) struct Timed<S> {
    inner: S,
    wire: Arc<Wire>,
    /// The pre-parse refused the stream: every further read fails.
    refused: Option<&'static str>,
    /// Bytes already read (and shown to the wire) that are to be read again first.
    replay: Vec<u8>,
    replayed: usize,
}

impl<S> Timed<S> {
    pub(crate) fn new(inner: S, wire: Arc<Wire>) -> Timed<S> {
        Timed {
            inner,
            wire,
            refused: None,
            replay: Vec::new(),
            replayed: 0,
        }
    }

    /// Makes the next reads return `bytes` (already seen by [`sniff`]) before the stream.
    pub(crate) fn replay(&mut self, bytes: Vec<u8>) {
        self.replay = bytes;
        self.replayed = 0;
    }
}

fn refusal(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.replayed < self.replay.len() {
            let this = &mut *self;
            let n = (this.replay.len() - this.replayed).min(buf.remaining());
            buf.put_slice(&this.replay[this.replayed..this.replayed + n]);
            this.replayed += n;
            if this.replayed == this.replay.len() {
                this.replay = Vec::new();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if let Some(why) = self.refused {
            return Poll::Ready(Err(refusal(why)));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &res
            && let Scan::Violation(at, why) = self.wire.on_read(&buf.filled()[before..])
        {
            self.refused = Some(why);
            if at == 0 {
                return Poll::Ready(Err(refusal(why)));
            }
            // What came before the fault is still the client's request.
            buf.set_filled(before + at);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res
            && *n > 0
        {
            self.wire.on_write();
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &res
            && *n > 0
        {
            self.wire.on_write();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The request line of the HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// The first bytes of a connection.
pub(crate) enum Sniffed {
    /// HTTP/1: these bytes (maybe none, at EOF) come before the rest of the stream.
    Http1(Vec<u8>),
    /// The HTTP/2 preface.
    Http2,
}

/// Reads until the first bytes tell HTTP/2 prior knowledge from HTTP/1 (one read, except for a
/// prefix of the preface); the caller replays them ([`Timed::replay`]).
pub(crate) async fn sniff<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<Sniffed> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = io.read(&mut buf).await?;
        seen.extend_from_slice(&buf[..n]);
        if seen.len() >= H2_PREFACE_LINE.len() && seen.starts_with(H2_PREFACE_LINE) {
            return Ok(Sniffed::Http2);
        }
        if n == 0 || !H2_PREFACE_LINE.starts_with(&seen) {
            return Ok(Sniffed::Http1(seen));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn head_running(w: &Wire) -> bool {
        w.lock().head_started.is_some()
    }

    #[test]
    fn the_clock_runs_only_inside_a_head_and_follows_bodies() {
        let w = Wire::new();
        assert!(!head_running(&w) && matches!(w.quiet(), Some(Quiet::Owing(_))));
        assert_eq!(w.on_read(b"\r\n"), Scan::Clean);
        assert!(!head_running(&w), "leading blank lines start nothing");
        w.on_read(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n");
        assert!(head_running(&w) && matches!(w.quiet(), Some(Quiet::Owing(_))));
        // The body, then a pipelined head that is not finished.
        w.on_read(b"\r\nhel");
        assert!(!head_running(&w));
        w.on_read(b"loGET /x HTTP/1.1\r\n");
        assert!(head_running(&w));
        w.on_read(b"Host: x\r\n\r\n");
        w.request_started();
        assert_eq!(w.quiet(), None, "the server is working on it");
        w.on_write();
        w.request_finished();
        assert!(
            matches!(w.quiet(), Some(Quiet::Idle(_))),
            "answered, between requests"
        );
        // Bare LF line ends are heads too.
        w.on_read(b"GET / HTTP/1.1\nHost: x\n\n");
        assert!(!head_running(&w));
    }

    #[test]
    fn a_line_keeps_its_first_bytes_without_crs_and_knows_when_it_was_cut() {
        // The byte-by-byte rule `keep` must match, over parts of every size.
        fn reference(parts: &[&[u8]]) -> (Vec<u8>, bool) {
            let (mut line, mut truncated) = (Vec::new(), false);
            'parts: for part in parts {
                for &b in *part {
                    if b == b'\r' {
                        continue;
                    }
                    if line.len() < LINE_KEEP {
                        line.push(b);
                    } else {
                        truncated = true;
                        continue 'parts;
                    }
                }
            }
            (line, truncated)
        }
        let long: Vec<u8> = (0..600u32)
            .map(|i| {
                if i % 97 == 5 {
                    b'\r'
                } else {
                    b'a' + (i % 26) as u8
                }
            })
            .collect();
        for cut in [0, 1, 3, 250, 256, 257, 262, 300, 599] {
            for end in [cut, (cut + 1).min(600), (cut + 7).min(600), 600] {
                let parts: [&[u8]; 3] = [&long[..cut], &long[cut..end], &long[end..]];
                let mut head = Head::default();
                for part in parts {
                    head.keep(part);
                }
                assert_eq!(
                    (head.line, head.truncated),
                    reference(&parts),
                    "{cut} {end}"
                );
            }
        }
        let mut head = Head::default();
        head.keep(b"Content-Length: 5\r");
        assert_eq!(head.line, b"Content-Length: 5");
        assert!(!head.truncated);
    }

    #[test]
    fn chunked_bodies_are_followed_and_whitespace_after_a_size_is_refused() {
        let w = Wire::new();
        let ok = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5\r\nhello\r\n3 ;name=v\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\nGET /";
        assert_eq!(w.on_read(ok), Scan::Clean);
        assert!(head_running(&w), "the pipelined head after the trailers");
        let w = Wire::new();
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(w.on_read(head), Scan::Clean);
        assert_eq!(w.on_read(b"5"), Scan::Clean);
        assert_eq!(
            w.on_read(b" \r\nhello\r\n0\r\n\r\n"),
            Scan::Violation(1, CHUNK_SIZE_WHITESPACE)
        );
        assert_eq!(w.violation(), Some(CHUNK_SIZE_WHITESPACE));
        let w = Wire::new();
        let bad = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: x\r\n\r\n5\t\r\n";
        assert_eq!(
            w.on_read(bad),
            Scan::Violation(bad.len() - 2, CHUNK_SIZE_WHITESPACE)
        );
    }

    #[test]
    fn what_hyper_refuses_itself_stops_the_tracking_until_the_next_response() {
        let w = Wire::new();
        w.on_read(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n5 \r\n");
        assert!(matches!(w.lock().phase, Phase::Opaque));
        assert_eq!(w.violation(), None);
        w.on_write();
        w.on_read(b"GET / HTTP/1.1\r\n");
        assert!(head_running(&w));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn overdue_fires_after_the_limit_from_the_first_byte() {
        let w = Wire::new();
        let limit = Duration::from_secs(3);
        let waiter = {
            let w = Arc::clone(&w);
            tokio::spawn(async move { w.overdue(limit).await })
        };
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!waiter.is_finished(), "idle is not overdue");
        w.on_read(b"GET /");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!waiter.is_finished());
        tokio::time::sleep(Duration::from_secs(2)).await;
        waiter.await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_preface_is_told_from_http1_and_sniffed_bytes_are_read_again() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        assert!(matches!(sniff(&mut server).await.unwrap(), Sniffed::Http2));

        let (mut client, server) = tokio::io::duplex(1024);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"PUT / HTTP/1.1\r\n")
            .await
            .unwrap();
        let mut timed = Timed::new(server, Wire::new());
        let Sniffed::Http1(seen) = sniff(&mut timed).await.unwrap() else {
            panic!("not HTTP/1");
        };
        tokio::io::AsyncWriteExt::write_all(&mut client, b"Host: x\r\n")
            .await
            .unwrap();
        drop(client);
        timed.replay(seen);
        let mut all = Vec::new();
        timed.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"PUT / HTTP/1.1\r\nHost: x\r\n");
    }
}
