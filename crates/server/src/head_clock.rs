//! The slow-client guard: a connection wrapper that notices when a client has started a request
//! head and not finished it. hyper has one timer for "waiting for a head", which is also the idle
//! keep-alive timeout, so a long keep-alive (65 s behind a load balancer) would let a client
//! dribble a head for that long. This clock starts at the first byte of a head and stops at the
//! blank line that ends it (CRLF CRLF, or bare LF LF); writing a response re-arms it for the
//! next request. Body bytes are never timed.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
struct State {
    /// Expecting a request head (at connection start and after each response write).
    in_head: bool,
    /// When the first byte of the current head arrived.
    started: Option<Instant>,
    /// Consecutive line feeds seen, carriage returns ignored: 2 = the head is complete.
    newlines: u8,
}

#[derive(Default)]
pub(crate) struct HeadClock {
    state: Mutex<State>,
    started: Notify,
}

impl HeadClock {
    pub(crate) fn new() -> Arc<HeadClock> {
        let clock = HeadClock::default();
        clock.lock().in_head = true;
        Arc::new(clock)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn on_read(&self, bytes: &[u8]) {
        let mut st = self.lock();
        if !st.in_head || bytes.is_empty() {
            return;
        }
        if st.started.is_none() {
            st.started = Some(Instant::now());
            self.started.notify_one();
        }
        for b in bytes {
            match b {
                b'\n' => {
                    st.newlines += 1;
                    if st.newlines >= 2 {
                        st.in_head = false;
                        st.started = None;
                        st.newlines = 0;
                        return;
                    }
                }
                b'\r' => {}
                _ => st.newlines = 0,
            }
        }
    }

    fn on_write(&self) {
        let mut st = self.lock();
        st.in_head = true;
        st.started = None;
        st.newlines = 0;
    }

    /// Resolves once a head has been in progress for longer than `limit`.
    pub(crate) async fn overdue(&self, limit: Duration) {
        loop {
            let started = self.lock().started;
            match started {
                Some(t) if t.elapsed() >= limit => return,
                Some(t) => tokio::time::sleep_until(t + limit).await,
                None => self.started.notified().await,
            }
        }
    }
}

/// The connection, with every read and write reported to the clock.
pub(crate) struct Timed<S> {
    inner: S,
    clock: Arc<HeadClock>,
}

impl<S> Timed<S> {
    pub(crate) fn new(inner: S, clock: Arc<HeadClock>) -> Timed<S> {
        Timed { inner, clock }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &res {
            self.clock.on_read(&buf.filled()[before..]);
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
            self.clock.on_write();
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
            self.clock.on_write();
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_runs_only_inside_a_head() {
        let c = HeadClock::new();
        assert!(c.lock().started.is_none());
        c.on_read(b"GET / HTTP/1.1\r\nHost: x\r\n");
        assert!(c.lock().started.is_some());
        c.on_read(b"\r\nbody bytes\n\n");
        assert!(c.lock().started.is_none() && !c.lock().in_head);
        c.on_write();
        c.on_read(b"GET / HTTP/1.1\nHost: x\n\n");
        assert!(c.lock().started.is_none() && !c.lock().in_head);
        c.on_write();
        c.on_read(b"GET / HTTP/1.1\r\nHost: x\r");
        assert!(c.lock().started.is_some());
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn overdue_fires_after_the_limit_from_the_first_byte() {
        let c = HeadClock::new();
        let limit = Duration::from_secs(3);
        let waiter = {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.overdue(limit).await })
        };
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!waiter.is_finished(), "idle is not overdue");
        c.on_read(b"GET /");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!waiter.is_finished());
        tokio::time::sleep(Duration::from_secs(2)).await;
        waiter.await.unwrap();
    }
}
