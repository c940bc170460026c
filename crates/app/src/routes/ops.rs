//! Operations routes: liveness for load balancers and deploy scripts.

use bytes::Bytes;
use http::{HeaderValue, Response, header};

use crate::routes::Routed;
use crate::{ApiError, App, ResponseBody, reply};

/// `GET /ping`: the worker answers; touches no disk. The body is a constant (what serde_json
/// writes for `{"status": "ok"}`): a health check pays for no JSON tree.
pub async fn ping(_app: &App, _req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let mut response = Response::new(reply::full(Bytes::from_static(PING_BODY)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

const PING_BODY: &[u8] = br#"{"status":"ok"}"#;

#[cfg(test)]
mod tests {
    #[test]
    fn the_ping_body_is_the_json_it_stands_for() {
        let written = serde_json::to_vec(&serde_json::json!({"status": "ok"})).ok();
        assert_eq!(written.as_deref(), Some(super::PING_BODY));
    }
}
