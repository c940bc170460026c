//! A session's conversation (`conversation.json`): bounded in size, listed and read back for
//! the history views. The document is the app's, with one shape this crate relies on: a
//! `turns` array of objects `{role: "user"|"assistant", text, at_ms, visualizations?}`, oldest
//! first. Everything else in it (pending questions...) is passed through untouched.
//!
//! It lives on disk, so it survives worker restarts; every read goes to the disk.

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::id::SessionId;
use crate::manifest::Manifest;
use crate::store::Store;

/// Largest `conversation.json`: past it the oldest turns are dropped at the next write.
pub const MAX_CONVERSATION_BYTES: usize = 512 * 1024;
/// Characters of a summary's title and preview.
const SUMMARY_CHARS: usize = 80;

/// One conversation as the history list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConversationSummary {
    pub session_id: String,
    /// The first message the user typed (shortened).
    pub title: String,
    /// Unix ms of the first and the last turn.
    pub created_at_ms: u64,
    pub last_activity_ms: u64,
    /// The session has uploaded data now.
    pub has_files: bool,
    /// The last answer (shortened).
    pub preview: String,
    pub messages: usize,
}

/// One stored turn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConversationMessage {
    /// `user` or `assistant`.
    pub role: String,
    pub text: String,
    pub at_ms: u64,
    /// Map and chart paths the answer showed.
    pub visualizations: Vec<String>,
}

/// Drops the oldest turns until the document serialises within `max` bytes (an empty `turns`
/// list when even one turn is too large). Returns the serialised document.
pub(crate) fn bounded(mut doc: Value, max: usize) -> (Value, Vec<u8>) {
    loop {
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        if bytes.len() <= max {
            return (doc, bytes);
        }
        let Some(turns) = doc.get_mut("turns").and_then(Value::as_array_mut) else {
            return (doc, bytes);
        };
        if turns.is_empty() {
            return (doc, bytes);
        }
        // Drop a tenth at a time: one re-serialisation per step, few steps.
        let n = (turns.len() / 10).max(1);
        turns.drain(..n);
    }
}

pub(crate) fn turns(doc: &Value) -> Vec<ConversationMessage> {
    doc.get("turns")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(|t| {
                    Some(ConversationMessage {
                        role: t.get("role")?.as_str()?.to_owned(),
                        text: t.get("text")?.as_str()?.to_owned(),
                        at_ms: t.get("at_ms").and_then(Value::as_u64).unwrap_or(0),
                        visualizations: t
                            .get("visualizations")
                            .and_then(Value::as_array)
                            .map(|v| {
                                v.iter()
                                    .filter_map(|p| p.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn shorten(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= SUMMARY_CHARS {
        return text;
    }
    let mut short: String = text.chars().take(SUMMARY_CHARS - 1).collect();
    short.push('…');
    short
}

impl Store {
    /// The session's turns, oldest first (empty without a conversation).
    pub fn conversation_messages(&self, id: &SessionId) -> Result<Vec<ConversationMessage>> {
        Ok(self
            .read_conversation(id)?
            .map(|doc| turns(&doc))
            .unwrap_or_default())
    }

    /// The history list's entry for one session; `None` when it has no turn yet.
    pub fn conversation_summary(&self, id: &SessionId) -> Result<Option<ConversationSummary>> {
        let messages = self.conversation_messages(id)?;
        if messages.is_empty() {
            return Ok(None);
        }
        let has_files = Manifest::load(&self.session_dir(id)?)
            .map(|m| m.upload.is_some())
            .unwrap_or(false);
        Ok(summary_of(id, &messages, has_files))
    }
}

/// The history list's entry of a session with these turns.
pub(crate) fn summary_of(
    id: &SessionId,
    messages: &[ConversationMessage],
    has_files: bool,
) -> Option<ConversationSummary> {
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return None;
    };
    let title = messages
        .iter()
        .find(|m| m.role == "user" && !m.text.starts_with("__"))
        .map(|m| shorten(&m.text))
        .unwrap_or_else(|| "Conversation".to_owned());
    let preview = messages
        .iter()
        .rev()
        .find(|m| m.role == "assistant")
        .map(|m| shorten(&m.text))
        .unwrap_or_default();
    Some(ConversationSummary {
        session_id: id.to_string(),
        title,
        created_at_ms: first.at_ms,
        last_activity_ms: last.at_ms,
        has_files,
        preview,
        messages: messages.len(),
    })
}
