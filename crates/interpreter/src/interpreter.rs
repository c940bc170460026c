//! The entry point: rules alone, or a model checked by the catalogue, the guards and the rules.

use tokio::sync::mpsc;

use crate::Error;
use crate::context::SessionContext;
use crate::guards::apply_guards;
use crate::matching::find_wards;
use crate::openai::{ModelFailure, ModelReply, OpenAiBackend, OpenAiConfig};
use crate::plan::{Plan, PlanSource};
use crate::rules::{self, RuleDraft};
use crate::tools::parse_tool_call;

/// Chooses what to do for a message. Cheap to clone; holds no session state.
#[derive(Debug, Clone)]
pub struct Interpreter {
    backend: Option<OpenAiBackend>,
}

/// Wards the message names, in the data's spelling, so the app can put their details in
/// [`SessionContext::ward_details`] before planning.
pub fn wards_mentioned(message: &str, ctx: &SessionContext) -> Vec<String> {
    find_wards(message, &ctx.wards)
        .into_iter()
        .map(|m| m.ward)
        .collect()
}

/// Split text into sentence-sized pieces whose concatenation is the text, for streaming a
/// composed answer the way the model's deltas are streamed.
pub fn sentence_chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let boundary = c == '\n'
            || (matches!(c, '.' | '!' | '?')
                && chars.peek().is_some_and(|n| *n == ' ' || *n == '\n'));
        if boundary {
            // Keep the following space with this sentence.
            if chars.peek() == Some(&' ') {
                current.push(' ');
                chars.next();
            }
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The rule-based plan for a message, synchronously (what [`Interpreter::rule_based`] returns).
pub fn plan_with_rules(message: &str, ctx: &SessionContext) -> Plan {
    rules_plan(message, ctx, rules::interpret(message, ctx))
}

fn rules_plan(message: &str, ctx: &SessionContext, draft: RuleDraft) -> Plan {
    let mut plan = apply_guards(ctx, message, draft.calls);
    let mut replies = draft.replies;
    if let Some(r) = plan.reply_without_tools.take() {
        replies.push(r);
    }
    plan.reply_without_tools = if replies.is_empty() {
        None
    } else {
        Some(replies.join("\n\n"))
    };
    // A question the guards raised (analysis first, nets) supersedes the rules' own.
    if plan.pending.is_none() {
        plan.pending = draft.pending;
    }
    let analysis_coming = plan
        .calls
        .iter()
        .any(|c| matches!(c, crate::ToolCall::RunAnalysis { .. }));
    if matches!(plan.pending, Some(crate::Pending::NetTotal { .. }))
        && ctx.data_loaded
        && !ctx.analysis_complete
        && !analysis_coming
        && let Some(r) = plan.reply_without_tools.as_mut()
    {
        r.push_str(" The malaria risk analysis also has to run before nets can be allocated; I'll offer to run it once I know how many nets you have.");
    }
    plan.source = PlanSource::Rules;
    plan
}

impl Interpreter {
    /// No model, no network.
    pub fn rule_based() -> Interpreter {
        Interpreter { backend: None }
    }

    /// An OpenAI-compatible model, with the rules as fallback. Fails only on bad config or TLS
    /// setup; an unreachable server is found out (and survived) per message.
    pub fn openai(config: OpenAiConfig) -> Result<Interpreter, Error> {
        Ok(Interpreter {
            backend: Some(OpenAiBackend::new(config)?),
        })
    }

    /// Whether a model backend is configured (else the rules alone decide).
    pub fn is_model_backed(&self) -> bool {
        self.backend.is_some()
    }

    /// Decide what to do for `message`. Never fails: model trouble falls back to the rules with
    /// a note.
    pub async fn plan(&self, message: &str, ctx: &SessionContext) -> Plan {
        let draft = rules::interpret(message, ctx);
        let Some(backend) = &self.backend else {
            return rules_plan(message, ctx, draft);
        };
        if draft.answers_pending {
            return rules_plan(message, ctx, draft);
        }
        match backend.complete(message, ctx).await {
            Ok(reply) => from_model(reply, message, ctx, draft),
            Err(failure) => fallback(&failure, message, ctx, draft),
        }
    }

    /// As [`Interpreter::plan`], and every part of `reply_without_tools` is also sent to
    /// `deltas` as it becomes available: the model's text deltas live (only when the rules see
    /// no tool to run, so a text the guards would overrule is never shown), otherwise the
    /// composed reply in sentence chunks. A closed receiver (client gone) stops the stream early
    /// and is not an error. Tool calls are returned, not executed.
    pub async fn plan_streaming(
        &self,
        message: &str,
        ctx: &SessionContext,
        deltas: &mpsc::Sender<String>,
    ) -> Plan {
        let draft = rules::interpret(message, ctx);
        let backend = match &self.backend {
            Some(b) if !draft.answers_pending => b,
            _ => {
                let plan = rules_plan(message, ctx, draft);
                send_chunks(deltas, plan.reply_without_tools.as_deref().unwrap_or("")).await;
                return plan;
            }
        };
        let forward = draft.calls.is_empty();
        let (mut plan, already_sent) = match backend
            .complete_streaming(message, ctx, deltas, forward)
            .await
        {
            Ok(reply) => {
                // When forwarding, every text delta already reached the user.
                let streamed = if forward {
                    reply.text.clone()
                } else {
                    String::new()
                };
                (from_model(reply, message, ctx, draft), streamed)
            }
            Err((failure, forwarded)) => {
                let mut plan = fallback(&failure, message, ctx, draft);
                if forwarded {
                    plan.notes
                        .push("the model's partial text was already streamed".to_string());
                    // The user saw a broken-off sentence; the rules' answer follows on its own.
                    let _ = deltas.send("\n\n".to_string()).await;
                }
                (plan, String::new())
            }
        };
        let own = plan.reply_without_tools.take().unwrap_or_default();
        if already_sent.is_empty() {
            send_chunks(deltas, &own).await;
            plan.reply_without_tools = (!own.is_empty()).then_some(own);
        } else if own.is_empty() || own == already_sent {
            plan.reply_without_tools = Some(already_sent);
        } else {
            // The model wrote text and also called tools; the guards added their own words.
            let _ = deltas.send("\n\n".to_string()).await;
            send_chunks(deltas, &own).await;
            plan.reply_without_tools = Some(format!("{already_sent}\n\n{own}"));
        }
        plan
    }
}

async fn send_chunks(deltas: &mpsc::Sender<String>, text: &str) {
    for chunk in sentence_chunks(text) {
        if deltas.send(chunk).await.is_err() {
            return;
        }
    }
}

fn fallback(failure: &ModelFailure, message: &str, ctx: &SessionContext, draft: RuleDraft) -> Plan {
    let mut plan = rules_plan(message, ctx, draft);
    plan.notes.insert(
        0,
        format!(
            "{}; answered with the rule-based interpreter",
            failure.describe()
        ),
    );
    plan
}

fn from_model(reply: ModelReply, message: &str, ctx: &SessionContext, draft: RuleDraft) -> Plan {
    if reply.tool_calls.is_empty() {
        if !draft.calls.is_empty() {
            let mut plan = rules_plan(message, ctx, draft);
            let names: Vec<&str> = plan.calls.iter().map(|c| c.name().as_str()).collect();
            plan.notes.insert(
                0,
                format!(
                    "the model answered without a tool; the rules chose {}",
                    if names.is_empty() {
                        "none after the guards".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            );
            return plan;
        }
        return Plan {
            calls: Vec::new(),
            reply_without_tools: Some(reply.text),
            notes: Vec::new(),
            pending: None,
            source: PlanSource::Model,
        };
    }
    let mut calls = Vec::new();
    let mut notes = Vec::new();
    for raw in &reply.tool_calls {
        match parse_tool_call(&raw.name, &raw.arguments, ctx) {
            Ok(call) => calls.push(call),
            Err(refusal) if refusal.missing_net_total => {
                // A model that knows it lacks the net total and still calls is asked to the
                // user instead: the guards turn a missing total into the question.
                notes.push(format!("refused {}: {}", refusal.tool, refusal.reason));
                let mut plan = rules_plan(message, ctx, draft);
                if plan
                    .calls
                    .iter()
                    .all(|c| !matches!(c, crate::ToolCall::PlanItn { .. }))
                    && plan.reply_without_tools.is_none()
                {
                    plan.reply_without_tools = Some("To plan the ITN distribution I need the number of nets you have available (for example \"I have 120,000 nets\").".to_string());
                    plan.pending = Some(crate::Pending::NetTotal {
                        draft: crate::ItnDraft::default(),
                    });
                }
                plan.notes.splice(0..0, notes);
                return plan;
            }
            Err(refusal) => {
                let mut plan = rules_plan(message, ctx, draft);
                plan.notes.insert(
                    0,
                    format!(
                        "refused the model's tool call {}: {}; answered with the rule-based interpreter",
                        refusal.tool, refusal.reason
                    ),
                );
                return plan;
            }
        }
    }
    let mut plan = apply_guards(ctx, message, calls);
    plan.source = PlanSource::Model;
    plan.notes.splice(0..0, notes);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_chunks_concatenate_to_the_text() {
        let text = "First sentence. Second one!\nThird? 1.5 stays. End";
        let chunks = sentence_chunks(text);
        assert_eq!(chunks.concat(), text);
        assert_eq!(chunks[0], "First sentence. ");
        assert!(chunks.len() >= 4);
    }
}
