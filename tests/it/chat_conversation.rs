//! The scripted conversation of issue 7 with the rule-based interpreter, against the real binary
//! with 6 workers and a new connection per message: each message picks the expected tool and
//! answers with the figures from the results, and the analysis runs exactly once.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support;
use crate::support::Answer;
use crate::support::ServerBuilder;
use crate::support::chat::*;

/// (ward, score, rank) rows of the service's own composite ranking file, best first: the chat
/// answers must carry exactly these figures.
fn ranking(server: &support::Server, sid: &str) -> Vec<(String, f64, u32)> {
    let path = server.dir.path().join(format!(
        "instance/uploads/{sid}/analysis_vulnerability_rankings.csv"
    ));
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (w, s, r) = (col("WardName"), col("median_score"), col("overall_rank"));
    let mut rows: Vec<(String, f64, u32)> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let rank: f64 = cells[r].parse().unwrap();
            (cells[w].to_owned(), cells[s].parse().unwrap(), rank as u32)
        })
        .collect();
    rows.sort_by_key(|x| x.2);
    rows
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[test]
fn scripted_kano_conversation_across_workers() {
    let server = ServerBuilder::new().args(&["-w", "6"]).start();
    server.wait_workers(6, Duration::from_secs(60)).unwrap();
    let addr = server.addr();
    let sid = create_session(addr);
    upload_kano(addr, &sid);
    upload_kano_population(addr, &sid);
    let mut pids = BTreeSet::new();
    let mut say = |message: &str, tool: &str| -> serde_json::Value {
        let r = send(addr, &sid, message);
        let answer = r.json_body();
        if let Some(pid) = answer["worker_pid"].as_i64() {
            pids.insert(pid);
        }
        assert_eq!(tools_of(&answer), [tool], "{message:?} -> {answer:#}");
        assert_eq!(answer["status"], "success");
        answer
    };

    let a = say("I've uploaded my data, what's in it?", "data_summary");
    let text = a["response"].as_str().unwrap();
    assert!(text.contains("66 rows covering 66 wards"), "{text}");
    assert!(text.contains("test_positivity_rate"), "{text}");
    assert_eq!(a["context"]["analysis_complete"], false);

    let a = say("run the malaria risk analysis", "run_analysis");
    let text = a["response"].as_str().unwrap().to_owned();
    let analysis_id = a["context"]["analysis_id"].as_str().unwrap().to_owned();
    assert_eq!(a["context"]["analysis_complete"], true);
    assert!(text.contains(&analysis_id), "{text}");
    assert!(text.contains("All 66 wards were ranked"), "{text}");
    let ranked = ranking(&server, &sid);
    let (top, top_score, _) = ranked[0].clone();
    assert!(
        text.contains(&format!("1. {top} - score {top_score:.3}")),
        "{text}"
    );
    let variables: Vec<String> = status(addr, &sid)["analysis_id"]
        .as_str()
        .map(|_| {
            let info = request(addr, "GET", "/session_info", Some(&sid), None, b"").json_body();
            info["variables_used"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap();
    assert!(!variables.is_empty());
    assert!(!a["visualizations"].as_array().unwrap().is_empty());

    let a = say("plan ITN distribution with 120000 nets", "plan_itn");
    let text = a["response"].as_str().unwrap();
    assert!(text.contains("of 120,000 nets allocated"), "{text}");
    assert_eq!(a["context"]["itn_complete"], true);
    assert_eq!(a["context"]["analysis_id"], analysis_id.as_str());

    let a = say("show me the vulnerability map", "vulnerability_map");
    let url = a["visualizations"][0]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("/serve_viz_file/{sid}/")), "{url}");
    assert!(url.contains(&analysis_id), "{url}");
    let map = request(addr, "GET", &url, Some(&sid), None, b"");
    assert_eq!(map.status, 200);
    assert!(map.text().contains("<svg"));

    let a = say("which wards are most at risk?", "top_wards");
    let text = a["response"].as_str().unwrap().to_owned();
    assert!(text.contains("of 66"), "{text}");
    for (ward, score, rank) in ranked.iter().take(10) {
        assert!(
            text.contains(&format!("{rank}. {ward} - score {score:.3}")),
            "{text}"
        );
    }

    let a = say(&format!("why is {top} ranked first?"), "ward_detail");
    let text = a["response"].as_str().unwrap();
    assert!(
        text.contains(&format!("{top} is ranked 1st of 66 wards")),
        "{text}"
    );
    assert!(text.contains("What drives its score"), "{text}");

    let a = say("compare Dala and Fagge A", "compare_wards");
    let text = a["response"].as_str().unwrap();
    let rank_of = |w: &str| ranked.iter().find(|x| x.0 == w).unwrap().clone();
    let (dala, fagge) = (rank_of("Dala"), rank_of("Fagge A"));
    let (hi, lo) = if dala.2 < fagge.2 {
        (&dala, &fagge)
    } else {
        (&fagge, &dala)
    };
    assert!(
        text.contains(&format!(
            "{} is at higher risk than {}: ranked {} vs {} of 66 wards (composite score {:.3} vs {:.3}",
            hi.0,
            lo.0,
            ordinal(hi.2),
            ordinal(lo.2),
            hi.1,
            lo.1
        )),
        "{text}"
    );

    let a = say("how is the composite score calculated?", "explain_method");
    let text = a["response"].as_str().unwrap();
    assert!(text.contains("median"), "{text}");
    assert!(
        text.contains(&variables[0].replace('_', " ")),
        "names the variables used: {text}"
    );

    let st = status(addr, &sid);
    assert_eq!(st["analyses_started"], 1, "{st:#}");
    assert_eq!(st["analysis_id"], analysis_id.as_str());
    assert!(pids.len() >= 2, "all messages on one worker: {pids:?}");

    // The turns are on disk, in order, whole.
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            server
                .dir
                .path()
                .join(format!("instance/uploads/{sid}/conversation.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let turns = doc["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 16);
    assert_eq!(turns[2]["text"], "run the malaria risk analysis");
    assert_eq!(turns[3]["role"], "assistant");

    // The results package, from a chat message, downloadable by the session's owner.
    let r = send(addr, &sid, "download the results package");
    let a = r.json_body();
    assert_eq!(tools_of(&a), ["export_package"], "{a:#}");
    let link = a["download_links"][0]["url"].as_str().unwrap().to_owned();
    assert!(a["response"].as_str().unwrap().contains(&link));
    let zip = request(addr, "GET", &link, Some(&sid), None, b"");
    assert_eq!(zip.status, 200);
    assert!(zip.body.starts_with(b"PK"));
}

#[test]
fn concurrent_chat_requests_run_the_analysis_once() {
    let server = ServerBuilder::new().args(&["-w", "4"]).start();
    let addr = server.addr();
    let sid = create_session(addr);
    upload_kano(addr, &sid);
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let a = send(addr, &sid, "run the malaria risk analysis").json_body();
                    assert_eq!(tools_of(&a), ["run_analysis"], "{a:#}");
                    a["context"]["analysis_id"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let st = status(addr, &sid);
    assert_eq!(st["analyses_started"], 1, "{st:#}");
    // Every turn of the four messages was kept (no lost read-modify-write).
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            server
                .dir
                .path()
                .join(format!("instance/uploads/{sid}/conversation.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["turns"].as_array().unwrap().len(), 8);
}

#[test]
fn pending_questions_survive_workers_and_die_with_a_new_upload() {
    let server = ServerBuilder::new().args(&["-w", "3"]).start();
    let addr = server.addr();
    let sid = create_session(addr);
    upload_kano(addr, &sid);
    upload_kano_population(addr, &sid);

    // A variable map needs no analysis: drawn from the upload matched to the shapefile.
    let a = send(addr, &sid, "map rainfall").json_body();
    assert_eq!(tools_of(&a), ["variable_map"], "{a:#}");
    let url = a["visualizations"][0]["url"].as_str().unwrap().to_owned();
    let map = request(addr, "GET", &url, Some(&sid), None, b"");
    assert_eq!(map.status, 200, "{url}");
    assert!(map.text().contains("<svg"));

    // Before the analysis an ITN request is deferred with a question, not run.
    let a = send(addr, &sid, "plan ITN distribution with 50000 nets").json_body();
    assert!(tools_of(&a).is_empty(), "{a:#}");
    assert_eq!(a["pending"], true);
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains("Shall I run it now?")
    );
    // "yes" on whichever worker: the analysis runs, then the plan with the nets given earlier.
    let a = send(addr, &sid, "yes").json_body();
    assert_eq!(tools_of(&a), ["run_analysis", "plan_itn"], "{a:#}");
    assert!(a["response"].as_str().unwrap().contains("50,000"));

    // Charts and maps of the analysed data.
    let a = send(addr, &sid, "box plots page 2").json_body();
    assert_eq!(tools_of(&a), ["box_plot"], "{a:#}");
    let v = &a["visualizations"][0];
    assert_eq!(
        (v["page"].as_u64(), v["pages"].as_u64()),
        (Some(2), Some(4)),
        "{a:#}"
    );
    let chart = request(
        addr,
        "GET",
        v["url"].as_str().unwrap(),
        Some(&sid),
        None,
        b"",
    );
    assert_eq!(chart.status, 200);
    let a = send(addr, &sid, "box plots page 9").json_body();
    assert_eq!(tools_of(&a), ["box_plot"], "{a:#}");
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains("couldn't complete"),
        "{a:#}"
    );
    let a = send(addr, &sid, "map rainfall").json_body();
    assert_eq!(tools_of(&a), ["variable_map"], "{a:#}");
    let a = send(addr, &sid, "show the ITN map").json_body();
    assert_eq!(tools_of(&a), ["itn_map"], "{a:#}");
    assert!(
        a["visualizations"][0]["url"]
            .as_str()
            .unwrap()
            .contains("itn_map_")
    );

    // ITN without a net total asks for it (never assumes 10,000).
    let a = send(addr, &sid, "plan the bed net distribution").json_body();
    assert!(tools_of(&a).is_empty(), "{a:#}");
    assert!(a["response"].as_str().unwrap().contains("number of nets"));
    // The answer, on another connection (and likely another worker), completes the request.
    let a = send(addr, &sid, "60000").json_body();
    assert_eq!(tools_of(&a), ["plan_itn"], "{a:#}");
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains("of 60,000 nets allocated"),
        "{a:#}"
    );
    let a = send(addr, &sid, "plan the bed net distribution").json_body();
    assert_eq!(a["pending"], true, "{a:#}");
    // A new upload drops the question: "80000" is not taken as a net total for new data.
    upload_kano(addr, &sid);
    let a = send(addr, &sid, "80000").json_body();
    assert!(!tools_of(&a).contains(&"plan_itn".to_owned()), "{a:#}");
    assert_eq!(a["pending"], false, "{a:#}");
    assert!(!a["response"].as_str().unwrap().contains("80,000"), "{a:#}");
    assert_eq!(status(addr, &sid)["analyses_started"], 1);

    // Messages that match nothing get the list of what the assistant can do.
    let a = send(addr, &sid, "blorp quux").json_body();
    assert!(tools_of(&a).is_empty());
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains("run the malaria risk analysis"),
        "{a:#}"
    );

    // Bad requests.
    let r = request(
        addr,
        "POST",
        "/send_message",
        Some(&sid),
        Some("application/json"),
        b"{}",
    );
    assert_eq!(r.status, 400);
    let r = request(
        addr,
        "POST",
        "/send_message",
        None,
        Some("application/json"),
        br#"{"message":"hi"}"#,
    );
    assert_eq!(r.status, 400);
}
