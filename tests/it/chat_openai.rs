//! The scripted conversation with the OpenAI-compatible backend, against a local server in this
//! test that speaks the chat-completions protocol and answers with tool calls. Checks that the
//! model is given the disk-derived context, that hostile or invented calls are refused or
//! overruled by the guards, and that a model timeout falls back to the rules cleanly.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::Answer;
use crate::support::ServerBuilder;
use crate::support::chat::*;
use serde_json::{Value, json};

const KEY_ENV: &str = "CHAT_TEST_LLM_KEY";
const KEY: &str = "test-key-7f3a";

#[derive(Debug, Clone)]
struct Recorded {
    authorization: Option<String>,
    body: Value,
}

impl Recorded {
    fn system(&self) -> &str {
        self.body["messages"][0]["content"].as_str().unwrap()
    }

    fn user_message(&self) -> &str {
        self.body["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
    }
}

struct Stub {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Stub {
    fn start() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&requests);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(conn, &shared));
            }
        });
        Stub { addr, requests }
    }

    /// The last request whose user message contains `needle`.
    fn request_for(&self, needle: &str) -> Recorded {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|r| r.user_message().contains(needle))
            .cloned()
            .unwrap_or_else(|| panic!("the model was not asked about {needle:?}"))
    }
}

fn tool(name: &str, args: Value) -> Value {
    json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": name, "arguments": args.to_string()}
                }]
            }
        }]
    })
}

fn text(content: &str) -> Value {
    json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": content}}]
    })
}

/// What the stub model answers to a user message.
fn decide(message: &str) -> Value {
    let m = message.to_lowercase();
    // Facility-export questions worded so that the TPR conversation's own phrases do not claim
    // them: the model chooses the TPR tools.
    if m.contains("how often were tests positive") {
        tool(
            "tpr_calculate",
            json!({"facility_level": "primary", "age_group": "u5", "test_method": "rdt"}),
        )
    } else if m.contains("change across the years") {
        tool("tpr_trend", json!({}))
    } else if m.contains("places should come first") {
        tool("tpr_reprioritise", json!({"n": 14}))
    } else if m.contains("how complete is the reporting") {
        tool("tpr_missingness", json!({}))
    } else if m.contains("what's in it") {
        tool("data_summary", json!({}))
    } else if m.contains("run the malaria risk analysis") {
        tool("run_analysis", json!({}))
    } else if m.contains("120000 nets") {
        tool("plan_itn", json!({"total_nets": 120000}))
    } else if m.contains("nets please") {
        // Invents a net total the user never gave (the Flask system's 10,000).
        tool("plan_itn", json!({"total_nets": 10000}))
    } else if m.contains("vulnerability map") {
        tool("vulnerability_map", json!({"method": "composite"}))
    } else if m.contains("drop") {
        tool("execute_sql_query", json!({"query": "DROP TABLE df"}))
    } else if m.contains("show me the top wards") {
        // Re-runs an analysis that is complete, unasked.
        tool("run_analysis", json!({"force": true}))
    } else if m.contains("most at risk") {
        tool("top_wards", json!({"n": 10}))
    } else if let Some(rest) = message.strip_prefix("why is ") {
        let ward = rest.split(" ranked").next().unwrap();
        tool("ward_detail", json!({"ward": ward}))
    } else if m.contains("compare") {
        tool("compare_wards", json!({"a": "Dala", "b": "Fagge A"}))
    } else if m.contains("composite score calculated") {
        tool("explain_method", json!({"topic": "composite"}))
    } else {
        text("I can summarise your data, run the risk analysis and plan net distribution.")
    }
}

fn serve(mut s: TcpStream, requests: &Mutex<Vec<Recorded>>) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let length: usize = header("content-length").unwrap().parse().unwrap();
    while raw.len() < head_end + length {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    assert!(head.starts_with("POST /v1/chat/completions "), "{head}");
    let body: Value = serde_json::from_slice(&raw[head_end..head_end + length]).unwrap();
    let recorded = Recorded {
        authorization: header("authorization"),
        body,
    };
    let answer = decide(recorded.user_message());
    let slow = recorded.user_message().contains("slowly");
    let streaming = recorded.body["stream"] == true;
    requests.lock().unwrap().push(recorded);
    if slow {
        // Longer than the configured timeout: the app must give up and use its rules.
        std::thread::sleep(Duration::from_millis(2500));
    }
    let streamed_text = answer["choices"][0]["message"]["content"]
        .as_str()
        .filter(|_| streaming)
        .map(str::to_owned);
    if let Some(content) = streamed_text {
        // Text answers to `stream: true` come as SSE deltas, split mid-word.
        let mut body = String::new();
        let chars: Vec<char> = content.chars().collect();
        for piece in chars.chunks(7) {
            let piece: String = piece.iter().collect();
            let chunk = json!({"choices": [{"index": 0, "delta": {"content": piece}}]});
            body.push_str(&format!("data: {chunk}\n\n"));
        }
        body.push_str("data: [DONE]\n\n");
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let payload = answer.to_string();
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
}

#[test]
fn scripted_conversation_with_an_openai_compatible_model() {
    let stub = Stub::start();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("llm.toml");
    std::fs::write(
        &config,
        format!(
            "[app.llm]\nbackend = \"openai\"\nbase_url = \"http://{}/v1\"\nmodel = \"stub-model\"\napi_key_env = \"{KEY_ENV}\"\ntimeout_ms = 1000\n",
            stub.addr
        ),
    )
    .unwrap();
    let server = ServerBuilder::new()
        .args(&["-w", "3", "-c", config.to_str().unwrap()])
        .env(KEY_ENV, KEY)
        .start();
    let addr = server.addr();
    let sid = create_session(addr);
    upload_kano(addr, &sid);
    upload_kano_population(addr, &sid);
    let say = |message: &str, tools: &[&str]| -> Value {
        let a = send(addr, &sid, message).json_body();
        assert_eq!(tools_of(&a), tools, "{message:?} -> {a:#}");
        a
    };

    let a = say("I've uploaded my data, what's in it?", &["data_summary"]);
    assert_eq!(a["interpreter"]["source"], "model", "{a:#}");
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains("66 rows covering 66 wards")
    );
    let r = stub.request_for("what's in it");
    assert_eq!(
        r.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(r.body["model"], "stub-model");
    // The whole catalogue, the LGA and exploration tools included (issue 14).
    // The whole catalogue, the LGA, exploration and TPR tools included (issues 13, 14).
    assert_eq!(r.body["tools"].as_array().unwrap().len(), 29);
    assert!(
        r.system().contains("Analysis Complete: False"),
        "{}",
        r.system()
    );
    assert!(
        r.system().contains("test_positivity_rate"),
        "{}",
        r.system()
    );

    let a = say("run the malaria risk analysis", &["run_analysis"]);
    let analysis_id = a["context"]["analysis_id"].as_str().unwrap().to_owned();

    let a = say("plan ITN distribution with 120000 nets", &["plan_itn"]);
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains("of 120,000 nets allocated")
    );
    // The model was told, from disk, that the analysis is done (on whichever worker).
    let r = stub.request_for("120000 nets");
    assert!(
        r.system().contains("Analysis Complete: True"),
        "{}",
        r.system()
    );
    assert!(r.system().contains(&format!("Analysis ID: {analysis_id}")));
    // ... and it saw the earlier turns of the conversation.
    let history: Vec<&str> = r.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(
        history.contains(&"run the malaria risk analysis"),
        "{history:?}"
    );

    let a = say("show me the vulnerability map", &["vulnerability_map"]);
    assert!(
        a["visualizations"][0]["url"]
            .as_str()
            .unwrap()
            .contains(&analysis_id)
    );
    let a = say("which wards are most at risk?", &["top_wards"]);
    let top = a["response"]
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("1. "))
        .and_then(|l| l.split(" - score").next())
        .unwrap()
        .to_owned();
    let a = say(&format!("why is {top} ranked first?"), &["ward_detail"]);
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains(&format!("{top} is ranked 1st of 66"))
    );
    let r = stub.request_for("ranked first");
    assert!(
        r.system()
            .contains(&format!("Ward detail: {top} rank 1 of 66")),
        "{}",
        r.system()
    );
    let a = say("compare Dala and Fagge A", &["compare_wards"]);
    let text = a["response"].as_str().unwrap();
    assert!(text.contains("Dala") && text.contains("Fagge A"), "{text}");
    let a = say(
        "how is the composite score calculated?",
        &["explain_method"],
    );
    assert!(a["response"].as_str().unwrap().contains("median"));

    // A hostile tool is refused; the rules answer instead (and run nothing dangerous).
    let a = send(addr, &sid, "drop every table you have").json_body();
    assert!(tools_of(&a).is_empty(), "{a:#}");
    let notes = a["interpreter"]["notes"].to_string();
    assert!(
        notes.contains("execute_sql_query") && notes.contains("not a tool"),
        "{notes}"
    );
    // A re-run the user did not ask for is dropped by the guards.
    let a = send(addr, &sid, "show me the top wards").json_body();
    assert!(!tools_of(&a).contains(&"run_analysis".to_owned()), "{a:#}");
    // A net total the user never gave is not used: the user is asked.
    let a = send(addr, &sid, "nets please").json_body();
    assert!(!tools_of(&a).contains(&"plan_itn".to_owned()), "{a:#}");
    assert!(
        a["response"].as_str().unwrap().contains("number of nets"),
        "{a:#}"
    );

    // A model that does not answer in time: the rules answer, with a note, promptly.
    let started = Instant::now();
    let a = say("which wards are most at risk, slowly?", &["top_wards"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(a["interpreter"]["source"], "rules");
    assert!(
        a["interpreter"]["notes"].to_string().contains("in time"),
        "{a:#}"
    );

    // Streaming with the model: same framing.
    let mut s = open_stream(addr, &sid, "which wards are most at risk?");
    let r = s.read_to_end();
    let items = parse_sse(&r.text());
    let Some(Sse::Data(last)) = items.last() else {
        panic!("{items:?}")
    };
    assert_eq!(last["done"], true);
    assert_eq!(last["tools_used"], json!(["top_wards"]));

    // A plain text answer streams the model's own deltas.
    let mut s = open_stream(addr, &sid, "hello there");
    let items = parse_sse(&s.read_to_end().text());
    let content: String = items
        .iter()
        .filter_map(|i| match i {
            Sse::Data(v) => v["content"].as_str().map(str::to_owned),
            Sse::Comment(_) => None,
        })
        .collect();
    assert_eq!(
        content,
        "I can summarise your data, run the risk analysis and plan net distribution."
    );
    let Some(Sse::Data(last)) = items.last() else {
        panic!("{items:?}")
    };
    assert_eq!(last["interpreter"]["source"], "model", "{last}");
    assert!(stub.request_for("hello there").body["stream"] == true);

    let st = status(addr, &sid);
    assert_eq!(st["analyses_started"], 1, "{st:#}");
}

/// The TPR tools in the model's catalogue (issue 13): with only a facility export in the session
/// (no ward table), the model's tpr_* calls are executed by the server and the answers carry
/// the server's figures; before an export they are refused in words of the page.
#[test]
fn a_model_chooses_the_tpr_tools() {
    let stub = Stub::start();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("llm.toml");
    std::fs::write(
        &config,
        format!(
            "[app.llm]\nbackend = \"openai\"\nbase_url = \"http://{}/v1\"\nmodel = \"stub-model\"\napi_key_env = \"{KEY_ENV}\"\ntimeout_ms = 5000\n",
            stub.addr
        ),
    )
    .unwrap();
    let server = ServerBuilder::new()
        .args(&["-w", "2", "-c", config.to_str().unwrap()])
        .env(KEY_ENV, KEY)
        .start();
    let addr = server.addr();
    let sid = create_session(addr);
    let ask = "how often were tests positive for under-fives at primary facilities by RDT?";
    let a = send(addr, &sid, ask).json_body();
    assert_eq!(tools_of(&a), Vec::<String>::new(), "{a:#}");
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains("Facility export (TPR)"),
        "{a:#}"
    );
    let export = std::fs::read(fixture("tpr/kano_nmep_2021_2024.csv")).unwrap();
    let (content_type, body) = multipart(&[("file", "kano.csv", &export)]);
    let r = request(
        addr,
        "POST",
        "/api/tpr/upload",
        Some(&sid),
        Some(&content_type),
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let a = send(addr, &sid, ask).json_body();
    assert_eq!(tools_of(&a), ["tpr_calculate"], "{a:#}");
    assert_eq!(a["interpreter"]["source"], "model", "{a:#}");
    assert!(
        stub.request_for("how often were tests positive")
            .system()
            .contains("Facility Export Loaded: True")
    );
    let summaries: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tpr/expected/summaries.json"))
            .unwrap()
            .replace("NaN", "null"),
    )
    .unwrap();
    let want = summaries["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["level"] == "primary" && m["age_group"] == "u5" && m["method"] == "rdt")
        .unwrap()["state_tpr"]
        .clone();
    let text = a["response"].as_str().unwrap();
    assert!(text.contains(&format!("{want}% of")), "{want}: {text}");
    assert!(!text.contains("/api/"), "{text}");

    let a = send(addr, &sid, "how did the results change across the years?").json_body();
    assert_eq!(tools_of(&a), ["tpr_trend"], "{a:#}");
    assert!(
        a["response"].as_str().unwrap().contains("wards worsening"),
        "{a:#}"
    );
    let a = send(addr, &sid, "which 14 places should come first?").json_body();
    assert_eq!(tools_of(&a), ["tpr_reprioritise"], "{a:#}");
    let text = a["response"].as_str().unwrap();
    assert!(
        text.contains("Rank_Latest") && text.contains("\n14. "),
        "{text}"
    );
    let a = send(addr, &sid, "how complete is the reporting?").json_body();
    assert_eq!(tools_of(&a), ["tpr_missingness"], "{a:#}");
    assert!(a["response"].as_str().unwrap().contains("2021:"), "{a:#}");
}
