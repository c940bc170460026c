//! Bad input against the real binary (6 workers, a new connection per request): malformed and
//! unknown session ids never become paths; an oversized upload is refused (413) with the previous
//! data intact; a failed upload leaves the previous generation byte for byte as it was; one
//! session cannot read another's files (H13); ITN before analysis or without `total_nets` says
//! what to do; `/clear_session` makes the old id report no data on every worker (H9).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support;
use crate::support::Answer;
use crate::support::{Body, Carry, Part, Reply, Session, fixture, multipart, request};
use crate::support::{Server, ServerBuilder};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

fn start_with(extra: &[&str]) -> Server {
    let mut args = vec!["-w", "6"];
    args.extend_from_slice(extra);
    let server = ServerBuilder::new().args(&args).start();
    server.wait_workers(6, DEADLINE).expect("6 workers");
    server
}

fn instance(server: &Server) -> std::path::PathBuf {
    server.dir.path().join("instance")
}

/// Every entry under `dir` with its size (directories as -1), to compare a folder before/after.
fn snapshot(dir: &Path) -> BTreeMap<String, i64> {
    support::tree(dir)
        .into_iter()
        .map(|rel| {
            let meta = std::fs::symlink_metadata(dir.join(&rel)).unwrap();
            let size = if meta.is_dir() { -1 } else { meta.len() as i64 };
            (rel, size)
        })
        .collect()
}

/// A ward table (name, bytes) and an optional shapefile (name, bytes) that must be refused.
type BadUpload = (&'static str, Vec<u8>, Option<(&'static str, Vec<u8>)>);

fn is_json_error(r: &Reply) -> bool {
    serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| {
        v["status"] == "error" && v["message"].as_str().is_some_and(|m| !m.is_empty())
    })
}

/// Kano uploaded, analysed, population and ITN planned: a session with everything in it.
fn full_session(addr: std::net::SocketAddr) -> (Session, String, String) {
    let s = Session::create(addr);
    s.upload_kano().expect(200, "upload");
    let aid = s
        .run_analysis(&json!({}))
        .expect(200, "analysis")
        .json_body()["analysis_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.upload_kano_population().expect(200, "population");
    let itn = s
        .plan_itn(&json!({"total_nets": 50000}))
        .expect(200, "ITN")
        .json_body();
    let map = itn["map_path"].as_str().unwrap().to_owned();
    (s, aid, map)
}

/// The session state fields that must not move.
fn state(v: &Value) -> Value {
    json!({
        "generation": v["generation"],
        "data_loaded": v["data_loaded"],
        "shapefile_loaded": v["shapefile_loaded"],
        "analysis_complete": v["analysis_complete"],
        "itn_complete": v["itn_complete"],
        "analysis_id": v["analysis_id"],
        "analyses_started": v["analyses_started"],
        "population_loaded": v["population_loaded"],
    })
}

#[test]
fn malformed_and_unknown_session_ids_are_refused_and_create_nothing() {
    let server = start_with(&[]);
    let addr = server.addr();
    let good = Session::create(addr);
    // Sessions live under uploads/ (the server keeps its own runtime files elsewhere in the
    // instance dir, e.g. metrics, which change with every request).
    let uploads = instance(&server).join("uploads");
    let before = snapshot(&uploads);

    let malformed = [
        "../../etc/passwd",
        "..",
        "../",
        "/tmp/evil",
        "./",
        "ABCDEF0123456789ABCDEF0123456789",  // uppercase
        "abcdef0123456789abcdef012345678",   // 31
        "abcdef0123456789abcdef01234567890", // 33
        "ghijkl0123456789abcdef0123456789",  // not hex
        "abcdef0123456789abcdef012345678/",
        "abcdef01-3456789abcdef0123456789",
        "..%2f..%2fetc",
        "",
    ];
    // Well formed but never minted.
    let unknown = "0123456789abcdef0123456789abcdef";
    let csv = fixture("kano/kano_wards.csv");
    let (form_ct, form) = multipart(&[Part::file("csv_file", "kano_wards.csv", &csv)]);
    let pop = fixture("reference/kano/kano_auto_population_input.csv");
    let (pop_ct, pop_form) = multipart(&[Part::file("population_file", "pop.csv", &pop)]);
    let routes: Vec<(&str, &str, Body<'_>)> = vec![
        ("GET", "/api/session/status", Body::Empty),
        ("GET", "/session_info", Body::Empty),
        ("POST", "/upload_both_files", Body::Sized(&form_ct, &form)),
        ("POST", "/upload", Body::Sized(&form_ct, &form)),
        (
            "POST",
            "/upload_population",
            Body::Sized(&pop_ct, &pop_form),
        ),
        (
            "POST",
            "/run_analysis",
            Body::Sized("application/json", b"{}"),
        ),
        (
            "POST",
            "/api/itn/plan",
            Body::Sized("application/json", br#"{"total_nets": 1000}"#),
        ),
        ("POST", "/generate_report", Body::Empty),
    ];
    let mut asked = 0;
    for id in malformed.iter().copied().chain([unknown]) {
        let want: &[u16] = if id == unknown { &[404] } else { &[400, 404] };
        for carry in [Carry::Header, Carry::Cookie] {
            let (k, v) = match carry {
                Carry::Header => ("X-Session-ID", id.to_owned()),
                Carry::Cookie => ("Cookie", format!("session_id={id}")),
            };
            for (method, path, body) in &routes {
                // An upload naming its session by cookie only starts a new session (the
                // identity rule, README): not a refusal; checked below.
                if carry == Carry::Cookie && matches!(*path, "/upload_both_files" | "/upload") {
                    continue;
                }
                let r = request(addr, method, path, &[(k, v.as_str())], *body).unwrap();
                asked += 1;
                assert!(
                    want.contains(&r.status) && is_json_error(&r),
                    "{method} {path} with {carry:?} {id:?}: {} {}",
                    r.status,
                    r.text()
                );
            }
            // The id in the path of the file routes, with the same id as the requester's.
            for path in [
                format!("/serve_viz_file/{id}/visualizations/x.html"),
                format!("/export/download/{id}/raw_data.csv"),
            ] {
                let r = request(addr, "GET", &path, &[(k, v.as_str())], Body::Empty).unwrap();
                asked += 1;
                assert!(
                    r.status == 400 || r.status == 404,
                    "GET {path} with {carry:?} {id:?}: {} {}",
                    r.status,
                    r.text()
                );
            }
        }
    }
    assert_eq!(
        snapshot(&uploads),
        before,
        "a refused session id changed the instance directory ({asked} requests)"
    );

    // An upload whose only id is a bad cookie starts a new session, named by the server.
    for id in ["../../etc", unknown] {
        let cookie = format!("session_id={id}");
        let r = request(
            addr,
            "POST",
            "/upload_both_files",
            &[("Cookie", cookie.as_str())],
            Body::Sized(&form_ct, &form),
        )
        .unwrap()
        .expect(200, "upload with a bad cookie");
        let minted = r.json_body()["session_id"].as_str().unwrap().to_owned();
        assert!(minted.len() == 32 && minted != id, "{minted}");
        assert!(r.header("set-cookie").is_some_and(|c| c.contains(&minted)));
    }
    let before = snapshot(&uploads);

    // Clearing an unknown id is harmless: a fresh session, and nothing named after the id.
    let r = request(
        addr,
        "POST",
        "/clear_session",
        &[("X-Session-ID", "../../etc")],
        Body::Empty,
    )
    .unwrap()
    .expect(200, "clear with a bad id");
    let fresh = r.json_body()["new_session_id"].as_str().unwrap().to_owned();
    let after = snapshot(&uploads);
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(
        added.iter().all(|k| k.starts_with(fresh.as_str())),
        "{added:?}"
    );
    // The valid session was untouched throughout.
    let (_, v) = good.status();
    assert_eq!(v["data_loaded"], false);
}

#[test]
fn oversized_upload_is_refused_and_the_previous_data_is_intact() {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("small.toml");
    std::fs::write(&config, "[app]\nmax_upload_bytes = 100000\n").unwrap();
    let server = start_with(&["-c", config.to_str().unwrap()]);
    // Kano (64 KB with its shapefile) fits under the 100 000-byte limit.
    let (s, aid, _) = full_session(server.addr());
    let folder = instance(&server).join("uploads").join(&s.id);
    let manifest = std::fs::read(folder.join("manifest.json")).unwrap();
    let raw = s.download("raw_data.csv").expect(200, "raw").body;
    let (_, status_before) = s.status();
    let tree_before = snapshot(&folder);

    let mut big = fixture("kano/kano_wards.csv");
    let row = b"99,99,Padding Ward,1,1,1,1,1,1,1,1,1\n";
    while big.len() < 150_000 {
        big.extend_from_slice(row);
    }
    let (ct, form) = multipart(&[Part::file("csv_file", "big.csv", &big)]);
    let (pct, pform) = multipart(&[Part::file("population_file", "big.csv", &big)]);
    let json_pad = format!(
        "{{\"selected_variables\": [], \"x\": \"{}\"}}",
        "a".repeat(150_000)
    );
    let attempts: Vec<(&str, Body<'_>)> = vec![
        ("/upload_both_files", Body::Sized(&ct, &form)),
        ("/upload_both_files", Body::Chunked(&ct, &form)),
        ("/upload_population", Body::Sized(&pct, &pform)),
        (
            "/run_analysis",
            Body::Sized("application/json", json_pad.as_bytes()),
        ),
    ];
    for (path, body) in attempts {
        let chunked = matches!(body, Body::Chunked(..));
        let r = s.send("POST", path, body);
        assert_eq!(
            r.status,
            413,
            "{path} (chunked: {chunked}) over the limit: {}",
            r.text()
        );
        assert!(is_json_error(&r), "{}", r.text());
    }

    s.status_from_workers(4, DEADLINE, |v| {
        if state(v) == state(&status_before) {
            Ok(())
        } else {
            Err(format!("state moved from {}", state(&status_before)))
        }
    });
    assert_eq!(status_before["analysis_id"], aid.as_str());
    assert!(
        std::fs::read(folder.join("manifest.json")).unwrap() == manifest,
        "manifest changed"
    );
    assert!(s.download("raw_data.csv").body == raw, "raw data changed");
    assert_eq!(snapshot(&folder), tree_before, "files were stored");
}

#[test]
fn a_failed_upload_leaves_the_previous_generation_exactly_as_it_was() {
    let server = start_with(&[]);
    let (s, _, map) = full_session(server.addr());
    let folder = instance(&server).join("uploads").join(&s.id);
    let manifest = std::fs::read(folder.join("manifest.json")).unwrap();
    let tree_before = snapshot(&folder);
    let (_, status_before) = s.status();
    let rankings = s
        .download("analysis_vulnerability_rankings.csv")
        .expect(200, "rankings")
        .body;

    let kano = fixture("kano/kano_wards.csv");
    let bad: Vec<BadUpload> = vec![
        ("binary_junk.csv", fixture("formats/binary_junk.csv"), None),
        ("empty.csv", fixture("formats/empty.csv"), None),
        ("header_only.csv", fixture("formats/header_only.csv"), None),
        (
            "no_ward_column.csv",
            fixture("formats/no_ward_column.csv"),
            None,
        ),
        ("fake.xlsx", fixture("formats/fake.xlsx"), None),
        ("data.pdf", kano.clone(), None),
        (
            "kano.csv",
            kano.clone(),
            Some(("not_a_zip.zip", fixture("formats/not_a_zip.zip"))),
        ),
        (
            "kano.csv",
            kano.clone(),
            Some(("traversal.zip", fixture("formats/zip_traversal.zip"))),
        ),
        (
            "kano.csv",
            kano.clone(),
            Some(("bomb.zip", fixture("formats/zip_bomb.zip"))),
        ),
        (
            "kano.csv",
            kano.clone(),
            Some(("no_dbf.zip", fixture("formats/zip_without_dbf.zip"))),
        ),
        (
            "kano.csv",
            kano.clone(),
            Some(("wards.shp", fixture("kano/kano_wards_shapefile.zip"))),
        ),
    ];
    for (name, bytes, shp) in &bad {
        let r = s.upload((name, bytes), shp.as_ref().map(|(n, b)| (*n, b.as_slice())));
        assert!(
            (400..500).contains(&r.status) && is_json_error(&r),
            "upload of {name} + {:?}: {} {}",
            shp.as_ref().map(|(n, _)| n),
            r.status,
            r.text()
        );
    }
    // Not multipart at all, and a form without the table.
    let r = s.send(
        "POST",
        "/upload_both_files",
        Body::Sized("text/plain", &kano),
    );
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());
    let r = s.post_form(
        "/upload_both_files",
        &[Part::file(
            "shapefile",
            "s.zip",
            &fixture("kano/kano_wards_shapefile.zip"),
        )],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.upload_population("pop.csv", &fixture("formats/population_bad.csv"));
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());

    assert!(
        std::fs::read(folder.join("manifest.json")).unwrap() == manifest,
        "a failed upload rewrote the manifest"
    );
    assert_eq!(snapshot(&folder), tree_before, "a failed upload left files");
    s.status_from_workers(4, DEADLINE, |v| {
        if state(v) == state(&status_before) {
            Ok(())
        } else {
            Err(format!("state moved from {}", state(&status_before)))
        }
    });
    assert!(s.download("analysis_vulnerability_rankings.csv").body == rankings);
    assert_eq!(
        s.get(&map).status,
        200,
        "the ITN map of the kept generation"
    );
}

#[test]
fn one_session_cannot_read_anothers_files() {
    let server = start_with(&[]);
    let addr = server.addr();
    let (b, _, b_map) = full_session(addr);
    let a = Session::create(addr);
    a.upload_kano().expect(200, "A upload");
    let b_files = [
        b_map.clone(),
        format!(
            "/export/download/{}/analysis_vulnerability_rankings.csv",
            b.id
        ),
        format!("/export/download/{}/raw_data.csv", b.id),
        format!("/export/download/{}/itn_distribution_results.json", b.id),
    ];
    let mut b_bodies = Vec::new();
    for path in &b_files {
        let r = b.get(path).expect(200, "the owner fetches its file");
        assert!(!r.body.is_empty());
        b_bodies.push(r.body);
    }
    let a_cookie = a.clone().with_carry(Carry::Cookie);
    for path in &b_files {
        for (who, r) in [
            ("A's header", a.get(path)),
            ("A's cookie", a_cookie.get(path)),
            (
                "no id",
                request(addr, "GET", path, &[], Body::Empty).unwrap(),
            ),
        ] {
            assert_eq!(r.status, 404, "{path} with {who}: {}", r.text());
            assert!(
                !b_bodies.contains(&r.body),
                "{path} with {who} served B's file"
            );
        }
    }
    // Paths that try to climb out of A's session or into its internals.
    let (aid, bid) = (&a.id, &b.id);
    let b_map_file = b_map.rsplit('/').next().unwrap();
    let climbs = [
        format!("/serve_viz_file/{aid}/../{bid}/visualizations/{b_map_file}"),
        format!("/serve_viz_file/{aid}/visualizations/../../{bid}/raw_data.csv"),
        format!("/serve_viz_file/{aid}/../../../../etc/passwd"),
        format!("/serve_viz_file/{aid}/%2e%2e/{bid}/raw_data.csv"),
        format!("/export/download/{aid}/../{bid}/raw_data.csv"),
        format!("/export/download/{aid}/..%2F{bid}%2Fraw_data.csv"),
        format!("/export/download/{aid}//etc/passwd"),
        format!("/export/download/{aid}/manifest.json"),
        format!("/export/download/{aid}/.lock"),
        format!("/export/download/{aid}/conversation.json"),
        format!("/export/download/{aid}/.data"),
        format!("/serve_viz_file/{aid}/manifest.json"),
        format!("/serve_viz_file/{aid}/raw_data.csv"),
    ];
    for path in &climbs {
        let r = a.get(path);
        assert!(
            r.status == 400 || r.status == 404,
            "{path}: {} {}",
            r.status,
            r.text()
        );
        assert!(
            !b_bodies.contains(&r.body) && !r.text().contains("root:"),
            "{path} served a file"
        );
    }
    // A's own file is served to A (the refusals above are not just "everything is 404").
    a.download("raw_data.csv").expect(200, "A's own raw data");
}

#[test]
fn itn_needs_an_analysis_and_a_number_of_nets() {
    let server = start_with(&[]);
    let s = Session::create(server.addr());
    let r = s.plan_itn(&json!({"total_nets": 1000}));
    assert_eq!(r.status, 409, "ITN without data: {}", r.text());
    assert!(is_json_error(&r));

    s.upload_kano().expect(200, "upload");
    s.upload_kano_population().expect(200, "population");
    for path in ["/api/itn/update-distribution", "/api/itn/plan"] {
        let r = s.post_json(path, &json!({"total_nets": 1000}));
        assert_eq!(r.status, 409, "{path} before analysis: {}", r.text());
        let message = r.json_body()["message"].as_str().unwrap().to_lowercase();
        assert!(
            message.contains("analysis") && message.contains("run"),
            "409 without saying to run the analysis: {message}"
        );
    }
    let (_, v) = s.status();
    assert_eq!(v["analyses_started"], 0, "ITN ran the analysis: {v}");

    s.run_analysis(&json!({})).expect(200, "analysis");
    for body in [
        json!({}),
        json!({"total_nets": null}),
        json!({"total_nets": "lots"}),
        json!({"total_nets": 0}),
        json!({"total_nets": -5}),
        json!({"total_nets": 1.5}),
        json!({"avg_household_size": 5}),
    ] {
        let r = s.plan_itn(&body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(is_json_error(&r));
        if body.get("total_nets").is_none() {
            assert!(r.text().contains("total_nets"), "{}", r.text());
        }
    }
    let r = s.send(
        "POST",
        "/api/itn/plan",
        Body::Sized("application/json", b"{not json"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let (_, v) = s.status();
    assert_eq!(v["itn_complete"], false, "{v}");
    assert_eq!(v["analyses_started"], 1, "{v}");
}

#[test]
fn clear_session_makes_the_old_id_report_no_data_everywhere() {
    let server = start_with(&[]);
    let (s, _, map) = full_session(server.addr());
    let r = s
        .send("POST", "/clear_session", Body::Empty)
        .expect(200, "clear");
    let new_id = r.json_body()["new_session_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, s.id);
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains(&format!("session_id={new_id}"))),
        "{:?}",
        r.headers
    );
    let empty = |v: &Value| -> Result<(), String> {
        let nothing = v["data_loaded"] == false
            && v["csv_loaded"] == false
            && v["shapefile_loaded"] == false
            && v["analysis_complete"] == false
            && v["itn_complete"] == false
            && v["analysis_id"].is_null();
        if nothing {
            Ok(())
        } else {
            Err("data reported after clear".into())
        }
    };
    s.status_from_workers(4, DEADLINE, empty);
    let info = s.get("/session_info").expect(200, "info").json_body();
    empty(&info).unwrap();
    assert_eq!(info["files"], json!([]), "{info}");
    for file in [
        "raw_data.csv",
        "analysis_vulnerability_rankings.csv",
        "itn_distribution_results.json",
    ] {
        assert_eq!(s.download(file).status, 404, "{file} after clear");
    }
    assert_eq!(s.get(&map).status, 404, "ITN map after clear");
    assert_eq!(s.plan_itn(&json!({"total_nets": 100})).status, 409);
    assert_eq!(s.run_analysis(&json!({})).status, 409);
    let folder = instance(&server).join("uploads").join(&s.id);
    for name in [
        "raw_data.csv",
        "analysis_vulnerability_rankings.csv",
        "unified_dataset.csv",
    ] {
        assert!(
            !folder.join(name).exists(),
            "{name} left in the cleared folder"
        );
    }

    let fresh = Session {
        id: new_id,
        ..s.clone()
    };
    fresh.status_from_workers(2, DEADLINE, empty);
}

/// A ward table whose name column is spelt the way people spell it (`Ward Name`, `ward_name `
/// with a trailing space, `WARDNAME`, `adm3_en`, ...) is either analysed or refused AT UPLOAD;
/// never accepted at upload and then refused by the analysis (issue 12). One ward-column rule
/// decides for the upload, the analysis, ITN planning and the assistant.
#[test]
fn ward_name_column_spellings_are_analysed_or_refused_at_upload() {
    let server = start_with(&[]);
    let kano = String::from_utf8(fixture("kano/kano_wards.csv")).unwrap();
    let shapefile = fixture("kano/kano_wards_shapefile.zip");
    let (header, body) = kano.split_once('\n').unwrap();
    assert!(header.contains(",WardName,"), "{header}");
    let with_ward_column = |name: &str| {
        let header = header.replace(",WardName,", &format!(",{name},"));
        format!("{header}\n{body}").into_bytes()
    };
    for spelling in [
        "Ward Name",
        "ward_name ",
        "WARDNAME",
        "wardname",
        "adm3_en",
        "ADM3_NAME",
        " Ward",
        "Wards",
    ] {
        let s = Session::create(server.addr());
        let csv = with_ward_column(spelling);
        let upload = s.upload(("wards.csv", &csv), Some(("wards.zip", &shapefile)));
        assert_eq!(
            upload.status,
            200,
            "upload with {spelling:?}: {}",
            upload.text()
        );
        let report = upload.json_body();
        assert_eq!(
            report["ward_matching"]["matched"], 65,
            "{spelling:?}: {report}"
        );
        let analysis = s.run_analysis(&json!({}));
        assert_eq!(
            analysis.status,
            200,
            "{spelling:?} was accepted at upload, so the analysis must run: {}",
            analysis.text()
        );
        assert_eq!(analysis.json_body()["ward_count"], 66, "{spelling:?}");
        // ITN planning reads the same files back by the same rule.
        s.upload_kano_population().expect(200, "population");
        s.plan_itn(&json!({"total_nets": 50000}))
            .expect(200, &format!("ITN with {spelling:?}"));
    }

    // A table with no ward column at all is refused at upload, naming what it found, and
    // nothing is stored.
    let s = Session::create(server.addr());
    let csv = with_ward_column("District");
    let upload = s.upload(("wards.csv", &csv), Some(("wards.zip", &shapefile)));
    let text = upload.text();
    // "District" names neither wards nor names, so the rule takes no column although its values
    // are distinct text: the refusal comes from the upload, never from the analysis.
    assert_eq!(upload.status, 400, "{text}");
    assert!(
        text.contains("no ward name column (expected `WardName`); columns found:")
            && text.contains("District"),
        "{text}"
    );
    let (_, v) = s.status();
    assert_eq!(v["data_loaded"], false);
}
