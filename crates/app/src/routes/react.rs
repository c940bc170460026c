//! The calls ChatMRPT's React client makes while a user works (`../shared/specs/react-client.md`)
//! that have no older prefork name: the guest sign-in check, the welcome text, the sample data,
//! the download list and the conversation history. Accounts, the arena and surveys do not exist
//! in prefork; their routes are not here (404), and the sign-in routes say so.

use http::{Response, StatusCode};
use mrpt_session::{Artifact, SessionId};
use serde_json::{Value, json};

use crate::pipeline::UploadDetails;
use crate::routes::Routed;
use crate::routes::upload::{TableFile, store_tables};
use crate::{ApiError, App, ResponseBody, blocking, identity, reply};

/// The Kano sample shipped with prefork (the repository's test fixture, 66 wards).
const KANO_CSV: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/kano/kano_wards.csv"
));
const KANO_SHAPEFILE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/kano/kano_wards_shapefile.zip"
));

fn iso(ms: u64) -> String {
    prefork_utc::UtcDateTime::from_unix(ms / 1000).iso8601()
}

/// The session the request names, if it exists (a stale or malformed id is no session).
async fn existing_session(app: &App, headers: &http::HeaderMap) -> Option<SessionId> {
    let text = identity::requested_session(headers)?;
    let store = app.store.clone();
    blocking(move || store.session(&text).map_err(ApiError::from))
        .await
        .ok()
}

async fn mint(app: &App) -> Result<SessionId, ApiError> {
    let store = app.store.clone();
    blocking(move || store.create_session().map_err(ApiError::from)).await
}

/// `GET /auth/status`: prefork has no accounts; every visitor is an authenticated guest. The
/// client shows its main interface only after this, and chats before any upload, so a session
/// is minted here when the browser has none (the cookie is set).
pub async fn auth_status(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let (id, minted) = match existing_session(app, &req.headers).await {
        Some(id) => (id, false),
        None => (mint(app).await?, true),
    };
    let mut response = reply::json(
        StatusCode::OK,
        &json!({
            "success": true,
            "status": "success",
            "authenticated": true,
            "user": {"id": "guest", "email": "", "username": "guest"},
            "session_id": id.as_str(),
            "accounts": false,
        }),
    );
    if minted {
        identity::set_cookies(response.headers_mut(), &req.headers, id.as_str());
    }
    Ok(response)
}

/// `/auth/login`, `/auth/signup`, `/auth/logout`, `/auth/google`: no accounts exist.
pub async fn auth_unavailable(
    _app: &App,
    _req: Routed,
) -> Result<Response<ResponseBody>, ApiError> {
    Err(ApiError::NotFound(
        "prefork has no user accounts: everyone works as a guest, and /auth/status always says so. Your work is kept per browser session."
            .to_string(),
    ))
}

/// `POST /explain_visualization`: needs a vision model, which prefork does not use.
pub async fn explain_unavailable(
    _app: &App,
    _req: Routed,
) -> Result<Response<ResponseBody>, ApiError> {
    Err(ApiError::NotFound(
        "explaining a picture of a chart needs a vision model, which this server does not have. Ask the assistant about the map instead: it explains rankings from the computed scores."
            .to_string(),
    ))
}

/// `GET /get_welcome_content`.
pub async fn welcome(_app: &App, _req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    Ok(reply::json(
        StatusCode::OK,
        &json!({
            "status": "success",
            "title": "Malaria risk prioritisation",
            "subtitle": "Upload ward data and a ward shapefile (or load the Kano sample), rank wards by malaria risk, plan bed-net distribution, and ask about the results.",
            "capabilities": [
                "Upload a ward table (CSV or Excel) and a zipped ward shapefile, of any size: large files go up in resumable chunks",
                "Rank wards by a composite score and by PCA, with the variables chosen for your region",
                "Maps of vulnerability and of each variable",
                "Plan ITN (bed net) distribution with ward populations",
                "Ask about a ward: why it ranks where it does, and what drives its score",
                "Download the results: rankings, the unified dataset, the ITN plan and the maps",
            ],
        }),
    ))
}

/// `POST /load_sample_data {data_type: "kano", session_id?}`: the Kano sample as an upload of
/// the session the request names, or of a new one (with its cookie) when it names none.
pub async fn load_sample(app: &App, mut req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let body = app.json_body(&mut req).await?;
    let value: Value = if body.is_empty() {
        json!({})
    } else {
        crate::request_body::json(&body)?
    };
    let kind = value
        .get("data_type")
        .and_then(Value::as_str)
        .unwrap_or("kano");
    if kind != "kano" {
        return Err(ApiError::BadRequest(format!(
            "no sample called {kind:?}: the sample shipped with prefork is \"kano\" (66 wards of Kano state)"
        )));
    }
    let (id, minted) = if identity::is_explicit(&req.headers) {
        (app.session_of(&req.headers).await?, false)
    } else {
        (mint(app).await?, true)
    };
    let store = app.store.clone();
    let limits = app.config.limits;
    let target = id.clone();
    let mut answer = blocking(move || {
        store_tables(
            &store,
            &target,
            None,
            TableFile {
                name: "kano_wards.csv".into(),
                bytes: KANO_CSV.to_vec().into(),
            },
            Some(TableFile {
                name: "kano_wards_shapefile.zip".into(),
                bytes: KANO_SHAPEFILE.to_vec().into(),
            }),
            &limits,
        )
    })
    .await?;
    answer["sample"] = json!("kano");
    let mut response = reply::json(StatusCode::OK, &answer);
    if minted {
        identity::set_cookies(response.headers_mut(), &req.headers, id.as_str());
    }
    Ok(response)
}

/// The session named in the path, which this browser must hold (its cookie, its explicit id or
/// its history); anything else is "not found", so other ids cannot be probed.
async fn held_session(
    app: &App,
    headers: &http::HeaderMap,
    path_id: &str,
) -> Result<SessionId, ApiError> {
    let not_found = || ApiError::NotFound(format!("no session {path_id} in this browser"));
    if !identity::browser_holds(headers, path_id) {
        return Err(not_found());
    }
    let store = app.store.clone();
    let text = path_id.to_string();
    blocking(move || store.session(&text).map_err(ApiError::from))
        .await
        .map_err(|_| not_found())
}

fn category(name: &str) -> &'static str {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base.starts_with("itn") {
        "itn"
    } else if base.starts_with("tpr") {
        "tpr"
    } else if base.starts_with("raw_") || base == "population.csv" {
        "data"
    } else {
        "analysis"
    }
}

fn describe(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let what = match base {
        "analysis_vulnerability_rankings.csv" => "Ward rankings by the composite score",
        "analysis_vulnerability_rankings_pca.csv" => "Ward rankings by PCA",
        "unified_dataset.csv" => "Ward data with scores and ranks (CSV)",
        "unified_dataset.geoparquet" => "Ward data with scores, ranks and shapes (GeoParquet)",
        "analysis_cleaned_data.csv" => "The ward data after cleaning and imputation",
        "analysis_normalized_data.csv" => "The variables normalised for scoring",
        "analysis_composite_scores.csv" | "composite_scores.csv" => "Composite scores per ward",
        "model_formulas.csv" => "The composite models used",
        "analysis_pca_scores.csv" => "PCA scores per ward",
        "pca_variable_importance.json" => "How much each variable weighs in the PCA",
        "pca_explained_variance.json" => "Variance explained by each principal component",
        "unified_variable_metadata.json" => "What each variable is",
        "itn_distribution_results.json" => "The ITN distribution plan",
        "raw_data.csv" | "raw_data.xlsx" => "Your uploaded ward data",
        "raw_shapefile.zip" => "Your uploaded ward shapefile",
        "population.csv" => "Your uploaded ward populations",
        _ if base.ends_with(".html") => "A map or chart (opens in the browser)",
        _ if base.ends_with(".zip") => "A package of the results",
        _ if base.ends_with(".csv") => "A table of results",
        _ => "A result file",
    };
    what.to_string()
}

fn entry(name: &str, url: String) -> Value {
    let base = name.rsplit('/').next().unwrap_or(name);
    let kind = base.rsplit_once('.').map(|(_, e)| e).unwrap_or("file");
    json!({
        "name": base,
        "filename": base,
        "type": kind,
        "description": describe(name),
        "url": url,
        "category": category(name),
    })
}

/// `GET /export/list/<sid>`: the files of the session the Download menu offers: result tables,
/// exports (packages, allocation tables) and maps, each with the URL that serves it.
pub async fn export_list(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let path_id = req.param(0).to_string();
    let id = held_session(app, &req.headers, &path_id).await?;
    let store = app.store.clone();
    let files = blocking(move || {
        let state = store.status(&id)?;
        let sid = id.as_str();
        let mut files: Vec<Value> = state
            .files
            .iter()
            .filter(|f| Artifact::from_file_name(f).is_some_and(|a| a != Artifact::Conversation))
            .map(|f| entry(f, format!("/export/download/{sid}/{f}")))
            .collect();
        for f in store.list_exports(&id)? {
            files.push(entry(&f, format!("/export/download/{sid}/exports/{f}")));
        }
        for f in store.list_visualizations(&id)? {
            files.push(entry(
                &f,
                format!("/serve_viz_file/{sid}/visualizations/{f}"),
            ));
        }
        Ok::<_, ApiError>(files)
    })
    .await?;
    Ok(reply::json(
        StatusCode::OK,
        &json!({"success": true, "status": "success", "files": files}),
    ))
}

/// `GET /api/conversations`: the conversations of this browser's sessions (its current one and
/// the ones it was handed before, see `identity`), newest first. Sessions of other browsers are
/// never listed: there are no accounts to tie them together.
pub async fn conversations(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let mut ids: Vec<String> = identity::requested_session(&req.headers)
        .into_iter()
        .collect();
    for id in identity::history(&req.headers) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let store = app.store.clone();
    let list = blocking(move || {
        let mut list = Vec::new();
        for text in ids {
            let Ok(id) = store.session(&text) else {
                continue;
            };
            if let Some(s) = store.conversation_summary(&id)? {
                list.push(s);
            }
        }
        list.sort_by_key(|s| std::cmp::Reverse(s.last_activity_ms));
        Ok::<_, ApiError>(list)
    })
    .await?;
    let conversations: Vec<Value> = list
        .iter()
        .map(|s| {
            json!({
                "session_id": s.session_id,
                "conversation_id": s.session_id,
                "title": s.title,
                "last_activity": iso(s.last_activity_ms),
                "created_at": iso(s.created_at_ms),
                "has_files": s.has_files,
                "preview": s.preview,
                "message_count": s.messages,
            })
        })
        .collect();
    Ok(reply::json(
        StatusCode::OK,
        &json!({"success": true, "status": "success", "conversations": conversations}),
    ))
}

/// `POST /api/conversations/<sid>/resume`: the conversation's messages and the session's state;
/// the browser's cookie moves to that session (the client stores the id for its tab too).
pub async fn resume(app: &App, req: Routed) -> Result<Response<ResponseBody>, ApiError> {
    let path_id = req.param(0).to_string();
    let id = held_session(app, &req.headers, &path_id).await?;
    let store = app.store.clone();
    let target = id.clone();
    let (messages, state) = blocking(move || {
        Ok::<_, ApiError>((
            store.conversation_messages(&target)?,
            store.status(&target)?,
        ))
    })
    .await?;
    let details = UploadDetails::of(&state);
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "type": m.role,
                "content": m.text,
                "timestamp": iso(m.at_ms),
                "visualizations": m.visualizations,
            })
        })
        .collect();
    let mut response = reply::json(
        StatusCode::OK,
        &json!({
            "success": true,
            "status": "success",
            "session_id": id.as_str(),
            "messages": messages,
            "session_state": {
                "tpr_active": false,
                "has_files": state.data_loaded,
                "csv_filename": details.csv_filename,
                "shapefile_filename": details.shapefile_filename,
                "analysis_complete": state.analysis_complete,
                "itn_complete": state.itn_complete,
            },
        }),
    );
    identity::set_cookies(response.headers_mut(), &req.headers, id.as_str());
    Ok(response)
}
