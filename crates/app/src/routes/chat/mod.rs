//! The chat routes (`POST /send_message`, `POST /send_message_streaming`): per message, the
//! session context is derived from the session folder (never from this process's memory), the
//! interpreter plans, the app executes the tools through the same workflows as the direct routes
//! (so the analysis still runs at most once per upload), and the turn is stored once, atomically,
//! after the answer is complete.
//!
//! Streaming: the work runs in its own task that outlives the connection, so a client that goes
//! away mid-stream never leaves half a turn or half a tool result behind; it only stops receiving.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::routes::Routed;
use crate::{ApiError, App, ResponseBody, reply, request_body};

mod context;
mod conversation;
mod stream;
mod tools;

use conversation::{converse, prepare};
use stream::{SseBody, sse_data};

/// Longest message accepted (characters).
const MAX_MESSAGE_CHARS: usize = 10_000;

fn message_of(body: &[u8]) -> Result<String, ApiError> {
    let value: Value = request_body::json(body)?;
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if message.is_empty() {
        return Err(ApiError::BadRequest(
            "No message provided: send JSON {\"message\": \"...\"}".to_string(),
        ));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::BadRequest(format!(
            "the message is longer than {MAX_MESSAGE_CHARS} characters"
        )));
    }
    Ok(message.to_string())
}

/// `POST /send_message`.
pub async fn send_message(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let mut req = req;
    let body = app.json_body(&mut req).await?;
    let headers = &req.headers;
    let message = message_of(&body)?;
    let id = app.session_of(headers).await?;
    let prepared = prepare(app, &id, &message).await?;
    // Its own task, so a client that hangs up mid-answer still gets its turn stored whole.
    let task = tokio::spawn(converse(app.clone(), id, message, prepared, None));
    let answer = task
        .await
        .map_err(|e| ApiError::internal(format!("the chat task failed: {e}")))??;
    Ok(reply::json(StatusCode::OK, &answer))
}

/// `POST /send_message_streaming`: SSE frames `data: {"content","status","done",...}`.
pub async fn send_message_streaming(
    app: &App,
    req: Routed,
) -> Result<Response<ResponseBody>, ApiError> {
    let mut req = req;
    let body = app.json_body(&mut req).await?;
    let headers = &req.headers;
    let message = message_of(&body)?;
    let id = app.session_of(headers).await?;
    // Context errors (a broken folder) still answer as JSON, before the stream starts.
    let prepared = prepare(app, &id, &message).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let app = app.clone();
    tokio::spawn(async move {
        let sink = tx.clone();
        if let Err(err) = converse(app, id, message, prepared, Some(tx)).await {
            if let ApiError::Internal { context } = &err {
                crate::log_line("ERROR", &format!("chat stream failed: {context}"));
            }
            let frame = json!({
                "content": format!("Error: {}", err.public_message()),
                "status": "error",
                "done": true,
            });
            let _ = sink.send(sse_data(&frame)).await;
        }
    });
    let mut response = Response::new(http_body_util::BodyExt::boxed(SseBody(rx)));
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::context::itn_context;
    use super::*;
    use mrpt_table::RankingMethod;

    #[test]
    fn sse_frames_are_single_lines() {
        let frame = sse_data(&json!({"content": "a\nb", "done": false}));
        let text = String::from_utf8(frame.to_vec()).unwrap_or_default();
        assert!(text.starts_with("data: {"));
        assert!(text.ends_with("}\n\n"));
        assert_eq!(text.matches('\n').count(), 2);
    }

    #[test]
    fn messages_are_required() {
        assert!(message_of(b"{}").is_err());
        assert!(message_of(br#"{"message": "  "}"#).is_err());
        assert_eq!(
            message_of(br#"{"message": " hi "}"#).unwrap_or_default(),
            "hi"
        );
    }

    #[test]
    fn itn_context_reads_parameters() {
        let v = json!({
            "parameters": {"total_nets": 120000, "avg_household_size": 5.0, "method": "pca"},
            "stats": {"allocated": 119000, "coverage_percent": 42.5}
        });
        let c = itn_context(&serde_json::from_value(v).unwrap_or_default());
        assert_eq!(c.total_nets, 120_000);
        assert_eq!(c.method, RankingMethod::Pca);
        assert_eq!(c.allocated, Some(119_000));
    }

    #[test]
    fn itn_context_reads_old_top_level_fields_and_skips_wrong_types() {
        let v = json!({
            "total_nets": 5000, "method": "composite", "avg_household_size": "five",
            "stats": {"allocated": "many", "coverage_percent": 12.5},
            "map_path": 7
        });
        let stored: crate::visuals::StoredItn = serde_json::from_value(v).unwrap_or_default();
        assert_eq!(stored.map_path, None);
        let c = itn_context(&stored);
        assert_eq!(c.total_nets, 5000);
        assert_eq!(c.method, RankingMethod::Composite);
        assert_eq!(c.avg_household_size, None);
        assert_eq!((c.allocated, c.coverage_percent), (None, Some(12.5)));
    }
}
