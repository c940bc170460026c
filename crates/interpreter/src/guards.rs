//! Guards that hold whichever interpreter chose the calls. They read only the disk-derived
//! context and the user's own words, so a model that "thinks" the analysis is missing (H4), or
//! that invents a net total (H10), cannot make the app act on it.

use crate::answer::thousands;
use crate::context::{ItnDraft, Pending, Role, SessionContext};
use crate::matching::normalise;
use crate::numbers::find_numbers;
use crate::plan::{Plan, PlanSource};
use crate::tools::{ToolCall, ToolName, validate};

/// Most tool calls one message may trigger; a model emitting a dozen is not answering the user.
pub const MAX_CALLS: usize = 4;

/// The phrases that ask to run the analysis again (normalised: lower case, words separated by
/// single spaces). The one list: the rules and the guards both read it.
pub(crate) const RERUN_PHRASES: &[&str] = &[
    "rerun",
    "re run",
    "redo",
    "run again",
    "run it again",
    "again",
    "recompute",
    "recalculate",
    "from scratch",
    "start over",
    "force",
    "refresh",
    "repeat",
];

/// Did the user (not the model) ask to run the analysis again?
pub fn asks_rerun(message: &str) -> bool {
    let padded = format!(" {} ", normalise(message));
    RERUN_PHRASES
        .iter()
        .any(|p| padded.contains(&format!(" {p} ")))
}

/// Whether a requested run differs from the completed one (new variable set or exclusions).
fn changes_variables(
    variables: &Option<Vec<String>>,
    exclude: &[String],
    ctx: &SessionContext,
) -> bool {
    if let Some(vars) = variables {
        let mut a: Vec<&str> = vars.iter().map(String::as_str).collect();
        let mut b: Vec<&str> = ctx.variables_used.iter().map(String::as_str).collect();
        a.sort_unstable();
        b.sort_unstable();
        if a != b {
            return true;
        }
    }
    !exclude.is_empty()
        && (ctx.variables_used.is_empty() || exclude.iter().any(|e| ctx.variables_used.contains(e)))
}

/// Net totals the user actually stated: in this message, in earlier user turns, or carried in a
/// pending plan the user has just confirmed.
fn stated_net_totals(message: &str, ctx: &SessionContext) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    let mut texts: Vec<&str> = vec![message];
    texts.extend(
        ctx.recent_turns
            .iter()
            .filter(|t| t.role == Role::User)
            .map(|t| t.text.as_str()),
    );
    for text in texts {
        out.extend(
            find_numbers(text)
                .into_iter()
                .filter(|n| n.value >= 1.0 && n.value.fract() == 0.0 && n.value <= 1e12)
                .map(|n| n.value as u64),
        );
    }
    if let Some(Pending::RunAnalysis { then }) = &ctx.pending {
        out.extend(then.iter().filter_map(|c| match c {
            ToolCall::PlanItn { total_nets, .. } => Some(*total_nets),
            _ => None,
        }));
    }
    out
}

fn purpose(calls: &[ToolCall]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in calls {
        let p = match c {
            ToolCall::PlanItn { total_nets, .. } => {
                format!("plan the distribution of {} nets", thousands(*total_nets))
            }
            ToolCall::VulnerabilityMap { .. } => "show the vulnerability map".to_string(),
            ToolCall::ItnMap => "show the ITN map".to_string(),
            ToolCall::BoxPlot { .. } => "show the box plots".to_string(),
            ToolCall::TopWards { bottom: false, .. } => "list the highest-risk wards".to_string(),
            ToolCall::TopWards { bottom: true, .. } => "list the lowest-risk wards".to_string(),
            ToolCall::WardDetail { ward } => format!("explain {ward}'s ranking"),
            ToolCall::CompareWards { a, b } => format!("compare {a} and {b}"),
            ToolCall::ExportPackage => "build the download package".to_string(),
            ToolCall::UrbanExtentMap { .. } => "show the urban extent map".to_string(),
            ToolCall::CompositeMaps { .. } => "show the composite score maps".to_string(),
            ToolCall::RankingChart { .. } => "show the ranking chart".to_string(),
            ToolCall::LgaItn => "total the ITN plan per LGA".to_string(),
            _ => continue,
        };
        if !parts.contains(&p) {
            parts.push(p);
        }
    }
    match parts.len() {
        0 => "do that".to_string(),
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().unwrap_or_default();
            format!("{} and {last}", parts.join(", "))
        }
    }
}

/// Check planned calls against the session and the user's words; see the module doc.
/// `message` is the user's message: only it (never the model) can ask for a re-run.
pub fn apply_guards(ctx: &SessionContext, message: &str, planned: Vec<ToolCall>) -> Plan {
    let mut plan = Plan {
        source: PlanSource::Rules,
        ..Plan::default()
    };
    let mut replies: Vec<String> = Vec::new();

    let mut calls: Vec<ToolCall> = Vec::new();
    for c in planned {
        if !calls.contains(&c) {
            calls.push(c);
        }
    }
    if calls.len() > MAX_CALLS {
        plan.notes.push(format!(
            "{} tool calls proposed; only the first {MAX_CALLS} kept",
            calls.len()
        ));
        calls.truncate(MAX_CALLS);
    }

    if !ctx.data_loaded {
        let before = calls.len();
        // The facility export's tools need no ward table (they are checked below like any call).
        let tpr: Vec<ToolCall> = calls
            .iter()
            .filter(|c| c.name().uses_facility_export())
            .cloned()
            .collect();
        if !tpr.is_empty() {
            for c in tpr {
                match validate(c, ctx) {
                    Ok(c) => plan.calls.push(c),
                    Err(refusal) => replies.push(format!("I can't do that: {}.", refusal.reason)),
                }
            }
            plan.reply_without_tools = join(replies);
            return plan;
        }
        calls.retain(|c| matches!(c, ToolCall::ExplainMethod { .. }));
        if calls.len() < before {
            replies.push("No data has been uploaded yet. Please upload your ward data (CSV or Excel) together with the ward boundaries (shapefile zip); then I can summarise it, run the malaria risk analysis and plan ITN distribution.".to_string());
        }
        plan.calls = calls;
        plan.reply_without_tools = join(replies);
        return plan;
    }

    // Whoever proposed them, calls are checked against this session's wards and columns.
    let mut checked: Vec<ToolCall> = Vec::new();
    for c in calls {
        match validate(c, ctx) {
            Ok(c) => checked.push(c),
            Err(refusal) => {
                plan.notes
                    .push(format!("{} refused: {}", refusal.tool, refusal.reason));
                replies.push(format!(
                    "I can't do that: {}.",
                    refusal.reason.trim_end_matches('.')
                ));
            }
        }
    }

    // Analysis first, at most once.
    let mut analysis: Option<ToolCall> = None;
    let mut rest: Vec<ToolCall> = Vec::new();
    for c in checked {
        match c {
            ToolCall::RunAnalysis { .. } if analysis.is_none() => analysis = Some(c),
            ToolCall::RunAnalysis { .. } => {}
            other => rest.push(other),
        }
    }
    let explicit_rerun = asks_rerun(message);
    if let Some(ToolCall::RunAnalysis {
        variables,
        exclude,
        force,
    }) = analysis.take()
    {
        let changed = changes_variables(&variables, &exclude, ctx);
        if ctx.analysis_complete && !explicit_rerun && !changed {
            let id = ctx.analysis_id.as_deref().unwrap_or("on disk");
            plan.notes.push(format!(
                "run_analysis dropped: analysis {id} is already complete and the user did not ask to re-run it"
            ));
            if !rest.is_empty() {
                replies.push(format!(
                    "The analysis is already complete (analysis {id}), so I used its results instead of running it again."
                ));
            } else {
                let mut text = format!(
                    "The malaria risk analysis is already complete for this data (analysis {id}), so I haven't run it again."
                );
                if !ctx.top_wards.is_empty() {
                    let top: Vec<String> = ctx
                        .top_wards
                        .iter()
                        .take(5)
                        .map(|w| format!("{}. {}", w.rank, w.ward_name))
                        .collect();
                    text.push_str(&format!(" The highest-risk wards are {}.", top.join(", ")));
                }
                text.push_str(" Say \"re-run the analysis\" to run it again, or name the variables you want to change.");
                replies.push(text);
            }
        } else {
            analysis = Some(ToolCall::RunAnalysis {
                variables,
                exclude,
                // The model may not force a re-run the user did not ask for.
                force: force && explicit_rerun,
            });
        }
    }
    let analysis_planned = analysis.is_some();
    let analysis_available = ctx.analysis_complete || analysis_planned;

    let stated = stated_net_totals(message, ctx);
    let mut kept: Vec<ToolCall> = Vec::new();
    let mut deferred: Vec<ToolCall> = Vec::new();
    let mut itn_planned = false;
    for c in rest {
        let name = c.name();
        if name.needs_analysis() && !analysis_available {
            deferred.push(c);
            continue;
        }
        match &c {
            ToolCall::PlanItn { total_nets, .. } if !stated.contains(total_nets) => {
                // H10: never act on a net total the user did not give.
                plan.notes.push(format!(
                    "plan_itn dropped: {total_nets} nets was not stated by the user"
                ));
                let draft = match &c {
                    ToolCall::PlanItn {
                        avg_household_size,
                        urban_threshold,
                        method,
                        strategy,
                        ..
                    } => ItnDraft {
                        avg_household_size: *avg_household_size,
                        urban_threshold: *urban_threshold,
                        method: *method,
                        strategy: *strategy,
                    },
                    _ => ItnDraft::default(),
                };
                replies.push("To plan the ITN distribution I need the number of nets you have available (for example \"I have 120,000 nets\"), and optionally the average household size.".to_string());
                plan.pending = Some(Pending::NetTotal { draft });
                continue;
            }
            ToolCall::PlanItn { .. } => itn_planned = true,
            ToolCall::ItnMap if !ctx.itn_complete && !itn_planned => {
                replies.push("There is no ITN distribution plan yet, so there is no ITN map to show. Tell me how many nets you have (for example \"I have 120,000 nets\") and I'll plan the distribution and map it.".to_string());
                plan.pending = Some(Pending::NetTotal {
                    draft: ItnDraft::default(),
                });
                continue;
            }
            _ => {}
        }
        let is_map = matches!(
            name,
            ToolName::VulnerabilityMap
                | ToolName::ItnMap
                | ToolName::VariableMap
                | ToolName::UrbanExtentMap
                | ToolName::CompositeMaps
        );
        if is_map && !ctx.shapefile_loaded {
            replies.push("Maps need the ward boundaries, and no shapefile has been uploaded for this data. Upload the shapefile zip and ask again.".to_string());
            continue;
        }
        kept.push(c);
    }

    if !deferred.is_empty() {
        let wants = purpose(&deferred);
        replies.push(format!(
            "To {wants}, the malaria risk analysis has to be run first: it ranks your {} wards by risk using the variables in your data and takes about a minute. Shall I run it now? (Say \"yes\", or \"analyse and then {wants}\".)",
            ctx.ward_count()
        ));
        plan.pending = Some(Pending::RunAnalysis { then: deferred });
    }

    plan.calls = analysis.into_iter().chain(kept).collect();
    plan.reply_without_tools = join(replies);
    plan
}

fn join(replies: Vec<String>) -> Option<String> {
    if replies.is_empty() {
        None
    } else {
        Some(replies.join("\n\n"))
    }
}
