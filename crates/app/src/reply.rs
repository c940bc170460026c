//! Building responses: JSON bodies, the error shape of api.md, files.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::ApiError;

/// The response body type shared with the server (same type, no crate dependency).
pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<ResponseBody> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

pub fn error(err: &ApiError) -> Response<ResponseBody> {
    let mut response = json(
        err.status(),
        &serde_json::json!({"status": "error", "message": err.public_message()}),
    );
    if let ApiError::MethodNotAllowed { allow, .. } = err
        && let Ok(value) = header::HeaderValue::from_str(allow)
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}
