//! Incremental parsing of a `text/event-stream` body as OpenAI-compatible servers send it:
//! `data: <json>` lines, blank lines between events, `data: [DONE]` at the end. Chunks may split
//! lines and even UTF-8 characters anywhere, so bytes are buffered until a newline.

#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
    data: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SseEvent {
    Data(String),
    Done,
}

impl SseParser {
    /// Feed a chunk; returns the events completed by it.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            self.line(&line, &mut events);
        }
        events
    }

    /// End of body: a last event without its blank line still counts.
    pub(crate) fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            let line = String::from_utf8_lossy(&rest).trim_end().to_string();
            self.line(&line, &mut events);
        }
        self.dispatch(&mut events);
        events
    }

    fn line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(events);
        } else if let Some(rest) = line.strip_prefix("data:") {
            self.data
                .push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
        }
        // Comments (": keepalive"), event:, id: and retry: lines carry nothing we use.
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        if self.data.is_empty() {
            return;
        }
        let payload = self.data.join("\n");
        self.data.clear();
        if payload.trim() == "[DONE]" {
            events.push(SseEvent::Done);
        } else {
            events.push(SseEvent::Data(payload));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_utf8() {
        let body = "data: {\"a\":\"é\"}\n\n: keepalive\n\ndata: {\"b\":1}\r\n\r\ndata: [DONE]\n\n"
            .as_bytes();
        let mut p = SseParser::default();
        let mut events = Vec::new();
        for chunk in body.chunks(3) {
            events.extend(p.feed(chunk));
        }
        events.extend(p.finish());
        assert_eq!(
            events,
            [
                SseEvent::Data("{\"a\":\"é\"}".into()),
                SseEvent::Data("{\"b\":1}".into()),
                SseEvent::Done
            ]
        );
    }

    #[test]
    fn last_event_without_blank_line() {
        let mut p = SseParser::default();
        assert!(p.feed(b"data: x").is_empty());
        assert_eq!(p.finish(), [SseEvent::Data("x".into())]);
    }
}
