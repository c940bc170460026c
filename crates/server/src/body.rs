//! The request body handlers read: hyper's body with a read deadline and a minimum rate, and a
//! bounded drain of what a handler leaves unread.
//!
//! - **Deadline.** While the handler waits for body bytes, the body fails with
//!   [`crate::Error::BodyTimeout`] when no byte came for `body_timeout`, or when the body is
//!   slower than `body_min_rate` bytes per second after a grace of `body_timeout`: a body of N
//!   bytes gets at most `body_timeout + N / body_min_rate`. The worker then answers 408 and
//!   closes the connection, so a stalled or trickled body costs bounded time whatever the
//!   handler does with it.
//! - **Drain.** A handler that answers without reading a small body (a 404, a route that takes
//!   no body) would leave hyper unable to find the next pipelined request, and hyper closes such
//!   a connection. When the handler drops the body unread, up to [`DRAIN_LIMIT`] bytes are read
//!   and discarded (under the same deadline) so keep-alive and pipelining go on; a larger body,
//!   or one the client has not been told to send (`Expect: 100-continue`), closes the connection
//!   after the answer (`Connection: close`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::Error;

/// Most bytes read and discarded on behalf of a handler that left its body unread.
pub const DRAIN_LIMIT: u64 = 64 * 1024;

/// The deadline settings (`Settings::body_timeout`, `Settings::body_min_rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyLimits {
    /// Zero = no deadline.
    pub timeout: Duration,
    /// Bytes per second; zero = no minimum rate.
    pub min_rate: u64,
}

/// What the worker learns about a request's body after the handler answered.
#[derive(Debug, Default)]
pub(crate) struct BodyOutcome {
    timed_out: AtomicBool,
    /// Dropped unread and not drained: the connection must close after the answer.
    abandoned: AtomicBool,
}

impl BodyOutcome {
    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::SeqCst)
    }

    pub(crate) fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct Clock {
    limits: BodyLimits,
    started: Instant,
    last_byte: Instant,
    received: u64,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Clock {
    fn deadline(&self) -> Option<Instant> {
        if self.limits.timeout.is_zero() {
            return None;
        }
        let idle = self.last_byte + self.limits.timeout;
        if self.limits.min_rate == 0 {
            return Some(idle);
        }
        let earned = Duration::from_secs_f64(self.received as f64 / self.limits.min_rate as f64);
        Some(idle.min(self.started + self.limits.timeout + earned))
    }

    /// Ready once the deadline has passed (the waker is registered otherwise).
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline() else {
            return false;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut().poll(cx).is_ready()
    }
}

/// The body of a request, as handlers receive it.
#[derive(Debug)]
pub struct RequestBody {
    inner: Option<Incoming>,
    clock: Clock,
    outcome: Arc<BodyOutcome>,
    /// The client waits for `100 Continue` before sending the body.
    expect_continue: bool,
    polled: bool,
    /// Drain what is left when dropped (false for the drain itself).
    drain_on_drop: bool,
}

impl RequestBody {
    pub(crate) fn new(
        inner: Incoming,
        limits: BodyLimits,
        expect_continue: bool,
    ) -> (RequestBody, Arc<BodyOutcome>) {
        let now = Instant::now();
        let outcome = Arc::new(BodyOutcome::default());
        let body = RequestBody {
            inner: Some(inner),
            clock: Clock {
                limits,
                started: now,
                last_byte: now,
                received: 0,
                sleep: None,
            },
            outcome: Arc::clone(&outcome),
            expect_continue,
            polled: false,
            drain_on_drop: true,
        };
        (body, outcome)
    }
}

impl RequestBody {
    /// Drops the body without draining it (the answer closes the connection).
    pub(crate) fn abandon(mut body: RequestBody) {
        body.drain_on_drop = false;
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        this.polled = true;
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.clock.received += data.len() as u64;
                    this.clock.last_byte = Instant::now();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.inner = None;
                Poll::Ready(Some(Err(Error::Body(e))))
            }
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !this.clock.poll_expired(cx) {
                    return Poll::Pending;
                }
                // Dropping hyper's end makes it stop reading and close after the answer.
                this.inner = None;
                this.outcome.timed_out.store(true, Ordering::SeqCst);
                Poll::Ready(Some(Err(Error::BodyTimeout {
                    received: this.clock.received,
                    seconds: this.clock.started.elapsed().as_secs(),
                })))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if !self.drain_on_drop {
            return;
        }
        let Some(inner) = self.inner.take() else {
            return;
        };
        if inner.is_end_stream() {
            return;
        }
        // A chunked body's size is unknown: it is drained up to the limit too.
        let small = inner.size_hint().lower() <= DRAIN_LIMIT;
        let told_to_send = !self.expect_continue || self.polled;
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(rt) if small && told_to_send => {
                let drain = RequestBody {
                    inner: Some(inner),
                    clock: Clock {
                        sleep: None,
                        ..self.clock
                    },
                    outcome: Arc::clone(&self.outcome),
                    expect_continue: self.expect_continue,
                    polled: self.polled,
                    drain_on_drop: false,
                };
                rt.spawn(drain_body(drain));
            }
            _ => self.outcome.abandoned.store(true, Ordering::SeqCst),
        }
    }
}

/// Reads and discards up to [`DRAIN_LIMIT`] bytes; past that, or past the deadline, hyper's end
/// is dropped and it closes the connection after the answer.
async fn drain_body(mut body: RequestBody) {
    let mut discarded = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return };
        if let Some(data) = frame.data_ref() {
            discarded += data.len() as u64;
            if discarded > DRAIN_LIMIT {
                return;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn clock(timeout: u64, min_rate: u64) -> Clock {
        let now = Instant::now();
        Clock {
            limits: BodyLimits {
                timeout: Duration::from_secs(timeout),
                min_rate,
            },
            started: now,
            last_byte: now,
            received: 0,
            sleep: None,
        }
    }

    #[test]
    fn the_deadline_is_the_idle_limit_or_the_minimum_rate_whichever_comes_first() {
        let mut c = clock(10, 1000);
        let t0 = c.started;
        assert_eq!(c.deadline(), Some(t0 + Duration::from_secs(10)));
        // 5000 bytes earn 5 s beyond the grace, but silence still ends it 10 s after the last.
        c.received = 5000;
        c.last_byte = t0 + Duration::from_secs(1);
        assert_eq!(c.deadline(), Some(t0 + Duration::from_secs(11)));
        c.last_byte = t0 + Duration::from_secs(9);
        assert_eq!(c.deadline(), Some(t0 + Duration::from_secs(15)));
        let mut c = clock(10, 0);
        c.last_byte += Duration::from_secs(100);
        assert_eq!(c.deadline(), Some(c.started + Duration::from_secs(110)));
        assert_eq!(clock(0, 1000).deadline(), None);
    }
}
