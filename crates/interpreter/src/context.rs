//! The session context the app derives from disk for every message. The interpreter only reads it:
//! nothing here is remembered between messages, so two workers given the same folder decide alike.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

use mrpt_table::{ItnStrategy, RankedWard, RankingMethod};

use crate::tools::ToolCall;

/// Whether a column holds numbers or text; only numeric columns can enter the risk analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VariableKind {
    /// Int or float: can enter the risk analysis.
    #[default]
    Numeric,
    /// Text (names, codes): cannot.
    Text,
}

/// One column of the current dataset (unified if analysed, else raw).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableInfo {
    /// The column name as the data spells it.
    pub name: String,
    /// Numeric or text.
    #[serde(default)]
    pub kind: VariableKind,
    /// Share of wards with a value, 0-100.
    #[serde(default = "full")]
    pub completeness_pct: f64,
}

fn full() -> f64 {
    100.0
}

/// How much one variable pushed a ward's score, on the normalised 0-1 scale the analysis uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableContribution {
    /// The variable's column name.
    pub variable: String,
    /// The value in the data, when the app has it.
    #[serde(default)]
    pub raw_value: Option<f64>,
    /// The value after normalisation, 0-1, as the analysis's `normalization_<variable>` column holds it.
    pub normalised: f64,
}

/// Everything about one ward that explains its rank. The app fills it from the analysis outputs
/// when a ward is asked about (see [`crate::wards_mentioned`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WardDetail {
    /// The ward's name as the data spells it.
    pub ward: String,
    /// Composite rank, 1 = most vulnerable.
    pub rank: u32,
    /// Number of wards ranked, so "rank 3" can be read as "3 of 66".
    pub total_wards: u32,
    /// `High Risk`, `Medium Risk` or `Low Risk`.
    pub category: String,
    /// Composite score, 0-1 (higher = more vulnerable).
    pub score: f64,
    /// PCA rank; `None` when PCA did not run.
    #[serde(default)]
    pub pca_rank: Option<u32>,
    /// PCA score; `None` when PCA did not run.
    #[serde(default)]
    pub pca_score: Option<f64>,
    /// Largest contributions first.
    #[serde(default)]
    pub top_variables: Vec<VariableContribution>,
}

/// Parameters of the ITN plan that is already on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnContext {
    /// Nets the plan distributed from.
    pub total_nets: u64,
    /// People per household; `None` when the plan used the default.
    #[serde(default)]
    pub avg_household_size: Option<f64>,
    /// Urban share, percent 0-100, above which wards waited; `None` for the default.
    #[serde(default)]
    pub urban_threshold: Option<f64>,
    /// The ranking the plan followed.
    #[serde(default)]
    pub method: RankingMethod,
    /// Nets allocated, when the plan's figures could be read.
    #[serde(default)]
    pub allocated: Option<u64>,
    /// Share of the population covered, percent 0-100, when known.
    #[serde(default)]
    pub coverage_percent: Option<f64>,
}

/// Who wrote a [`Turn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The programme officer.
    User,
    /// This assistant.
    Assistant,
}

/// One message of the conversation, as kept in the session folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Who wrote it.
    pub role: Role,
    /// The message as shown in the conversation.
    pub text: String,
}

/// ITN parameters gathered before the net total is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ItnDraft {
    /// People per household, when the user gave it.
    #[serde(default)]
    pub avg_household_size: Option<f64>,
    /// Urban threshold, percent 0-100, when the user gave it.
    #[serde(default)]
    pub urban_threshold: Option<f64>,
    /// The ranking to follow (composite unless the user said PCA).
    #[serde(default)]
    pub method: RankingMethod,
    /// The distribution strategy, when the user named one.
    #[serde(default)]
    pub strategy: Option<ItnStrategy>,
}

/// A question the assistant asked and is waiting on. The app stores [`crate::Plan::pending`] in
/// the session folder and hands it back in the next context, so the answer may land on any worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pending {
    /// "Shall I run the analysis?" - `then` is what the user wanted once it is done.
    RunAnalysis {
        /// The calls to make once the analysis has run (empty = just run it).
        #[serde(default)]
        then: Vec<ToolCall>,
    },
    /// "How many nets do you have?"
    NetTotal {
        /// The parameters the user already gave.
        #[serde(default)]
        draft: ItnDraft,
    },
}

/// What the app knows about the session, derived from disk for this message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionContext {
    /// State or area the data covers, when detected.
    pub state_name: Option<String>,
    /// Whether a ward table was uploaded.
    pub data_loaded: bool,
    /// Whether ward boundaries were uploaded.
    pub shapefile_loaded: bool,
    /// Rows of the ward table, when loaded.
    pub row_count: Option<u64>,
    /// The ward-name column's header, when loaded.
    pub ward_column: Option<String>,
    /// The columns of the current dataset.
    pub variables: Vec<VariableInfo>,
    /// Every ward name, as the data spells it (for ward lookup in messages).
    pub wards: Vec<String>,
    /// The LGAs of the wards (from the data, the shapefile or an LGA lookup), sorted; empty
    /// when unknown.
    pub lgas: Vec<String>,
    /// Whether a committed analysis exists for the current upload.
    pub analysis_complete: bool,
    /// Its id, when complete.
    pub analysis_id: Option<String>,
    /// The variables it ranked on.
    pub variables_used: Vec<String>,
    /// Best first; the app usually sends the top 10.
    pub top_wards: Vec<RankedWard>,
    /// Details for wards the message mentions, when the app supplies them.
    pub ward_details: Vec<WardDetail>,
    /// Whether an ITN plan exists for the current analysis.
    pub itn_complete: bool,
    /// The plan's parameters and figures, when complete.
    pub itn: Option<ItnContext>,
    /// Artefacts available for download or display (file names).
    pub files: Vec<String>,
    /// The last turns, oldest first.
    pub recent_turns: Vec<Turn>,
    /// The question asked in the previous answer and not yet answered.
    pub pending: Option<Pending>,
    /// A health-facility testing export (the TPR workflow) is stored in the session; it needs
    /// no ward table.
    pub tpr_loaded: bool,
}

/// Where the session is in the workflow; drives the stage block of the prompt and the help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No ward table uploaded yet.
    NoData,
    /// Data uploaded, no analysis yet.
    PreAnalysis,
    /// An analysis is complete.
    PostAnalysis,
}

impl SessionContext {
    /// The stage, from `data_loaded` and `analysis_complete` alone.
    pub fn stage(&self) -> Stage {
        if !self.data_loaded {
            Stage::NoData
        } else if self.analysis_complete {
            Stage::PostAnalysis
        } else {
            Stage::PreAnalysis
        }
    }

    /// Ward count for "top decile" and "rank 3 of N"; falls back to the ranked list.
    pub fn ward_count(&self) -> usize {
        if self.wards.is_empty() {
            self.top_wards.len()
        } else {
            self.wards.len()
        }
    }

    /// The columns that can enter the analysis.
    pub fn numeric_variables(&self) -> impl Iterator<Item = &VariableInfo> {
        self.variables
            .iter()
            .filter(|v| v.kind == VariableKind::Numeric)
    }

    /// The session block of the system prompt. The exact line `Analysis Complete: True/False`
    /// is what the model keys on (chatmrpt-server.md §3.3), so it is always present and always
    /// derived from the disk-backed context, never from memory (H4).
    pub fn render_for_prompt(&self) -> String {
        let mut out = String::new();
        let yes_no = |b: bool| if b { "True" } else { "False" };
        let _ = writeln!(out, "## Current session (derived from the session folder)");
        let _ = writeln!(
            out,
            "Geographic Area: {}",
            self.state_name.as_deref().unwrap_or("Not specified")
        );
        let data_status = if self.data_loaded {
            format!(
                "CSV loaded: True, Shapefile: {}",
                yes_no(self.shapefile_loaded)
            )
        } else {
            "No data uploaded".to_string()
        };
        let _ = writeln!(out, "Data Status: {data_status}");
        let _ = writeln!(out, "Analysis Complete: {}", yes_no(self.analysis_complete));
        let _ = writeln!(out, "Facility Export Loaded: {}", yes_no(self.tpr_loaded));
        if let Some(id) = &self.analysis_id {
            let _ = writeln!(out, "Analysis ID: {id}");
        }
        if self.data_loaded {
            let rows = self
                .row_count
                .map_or_else(|| "unknown".to_string(), |r| r.to_string());
            let _ = writeln!(
                out,
                "Dataset: {rows} rows, {} columns, {} wards",
                self.variables.len(),
                self.ward_count()
            );
        }
        if !self.wards.is_empty() {
            const SHOWN: usize = 150;
            let names: Vec<&str> = self.wards.iter().take(SHOWN).map(String::as_str).collect();
            let more = self.wards.len().saturating_sub(SHOWN);
            let _ = writeln!(
                out,
                "Ward names: {}{}",
                names.join(", "),
                if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                }
            );
        }
        if !self.variables.is_empty() {
            let _ = writeln!(out, "Variables (name, type, completeness):");
            for v in self.variables.iter().take(80) {
                let kind = match v.kind {
                    VariableKind::Numeric => "numeric",
                    VariableKind::Text => "text",
                };
                let _ = writeln!(out, "- {} ({kind}, {:.0}%)", v.name, v.completeness_pct);
            }
        }
        if self.analysis_complete {
            if !self.variables_used.is_empty() {
                let _ = writeln!(
                    out,
                    "Variables used in the analysis: {}",
                    self.variables_used.join(", ")
                );
            }
            if !self.top_wards.is_empty() {
                let _ = writeln!(out, "Top wards (rank, name, score, category):");
                for w in self.top_wards.iter().take(10) {
                    let _ = writeln!(
                        out,
                        "- {}. {} ({:.3}, {})",
                        w.rank, w.ward_name, w.score, w.category
                    );
                }
            }
            for d in &self.ward_details {
                let drivers: Vec<String> = d
                    .top_variables
                    .iter()
                    .map(|c| format!("{} {:.2}", c.variable, c.normalised))
                    .collect();
                let _ = writeln!(
                    out,
                    "Ward detail: {} rank {} of {}, score {:.3}, {}; drivers: {}",
                    d.ward,
                    d.rank,
                    d.total_wards,
                    d.score,
                    d.category,
                    drivers.join(", ")
                );
            }
        }
        let _ = writeln!(out, "ITN Planning Complete: {}", yes_no(self.itn_complete));
        if let Some(itn) = &self.itn {
            let _ = writeln!(
                out,
                "ITN plan: {} nets, household size {}, method {}",
                itn.total_nets,
                itn.avg_household_size
                    .map_or_else(|| "default".to_string(), |h| h.to_string()),
                itn.method.as_str()
            );
        }
        if !self.files.is_empty() {
            let _ = writeln!(out, "Files available: {}", self.files.join(", "));
        }
        match &self.pending {
            Some(Pending::RunAnalysis { .. }) => {
                let _ = writeln!(
                    out,
                    "Pending question: the assistant offered to run the risk analysis."
                );
            }
            Some(Pending::NetTotal { .. }) => {
                let _ = writeln!(
                    out,
                    "Pending question: the assistant asked how many nets are available."
                );
            }
            None => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_deserialises_from_partial_json() {
        let ctx: SessionContext =
            serde_json::from_str(r#"{"data_loaded": true, "wards": ["Dala"]}"#).unwrap();
        assert!(ctx.data_loaded);
        assert!(!ctx.analysis_complete);
        assert_eq!(ctx.stage(), Stage::PreAnalysis);
    }

    #[test]
    fn prompt_block_carries_analysis_flag_and_id() {
        let ctx = SessionContext {
            data_loaded: true,
            analysis_complete: true,
            analysis_id: Some("gen-3".into()),
            ..Default::default()
        };
        let text = ctx.render_for_prompt();
        assert!(text.contains("Analysis Complete: True"));
        assert!(text.contains("Analysis ID: gen-3"));
        let empty = SessionContext::default().render_for_prompt();
        assert!(empty.contains("Analysis Complete: False"));
        assert!(empty.contains("No data uploaded"));
    }
}
