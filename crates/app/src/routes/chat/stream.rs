//! The SSE side of the streaming chat route: frames, the body that carries them, keepalives.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

/// The SSE body: whatever the conversation task sends, until it drops its sender.
pub(super) struct SseBody(pub(super) mpsc::Receiver<Bytes>);

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(http_body::Frame::data(b))))
    }
}

pub(super) fn sse_data(value: &Value) -> Bytes {
    // serde_json writes one line (newlines inside strings are escaped), as SSE needs.
    let text = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string());
    Bytes::from(format!("data: {text}\n\n"))
}

const KEEPALIVE: &[u8] = b": keepalive\n\n";

/// Runs `work`, sending `: keepalive` comments to `sink` every `every` until it finishes.
pub(super) async fn with_keepalive<F: std::future::Future>(
    work: F,
    sink: Option<&mpsc::Sender<Bytes>>,
    every: Duration,
) -> F::Output {
    let Some(sink) = sink else {
        return work.await;
    };
    // A zero period would panic in tokio; more than 15 s breaks the api.md contract.
    let every = every.clamp(Duration::from_millis(1), Duration::from_secs(15));
    tokio::pin!(work);
    let start = tokio::time::Instant::now() + every;
    let mut tick = tokio::time::interval_at(start, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                // A full buffer already holds data for the client; a closed one has no client.
                let _ = sink.try_send(Bytes::from_static(KEEPALIVE));
            }
        }
    }
}
