//! `POST /api/itn/update-distribution` (and `/api/itn/plan`): bed-net allocation over the
//! current analysis; never runs the analysis itself.

use http::{Response, StatusCode};
use mrpt_table::{ItnStrategy, RankingMethod};
use serde_json::Value;

use crate::pipeline::{self};
use crate::routes::Routed;
use crate::{ApiError, App, ResponseBody, blocking, reply, request_body};

/// Unknown keys (a client's `session_id`...) are ignored, not refused.
#[derive(Debug, serde::Deserialize)]
struct ItnBody {
    total_nets: Option<Value>,
    #[serde(default)]
    avg_household_size: Option<f64>,
    #[serde(default)]
    urban_threshold: Option<f64>,
    #[serde(default)]
    method: Option<RankingMethod>,
    #[serde(default)]
    strategy: Option<ItnStrategy>,
}

/// `POST /api/itn/update-distribution` (and `/api/itn/plan`). Never runs the analysis.
pub async fn plan_itn(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let mut req = req;
    let body = app.json_body(&mut req).await?;
    let headers = &req.headers;
    let request: ItnBody = request_body::json(&body)?;
    let total_nets = match &request.total_nets {
        None | Some(Value::Null) => {
            return Err(ApiError::BadRequest(
                "total_nets is required: how many nets are available to distribute?".to_string(),
            ));
        }
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .or_else(|| {
                v.as_str()
                    .and_then(|s| s.replace([',', '_', ' '], "").parse().ok())
            })
            .ok_or_else(|| {
                ApiError::BadRequest(format!("total_nets must be a whole number, got {v}"))
            })?,
    };
    let params = pipeline::ItnParams {
        total_nets,
        avg_household_size: request.avg_household_size,
        urban_threshold: request.urban_threshold,
        method: request.method.unwrap_or_default(),
        strategy: request.strategy,
    };
    // Checked here too (planning checks again) so a bad parameter costs no disk read.
    params.validate()?;
    let id = app.session_of(headers).await?;
    let store = app.store.clone();
    let body = blocking(move || crate::visuals::plan_and_store_itn(&store, &id, &params)).await?;
    Ok(reply::json(StatusCode::OK, &body))
}
