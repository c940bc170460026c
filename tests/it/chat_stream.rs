//! `POST /send_message_streaming` against the real binary: SSE framing, `: keepalive` comments
//! while a slow tool (the analysis of a large synthetic dataset) runs, and a client that leaves
//! mid-stream leaving no partial state behind.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use crate::support;
use crate::support::Answer;
use crate::support::chat::*;
use crate::support::{Server, ServerBuilder, poll_until};
use serde_json::Value;

/// Keepalive interval for these tests (production default: 5 s, at most 15 s).
const KEEPALIVE_MS: u64 = 50;
/// Big enough that the analysis takes well over one keepalive interval on any machine.
const SYNTH_WARDS: &str = "3000";

fn start(dir: &Path) -> Server {
    let config = dir.join("chat.toml");
    std::fs::write(
        &config,
        format!("[app]\nchat_keepalive_ms = {KEEPALIVE_MS}\n"),
    )
    .unwrap();
    ServerBuilder::new()
        .args(&["-w", "2", "-c", config.to_str().unwrap()])
        .start()
}

fn synth(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let out = dir.join("synth");
    let (code, _, err) = support::run_to_exit(
        &[
            "synth",
            "--wards",
            SYNTH_WARDS,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
        dir,
    );
    assert_eq!(code, Some(0), "{err}");
    (out.join("wards.csv"), out.join("wards_shapefile.zip"))
}

fn conversation(server: &Server, sid: &str) -> Option<Value> {
    let path = server
        .dir
        .path()
        .join(format!("instance/uploads/{sid}/conversation.json"));
    let bytes = std::fs::read(path).ok()?;
    // A new session's conversation.json holds `null` (no turn yet).
    Some(serde_json::from_slice::<Value>(&bytes).unwrap()).filter(|v| !v.is_null())
}

fn frames(items: &[Sse]) -> Vec<&Value> {
    items
        .iter()
        .filter_map(|i| match i {
            Sse::Data(v) => Some(v),
            Sse::Comment(_) => None,
        })
        .collect()
}

fn check_framing(items: &[Sse]) -> String {
    let data = frames(items);
    assert!(!data.is_empty());
    for f in &data {
        assert!(f["content"].is_string(), "{f}");
        assert!(f["status"].is_string(), "{f}");
        assert!(f["done"].is_boolean(), "{f}");
    }
    let done: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, f)| f["done"] == true)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(done, [data.len() - 1], "exactly one done frame, the last");
    assert!(matches!(items.last(), Some(Sse::Data(_))));
    data.iter()
        .map(|f| f["content"].as_str().unwrap())
        .collect()
}

#[test]
fn sse_framing_and_keepalive_while_the_analysis_runs() {
    let work = tempfile::tempdir().unwrap();
    let server = start(work.path());
    let addr = server.addr();
    let (csv, shp) = synth(work.path());
    let sid = create_session(addr);
    upload(addr, &sid, &csv, &shp);

    // A text-only answer: sentence deltas, then done.
    let mut s = open_stream(addr, &sid, "hello, what can you do?");
    let r = s.read_to_end();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    let items = parse_sse(&r.text());
    let text = check_framing(&items);
    assert!(text.contains("run the malaria risk analysis"), "{text}");

    // A slow tool: keepalives while it runs, one frame with its results, then done.
    let mut s = open_stream(addr, &sid, "run the malaria risk analysis");
    let r = s.read_to_end();
    assert_eq!(r.status, 200);
    let items = parse_sse(&r.text());
    let text = check_framing(&items);
    let tool_at = items
        .iter()
        .position(
            |i| matches!(i, Sse::Data(v) if v["tools_used"] == serde_json::json!(["run_analysis"])),
        )
        .unwrap_or_else(|| panic!("no tool frame: {items:?}"));
    let keepalives_before = items[..tool_at]
        .iter()
        .filter(|i| matches!(i, Sse::Comment(c) if c == "keepalive"))
        .count();
    assert!(
        keepalives_before >= 1,
        "no keepalive while the analysis ran: {items:?}"
    );
    let Sse::Data(tool) = &items[tool_at] else {
        unreachable!()
    };
    assert!(
        !tool["visualizations"].as_array().unwrap().is_empty(),
        "{tool}"
    );
    let Some(Sse::Data(last)) = items.last() else {
        unreachable!()
    };
    assert_eq!(last["context"]["analysis_complete"], true, "{last}");
    // No silence longer than a few keepalive intervals (15 s is the contract).
    let gaps = s
        .received
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    assert!(gaps < Duration::from_secs(5), "longest silence {gaps:?}");
    // What the client assembled is what was stored, once.
    let doc = conversation(&server, &sid).unwrap();
    let turns = doc["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 4);
    assert_eq!(turns[3]["text"].as_str().unwrap(), text);
    assert_eq!(status(addr, &sid)["analyses_started"], 1);

    // Errors before the stream starts are JSON.
    let r = request(
        addr,
        "POST",
        "/send_message_streaming",
        None,
        Some("application/json"),
        br#"{"message":"hi"}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json_body()["status"], "error");
}

#[test]
fn client_disconnect_mid_stream_leaves_no_partial_state() {
    let work = tempfile::tempdir().unwrap();
    let server = start(work.path());
    let addr = server.addr();
    let (csv, shp) = synth(work.path());
    let sid = create_session(addr);
    upload(addr, &sid, &csv, &shp);

    let mut s = open_stream(addr, &sid, "run the malaria risk analysis");
    assert!(
        s.read_until(": keepalive"),
        "the analysis finished before a keepalive"
    );
    // While the tool runs nothing of this turn is on disk.
    assert!(conversation(&server, &sid).is_none());
    drop(s);

    // The analysis completes anyway, and the turn is written once, whole.
    poll_until(Duration::from_secs(180), || {
        (status(addr, &sid)["analysis_complete"] == true).then_some(())
    })
    .expect("the analysis did not complete after the client left");
    let doc = poll_until(Duration::from_secs(30), || {
        conversation(&server, &sid).filter(|d| d["turns"].as_array().is_some_and(|t| t.len() == 2))
    })
    .expect("the turn was not stored");
    let turns = doc["turns"].as_array().unwrap();
    assert_eq!(turns[0]["text"], "run the malaria risk analysis");
    assert!(
        turns[1]["text"]
            .as_str()
            .unwrap()
            .contains("The malaria risk analysis is complete"),
        "{doc:#}"
    );

    // The next message, on any worker, carries on from there.
    let a = send(addr, &sid, "which wards are most at risk?").json_body();
    assert_eq!(tools_of(&a), ["top_wards"], "{a:#}");
    let st = status(addr, &sid);
    assert_eq!(st["analyses_started"], 1, "{st:#}");
    assert_eq!(st["analyses_committed"], 1, "{st:#}");
    assert_eq!(
        conversation(&server, &sid).unwrap()["turns"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}
