//! Serving a session's files (maps, result tables, the export package) and building the package.
//! Only the session's owner may fetch them: the id in the path must be one the requester holds
//! (header, cookie, or the browser's `session_history`), and paths are resolved by mrpt-session,
//! never joined here.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use mrpt_session::{Artifact, SessionId, Store};
use serde_json::{Value, json};

use crate::routes::Routed;
use crate::visuals::current_analysis;
use crate::{ApiError, App, ResponseBody, blocking, identity, reply};

/// The requester must own the session named in the path; anything else looks like "not found"
/// so ids of other sessions cannot be probed.
async fn owned_session(
    app: &App,
    headers: &HeaderMap,
    path_id: &str,
) -> Result<SessionId, ApiError> {
    let not_found = || ApiError::NotFound("no such file in your session".to_string());
    // The browser holds the id: its explicit id, its cookie, or one it was handed before (a
    // tab's map frame sends only the cookie, which another tab may have moved on).
    if !identity::browser_holds(headers, path_id) {
        return Err(not_found());
    }
    app.store.session(path_id).map_err(|_| not_found())
}

fn content_type(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("csv") => "text/csv; charset=utf-8",
        Some("zip") => "application/zip",
        Some("geoparquet") | Some("parquet") => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    }
}

fn file_response(name: &str, bytes: Vec<u8>, download: bool) -> Response<ResponseBody> {
    let mut response = Response::new(reply::full(bytes));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    // Maps carry only their own hashed style and script: nothing else may run or load.
    if let Ok(csp) = HeaderValue::from_str(&mrpt_maps::content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    let base = name.rsplit('/').next().unwrap_or(name);
    let disposition = if download { "attachment" } else { "inline" };
    if let Ok(value) = HeaderValue::from_str(&format!("{disposition}; filename=\"{base}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /serve_viz_file/<session_id>/<path>`.
pub async fn serve_viz(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let (headers, path_id, rel) = (&req.headers, req.param(0), req.param(1));
    let id = owned_session(app, headers, path_id).await?;
    let rel = rel.to_string();
    let store = app.store.clone();
    let (name, bytes) = blocking(move || {
        let artifact = Artifact::visualization(&rel)
            .map_err(|_| ApiError::NotFound("no such file in your session".to_string()))?;
        let bytes = store.read_artifact(&id, &artifact)?;
        Ok((rel, bytes))
    })
    .await?;
    Ok(file_response(&name, bytes, false))
}

/// `GET /export/download/<session_id>/<file>`: result files by their api.md names, or exports.
pub async fn download(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let (headers, path_id, rel) = (&req.headers, req.param(0), req.param(1));
    let id = owned_session(app, headers, path_id).await?;
    let rel = rel.to_string();
    let store = app.store.clone();
    let (name, bytes) = blocking(move || {
        let refused = || ApiError::NotFound("no such file in your session".to_string());
        let artifact = match Artifact::from_file_name(&rel) {
            Some(Artifact::Conversation) => return Err(refused()),
            Some(fixed) => fixed,
            None => Artifact::export(&rel).map_err(|_| refused())?,
        };
        let bytes = store.read_artifact(&id, &artifact)?;
        Ok((rel, bytes))
    })
    .await?;
    Ok(file_response(&name, bytes, true))
}

/// `POST /generate_report`: one zip with everything a programme needs to share the results.
pub async fn generate_report(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let headers = &req.headers;
    let id = app.session_of(headers).await?;
    let store = app.store.clone();
    let body = blocking(move || build_package(&store, &id)).await?;
    Ok(reply::json(StatusCode::OK, &body))
}

pub(crate) fn build_package(store: &Store, id: &SessionId) -> Result<Value, ApiError> {
    let view = current_analysis(store, id)?;
    let state = store.status(id)?;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for artifact in [
        Artifact::Rankings,
        Artifact::RankingsPca,
        Artifact::UnifiedGeoparquet,
        Artifact::UnifiedCsv,
        Artifact::CompositeScores,
        Artifact::ModelFormulas,
        Artifact::PcaScores,
        Artifact::PcaVariableImportance,
        Artifact::PcaExplainedVariance,
        Artifact::CleanedData,
        Artifact::NormalizedData,
    ] {
        if view.has(&artifact) {
            entries.push((
                format!("results/{}", artifact.file_name()),
                view.read(&artifact)?,
            ));
        }
    }
    let itn: Option<Value> = if state.itn_complete {
        let bytes = store.read_artifact(id, &Artifact::ItnResults)?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(format!("itn results unreadable: {e}")))?;
        entries.push(("itn/itn_distribution_results.json".to_string(), bytes));
        if let Some(csv) = value.get("allocation_csv").and_then(Value::as_str) {
            let artifact = Artifact::export(csv)?;
            entries.push((
                "itn/itn_allocation.csv".to_string(),
                store.read_artifact(id, &artifact)?,
            ));
        }
        Some(value)
    } else {
        None
    };
    let aid = view.analysis_id.clone();
    let mut maps = Vec::new();
    for name in store.list_visualizations(id)? {
        let current = name.contains(&aid)
            && (!name.starts_with("itn_map_")
                || itn
                    .as_ref()
                    .and_then(|v| v.get("map_path"))
                    .and_then(Value::as_str)
                    .is_some_and(|p| p.ends_with(&name)));
        if current {
            let bytes = store.read_artifact(id, &Artifact::visualization(&name)?)?;
            maps.push(name.clone());
            entries.push((format!("maps/{name}"), bytes));
        }
    }
    let summary = summary_text(&state, &view, itn.as_ref(), &maps);
    entries.push(("README.txt".to_string(), summary.into_bytes()));
    entries.push((
        "summary.json".to_string(),
        serde_json::to_vec_pretty(&json!({
            "analysis_id": aid,
            "variables_used": view.variables_used,
            "analysis": view.summary,
            "itn": itn.as_ref().map(|v| json!({"stats": v.get("stats"), "parameters": v.get("parameters"), "strategy": v.get("strategy")})),
            "upload": crate::pipeline::UploadDetails::of(&state).ward_matching,
        }))
        .map_err(|e| ApiError::internal(format!("summary: {e}")))?,
    ));
    let refs: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let zip = mrpt_formats::archive::write_zip(&refs)
        .map_err(|e| ApiError::internal(format!("package zip: {e}")))?;
    let file = format!("analysis_package_{aid}.zip");
    store.write_file(id, &Artifact::export(&file)?, &zip)?;
    Ok(json!({
        "status": "success",
        "download_url": format!("/export/download/{}/{file}", id.as_str()),
        "files": entries.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "analysis_id": aid,
    }))
}

fn summary_text(
    state: &mrpt_session::SessionState,
    view: &mrpt_session::AnalysisView,
    itn: Option<&Value>,
    maps: &[String],
) -> String {
    let mut out = String::new();
    out.push_str("Malaria risk prioritisation: analysis package\n\n");
    let details = crate::pipeline::UploadDetails::of(state);
    let data = details.csv_filename.as_deref().unwrap_or("-");
    out.push_str(&format!("Ward data: {data}\n"));
    out.push_str(&format!("Analysis id: {}\n", view.analysis_id));
    out.push_str(&format!(
        "Variables used: {}\n",
        view.variables_used.join(", ")
    ));
    if let Some(method) = view.summary.get("selection_method").and_then(Value::as_str) {
        out.push_str(&format!("Variable selection: {method}\n"));
    }
    out.push_str("\nMost vulnerable wards (composite score, rank 1 = highest risk):\n");
    if let Some(top) = view
        .summary
        .pointer("/composite/top_wards")
        .and_then(Value::as_array)
    {
        for w in top {
            out.push_str(&format!(
                "  {:>3}. {} ({}, score {:.3})\n",
                w.get("rank").and_then(Value::as_u64).unwrap_or(0),
                w.get("ward_name").and_then(Value::as_str).unwrap_or("?"),
                w.get("category").and_then(Value::as_str).unwrap_or("?"),
                w.get("score").and_then(Value::as_f64).unwrap_or(f64::NAN),
            ));
        }
    }
    if let Some(itn) = itn {
        out.push_str("\nITN plan:\n");
        if let Some(stats) = itn.get("stats") {
            for key in [
                "total_nets",
                "allocated",
                "remaining",
                "prioritized_wards",
                "covered_population",
                "coverage_percent",
            ] {
                out.push_str(&format!(
                    "  {key}: {}\n",
                    stats.get(key).cloned().unwrap_or(Value::Null)
                ));
            }
        }
        out.push_str("  Per-ward allocations: itn/itn_allocation.csv\n");
    } else {
        out.push_str("\nITN plan: not run yet.\n");
    }
    if let Some(warnings) = view.summary.get("warnings").and_then(Value::as_array)
        && !warnings.is_empty()
    {
        out.push_str("\nWarnings:\n");
        for w in warnings {
            out.push_str(&format!("  - {}\n", w.as_str().unwrap_or("")));
        }
    }
    out.push_str("\nContents: results/ (rankings, unified dataset as GeoParquet and CSV, scores), itn/, maps/ (open in a browser).\n");
    if !maps.is_empty() {
        out.push_str(&format!("Maps: {}\n", maps.join(", ")));
    }
    out
}
