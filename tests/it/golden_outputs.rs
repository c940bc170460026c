//! Every output file, byte for byte, against fixtures written by the code as it was before the
//! shared ward-data vocabulary (issue 12): analysis CSVs and JSON, the unified dataset (CSV and
//! GeoParquet), ITN results and allocation tables for both strategies, maps and charts, and what
//! the routes and the assistant answer, on Kano and Ilorin, through `prefork analyze` and through
//! the HTTP workflow.
//!
//! What legitimately changes from run to run is masked on both sides before the comparison:
//! ISO timestamps, 32-hex ids (session, analysis) and the millisecond stamp in ITN file names;
//! `worker_pid` fields are dropped from JSON answers. The GeoParquet file is compared decoded
//! (every column but `last_updated`, every geometry) and then byte for byte after re-encoding it
//! with the fixture's timestamp.
//!
//! `PREFORK_GOLDEN_UPDATE=1 cargo test --features test-hooks --test it golden_outputs::` rewrites the fixtures: only for a
//! deliberate change of an output, and say which in the commit.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{Answer, ServerBuilder, Session, fixture};
use serde_json::{Value, json};

fn golden(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(rel)
}

fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn updating() -> bool {
    std::env::var_os("PREFORK_GOLDEN_UPDATE").is_some()
}

/// Replaces run-dependent text: `YYYY-MM-DDTHH:MM:SS`, runs of exactly 32 lowercase hex digits,
/// and `_<13 digits>.` (the millisecond stamp of ITN file names).
fn mask(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let digit = |j: usize| b.get(j).is_some_and(u8::is_ascii_digit);
    let hex = |j: usize| {
        b.get(j)
            .is_some_and(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    };
    while i < b.len() {
        // ISO timestamp.
        let iso = (0..4).all(|k| digit(i + k))
            && b.get(i + 4) == Some(&b'-')
            && (5..7).all(|k| digit(i + k))
            && b.get(i + 7) == Some(&b'-')
            && (8..10).all(|k| digit(i + k))
            && b.get(i + 10) == Some(&b'T')
            && (11..13).all(|k| digit(i + k))
            && b.get(i + 13) == Some(&b':')
            && (14..16).all(|k| digit(i + k))
            && b.get(i + 16) == Some(&b':')
            && (17..19).all(|k| digit(i + k));
        if iso {
            out.push_str("<TIMESTAMP>");
            i += 19;
            continue;
        }
        let starts_token = i == 0 || !hex(i - 1);
        if starts_token && (0..32).all(|k| hex(i + k)) && !hex(i + 32) {
            out.push_str("<ID>");
            i += 32;
            continue;
        }
        if b[i] == b'_' && (1..14).all(|k| digit(i + k)) && b.get(i + 14) == Some(&b'.') {
            out.push_str("_<MS>");
            i += 14;
            continue;
        }
        // Copy one UTF-8 character.
        let len = text[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&text[i..i + len]);
        i += len;
    }
    out
}

/// Differences found so far; the test fails at the end listing all of them.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    compared: usize,
}

impl Report {
    /// Compares a text output with its fixture after masking both.
    fn text(&mut self, fixture: &Path, actual: &[u8]) {
        self.compared += 1;
        let actual = String::from_utf8(actual.to_vec())
            .unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", fixture.display()));
        if updating() {
            write(fixture, mask(&actual).as_bytes());
            return;
        }
        let Ok(expected) = std::fs::read_to_string(fixture) else {
            self.failures
                .push(format!("{}: no such fixture", fixture.display()));
            return;
        };
        let (expected, actual) = (mask(&expected), mask(&actual));
        if expected != actual {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(e, a)| e != a)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            self.failures.push(format!(
                "{}: differs from line {} (expected {:?}, got {:?}; {} vs {} bytes)",
                fixture.display(),
                line + 1,
                expected.lines().nth(line).unwrap_or("<end>"),
                actual.lines().nth(line).unwrap_or("<end>"),
                expected.len(),
                actual.len()
            ));
        }
    }

    /// A JSON answer: `worker_pid` dropped, pretty-printed (sorted keys), then as text.
    fn json(&mut self, fixture: &Path, value: &Value) {
        let mut value = value.clone();
        strip(&mut value, "worker_pid");
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        self.text(fixture, text.as_bytes());
    }

    /// GeoParquet: decoded equality except `last_updated`, then byte equality after re-encoding
    /// the output with the fixture's `last_updated`.
    fn geoparquet(&mut self, fixture: &Path, actual: &[u8]) {
        self.compared += 1;
        if updating() {
            write(fixture, actual);
            return;
        }
        let Ok(expected) = std::fs::read(fixture) else {
            self.failures
                .push(format!("{}: no such fixture", fixture.display()));
            return;
        };
        let (want_table, want_geoms) = mrpt_formats::read_geoparquet(&expected).unwrap();
        let (mut got_table, got_geoms) = match mrpt_formats::read_geoparquet(actual) {
            Ok(t) => t,
            Err(e) => {
                self.failures
                    .push(format!("{}: unreadable output: {e}", fixture.display()));
                return;
            }
        };
        let without_stamp = |t: &mrpt_table::Table| {
            let mut t = t.clone();
            t.remove("last_updated");
            t
        };
        if without_stamp(&want_table) != without_stamp(&got_table) {
            self.failures.push(format!(
                "{}: the decoded table differs (columns {:?} vs {:?})",
                fixture.display(),
                want_table.column_names(),
                got_table.column_names()
            ));
            return;
        }
        if want_geoms != got_geoms {
            self.failures
                .push(format!("{}: the geometries differ", fixture.display()));
            return;
        }
        if let Some(stamp) = want_table.column("last_updated") {
            got_table.push("last_updated", stamp.data.clone()).unwrap();
        }
        let reencoded = mrpt_formats::write_geoparquet(&got_table, &got_geoms).unwrap();
        if reencoded != expected {
            self.failures.push(format!(
                "{}: re-encoded with the fixture's timestamp, the bytes differ ({} vs {})",
                fixture.display(),
                expected.len(),
                reencoded.len()
            ));
        }
    }

    /// Every file of `dir` (the fixture set) against the file of the same name in `out`; in
    /// update mode, `names` are copied from `out` into `dir`.
    fn directory(&mut self, dir: &Path, out: &Path, names: &[String]) {
        for name in names {
            let Ok(actual) = std::fs::read(out.join(name)) else {
                self.failures
                    .push(format!("{}: not written", out.join(name).display()));
                continue;
            };
            if name.ends_with(".geoparquet") {
                self.geoparquet(&dir.join(name), &actual);
            } else {
                self.text(&dir.join(name), &actual);
            }
        }
    }

    fn finish(self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} outputs differ from the fixtures:\n{}",
            self.failures.len(),
            self.compared,
            self.failures.join("\n")
        );
        assert!(self.compared > 0, "{what}: nothing compared");
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn strip(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            map.remove(key);
            for v in map.values_mut() {
                strip(v, key);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip(v, key)),
        _ => {}
    }
}

/// The file names of a fixture directory (sorted); in update mode, of the output directory
/// filtered by `keep`.
fn names(fixture_dir: &Path, out: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let dir = if updating() { out } else { fixture_dir };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| keep(n))
        .collect();
    names.sort();
    names
}

fn is_itn_file(name: &str) -> bool {
    name.starts_with("itn_")
}

/// One `prefork analyze` run and where its outputs are kept.
struct CliCase {
    csv: &'static str,
    shapefile: Option<&'static str>,
    variables: Option<&'static str>,
    /// `(population fixture, ITN arguments)`.
    itn: Option<(&'static str, &'static [&'static str])>,
    analysis_dir: &'static str,
    itn_dir: Option<&'static str>,
}

const KANO_POPULATION: &str = "reference/kano/kano_auto_population_input.csv";
const ILORIN_POPULATION: &str = "golden/ilorin_population.csv";
const RANK_COMPOSITE: &[&str] = &[
    "--total-nets",
    "100000",
    "--strategy",
    "rank",
    "--method",
    "composite",
];
const RURAL_FIRST_PCA: &[&str] = &[
    "--total-nets",
    "150000",
    "--strategy",
    "rural_first",
    "--method",
    "pca",
    "--household-size",
    "4.5",
    "--urban-threshold",
    "60",
];

const CLI_CASES: &[CliCase] = &[
    CliCase {
        csv: "kano/kano_wards.csv",
        shapefile: Some("kano/kano_wards_shapefile.zip"),
        variables: None,
        itn: Some((KANO_POPULATION, RANK_COMPOSITE)),
        analysis_dir: "kano/analysis",
        itn_dir: Some("kano/itn_rank_composite"),
    },
    CliCase {
        csv: "kano/kano_wards.csv",
        shapefile: Some("kano/kano_wards_shapefile.zip"),
        variables: None,
        itn: Some((KANO_POPULATION, RURAL_FIRST_PCA)),
        analysis_dir: "kano/analysis",
        itn_dir: Some("kano/itn_rural_first_pca"),
    },
    CliCase {
        csv: "ilorin/ilorin_wards.csv",
        shapefile: Some("ilorin/ilorin_wards_shapefile.zip"),
        variables: None,
        itn: Some((ILORIN_POPULATION, RANK_COMPOSITE)),
        analysis_dir: "ilorin/analysis",
        itn_dir: Some("ilorin/itn_rank_composite"),
    },
    CliCase {
        csv: "ilorin/ilorin_wards.csv",
        shapefile: Some("ilorin/ilorin_wards_shapefile.zip"),
        variables: None,
        itn: Some((ILORIN_POPULATION, RURAL_FIRST_PCA)),
        analysis_dir: "ilorin/analysis",
        itn_dir: Some("ilorin/itn_rural_first_pca"),
    },
    CliCase {
        csv: "kano/kano_wards.csv",
        shapefile: None,
        variables: Some("rainfall,total,nets_per_capita,distance_to_water_bodies,dumpsites"),
        itn: None,
        analysis_dir: "kano_csv_only/analysis",
        itn_dir: None,
    },
    CliCase {
        csv: "ilorin/ilorin_wards.csv",
        shapefile: None,
        variables: None,
        itn: None,
        analysis_dir: "ilorin_csv_only/analysis",
        itn_dir: None,
    },
];

#[test]
fn prefork_analyze_writes_the_fixture_files() {
    let mut report = Report::default();
    for (i, case) in CLI_CASES.iter().enumerate() {
        let out = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prefork"));
        cmd.arg("analyze").arg("--csv").arg(fixture_path(case.csv));
        if let Some(shp) = case.shapefile {
            cmd.arg("--shapefile").arg(fixture_path(shp));
        }
        if let Some(vars) = case.variables {
            cmd.args(["--variables", vars]);
        }
        if let Some((population, args)) = case.itn {
            cmd.arg("--population").arg(fixture_path(population));
            cmd.args(args);
        }
        let output = cmd.arg("--out").arg(out.path()).output().unwrap();
        assert!(
            output.status.success(),
            "case {i}: prefork analyze failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Cases sharing an analysis write its fixtures once.
        let first_of_analysis = CLI_CASES[..i]
            .iter()
            .all(|c| c.analysis_dir != case.analysis_dir);
        if !updating() || first_of_analysis {
            let dir = golden(case.analysis_dir);
            let files = names(&dir, out.path(), |n| !is_itn_file(n));
            report.directory(&dir, out.path(), &files);
        }
        if let Some(itn_dir) = case.itn_dir {
            let dir = golden(itn_dir);
            let files = names(&dir, out.path(), is_itn_file);
            assert!(!files.is_empty(), "case {i}: no ITN files");
            report.directory(&dir, out.path(), &files);
        }
    }
    report.finish("prefork analyze");
}

/// Sends a chat message and records its answer; returns the visualisation URLs it offered.
fn chat(s: &Session, report: &mut Report, dir: &Path, name: &str, message: &str) -> Vec<String> {
    let answer = s
        .post_json("/send_message", &json!({ "message": message }))
        .expect(200, message)
        .json_body();
    report.json(&dir.join(format!("chat_{name}.json")), &answer);
    answer["visualizations"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|x| x["url"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Fetches a served file and compares it under `name`.
fn served(s: &Session, report: &mut Report, dir: &Path, name: &str, url: &str) {
    let body = s.get(url).expect(200, url).body;
    report.text(&dir.join(name), &body);
}

struct Area {
    name: &'static str,
    csv: &'static str,
    shapefile: &'static str,
    population: &'static str,
    variable: &'static str,
    ward: &'static str,
    other_ward: &'static str,
}

const AREAS: [Area; 2] = [
    Area {
        name: "kano",
        csv: "kano/kano_wards.csv",
        shapefile: "kano/kano_wards_shapefile.zip",
        population: KANO_POPULATION,
        variable: "rainfall",
        ward: "Dala",
        other_ward: "Fagge A",
    },
    Area {
        name: "ilorin",
        csv: "ilorin/ilorin_wards.csv",
        shapefile: "ilorin/ilorin_wards_shapefile.zip",
        population: ILORIN_POPULATION,
        variable: "distance",
        ward: "Apado",
        other_ward: "Oko-Erin",
    },
];

/// Upload, chat before the analysis, analysis, maps, population, ITN with both strategies and
/// chat after it, through the real server; the session folder's analysis and ITN files must be
/// the same as `prefork analyze`'s.
#[test]
fn the_http_workflow_writes_and_answers_the_fixture_outputs() {
    let server = ServerBuilder::new().args(&["-w", "2"]).start();
    server
        .wait_workers(2, Duration::from_secs(60))
        .expect("2 workers");
    let instance = server.dir.path().join("instance");
    let mut report = Report::default();
    for area in &AREAS {
        let dir = golden(&format!("{}/http", area.name));
        let s = Session::create(server.addr());
        let folder = instance.join("uploads").join(&s.id);
        let csv = fixture(area.csv);
        let shp = fixture(area.shapefile);
        let file_name = |rel: &str| rel.rsplit('/').next().unwrap().to_string();
        let upload = s
            .upload(
                (&file_name(area.csv), &csv),
                Some((&file_name(area.shapefile), &shp)),
            )
            .expect(200, "upload")
            .json_body();
        report.json(&dir.join("upload.json"), &upload);
        chat(
            &s,
            &mut report,
            &dir,
            "summary_before",
            "summarise the data",
        );
        let maps = chat(
            &s,
            &mut report,
            &dir,
            "variable_map_before",
            &format!("map {}", area.variable),
        );
        for url in maps {
            served(&s, &mut report, &dir, "variable_map_before.html", &url);
        }

        let analysis = s
            .run_analysis(&json!({}))
            .expect(200, "analysis")
            .json_body();
        report.json(&dir.join("run_analysis.json"), &analysis);
        for v in analysis["visualizations"].as_array().unwrap() {
            let kind = v["type"].as_str().unwrap();
            served(
                &s,
                &mut report,
                &dir,
                &format!("{kind}.html"),
                v["url"].as_str().unwrap(),
            );
        }
        let analysis_dir = golden(&format!("{}/analysis", area.name));
        // The CLI's analysis files, minus the summary it writes beside them.
        let files: Vec<String> = names(&analysis_dir, &folder, |n| {
            !is_itn_file(n) && n != "analysis_summary.json"
        });
        if !updating() {
            report.directory(&analysis_dir, &folder, &files);
        }

        let population = fixture(area.population);
        let pop = s
            .upload_population(&file_name(area.population), &population)
            .expect(200, "population")
            .json_body();
        report.json(&dir.join("upload_population.json"), &pop);
        report.text(
            &dir.join("population.csv"),
            &std::fs::read(folder.join("population.csv")).unwrap(),
        );

        for (label, body, cli_dir) in [
            (
                "rank_composite",
                json!({"total_nets": 100000, "strategy": "rank", "method": "composite"}),
                "itn_rank_composite",
            ),
            (
                "rural_first_pca",
                json!({"total_nets": 150000, "strategy": "rural_first", "method": "pca",
                       "avg_household_size": 4.5, "urban_threshold": 60}),
                "itn_rural_first_pca",
            ),
        ] {
            let itn = s.plan_itn(&body).expect(200, label).json_body();
            report.json(&dir.join(format!("itn_{label}.json")), &itn);
            report.text(
                &dir.join(format!("itn_distribution_results_{label}.json")),
                &std::fs::read(folder.join("itn_distribution_results.json")).unwrap(),
            );
            if let Some(map) = itn["map_path"].as_str() {
                served(&s, &mut report, &dir, &format!("itn_map_{label}.html"), map);
            }
            // The allocation table is the one `prefork analyze` writes.
            let csv = s.get(itn["allocation_download"].as_str().unwrap());
            let csv = csv.expect(200, "allocation download").body;
            let cli_csv = golden(&format!("{}/{cli_dir}/itn_allocation.csv", area.name));
            if !updating() {
                report.text(&cli_csv, &csv);
            }
            chat(
                &s,
                &mut report,
                &dir,
                &format!("itn_map_{label}"),
                "show the ITN map",
            );
        }

        chat(&s, &mut report, &dir, "top_wards", "top 10 wards");
        chat(
            &s,
            &mut report,
            &dir,
            "bottom_wards",
            "what are the bottom 5 wards",
        );
        chat(
            &s,
            &mut report,
            &dir,
            "ward_detail",
            &format!("tell me about {}", area.ward),
        );
        chat(
            &s,
            &mut report,
            &dir,
            "compare",
            &format!("compare {} and {}", area.ward, area.other_ward),
        );
        chat(&s, &mut report, &dir, "summary_after", "summarise the data");
        for url in chat(&s, &mut report, &dir, "box_plot", "show me the box plot") {
            served(&s, &mut report, &dir, "box_plot.html", &url);
        }
        let maps = chat(
            &s,
            &mut report,
            &dir,
            "variable_map_after",
            &format!("map {}", area.variable),
        );
        for url in maps {
            served(&s, &mut report, &dir, "variable_map_after.html", &url);
        }
    }
    report.finish("HTTP workflow");
}

#[test]
fn masking_hides_only_run_dependent_text() {
    assert_eq!(
        mask(
            "at 2026-12-03T08:08:28, id 74df33480e6cde34e431a262dba91331 in itn_map_74df33480e6cde34e431a262dba91331_1796285333669.html"
        ),
        "at <TIMESTAMP>, id <ID> in itn_map_<ID>_<MS>.html"
    );
    // Scores, 33-hex and 31-hex runs stay.
    for keep in [
        "0.6753795874895694",
        "0.1234567890123",
        "74df33480e6cde34e431a262dba913310",
        "74df33480e6cde34e431a262dba9133",
    ] {
        assert_eq!(mask(keep), keep);
    }
}
