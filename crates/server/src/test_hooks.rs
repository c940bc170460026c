//! Test-only endpoints (feature `test-hooks`, never in a release build): they let black-box tests
//! see which worker answered, hold a request in flight without blocking the worker, and block a
//! worker's event loop to exercise the heartbeat timeout.
//!
//! `/_test/pid` -> the worker pid; `/_test/sleep?ms=N&id=X` -> logs "REQUEST STARTED X", then
//! waits N ms asynchronously; `/_test/block?ms=N&id=X` -> logs the same, then blocks the event-loop
//! thread for N ms; `/_test/app_metric?route=R&m=a=1,b=2&error=E` -> answers with a
//! [`crate::HandlerReport`] holding that route, those observations and that error text (what an
//! application reports).

use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::logging::Logger;
use crate::{ResponseBody, full_body};

fn param<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
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

pub(crate) async fn respond(
    req: &Request<Incoming>,
    log: &Logger,
) -> Option<Response<ResponseBody>> {
    let name = req.uri().path().strip_prefix("/_test/")?;
    let ms = param(req, "ms")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let id = param(req, "id").unwrap_or("-");
    Some(match name {
        "pid" => text(StatusCode::OK, std::process::id().to_string()),
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
            let metrics = param(req, "m")
                .unwrap_or("")
                .split(',')
                .filter_map(|item| {
                    let (name, value) = item.split_once('=')?;
                    Some((name.to_owned(), value.parse().ok()?))
                })
                .collect();
            resp.extensions_mut().insert(crate::HandlerReport {
                route: param(req, "route").map(|r| r.to_owned().into()),
                metrics,
                error: param(req, "error").map(str::to_owned),
            });
            resp
        }
        _ => text(StatusCode::NOT_FOUND, "no such test hook".to_owned()),
    })
}
