//! The chat routes (`POST /send_message`, `POST /send_message_streaming`): per message, the
//! session context is derived from the session folder (never from this process's memory), the
//! interpreter plans, the app executes the tools through the same workflows as the direct routes
//! (so the analysis still runs at most once per upload), and the turn is stored once, atomically,
//! after the answer is complete.
//!
//! Streaming: the work runs in its own task that outlives the connection, so a client that goes
//! away mid-stream never leaves half a turn or half a tool result behind; it only stops receiving.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use mrpt_formats as formats;
use mrpt_interpreter::{
    self as interp, AnalysisSummary, DataOverview, ExportInfo, ItnContext, ItnOutcome, MapMethod,
    Pending, Plan, SessionContext, ToolCall, ToolOutcome, TopWardsResult, Turn,
    VariableContribution, VariableInfo, VariableKind, Visualization, WardDetail,
};
use mrpt_session::{AnalysisView, Artifact, SessionId, Store};
use mrpt_table::summary::DataSummary;
use mrpt_table::{Category, Column, ItnStats, RankedWard, RankingMethod, Table, find_ward_column};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::pipeline::{self, ItnParams, UploadDetails};
use crate::workflow::{self, RunAnalysisBody};
use crate::{ApiError, App, ResponseBody, blocking, reply, request_body};

/// Turns of the conversation handed to the interpreter with each message.
const CONTEXT_TURNS: usize = 10;
/// Turns kept in `conversation.json`; older ones are dropped so the file stays small.
const KEPT_TURNS: usize = 200;
/// Longest message accepted (characters).
const MAX_MESSAGE_CHARS: usize = 10_000;
/// Wards whose details are loaded for one message.
const MAX_WARD_DETAILS: usize = 3;
/// How many drivers a ward explanation lists.
const TOP_DRIVERS: usize = 5;

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
pub async fn send_message(
    app: &App,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<ResponseBody>, ApiError> {
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
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<ResponseBody>, ApiError> {
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

/// The SSE body: whatever the conversation task sends, until it drops its sender.
struct SseBody(mpsc::Receiver<Bytes>);

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(http_body::Frame::data(b))))
    }
}

fn sse_data(value: &Value) -> Bytes {
    // serde_json writes one line (newlines inside strings are escaped), as SSE needs.
    let text = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string());
    Bytes::from(format!("data: {text}\n\n"))
}

const KEEPALIVE: &[u8] = b": keepalive\n\n";

/// Runs `work`, sending `: keepalive` comments to `sink` every `every` until it finishes.
async fn with_keepalive<F: std::future::Future>(
    work: F,
    sink: Option<&mpsc::Sender<Bytes>>,
    every: Duration,
) -> F::Output {
    let Some(sink) = sink else {
        return work.await;
    };
    // A zero period would panic in tokio; more than 15 s breaks the api.md contract.
    let every = every.clamp(Duration::from_millis(1), Duration::from_secs(15));
    tokio::pin!(work);
    let start = tokio::time::Instant::now() + every;
    let mut tick = tokio::time::interval_at(start, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                // A full buffer already holds data for the client; a closed one has no client.
                let _ = sink.try_send(Bytes::from_static(KEEPALIVE));
            }
        }
    }
}

/// What a message starts from: the context as on disk now, and the upload generation it
/// belongs to (a pending question is only valid within its generation).
struct Prepared {
    ctx: SessionContext,
    generation: u64,
}

async fn prepare(app: &App, id: &SessionId, message: &str) -> Result<Prepared, ApiError> {
    let store = app.store.clone();
    let id = id.clone();
    let message = message.to_string();
    blocking(move || {
        let (ctx, generation) = session_context(&store, &id, &message)?;
        Ok(Prepared { ctx, generation })
    })
    .await
}

/// One message, start to end. With a sink, text goes out as SSE frames while it is produced;
/// either way the full answer is returned (the JSON route's body).
async fn converse(
    app: App,
    id: SessionId,
    message: String,
    prepared: Prepared,
    sink: Option<mpsc::Sender<Bytes>>,
) -> Result<Value, ApiError> {
    let Prepared {
        mut ctx,
        generation,
    } = prepared;
    let every = app.config.chat_keepalive;
    let interpreter = app.interpreter.clone();

    let plan: Plan = match &sink {
        // The rules are CPU work (fuzzy ward matching over every ward): off the async thread.
        _ if !interpreter.is_model_backed() => {
            let (ctx2, message2) = (ctx.clone(), message.clone());
            let plan = blocking(move || Ok(interp::plan_with_rules(&message2, &ctx2))).await?;
            if let Some(out) = &sink {
                for chunk in
                    interp::sentence_chunks(plan.reply_without_tools.as_deref().unwrap_or(""))
                {
                    let frame = json!({"content": chunk, "status": "success", "done": false});
                    let _ = out.send(sse_data(&frame)).await;
                }
            }
            plan
        }
        Some(out) => {
            let (dtx, mut drx) = mpsc::channel::<String>(32);
            let planning = {
                let ctx = ctx.clone();
                let message = message.clone();
                async move {
                    // `dtx` is dropped when planning ends, which ends the forwarding loop.
                    interpreter.plan_streaming(&message, &ctx, &dtx).await
                }
            };
            let forward = async {
                while let Some(delta) = drx.recv().await {
                    let frame = json!({"content": delta, "status": "success", "done": false});
                    let _ = out.send(sse_data(&frame)).await;
                }
            };
            let (plan, ()) = tokio::join!(with_keepalive(planning, Some(out), every), forward);
            plan
        }
        None => interpreter.plan(&message, &ctx).await,
    };
    for note in &plan.notes {
        crate::log_line(
            "INFO",
            &format!("session {}: interpreter: {note}", id.as_str()),
        );
    }

    let mut response = plan.reply_without_tools.clone().unwrap_or_default();
    if plan.calls.is_empty() && response.trim().is_empty() {
        response = interp::capabilities(&ctx);
        if let Some(out) = &sink {
            let frame = json!({"content": response, "status": "success", "done": false});
            let _ = out.send(sse_data(&frame)).await;
        }
    }
    let mut tools_used: Vec<&'static str> = Vec::new();
    let mut visualizations: Vec<Value> = Vec::new();
    let mut download_links: Vec<Value> = Vec::new();
    for call in &plan.calls {
        let (outcome, visuals) = if call.needs_execution() {
            let store = app.store.clone();
            let (id2, call2, ctx2) = (id.clone(), call.clone(), ctx.clone());
            let work = blocking(move || Ok(execute(&store, &id2, &call2, &ctx2)));
            with_keepalive(work, sink.as_ref(), every).await?
        } else {
            (ToolOutcome::NoOutput, Vec::new())
        };
        if matches!(call, ToolCall::RunAnalysis { .. })
            && matches!(outcome, ToolOutcome::Analysis(_))
        {
            // Later calls of this message (and their answers) see the analysis just committed.
            let store = app.store.clone();
            let (id2, message2) = (id.clone(), message.clone());
            ctx =
                blocking(move || session_context(&store, &id2, &message2).map(|(c, _)| c)).await?;
        }
        let answer = interp::compose_answer(call, &outcome, &ctx);
        let separator = if response.is_empty() { "" } else { "\n\n" };
        response.push_str(separator);
        response.push_str(&answer);
        tools_used.push(call.name().as_str());
        let (links, visuals): (Vec<Value>, Vec<Value>) = visuals
            .into_iter()
            .partition(|v| v.get("type").and_then(Value::as_str) == Some("download"));
        visualizations.extend(visuals.iter().cloned());
        download_links.extend(links.iter().cloned());
        if let Some(out) = &sink {
            let frame = json!({
                "content": format!("{separator}{answer}"),
                "status": if matches!(outcome, ToolOutcome::Error { .. }) { "error" } else { "success" },
                "done": false,
                "tools_used": [call.name().as_str()],
                "visualizations": visuals,
                "download_links": links,
            });
            let _ = out.send(sse_data(&frame)).await;
        }
    }

    // The turn and the pending question land on disk before the answer is finished, so the next
    // message - on any worker - sees them.
    let store = app.store.clone();
    let turn = StoredTurn {
        message: message.clone(),
        response: response.clone(),
        tools_used: tools_used.iter().map(|s| s.to_string()).collect(),
        pending: plan.pending.clone(),
        generation,
    };
    let id2 = id.clone();
    let state = blocking(move || {
        record_turn(&store, &id2, turn)?;
        store.status(&id2).map_err(ApiError::from)
    })
    .await?;
    let context = json!({
        "data_loaded": state.data_loaded,
        "analysis_complete": state.analysis_complete,
        "analysis_id": state.analysis_id,
        "itn_complete": state.itn_complete,
        "shapefile_loaded": state.shapefile_loaded,
        "generation": state.generation,
    });
    let source = match plan.source {
        interp::PlanSource::Rules => "rules",
        interp::PlanSource::Model => "model",
    };
    let answer = json!({
        "status": "success",
        "response": response,
        "message": response,
        "tools_used": tools_used,
        "visualizations": visualizations,
        "download_links": download_links,
        "context": context,
        "pending": plan.pending.is_some(),
        "interpreter": {"source": source, "notes": plan.notes},
        "worker_pid": std::process::id(),
    });
    if let Some(out) = &sink {
        let frame = json!({
            "content": "",
            "status": "success",
            "done": true,
            "tools_used": answer["tools_used"],
            "visualizations": answer["visualizations"],
            "download_links": answer["download_links"],
            "context": answer["context"],
            "interpreter": answer["interpreter"],
            "worker_pid": std::process::id(),
        });
        let _ = out.send(sse_data(&frame)).await;
    }
    Ok(answer)
}

struct StoredTurn {
    message: String,
    response: String,
    tools_used: Vec<String>,
    pending: Option<Pending>,
    generation: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Appends the user's message and the answer, and replaces the pending question, in one
/// read-modify-write under the session lock.
fn record_turn(store: &Store, id: &SessionId, turn: StoredTurn) -> Result<(), ApiError> {
    let at = now_ms();
    store.update_conversation(id, move |old| {
        let mut doc = match old {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let mut turns = match doc.remove("turns") {
            Some(Value::Array(turns)) => turns,
            _ => Vec::new(),
        };
        turns.push(json!({"role": "user", "text": turn.message, "at_ms": at, "generation": turn.generation}));
        turns.push(json!({
            "role": "assistant",
            "text": turn.response,
            "tools_used": turn.tools_used,
            "at_ms": at,
            "generation": turn.generation,
        }));
        let excess = turns.len().saturating_sub(KEPT_TURNS);
        turns.drain(..excess);
        doc.insert("version".into(), json!(1));
        doc.insert("turns".into(), Value::Array(turns));
        doc.insert(
            "pending".into(),
            serde_json::to_value(&turn.pending).unwrap_or(Value::Null),
        );
        doc.insert("pending_generation".into(), json!(turn.generation));
        Value::Object(doc)
    })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The session context, from disk.

/// Derive everything the interpreter may know about the session from the folder, now.
pub(crate) fn session_context(
    store: &Store,
    id: &SessionId,
    message: &str,
) -> Result<(SessionContext, u64), ApiError> {
    let state = store.status(id)?;
    let mut ctx = SessionContext {
        data_loaded: state.data_loaded,
        shapefile_loaded: state.shapefile_loaded,
        analysis_complete: state.analysis_complete,
        analysis_id: state.analysis_id.clone(),
        itn_complete: state.itn_complete,
        variables_used: state.variables_used.clone(),
        files: state.files.clone(),
        ..SessionContext::default()
    };
    if state.data_loaded {
        let details = UploadDetails::of(&state);
        let summary = details.data_summary.as_ref();
        ctx.row_count = summary.map(|s| s.total_rows as u64);
        ctx.variables = variables_from_summary(summary);
    }
    let view = if state.analysis_complete {
        store.current_analysis(id)?
    } else {
        None
    };
    let tables = match &view {
        Some(v) => Some(AnalysisTables::load(v)?),
        None => None,
    };
    if let Some(t) = &tables {
        ctx.wards = t.composite.iter().map(|w| w.ward_name.clone()).collect();
        ctx.top_wards = t.composite.iter().take(10).cloned().collect();
        ctx.ward_column = Some(t.ward_column.clone());
    } else if state.data_loaded
        && let Some(raw) = crate::workflow::uploaded_wards(store, id)?
    {
        ctx.ward_column = raw
            .table
            .columns()
            .get(raw.ward_column)
            .map(|c| c.name.clone());
        ctx.wards = raw.ward_names().iter().flatten().cloned().collect();
    }
    if let (Some(t), Some(v)) = (&tables, &view) {
        let mentioned = interp::wards_mentioned(message, &ctx);
        for ward in mentioned.iter().take(MAX_WARD_DETAILS) {
            if let Some(d) = t.detail(v, ward) {
                ctx.ward_details.push(d);
            }
        }
    }
    if state.itn_complete {
        ctx.itn = read_itn(store, id)?.map(|v| itn_context(&v));
    }
    let conversation = store.read_conversation(id)?;
    if let Some(doc) = conversation {
        let turns: Vec<Turn> = doc
            .get("turns")
            .and_then(Value::as_array)
            .map(|all| {
                let skip = all.len().saturating_sub(CONTEXT_TURNS);
                all.iter()
                    .skip(skip)
                    .filter_map(|t| serde_json::from_value::<Turn>(t.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        ctx.recent_turns = turns;
        // A question asked about an earlier upload does not carry over to new data.
        let same_generation =
            doc.get("pending_generation").and_then(Value::as_u64) == Some(state.generation);
        if same_generation {
            ctx.pending = doc
                .get("pending")
                .cloned()
                .and_then(|p| serde_json::from_value::<Option<Pending>>(p).ok())
                .flatten();
        }
    }
    Ok((ctx, state.generation))
}

/// The upload's columns as the assistant describes them: every named column but pandas'
/// `Unnamed: N` row indexes.
fn variables_from_summary(summary: Option<&DataSummary>) -> Vec<VariableInfo> {
    let Some(summary) = summary else {
        return Vec::new();
    };
    summary
        .column_names
        .iter()
        .filter(|n| !n.trim().is_empty() && !n.starts_with("Unnamed:"))
        .map(|name| VariableInfo {
            name: name.clone(),
            kind: if summary.is_numeric(name) {
                VariableKind::Numeric
            } else {
                VariableKind::Text
            },
            completeness_pct: summary.completeness(name),
        })
        .collect()
}

/// The upload's data summary: as stored with the upload, or (a folder written before uploads
/// were recorded) computed from the stored table.
fn data_summary(
    store: &Store,
    id: &SessionId,
    details: &UploadDetails,
) -> Result<DataSummary, ApiError> {
    if let Some(summary) = &details.data_summary {
        return Ok(summary.clone());
    }
    let wards = crate::workflow::uploaded_wards(store, id)?
        .ok_or_else(|| ApiError::Conflict("no data has been uploaded yet".into()))?;
    Ok(formats::summary::summarize(
        &wards.table,
        Some(wards.ward_column),
    ))
}

fn read_itn(store: &Store, id: &SessionId) -> Result<Option<Value>, ApiError> {
    match store.read_artifact(id, &Artifact::ItnResults) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ApiError::internal(format!("itn results unreadable: {e}"))),
        Err(mrpt_session::Error::ArtifactNotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn itn_context(results: &Value) -> ItnContext {
    let params = results.get("parameters");
    let stats = results.get("stats");
    let num = |v: Option<&Value>, key: &str| v.and_then(|v| v.get(key)).and_then(Value::as_f64);
    ItnContext {
        total_nets: num(params, "total_nets")
            .or_else(|| num(Some(results), "total_nets"))
            .map_or(0, |n| n.max(0.0) as u64),
        avg_household_size: num(params, "avg_household_size")
            .or_else(|| num(Some(results), "avg_household_size")),
        urban_threshold: num(params, "urban_threshold")
            .or_else(|| num(Some(results), "urban_threshold")),
        method: params
            .and_then(|p| p.get("method"))
            .or_else(|| results.get("method"))
            .cloned()
            .and_then(|m| serde_json::from_value::<RankingMethod>(m).ok())
            .unwrap_or_default(),
        allocated: num(stats, "allocated").map(|n| n.max(0.0) as u64),
        coverage_percent: num(stats, "coverage_percent"),
    }
}

/// The result tables of one analysis that chat answers read.
struct AnalysisTables {
    ward_column: String,
    /// Composite ranking, best first.
    composite: Vec<RankedWard>,
    pca: Option<Vec<RankedWard>>,
    variables: Vec<String>,
}

fn read_table(view: &AnalysisView, artifact: &Artifact) -> Result<Option<Table>, ApiError> {
    if !view.has(artifact) {
        return Ok(None);
    }
    let bytes = view.read(artifact)?;
    formats::read_result_table(&bytes, &artifact.file_name())
        .map(Some)
        .map_err(|e| ApiError::internal(format!("reading {artifact}: {e}")))
}

/// A result table's ward-name column, by the one ward-column rule.
fn ward_column_of(table: &Table) -> Option<&Column> {
    find_ward_column(table).map(|i| &table.columns()[i])
}

/// A ranking file as ranked wards, best first. A category label the file does not spell the
/// way this service and ChatMRPT do is re-derived from the rank (§3.6 thirds).
fn ranking(
    table: &Table,
    score: &[&str],
    rank: &[&str],
    category: &[&str],
) -> Option<(String, Vec<RankedWard>)> {
    let ward_col = ward_column_of(table)?;
    let names = ward_col.data.to_text();
    let scores = table.first_column(score)?.data.to_f64()?;
    let ranks = table.first_column(rank).and_then(|c| c.data.to_f64());
    let categories = table.first_column(category).map(|c| c.data.to_text());
    let total = names.iter().flatten().count();
    let mut out: Vec<RankedWard> = names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let name = name.clone()?;
            let score = scores.get(i).copied().flatten()?;
            let rank = ranks
                .as_ref()
                .and_then(|r| r.get(i).copied().flatten())
                .map_or(i + 1, |r| r.max(0.0) as usize);
            let category = categories
                .as_ref()
                .and_then(|c| c.get(i).cloned().flatten())
                .and_then(|c| Category::from_label(&c))
                .unwrap_or_else(|| Category::of_rank(rank, total));
            Some(RankedWard {
                ward_name: name,
                score,
                rank,
                category,
                row: i,
            })
        })
        .collect();
    out.sort_by_key(|w| w.rank);
    Some((ward_col.name.clone(), out))
}

impl AnalysisTables {
    fn load(view: &AnalysisView) -> Result<AnalysisTables, ApiError> {
        let composite = read_table(view, &Artifact::Rankings)?.and_then(|t| {
            ranking(
                &t,
                &["median_score", "composite_score", "score"],
                &["overall_rank", "composite_rank", "rank"],
                &["vulnerability_category", "composite_category", "category"],
            )
        });
        let pca = read_table(view, &Artifact::RankingsPca)?.and_then(|t| {
            ranking(
                &t,
                &["pca_score", "score"],
                &["pca_rank", "overall_rank", "rank"],
                &["vulnerability_category", "pca_category", "category"],
            )
        });
        let (ward_column, composite) = match (composite, &pca) {
            (Some(c), _) => c,
            // A legacy folder may hold only the PCA ranking.
            (None, Some((col, p))) => (col.clone(), p.clone()),
            (None, None) => {
                return Err(ApiError::internal(
                    "the analysis has no readable ranking file",
                ));
            }
        };
        Ok(AnalysisTables {
            ward_column,
            composite,
            pca: pca.map(|(_, p)| p),
            variables: view.variables_used.clone(),
        })
    }

    /// Rank, category, scores and the variables that push `ward`'s score most.
    fn detail(&self, view: &AnalysisView, ward: &str) -> Option<WardDetail> {
        let w = self.composite.iter().find(|w| w.ward_name == ward)?;
        let pca = self
            .pca
            .as_ref()
            .and_then(|p| p.iter().find(|x| x.ward_name == ward));
        let normalized = read_table(view, &Artifact::NormalizedData).ok().flatten();
        let cleaned = read_table(view, &Artifact::CleanedData).ok().flatten();
        let row_of = |t: &Table| -> Option<usize> {
            ward_column_of(t)?
                .data
                .to_text()
                .iter()
                .position(|n| n.as_deref() == Some(ward))
        };
        let value = |t: &Table, row: usize, name: &str| -> Option<f64> {
            t.column(name)?.data.to_f64()?.get(row).copied().flatten()
        };
        let mut drivers: Vec<VariableContribution> = Vec::new();
        if let Some(n) = &normalized
            && let Some(row) = row_of(n)
        {
            let raw_row = cleaned.as_ref().and_then(|c| row_of(c).map(|r| (c, r)));
            for v in &self.variables {
                let norm = value(n, row, &format!("normalization_{}", v.to_lowercase()));
                let Some(normalised) = norm.filter(|x| x.is_finite()) else {
                    continue;
                };
                drivers.push(VariableContribution {
                    variable: v.clone(),
                    raw_value: raw_row.and_then(|(c, r)| value(c, r, v)),
                    normalised,
                });
            }
        }
        drivers.sort_by(|a, b| b.normalised.total_cmp(&a.normalised));
        drivers.truncate(TOP_DRIVERS);
        Some(WardDetail {
            ward: w.ward_name.clone(),
            rank: w.rank as u32,
            total_wards: self.composite.len() as u32,
            category: w.category.label().to_string(),
            score: w.score,
            pca_rank: pca.map(|p| p.rank as u32),
            pca_score: pca.map(|p| p.score),
            top_variables: drivers,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Tool execution. Every failure becomes an outcome the answer explains; nothing here panics.

fn execute(
    store: &Store,
    id: &SessionId,
    call: &ToolCall,
    ctx: &SessionContext,
) -> (ToolOutcome, Vec<Value>) {
    match run_tool(store, id, call, ctx) {
        Ok(done) => done,
        Err(err) => {
            if let ApiError::Internal { context } = &err {
                crate::log_line(
                    "ERROR",
                    &format!(
                        "session {}: chat tool {} failed: {context}",
                        id.as_str(),
                        call.name().as_str()
                    ),
                );
            }
            (
                ToolOutcome::Error {
                    message: err.public_message(),
                },
                Vec::new(),
            )
        }
    }
}

fn visual_json(kind: &str, v: &Visualization) -> Value {
    let mut value = json!({"type": kind, "title": v.title, "url": v.url, "path": v.url});
    if let (Some(page), Value::Object(map)) = (v.page, &mut value) {
        map.insert("page".into(), json!(page));
        map.insert("pages".into(), json!(v.pages));
    }
    value
}

fn visualizations(items: Vec<(String, Visualization)>) -> (ToolOutcome, Vec<Value>) {
    let json: Vec<Value> = items.iter().map(|(k, v)| visual_json(k, v)).collect();
    (
        ToolOutcome::Visualizations {
            items: items.into_iter().map(|(_, v)| v).collect(),
        },
        json,
    )
}

fn from_map_json(v: &Value) -> Option<(String, Visualization)> {
    let url = v.get("url").and_then(Value::as_str)?.to_string();
    Some((
        v.get("type")
            .and_then(Value::as_str)
            .unwrap_or("map")
            .to_string(),
        Visualization {
            title: v
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("Map")
                .to_string(),
            url,
            page: None,
            pages: None,
        },
    ))
}

fn run_tool(
    store: &Store,
    id: &SessionId,
    call: &ToolCall,
    ctx: &SessionContext,
) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
    match call {
        ToolCall::RunAnalysis {
            variables,
            exclude,
            force,
        } => run_analysis(store, id, variables, exclude, *force, ctx),
        ToolCall::PlanItn {
            total_nets,
            avg_household_size,
            urban_threshold,
            method,
            strategy,
        } => {
            let params = ItnParams {
                total_nets: i64::try_from(*total_nets)
                    .map_err(|_| ApiError::BadRequest(format!("{total_nets} nets is too many")))?,
                avg_household_size: *avg_household_size,
                urban_threshold: *urban_threshold,
                method: *method,
                strategy: *strategy,
            };
            let result = crate::visuals::plan_and_store_itn(store, id, &params)?;
            let stats: ItnStats = result
                .get("stats")
                .cloned()
                .and_then(|v| serde_json::from_value(v).ok())
                .ok_or_else(|| ApiError::internal("the ITN plan has no stats"))?;
            let map_url = result
                .get("map_path")
                .and_then(Value::as_str)
                .map(str::to_string);
            let outcome = ToolOutcome::Itn(ItnOutcome {
                stats,
                avg_household_size: result.get("avg_household_size").and_then(Value::as_f64),
                method: *method,
                map_url: map_url.clone(),
            });
            let visuals = map_url
                .map(|url| {
                    vec![json!({"type": "itn_map", "title": "ITN distribution map", "url": url, "path": url})]
                })
                .unwrap_or_default();
            Ok((outcome, visuals))
        }
        ToolCall::VulnerabilityMap { method } => {
            let maps = crate::visuals::ensure_vulnerability_maps(store, id)?;
            let wanted = match method {
                MapMethod::Composite => "vulnerability_map_composite",
                MapMethod::Pca => "vulnerability_map_pca",
                MapMethod::Both => "vulnerability_map_comparison",
            };
            let chosen: Vec<(String, Visualization)> = maps
                .iter()
                .filter(|m| m.get("type").and_then(Value::as_str) == Some(wanted))
                .filter_map(from_map_json)
                .collect();
            if chosen.is_empty() {
                let what = match method {
                    MapMethod::Pca => "a PCA map (PCA was not possible for this data)",
                    _ => "a vulnerability map (the wards have no boundaries to draw)",
                };
                return Err(ApiError::Unprocessable(format!(
                    "this analysis has no {what}"
                )));
            }
            Ok(visualizations(chosen))
        }
        ToolCall::ItnMap => {
            let Some(results) = read_itn(store, id)? else {
                return Err(ApiError::Conflict(
                    "there is no ITN plan for the current analysis yet".to_string(),
                ));
            };
            let Some(url) = results.get("map_path").and_then(Value::as_str) else {
                return Err(ApiError::Unprocessable(
                    "the ITN plan has no map (no ward boundaries were uploaded)".to_string(),
                ));
            };
            Ok(visualizations(vec![(
                "itn_map".to_string(),
                Visualization {
                    title: "ITN distribution map".to_string(),
                    url: url.to_string(),
                    page: None,
                    pages: None,
                },
            )]))
        }
        ToolCall::BoxPlot { page } => box_plot(store, id, *page),
        ToolCall::VariableMap { variable } => variable_map(store, id, variable),
        ToolCall::TopWards {
            n,
            bottom,
            decile,
            method,
        } => {
            let view = crate::visuals::current_analysis(store, id)?;
            let tables = AnalysisTables::load(&view)?;
            let list = match method {
                RankingMethod::Composite => tables.composite.clone(),
                RankingMethod::Pca => tables.pca.clone().ok_or_else(|| {
                    ApiError::Unprocessable(
                        "this analysis has no PCA ranking (too few wards or variables)".to_string(),
                    )
                })?,
            };
            let total = list.len();
            let count = if *decile {
                total.div_ceil(10)
            } else {
                (*n as usize).min(total)
            };
            let wards: Vec<RankedWard> = if *bottom {
                list.iter().rev().take(count).cloned().collect()
            } else {
                list.iter().take(count).cloned().collect()
            };
            Ok((
                ToolOutcome::TopWards(TopWardsResult {
                    wards,
                    total_wards: total as u32,
                }),
                Vec::new(),
            ))
        }
        ToolCall::WardDetail { ward } => {
            let view = crate::visuals::current_analysis(store, id)?;
            let tables = AnalysisTables::load(&view)?;
            let detail = tables
                .detail(&view, ward)
                .ok_or_else(|| ApiError::NotFound(format!("{ward} is not in the ranking")))?;
            Ok((ToolOutcome::WardDetail(detail), Vec::new()))
        }
        ToolCall::CompareWards { a, b } => {
            let view = crate::visuals::current_analysis(store, id)?;
            let tables = AnalysisTables::load(&view)?;
            let missing = |w: &str| ApiError::NotFound(format!("{w} is not in the ranking"));
            let da = tables.detail(&view, a).ok_or_else(|| missing(a))?;
            let db = tables.detail(&view, b).ok_or_else(|| missing(b))?;
            Ok((ToolOutcome::Comparison { a: da, b: db }, Vec::new()))
        }
        ToolCall::DataSummary => {
            let state = store.status(id)?;
            if !state.data_loaded {
                return Err(ApiError::Conflict("no data has been uploaded yet".into()));
            }
            let summary = data_summary(store, id, &UploadDetails::of(&state))?;
            Ok((
                ToolOutcome::DataSummary(DataOverview {
                    summary,
                    wards: ctx.ward_count() as u32,
                    state_name: ctx.state_name.clone(),
                    shapefile_loaded: state.shapefile_loaded,
                }),
                Vec::new(),
            ))
        }
        ToolCall::ExportPackage => {
            let itn = store.status(id)?.itn_complete;
            let result = crate::files::build_package(store, id)?;
            let url = result
                .get("download_url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let filename = url.rsplit('/').next().unwrap_or_default().to_string();
            let links = vec![json!({"type": "download", "title": filename, "url": url})];
            Ok((
                ToolOutcome::Export(ExportInfo { url, filename, itn }),
                links,
            ))
        }
        ToolCall::ExplainMethod { .. } => Ok((ToolOutcome::NoOutput, Vec::new())),
    }
}

fn run_analysis(
    store: &Store,
    id: &SessionId,
    variables: &Option<Vec<String>>,
    exclude: &[String],
    force: bool,
    ctx: &SessionContext,
) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
    let selected = match variables {
        Some(list) => Some(
            list.iter()
                .filter(|v| !exclude.contains(v))
                .cloned()
                .collect::<Vec<_>>(),
        ),
        None if exclude.is_empty() => None,
        None => {
            // "Without X": the variables of the current analysis (or, before one, every
            // analysable column) minus the excluded ones.
            let base: Vec<String> = if ctx.analysis_complete && !ctx.variables_used.is_empty() {
                ctx.variables_used.clone()
            } else {
                UploadDetails::of(&store.status(id)?).available_variables
            };
            Some(
                base.into_iter()
                    .filter(|v| !exclude.contains(v))
                    .take(interp::MAX_ANALYSIS_VARIABLES)
                    .collect(),
            )
        }
    };
    if selected.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::BadRequest(
            "no variables are left for the analysis after the exclusions".to_string(),
        ));
    }
    let body = RunAnalysisBody {
        selected_variables: selected,
        force,
        ..RunAnalysisBody::default()
    };
    let result = workflow::analyse(store, id, body)?;
    let view = crate::visuals::current_analysis(store, id)?;
    let tables = AnalysisTables::load(&view)?;
    let strings = |key: &str| -> Vec<String> {
        result
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let summary = AnalysisSummary {
        analysis_id: result
            .get("analysis_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        variables: strings("variables_used"),
        top_wards: tables.composite.iter().take(10).cloned().collect(),
        ward_count: tables.composite.len() as u32,
        reused: result
            .get("reused")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        warnings: strings("warnings"),
    };
    let visuals: Vec<Value> = result
        .get("visualizations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok((ToolOutcome::Analysis(summary), visuals))
}

fn box_plot(
    store: &Store,
    id: &SessionId,
    page: u32,
) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
    let view = crate::visuals::current_analysis(store, id)?;
    let tables = AnalysisTables::load(&view)?;
    let scores = read_table(&view, &Artifact::CompositeScores)?.ok_or_else(|| {
        ApiError::Unprocessable("this analysis has no per-model composite scores".to_string())
    })?;
    let names = ward_column_of(&scores)
        .ok_or_else(|| ApiError::internal("composite scores have no ward column"))?
        .data
        .to_text();
    let models: Vec<Vec<Option<f64>>> = scores
        .columns()
        .iter()
        .filter(|c| c.name.starts_with("model_"))
        .filter_map(|c| c.data.to_f64())
        .collect();
    let wards = names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let name = name.clone()?;
            let ranked = tables.composite.iter().find(|w| w.ward_name == name);
            Some(mrpt_maps::BoxWard {
                scores: models
                    .iter()
                    .filter_map(|m| m.get(i).copied().flatten())
                    .collect(),
                rank: ranked.map(|w| w.rank as u32),
                category: ranked.map(|w| w.category.label().to_string()),
                name,
            })
        })
        .collect();
    let input = mrpt_maps::BoxPlotInput { area: None, wards };
    let (html, pages) = mrpt_maps::render_box_plot(&input, page as usize)
        .map_err(|e| ApiError::Unprocessable(format!("the box plot could not be drawn: {e}")))?;
    let file = format!("box_plot_{}_p{page}.html", view.analysis_id);
    store.write_file(id, &Artifact::visualization(&file)?, html.as_bytes())?;
    Ok(visualizations(vec![(
        "box_plot".to_string(),
        Visualization {
            title: "Ward score box plots".to_string(),
            url: crate::visuals::viz_url(id, &file),
            page: Some(page),
            pages: Some(pages as u32),
        },
    )]))
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect()
}

/// One column across wards: from the analysed, name-matched data when there is an analysis,
/// else from the upload (its table matched to the shapefile as the upload check did).
fn variable_map(
    store: &Store,
    id: &SessionId,
    variable: &str,
) -> Result<(ToolOutcome, Vec<Value>), ApiError> {
    let no_values =
        || ApiError::Unprocessable(format!("\"{variable}\" has no numeric values to map"));
    let (input, values, stamp) = match store.current_analysis(id)? {
        Some(view) if view.has(&Artifact::UnifiedGeoparquet) => {
            let bytes = view.read(&Artifact::UnifiedGeoparquet)?;
            let input = pipeline::map_input_from_unified(&bytes)?;
            let (table, _) = formats::read_geoparquet(&bytes)
                .map_err(|e| ApiError::internal(format!("unified dataset: {e}")))?;
            let values = table
                .column(variable)
                .and_then(|c| c.data.to_f64())
                .ok_or_else(no_values)?;
            (input, values, view.analysis_id.clone())
        }
        _ => {
            let state = store.status(id)?;
            if !state.shapefile_loaded {
                return Err(ApiError::Conflict(
                    "maps need the ward boundaries: upload the shapefile zip with the data"
                        .to_string(),
                ));
            }
            let shp = store.read_artifact(id, &Artifact::RawShapefile)?;
            let shapes = formats::read_shapefile_zip(&shp)
                .map_err(|e| ApiError::internal(format!("stored shapefile: {e}")))?;
            let mut wards = crate::workflow::uploaded_wards(store, id)?
                .ok_or_else(|| ApiError::Conflict("no data has been uploaded yet".into()))?;
            // The wards as the upload report and the analysis match them.
            pipeline::match_to_shapes(&mut wards, Some(&shapes))?;
            mrpt_table::fix_duplicate_ward_names(&mut wards)
                .map_err(|e| ApiError::internal(format!("matching wards: {e}")))?;
            let shape_names = shapes.ward_names();
            let column = wards
                .table
                .column(variable)
                .and_then(|c| c.data.to_f64())
                .ok_or_else(no_values)?;
            let by_name: std::collections::HashMap<&str, Option<f64>> = wards
                .ward_names()
                .iter()
                .zip(&column)
                .filter_map(|(n, v)| n.as_deref().map(|n| (n, *v)))
                .collect();
            let mut ward_inputs = Vec::with_capacity(shape_names.len());
            let mut values = Vec::with_capacity(shape_names.len());
            for (i, name) in shape_names.iter().enumerate() {
                let name = name.clone().unwrap_or_default();
                values.push(by_name.get(name.as_str()).copied().flatten());
                ward_inputs.push(mrpt_maps::WardInput {
                    geometry: shapes.geometries.get(i).cloned().flatten(),
                    name,
                    composite: None,
                    pca: None,
                    itn: None,
                });
            }
            (
                mrpt_maps::MapInput {
                    area: None,
                    wards: ward_inputs,
                },
                values,
                format!("g{}", state.generation),
            )
        }
    };
    let html = mrpt_maps::render_variable_map(&input, variable, &values)
        .map_err(|e| ApiError::Unprocessable(format!("the map could not be drawn: {e}")))?;
    let file = format!("variable_map_{}_{stamp}.html", file_safe(variable));
    store.write_file(id, &Artifact::visualization(&file)?, html.as_bytes())?;
    Ok(visualizations(vec![(
        "variable_map".to_string(),
        Visualization {
            title: format!("Map of {variable}"),
            url: crate::visuals::viz_url(id, &file),
            page: None,
            pages: None,
        },
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let c = itn_context(&v);
        assert_eq!(c.total_nets, 120_000);
        assert_eq!(c.method, RankingMethod::Pca);
        assert_eq!(c.allocated, Some(119_000));
    }
}
