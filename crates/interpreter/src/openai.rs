//! An OpenAI-compatible chat-completions client (OpenAI, Ollama, vLLM, LM Studio, ...): one
//! request per message with the tool catalogue, the disk-derived context in the system prompt,
//! a per-attempt timeout, one retry on transient failures, and SSE streaming of text answers.
//!
//! TLS: rustls with the `ring` provider, passed to reqwest as a preconfigured config, so no
//! process-wide crypto provider is installed and no C toolchain beyond ring's is needed. Plain
//! `http://` base URLs (a local Ollama or vLLM) work too.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::Error;
use crate::context::{Role, SessionContext, Stage};
use crate::sse::{SseEvent, SseParser};
use crate::tools::openai_tools;

/// Model backend settings. `api_key` is never read from config files or the environment here:
/// the caller reads the variable named by `api_key_env` and sets it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiConfig {
    /// Up to and including the version segment, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: String,
    /// The model name sent in every request (`gpt-4o-mini`).
    pub model: String,
    /// Name of the environment variable holding the key (for the caller; empty = no key).
    pub api_key_env: String,
    /// The bearer token, set by the caller from `api_key_env`; `None` = no `Authorization` header.
    #[serde(skip)]
    pub api_key: Option<String>,
    /// Per attempt; for streams, the longest wait for the next chunk.
    pub timeout_ms: u64,
    /// Extra attempts after a timeout, connection failure, 429 or 5xx.
    pub retries: u32,
    /// Sampling temperature, 0-2 (default 0.2).
    pub temperature: f32,
    /// Most tokens the model may write per answer (at least 1; default 1000).
    pub max_tokens: u32,
    /// How many earlier turns of the conversation are sent with the message.
    pub history_turns: usize,
}

/// Debug output never shows the key (configs end up in logs).
impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key_env", &self.api_key_env)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("retries", &self.retries)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("history_turns", &self.history_turns)
            .finish()
    }
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "https://api.openai.com/v1".to_string(),
            model: "gpt-4o-mini".to_string(),
            api_key_env: "OPENAI_API_KEY".to_string(),
            api_key: None,
            timeout_ms: 30_000,
            retries: 1,
            temperature: 0.2,
            max_tokens: 1000,
            history_turns: 6,
        }
    }
}

impl OpenAiConfig {
    /// Checks the ranges; the error names the first bad field ([`Error::InvalidConfig`]).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        let url = self.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return bad("base_url", "must start with http:// or https://");
        }
        if reqwest::Url::parse(url).is_err() {
            return bad("base_url", "is not a valid URL");
        }
        if self.model.trim().is_empty() {
            return bad("model", "must not be empty");
        }
        if self.timeout_ms == 0 || self.timeout_ms > 600_000 {
            return bad("timeout_ms", "must be between 1 and 600000");
        }
        if self.retries > 5 {
            return bad("retries", "at most 5");
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return bad("temperature", "must be between 0 and 2");
        }
        if self.max_tokens == 0 {
            return bad("max_tokens", "must be at least 1");
        }
        Ok(())
    }

    /// `base_url` + `/chat/completions`.
    pub fn endpoint(&self) -> String {
        format!(
            "{}/chat/completions",
            self.base_url.trim().trim_end_matches('/')
        )
    }
}

/// The system prompt: persona, the disk-derived session block, the stage block and the tool
/// rules. The rules are written so a model reading `Analysis Complete: True` plans ITN or maps
/// directly instead of re-running the analysis (H4), and never invents a net total (H10).
pub fn system_prompt(ctx: &SessionContext) -> String {
    let stage = match ctx.stage() {
        Stage::NoData => {
            "Stage: no data. Guide the user to upload their ward data (CSV or Excel) and the ward boundary shapefile (zip). Do not call tools other than explain_method (and, when Facility Export Loaded is True, the tpr_ tools)."
        }
        Stage::PreAnalysis => {
            "Stage: data loaded, analysis not run. Offer to run the malaria risk analysis; variable maps and data summaries are available now."
        }
        Stage::PostAnalysis => {
            "Stage: analysis complete. Rankings, maps, ward explanations, ITN planning and exports are available now without re-running anything."
        }
    };
    format!(
        "You are ChatMRPT, an assistant for malaria epidemiologists and programme officers who prioritise wards for interventions such as insecticide-treated nets (ITNs).\n\n\
{context}\n{stage}\n\n\
## Tool rules\n\
- The session block above is read from the session folder for this very message. It is authoritative; never assume the state differs from it.\n\
- If Analysis Complete is True: NEVER call run_analysis unless the user explicitly asks to re-run it or to change the variables. For ITN, maps, rankings and ward questions call the matching tool directly.\n\
- If Analysis Complete is False and the user asks for ITN planning, maps or rankings: do not run the analysis on your own; explain that it is needed and offer to run it. Only when the user asks for both (for example \"analyse and then plan ITN with 50,000 nets\") call run_analysis first and then the other tool.\n\
- plan_itn needs total_nets exactly as the user stated it. If the user gave no number of nets, do not call plan_itn: ask how many nets they have. Never assume a default such as 10000.\n\
- Use ward and variable names as they appear in the data.\n\
- Questions about test positivity (TPR) from the health-facility export, its trends, worsening or improving wards, wards to reprioritise, or its missing data: call the tpr_ tools when Facility Export Loaded is True; their answers carry the figures.\n\
- Call at most one tool per request unless the user clearly asked for several steps.\n\
- When you answer in text, use plain language a programme officer understands, quote figures only from the session block, and never show code or SQL.",
        context = ctx.render_for_prompt()
    )
}

/// A tool call as the model sent it, before validation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawToolCall {
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ModelReply {
    pub text: String,
    pub tool_calls: Vec<RawToolCall>,
}

/// Why the model could not be used for this message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ModelFailure {
    Timeout,
    Unreachable(String),
    Status(u16, String),
    Nonsense(String),
}

impl ModelFailure {
    fn transient(&self) -> bool {
        match self {
            ModelFailure::Timeout | ModelFailure::Unreachable(_) => true,
            ModelFailure::Status(code, _) => *code == 429 || *code >= 500,
            ModelFailure::Nonsense(_) => false,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            ModelFailure::Timeout => "the model did not answer in time".to_string(),
            ModelFailure::Unreachable(e) => format!("the model server is unreachable ({e})"),
            ModelFailure::Status(code, body) => {
                format!("the model server answered HTTP {code}: {body}")
            }
            ModelFailure::Nonsense(why) => format!("the model's answer was unusable ({why})"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OpenAiBackend {
    pub config: OpenAiConfig,
    client: reqwest::Client,
    endpoint: String,
}

impl OpenAiBackend {
    pub(crate) fn new(config: OpenAiConfig) -> Result<OpenAiBackend, Error> {
        config.validate()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = {
            use rustls_platform_verifier::BuilderVerifierExt;
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Tls(e.to_string()))?
                .with_platform_verifier()
                .map_err(|e| Error::Tls(e.to_string()))?
                .with_no_client_auth()
        };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|source| Error::HttpClient {
                base_url: config.base_url.clone(),
                source,
            })?;
        let endpoint = config.endpoint();
        Ok(OpenAiBackend {
            config,
            client,
            endpoint,
        })
    }

    pub(crate) fn request_body(&self, message: &str, ctx: &SessionContext, stream: bool) -> Value {
        let mut messages = vec![json!({"role": "system", "content": system_prompt(ctx)})];
        let skip = ctx
            .recent_turns
            .len()
            .saturating_sub(self.config.history_turns);
        for turn in ctx.recent_turns.iter().skip(skip) {
            let role = match turn.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": turn.text}));
        }
        messages.push(json!({"role": "user", "content": message}));
        json!({
            "model": self.config.model,
            "messages": messages,
            "tools": openai_tools(),
            "tool_choice": "auto",
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "stream": stream,
        })
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self.client.post(&self.endpoint).json(body);
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            req = req.bearer_auth(key);
        }
        req
    }

    fn attempts(&self) -> u32 {
        self.config.retries + 1
    }

    /// One chat completion, with retries on transient failures.
    pub(crate) async fn complete(
        &self,
        message: &str,
        ctx: &SessionContext,
    ) -> Result<ModelReply, ModelFailure> {
        let body = self.request_body(message, ctx, false);
        let mut last = ModelFailure::Timeout;
        for _ in 0..self.attempts() {
            match self.complete_once(&body).await {
                Ok(r) => return Ok(r),
                Err(e) if e.transient() => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    async fn complete_once(&self, body: &Value) -> Result<ModelReply, ModelFailure> {
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let resp = self
            .post(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(failure_from)?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(ModelFailure::Status(
                status.as_u16(),
                text.chars().take(200).collect(),
            ));
        }
        let bytes = resp.bytes().await.map_err(failure_from)?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ModelFailure::Nonsense(format!("response is not JSON: {e}")))?;
        parse_completion(&v)
    }

    /// A streamed chat completion. Text deltas go to `deltas` as they arrive when `forward` is
    /// set; tool-call fragments are assembled by index. A retry happens only while nothing has
    /// been forwarded, so the user never sees a duplicated beginning.
    pub(crate) async fn complete_streaming(
        &self,
        message: &str,
        ctx: &SessionContext,
        deltas: &mpsc::Sender<String>,
        forward: bool,
    ) -> Result<ModelReply, (ModelFailure, bool)> {
        let body = self.request_body(message, ctx, true);
        let mut last = ModelFailure::Timeout;
        for _ in 0..self.attempts() {
            let mut forwarded = false;
            match self
                .stream_once(&body, deltas, forward, &mut forwarded)
                .await
            {
                Ok(r) => return Ok(r),
                Err(e) if e.transient() && !forwarded => last = e,
                Err(e) => return Err((e, forwarded)),
            }
        }
        Err((last, false))
    }

    async fn stream_once(
        &self,
        body: &Value,
        deltas: &mpsc::Sender<String>,
        forward: bool,
        forwarded: &mut bool,
    ) -> Result<ModelReply, ModelFailure> {
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let resp = tokio::time::timeout(timeout, self.post(body).send())
            .await
            .map_err(|_| ModelFailure::Timeout)?
            .map_err(failure_from)?;
        let status = resp.status();
        if !status.is_success() {
            let text = tokio::time::timeout(timeout, resp.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(ModelFailure::Status(
                status.as_u16(),
                text.chars().take(200).collect(),
            ));
        }
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
        let mut resp = resp;
        if !is_sse {
            // Some servers ignore `stream: true` and answer with one JSON document.
            let bytes = tokio::time::timeout(timeout, resp.bytes())
                .await
                .map_err(|_| ModelFailure::Timeout)?
                .map_err(failure_from)?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ModelFailure::Nonsense(format!("response is not JSON: {e}")))?;
            let reply = parse_completion(&v)?;
            if forward && reply.tool_calls.is_empty() && !reply.text.is_empty() {
                *forwarded = true;
                let _ = deltas.send(reply.text.clone()).await;
            }
            return Ok(reply);
        }
        let mut parser = SseParser::default();
        let mut acc = StreamAccumulator::default();
        let mut done = false;
        while !done {
            let chunk = tokio::time::timeout(timeout, resp.chunk())
                .await
                .map_err(|_| ModelFailure::Timeout)?
                .map_err(failure_from)?;
            let events = match &chunk {
                Some(bytes) => parser.feed(bytes),
                None => {
                    done = true;
                    parser.finish()
                }
            };
            for event in events {
                match event {
                    SseEvent::Done => done = true,
                    SseEvent::Data(payload) => {
                        let v: Value = serde_json::from_str(&payload).map_err(|e| {
                            ModelFailure::Nonsense(format!("stream chunk is not JSON: {e}"))
                        })?;
                        if let Some(text) = acc.add(&v)?
                            && forward
                            && !text.is_empty()
                        {
                            *forwarded = true;
                            if deltas.send(text).await.is_err() {
                                // The client went away: stop reading, nothing more to deliver.
                                return Ok(acc.finish());
                            }
                        }
                    }
                }
            }
        }
        let reply = acc.finish();
        if reply.text.trim().is_empty() && reply.tool_calls.is_empty() {
            return Err(ModelFailure::Nonsense("empty answer".to_string()));
        }
        Ok(reply)
    }
}

fn failure_from(e: reqwest::Error) -> ModelFailure {
    // reqwest's own message hides the cause (refused, DNS, certificate); operators need it.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        ModelFailure::Timeout
    } else if e.is_decode() {
        ModelFailure::Nonsense(text)
    } else {
        ModelFailure::Unreachable(text)
    }
}

/// Arguments arrive as a JSON string per the protocol; some servers send an object instead.
fn arguments_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn parse_completion(v: &Value) -> Result<ModelReply, ModelFailure> {
    let Some(message) = v
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("message"))
    else {
        return Err(ModelFailure::Nonsense("no choices[0].message".to_string()));
    };
    let text = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut tool_calls = Vec::new();
    if let Some(calls) = message.get("tool_calls") {
        let Some(list) = calls.as_array() else {
            return Err(ModelFailure::Nonsense(
                "tool_calls is not a list".to_string(),
            ));
        };
        for c in list {
            let f = c.get("function").unwrap_or(&Value::Null);
            let Some(name) = f.get("name").and_then(Value::as_str) else {
                return Err(ModelFailure::Nonsense(
                    "tool call without a name".to_string(),
                ));
            };
            tool_calls.push(RawToolCall {
                name: name.to_string(),
                arguments: arguments_text(f.get("arguments").unwrap_or(&Value::Null)),
            });
        }
    }
    if text.trim().is_empty() && tool_calls.is_empty() {
        return Err(ModelFailure::Nonsense("empty answer".to_string()));
    }
    Ok(ModelReply { text, tool_calls })
}

/// Streamed deltas folded back into one reply: tool calls arrive in fragments keyed by index.
#[derive(Debug, Default)]
struct StreamAccumulator {
    text: String,
    calls: Vec<(u64, String, String)>,
}

impl StreamAccumulator {
    /// Fold one chunk in; returns its text delta, if any.
    fn add(&mut self, v: &Value) -> Result<Option<String>, ModelFailure> {
        if let Some(err) = v.get("error") {
            return Err(ModelFailure::Nonsense(format!("error in stream: {err}")));
        }
        let Some(delta) = v
            .get("choices")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("delta"))
        else {
            // Usage-only chunks and the like.
            return Ok(None);
        };
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (pos, c) in calls.iter().enumerate() {
                let index = c.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
                let f = c.get("function").unwrap_or(&Value::Null);
                let slot = match self.calls.iter_mut().position(|(i, _, _)| *i == index) {
                    Some(p) => p,
                    None => {
                        self.calls.push((index, String::new(), String::new()));
                        self.calls.len() - 1
                    }
                };
                if let Some(name) = f.get("name").and_then(Value::as_str) {
                    self.calls[slot].1.push_str(name);
                }
                if let Some(args) = f.get("arguments") {
                    self.calls[slot].2.push_str(&arguments_text(args));
                }
            }
        }
        let text = delta
            .get("content")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(t) = &text {
            self.text.push_str(t);
        }
        Ok(text)
    }

    fn finish(self) -> ModelReply {
        let mut calls = self.calls;
        calls.sort_by_key(|(i, _, _)| *i);
        ModelReply {
            text: self.text,
            tool_calls: calls
                .into_iter()
                .map(|(_, name, arguments)| RawToolCall { name, arguments })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        assert!(OpenAiConfig::default().validate().is_ok());
        let bad = OpenAiConfig {
            base_url: "ftp://x".into(),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = OpenAiConfig {
            timeout_ms: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let cfg: OpenAiConfig = serde_json::from_str(
            r#"{"base_url": "http://127.0.0.1:11434/v1/", "model": "llama3.1"}"#,
        )
        .unwrap();
        assert_eq!(cfg.endpoint(), "http://127.0.0.1:11434/v1/chat/completions");
        assert!(serde_json::from_str::<OpenAiConfig>(r#"{"api_key": "sk-x"}"#).is_err());
        let with_key = OpenAiConfig {
            api_key: Some("sk-secret".into()),
            ..Default::default()
        };
        assert!(!format!("{with_key:?}").contains("sk-secret"));
        assert!(
            !serde_json::to_string(&with_key)
                .unwrap()
                .contains("sk-secret")
        );
    }

    #[test]
    fn completion_parsing() {
        let v = json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "plan_itn", "arguments": "{\"total_nets\": 5}"}},
            {"id": "2", "type": "function", "function": {"name": "itn_map", "arguments": {}}}
        ]}}]});
        let r = parse_completion(&v).unwrap();
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[1].arguments, "{}");
        assert!(parse_completion(&json!({"error": "x"})).is_err());
        assert!(parse_completion(&json!({"choices": [{"message": {"content": ""}}]})).is_err());
    }

    #[test]
    fn stream_accumulates_tool_call_fragments() {
        let mut acc = StreamAccumulator::default();
        for chunk in [
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "plan_", "arguments": "{\"total"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "itn", "arguments": "_nets\": 7}"}}]}}]}),
            json!({"choices": [{"delta": {"content": "ok"}}]}),
        ] {
            acc.add(&chunk).unwrap();
        }
        let r = acc.finish();
        assert_eq!(r.text, "ok");
        assert_eq!(
            r.tool_calls,
            [RawToolCall {
                name: "plan_itn".into(),
                arguments: "{\"total_nets\": 7}".into()
            }]
        );
    }
}
