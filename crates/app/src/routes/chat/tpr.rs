//! The TPR conversation (tpr.md §3, §8.3): the guided questions state -> facility level -> age
//! group -> test method, kept as a pending question in `conversation.json` (`tpr_pending`) so
//! the next message on any worker continues it; and the intents "calculate TPR", "trend",
//! "worsening / improving wards", "reprioritise N wards", "missing data", "map TPR". Every
//! figure comes from the server's own computation (the routes' functions), never from a model.

use mrpt_session::{Artifact, SessionId, Store};
use mrpt_table::tpr::{AgeChoice, LevelChoice, MethodChoice};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ApiError;
use crate::routes::tpr::{
    TprRequest, calculate_and_store, load, options_answer, reprioritise_and_store,
};

/// The guided selection so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct TprDraft {
    /// The step being asked: `state`, `facility_level`, `age_group` or `test_method`.
    pub step: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub facility_level: Option<String>,
    #[serde(default)]
    pub age_group: Option<String>,
}

/// What a TPR turn answers.
pub(super) struct TprTurn {
    pub response: String,
    pub tools_used: Vec<&'static str>,
    pub visualizations: Vec<Value>,
    pub download_links: Vec<Value>,
    pub pending: Option<TprDraft>,
}

impl TprTurn {
    fn text(response: String, pending: Option<TprDraft>) -> TprTurn {
        TprTurn {
            response,
            tools_used: Vec::new(),
            visualizations: Vec::new(),
            download_links: Vec::new(),
            pending,
        }
    }
}

/// Lower-case words with punctuation as spaces, padded so `has(" rdt ")` finds whole words.
fn words(message: &str) -> String {
    let cleaned: String = message
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    format!(
        " {} ",
        cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

fn has_any(w: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| w.contains(&format!(" {p} ")))
}

fn level_in(w: &str) -> Option<LevelChoice> {
    if has_any(w, &["primary", "phc", "phcs"]) {
        Some(LevelChoice::Primary)
    } else if has_any(w, &["secondary"]) {
        Some(LevelChoice::Secondary)
    } else if has_any(w, &["tertiary"]) {
        Some(LevelChoice::Tertiary)
    } else if has_any(
        w,
        &["all levels", "all facilities", "all facility levels", "all"],
    ) {
        Some(LevelChoice::All)
    } else {
        None
    }
}

fn age_in(w: &str) -> Option<AgeChoice> {
    if has_any(
        w,
        &[
            "u5",
            "under 5",
            "under5",
            "under fives",
            "under five",
            "underfives",
            "children under five",
        ],
    ) {
        Some(AgeChoice::U5)
    } else if has_any(
        w,
        &[
            "o5",
            "over 5",
            "over5",
            "over fives",
            "over five",
            "5 and above",
        ],
    ) {
        Some(AgeChoice::O5)
    } else if has_any(w, &["pw", "pregnant", "pregnant women"]) {
        Some(AgeChoice::Pw)
    } else if has_any(w, &["all ages", "allages", "all age", "all"]) {
        Some(AgeChoice::AllAges)
    } else {
        None
    }
}

fn method_in(w: &str) -> Option<MethodChoice> {
    let rdt = has_any(w, &["rdt", "rdts", "rapid"]);
    let micro = has_any(w, &["microscopy", "micro", "microscope"]);
    if has_any(w, &["both", "max", "higher"]) || (rdt && micro) {
        Some(MethodChoice::Both)
    } else if rdt {
        Some(MethodChoice::Rdt)
    } else if micro {
        Some(MethodChoice::Microscopy)
    } else {
        None
    }
}

fn first_number(w: &str) -> Option<usize> {
    w.split_whitespace().find_map(|t| t.parse().ok())
}

enum Intent {
    Calculate,
    Trend,
    Reprioritise(usize),
    Missing,
    Map,
}

fn intent_of(w: &str) -> Option<Intent> {
    if has_any(
        w,
        &["reprioritise", "reprioritize", "prioritise", "prioritize"],
    ) {
        return Some(Intent::Reprioritise(first_number(w).unwrap_or(10)));
    }
    if has_any(
        w,
        &["missing", "missingness", "completeness", "reporting rate"],
    ) {
        return Some(Intent::Missing);
    }
    if has_any(
        w,
        &[
            "trend",
            "trends",
            "worsening",
            "improving",
            "getting worse",
            "got worse",
            "year over year",
            "rising",
            "falling",
        ],
    ) {
        return Some(Intent::Trend);
    }
    let tpr = has_any(w, &["tpr", "test positivity", "positivity"]);
    if tpr && has_any(w, &["map", "show"]) {
        return Some(Intent::Map);
    }
    if tpr || has_any(w, &["facility export", "tpr workflow"]) {
        return Some(Intent::Calculate);
    }
    None
}

/// The question of one step, with the server's per-option figures.
fn question(store: &Store, id: &SessionId, draft: &TprDraft) -> Result<String, ApiError> {
    let loaded = load(store, id, None)?;
    let request = TprRequest {
        state: draft.state.clone(),
        facility_level: draft.facility_level.clone(),
        age_group: draft.age_group.clone(),
        ..Default::default()
    };
    let options = options_answer(&loaded.export, &request)?;
    let pct = |v: &Value| {
        v.as_f64()
            .map_or("no tests".to_string(), |x| format!("{x}%"))
    };
    let mut lines = Vec::new();
    for o in options["options"].as_array().into_iter().flatten() {
        let line = match draft.step.as_str() {
            "state" => format!(
                "- {}: {} facilities, RDT TPR {}, microscopy TPR {}",
                o["state"].as_str().unwrap_or(""),
                o["facilities"],
                pct(&o["rdt_tpr"]),
                pct(&o["microscopy_tpr"])
            ),
            "facility_level" => format!(
                "- {}: {} facilities, {} RDT tests (TPR {}), {} microscopy tests (TPR {})",
                o["level"].as_str().unwrap_or(""),
                o["facilities"],
                o["rdt_tested"],
                pct(&o["rdt_tpr"]),
                o["microscopy_tested"],
                pct(&o["microscopy_tpr"])
            ),
            "age_group" => format!(
                "- {}: {} facilities reporting, RDT TPR {}, microscopy TPR {}",
                o["age_group"].as_str().unwrap_or(""),
                o["facilities_reporting"],
                pct(&o["rdt_tpr"]),
                pct(&o["microscopy_tpr"])
            ),
            _ => format!(
                "- {}: {} wards with a TPR, {} without tests; TPR over the whole selection {}",
                o["method"].as_str().unwrap_or(""),
                o["wards_with_tpr"],
                o["wards_without_tests"],
                pct(&o["state_tpr"])
            ),
        };
        lines.push(line);
    }
    let ask = match draft.step.as_str() {
        "state" => "Which state should I use?",
        "facility_level" => {
            "Which facility level: primary, secondary, tertiary or all? (Facilities of unknown level are only in \"all\".)"
        }
        "age_group" => {
            "Which age group: under-fives (u5), over-fives (o5), pregnant women (pw) or all ages?"
        }
        _ => {
            "Which test method: RDT, microscopy, or both (each ward takes the higher of the two rates)?"
        }
    };
    let mut text = String::new();
    if let Some(s) = &draft.state {
        text.push_str(&format!("State: {s}. "));
    }
    text.push_str(ask);
    if !lines.is_empty() {
        text.push('\n');
        text.push_str(&lines.join("\n"));
    }
    text.push_str("\n(Say \"back\" to change the previous answer.)");
    Ok(text)
}

fn next_step(draft: &TprDraft, several_states: bool) -> Option<&'static str> {
    if several_states && draft.state.is_none() {
        Some("state")
    } else if draft.facility_level.is_none() {
        Some("facility_level")
    } else if draft.age_group.is_none() {
        Some("age_group")
    } else {
        None
    }
}

fn download(id: &SessionId, file: &str) -> Value {
    json!({"type": "download", "title": file, "url": format!("/export/download/{}/{file}", id.as_str())})
}

/// Runs the calculation and words the answer from its figures.
fn calculate(
    store: &Store,
    id: &SessionId,
    draft: &TprDraft,
    method: MethodChoice,
    limits: &mrpt_formats::Limits,
) -> Result<TprTurn, ApiError> {
    let request = TprRequest {
        state: draft.state.clone(),
        facility_level: draft.facility_level.clone(),
        age_group: draft.age_group.clone(),
        test_method: Some(method.as_str().to_string()),
        replace: Some(true),
        ..Default::default()
    };
    let a = calculate_and_store(store, id, &request, limits)?;
    let mut text = format!(
        "{}: {} wards",
        a["metric_label"].as_str().unwrap_or("Test positivity rate"),
        a["wards"]
    );
    let untested = a["wards_without_tests"].as_array().map_or(0, Vec::len);
    if untested > 0 {
        text.push_str(&format!(
            " ({untested} with no tests, left blank rather than 0)"
        ));
    }
    let s = &a["summary"];
    text.push_str(&format!(
        ". Over the whole selection: {}% of {:.0} tests. Ward TPR ranges from {}% to {}% (median {}%).",
        s["state_tpr"],
        s["state_tested"].as_f64().unwrap_or(0.0),
        s["min_tpr"],
        s["max_tpr"],
        s["median_tpr"]
    ));
    let top: Vec<String> = a["top_wards"]
        .as_array()
        .into_iter()
        .flatten()
        .take(5)
        .map(|w| {
            format!(
                "{} ({}) {}%",
                w["ward"].as_str().unwrap_or(""),
                w["lga"].as_str().unwrap_or(""),
                w["tpr"]
            )
        })
        .collect();
    if !top.is_empty() {
        text.push_str(&format!("\nHighest: {}.", top.join(", ")));
    }
    if let Some(t) = a.get("trend").filter(|t| !t.is_null()) {
        text.push_str(&format!(
            "\nTrend over the years: {} wards worsening, {} improving, {} stable (a change of {} points a year or more counts).",
            t["worsening"], t["improving"], t["stable"], t["direction_threshold"]
        ));
    }
    if a["ward_table_from_tpr"] == true {
        let made = &a["join"];
        let blank = made["blank"].as_array().map_or(0, Vec::len);
        text.push_str(&format!(
            "\nYour ward shapefile's {} wards are now the session's ward data, with the column(s) {}{}.",
            made["wards"],
            made["columns"]
                .as_array()
                .map(|c| c.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" and "))
                .unwrap_or_default(),
            if blank > 0 {
                format!(" ({blank} left blank: no facility data matched them or no tests)")
            } else {
                String::new()
            }
        ));
        let ready = made["columns"].as_array().is_some_and(|c| c.len() >= 2);
        let next = if ready {
            "Next: press \"Run risk analysis\" (or say \"run the analysis with TPR and Burden\"), then plan nets with \"Plan ITN distribution\"; raw_data.csv is ready to download."
        } else {
            "Next: add the ward population with \"Upload populations\" and ask me to calculate TPR again (Burden per 1,000 then joins TPR), or upload ward data with other variables in \"Upload your data\"; raw_data.csv is ready to download."
        };
        text.push_str(&format!(
            "\n{} {next}",
            a["analysis_note"].as_str().unwrap_or("")
        ));
    } else if a["joined"] == true {
        text.push_str(
            "\nThe ward TPR is now the column TPR of your ward data, so the risk analysis can use it (run the analysis again to include it).",
        );
    }
    let unmatched = a["unmatched_wards"].as_array().map_or(0, Vec::len);
    if unmatched > 0 {
        text.push_str(&format!(
            "\n{unmatched} ward(s) of the export matched no shapefile ward; they are listed in ward_matching.csv."
        ));
    }
    text.push_str("\nThe tables are ready to download below.");
    let mut visualizations = Vec::new();
    for m in a["maps"].as_array().into_iter().flatten() {
        let file = m["file"].as_str().unwrap_or("");
        let title = match file {
            "tpr_map.html" => "TPR map",
            "tpr_map_slope.html" => "TPR trend map",
            "tpr_trend_chart.html" => "Most worsening and improving wards",
            "tpr_map_missingness.html" => "Missing data map",
            other => other,
        };
        visualizations
            .push(json!({"type": "map", "title": title, "url": m["url"], "path": m["url"]}));
    }
    let download_links = [
        "tpr_results.csv",
        "trend_summary.csv",
        "tpr_time_series.csv",
    ]
    .iter()
    .filter(|f| {
        a["files"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == **f))
    })
    .map(|f| download(id, f))
    .collect();
    Ok(TprTurn {
        response: text,
        tools_used: vec!["tpr_calculate"],
        visualizations,
        download_links,
        pending: None,
    })
}

/// The stored outputs' summary, computing the default selection first when there is none yet.
fn outputs_summary(
    store: &Store,
    id: &SessionId,
    limits: &mrpt_formats::Limits,
) -> Result<(Value, Option<String>), ApiError> {
    if let Some(o) = store.tpr(id)?.and_then(|t| t.outputs) {
        return Ok((o.summary, None));
    }
    let request = TprRequest {
        replace: Some(true),
        ..Default::default()
    };
    let summary = calculate_and_store(store, id, &request, limits)?;
    Ok((
        summary,
        Some(
            "I computed TPR with the defaults first (all facility levels, all ages, the higher of RDT and microscopy).".to_string(),
        ),
    ))
}

fn trend(
    store: &Store,
    id: &SessionId,
    limits: &mrpt_formats::Limits,
) -> Result<TprTurn, ApiError> {
    let (summary, note) = outputs_summary(store, id, limits)?;
    let Some(t) = summary.get("trend").filter(|t| !t.is_null()) else {
        return Ok(TprTurn::text(
            format!(
                "{}A trend needs two or more years, and this selection covers {}. Upload an export with more years to see worsening and improving wards.",
                note.map(|n| n + " ").unwrap_or_default(),
                summary["years"]
            ),
            None,
        ));
    };
    let table = mrpt_formats::read_table(
        &store.read_artifact(id, &Artifact::TprTrendSummary)?,
        "trend_summary.csv",
    )
    .map_err(|e| ApiError::internal(format!("trend_summary.csv: {e}")))?;
    let names = table
        .column("WardName")
        .map(|c| c.data.to_text())
        .unwrap_or_default();
    let lgas = table
        .column("LGA")
        .map(|c| c.data.to_text())
        .unwrap_or_default();
    let slopes = table.numeric("Slope").unwrap_or_default();
    let mut rows: Vec<(f64, String)> = slopes
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.map(|s| {
                (
                    s,
                    format!(
                        "{} ({}) {:+} points a year",
                        names.get(i).cloned().flatten().unwrap_or_default(),
                        lgas.get(i).cloned().flatten().unwrap_or_default(),
                        s
                    ),
                )
            })
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let worst: Vec<&str> = rows
        .iter()
        .filter(|r| r.0 > 0.0)
        .take(5)
        .map(|r| r.1.as_str())
        .collect();
    let best: Vec<&str> = rows
        .iter()
        .rev()
        .filter(|r| r.0 < 0.0)
        .take(5)
        .map(|r| r.1.as_str())
        .collect();
    let mut text = note.map(|n| n + "\n").unwrap_or_default();
    text.push_str(&format!(
        "{}: {} wards worsening, {} improving, {} stable, {} with fewer than two years of tests.",
        summary["metric_label"].as_str().unwrap_or(""),
        t["worsening"],
        t["improving"],
        t["stable"],
        t["insufficient_data"]
    ));
    if !worst.is_empty() {
        text.push_str(&format!("\nRising fastest: {}.", worst.join("; ")));
    }
    if !best.is_empty() {
        text.push_str(&format!("\nFalling fastest: {}.", best.join("; ")));
    }
    text.push_str(&format!("\n{}", t["note"].as_str().unwrap_or("")));
    let mut visualizations = Vec::new();
    for m in summary["maps"].as_array().into_iter().flatten() {
        let file = m["file"].as_str().unwrap_or("");
        if file == "tpr_trend_chart.html" || file == "tpr_map_slope.html" {
            let title = if file == "tpr_trend_chart.html" {
                "Most worsening and improving wards"
            } else {
                "TPR trend map"
            };
            visualizations
                .push(json!({"type": "chart", "title": title, "url": m["url"], "path": m["url"]}));
        }
    }
    Ok(TprTurn {
        response: text,
        tools_used: vec!["tpr_trend"],
        visualizations,
        download_links: vec![
            download(id, "trend_summary.csv"),
            download(id, "tpr_lga_trend.csv"),
        ],
        pending: None,
    })
}

fn missing(
    store: &Store,
    id: &SessionId,
    limits: &mrpt_formats::Limits,
) -> Result<TprTurn, ApiError> {
    let (summary, note) = outputs_summary(store, id, limits)?;
    let table = mrpt_formats::read_table(
        &store.read_artifact(id, &Artifact::TprMissingness)?,
        "tpr_missingness.csv",
    )
    .map_err(|e| ApiError::internal(format!("tpr_missingness.csv: {e}")))?;
    let scope = table
        .column("scope")
        .map(|c| c.data.to_text())
        .unwrap_or_default();
    let key = table
        .column("key")
        .map(|c| c.data.to_text())
        .unwrap_or_default();
    let pct = table.numeric("pct_missing").unwrap_or_default();
    let active = table.numeric("pct_missing_active").unwrap_or_default();
    let of = |want: &str| -> Vec<String> {
        (0..scope.len())
            .filter(|&i| scope[i].as_deref() == Some(want))
            .map(|i| {
                format!(
                    "{}: {}% blank ({}% where the facility reports that indicator)",
                    key[i].clone().unwrap_or_default(),
                    pct.get(i)
                        .copied()
                        .flatten()
                        .map_or("-".into(), |v| v.to_string()),
                    active
                        .get(i)
                        .copied()
                        .flatten()
                        .map_or("-".into(), |v| v.to_string())
                )
            })
            .collect()
    };
    let mut text = note.map(|n| n + "\n").unwrap_or_default();
    text.push_str("Missing testing figures (a blank cell, not a reported 0), by year:\n");
    text.push_str(&of("year").join("\n"));
    let lga = of("lga");
    if !lga.is_empty() {
        text.push_str("\nBy LGA:\n");
        text.push_str(&lga.join("\n"));
    }
    let mut visualizations = Vec::new();
    for m in summary["maps"].as_array().into_iter().flatten() {
        if m["file"] == "tpr_map_missingness.html" {
            visualizations.push(json!({"type": "map", "title": "Missing data map", "url": m["url"], "path": m["url"]}));
        }
    }
    if visualizations.is_empty() {
        text.push_str(
            "\nA missingness map needs the ward shapefile: add it (a .zip) in the \"Facility export (TPR)\" entry, or upload it with your ward data.",
        );
    }
    Ok(TprTurn {
        response: text,
        tools_used: vec!["tpr_missingness"],
        visualizations,
        download_links: vec![download(id, "tpr_missingness.csv")],
        pending: None,
    })
}

fn reprioritise(
    store: &Store,
    id: &SessionId,
    n: usize,
    limits: &mrpt_formats::Limits,
) -> Result<TprTurn, ApiError> {
    outputs_summary(store, id, limits)?;
    let request = TprRequest {
        n: Some(n.clamp(1, 10_000)),
        ..Default::default()
    };
    let r = match reprioritise_and_store(store, id, &request, limits) {
        Ok(r) => r,
        Err(ApiError::Conflict(m)) => {
            return Ok(TprTurn::text(
                format!("I can't rank wards for reprioritisation here: {m}"),
                None,
            ));
        }
        Err(e) => return Err(e),
    };
    let list: Vec<String> = r["ranked"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            format!(
                "{}. {} ({}): {}% now, {:+} points a year",
                w["priority"],
                w["ward"].as_str().unwrap_or(""),
                w["lga"].as_str().unwrap_or(""),
                w["latest"],
                w["slope"].as_f64().unwrap_or(0.0)
            )
        })
        .collect();
    let excluded = r["excluded_low_tests"].as_array().map_or(0, Vec::len);
    let mut text = format!("{}\n{}", r["rule"].as_str().unwrap_or(""), list.join("\n"));
    if excluded > 0 {
        text.push_str(&format!(
            "\n{excluded} ward(s) had too few tests in the last year to be ranked (listed in the file)."
        ));
    }
    Ok(TprTurn {
        response: text,
        tools_used: vec!["tpr_reprioritise"],
        visualizations: Vec::new(),
        download_links: vec![download(id, "tpr_reprioritise.csv")],
        pending: None,
    })
}

/// A TPR turn for this message, or `None` when the message is not about TPR (the interpreter
/// answers it). `pending` is the stored guided question, if any.
pub(super) fn handle(
    store: &Store,
    id: &SessionId,
    message: &str,
    ctx: &mrpt_interpreter::SessionContext,
    pending: Option<TprDraft>,
    limits: &mrpt_formats::Limits,
) -> Result<Option<TprTurn>, ApiError> {
    let w = words(message);
    let intent = intent_of(&w);
    // Neither a TPR phrase nor a pending TPR question: not ours (every path below answers
    // `None` then), and the interpreter's classifier below is not cheap.
    if intent.is_none() && pending.is_none() {
        return Ok(None);
    }
    // Questions about the ward table (LGA views, statistics, filters, charts) belong to the
    // interpreter's exploration tools even when they name the TPR column: the interpreter's own
    // rule classifier says which they are (one phrase list).
    if mrpt_interpreter::explores_ward_table(message, ctx) {
        return Ok(None);
    }
    let Some(record) = store.tpr(id)? else {
        // Without an export, only a request for the facility-export workflow itself is answered
        // here (with how to start it); "map tpr" or "missing values" may be about the ward table.
        let workflow = match intent {
            Some(Intent::Trend | Intent::Reprioritise(_)) => true,
            Some(Intent::Calculate) => has_any(
                &w,
                &[
                    "calculate",
                    "compute",
                    "start",
                    "workflow",
                    "facility export",
                    "facility data",
                ],
            ),
            Some(Intent::Missing | Intent::Map) | None => false,
        };
        return Ok(workflow.then_some(intent).flatten().map(|_| {
            TprTurn::text(
                "There is no facility export in this session yet. Use the \"Facility export (TPR)\" entry on the page to upload the NMEP/DHIS2 testing export (.csv, .xlsx or .xls); I will then ask which facility level, age group and test method to use."
                    .to_string(),
                None,
            )
        }));
    };
    let states: Vec<String> =
        serde_json::from_value(record.info["states"].clone()).unwrap_or_default();
    let several = states.len() > 1;
    if let Some(mut draft) = pending {
        if has_any(&w, &["cancel", "stop", "never mind", "nevermind"]) {
            return Ok(Some(TprTurn::text(
                "Stopped the TPR questions. Say \"calculate TPR\" to start again.".to_string(),
                None,
            )));
        }
        if has_any(&w, &["back"]) {
            match draft.step.as_str() {
                "test_method" => draft.age_group = None,
                "age_group" => draft.facility_level = None,
                "facility_level" if several => draft.state = None,
                _ => {}
            }
            draft.step = next_step(&draft, several)
                .unwrap_or("test_method")
                .to_string();
            let q = question(store, id, &draft)?;
            return Ok(Some(TprTurn::text(q, Some(draft))));
        }
        // Another intent ("show the trend") leaves the questions.
        if let Some(i) = intent.as_ref().filter(|i| !matches!(i, Intent::Calculate)) {
            return run_intent(store, id, i, limits).map(Some);
        }
        let answered = match draft.step.as_str() {
            "state" => states
                .iter()
                .find(|s| w.contains(&format!(" {} ", words(s).trim())))
                .map(|s| draft.state = Some(s.clone()))
                .is_some(),
            "facility_level" => level_in(&w)
                .map(|l| draft.facility_level = Some(l.as_str().to_string()))
                .is_some(),
            "age_group" => age_in(&w)
                .map(|a| draft.age_group = Some(a.as_str().to_string()))
                .is_some(),
            _ => {
                if let Some(m) = method_in(&w) {
                    return calculate(store, id, &draft, m, limits).map(Some);
                }
                false
            }
        };
        if !answered {
            // A longer message that answers nothing is about something else: the questions
            // end and the assistant answers it.
            if w.split_whitespace().count() > 4 {
                return Ok(None);
            }
            let q = question(store, id, &draft)?;
            return Ok(Some(TprTurn::text(
                format!("I did not catch that choice. {q}"),
                Some(draft),
            )));
        }
        draft.step = next_step(&draft, several)
            .unwrap_or("test_method")
            .to_string();
        let q = question(store, id, &draft)?;
        return Ok(Some(TprTurn::text(q, Some(draft))));
    }
    let Some(intent) = intent else {
        return Ok(None);
    };
    match intent {
        Intent::Calculate => {
            // One sentence may hold every choice ("TPR for under-fives, primary, RDT").
            let mut draft = TprDraft {
                state: states
                    .iter()
                    .find(|s| w.contains(&format!(" {} ", words(s).trim())))
                    .cloned()
                    .or_else(|| (!several).then(|| states.first().cloned()).flatten()),
                facility_level: level_in(&w)
                    .filter(|l| {
                        *l != LevelChoice::All
                            || has_any(&w, &["all levels", "all facilities", "all facility levels"])
                    })
                    .map(|l| l.as_str().to_string()),
                age_group: age_in(&w)
                    .filter(|a| *a != AgeChoice::AllAges || has_any(&w, &["all ages", "allages"]))
                    .map(|a| a.as_str().to_string()),
                ..Default::default()
            };
            match (next_step(&draft, several), method_in(&w)) {
                (None, Some(m)) => calculate(store, id, &draft, m, limits).map(Some),
                (step, _) => {
                    draft.step = step.unwrap_or("test_method").to_string();
                    let q = question(store, id, &draft)?;
                    let intro = if several {
                        format!("The export holds {} states. ", states.len())
                    } else {
                        format!(
                            "The export covers {}, so I will use it. ",
                            states.first().map_or("one state", String::as_str)
                        )
                    };
                    Ok(Some(TprTurn::text(format!("{intro}{q}"), Some(draft))))
                }
            }
        }
        other => run_intent(store, id, &other, limits).map(Some),
    }
}

/// Executes one of the interpreter's TPR tools (chosen by a model): the same functions as the
/// rule-driven turns, so the answer's figures are the server's. Choices a model left out take
/// the API defaults (tpr.md §0.8), and the answer says which were used.
pub(super) fn run_tool(
    store: &Store,
    id: &SessionId,
    call: &mrpt_interpreter::ToolCall,
    limits: &mrpt_formats::Limits,
) -> Result<TprTurn, ApiError> {
    use mrpt_interpreter::ToolCall;
    match call {
        ToolCall::TprCalculate {
            facility_level,
            age_group,
            test_method,
        } => {
            let record = store.tpr(id)?;
            let states: Vec<String> = record
                .map(|r| serde_json::from_value(r.info["states"].clone()).unwrap_or_default())
                .unwrap_or_default();
            let draft = TprDraft {
                step: String::new(),
                state: (states.len() == 1).then(|| states[0].clone()),
                facility_level: Some(facility_level.unwrap_or_default().as_str().to_string()),
                age_group: Some(age_group.unwrap_or_default().as_str().to_string()),
            };
            calculate(store, id, &draft, test_method.unwrap_or_default(), limits)
        }
        ToolCall::TprTrend => trend(store, id, limits),
        ToolCall::TprReprioritise { n } => reprioritise(store, id, *n as usize, limits),
        ToolCall::TprMissingness => missing(store, id, limits),
        other => Err(ApiError::internal(format!(
            "{} is not a TPR tool",
            other.name().as_str()
        ))),
    }
}

fn run_intent(
    store: &Store,
    id: &SessionId,
    intent: &Intent,
    limits: &mrpt_formats::Limits,
) -> Result<TprTurn, ApiError> {
    match intent {
        Intent::Trend => trend(store, id, limits),
        Intent::Reprioritise(n) => reprioritise(store, id, *n, limits),
        Intent::Missing => missing(store, id, limits),
        Intent::Map | Intent::Calculate => {
            let (summary, note) = outputs_summary(store, id, limits)?;
            let maps: Vec<Value> = summary["maps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["file"] == "tpr_map.html")
                .map(|m| json!({"type": "map", "title": "TPR map", "url": m["url"], "path": m["url"]}))
                .collect();
            let text = if maps.is_empty() {
                "A TPR map needs the ward shapefile: add it (a .zip) in the \"Facility export (TPR)\" entry, or upload it with your ward data, then ask again. The ward figures are in tpr_results.csv.".to_string()
            } else {
                format!(
                    "{}Here is the map of {}. Wards without tests are hatched (no data, never 0).",
                    note.map(|n| n + " ").unwrap_or_default(),
                    summary["metric_label"].as_str().unwrap_or("the ward TPR")
                )
            };
            Ok(TprTurn {
                response: text,
                tools_used: vec!["tpr_map"],
                visualizations: maps,
                download_links: vec![download(id, "tpr_results.csv")],
                pending: None,
            })
        }
    }
}
