//! The OpenAI-compatible backend against a real local server (tests/support): the request
//! carries the disk-derived context, hostile or invalid tool calls are refused, timeouts and
//! unreachable servers fall back to the rules, and streamed text arrives as deltas.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use mrpt_interpreter::{Interpreter, OpenAiConfig, PlanSource, ToolCall, ToolName};
use mrpt_table::RankingMethod;
use support::{
    Reply, kano_post_analysis, kano_pre_analysis, start, text_delta, text_reply, tool_calls,
};

fn config(addr: std::net::SocketAddr, timeout_ms: u64) -> OpenAiConfig {
    OpenAiConfig {
        base_url: format!("http://{addr}/v1"),
        model: "test-model".into(),
        api_key: Some("sk-test".into()),
        timeout_ms,
        ..OpenAiConfig::default()
    }
}

fn itn(total: u64, hh: Option<f64>) -> ToolCall {
    ToolCall::PlanItn {
        total_nets: total,
        avg_household_size: hh,
        urban_threshold: None,
        method: RankingMethod::Composite,
        strategy: None,
    }
}

#[tokio::test]
async fn request_carries_disk_context_and_tool_call_is_used() {
    let (addr, script) = start(vec![Reply::Json(tool_calls(&[(
        "plan_itn",
        json!({"total_nets": 120000}),
    )]))])
    .await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let mut ctx = kano_post_analysis();
    ctx.recent_turns = vec![mrpt_interpreter::Turn {
        role: mrpt_interpreter::Role::User,
        text: "run the malaria risk analysis".into(),
    }];
    let plan = interp
        .plan("plan ITN distribution with 120000 nets", &ctx)
        .await;
    assert_eq!(plan.source, PlanSource::Model, "{plan:#?}");
    assert_eq!(plan.calls, [itn(120_000, None)]);
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);

    let got = script.received();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(req.body["model"], "test-model");
    assert_eq!(req.body["stream"], false);
    let system = req.body["messages"][0]["content"].as_str().unwrap();
    assert_eq!(req.body["messages"][0]["role"], "system");
    assert!(system.contains("Analysis Complete: True"), "{system}");
    assert!(system.contains("Analysis ID: gen-1-a3f9"));
    assert!(system.contains("Zango"));
    assert!(system.contains("NEVER call run_analysis"));
    let messages = req.body["messages"].as_array().unwrap();
    assert_eq!(messages[1]["content"], "run the malaria risk analysis");
    assert_eq!(
        messages.last().unwrap()["content"],
        "plan ITN distribution with 120000 nets"
    );
    let tools = req.body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), ToolName::ALL.len());
}

#[tokio::test]
async fn pre_analysis_context_says_false() {
    let (addr, script) = start(vec![Reply::Json(text_reply(
        "Your data has 66 wards. Shall I run the analysis?",
    ))])
    .await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let plan = interp.plan("hello there", &kano_pre_analysis()).await;
    assert_eq!(plan.source, PlanSource::Model);
    assert!(plan.calls.is_empty());
    assert_eq!(
        plan.reply_without_tools.as_deref(),
        Some("Your data has 66 wards. Shall I run the analysis?")
    );
    let system = script.received()[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(system.contains("Analysis Complete: False"));
}

#[tokio::test]
async fn h4_model_rerunning_a_complete_analysis_is_overruled() {
    let (addr, _script) = start(vec![Reply::Json(tool_calls(&[
        ("run_analysis", json!({"force": true})),
        (
            "plan_itn",
            json!({"total_nets": 50000, "avg_household_size": 5}),
        ),
    ]))])
    .await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let plan = interp
        .plan(
            "plan ITN with 50000 nets, household size 5",
            &kano_post_analysis(),
        )
        .await;
    assert_eq!(plan.calls, [itn(50_000, Some(5.0))]);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("run_analysis dropped")),
        "{:?}",
        plan.notes
    );
}

#[tokio::test]
async fn hostile_and_invalid_tool_calls_are_refused_and_rules_answer() {
    let hostile = [
        ("execute_sql_query", json!({"query": "DROP TABLE df"})),
        ("plan_itn", json!({"total_nets": -5})),
        ("ward_detail", json!({"ward": "Atlantis'; --"})),
        ("variable_map", json!({"variable": "../../etc/passwd"})),
        ("top_wards", json!({"n": "all of them"})),
    ];
    let replies = hostile
        .iter()
        .map(|(n, a)| Reply::Json(tool_calls(&[(n, a.clone())])))
        .collect();
    let (addr, script) = start(replies).await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let ctx = kano_post_analysis();
    for (name, _) in hostile {
        let plan = interp.plan("which wards are most at risk?", &ctx).await;
        assert_eq!(plan.source, PlanSource::Rules, "{name}: {plan:#?}");
        assert!(
            plan.notes[0].contains("refused") && plan.notes[0].contains(name),
            "{name}: {:?}",
            plan.notes
        );
        assert_eq!(
            plan.calls,
            [ToolCall::TopWards {
                n: 10,
                bottom: false,
                decile: false,
                method: RankingMethod::Composite
            }]
        );
    }
    assert_eq!(script.received().len(), 5);
}

#[tokio::test]
async fn model_inventing_the_net_total_asks_instead() {
    let (addr, _script) = start(vec![Reply::Json(tool_calls(&[(
        "plan_itn",
        json!({"total_nets": 10000}),
    )]))])
    .await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let plan = interp
        .plan("help me plan ITN distribution", &kano_post_analysis())
        .await;
    assert!(plan.calls.is_empty(), "{plan:#?}");
    assert!(plan.reply_without_tools.unwrap().contains("number of nets"));
}

#[tokio::test]
async fn timeout_retries_once_then_falls_back_to_rules() {
    let slow = || {
        Reply::After(
            Duration::from_secs(10),
            Box::new(Reply::Json(text_reply("too late"))),
        )
    };
    let (addr, script) = start(vec![slow(), slow()]).await;
    let interp = Interpreter::openai(config(addr, 300)).unwrap();
    let started = Instant::now();
    let plan = interp
        .plan("plan ITN with 120000 nets", &kano_post_analysis())
        .await;
    let took = started.elapsed();
    assert_eq!(plan.source, PlanSource::Rules);
    assert_eq!(plan.calls, [itn(120_000, None)]);
    assert!(
        plan.notes[0].contains("did not answer in time"),
        "{:?}",
        plan.notes
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // One try plus one retry.
    assert_eq!(
        script
            .wait_for_requests(2, Duration::from_secs(5))
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn server_error_is_retried_once() {
    let (addr, script) = start(vec![
        Reply::Status(503, "overloaded"),
        Reply::Json(tool_calls(&[(
            "vulnerability_map",
            json!({"method": "pca"}),
        )])),
    ])
    .await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let plan = interp
        .plan("show me the PCA map", &kano_post_analysis())
        .await;
    assert_eq!(plan.source, PlanSource::Model, "{plan:#?}");
    assert_eq!(
        plan.calls,
        [ToolCall::VulnerabilityMap {
            method: mrpt_interpreter::MapMethod::Pca
        }]
    );
    assert_eq!(script.received().len(), 2);
}

#[tokio::test]
async fn unreachable_and_nonsense_fall_back() {
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let interp = Interpreter::openai(config(closed, 2_000)).unwrap();
    let plan = interp.plan("top 5 wards", &kano_post_analysis()).await;
    assert_eq!(plan.source, PlanSource::Rules);
    assert!(plan.notes[0].contains("unreachable"), "{:?}", plan.notes);
    assert_eq!(plan.calls.len(), 1);

    let (addr, _script) = start(vec![
        Reply::Raw("this is not json"),
        Reply::Json(json!({"choices": []})),
        Reply::Status(401, "bad key"),
    ])
    .await;
    let interp = Interpreter::openai(config(addr, 2_000)).unwrap();
    for expected in ["not JSON", "no choices", "HTTP 401"] {
        let plan = interp.plan("top 5 wards", &kano_post_analysis()).await;
        assert_eq!(plan.source, PlanSource::Rules);
        assert!(plan.notes[0].contains(expected), "{:?}", plan.notes);
    }
}

#[tokio::test]
async fn text_without_a_tool_yields_to_the_rules_tool() {
    let (addr, _script) = start(vec![Reply::Json(text_reply(
        "Sure, I will run the analysis for you!",
    ))])
    .await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let plan = interp
        .plan("run the malaria risk analysis", &kano_pre_analysis())
        .await;
    assert!(matches!(plan.calls[..], [ToolCall::RunAnalysis { .. }]));
    assert!(plan.notes[0].contains("without a tool"));
}

#[tokio::test]
async fn streamed_text_arrives_as_deltas() {
    let parts = [
        "Hello! ",
        "I help prioritise ",
        "wards for malaria ",
        "interventions.",
    ];
    let (addr, script) = start(vec![Reply::Sse(
        parts.iter().map(|p| text_delta(p)).collect(),
    )])
    .await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let plan = interp
        .plan_streaming("who are you?", &kano_post_analysis(), &tx)
        .await;
    drop(tx);
    let mut got = Vec::new();
    while let Some(d) = rx.recv().await {
        got.push(d);
    }
    assert_eq!(got, parts);
    assert_eq!(
        plan.reply_without_tools.as_deref(),
        Some(parts.concat().as_str())
    );
    assert_eq!(plan.source, PlanSource::Model);
    assert_eq!(script.received()[0].body["stream"], true);
}

#[tokio::test]
async fn streamed_tool_call_fragments_are_assembled() {
    let chunk = |name: Option<&str>, args: &str| {
        let mut f = json!({"arguments": args});
        if let Some(n) = name {
            f["name"] = json!(n);
        }
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": f}]}}]})
    };
    let (addr, _script) = start(vec![Reply::Sse(vec![
        chunk(Some("compare_wards"), ""),
        chunk(None, "{\"a\": \"dala\", "),
        chunk(None, "\"b\": \"Fagge A\"}"),
    ])])
    .await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let plan = interp
        .plan_streaming("compare Dala and Fagge A", &kano_post_analysis(), &tx)
        .await;
    drop(tx);
    assert!(rx.recv().await.is_none(), "no text for a tool call");
    assert_eq!(plan.source, PlanSource::Model);
    assert_eq!(
        plan.calls,
        [ToolCall::CompareWards {
            a: "Dala".into(),
            b: "Fagge A".into()
        }]
    );
}

#[tokio::test]
async fn stream_timeout_falls_back_and_streams_the_rules_reply() {
    let (addr, _script) = start(vec![
        Reply::After(Duration::from_secs(10), Box::new(Reply::Sse(vec![]))),
        Reply::After(Duration::from_secs(10), Box::new(Reply::Sse(vec![]))),
    ])
    .await;
    let interp = Interpreter::openai(config(addr, 300)).unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let plan = interp
        .plan_streaming("hello", &kano_post_analysis(), &tx)
        .await;
    drop(tx);
    let mut text = String::new();
    while let Some(d) = rx.recv().await {
        text.push_str(&d);
    }
    assert_eq!(plan.source, PlanSource::Rules);
    assert!(plan.notes[0].contains("did not answer in time"));
    assert_eq!(Some(text.as_str()), plan.reply_without_tools.as_deref());
    assert!(text.contains("analysis is complete"), "{text}");
}

#[tokio::test]
async fn client_gone_mid_stream_ends_cleanly() {
    let many: Vec<_> = (0..50)
        .map(|i| text_delta(&format!("part {i}. ")))
        .collect();
    let (addr, _script) = start(vec![Reply::Sse(many)]).await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let (tx, mut rx) = mpsc::channel(1);
    let reader = tokio::spawn(async move {
        let first = rx.recv().await;
        drop(rx);
        first
    });
    let plan = tokio::time::timeout(
        Duration::from_secs(10),
        interp.plan_streaming("tell me something", &kano_post_analysis(), &tx),
    )
    .await
    .expect("plan_streaming must stop when the client goes away");
    assert_eq!(reader.await.unwrap().as_deref(), Some("part 0. "));
    assert!(plan.calls.is_empty());
    // Reading stopped at the disconnect instead of draining the whole answer.
    let partial = plan.reply_without_tools.unwrap_or_default();
    assert!(partial.starts_with("part 0. "), "{partial}");
    assert!(!partial.contains("part 49."), "{partial}");
}

#[tokio::test]
async fn streamed_text_with_a_tool_call_keeps_both_and_guards_speak() {
    let tool = |name: &str, args: &str| {
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
            "function": {"name": name, "arguments": args}}]}}]})
    };
    let (addr, _script) = start(vec![
        Reply::Sse(vec![
            text_delta("Let me show you the map. "),
            tool("vulnerability_map", "{\"method\": \"both\"}"),
        ]),
        // H4 over the streaming path: the model wants to re-run a complete analysis.
        Reply::Sse(vec![tool("run_analysis", "{\"force\": true}")]),
    ])
    .await;
    let interp = Interpreter::openai(config(addr, 5_000)).unwrap();
    let ctx = kano_post_analysis();

    let (tx, mut rx) = mpsc::channel(64);
    let plan = interp.plan_streaming("who are you?", &ctx, &tx).await;
    drop(tx);
    let mut text = String::new();
    while let Some(d) = rx.recv().await {
        text.push_str(&d);
    }
    assert_eq!(text, "Let me show you the map. ");
    assert_eq!(
        plan.calls,
        [ToolCall::VulnerabilityMap {
            method: mrpt_interpreter::MapMethod::Both
        }]
    );
    assert_eq!(plan.reply_without_tools.as_deref(), Some(text.as_str()));

    let (tx, mut rx) = mpsc::channel(64);
    let plan = interp.plan_streaming("hmm, interesting", &ctx, &tx).await;
    drop(tx);
    let mut text = String::new();
    while let Some(d) = rx.recv().await {
        text.push_str(&d);
    }
    assert!(plan.calls.is_empty(), "{plan:#?}");
    assert!(text.contains("already complete"), "{text}");
    assert_eq!(plan.reply_without_tools.as_deref(), Some(text.as_str()));
}

#[tokio::test]
async fn https_goes_through_rustls_without_a_global_provider() {
    // A plain-HTTP server behind an https:// URL: the TLS handshake runs (ring provider, no
    // process-wide default installed) and fails cleanly into the rules.
    let (addr, _script) = start(vec![]).await;
    let cfg = OpenAiConfig {
        base_url: format!("https://{addr}/v1"),
        retries: 0,
        ..config(addr, 5_000)
    };
    let interp = Interpreter::openai(cfg).unwrap();
    let plan = interp.plan("top 5 wards", &kano_post_analysis()).await;
    assert_eq!(plan.source, PlanSource::Rules);
    assert!(plan.notes[0].contains("unreachable"), "{:?}", plan.notes);
    assert_eq!(plan.calls.len(), 1);
}
