//! Issue 14 end to end: LGA views and data exploration through `/send_message`, on the Kano
//! sample with its LGA lookup, against the real binary with several workers and a new
//! connection per message. Each answer carries a short table, a CSV download that opens, and
//! figures equal to the ones pandas/scipy computed (crates/analysis/tests/fixtures); bad inputs
//! are answered with what exists.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::Answer;
use crate::support::ServerBuilder;
use crate::support::chat::*;
use serde_json::Value;

fn scipy() -> Value {
    let path = fixture("../../crates/analysis/tests/fixtures/explore_scipy.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The CSV a chat answer links to, downloaded through the route the UI uses.
fn csv_of(addr: std::net::SocketAddr, sid: &str, answer: &Value) -> String {
    let link = answer["visualizations"]
        .as_array()
        .or_else(|| answer["links"].as_array())
        .into_iter()
        .flatten()
        .chain(answer["downloads"].as_array().into_iter().flatten())
        .find(|v| v["type"] == "download")
        .cloned();
    let url = match link {
        Some(l) => l["url"].as_str().unwrap().to_owned(),
        None => {
            // Fall back to the markdown link in the message.
            let text = answer["response"].as_str().unwrap();
            let start = text
                .find("(/export/download/")
                .unwrap_or_else(|| panic!("no CSV link in {text}"));
            let rest = &text[start + 1..];
            rest[..rest.find(')').unwrap()].to_owned()
        }
    };
    let r = request(addr, "GET", &url, Some(sid), None, b"");
    assert_eq!(r.status, 200, "{url}: {}", r.text());
    r.text()
}

#[test]
fn lga_and_exploration_questions_across_workers() {
    let server = ServerBuilder::new().args(&["-w", "4"]).start();
    server.wait_workers(4, Duration::from_secs(60)).unwrap();
    let addr = server.addr();
    let sid = create_session(addr);
    upload_kano(addr, &sid);
    upload_kano_population(addr, &sid);

    let lookup = std::fs::read(fixture("kano/kano_lga_lookup.csv")).unwrap();
    let (ct, body) = multipart(&[("lga_lookup", "kano_lga_lookup.csv", &lookup)]);
    let r = request(
        addr,
        "POST",
        "/upload_lga_lookup",
        Some(&sid),
        Some(&ct),
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Kano Municipal"), "{}", r.text());
    // A lookup without an LGA column is refused with what it has.
    let (ct, body) = multipart(&[("lga_lookup", "bad.csv", b"WardName,Population\nA,1\n")]);
    let r = request(
        addr,
        "POST",
        "/upload_lga_lookup",
        Some(&sid),
        Some(&ct),
        &body,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("WardName, Population"), "{}", r.text());

    let mut pids = BTreeSet::new();
    let mut transcript = Vec::new();
    let mut ask = |message: &str, tool: Option<&str>| -> Value {
        let answer = send(addr, &sid, message).json_body();
        if let Some(pid) = answer["worker_pid"].as_i64() {
            pids.insert(pid);
        }
        match tool {
            Some(t) => assert_eq!(tools_of(&answer), [t], "{message:?} -> {answer:#}"),
            None => assert!(tools_of(&answer).is_empty(), "{message:?} -> {answer:#}"),
        }
        let text = answer["response"].as_str().unwrap().to_owned();
        transcript.push(format!("> {message}\n{text}\n"));
        answer
    };
    let text = |a: &Value| a["response"].as_str().unwrap().to_owned();

    // Before the analysis: exploration of the upload.
    let a = ask("rank the LGAs by test positivity rate", Some("lga_ranking"));
    let t = text(&a);
    assert!(t.contains("6 LGAs ranked by test_positivity_rate"), "{t}");
    assert!(
        t.contains("| rank | LGA | wards | test_positivity_rate |"),
        "{t}"
    );
    let csv = csv_of(addr, &sid, &a);
    assert_eq!(csv.lines().count(), 7, "{csv}");
    assert!(
        csv.starts_with("rank,LGA,wards,test_positivity_rate"),
        "{csv}"
    );

    let a = ask("correlate rainfall and tpr", Some("correlate"));
    let t = text(&a);
    let want = &scipy()["correlations"][0];
    assert_eq!(want["a"], "rainfall");
    let r = want["pearson_r"].as_f64().unwrap();
    assert!(t.contains(&format!("r = {r:.3}")), "{t} (scipy r = {r})");
    assert!(t.contains(&format!("n = {} wards", want["n"])), "{t}");
    assert!(
        t.contains("scatter") || a.to_string().contains("scatter"),
        "{a:#}"
    );

    let a = ask("describe rainfall by LGA", Some("describe"));
    assert!(
        text(&a).contains("rainfall by LGA: 6 group(s)"),
        "{}",
        text(&a)
    );
    let a = ask("top 3 wards by rainfall in Fagge", Some("top_n"));
    assert!(
        text(&a).contains("in Fagge with the highest rainfall"),
        "{}",
        text(&a)
    );
    let a = ask("wards with tpr above 0.7", Some("filter_wards"));
    assert!(
        text(&a).contains("wards have test_positivity_rate > 0.7"),
        "{}",
        text(&a)
    );
    ask("average rainfall per LGA", Some("group_by"));
    let a = ask("missing values by LGA", Some("missingness"));
    assert!(text(&a).contains("Missing values by LGA"), "{}", text(&a));
    ask("correlation heatmap", Some("correlation_matrix"));
    ask("wards in Fagge LGA", Some("wards_in_lga"));

    // Bad inputs: each answer lists what exists.
    let a = ask("correlate ward name and rainfall", None);
    assert!(
        text(&a).contains("text column") && text(&a).contains("rainfall"),
        "{}",
        text(&a)
    );
    let a = ask("wards in Atlantis LGA", None);
    assert!(text(&a).contains("Kano Municipal"), "{}", text(&a));
    let a = ask("describe elevation", None);
    assert!(text(&a).contains("test_positivity_rate"), "{}", text(&a));
    // A scatter of one column is not answered with a map.
    let a = ask("scatter plot of rainfall", None);
    assert!(text(&a).contains("two numeric columns"), "{}", text(&a));

    // After the analysis: vulnerability per LGA, the urban extent, the model maps, ITN.
    ask("run the malaria risk analysis", Some("run_analysis"));
    let a = ask("rank the LGAs", Some("lga_ranking"));
    assert!(
        text(&a).contains("LGAs ranked by mean composite score"),
        "{}",
        text(&a)
    );
    assert!(a.to_string().contains("lga_map"), "{a:#}");
    let a = ask("wards in Dala LGA", Some("wards_in_lga"));
    assert!(text(&a).contains("Dala LGA has"), "{}", text(&a));
    let a = ask("show the urban extent map", Some("urban_extent_map"));
    assert!(text(&a).contains("below 50% urban"), "{}", text(&a));
    ask("show the composite score maps", Some("composite_maps"));
    ask("show the ranking chart", Some("ranking_chart"));
    ask(
        "describe composite score by vulnerability category",
        Some("describe"),
    );
    let a = ask("I have 100000 nets", Some("plan_itn"));
    assert!(!text(&a).contains("couldn't"), "{}", text(&a));
    assert!(text(&a).contains("Nets per LGA: "), "{}", text(&a));
    let a = ask("ITN totals per LGA", Some("lga_itn"));
    assert!(text(&a).contains("The ITN plan per LGA"), "{}", text(&a));
    let csv = csv_of(addr, &sid, &a);
    assert!(
        csv.starts_with("LGA,wards,wards_with_nets,nets_allocated"),
        "{csv}"
    );

    // Every map shows LGA outlines and names the LGA in the tooltips.
    let dir = server
        .dir
        .path()
        .join(format!("instance/uploads/{sid}/visualizations"));
    let urban = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("urban_extent"))
        .unwrap();
    let html = std::fs::read_to_string(urban.path()).unwrap();
    assert!(html.contains("<g class=\"lga\">"));
    assert!(html.contains("\nLGA: Fagge\n") || html.contains("\nLGA: Dala\n"));
    // The ITN map too (built by the plan, not by the exploration tools).
    let itn = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("itn_map"))
        .unwrap();
    let html = std::fs::read_to_string(itn.path()).unwrap();
    assert!(
        html.contains("<g class=\"lga\">"),
        "ITN map without LGA outlines"
    );
    assert!(html.contains("\nLGA: "), "ITN map tooltips without the LGA");

    assert!(
        pids.len() >= 2,
        "answers came from one worker only: {pids:?}"
    );
    // The transcript is the example answers of the README and the report.
    let out = std::env::temp_dir().join(format!("chat_lga_transcript_{}.txt", std::process::id()));
    let _ = std::fs::write(&out, transcript.join("\n"));
    eprintln!("transcript: {}", out.display());
}
