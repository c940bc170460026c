//! The browser UI: one page and its two assets, compiled into the binary (no external assets, so
//! it works offline and under a strict CSP).

use http::{HeaderValue, Response, StatusCode, header};

use crate::routes::Routed;
use crate::{ApiError, App, ResponseBody, reply};

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

/// The page's policy: only its own script and stylesheet, maps in same-origin frames.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /`: the page. It mints no session and touches no disk: a session folder is made by the
/// first action that stores something (an upload mints one when the browser has none; the
/// page's chat asks `POST /api/session` before its first message), so page views, crawlers and
/// health checks cost no disk.
pub async fn index(app: &App, _req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    if let Some(dir) = &app.config.ui_dir {
        return super::spa::index(dir).await;
    }
    let mut response = page(INDEX_HTML, "text/html; charset=utf-8");
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    Ok(response)
}

/// `GET /static/<file>`.
pub async fn asset(_app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    match req.param(0) {
        "app.js" => Ok(page(APP_JS, "text/javascript; charset=utf-8")),
        "app.css" => Ok(page(APP_CSS, "text/css; charset=utf-8")),
        other => Err(ApiError::NotFound(format!("no static file {other:?}"))),
    }
}

fn page(text: &'static str, content_type: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(reply::full(text));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
