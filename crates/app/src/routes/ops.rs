//! Operations routes: liveness for load balancers and deploy scripts.

use http::{Response, StatusCode};

use crate::routes::Routed;
use crate::{ApiError, App, ResponseBody, reply};

/// `GET /ping`: the worker answers; touches no disk.
pub async fn ping(_app: &App, _req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    Ok(reply::json(
        StatusCode::OK,
        &serde_json::json!({"status": "ok"}),
    ))
}
