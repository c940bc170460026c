//! Test-only endpoints (feature `test-hooks`, never in a release build): they let black-box tests
//! see which worker answered, hold a request in flight without blocking the worker, and block a
//! worker's event loop to exercise the heartbeat timeout.
//!
//! `/_test/pid` -> the worker pid; `/_test/abort` -> the worker calls abort() on a
//! blocking-pool thread; `/_test/body?id=X` -> logs "REQUEST STARTED X", reads the whole body and
//! answers `read N bytes`; `/_test/sleep?ms=N&id=X` -> logs "REQUEST STARTED X", then
//! waits N ms asynchronously; `/_test/block?ms=N&id=X` -> logs the same, then blocks the event-loop
//! thread for N ms; `/_test/app_metric?route=R&m=a=1,b=2&error=E` -> answers with a
//! [`crate::HandlerReport`] holding that route, those observations and that error text (what an
//! application reports).

use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;

use crate::logging::Logger;
use crate::{RequestBody, ResponseBody, full_body};

fn param<'a>(req: &'a Request<RequestBody>, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

fn text(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut resp = Response::new(full_body(body));
    *resp.status_mut() = status;
    resp
}

/// Answers a `/_test/...` request.
pub(crate) async fn respond(req: Request<RequestBody>, log: &Logger) -> Response<ResponseBody> {
    let name = req
        .uri()
        .path()
        .strip_prefix("/_test/")
        .unwrap_or_default()
        .to_owned();
    let ms = param(&req, "ms")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let id = param(&req, "id").unwrap_or("-").to_owned();
    match name.as_str() {
        "pid" => text(StatusCode::OK, std::process::id().to_string()),
        // The worker aborts itself, from a blocking-pool thread (where the app's parsing and
        // analysis run), as an allocation failure or a panic that cannot unwind would.
        "abort" => {
            log.info("REQUEST STARTED abort");
            let _ = tokio::task::spawn_blocking(|| std::process::abort()).await;
            text(StatusCode::INTERNAL_SERVER_ERROR, "not aborted".to_owned())
        }
        "sleep" => {
            log.info(format!("REQUEST STARTED {id}"));
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::OK, format!("slept {ms}"))
        }
        "block" => {
            log.info(format!("REQUEST STARTED {id}"));
            std::thread::sleep(Duration::from_millis(ms));
            text(StatusCode::OK, format!("blocked {ms}"))
        }
        // Plays an application reporting a route, metrics and an internal error.
        "app_metric" => {
            let mut resp = text(StatusCode::OK, "recorded".to_owned());
            let metrics = param(&req, "m")
                .unwrap_or("")
                .split(',')
                .filter_map(|item| {
                    let (name, value) = item.split_once('=')?;
                    Some((name.to_owned(), value.parse().ok()?))
                })
                .collect();
            resp.extensions_mut().insert(crate::HandlerReport {
                route: param(&req, "route").map(|r| r.to_owned().into()),
                metrics,
                error: param(&req, "error").map(str::to_owned),
            });
            resp
        }
        // Reads the whole body, as an upload route would.
        "body" => {
            log.info(format!("REQUEST STARTED {id}"));
            match req.into_body().collect().await {
                Ok(all) => text(
                    StatusCode::OK,
                    format!("read {} bytes", all.to_bytes().len()),
                ),
                Err(e) => text(StatusCode::BAD_REQUEST, format!("body failed: {e}")),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "no such test hook".to_owned()),
    }
}
