//! The TPR routes over HTTP against the real binary with 6 workers (tpr.md §8.3): the Kano
//! facility export uploaded on one worker, calculated on another, the risk analysis with the
//! joined `TPR` column on a third; every step re-reads the session from disk. Files equal
//! `shared/data/tpr/expected/` (copied to tests/fixtures/tpr/expected). Bad inputs of issue 13.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::support::{Answer, ServerBuilder, Session, fixture};
use prefork_loadgen::http::{Part, Reply};
use serde_json::{Value, json};

fn start(workers: usize) -> crate::support::Server {
    let n = workers.to_string();
    let server = ServerBuilder::new().args(&["-w", n.as_str()]).start();
    server
        .wait_workers(workers, Duration::from_secs(30))
        .expect("workers");
    server
}

fn upload_export(s: &Session, name: &str, bytes: &[u8], mapping: Option<&str>) -> Reply {
    let mut parts = vec![Part::file("file", name, bytes)];
    if let Some(m) = mapping {
        parts.push(Part::text("mapping", m));
    }
    s.post_form("/api/tpr/upload", &parts)
}

/// `column` of a CSV keyed by its `key` columns (`a+b` = both; simple CSV: no quoted commas in
/// these files).
fn column_by(csv: &str, key: &str, column: &str) -> BTreeMap<String, String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let ks: Vec<usize> = key
        .split('+')
        .map(|k| header.iter().position(|h| *h == k).unwrap())
        .collect();
    let c = header
        .iter()
        .position(|h| *h == column)
        .unwrap_or_else(|| panic!("no {column} in {header:?}"));
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let k: Vec<&str> = ks.iter().map(|&k| cells[k]).collect();
            (k.join("|"), cells[c].to_string())
        })
        .collect()
}

/// `expected/summaries.json` (written by pandas: NaN for an undefined TPR, which is null here).
fn summaries() -> Value {
    let text = String::from_utf8(fixture("tpr/expected/summaries.json")).unwrap();
    serde_json::from_str(&text.replace("NaN", "null")).unwrap()
}

fn float_or_blank(s: &str) -> Option<f64> {
    (!s.is_empty()).then(|| s.parse().unwrap())
}

#[test]
fn kano_export_upload_calculate_and_analyse_on_three_workers() {
    let server = start(6);
    let s = Session::create(server.addr());
    s.upload_kano().expect(200, "ward table upload");
    s.upload_population(
        "kano_population_synthetic.csv",
        &fixture("tpr/kano_population_synthetic.csv"),
    )
    .expect(200, "population");

    // 1. The export, on some worker.
    let up = upload_export(
        &s,
        "kano_nmep_2021_2024.csv",
        &fixture("tpr/kano_nmep_2021_2024.csv"),
        None,
    )
    .expect(200, "tpr upload");
    let upload_worker = up.worker();
    let u = up.json_body();
    assert_eq!(u["rows"], 8171);
    assert_eq!(u["facilities"], 198);
    assert_eq!(u["states"][0]["state"], "Kano");
    assert_eq!(u["years"], json!([2021, 2022, 2023, 2024]));
    assert_eq!(u["next_step"], "facility_level");
    assert_eq!(u["session_id"], s.id.as_str(), "same session, no new id");
    let expected_summaries = summaries();
    assert_eq!(u["states"], expected_summaries["states"]);

    // 2. The guided options, step by step, from disk on whichever worker answers.
    let o = s.get("/api/tpr/options").expect(200, "options").json_body();
    assert_eq!(o["next_step"], "facility_level");
    let o = s
        .get("/api/tpr/options?facility_level=primary&age_group=u5")
        .expect(200, "options")
        .json_body();
    assert_eq!(o["next_step"], "test_method");
    assert_eq!(o["options"].as_array().unwrap().len(), 3);

    // 3. Calculate on another worker than the upload (replace: the join is repeatable).
    let mut calc: Option<Reply> = None;
    for _ in 0..60 {
        let r = s
            .post_json("/api/tpr/calculate", &json!({"replace": true}))
            .expect(200, "calculate");
        if r.worker() != upload_worker {
            calc = Some(r);
            break;
        }
    }
    let calc = calc.expect("a second worker answered /api/tpr/calculate");
    let calc_worker = calc.worker();
    let c = calc.json_body();
    assert!(
        c["metric_label"]
            .as_str()
            .unwrap()
            .starts_with("Test positivity rate, %, all ages"),
        "{c}"
    );
    assert_eq!(c["wards"], 67);
    assert_eq!(c["joined"], true);
    let trends =
        String::from_utf8(fixture("tpr/expected/trend_summary__all_all_ages_both.csv")).unwrap();
    let directions = column_by(&trends, "lga_key+ward_key", "Direction");
    for d in ["worsening", "improving", "stable"] {
        let n = directions.values().filter(|v| *v == d).count();
        assert_eq!(c["trend"][d], n, "{d}");
    }
    assert!(c["map_path"].as_str().unwrap().ends_with("tpr_map.html"));
    for (ours, expected) in [
        ("tpr_results.csv", "tpr_results__all_all_ages_both.csv"),
        (
            "tpr_time_series.csv",
            "tpr_time_series__all_all_ages_both.csv",
        ),
        ("trend_summary.csv", "trend_summary__all_all_ages_both.csv"),
        ("tpr_missingness.csv", "missingness.csv"),
        ("ward_matching.csv", "ward_matching.csv"),
    ] {
        let got = s.download(ours).expect(200, ours);
        assert!(
            got.body == fixture(&format!("tpr/expected/{expected}")),
            "{ours} differs from {expected}"
        );
    }
    // The maps are served like every other visualization.
    let map = s
        .get(c["map_path"].as_str().unwrap())
        .expect(200, "tpr map");
    assert!(map.text().contains("TPR (%)"));

    // The joined ward table: TPR per ward as the reference join has it (blank, never 0).
    let raw = s
        .download("raw_data.csv")
        .expect(200, "raw_data.csv")
        .text();
    let ours = column_by(&raw, "WardName", "TPR");
    let want = column_by(
        &String::from_utf8(fixture(
            "tpr/expected/raw_data_with_tpr__all_all_ages_both.csv",
        ))
        .unwrap(),
        "WardName",
        "TPR",
    );
    assert_eq!(ours.len(), want.len());
    for (ward, value) in &want {
        assert_eq!(
            ours.get(ward).map(|v| float_or_blank(v)),
            Some(float_or_blank(value)),
            "{ward}"
        );
    }

    // 4. The risk analysis uses `TPR`, on a third worker.
    let mut analysed: Option<Reply> = None;
    for _ in 0..80 {
        let r = s
            .run_analysis(&json!({"selected_variables": ["TPR", "rainfall", "housing_quality"]}))
            .expect(200, "run_analysis");
        if r.worker() != upload_worker && r.worker() != calc_worker {
            analysed = Some(r);
            break;
        }
    }
    let a = analysed
        .expect("a third worker answered /run_analysis")
        .json_body();
    let used: BTreeSet<String> = a["variables_used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(used.contains("TPR"), "{a}");

    // 5. Reprioritise 14 wards: the expected list, with the rule stated.
    let r = s
        .post_json("/api/tpr/reprioritise", &json!({"n": 14}))
        .expect(200, "reprioritise")
        .json_body();
    assert!(r["rule"].as_str().unwrap().contains("Rank_Latest"), "{r}");
    assert_eq!(r["wards"].as_array().unwrap().len(), 14);
    let file = s
        .download("tpr_reprioritise.csv")
        .expect(200, "reprioritise file");
    assert!(file.body == fixture("tpr/expected/reprioritise_top14__all_all_ages_both.csv"));
}

#[test]
fn a_single_selection_and_bad_requests() {
    let server = start(2);
    let s = Session::create(server.addr());
    // No export yet: 409 that says what to upload.
    let r = s.post_json("/api/tpr/calculate", &json!({}));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("facility export"), "{}", r.text());
    upload_export(
        &s,
        "kano.csv",
        &fixture("tpr/kano_nmep_2021_2024.csv"),
        None,
    )
    .expect(200, "upload");
    // A TPR-only session: tables, no join, no map (no shapefile), no raw_data.csv.
    let c = s
        .post_json(
            "/api/tpr/calculate",
            &json!({"facility_level": "primary", "age_group": "u5", "test_method": "rdt"}),
        )
        .expect(200, "calculate")
        .json_body();
    assert_eq!(c["joined"], false);
    assert!(c["map_path"].is_null());
    let got = s.download("tpr_results.csv").expect(200, "results");
    // Without a shapefile every ward is `no_shapefile`; compare the TPR figures per ward key.
    let ours = column_by(&got.text(), "lga_key+ward_key", "TPR");
    let want = column_by(
        &String::from_utf8(fixture("tpr/expected/tpr_results__primary_u5_rdt.csv")).unwrap(),
        "lga_key+ward_key",
        "TPR",
    );
    assert_eq!(ours, want);
    let (_, status) = s.status();
    assert_eq!(status["data_loaded"], false);
    for (body, needle) in [
        (json!({"facility_level": "clinic"}), "facility_level"),
        (json!({"age_group": "babies"}), "age_group"),
        (json!({"test_method": "pcr"}), "test_method"),
        (json!({"state": "Lagos"}), "no state named"),
        (json!({"years": [2019, 2019]}), "no tests"),
        (json!({"years": [2024, 2021]}), "years"),
        (json!({"metric": "burden"}), "Population"),
        (
            json!({"mapping": {"u5_rdt_tested": "No such header"}}),
            "mapping",
        ),
        (json!({"join": "yes"}), "join"),
    ] {
        let r = s.post_json("/api/tpr/calculate", &body);
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        assert!(r.text().contains(needle), "{body}: {}", r.text());
    }
    // Reprioritising a one-year export is refused.
    let one_year: String = String::from_utf8(fixture("tpr/kano_nmep_2021_2024.csv"))
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.contains(",2024"))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    upload_export(&s, "kano_2024.csv", one_year.as_bytes(), None).expect(200, "upload");
    let r = s.post_json("/api/tpr/reprioritise", &json!({"n": 5}));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("two or more years"), "{}", r.text());
}

#[test]
fn bad_exports_are_refused_or_handled_as_documented() {
    let server = start(2);
    let s = Session::create(server.addr());
    // Not a spreadsheet.
    let r = upload_export(&s, "export.pdf", b"%PDF-1.4", None);
    assert_eq!(r.status, 415, "{}", r.text());
    // No testing columns: the columns it could not place are named.
    let r = upload_export(
        &s,
        "no_tests.csv",
        b"orgunitlevel2,orgunitlevel3,orgunitlevel4,periodcode,Outpatient attendance\n\
          kn Kano State,kn Dala LGA,kn Adakawa Ward,202101,30\n",
        None,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("Outpatient attendance"), "{}", r.text());
    // A DHIS2 file with the header on row 3 and garbled >=: read.
    let garbled = "Malaria testing export\n\n\
        orgunitlevel2,orgunitlevel3,orgunitlevel4,organisationunitid,periodcode,\
        Persons presenting with fever & tested by RDT  \u{e2}\u{2030}\u{a5}5yrs (excl PW),\
        Persons tested positive for malaria by RDT  \u{e2}\u{2030}\u{a5}5yrs (excl PW)\n\
        kn Kano State,kn Dala LGA,kn Adakawa Ward,F1,202101,100,40\n\
        kn Kano State,kn Dala LGA,kn Adakawa Ward,F1,202102,50,60\n";
    let u = upload_export(&s, "garbled.csv", garbled.as_bytes(), None)
        .expect(200, "garbled upload")
        .json_body();
    assert_eq!(u["header_row"], 3);
    assert!(
        u["mapping"]["o5_rdt_tested"][0]
            .as_str()
            .unwrap()
            .contains('\u{2265}'),
        "{u}"
    );
    // Positives above tests (60 of 50 in one row): used as they are, and warned about.
    assert_eq!(u["warnings"]["rows_positives_exceed_tested"], 1);
    let c = s
        .post_json("/api/tpr/calculate", &json!({}))
        .expect(200, "calculate")
        .json_body();
    assert_eq!(c["summary"]["state_tpr"], 66.67);
    // An explicit mapping that places a column the rules leave alone.
    let odd = "ward,lga,Period,RDT done (u5),RDT pos (u5)\nAdakawa,Dala,2021,10,4\n";
    let r = upload_export(&s, "odd.csv", odd.as_bytes(), None);
    assert_eq!(r.status, 422, "{}", r.text());
    let u = upload_export(
        &s,
        "odd.csv",
        odd.as_bytes(),
        Some(r#"{"u5_rdt_tested": "RDT done (u5)", "u5_rdt_positive": "RDT pos (u5)"}"#),
    )
    .expect(200, "mapped upload")
    .json_body();
    assert_eq!(u["mapping"]["u5_rdt_tested"][0], "RDT done (u5)");
    let c = s
        .post_json("/api/tpr/calculate", &json!({}))
        .expect(200, "calculate with the stored mapping")
        .json_body();
    assert_eq!(c["summary"]["state_tpr"], 40.0);
    // A 20 MB export (the Kano rows twelve times over): accepted; counts add up, TPR unchanged.
    let kano = String::from_utf8(fixture("tpr/kano_nmep_2021_2024.csv")).unwrap();
    let mut lines = kano.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.collect();
    let mut big = String::with_capacity(kano.len() * 12);
    big.push_str(header);
    big.push('\n');
    for _ in 0..12 {
        for l in &body {
            big.push_str(l);
            big.push('\n');
        }
    }
    assert!(big.len() > 20_000_000, "{}", big.len());
    let u = upload_export(&s, "big.csv", big.as_bytes(), None)
        .expect(200, "20 MB upload")
        .json_body();
    assert_eq!(u["rows"], 8171 * 12);
    let c = s
        .post_json("/api/tpr/calculate", &json!({}))
        .expect(200, "calculate big")
        .json_body();
    let single_state_tpr = summaries()["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["level"] == "all" && m["age_group"] == "all_ages" && m["method"] == "both")
        .unwrap()["state_tpr"]
        .clone();
    assert_eq!(c["summary"]["state_tpr"], single_state_tpr);
}

/// The guided dialogue in chat, one message per new connection (so over several workers): the
/// questions come from the pending question stored with the conversation; the figures are the
/// server's (equal to the reference summaries); trend, reprioritisation and missing data answer
/// from the computed files.
#[test]
fn chat_guides_the_tpr_choices_and_answers_with_the_servers_figures() {
    let server = start(3);
    let s = Session::create(server.addr());
    let say =
        |m: &str| -> Value { crate::support::chat::send(server.addr(), &s.id, m).json_body() };
    // Before any export: the assistant says what to upload, in words of the page.
    let a = say("calculate TPR");
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains("Facility export (TPR)"),
        "{a}"
    );
    s.upload_kano().expect(200, "ward upload");
    upload_export(
        &s,
        "kano.csv",
        &fixture("tpr/kano_nmep_2021_2024.csv"),
        None,
    )
    .expect(200, "tpr upload");
    let a = say("start the tpr workflow");
    assert_eq!(a["tpr_step"], "facility_level", "{a}");
    let text = a["response"].as_str().unwrap();
    assert!(text.contains("Kano") && text.contains("primary"), "{text}");
    let a = say("primary");
    assert_eq!(a["tpr_step"], "age_group", "{a}");
    let a = say("back");
    assert_eq!(a["tpr_step"], "facility_level", "{a}");
    let a = say("primary facilities");
    assert_eq!(a["tpr_step"], "age_group", "{a}");
    let a = say("under 5");
    assert_eq!(a["tpr_step"], "test_method", "{a}");
    let a = say("RDT");
    assert_eq!(a["tools_used"], json!(["tpr_calculate"]), "{a}");
    assert_eq!(a["pending"], false);
    let text = a["response"].as_str().unwrap();
    let want = summaries()["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["level"] == "primary" && m["age_group"] == "u5" && m["method"] == "rdt")
        .unwrap()["state_tpr"]
        .clone();
    assert!(text.contains(&format!("{want}% of")), "{want}: {text}");
    assert!(
        text.contains("under 5 years, RDT, primary facilities"),
        "{text}"
    );
    assert!(
        !text.contains("/api/"),
        "answers speak of the page, not routes: {text}"
    );
    // One sentence with every choice.
    let a = say("calculate TPR for all ages, all facility levels, both methods");
    assert_eq!(a["tools_used"], json!(["tpr_calculate"]), "{a}");
    assert!(
        a["visualizations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["title"] == "TPR map"),
        "{a}"
    );
    let a = say("which wards are worsening?");
    assert_eq!(a["tools_used"], json!(["tpr_trend"]), "{a}");
    let trends =
        String::from_utf8(fixture("tpr/expected/trend_summary__all_all_ages_both.csv")).unwrap();
    let worsening = column_by(&trends, "lga_key+ward_key", "Direction")
        .values()
        .filter(|v| *v == "worsening")
        .count();
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains(&format!("{worsening} wards worsening")),
        "{a}"
    );
    let a = say("reprioritise 14 wards");
    let text = a["response"].as_str().unwrap();
    assert!(
        text.contains("Rank_Latest") && text.contains("\n14. "),
        "{text}"
    );
    let a = say("missing data by year");
    let text = a["response"].as_str().unwrap();
    assert!(text.contains("2021:") && text.contains("2024:"), "{text}");
    // Something else entirely goes to the assistant as usual.
    let a = say("what's in my data?");
    assert!(
        !a["tools_used"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().starts_with("tpr"))
    );
}

fn upload_export_and_shapefile(s: &Session, export: Option<&[u8]>, shapefile: &[u8]) -> Reply {
    let mut parts = Vec::new();
    if let Some(bytes) = export {
        parts.push(Part::file("file", "kano_nmep_2021_2024.csv", bytes));
    }
    parts.push(Part::file(
        "shapefile",
        "kano_wards_shapefile.zip",
        shapefile,
    ));
    s.post_form("/api/tpr/upload", &parts)
}

/// The same request until a worker other than `avoid` answers it (the session is re-read from
/// disk by whichever worker serves it).
fn on_another_worker(avoid: &[i32], mut send: impl FnMut() -> Reply) -> Reply {
    for _ in 0..80 {
        let r = send();
        if !avoid.contains(&r.worker()) {
            return r;
        }
    }
    panic!("no worker outside {avoid:?} answered");
}

/// An officer with only the facility export and the ward shapefile: the shapefile rides with
/// the export, the ward TPR becomes the session's ward table (a new generation) through the
/// §4.4 match (unmatched wards listed), and the risk analysis, ITN planning, the TPR maps and
/// burden work without any ward-table upload. Six workers; upload, calculations, analysis and
/// plan each re-read the session from disk on whichever worker answers.
#[test]
fn a_shapefile_and_no_ward_table_make_the_ward_tpr_the_ward_table() {
    let server = start(6);
    let s = Session::create(server.addr());
    let shapefile = fixture("kano/kano_wards_shapefile.zip");
    let export = fixture("tpr/kano_nmep_2021_2024.csv");
    let up = upload_export_and_shapefile(&s, Some(&export), &shapefile).expect(200, "upload");
    let upload_worker = up.worker();
    let u = up.json_body();
    let matching = String::from_utf8(fixture("tpr/expected/ward_matching.csv")).unwrap();
    let expected_unmatched: BTreeSet<String> = column_by(&matching, "DataWardName", "WardCode")
        .into_iter()
        .filter(|(_, code)| code.is_empty())
        .map(|(name, _)| name)
        .collect();
    assert_eq!(u["shapefile"]["data_wards"], 67, "{u}");
    assert_eq!(
        u["shapefile"]["matched"],
        67 - expected_unmatched.len(),
        "{u}"
    );
    let listed: BTreeSet<String> = u["shapefile"]["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["ward"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, expected_unmatched);
    // Stored with the export: no ward table yet, and nothing to analyse.
    let (_, status) = s.status();
    assert_eq!(status["data_loaded"], false, "{status}");

    // The calculation on another worker makes the ward table.
    let calc = on_another_worker(&[upload_worker], || {
        s.post_json("/api/tpr/calculate", &json!({}))
            .expect(200, "calculate")
    });
    let calc_worker = calc.worker();
    let c = calc.json_body();
    assert_eq!(c["joined"], true, "{c}");
    assert_eq!(c["ward_table_from_tpr"], true, "{c}");
    assert_eq!(c["join"]["columns"], json!(["TPR"]), "{c}");
    assert!(
        c["analysis_note"]
            .as_str()
            .unwrap()
            .contains("two or more variables"),
        "{c}"
    );
    let unmatched: BTreeSet<String> = c["unmatched_wards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["ward"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(unmatched, expected_unmatched);
    let got = s.download("ward_matching.csv").expect(200, "matching");
    assert!(got.body == fixture("tpr/expected/ward_matching.csv"));
    // The TPR map is drawn on the shapefile with no ward table.
    let map = s
        .get(c["map_path"].as_str().unwrap())
        .expect(200, "tpr map");
    assert!(map.text().contains("TPR (%)"));
    // raw_data.csv: one row per shapefile ward, the TPR of the data ward matched to it, blank
    // (never 0) where none matched or there were no tests.
    let raw = s
        .download("raw_data.csv")
        .expect(200, "raw_data.csv")
        .text();
    let ours = column_by(&raw, "WardName", "TPR");
    let results =
        String::from_utf8(fixture("tpr/expected/tpr_results__all_all_ages_both.csv")).unwrap();
    let codes = column_by(&results, "WardName", "WardCode");
    let want: BTreeMap<String, String> = column_by(&results, "WardName", "TPR")
        .into_iter()
        .filter(|(name, _)| !codes[name].is_empty())
        .collect();
    let shapefile_wards = raw.lines().count() - 1;
    assert_eq!(ours.len(), shapefile_wards);
    for (ward, tpr) in &ours {
        let expected = want.get(ward).and_then(|v| float_or_blank(v));
        assert_eq!(float_or_blank(tpr), expected, "{ward}");
    }
    assert!(ours.values().any(|v| v.is_empty()), "Kabuga has no tests");
    let (_, status) = s.status();
    assert_eq!(status["data_loaded"], true, "{status}");
    assert_eq!(status["shapefile_loaded"], true, "{status}");

    // TPR alone: the analysis says it needs a second variable (analysis.md §3.1).
    let r = s.run_analysis(&json!({"selected_variables": ["TPR"]}));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("at least 2"), "{}", r.text());
    // The chat says what to do next in words of the page.
    let a = crate::support::chat::send(
        server.addr(),
        &s.id,
        "calculate TPR for all ages, all facility levels, both methods",
    )
    .json_body();
    let text = a["response"].as_str().unwrap();
    assert!(text.contains("Upload populations"), "{text}");
    assert!(
        !text.contains("/api/") && !text.contains("/run_analysis"),
        "{text}"
    );

    // Population (for the ward table just made), then the calculation again: Burden joins.
    s.upload_population(
        "kano_population_synthetic.csv",
        &fixture("tpr/kano_population_synthetic.csv"),
    )
    .expect(200, "population");
    let c = on_another_worker(&[calc_worker], || {
        s.post_json("/api/tpr/calculate", &json!({}))
            .expect(200, "calculate with population")
    })
    .json_body();
    assert_eq!(c["join"]["columns"], json!(["TPR", "Burden"]), "{c}");
    assert_eq!(c["burden"], true, "{c}");
    let raw = s.download("raw_data.csv").expect(200, "raw").text();
    let burden = column_by(&raw, "WardName", "Burden");
    let want_burden = column_by(&results, "WardName", "Burden");
    assert_eq!(
        burden.get("Adakawa").and_then(|v| float_or_blank(v)),
        float_or_blank(&want_burden["Adakawa"])
    );
    let (_, status) = s.status();
    assert_eq!(
        status["population_loaded"], true,
        "population kept: {status}"
    );

    // The risk analysis with TPR and Burden, on a third worker; then ITN planning.
    let analysed = on_another_worker(&[upload_worker, calc_worker], || {
        s.run_analysis(&json!({"selected_variables": ["TPR", "Burden"]}))
            .expect(200, "run_analysis")
    });
    let a = analysed.json_body();
    assert_eq!(a["variables_used"], json!(["TPR", "Burden"]), "{a}");
    let plan = s
        .plan_itn(&json!({"total_nets": 200000}))
        .expect(200, "itn plan")
        .json_body();
    assert!(plan["stats"].is_object(), "{plan}");
}

#[test]
fn a_shapefile_joins_the_current_export_and_is_refused_beside_uploaded_ward_data() {
    let server = start(2);
    let s = Session::create(server.addr());
    let shapefile = fixture("kano/kano_wards_shapefile.zip");
    // Alone, before any export: 409 that says what to upload.
    let r = upload_export_and_shapefile(&s, None, &shapefile);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("export"), "{}", r.text());
    // Not a zip: 415.
    let r = s.post_form(
        "/api/tpr/upload",
        &[Part::file("shapefile", "wards.shp", b"not a zip")],
    );
    assert_eq!(r.status, 415, "{}", r.text());
    upload_export(
        &s,
        "kano.csv",
        &fixture("tpr/kano_nmep_2021_2024.csv"),
        None,
    )
    .expect(200, "export");
    // A broken zip is refused and leaves the export in place.
    let r = upload_export_and_shapefile(&s, None, b"PK\x03\x04 broken");
    assert_eq!(r.status / 100, 4, "{}", r.text());
    // The shapefile alone joins the session's export.
    let u = upload_export_and_shapefile(&s, None, &shapefile)
        .expect(200, "shapefile after the export")
        .json_body();
    assert_eq!(u["rows"], 8171);
    assert_eq!(u["shapefile"]["data_wards"], 67);
    // A corrected export without a shapefile keeps it.
    let u = upload_export(
        &s,
        "kano.csv",
        &fixture("tpr/kano_nmep_2021_2024.csv"),
        None,
    )
    .expect(200, "export again")
    .json_body();
    assert_eq!(u["shapefile"]["data_wards"], 67, "{u}");
    let c = s
        .post_json("/api/tpr/calculate", &json!({"join": false}))
        .expect(200, "calculate without the table")
        .json_body();
    assert_eq!(c["joined"], false);
    assert!(c["map_path"].is_string(), "{c}");
    assert_eq!(s.status().1["data_loaded"], false);
    // Uploaded ward data has its own shapefile: a second one is refused.
    s.upload_kano().expect(200, "ward data");
    let r = upload_export_and_shapefile(&s, None, &shapefile);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("ward data"), "{}", r.text());
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// tpr.md §0.2: an explicit mapping in the options request overrides the rules for that
/// answer; bad mappings are a 422 naming the problem.
#[test]
fn options_answer_under_an_explicit_mapping() {
    let server = start(2);
    let s = Session::create(server.addr());
    // Two RDT column pairs; the rules take the under-five pair as u5 and the other as o5.
    let csv = "ward,lga,Period,\
        Persons presenting with fever & tested by RDT <5yrs,\
        Persons tested positive for malaria by RDT <5yrs,\
        Other RDT tested,Other RDT positive\n\
        Adakawa,Dala,2021,100,40,10,9\n\
        Gwale,Gwale,2021,50,10,20,2\n";
    upload_export(&s, "odd.csv", csv.as_bytes(), None).expect(200, "upload");
    let plain = s
        .get("/api/tpr/options?facility_level=all&age_group=u5")
        .expect(200, "options")
        .json_body();
    let rdt = |o: &Value| {
        o["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["method"] == "rdt")
            .unwrap()["state_tpr"]
            .clone()
    };
    assert_eq!(rdt(&plain), 33.33, "{plain}");
    // The mapping moves u5 onto the other pair, for this answer only.
    let mapping =
        r#"{"u5_rdt_tested": "Other RDT tested", "u5_rdt_positive": "Other RDT positive"}"#;
    let mapped = s
        .get(&format!(
            "/api/tpr/options?facility_level=all&age_group=u5&mapping={}",
            percent_encode(mapping)
        ))
        .expect(200, "options with a mapping")
        .json_body();
    assert_eq!(rdt(&mapped), 36.67, "{mapped}");
    assert_eq!(mapped["mapping"]["u5_rdt_tested"][0], "Other RDT tested");
    // The same through POST.
    let posted = s
        .post_json(
            "/api/tpr/options",
            &json!({"facility_level": "all", "age_group": "u5",
                    "mapping": serde_json::from_str::<Value>(mapping).unwrap()}),
        )
        .expect(200, "POST options")
        .json_body();
    assert_eq!(posted["options"], mapped["options"]);
    // The stored mapping is unchanged.
    let again = s
        .get("/api/tpr/options?facility_level=all&age_group=u5")
        .expect(200, "options")
        .json_body();
    assert_eq!(rdt(&again), 33.33);
    // Bad mappings name what is wrong.
    for (mapping, needles) in [
        (
            json!({"u5_rdt_tested": "No such column"}),
            vec!["No such column"],
        ),
        (
            json!({"u5_rdt_tests": "Other RDT tested"}),
            vec!["u5_rdt_tests"],
        ),
        (
            json!({"u5_rdt_tested": "Other RDT tested", "u5_rdt_positive": "Other RDT tested"}),
            vec!["Other RDT tested", "u5_rdt_tested", "u5_rdt_positive"],
        ),
        (
            json!({"ward": "Period", "lga": "Period"}),
            vec!["Period", "ward", "lga"],
        ),
    ] {
        let r = s.post_json("/api/tpr/options", &json!({"mapping": mapping}));
        assert_eq!(r.status, 422, "{mapping}: {}", r.text());
        for n in needles {
            assert!(r.text().contains(n), "{mapping}: {n}: {}", r.text());
        }
        let r = s.get(&format!(
            "/api/tpr/options?mapping={}",
            percent_encode(&mapping.to_string())
        ));
        assert_eq!(r.status, 422, "GET {mapping}: {}", r.text());
    }
    let r = s.get("/api/tpr/options?mapping=%7Bnot%20json");
    assert_eq!(r.status, 422, "{}", r.text());
}
