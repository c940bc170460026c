//! The interpreter's decision for one message.

use serde::{Deserialize, Serialize};

use crate::context::Pending;
use crate::tools::ToolCall;

/// Which interpreter produced the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PlanSource {
    /// The deterministic phrase rules (no model configured, or the model failed).
    #[default]
    Rules,
    /// The configured model's tool calls, validated.
    Model,
}

/// What to do for one message, after the guards.
///
/// The app executes `calls` in order (analysis first), composes each answer with
/// [`crate::compose_answer`], and shows `reply_without_tools` before them (alone when `calls` is
/// empty). It stores `pending` in the session folder - replacing what was there, so `None` clears
/// it - and passes it back in the next message's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Plan {
    /// Validated tool calls to execute, in order (analysis first).
    pub calls: Vec<ToolCall>,
    /// Text to show before the calls' answers, or alone when there are none.
    pub reply_without_tools: Option<String>,
    /// Operator-facing notes (model unreachable, a call refused or dropped and why).
    pub notes: Vec<String>,
    /// The question now waiting for an answer; `None` clears any earlier one.
    pub pending: Option<Pending>,
    /// Whether the rules or the model decided.
    pub source: PlanSource,
}
