//! A new upload while an analysis draws its maps (the once-seen 500 "rename into place
//! .../visualizations/...: No such file"): the upload's cleanup removes `visualizations/`, and
//! the analysis must then answer that its data were replaced (409), never 500, and leave no map
//! of the replaced data behind. The worker is held, through `MRPT_PAUSE`, at the moment a map
//! is written and not yet in place, so the race happens every run.
#![cfg(feature = "fault-injection")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::support::{Answer, ServerBuilder, Session, poll_until};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn an_upload_during_the_analysis_maps_is_a_conflict_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let reached = dir.path().join("gate.reached");
    let server = ServerBuilder::new()
        .args(&["-w", "2"])
        .env(
            "MRPT_PAUSE",
            &format!("visualization-before-place={}", gate.display()),
        )
        .start();
    server.wait_workers(2, DEADLINE).expect("2 workers");
    let s = Session::create(server.addr());
    s.upload_kano().expect(200, "kano upload");

    let analysis = {
        let s = s.clone();
        std::thread::spawn(move || s.run_analysis(&json!({})))
    };
    poll_until(DEADLINE, || reached.exists().then_some(()))
        .expect("the analysis reached its first map");
    // The other dataset replaces the analysed one while the map waits to be put in place.
    let upload = s.upload_ilorin().expect(200, "racing upload").json_body();
    std::fs::write(&gate, b"go").unwrap();
    let answer = analysis.join().unwrap();

    assert_eq!(
        answer.status,
        409,
        "an analysis whose data were replaced while it drew its maps: {}",
        answer.text()
    );
    let body = answer.json_body();
    let message = body["error"].as_str().unwrap_or_default().to_string()
        + body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("upload") || message.contains("replaced") || message.contains("changed"),
        "the answer says why: {body}"
    );
    // The session is the new upload's, with no analysis and none of the old analysis' maps.
    let info = s
        .get("/session_info")
        .expect(200, "session_info")
        .json_body();
    assert_eq!(info["generation"], upload["generation"], "{info}");
    let listed = info.to_string();
    assert!(
        !listed.contains("vulnerability_map"),
        "a map of the replaced data is listed: {info}"
    );
    // And the new data analyse normally, maps included.
    let fresh = s
        .run_analysis(&json!({}))
        .expect(200, "analysis of the new upload");
    let maps = fresh.json_body()["visualizations"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(maps, 3, "{}", fresh.text());
}
