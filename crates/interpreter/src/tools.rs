//! The tool catalogue: every action the assistant can take, with typed arguments, the JSON schema
//! a model sees, and validation of a model's arguments against the catalogue and the session.
//! Tool names live only here ([`ToolName`]); the app matches on [`ToolCall`] variants, never on
//! name strings (H11).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use mrpt_table::explore::{Agg, CorrelationMethod, FilterOp, MissingBy};
use mrpt_table::tpr::{AgeChoice, LevelChoice, MethodChoice};
use mrpt_table::{ItnStrategy, RankingMethod};

use crate::context::{SessionContext, VariableKind};
use crate::matching::{resolve_variable, resolve_ward, suggest_wards};

/// How a ranking method's score is named in answers.
pub fn score_label(method: RankingMethod) -> &'static str {
    match method {
        RankingMethod::Composite => "composite score",
        RankingMethod::Pca => "PCA score",
    }
}

/// Which ranking(s) a vulnerability map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MapMethod {
    /// The composite-score ranking (the default).
    #[default]
    Composite,
    /// The PCA ranking.
    Pca,
    /// Both maps, side by side.
    Both,
}

/// What `explain_method` explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExplainTopic {
    /// The composite score (normalise, combine models, rank).
    Composite,
    /// The PCA score.
    Pca,
    /// How missing values are filled.
    Imputation,
    /// How variables are scaled to 0-1 and their direction.
    Normalisation,
    /// How nets are allocated.
    Itn,
    /// The whole workflow in brief (the default).
    #[default]
    General,
}

/// A validated tool call. Ward and variable names are already resolved to the data's spelling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tool", content = "arguments", rename_all = "snake_case")]
pub enum ToolCall {
    /// Run (or, with `force` or different variables, re-run) the risk analysis.
    RunAnalysis {
        /// Exactly these variables; `None` lets the analysis choose.
        variables: Option<Vec<String>>,
        /// Leave these out ("what if we exclude elevation?").
        exclude: Vec<String>,
        /// Run even when an identical analysis is committed.
        force: bool,
    },
    /// Plan the distribution of insecticide-treated nets.
    PlanItn {
        /// Nets available (the one required number).
        total_nets: u64,
        /// People per household; `None` = the default.
        avg_household_size: Option<f64>,
        /// Urban share, percent 0-100; `None` = the default.
        urban_threshold: Option<f64>,
        /// The ranking to follow.
        method: RankingMethod,
        /// The distribution strategy; `None` = the server's default.
        strategy: Option<ItnStrategy>,
    },
    /// The vulnerability map(s).
    VulnerabilityMap {
        /// Which ranking(s) to show.
        method: MapMethod,
    },
    /// The ITN allocation map.
    ItnMap,
    /// One page of box plots (wards in rank order, a page at a time).
    BoxPlot {
        /// 1-based page.
        page: u32,
    },
    /// A ward map of one variable's values.
    VariableMap {
        /// The column, in the data's spelling.
        variable: String,
    },
    /// The most (or least) vulnerable wards.
    TopWards {
        /// How many wards.
        n: u32,
        /// The least vulnerable instead.
        bottom: bool,
        /// The top (or bottom) tenth of wards; `n` then holds that count.
        decile: bool,
        /// The ranking to list.
        method: RankingMethod,
    },
    /// Why one ward has its rank.
    WardDetail {
        /// The ward, in the data's spelling.
        ward: String,
    },
    /// Two wards side by side.
    CompareWards {
        /// The first ward.
        a: String,
        /// The second ward.
        b: String,
    },
    /// Explain a method in plain language (no execution).
    ExplainMethod {
        /// What to explain.
        topic: ExplainTopic,
    },
    /// What the upload holds: columns, completeness, quality issues.
    DataSummary,
    /// The download package of the results.
    ExportPackage,
    /// LGAs ranked: by mean composite score after the analysis, else by one variable's LGA
    /// aggregate; with an LGA map when there are boundaries.
    LgaRanking {
        /// Rank LGAs by this variable instead of the composite score.
        variable: Option<String>,
    },
    /// The wards of one LGA with their ranks (or the data).
    WardsInLga {
        /// The LGA, in the data's spelling.
        lga: String,
    },
    /// ITN plan totals per LGA.
    LgaItn,
    /// Vulnerability map with wards below an urban share faint.
    UrbanExtentMap {
        /// Urban share, percent 0-100; `None` = the ITN plan's threshold or the default.
        threshold: Option<f64>,
    },
    /// Descriptive statistics of one numeric column, optionally per LGA or per category.
    Describe {
        /// The numeric column.
        column: String,
        /// "LGA" or a text column (e.g. `vulnerability_category`).
        by: Option<String>,
    },
    /// Wards where `column op value` holds.
    Filter {
        /// The column compared.
        column: String,
        /// The comparison.
        op: FilterOp,
        /// The value, as the user wrote it (a number, or text for `contains`).
        value: String,
    },
    /// One aggregate per group (LGA or a text column).
    GroupBy {
        /// `LGA` or a text column.
        by: String,
        /// The aggregate.
        agg: Agg,
        /// `None` = every numeric column.
        column: Option<String>,
    },
    /// The N wards with the highest (or lowest) values of a column, optionally within one LGA.
    TopN {
        /// The numeric column.
        column: String,
        /// How many wards.
        n: u32,
        /// The lowest values instead of the highest.
        lowest: bool,
        /// Only wards of this LGA.
        lga: Option<String>,
    },
    /// Correlation of two numeric columns with r, p and n, and a scatter plot.
    Correlate {
        /// The first column.
        a: String,
        /// The second column.
        b: String,
        /// Pearson or Spearman.
        method: CorrelationMethod,
    },
    /// The correlation heatmap of the numeric columns.
    CorrelationMatrix {
        /// Pearson or Spearman.
        method: CorrelationMethod,
    },
    /// Missing values per column, LGA or year, with a missingness map.
    Missingness {
        /// Count missing values per column, LGA or year.
        by: MissingBy,
    },
    /// Per-model composite score maps, four per page.
    CompositeMaps {
        /// 1-based page.
        page: u32,
    },
    /// Bar chart of the ranking.
    RankingChart {
        /// The ranking to chart.
        method: RankingMethod,
    },
    /// Ward test positivity rate from the session's facility export (tpr.md §4); a choice not
    /// given takes the API default (all facility levels, all ages, the higher of RDT and
    /// microscopy).
    TprCalculate {
        /// Facilities counted (primary, secondary, tertiary or all); `None`: all.
        facility_level: Option<LevelChoice>,
        /// Patients counted (under 5, over 5, pregnant women or all); `None`: all.
        age_group: Option<AgeChoice>,
        /// RDT, microscopy or both (the higher of the two per ward); `None`: both.
        test_method: Option<MethodChoice>,
    },
    /// Ward TPR trends over the years (tpr.md §6): worsening, improving and stable wards.
    TprTrend,
    /// The N wards to reprioritise by the documented rank-sum rule (tpr.md §6.6).
    TprReprioritise {
        /// How many wards to name (at least 1; capped at the wards with a trend).
        n: u32,
    },
    /// Missing testing figures in the facility export, by year and LGA (tpr.md §7).
    TprMissingness,
}

/// Canonical tool names: the only strings that ever name a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToolName {
    /// `run_analysis`.
    RunAnalysis,
    /// `plan_itn`.
    PlanItn,
    /// `vulnerability_map`.
    VulnerabilityMap,
    /// `itn_map`.
    ItnMap,
    /// `box_plot`.
    BoxPlot,
    /// `variable_map`.
    VariableMap,
    /// `top_wards`.
    TopWards,
    /// `ward_detail`.
    WardDetail,
    /// `compare_wards`.
    CompareWards,
    /// `explain_method` (answered without execution).
    ExplainMethod,
    /// `data_summary`.
    DataSummary,
    /// `export_package`.
    ExportPackage,
    /// `lga_ranking`.
    LgaRanking,
    /// `wards_in_lga`.
    WardsInLga,
    /// `lga_itn`.
    LgaItn,
    /// `urban_extent_map`.
    UrbanExtentMap,
    /// `describe`.
    Describe,
    /// `filter_wards` (the model-facing name differs from the variant's).
    Filter,
    /// `group_by`.
    GroupBy,
    /// `top_n`.
    TopN,
    /// `correlate`.
    Correlate,
    /// `correlation_matrix`.
    CorrelationMatrix,
    /// `missingness`.
    Missingness,
    /// `composite_maps`.
    CompositeMaps,
    /// `ranking_chart`.
    RankingChart,
    /// `tpr_calculate`.
    TprCalculate,
    /// `tpr_trend`.
    TprTrend,
    /// `tpr_reprioritise`.
    TprReprioritise,
    /// `tpr_missingness`.
    TprMissingness,
}

impl ToolName {
    /// Every tool, in the order they are offered to a model.
    pub const ALL: [ToolName; 29] = [
        ToolName::RunAnalysis,
        ToolName::PlanItn,
        ToolName::VulnerabilityMap,
        ToolName::ItnMap,
        ToolName::BoxPlot,
        ToolName::VariableMap,
        ToolName::TopWards,
        ToolName::WardDetail,
        ToolName::CompareWards,
        ToolName::ExplainMethod,
        ToolName::DataSummary,
        ToolName::ExportPackage,
        ToolName::LgaRanking,
        ToolName::WardsInLga,
        ToolName::LgaItn,
        ToolName::UrbanExtentMap,
        ToolName::Describe,
        ToolName::Filter,
        ToolName::GroupBy,
        ToolName::TopN,
        ToolName::Correlate,
        ToolName::CorrelationMatrix,
        ToolName::Missingness,
        ToolName::CompositeMaps,
        ToolName::RankingChart,
        ToolName::TprCalculate,
        ToolName::TprTrend,
        ToolName::TprReprioritise,
        ToolName::TprMissingness,
    ];

    /// The snake_case name models and the JSON use (`run_analysis`, `filter_wards`).
    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::RunAnalysis => "run_analysis",
            ToolName::PlanItn => "plan_itn",
            ToolName::VulnerabilityMap => "vulnerability_map",
            ToolName::ItnMap => "itn_map",
            ToolName::BoxPlot => "box_plot",
            ToolName::VariableMap => "variable_map",
            ToolName::TopWards => "top_wards",
            ToolName::WardDetail => "ward_detail",
            ToolName::CompareWards => "compare_wards",
            ToolName::ExplainMethod => "explain_method",
            ToolName::DataSummary => "data_summary",
            ToolName::ExportPackage => "export_package",
            ToolName::LgaRanking => "lga_ranking",
            ToolName::WardsInLga => "wards_in_lga",
            ToolName::LgaItn => "lga_itn",
            ToolName::UrbanExtentMap => "urban_extent_map",
            ToolName::Describe => "describe",
            ToolName::Filter => "filter_wards",
            ToolName::GroupBy => "group_by",
            ToolName::TopN => "top_n",
            ToolName::Correlate => "correlate",
            ToolName::CorrelationMatrix => "correlation_matrix",
            ToolName::Missingness => "missingness",
            ToolName::CompositeMaps => "composite_maps",
            ToolName::RankingChart => "ranking_chart",
            ToolName::TprCalculate => "tpr_calculate",
            ToolName::TprTrend => "tpr_trend",
            ToolName::TprReprioritise => "tpr_reprioritise",
            ToolName::TprMissingness => "tpr_missingness",
        }
    }

    /// Parses a name of [`ToolName::as_str`] exactly; `None` for anything else.
    pub fn parse(name: &str) -> Option<ToolName> {
        ToolName::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether the tool reads analysis results (and so needs a completed analysis).
    pub fn needs_analysis(self) -> bool {
        !matches!(
            self,
            ToolName::RunAnalysis
                | ToolName::VariableMap
                | ToolName::ExplainMethod
                | ToolName::DataSummary
                | ToolName::LgaRanking
                | ToolName::WardsInLga
                | ToolName::Describe
                | ToolName::Filter
                | ToolName::GroupBy
                | ToolName::TopN
                | ToolName::Correlate
                | ToolName::CorrelationMatrix
                | ToolName::Missingness
                | ToolName::TprCalculate
                | ToolName::TprTrend
                | ToolName::TprReprioritise
                | ToolName::TprMissingness
        )
    }

    /// Whether the tool works on the session's health-facility export (the TPR workflow), which
    /// needs no ward table.
    pub fn uses_facility_export(self) -> bool {
        matches!(
            self,
            ToolName::TprCalculate
                | ToolName::TprTrend
                | ToolName::TprReprioritise
                | ToolName::TprMissingness
        )
    }

    /// The description offered to a model: what the tool does and when (not) to call it.
    pub fn description(self) -> &'static str {
        match self {
            ToolName::RunAnalysis => {
                "Run the malaria risk analysis (composite score and PCA) that ranks wards. Only when Analysis Complete is False, or when the user explicitly asks to re-run it or to change the variables."
            }
            ToolName::PlanItn => {
                "Plan insecticide-treated net (ITN) distribution over wards in risk order. Requires a completed analysis and the total number of nets stated by the user."
            }
            ToolName::VulnerabilityMap => {
                "Show the ward vulnerability map from the composite score, PCA, or both side by side."
            }
            ToolName::ItnMap => "Show the map of the current ITN distribution plan.",
            ToolName::BoxPlot => "Show box plots of ward scores in rank order, one page at a time.",
            ToolName::VariableMap => "Map one variable (column) of the data across wards.",
            ToolName::TopWards => {
                "List the N highest-risk (or lowest-risk with bottom=true) wards, or the top decile."
            }
            ToolName::WardDetail => {
                "Explain one ward's rank, category, score and the variables that drove it."
            }
            ToolName::CompareWards => "Compare two wards' ranks, scores and drivers.",
            ToolName::ExplainMethod => {
                "Explain the method: composite score, PCA, imputation of missing values, normalisation, ITN allocation, or the general approach."
            }
            ToolName::DataSummary => {
                "Summarise the uploaded data: rows, wards, variables and their completeness."
            }
            ToolName::ExportPackage => {
                "Build the downloadable results package (analysis, or ITN plan when one exists)."
            }
            ToolName::LgaRanking => {
                "Rank the LGAs (Local Government Areas): by mean composite score after the analysis, or by one variable aggregated per LGA (rates weighted by tests or population, other variables population-weighted means). Also draws the LGA map."
            }
            ToolName::WardsInLga => "List the wards of one LGA with their rank and category.",
            ToolName::LgaItn => {
                "Totals of the current ITN plan per LGA: wards, wards given nets, nets allocated and needed, population and people covered."
            }
            ToolName::UrbanExtentMap => {
                "Map of vulnerability with wards below an urban-percentage threshold drawn faint (default 50)."
            }
            ToolName::Describe => {
                "Descriptive statistics (count, missing, mean, std, min, quartiles, max) of one numeric column, optionally by LGA or by a category column; with a histogram or box plot."
            }
            ToolName::Filter => {
                "List the wards where a column compares to a value (>, >=, <, <=, =, !=, contains)."
            }
            ToolName::GroupBy => {
                "Aggregate (mean, sum, median, min, max, count) one column or every numeric column per LGA or per category."
            }
            ToolName::TopN => {
                "The N wards with the highest (or lowest) values of a column, optionally within one LGA; with a bar chart."
            }
            ToolName::Correlate => {
                "Correlation (pearson or spearman) of two numeric columns with r, p-value and n, and a scatter plot with the OLS line."
            }
            ToolName::CorrelationMatrix => "Correlation heatmap of all numeric columns.",
            ToolName::Missingness => {
                "Missing values by column, by LGA or by year, with a map of missingness per ward."
            }
            ToolName::CompositeMaps => "Maps of each composite model's score, four per page.",
            ToolName::RankingChart => "Bar chart of the ward ranking (composite or PCA).",
            ToolName::TprCalculate => {
                "Compute the ward test positivity rate (TPR) from the uploaded health-facility testing export (NMEP/DHIS2), for a facility level, age group and test method; draws the TPR map when the ward shapefile is loaded. Only when Facility Export Loaded is True."
            }
            ToolName::TprTrend => {
                "Ward TPR trends over the years of the facility export: which wards are worsening, improving or stable, with their slopes. Only when Facility Export Loaded is True."
            }
            ToolName::TprReprioritise => {
                "The N wards to reprioritise from the facility export's trends (high TPR now and rising fastest, a documented rank-sum rule). Only when Facility Export Loaded is True."
            }
            ToolName::TprMissingness => {
                "Missing testing figures in the facility export by year and by LGA, with a missingness map. Only when Facility Export Loaded is True."
            }
        }
    }

    /// JSON schema of the arguments, as the OpenAI `tools` list wants it.
    pub fn parameters_schema(self) -> Value {
        let empty = json!({"type": "object", "properties": {}, "additionalProperties": false});
        match self {
            ToolName::RunAnalysis => json!({
                "type": "object",
                "properties": {
                    "variables": {"type": "array", "items": {"type": "string"},
                        "description": "Exact variables to use; omit to let the analysis choose."},
                    "exclude": {"type": "array", "items": {"type": "string"},
                        "description": "Variables to leave out."},
                    "force": {"type": "boolean",
                        "description": "True only when the user explicitly asked to re-run."}
                },
                "additionalProperties": false
            }),
            ToolName::PlanItn => json!({
                "type": "object",
                "properties": {
                    "total_nets": {"type": "integer", "minimum": 1,
                        "description": "Number of nets the user said they have. Never guess."},
                    "avg_household_size": {"type": "number", "exclusiveMinimum": 0, "maximum": 50},
                    "urban_threshold": {"type": "number", "minimum": 0, "maximum": 100,
                        "description": "Urban percentage above which a ward counts as urban."},
                    "method": {"type": "string", "enum": ["composite", "pca"]},
                    "strategy": {"type": "string", "enum": ["rank", "rural_first"]}
                },
                "required": ["total_nets"],
                "additionalProperties": false
            }),
            ToolName::VulnerabilityMap => json!({
                "type": "object",
                "properties": {"method": {"type": "string", "enum": ["composite", "pca", "both"]}},
                "additionalProperties": false
            }),
            ToolName::BoxPlot => json!({
                "type": "object",
                "properties": {"page": {"type": "integer", "minimum": 1}},
                "additionalProperties": false
            }),
            ToolName::VariableMap => json!({
                "type": "object",
                "properties": {"variable": {"type": "string",
                    "description": "A column name of the data."}},
                "required": ["variable"],
                "additionalProperties": false
            }),
            ToolName::TopWards => json!({
                "type": "object",
                "properties": {
                    "n": {"type": "integer", "minimum": 1},
                    "bottom": {"type": "boolean"},
                    "decile": {"type": "boolean"},
                    "method": {"type": "string", "enum": ["composite", "pca"]}
                },
                "additionalProperties": false
            }),
            ToolName::WardDetail => json!({
                "type": "object",
                "properties": {"ward": {"type": "string"}},
                "required": ["ward"],
                "additionalProperties": false
            }),
            ToolName::CompareWards => json!({
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "required": ["a", "b"],
                "additionalProperties": false
            }),
            ToolName::ExplainMethod => json!({
                "type": "object",
                "properties": {"topic": {"type": "string",
                    "enum": ["composite", "pca", "imputation", "normalisation", "itn", "general"]}},
                "additionalProperties": false
            }),
            ToolName::ItnMap
            | ToolName::DataSummary
            | ToolName::ExportPackage
            | ToolName::LgaItn => empty,
            ToolName::LgaRanking => json!({
                "type": "object",
                "properties": {"variable": {"type": "string",
                    "description": "A numeric column to rank LGAs by; omit for the vulnerability ranking."}},
                "additionalProperties": false
            }),
            ToolName::WardsInLga => json!({
                "type": "object",
                "properties": {"lga": {"type": "string", "description": "An LGA of the data."}},
                "required": ["lga"],
                "additionalProperties": false
            }),
            ToolName::UrbanExtentMap => json!({
                "type": "object",
                "properties": {"threshold": {"type": "number", "minimum": 0, "maximum": 100}},
                "additionalProperties": false
            }),
            ToolName::Describe => json!({
                "type": "object",
                "properties": {
                    "column": {"type": "string", "description": "A numeric column of the data."},
                    "by": {"type": "string", "description": "\"LGA\" or a text column to group by."}
                },
                "required": ["column"],
                "additionalProperties": false
            }),
            ToolName::Filter => json!({
                "type": "object",
                "properties": {
                    "column": {"type": "string"},
                    "op": {"type": "string", "enum": [">", ">=", "<", "<=", "=", "!=", "contains"]},
                    "value": {"type": "string", "description": "A number, or text for a text column."}
                },
                "required": ["column", "op", "value"],
                "additionalProperties": false
            }),
            ToolName::GroupBy => json!({
                "type": "object",
                "properties": {
                    "by": {"type": "string", "description": "\"LGA\" or a text column."},
                    "agg": {"type": "string", "enum": ["mean", "sum", "median", "min", "max", "count"]},
                    "column": {"type": "string", "description": "Omit for every numeric column."}
                },
                "required": ["by"],
                "additionalProperties": false
            }),
            ToolName::TopN => json!({
                "type": "object",
                "properties": {
                    "column": {"type": "string"},
                    "n": {"type": "integer", "minimum": 1},
                    "lowest": {"type": "boolean"},
                    "lga": {"type": "string", "description": "Only wards of this LGA."}
                },
                "required": ["column"],
                "additionalProperties": false
            }),
            ToolName::Correlate => json!({
                "type": "object",
                "properties": {
                    "a": {"type": "string"}, "b": {"type": "string"},
                    "method": {"type": "string", "enum": ["pearson", "spearman"]}
                },
                "required": ["a", "b"],
                "additionalProperties": false
            }),
            ToolName::CorrelationMatrix => json!({
                "type": "object",
                "properties": {"method": {"type": "string", "enum": ["pearson", "spearman"]}},
                "additionalProperties": false
            }),
            ToolName::Missingness => json!({
                "type": "object",
                "properties": {"by": {"type": "string", "enum": ["column", "lga", "year"]}},
                "additionalProperties": false
            }),
            ToolName::CompositeMaps => json!({
                "type": "object",
                "properties": {"page": {"type": "integer", "minimum": 1}},
                "additionalProperties": false
            }),
            ToolName::RankingChart => json!({
                "type": "object",
                "properties": {"method": {"type": "string", "enum": ["composite", "pca"]}},
                "additionalProperties": false
            }),
            ToolName::TprCalculate => json!({
                "type": "object",
                "properties": {
                    "facility_level": {"type": "string",
                        "enum": ["all", "primary", "secondary", "tertiary"]},
                    "age_group": {"type": "string", "enum": ["all_ages", "u5", "o5", "pw"],
                        "description": "u5 = under five years, o5 = five and over (excluding pregnant women), pw = pregnant women."},
                    "test_method": {"type": "string", "enum": ["both", "rdt", "microscopy"],
                        "description": "both = per ward the higher of the RDT and the microscopy rate."}
                },
                "additionalProperties": false
            }),
            ToolName::TprReprioritise => json!({
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 1,
                    "description": "How many wards the user asked for (default 10)."}},
                "additionalProperties": false
            }),
            ToolName::TprTrend | ToolName::TprMissingness => empty,
        }
    }
}

/// The `tools` array for an OpenAI-compatible chat completion request.
pub fn openai_tools() -> Value {
    Value::Array(
        ToolName::ALL
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.as_str(),
                        "description": t.description(),
                        "parameters": t.parameters_schema(),
                    }
                })
            })
            .collect(),
    )
}

impl ToolCall {
    /// The tool this call is of.
    pub fn name(&self) -> ToolName {
        match self {
            ToolCall::RunAnalysis { .. } => ToolName::RunAnalysis,
            ToolCall::PlanItn { .. } => ToolName::PlanItn,
            ToolCall::VulnerabilityMap { .. } => ToolName::VulnerabilityMap,
            ToolCall::ItnMap => ToolName::ItnMap,
            ToolCall::BoxPlot { .. } => ToolName::BoxPlot,
            ToolCall::VariableMap { .. } => ToolName::VariableMap,
            ToolCall::TopWards { .. } => ToolName::TopWards,
            ToolCall::WardDetail { .. } => ToolName::WardDetail,
            ToolCall::CompareWards { .. } => ToolName::CompareWards,
            ToolCall::ExplainMethod { .. } => ToolName::ExplainMethod,
            ToolCall::DataSummary => ToolName::DataSummary,
            ToolCall::ExportPackage => ToolName::ExportPackage,
            ToolCall::LgaRanking { .. } => ToolName::LgaRanking,
            ToolCall::WardsInLga { .. } => ToolName::WardsInLga,
            ToolCall::LgaItn => ToolName::LgaItn,
            ToolCall::UrbanExtentMap { .. } => ToolName::UrbanExtentMap,
            ToolCall::Describe { .. } => ToolName::Describe,
            ToolCall::Filter { .. } => ToolName::Filter,
            ToolCall::GroupBy { .. } => ToolName::GroupBy,
            ToolCall::TopN { .. } => ToolName::TopN,
            ToolCall::Correlate { .. } => ToolName::Correlate,
            ToolCall::CorrelationMatrix { .. } => ToolName::CorrelationMatrix,
            ToolCall::Missingness { .. } => ToolName::Missingness,
            ToolCall::CompositeMaps { .. } => ToolName::CompositeMaps,
            ToolCall::RankingChart { .. } => ToolName::RankingChart,
            ToolCall::TprCalculate { .. } => ToolName::TprCalculate,
            ToolCall::TprTrend => ToolName::TprTrend,
            ToolCall::TprReprioritise { .. } => ToolName::TprReprioritise,
            ToolCall::TprMissingness => ToolName::TprMissingness,
        }
    }

    /// Whether the app has to execute something; an explanation is answered from text alone
    /// (`compose_answer(call, &ToolOutcome::NoOutput, ctx)`).
    pub fn needs_execution(&self) -> bool {
        !matches!(self, ToolCall::ExplainMethod { .. })
    }

    /// The arguments as the JSON object a model would send (round-trips through
    /// [`parse_tool_call`]).
    pub fn arguments_json(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut m)) => m.remove("arguments").unwrap_or_else(|| json!({})),
            _ => json!({}),
        }
    }
}

/// Why a proposed tool call was not accepted; `reason` is fit to show the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The tool's name as proposed (possibly not a tool at all).
    pub tool: String,
    /// Why, in words fit for the user (no routes, no internal detail).
    pub reason: String,
    /// The call was fine except that it lacked the net total: ask for it, don't fall back.
    pub missing_net_total: bool,
}

impl Refusal {
    fn new(tool: &str, reason: impl Into<String>) -> Refusal {
        Refusal {
            tool: tool.to_string(),
            reason: reason.into(),
            missing_net_total: false,
        }
    }
}

/// The analysis refuses more variables than this (analysis.md §0.1).
pub const MAX_ANALYSIS_VARIABLES: usize = 15;

/// Largest net total accepted; more than the world's annual LLIN output is a typo or an attack.
const MAX_NETS: u64 = 1_000_000_000;

struct Args<'a> {
    tool: &'a str,
    map: serde_json::Map<String, Value>,
}

impl Args<'_> {
    fn bad(&self, field: &str, want: &str) -> Refusal {
        Refusal::new(self.tool, format!("argument `{field}` must be {want}"))
    }

    fn string(&self, field: &str) -> Result<Option<String>, Refusal> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(self.bad(field, "a string")),
        }
    }

    fn required_string(&self, field: &str) -> Result<String, Refusal> {
        self.string(field)?
            .ok_or_else(|| Refusal::new(self.tool, format!("argument `{field}` is required")))
    }

    fn boolean(&self, field: &str) -> Result<bool, Refusal> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(field, "true or false")),
        }
    }

    fn number(&self, field: &str) -> Result<Option<f64>, Refusal> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| self.bad(field, "a finite number")),
            // Models sometimes quote numbers; accept "120,000" but nothing fuzzier.
            Some(Value::String(s)) => s
                .trim()
                .replace(',', "")
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| self.bad(field, "a number")),
            Some(_) => Err(self.bad(field, "a number")),
        }
    }

    fn string_list(&self, field: &str) -> Result<Option<Vec<String>>, Refusal> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.trim().to_string()),
                    _ => Err(self.bad(field, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::String(s)) => Ok(Some(vec![s.trim().to_string()])),
            Some(_) => Err(self.bad(field, "a list of strings")),
        }
    }

    fn choice<T: Copy>(&self, field: &str, options: &[(&str, T)]) -> Result<Option<T>, Refusal> {
        match self.string(field)? {
            None => Ok(None),
            Some(s) => {
                let lower = s.to_lowercase();
                options
                    .iter()
                    .find(|(name, _)| *name == lower)
                    .map(|(_, v)| Some(*v))
                    .ok_or_else(|| {
                        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                        self.bad(field, &format!("one of {}", names.join(", ")))
                    })
            }
        }
    }
}

const CORRELATION_METHODS: &[(&str, CorrelationMethod)] = &[
    ("pearson", CorrelationMethod::Pearson),
    ("spearman", CorrelationMethod::Spearman),
];

const RANK_METHODS: &[(&str, RankingMethod)] = &[
    ("composite", RankingMethod::Composite),
    ("pca", RankingMethod::Pca),
];

/// Parse a model's tool call (name + JSON arguments string) and validate it against the
/// catalogue and the session: unknown tool, bad types, a ward not in the data, a variable that
/// is not a column, nets <= 0 are all refused with a reason.
pub fn parse_tool_call(
    name: &str,
    arguments: &str,
    ctx: &SessionContext,
) -> Result<ToolCall, Refusal> {
    let Some(tool) = ToolName::parse(name.trim()) else {
        let shown: String = name.chars().take(60).collect();
        return Err(Refusal::new(
            &shown,
            format!("`{shown}` is not a tool this assistant has"),
        ));
    };
    let raw = if arguments.trim().is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_str::<Value>(arguments).map_err(|e| {
            Refusal::new(tool.as_str(), format!("arguments are not valid JSON: {e}"))
        })?
    };
    let map = match raw {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        _ => {
            return Err(Refusal::new(
                tool.as_str(),
                "arguments must be a JSON object",
            ));
        }
    };
    let a = Args {
        tool: tool.as_str(),
        map,
    };
    let call = match tool {
        ToolName::RunAnalysis => ToolCall::RunAnalysis {
            variables: a.string_list("variables")?.filter(|v| !v.is_empty()),
            exclude: a.string_list("exclude")?.unwrap_or_default(),
            force: a.boolean("force")?,
        },
        ToolName::PlanItn => {
            let Some(nets) = a.number("total_nets")? else {
                return Err(Refusal {
                    missing_net_total: true,
                    ..Refusal::new(tool.as_str(), "the number of nets was not given")
                });
            };
            if nets.fract() != 0.0 {
                return Err(a.bad("total_nets", "a whole number of nets"));
            }
            if nets <= 0.0 {
                return Err(Refusal::new(
                    tool.as_str(),
                    "the number of nets must be more than zero",
                ));
            }
            ToolCall::PlanItn {
                total_nets: nets as u64,
                avg_household_size: a.number("avg_household_size")?,
                urban_threshold: a.number("urban_threshold")?,
                method: a.choice("method", RANK_METHODS)?.unwrap_or_default(),
                strategy: a.choice(
                    "strategy",
                    &[
                        ("rank", ItnStrategy::Rank),
                        ("rural_first", ItnStrategy::RuralFirst),
                    ],
                )?,
            }
        }
        ToolName::VulnerabilityMap => ToolCall::VulnerabilityMap {
            method: a
                .choice(
                    "method",
                    &[
                        ("composite", MapMethod::Composite),
                        ("pca", MapMethod::Pca),
                        ("both", MapMethod::Both),
                    ],
                )?
                .unwrap_or_default(),
        },
        ToolName::ItnMap => ToolCall::ItnMap,
        ToolName::BoxPlot => {
            let page = a.number("page")?.unwrap_or(1.0);
            if page < 1.0 || page.fract() != 0.0 || page > f64::from(u32::MAX) {
                return Err(a.bad("page", "a whole number from 1"));
            }
            ToolCall::BoxPlot { page: page as u32 }
        }
        ToolName::VariableMap => ToolCall::VariableMap {
            variable: a.required_string("variable")?,
        },
        ToolName::TopWards => {
            let n = a.number("n")?.unwrap_or(10.0);
            if n < 1.0 || n.fract() != 0.0 || n > f64::from(u32::MAX) {
                return Err(a.bad("n", "a whole number from 1"));
            }
            ToolCall::TopWards {
                n: n as u32,
                bottom: a.boolean("bottom")?,
                decile: a.boolean("decile")?,
                method: a.choice("method", RANK_METHODS)?.unwrap_or_default(),
            }
        }
        ToolName::WardDetail => ToolCall::WardDetail {
            ward: a.required_string("ward")?,
        },
        ToolName::CompareWards => ToolCall::CompareWards {
            a: a.required_string("a")?,
            b: a.required_string("b")?,
        },
        ToolName::ExplainMethod => ToolCall::ExplainMethod {
            topic: a
                .choice(
                    "topic",
                    &[
                        ("composite", ExplainTopic::Composite),
                        ("pca", ExplainTopic::Pca),
                        ("imputation", ExplainTopic::Imputation),
                        ("normalisation", ExplainTopic::Normalisation),
                        ("normalization", ExplainTopic::Normalisation),
                        ("itn", ExplainTopic::Itn),
                        ("general", ExplainTopic::General),
                    ],
                )?
                .unwrap_or_default(),
        },
        ToolName::DataSummary => ToolCall::DataSummary,
        ToolName::ExportPackage => ToolCall::ExportPackage,
        ToolName::LgaRanking => ToolCall::LgaRanking {
            variable: a.string("variable")?,
        },
        ToolName::WardsInLga => ToolCall::WardsInLga {
            lga: a.required_string("lga")?,
        },
        ToolName::LgaItn => ToolCall::LgaItn,
        ToolName::UrbanExtentMap => ToolCall::UrbanExtentMap {
            threshold: a.number("threshold")?,
        },
        ToolName::Describe => ToolCall::Describe {
            column: a.required_string("column")?,
            by: a.string("by")?,
        },
        ToolName::Filter => {
            let op = a.required_string("op")?;
            ToolCall::Filter {
                column: a.required_string("column")?,
                op: FilterOp::parse(&op)
                    .ok_or_else(|| a.bad("op", "one of >, >=, <, <=, =, !=, contains"))?,
                value: match a.map.get("value") {
                    Some(Value::Number(n)) => n.to_string(),
                    _ => a.required_string("value")?,
                },
            }
        }
        ToolName::GroupBy => ToolCall::GroupBy {
            by: a.required_string("by")?,
            agg: match a.string("agg")? {
                None => Agg::Mean,
                Some(s) => Agg::parse(&s)
                    .ok_or_else(|| a.bad("agg", "one of mean, sum, median, min, max, count"))?,
            },
            column: a.string("column")?,
        },
        ToolName::TopN => {
            let n = a.number("n")?.unwrap_or(10.0);
            if n < 1.0 || n.fract() != 0.0 || n > f64::from(u32::MAX) {
                return Err(a.bad("n", "a whole number from 1"));
            }
            ToolCall::TopN {
                column: a.required_string("column")?,
                n: n as u32,
                lowest: a.boolean("lowest")?,
                lga: a.string("lga")?,
            }
        }
        ToolName::Correlate => ToolCall::Correlate {
            a: a.required_string("a")?,
            b: a.required_string("b")?,
            method: a.choice("method", CORRELATION_METHODS)?.unwrap_or_default(),
        },
        ToolName::CorrelationMatrix => ToolCall::CorrelationMatrix {
            method: a.choice("method", CORRELATION_METHODS)?.unwrap_or_default(),
        },
        ToolName::Missingness => ToolCall::Missingness {
            by: a
                .choice(
                    "by",
                    &[
                        ("column", MissingBy::Column),
                        ("lga", MissingBy::Lga),
                        ("year", MissingBy::Year),
                    ],
                )?
                .unwrap_or_default(),
        },
        ToolName::CompositeMaps => {
            let page = a.number("page")?.unwrap_or(1.0);
            if page < 1.0 || page.fract() != 0.0 || page > f64::from(u32::MAX) {
                return Err(a.bad("page", "a whole number from 1"));
            }
            ToolCall::CompositeMaps { page: page as u32 }
        }
        ToolName::RankingChart => ToolCall::RankingChart {
            method: a.choice("method", RANK_METHODS)?.unwrap_or_default(),
        },
        ToolName::TprCalculate => ToolCall::TprCalculate {
            facility_level: a.choice(
                "facility_level",
                &[
                    ("all", LevelChoice::All),
                    ("primary", LevelChoice::Primary),
                    ("secondary", LevelChoice::Secondary),
                    ("tertiary", LevelChoice::Tertiary),
                ],
            )?,
            age_group: a.choice(
                "age_group",
                &[
                    ("all_ages", AgeChoice::AllAges),
                    ("u5", AgeChoice::U5),
                    ("o5", AgeChoice::O5),
                    ("pw", AgeChoice::Pw),
                ],
            )?,
            test_method: a.choice(
                "test_method",
                &[
                    ("both", MethodChoice::Both),
                    ("rdt", MethodChoice::Rdt),
                    ("microscopy", MethodChoice::Microscopy),
                ],
            )?,
        },
        ToolName::TprTrend => ToolCall::TprTrend,
        ToolName::TprReprioritise => {
            let n = a.number("n")?.unwrap_or(10.0);
            if n < 1.0 || n.fract() != 0.0 || n > 10_000.0 {
                return Err(a.bad("n", "a whole number of wards from 1 to 10000"));
            }
            ToolCall::TprReprioritise { n: n as u32 }
        }
        ToolName::TprMissingness => ToolCall::TprMissingness,
    };
    validate(call, ctx)
}

/// Check a call against the session and resolve names to the data's spelling. Used for calls
/// from any interpreter.
pub fn validate(call: ToolCall, ctx: &SessionContext) -> Result<ToolCall, Refusal> {
    let tool = call.name().as_str();
    if call.name().uses_facility_export() {
        return if ctx.tpr_loaded {
            Ok(call)
        } else {
            Err(Refusal::new(
                tool,
                "there is no health-facility export in this session yet; upload the NMEP/DHIS2 testing export in the \"Facility export (TPR)\" entry first",
            ))
        };
    }
    let ward = |name: &str| -> Result<String, Refusal> {
        if ctx.wards.is_empty() {
            return Err(Refusal::new(
                tool,
                "no ward list is available for this data",
            ));
        }
        resolve_ward(name, &ctx.wards).ok_or_else(|| {
            let shown: String = name.chars().take(60).collect();
            let near = suggest_wards(name, &ctx.wards, 3);
            let hint = if near.is_empty() {
                String::new()
            } else {
                format!(" Did you mean {}?", near.join(", "))
            };
            Refusal::new(
                tool,
                format!("there is no ward called \"{shown}\" in the data.{hint}"),
            )
        })
    };
    let variable = |name: &str| -> Result<String, Refusal> {
        resolve_variable(name, &ctx.variables).ok_or_else(|| {
            let shown: String = name.chars().take(60).collect();
            let names: Vec<&str> = ctx.variables.iter().map(|v| v.name.as_str()).collect();
            Refusal::new(
                tool,
                format!(
                    "\"{shown}\" is not a column of the data; the columns are: {}",
                    names.join(", ")
                ),
            )
        })
    };
    let numeric = |name: &str| -> Result<String, Refusal> {
        let v = variable(name)?;
        if ctx
            .variables
            .iter()
            .any(|c| c.name == v && c.kind == VariableKind::Text)
        {
            return Err(Refusal::new(
                tool,
                format!(
                    "\"{v}\" is a text column, so it has no numbers to compute with; the numeric columns are: {}",
                    numeric_names(ctx)
                ),
            ));
        }
        Ok(v)
    };
    let no_lgas = || {
        Refusal::new(
            tool,
            "this data has no LGA for its wards (no LGA, LGAName, LGACode or orgunitlevel3 column in the data or the shapefile); upload an LGA lookup (WardName,LGA or LGACode,LGAName) to add them",
        )
    };
    let lga = |name: &str| -> Result<String, Refusal> {
        if ctx.lgas.is_empty() {
            return Err(no_lgas());
        }
        resolve_lga(name, &ctx.lgas).ok_or_else(|| {
            let shown: String = name.chars().take(60).collect();
            Refusal::new(
                tool,
                format!(
                    "there is no LGA called \"{shown}\"; the LGAs are: {}",
                    ctx.lgas.join(", ")
                ),
            )
        })
    };
    let group = |name: &str| -> Result<String, Refusal> {
        let n = crate::matching::normalise(name);
        if matches!(
            n.as_str(),
            "lga" | "lgas" | "local government area" | "local government"
        ) {
            if ctx.lgas.is_empty() {
                return Err(no_lgas());
            }
            return Ok("LGA".to_string());
        }
        variable(name)
    };
    Ok(match call {
        ToolCall::RunAnalysis {
            variables,
            exclude,
            force,
        } => {
            let variables = match variables {
                Some(list) => Some(dedup(
                    list.iter().map(|v| variable(v)).collect::<Result<_, _>>()?,
                )),
                None => None,
            };
            if let Some(text) = variables.iter().flatten().find(|v| {
                ctx.variables
                    .iter()
                    .any(|c| c.name == **v && c.kind == VariableKind::Text)
            }) {
                return Err(Refusal::new(
                    tool,
                    format!("\"{text}\" is a text column; the analysis needs numeric variables"),
                ));
            }
            if variables
                .as_ref()
                .is_some_and(|v| v.len() > MAX_ANALYSIS_VARIABLES)
            {
                return Err(Refusal::new(
                    tool,
                    format!("at most {MAX_ANALYSIS_VARIABLES} variables can enter the analysis"),
                ));
            }
            let exclude = dedup(
                exclude
                    .iter()
                    .map(|v| variable(v))
                    .collect::<Result<_, _>>()?,
            );
            if let Some(vars) = &variables
                && vars.iter().all(|v| exclude.contains(v))
            {
                return Err(Refusal::new(tool, "every chosen variable is also excluded"));
            }
            ToolCall::RunAnalysis {
                variables,
                exclude,
                force,
            }
        }
        ToolCall::PlanItn {
            total_nets,
            avg_household_size,
            urban_threshold,
            method,
            strategy,
        } => {
            if total_nets == 0 {
                return Err(Refusal::new(
                    tool,
                    "the number of nets must be more than zero",
                ));
            }
            if total_nets > MAX_NETS {
                return Err(Refusal::new(
                    tool,
                    format!("{total_nets} nets is more than this planner accepts"),
                ));
            }
            if let Some(h) = avg_household_size
                && !(h > 0.0 && h <= 50.0)
            {
                return Err(Refusal::new(
                    tool,
                    "household size must be between 0 and 50",
                ));
            }
            if let Some(t) = urban_threshold
                && !(0.0..=100.0).contains(&t)
            {
                return Err(Refusal::new(
                    tool,
                    "the urban threshold is a percentage (0-100)",
                ));
            }
            ToolCall::PlanItn {
                total_nets,
                avg_household_size,
                urban_threshold,
                method,
                strategy,
            }
        }
        ToolCall::VariableMap { variable: v } => ToolCall::VariableMap {
            variable: variable(&v)?,
        },
        ToolCall::TopWards {
            n,
            bottom,
            decile,
            method,
        } => {
            let count = ctx.ward_count();
            let n = if decile && count > 0 {
                count.div_ceil(10) as u32
            } else if count > 0 {
                n.clamp(1, count as u32)
            } else {
                n.max(1)
            };
            ToolCall::TopWards {
                n,
                bottom,
                decile,
                method,
            }
        }
        ToolCall::WardDetail { ward: w } => ToolCall::WardDetail { ward: ward(&w)? },
        ToolCall::CompareWards { a, b } => {
            let (a, b) = (ward(&a)?, ward(&b)?);
            if a == b {
                return Err(Refusal::new(tool, "comparing needs two different wards"));
            }
            ToolCall::CompareWards { a, b }
        }
        ToolCall::BoxPlot { page: 0 } | ToolCall::CompositeMaps { page: 0 } => {
            return Err(Refusal::new(tool, "pages start at 1"));
        }
        ToolCall::LgaRanking { variable: v } => ToolCall::LgaRanking {
            variable: match v {
                Some(v) => Some(numeric(&v)?),
                None => {
                    if ctx.lgas.is_empty() {
                        return Err(no_lgas());
                    }
                    None
                }
            },
        },
        ToolCall::WardsInLga { lga: l } => ToolCall::WardsInLga { lga: lga(&l)? },
        ToolCall::LgaItn if ctx.lgas.is_empty() => return Err(no_lgas()),
        ToolCall::UrbanExtentMap { threshold } => {
            if let Some(t) = threshold
                && !(0.0..=100.0).contains(&t)
            {
                return Err(Refusal::new(
                    tool,
                    "the urban threshold is a percentage (0-100)",
                ));
            }
            ToolCall::UrbanExtentMap { threshold }
        }
        ToolCall::Describe { column, by } => ToolCall::Describe {
            column: numeric(&column)?,
            by: by.map(|b| group(&b)).transpose()?,
        },
        ToolCall::Filter { column, op, value } => {
            let column = variable(&column)?;
            let is_text = ctx
                .variables
                .iter()
                .any(|v| v.name == column && v.kind == VariableKind::Text);
            let number = value.trim().replace(',', "").parse::<f64>().ok();
            if !is_text && number.is_none() && op != FilterOp::Contains {
                return Err(Refusal::new(
                    tool,
                    format!(
                        "`{column}` is numeric, so it is compared with a number, not \"{}\"",
                        value.chars().take(40).collect::<String>()
                    ),
                ));
            }
            if is_text && !matches!(op, FilterOp::Eq | FilterOp::Ne | FilterOp::Contains) {
                return Err(Refusal::new(
                    tool,
                    format!(
                        "`{column}` is a text column; it can be filtered with =, != or contains. Numeric columns: {}",
                        numeric_names(ctx)
                    ),
                ));
            }
            let value = number.map_or(value.trim().to_string(), |n| n.to_string());
            ToolCall::Filter { column, op, value }
        }
        ToolCall::GroupBy { by, agg, column } => ToolCall::GroupBy {
            by: group(&by)?,
            agg,
            column: column.map(|c| numeric(&c)).transpose()?,
        },
        ToolCall::TopN {
            column,
            n,
            lowest,
            lga: l,
        } => ToolCall::TopN {
            column: numeric(&column)?,
            n: n.clamp(1, ctx.ward_count().max(1) as u32),
            lowest,
            lga: l.map(|l| lga(&l)).transpose()?,
        },
        ToolCall::Correlate { a, b, method } => {
            let (a, b) = (numeric(&a)?, numeric(&b)?);
            if a == b {
                return Err(Refusal::new(
                    tool,
                    format!(
                        "a correlation needs two different columns; numeric columns: {}",
                        numeric_names(ctx)
                    ),
                ));
            }
            ToolCall::Correlate { a, b, method }
        }
        ToolCall::Missingness { by: MissingBy::Lga } if ctx.lgas.is_empty() => {
            return Err(no_lgas());
        }
        other => other,
    })
}

fn numeric_names(ctx: &SessionContext) -> String {
    let names: Vec<&str> = ctx.numeric_variables().map(|v| v.name.as_str()).collect();
    names.join(", ")
}

/// Resolves an LGA name to the data's spelling (case, spaces and an "LGA" suffix ignored).
pub fn resolve_lga(name: &str, lgas: &[String]) -> Option<String> {
    let norm = |s: &str| {
        crate::matching::normalise(s)
            .trim_end_matches(" lga")
            .trim()
            .to_string()
    };
    let want = norm(name);
    if want.is_empty() {
        return None;
    }
    lgas.iter()
        .find(|l| norm(l) == want)
        .or_else(|| lgas.iter().find(|l| norm(l).starts_with(&want)))
        .cloned()
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for v in list {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{VariableInfo, VariableKind};

    fn ctx() -> SessionContext {
        SessionContext {
            data_loaded: true,
            tpr_loaded: true,
            wards: vec!["Zango".into(), "Dala".into(), "Fagge A".into()],
            lgas: vec!["Dala".into(), "Fagge".into()],
            variables: ["rainfall", "test_positivity_rate"]
                .iter()
                .map(|n| VariableInfo {
                    name: n.to_string(),
                    kind: VariableKind::Numeric,
                    completeness_pct: 100.0,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn every_tool_name_round_trips_and_has_a_schema() {
        // H11: the names the interpreter emits are exactly the catalogue's names.
        let tools = openai_tools();
        let listed: Vec<&str> = tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        for t in ToolName::ALL {
            assert_eq!(ToolName::parse(t.as_str()), Some(t));
            assert!(listed.contains(&t.as_str()));
            assert_eq!(t.parameters_schema()["type"], "object");
        }
        assert_eq!(listed.len(), ToolName::ALL.len());
    }

    #[test]
    fn every_call_round_trips_through_the_model_path() {
        let c = ctx();
        let calls = vec![
            ToolCall::RunAnalysis {
                variables: Some(vec!["rainfall".into()]),
                exclude: vec![],
                force: true,
            },
            ToolCall::PlanItn {
                total_nets: 10_000,
                avg_household_size: Some(5.0),
                urban_threshold: None,
                method: RankingMethod::Pca,
                strategy: Some(ItnStrategy::RuralFirst),
            },
            ToolCall::VulnerabilityMap {
                method: MapMethod::Both,
            },
            ToolCall::ItnMap,
            ToolCall::BoxPlot { page: 2 },
            ToolCall::VariableMap {
                variable: "rainfall".into(),
            },
            ToolCall::TopWards {
                n: 2,
                bottom: true,
                decile: false,
                method: RankingMethod::Composite,
            },
            ToolCall::WardDetail {
                ward: "Zango".into(),
            },
            ToolCall::CompareWards {
                a: "Dala".into(),
                b: "Fagge A".into(),
            },
            ToolCall::ExplainMethod {
                topic: ExplainTopic::Imputation,
            },
            ToolCall::DataSummary,
            ToolCall::ExportPackage,
            ToolCall::LgaRanking {
                variable: Some("rainfall".into()),
            },
            ToolCall::WardsInLga { lga: "Dala".into() },
            ToolCall::LgaItn,
            ToolCall::UrbanExtentMap {
                threshold: Some(30.0),
            },
            ToolCall::Describe {
                column: "rainfall".into(),
                by: Some("LGA".into()),
            },
            ToolCall::Filter {
                column: "rainfall".into(),
                op: FilterOp::Ge,
                value: "2.5".into(),
            },
            ToolCall::GroupBy {
                by: "LGA".into(),
                agg: Agg::Median,
                column: None,
            },
            ToolCall::TopN {
                column: "test_positivity_rate".into(),
                n: 2,
                lowest: true,
                lga: Some("Fagge".into()),
            },
            ToolCall::Correlate {
                a: "rainfall".into(),
                b: "test_positivity_rate".into(),
                method: CorrelationMethod::Spearman,
            },
            ToolCall::CorrelationMatrix {
                method: CorrelationMethod::Pearson,
            },
            ToolCall::Missingness { by: MissingBy::Lga },
            ToolCall::CompositeMaps { page: 2 },
            ToolCall::RankingChart {
                method: RankingMethod::Pca,
            },
            ToolCall::TprCalculate {
                facility_level: Some(LevelChoice::Primary),
                age_group: Some(AgeChoice::AllAges),
                test_method: None,
            },
            ToolCall::TprTrend,
            ToolCall::TprReprioritise { n: 14 },
            ToolCall::TprMissingness,
        ];
        assert_eq!(calls.len(), ToolName::ALL.len());
        for call in calls {
            let args = call.arguments_json().to_string();
            let back = parse_tool_call(call.name().as_str(), &args, &c).unwrap();
            assert_eq!(back, call, "{args}");
        }
    }

    #[test]
    fn tpr_tools_need_a_facility_export_and_valid_choices() {
        let mut c = ctx();
        c.tpr_loaded = false;
        let refusal = parse_tool_call("tpr_trend", "{}", &c).unwrap_err();
        assert!(
            refusal.reason.contains("Facility export (TPR)"),
            "{refusal:?}"
        );
        c.tpr_loaded = true;
        c.data_loaded = false;
        assert_eq!(
            parse_tool_call("tpr_calculate", r#"{"age_group": "u5"}"#, &c).unwrap(),
            ToolCall::TprCalculate {
                facility_level: None,
                age_group: Some(AgeChoice::U5),
                test_method: None,
            }
        );
        let bad = parse_tool_call("tpr_calculate", r#"{"test_method": "pcr"}"#, &c).unwrap_err();
        assert!(bad.reason.contains("rdt"), "{bad:?}");
        let bad = parse_tool_call("tpr_reprioritise", r#"{"n": 0}"#, &c).unwrap_err();
        assert!(bad.reason.contains("whole number"), "{bad:?}");
        // A session with only the facility export: the guards keep the TPR call.
        let plan = crate::guards::apply_guards(&c, "trend", vec![ToolCall::TprTrend]);
        assert_eq!(plan.calls, vec![ToolCall::TprTrend]);
        c.tpr_loaded = false;
        let plan = crate::guards::apply_guards(&c, "trend", vec![ToolCall::TprTrend]);
        assert!(plan.calls.is_empty());
        assert!(
            plan.reply_without_tools
                .unwrap_or_default()
                .contains("Facility export (TPR)")
        );
    }

    #[test]
    fn hostile_and_invalid_calls_are_refused() {
        let c = ctx();
        let refuse = |name: &str, args: &str| parse_tool_call(name, args, &c).unwrap_err();
        assert!(refuse("rm_rf", "{}").reason.contains("not a tool"));
        assert!(
            refuse("execute_sql_query", r#"{"query":"DROP TABLE df"}"#)
                .reason
                .contains("not a tool")
        );
        assert!(
            refuse("plan_itn", r#"{"total_nets": 0}"#)
                .reason
                .contains("more than zero")
        );
        assert!(
            refuse("plan_itn", r#"{"total_nets": -5}"#)
                .reason
                .contains("more than zero")
        );
        assert!(
            refuse("plan_itn", r#"{"total_nets": "lots"}"#)
                .reason
                .contains("number")
        );
        assert!(
            refuse("plan_itn", r#"{"total_nets": 1.5}"#)
                .reason
                .contains("whole")
        );
        assert!(refuse("plan_itn", "{}").missing_net_total);
        assert!(
            refuse(
                "plan_itn",
                r#"{"total_nets": 100, "avg_household_size": 0}"#
            )
            .reason
            .contains("household")
        );
        assert!(
            refuse("ward_detail", r#"{"ward": "Atlantis"}"#)
                .reason
                .contains("no ward")
        );
        assert!(
            refuse("ward_detail", r#"{"ward": "Zangu"}"#)
                .reason
                .contains("Zango")
        );
        assert!(
            refuse("variable_map", r#"{"variable": "elevation"}"#)
                .reason
                .contains("not a column")
        );
        assert!(
            refuse("run_analysis", r#"{"variables": "rainfall; DROP"}"#)
                .reason
                .contains("not a column")
        );
        assert!(
            refuse("top_wards", r#"{"n": "ten"}"#)
                .reason
                .contains("number")
        );
        assert!(refuse("plan_itn", "not json").reason.contains("JSON"));
        assert!(refuse("plan_itn", "[1,2]").reason.contains("object"));
        assert!(
            refuse("compare_wards", r#"{"a": "Dala", "b": "dala"}"#)
                .reason
                .contains("two different")
        );
    }

    #[test]
    fn names_are_resolved_to_the_data_spelling() {
        let c = ctx();
        let call = parse_tool_call("ward_detail", r#"{"ward": "fagge a"}"#, &c).unwrap();
        assert_eq!(
            call,
            ToolCall::WardDetail {
                ward: "Fagge A".into()
            }
        );
        let call = parse_tool_call("variable_map", r#"{"variable": "TPR"}"#, &c).unwrap();
        assert_eq!(
            call,
            ToolCall::VariableMap {
                variable: "test_positivity_rate".into()
            }
        );
        let call = parse_tool_call("plan_itn", r#"{"total_nets": "120,000"}"#, &c).unwrap();
        assert!(matches!(
            call,
            ToolCall::PlanItn {
                total_nets: 120_000,
                ..
            }
        ));
        let call = parse_tool_call("top_wards", r#"{"decile": true}"#, &c).unwrap();
        assert!(matches!(
            call,
            ToolCall::TopWards {
                n: 1,
                decile: true,
                ..
            }
        ));
    }
}
