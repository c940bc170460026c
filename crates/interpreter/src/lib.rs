//! mrpt-interpreter: session context -> tool choice, and tool results -> plain-language answers.
//!
//! Owns the tool catalogue ([`ToolCall`], [`ToolName`], JSON schemas, validation), the default
//! rule-based interpreter (no model, no network), the guards that hold whichever interpreter chose
//! ([`apply_guards`]), answer composition ([`compose_answer`]) and an OpenAI-compatible
//! chat-completions client with tool calling, streaming and fallback to the rules.
//!
//! It must not depend on internal crates other than the vocabulary crate `mrpt-table` (ranking
//! methods, ranked wards, data summaries, the difflib port), touch the session folder or read environment
//! variables: the app derives a [`SessionContext`] from disk for every message and passes it in,
//! and the caller reads the API key and puts it in [`OpenAiConfig::api_key`].
//!
//! Per message the app: derives a [`SessionContext`] from the session folder (with
//! [`wards_mentioned`] it may add [`WardDetail`]s), calls [`Interpreter::plan`] (or
//! [`Interpreter::plan_streaming`]), shows `reply_without_tools`, executes `calls` in order
//! (analysis first), fills a [`ToolOutcome`] for each and shows [`compose_answer`]'s text, then
//! stores `plan.pending` (replacing the old value) and the turn in the folder.
//!
//! ```no_run
//! # async fn demo(ctx: mrpt_interpreter::SessionContext) -> Result<(), mrpt_interpreter::Error> {
//! use mrpt_interpreter::{Interpreter, OpenAiConfig, ToolCall, ToolOutcome, compose_answer};
//! let interp = Interpreter::openai(OpenAiConfig {
//!     base_url: "http://127.0.0.1:11434/v1".into(),
//!     model: "llama3.1".into(),
//!     api_key: None, // the cli reads the variable named by `api_key_env`
//!     ..OpenAiConfig::default()
//! })?;
//! let plan = interp.plan("plan ITN with 120,000 nets", &ctx).await;
//! for call in &plan.calls {
//!     let outcome = match call {
//!         ToolCall::ExplainMethod { .. } => ToolOutcome::NoOutput,
//!         _ => ToolOutcome::Error { message: "not executed in this example".into() },
//!     };
//!     println!("{}", compose_answer(call, &outcome, &ctx));
//! }
//! # Ok(()) }
//! ```

#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod answer;
mod context;
mod guards;
mod interpreter;
mod matching;
mod numbers;
mod openai;
#[cfg(test)]
mod phrasing_tests;
mod plan;
mod rules;
mod sse;
mod tools;

pub use answer::{
    AnalysisSummary, DataOverview, Download, ExportInfo, ItnOutcome, TableAnswer, ToolOutcome,
    TopWardsResult, Visualization, capabilities, compose_answer, explain, thousands,
};
pub use context::{
    ItnContext, ItnDraft, Pending, Role, SessionContext, Stage, Turn, VariableContribution,
    VariableInfo, VariableKind, WardDetail,
};
pub use guards::{MAX_CALLS, apply_guards, asks_rerun};
pub use interpreter::{Interpreter, plan_with_rules, sentence_chunks, wards_mentioned};
pub use matching::{
    WARD_MATCH_THRESHOLD, WardMention, find_variables, find_wards, resolve_variable, resolve_ward,
    suggest_wards,
};
pub use numbers::{ItnNumbers, NumberMention, find_numbers, itn_numbers};
pub use openai::{OpenAiConfig, system_prompt};
pub use plan::{Plan, PlanSource};
pub use rules::explores_ward_table;
pub use tools::{
    ExplainTopic, MAX_ANALYSIS_VARIABLES, MapMethod, Refusal, ToolCall, ToolName, openai_tools,
    parse_tool_call, resolve_lga, score_label, validate,
};

/// Failures to set up the interpreter (planning itself never fails: it falls back to rules).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range ([`OpenAiConfig::validate`]).
    #[error("invalid interpreter config: {field}: {reason}")]
    InvalidConfig {
        /// The config key (`base_url`, `timeout_ms`, ...).
        field: &'static str,
        /// What the value must be.
        reason: String,
    },
    /// The TLS configuration (protocol versions, platform certificate verifier) could not be set up.
    #[error("TLS setup for the model client failed: {0}")]
    Tls(String),
    /// The HTTP client could not be built.
    #[error("building the HTTP client for {base_url} failed: {source}")]
    HttpClient {
        /// The configured model endpoint base.
        base_url: String,
        /// The client library's error.
        #[source]
        source: reqwest::Error,
    },
}
