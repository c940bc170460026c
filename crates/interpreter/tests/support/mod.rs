//! A real HTTP server on 127.0.0.1:0 that speaks the OpenAI chat-completions protocol from a
//! script: each request pops the next scripted reply (JSON, SSE stream, error status, or any of
//! those after a delay) and is recorded for assertions.

#![allow(dead_code)]

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use mrpt_interpreter::SessionContext;

pub enum Reply {
    Json(Value),
    /// `data:` payloads, sent one per chunk with a short pause, then `data: [DONE]`.
    Sse(Vec<Value>),
    Status(u16, &'static str),
    Raw(&'static str),
    After(Duration, Box<Reply>),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
pub struct Script {
    replies: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

impl Script {
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Poll (with a deadline) until `n` requests have arrived.
    pub async fn wait_for_requests(&self, n: usize, deadline: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n || start.elapsed() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A response body fed from a channel, so SSE chunks can be paced like a real model server.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

fn body_of(chunks: Vec<Bytes>, pace: Duration) -> ChannelBody {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        for c in chunks {
            if tx.send(c).await.is_err() {
                return;
            }
            if !pace.is_zero() {
                tokio::time::sleep(pace).await;
            }
        }
    });
    ChannelBody(rx)
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    script: Arc<Script>,
) -> Result<Response<ChannelBody>, Infallible> {
    let path = req.uri().path().to_string();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    script.received.lock().unwrap().push(Received {
        path,
        authorization,
        body,
    });
    let mut reply = script
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Status(500, "script exhausted"));
    loop {
        match reply {
            Reply::After(d, next) => {
                tokio::time::sleep(d).await;
                reply = *next;
            }
            Reply::Json(v) => {
                return Ok(Response::builder()
                    .header("content-type", "application/json")
                    .body(body_of(vec![Bytes::from(v.to_string())], Duration::ZERO))
                    .unwrap());
            }
            Reply::Raw(text) => {
                return Ok(Response::builder()
                    .header("content-type", "application/json")
                    .body(body_of(
                        vec![Bytes::from_static(text.as_bytes())],
                        Duration::ZERO,
                    ))
                    .unwrap());
            }
            Reply::Status(code, text) => {
                return Ok(Response::builder()
                    .status(StatusCode::from_u16(code).unwrap())
                    .body(body_of(
                        vec![Bytes::from_static(text.as_bytes())],
                        Duration::ZERO,
                    ))
                    .unwrap());
            }
            Reply::Sse(events) => {
                let mut chunks: Vec<Bytes> = events
                    .into_iter()
                    .map(|e| Bytes::from(format!("data: {e}\n\n")))
                    .collect();
                chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
                return Ok(Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(body_of(chunks, Duration::from_millis(15)))
                    .unwrap());
            }
        }
    }
}

/// Start the server; it lives until the test's runtime ends.
pub async fn start(replies: Vec<Reply>) -> (SocketAddr, Arc<Script>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(Script {
        replies: Mutex::new(replies.into()),
        received: Mutex::new(Vec::new()),
    });
    let shared = script.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let script = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, script.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, script)
}

/// A non-streaming completion whose message holds these tool calls.
pub fn tool_calls(calls: &[(&str, Value)]) -> Value {
    let list: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"id": format!("call_{i}"), "type": "function",
                   "function": {"name": name, "arguments": args.to_string()}})
        })
        .collect();
    json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
           "choices": [{"index": 0, "finish_reason": "tool_calls",
                        "message": {"role": "assistant", "content": null, "tool_calls": list}}]})
}

pub fn text_reply(text: &str) -> Value {
    json!({"id": "chatcmpl-2", "object": "chat.completion", "model": "test-model",
           "choices": [{"index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text}}]})
}

pub fn text_delta(text: &str) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})
}

pub fn kano_post_analysis() -> SessionContext {
    serde_json::from_str(include_str!("../fixtures/kano_post_analysis.json")).unwrap()
}

pub fn kano_pre_analysis() -> SessionContext {
    SessionContext {
        analysis_complete: false,
        analysis_id: None,
        variables_used: vec![],
        top_wards: vec![],
        files: vec![],
        ..kano_post_analysis()
    }
}
