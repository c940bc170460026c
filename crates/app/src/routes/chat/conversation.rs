//! One message, start to end: the plan, the tools, the answer, and the turn stored on disk.

use bytes::Bytes;
use mrpt_interpreter::{self as interp, Pending, Plan, SessionContext, ToolCall, ToolOutcome};
use mrpt_session::{SessionId, Store};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::context::session_context;
use super::stream::{sse_data, with_keepalive};
use super::tools::execute;
use crate::{ApiError, App, blocking};

/// Turns kept in `conversation.json`; older ones are dropped so the file stays small.
const KEPT_TURNS: usize = 200;

/// What a message starts from: the context as on disk now, and the upload generation it
/// belongs to (a pending question is only valid within its generation).
pub(super) struct Prepared {
    ctx: SessionContext,
    generation: u64,
}

pub(super) async fn prepare(
    app: &App,
    id: &SessionId,
    message: &str,
) -> Result<Prepared, ApiError> {
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
pub(super) async fn converse(
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

    // The TPR questions and intents answer first when the message is theirs (tpr.md §3, §8.3).
    let tpr_turn = {
        let store = app.store.clone();
        let (id2, message2, ctx2) = (id.clone(), message.clone(), ctx.clone());
        let limits = app.config.limits;
        blocking(move || {
            let pending = store
                .read_conversation(&id2)?
                .and_then(|doc| serde_json::from_value(doc.get("tpr_pending")?.clone()).ok());
            super::tpr::handle(&store, &id2, &message2, &ctx2, pending, &limits)
        })
        .await?
    };
    if let Some(turn) = tpr_turn {
        return finish_tpr_turn(&app, &id, &message, generation, turn, sink).await;
    }

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
            let (store, slots) = (app.store.clone(), app.analysis_slots.clone());
            let (id2, call2, ctx2) = (id.clone(), call.clone(), ctx.clone());
            let limits = app.config.limits;
            let work = blocking(move || Ok(execute(&store, &slots, &id2, &call2, &ctx2, &limits)));
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
        tpr_pending: None,
        generation,
        // What the answer showed, for the history's resume view.
        visualizations: visual_urls(&visualizations),
    };
    let id2 = id.clone();
    let state = blocking(move || {
        record_turn(&store, &id2, turn)?;
        store.status(&id2).map_err(ApiError::from)
    })
    .await?;
    let context = context_of(&state);
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
        let _ = out.send(sse_data(&final_frame(&answer))).await;
    }
    Ok(answer)
}

struct StoredTurn {
    message: String,
    response: String,
    tools_used: Vec<String>,
    pending: Option<Pending>,
    /// The TPR guided question still open, if any.
    tpr_pending: Option<super::tpr::TprDraft>,
    generation: u64,
    visualizations: Vec<String>,
}

/// The URLs of what an answer showed, for the history's resume view.
fn visual_urls(visualizations: &[Value]) -> Vec<String> {
    visualizations
        .iter()
        .filter_map(|v| {
            v.as_str()
                .or_else(|| {
                    ["url", "path", "html_path"]
                        .iter()
                        .find_map(|k| v.get(*k)?.as_str())
                })
                .map(str::to_string)
        })
        .collect()
}

/// Stores a TPR turn and answers it in the same shape as every other turn.
async fn finish_tpr_turn(
    app: &App,
    id: &SessionId,
    message: &str,
    generation: u64,
    turn: super::tpr::TprTurn,
    sink: Option<mpsc::Sender<Bytes>>,
) -> Result<Value, ApiError> {
    let store = app.store.clone();
    let stored = StoredTurn {
        message: message.to_string(),
        response: turn.response.clone(),
        tools_used: turn.tools_used.iter().map(|s| s.to_string()).collect(),
        pending: None,
        tpr_pending: turn.pending.clone(),
        generation,
        visualizations: visual_urls(&turn.visualizations),
    };
    let id2 = id.clone();
    let state = blocking(move || {
        record_turn(&store, &id2, stored)?;
        store.status(&id2).map_err(ApiError::from)
    })
    .await?;
    let context = context_of(&state);
    let answer = json!({
        "status": "success",
        "response": turn.response,
        "message": turn.response,
        "tools_used": turn.tools_used,
        "visualizations": turn.visualizations,
        "download_links": turn.download_links,
        "context": context,
        "pending": turn.pending.is_some(),
        "tpr_step": turn.pending.as_ref().map(|p| p.step.clone()),
        "interpreter": {"source": "rules", "notes": []},
        "worker_pid": std::process::id(),
    });
    if let Some(out) = &sink {
        for chunk in interp::sentence_chunks(&turn.response) {
            let frame = json!({"content": chunk, "status": "success", "done": false});
            let _ = out.send(sse_data(&frame)).await;
        }
        let _ = out.send(sse_data(&final_frame(&answer))).await;
    }
    Ok(answer)
}

/// The session state an answer reports (re-read from disk after the turn was stored).
fn context_of(state: &mrpt_session::SessionState) -> Value {
    json!({
        "data_loaded": state.data_loaded,
        "analysis_complete": state.analysis_complete,
        "analysis_id": state.analysis_id,
        "itn_complete": state.itn_complete,
        "shapefile_loaded": state.shapefile_loaded,
        "generation": state.generation,
    })
}

/// The stream's last frame: no text, the answer's tools, visuals, links and context.
fn final_frame(answer: &Value) -> Value {
    json!({
        "content": "",
        "status": "success",
        "done": true,
        "tools_used": answer["tools_used"],
        "visualizations": answer["visualizations"],
        "download_links": answer["download_links"],
        "context": answer["context"],
        "interpreter": answer["interpreter"],
        "worker_pid": std::process::id(),
    })
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
            "visualizations": turn.visualizations,
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
        doc.insert(
            "tpr_pending".into(),
            serde_json::to_value(&turn.tpr_pending).unwrap_or(Value::Null),
        );
        Value::Object(doc)
    })?;
    Ok(())
}
