//! Plain-language answers from tool results: what a programme officer reads after a tool ran,
//! with the figures from the results and no jargon that is not explained.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

use mrpt_table::{DataSummary, ItnStats, RankedWard, RankingMethod};

use crate::context::{SessionContext, Stage, WardDetail};
use crate::tools::{ExplainTopic, MapMethod, ToolCall, score_label};

/// Result of the risk analysis run (or reused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSummary {
    /// The committed analysis' id (named in the answer so a re-run can be told apart).
    pub analysis_id: String,
    /// The variables the ranking used, in the order the analysis chose them.
    pub variables: Vec<String>,
    /// Best first.
    pub top_wards: Vec<RankedWard>,
    /// Wards ranked.
    pub ward_count: u32,
    /// True when an identical earlier run was reused instead of computing again.
    pub reused: bool,
    /// The analysis' warnings, shown to the user as they are.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// An ITN plan just made: its figures (as `itn_distribution_results.json` holds them) and how
/// it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnOutcome {
    /// The plan's figures, from the server's computation.
    pub stats: ItnStats,
    /// People per household the plan used; `None` when the default was used.
    #[serde(default)]
    pub avg_household_size: Option<f64>,
    /// The ranking the nets followed.
    #[serde(default)]
    pub method: RankingMethod,
    /// Where the ITN map is, when one was drawn.
    #[serde(default)]
    pub map_url: Option<String>,
    /// (LGA, nets allocated, wards given nets), most nets first; empty without LGAs.
    #[serde(default)]
    pub lga_totals: Vec<(String, u64, u64)>,
}

/// A generated map or chart the UI can show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visualization {
    /// What the answer calls it ("Composite vulnerability map").
    pub title: String,
    /// Same-origin URL of the HTML file.
    pub url: String,
    /// 1-based page, for paged charts (box plots, composite maps).
    #[serde(default)]
    pub page: Option<u32>,
    /// Number of pages, for paged charts.
    #[serde(default)]
    pub pages: Option<u32>,
}

/// The wards a `top_wards` call asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopWardsResult {
    /// The wards, in the order asked (most vulnerable first, or least for `bottom`).
    pub wards: Vec<RankedWard>,
    /// Wards ranked in all, for "N of M".
    pub total_wards: u32,
}

/// The uploaded data as the upload summarised it, with what the session adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataOverview {
    /// The upload's summary, as stored with it.
    pub summary: DataSummary,
    /// Wards in the table.
    pub wards: u32,
    /// State or area the data covers, when detected.
    #[serde(default)]
    pub state_name: Option<String>,
    /// Whether ward boundaries were uploaded (maps need them).
    #[serde(default)]
    pub shapefile_loaded: bool,
}

/// The download package an `export_package` call made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportInfo {
    /// Same-origin URL of the zip.
    pub url: String,
    /// The zip's file name, as the answer names it.
    pub filename: String,
    /// True when the package is the ITN plan rather than the analysis.
    pub itn: bool,
}

/// A downloadable file made for an answer (the CSV of a table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Download {
    /// The file name the answer names.
    pub filename: String,
    /// Same-origin URL of the file.
    pub url: String,
}

/// The answer of an LGA or exploration tool: a sentence with the computed figures, a short
/// table, the full table as CSV and charts where they help. Every number comes from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TableAnswer {
    /// One sentence with the computed figures, shown first.
    pub headline: String,
    /// The first rows as a markdown table.
    pub table: String,
    /// Rows in the full table and rows shown.
    pub rows: usize,
    /// Rows in the markdown table (at most `rows`).
    pub shown: usize,
    /// The full table as CSV, when it was written.
    #[serde(default)]
    pub csv: Option<Download>,
    /// Charts drawn for the answer (a scatter plot, an LGA map).
    #[serde(default)]
    pub charts: Vec<Visualization>,
    /// A closing remark (what else can be asked).
    #[serde(default)]
    pub note: Option<String>,
}

/// What the app got from executing a [`ToolCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToolOutcome {
    /// `run_analysis` ran or reused an analysis.
    Analysis(AnalysisSummary),
    /// `plan_itn` made a plan.
    Itn(ItnOutcome),
    /// A map or chart call drew these.
    Visualizations {
        /// The maps or charts, in the order to show them.
        items: Vec<Visualization>,
    },
    /// `top_wards` found these.
    TopWards(TopWardsResult),
    /// `ward_detail` explained one ward.
    WardDetail(WardDetail),
    /// `compare_wards` explained two wards.
    Comparison {
        /// The first ward named.
        a: WardDetail,
        /// The second ward named.
        b: WardDetail,
    },
    /// `data_summary` read the upload's summary.
    DataSummary(DataOverview),
    /// `export_package` made a download.
    Export(ExportInfo),
    /// An LGA or exploration tool computed a table.
    Table(TableAnswer),
    /// The tool failed; `message` is shown to the user as the reason.
    Error {
        /// The reason, in the user's terms (no routes, no internal error text).
        message: String,
    },
    /// Nothing to report (explanations need no execution).
    NoOutput,
}

/// "120000" -> "120,000".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn pretty_variable(name: &str) -> String {
    name.replace('_', " ")
}

fn ward_table(out: &mut String, wards: &[RankedWard]) {
    for w in wards {
        let _ = writeln!(
            out,
            "{}. {} - score {:.3} ({})",
            w.rank, w.ward_name, w.score, w.category
        );
    }
}

/// Compose the answer to one executed tool call.
pub fn compose_answer(call: &ToolCall, outcome: &ToolOutcome, ctx: &SessionContext) -> String {
    if let ToolOutcome::Error { message } = outcome {
        return format!(
            "I couldn't complete that ({}): {message}",
            tool_purpose(call)
        );
    }
    match (call, outcome) {
        (ToolCall::ExplainMethod { topic }, _) => explain(*topic, ctx),
        (ToolCall::RunAnalysis { .. }, ToolOutcome::Analysis(s)) => analysis_answer(s),
        (
            ToolCall::PlanItn {
                urban_threshold, ..
            },
            ToolOutcome::Itn(s),
        ) => itn_answer(s, *urban_threshold),
        (
            ToolCall::VulnerabilityMap { .. }
            | ToolCall::ItnMap
            | ToolCall::BoxPlot { .. }
            | ToolCall::VariableMap { .. },
            ToolOutcome::Visualizations { items },
        ) => visualization_answer(call, items),
        (
            ToolCall::TopWards {
                n,
                bottom,
                decile,
                method,
            },
            ToolOutcome::TopWards(r),
        ) => top_wards_answer(*n, *bottom, *decile, *method, r),
        (ToolCall::WardDetail { .. }, ToolOutcome::WardDetail(d)) => ward_detail_answer(d),
        (ToolCall::CompareWards { .. }, ToolOutcome::Comparison { a, b }) => {
            comparison_answer(a, b)
        }
        (ToolCall::DataSummary, ToolOutcome::DataSummary(d)) => data_summary_answer(d),
        (ToolCall::ExportPackage, ToolOutcome::Export(e)) => {
            let what = if e.itn {
                "ITN distribution plan"
            } else {
                "risk analysis results"
            };
            format!(
                "Your download package with the {what} is ready: [{}]({}). It holds the ranked ward table, the maps and a short summary you can share.",
                e.filename, e.url
            )
        }
        (_, ToolOutcome::Table(t)) => table_answer(t),
        (
            ToolCall::UrbanExtentMap { .. }
            | ToolCall::CompositeMaps { .. }
            | ToolCall::RankingChart { .. },
            ToolOutcome::Visualizations { items },
        ) => visualization_answer(call, items),
        (_, ToolOutcome::NoOutput) => format!("Done: {}.", tool_purpose(call)),
        _ => format!(
            "The {} finished, but its result was not in the expected form, so I can't describe it.",
            tool_purpose(call)
        ),
    }
}

fn tool_purpose(call: &ToolCall) -> &'static str {
    match call {
        ToolCall::RunAnalysis { .. } => "risk analysis",
        ToolCall::PlanItn { .. } => "ITN distribution plan",
        ToolCall::VulnerabilityMap { .. } => "vulnerability map",
        ToolCall::ItnMap => "ITN map",
        ToolCall::BoxPlot { .. } => "box plot",
        ToolCall::VariableMap { .. } => "variable map",
        ToolCall::TopWards { .. } => "ward ranking",
        ToolCall::WardDetail { .. } => "ward details",
        ToolCall::CompareWards { .. } => "ward comparison",
        ToolCall::ExplainMethod { .. } => "method explanation",
        ToolCall::DataSummary => "data summary",
        ToolCall::ExportPackage => "download package",
        ToolCall::LgaRanking { .. } => "LGA ranking",
        ToolCall::WardsInLga { .. } => "list of an LGA's wards",
        ToolCall::LgaItn => "ITN totals per LGA",
        ToolCall::UrbanExtentMap { .. } => "urban extent map",
        ToolCall::Describe { .. } => "descriptive statistics",
        ToolCall::Filter { .. } => "ward filter",
        ToolCall::GroupBy { .. } => "grouped summary",
        ToolCall::TopN { .. } => "top-N list",
        ToolCall::Correlate { .. } => "correlation",
        ToolCall::CorrelationMatrix { .. } => "correlation heatmap",
        ToolCall::Missingness { .. } => "missing-value summary",
        ToolCall::CompositeMaps { .. } => "composite score maps",
        ToolCall::RankingChart { .. } => "ranking chart",
        ToolCall::TprCalculate { .. } => "ward TPR calculation",
        ToolCall::TprTrend => "TPR trend summary",
        ToolCall::TprReprioritise { .. } => "reprioritisation list",
        ToolCall::TprMissingness => "facility-export missing-data summary",
    }
}

fn table_answer(t: &TableAnswer) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", t.headline.trim_end());
    if !t.table.is_empty() {
        let _ = writeln!(out, "\n{}", t.table.trim_end());
        if t.rows > t.shown {
            let _ = writeln!(
                out,
                "({} of {} rows shown; the CSV has them all.)",
                t.shown, t.rows
            );
        }
    }
    if let Some(d) = &t.csv {
        let _ = writeln!(out, "\nDownload the table: [{}]({})", d.filename, d.url);
    }
    for c in &t.charts {
        let _ = writeln!(out, "- {}: {}", c.title, c.url);
    }
    if let Some(n) = &t.note {
        let _ = writeln!(out, "\n{n}");
    }
    out.trim_end().to_string()
}

fn analysis_answer(s: &AnalysisSummary) -> String {
    let mut out = String::new();
    if s.reused {
        let _ = writeln!(
            out,
            "These results come from the analysis already run on this data (analysis {}), so nothing was recomputed.",
            s.analysis_id
        );
    } else {
        let _ = writeln!(
            out,
            "The malaria risk analysis is complete (analysis {}). All {} wards were ranked from highest to lowest risk.",
            s.analysis_id, s.ward_count
        );
    }
    if !s.variables.is_empty() {
        let vars: Vec<String> = s.variables.iter().map(|v| pretty_variable(v)).collect();
        let _ = writeln!(
            out,
            "It combined {} variables: {}.",
            s.variables.len(),
            vars.join(", ")
        );
    }
    if !s.top_wards.is_empty() {
        let _ = writeln!(
            out,
            "\nHighest-risk wards (composite score, 0 = lowest, 1 = highest):"
        );
        ward_table(&mut out, &s.top_wards);
    }
    for w in &s.warnings {
        let _ = writeln!(out, "\nNote: {w}");
    }
    let _ = write!(
        out,
        "\nNext you can view the vulnerability map, ask why a ward ranks where it does, or plan ITN distribution (tell me how many nets you have)."
    );
    out
}

/// A count of nets or people (never negative in a plan).
fn count(n: i64) -> String {
    thousands(n.max(0) as u64)
}

fn itn_answer(o: &ItnOutcome, urban_threshold: Option<f64>) -> String {
    let s = &o.stats;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ITN distribution plan ready: {} of {} nets allocated across {} wards in order of malaria risk ({}).",
        count(s.allocated),
        count(s.total_nets),
        s.prioritized_wards,
        score_label(o.method)
    );
    let _ = writeln!(
        out,
        "These nets cover about {} of {} people ({:.1}% of the population).",
        count(s.covered_population),
        count(s.total_population),
        s.coverage_percent
    );
    let _ = writeln!(
        out,
        "{} wards are fully covered and {} partially covered.",
        s.fully_covered_wards, s.partially_covered_wards
    );
    if s.remaining > 0 {
        let _ = writeln!(
            out,
            "{} nets are left over after every ward reached full coverage.",
            count(s.remaining)
        );
    } else if s.coverage_percent < 100.0 {
        let _ = writeln!(
            out,
            "All nets were used; the remaining lower-risk wards would need more nets for full coverage."
        );
    }
    if !o.lga_totals.is_empty() {
        let parts: Vec<String> = o
            .lga_totals
            .iter()
            .map(|(l, nets, wards)| format!("{l} {} ({wards} wards)", thousands(*nets)))
            .collect();
        let _ = writeln!(out, "Nets per LGA: {}.", parts.join(", "));
    }
    let mut assumptions = Vec::new();
    if let Some(h) = o.avg_household_size {
        assumptions.push(format!("{h} people per household"));
    }
    if let Some(t) = urban_threshold {
        assumptions.push(format!("urban threshold {t}%"));
    }
    if !assumptions.is_empty() {
        let _ = writeln!(out, "Assumptions: {}.", assumptions.join(", "));
    }
    if let Some(url) = &o.map_url {
        let _ = writeln!(out, "See the distribution on the ITN map: {url}");
    }
    out.trim_end().to_string()
}

fn visualization_answer(call: &ToolCall, items: &[Visualization]) -> String {
    if items.is_empty() {
        return format!("The {} produced nothing to show.", tool_purpose(call));
    }
    let mut out = String::new();
    let intro = match call {
        ToolCall::VulnerabilityMap {
            method: MapMethod::Both,
        } => "Here are the composite and PCA vulnerability maps side by side. Darker wards are at higher malaria risk; wards that are dark on both maps are the most robust priorities.".to_string(),
        ToolCall::VulnerabilityMap { method } => format!(
            "Here is the vulnerability map ({}). Darker wards are at higher malaria risk.",
            match method {
                MapMethod::Pca => "PCA",
                _ => "composite score",
            }
        ),
        ToolCall::ItnMap => {
            "Here is the ITN distribution map: it shows how many nets each ward receives and its coverage.".to_string()
        }
        ToolCall::BoxPlot { page } => format!(
            "Here are the ward score box plots (page {page}). Wards are in rank order; a narrow box means the ranking is stable across methods."
        ),
        ToolCall::VariableMap { variable } => format!(
            "Here is the map of {} across wards. Darker wards have higher values.",
            pretty_variable(variable)
        ),
        ToolCall::UrbanExtentMap { threshold } => format!(
            "Here is the urban extent map: wards below {}% urban are drawn faint, the others are coloured by vulnerability category. The map's subtitle gives the counts on each side.",
            threshold.unwrap_or(50.0)
        ),
        ToolCall::CompositeMaps { page } => format!(
            "Here are the per-model composite score maps (page {page}), four models per page. Wards that are dark on every map are high-risk whichever variables are combined."
        ),
        ToolCall::RankingChart { .. } => {
            "Here is the ranking chart: one bar per ward in rank order, coloured by vulnerability category.".to_string()
        }
        _ => "Here is the result.".to_string(),
    };
    let _ = writeln!(out, "{intro}");
    for v in items {
        match (v.page, v.pages) {
            (Some(p), Some(n)) => {
                let _ = writeln!(out, "- {} (page {p} of {n}): {}", v.title, v.url);
            }
            _ => {
                let _ = writeln!(out, "- {}: {}", v.title, v.url);
            }
        }
    }
    out.trim_end().to_string()
}

fn top_wards_answer(
    n: u32,
    bottom: bool,
    decile: bool,
    method: RankingMethod,
    r: &TopWardsResult,
) -> String {
    let mut out = String::new();
    let which = if bottom { "lowest" } else { "highest" };
    let head = if decile {
        format!(
            "The {} tenth of wards ({} of {}) by {}",
            if bottom { "bottom" } else { "top" },
            r.wards.len(),
            r.total_wards,
            score_label(method)
        )
    } else {
        format!(
            "The {} {which}-risk wards (of {}) by {}",
            r.wards.len().min(n as usize),
            r.total_wards,
            score_label(method)
        )
    };
    let _ = writeln!(out, "{head}:");
    ward_table(&mut out, &r.wards);
    if !bottom {
        let _ = write!(
            out,
            "These wards should come first for interventions such as ITN distribution. Ask \"why is <ward> ranked high?\" to see what drives a ward's score."
        );
    } else {
        let _ = write!(
            out,
            "These wards have the lowest relative malaria risk in this dataset."
        );
    }
    out
}

fn drivers(d: &WardDetail) -> String {
    d.top_variables
        .iter()
        .take(5)
        .map(|c| match c.raw_value {
            Some(raw) => format!(
                "{} (value {}, {:.2} on the 0-1 risk scale)",
                pretty_variable(&c.variable),
                trim_float(raw),
                c.normalised
            ),
            None => format!(
                "{} ({:.2} on the 0-1 risk scale)",
                pretty_variable(&c.variable),
                c.normalised
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn ward_detail_answer(d: &WardDetail) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} is ranked {} of {} wards (composite score {:.3}, {}).",
        d.ward,
        ordinal(d.rank),
        d.total_wards,
        d.score,
        d.category
    );
    if !d.top_variables.is_empty() {
        let _ = writeln!(out, "What drives its score: {}.", drivers(d));
    }
    if let Some(pr) = d.pca_rank {
        let agree =
            (i64::from(pr) - i64::from(d.rank)).abs() <= i64::from(d.total_wards / 10).max(3);
        let _ = writeln!(
            out,
            "With PCA it ranks {}{}. {}",
            ordinal(pr),
            d.pca_score
                .map_or_else(String::new, |s| format!(" (score {s:.3})")),
            if agree {
                "Both methods agree, so this ranking is robust."
            } else if pr > d.rank {
                "PCA places it lower: its risk is broad and moderate rather than driven by a few strong factors."
            } else {
                "PCA places it higher: a few strongly correlated factors stand out here."
            }
        );
    }
    out.trim_end().to_string()
}

fn comparison_answer(a: &WardDetail, b: &WardDetail) -> String {
    let (higher, lower) = if a.rank <= b.rank { (a, b) } else { (b, a) };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} is at higher risk than {}: ranked {} vs {} of {} wards (composite score {:.3} vs {:.3}; {} vs {}).",
        higher.ward,
        lower.ward,
        ordinal(higher.rank),
        ordinal(lower.rank),
        higher.total_wards,
        higher.score,
        lower.score,
        higher.category,
        lower.category
    );
    for d in [a, b] {
        if !d.top_variables.is_empty() {
            let _ = writeln!(out, "{}: {}.", d.ward, drivers(d));
        }
    }
    out.trim_end().to_string()
}

/// The columns an answer describes: every named column but pandas' `Unnamed: N` row indexes.
fn described_columns(summary: &DataSummary) -> Vec<&str> {
    summary
        .column_names
        .iter()
        .filter(|n| !n.trim().is_empty() && !n.starts_with("Unnamed:"))
        .map(String::as_str)
        .collect()
}

fn data_summary_answer(d: &DataOverview) -> String {
    let mut out = String::new();
    let area = d
        .state_name
        .as_deref()
        .map_or_else(String::new, |s| format!(" for {s}"));
    let columns = described_columns(&d.summary);
    let numeric = columns.iter().filter(|c| d.summary.is_numeric(c)).count();
    let _ = writeln!(
        out,
        "Your data{area} has {} rows covering {} wards, with {} columns ({numeric} numeric).",
        thousands(d.summary.total_rows as u64),
        d.wards,
        columns.len()
    );
    let _ = writeln!(
        out,
        "Ward boundaries (shapefile): {}.",
        if d.shapefile_loaded {
            "loaded, so maps are available"
        } else {
            "not loaded - upload the shapefile zip to get maps"
        }
    );
    let _ = writeln!(out, "Variables:");
    for c in &columns {
        let _ = writeln!(
            out,
            "- {c} ({}, {:.0}% complete)",
            if d.summary.is_numeric(c) {
                "numeric"
            } else {
                "text"
            },
            d.summary.completeness(c)
        );
    }
    let gaps: Vec<&str> = columns
        .iter()
        .filter(|c| d.summary.completeness(c) < 100.0)
        .copied()
        .collect();
    if !gaps.is_empty() {
        let _ = writeln!(
            out,
            "Missing values in {} will be filled from neighbouring wards during the analysis.",
            gaps.join(", ")
        );
    }
    let _ = write!(
        out,
        "When you're ready, say \"run the malaria risk analysis\"."
    );
    out
}

/// Canned method explanations (they need no tool execution).
pub fn explain(topic: ExplainTopic, ctx: &SessionContext) -> String {
    let vars = if ctx.variables_used.is_empty() {
        String::new()
    } else {
        format!(
            " In your analysis the variables were: {}.",
            ctx.variables_used
                .iter()
                .map(|v| pretty_variable(v))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    match topic {
        ExplainTopic::Composite => format!(
            "The composite score ranks wards by combining their risk factors. Each variable is first rescaled to 0-1 so that 1 always means higher malaria risk (for protective factors such as housing quality or distance to water the scale is flipped). Every combination of two or more variables forms a model whose score is the average of its rescaled values, and a ward's composite score is the median over all models - so a ward scores high when many risk factors are high at once, whichever combination you look at. Wards are then ranked from highest to lowest score (rank 1 = most vulnerable) and grouped into risk categories.{vars}"
        ),
        ExplainTopic::Pca => format!(
            "Principal component analysis (PCA) is a second way to rank wards. It standardises the variables and finds the combinations that explain most of the differences between wards, then weights each variable by how much it contributes to those patterns. Where the composite score treats every variable equally, PCA lets the data decide the weights. When both methods rank a ward high, the priority is robust.{vars}"
        ),
        ExplainTopic::Imputation => "Missing values are filled before scoring so that no ward is dropped: a gap is filled with the average of the original values of the neighbouring wards (wards whose boundaries touch), and where a ward has no neighbours with data, with the average over all wards. Text columns take the most common value.".to_string(),
        ExplainTopic::Normalisation => "Normalisation puts variables measured in different units (rainfall in mm, test positivity as a share, distances in km) on one 0-1 scale: the lowest ward gets 0 and the highest 1. For variables where a higher value means lower risk (such as housing quality or distance to water) the inverse is rescaled instead, so 1 always means higher malaria risk.".to_string(),
        ExplainTopic::Itn => "Nets are allocated in order of risk rank. Each ward needs one net per 1.8 people and at least one net per household (population divided by the household size). The highest-risk ward is covered first, then the next, until the nets run out. With the rural-first strategy, wards below the urban threshold are served before urban wards, because transmission is usually higher in rural areas. The plan reports how many wards and people are covered and any nets left over.".to_string(),
        ExplainTopic::General => format!(
            "The analysis ranks wards by malaria risk in four steps: (1) fill missing values from neighbouring wards; (2) rescale every variable to 0-1 so that 1 means higher risk; (3) score each ward two ways - the composite score (the median over models that average the rescaled variables) and PCA (weights learned from the data); (4) rank the wards and group them into risk categories. Those rankings then drive maps and ITN planning.{vars}"
        ),
    }
}

/// What the assistant can do, adapted to where the session is.
pub fn capabilities(ctx: &SessionContext) -> String {
    match ctx.stage() {
        Stage::NoData if ctx.tpr_loaded => "Your health-facility export is loaded. Ask me to \"calculate TPR\" (I ask for the facility level, age group and test method), for \"the trend\" (worsening and improving wards), to \"reprioritise 10 wards\" or for \"missing data by year\". With the ward shapefile added in the \"Facility export (TPR)\" entry, the ward TPR becomes your ward data and is mapped; for the risk analysis upload ward data (CSV or Excel) with the shapefile, or the ward population.".to_string(),
        Stage::NoData => "I can help you prioritise wards for malaria interventions. To start, upload your ward data (CSV or Excel) and the ward boundaries (shapefile zip). Then I can:\n- summarise the data and its variables\n- run the malaria risk analysis (composite score and PCA)\n- show vulnerability maps and maps of any variable\n- plan ITN (bed net) distribution for the nets you have\n- explain how the method works\nIf you hold the monthly NMEP/DHIS2 health-facility testing export instead, upload it in the \"Facility export (TPR)\" entry (with the ward shapefile if you have no ward data): I then compute ward test positivity rates, their trends and the wards to reprioritise.".to_string(),
        Stage::PreAnalysis => "Your data is loaded. I can:\n- summarise it (\"what's in my data?\")\n- map a variable (\"map rainfall\")\n- explore it: \"describe rainfall by LGA\", \"correlate rainfall and tpr\", \"top 5 wards by rainfall\", \"wards with tpr above 0.5\", \"average of every variable per LGA\", \"missing values by LGA\", \"correlation heatmap\"\n- LGA views: \"rank the LGAs by tpr\", \"wards in Fagge LGA\"\n- run the malaria risk analysis (\"run the analysis\", optionally \"using rainfall and tpr\" or \"without elevation\")\n- explain the method (\"how is the composite score calculated?\")\nAfter the analysis you can see the vulnerability map, the highest-risk wards, why a ward ranks where it does, and plan ITN distribution.".to_string(),
        Stage::PostAnalysis => "The analysis is complete. You can ask me to:\n- show the vulnerability map (composite, PCA or both)\n- list the top or bottom wards (\"top 10 wards\", \"top decile\")\n- explain a ward (\"why is Zango ranked first?\") or compare two wards\n- plan ITN distribution (\"I have 120,000 nets\")\n- map a variable, show box plots, or download the results package\n- LGA views: \"rank the LGAs\", \"wards in Fagge LGA\", \"ITN totals per LGA\", \"urban extent map\"\n- explore the data: \"describe tpr by LGA\", \"correlate rainfall and tpr\", \"top 5 wards by rainfall in Dala\", \"wards with tpr above 0.5\", \"missing values by LGA\", \"correlation heatmap\", \"composite score maps\", \"ranking chart\"\n- explain the method".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::VariableContribution;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(120_000), "120,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn itn_answer_has_the_figures() {
        let call = ToolCall::PlanItn {
            total_nets: 120_000,
            avg_household_size: Some(5.0),
            urban_threshold: None,
            method: RankingMethod::Composite,
            strategy: None,
        };
        let outcome = ToolOutcome::Itn(ItnOutcome {
            stats: ItnStats {
                total_nets: 120_000,
                allocated: 118_500,
                remaining: 1_500,
                coverage_percent: 19.75,
                prioritized_wards: 42,
                fully_covered_wards: 40,
                partially_covered_wards: 2,
                reprioritized_wards: 0,
                total_population: 3_000_000,
                covered_population: 592_500,
                ward_coverage_stats: mrpt_table::WardCoverageStats {
                    avg_coverage_percent: 99.0,
                    min_coverage_percent: 60.0,
                    max_coverage_percent: 100.0,
                },
            },
            avg_household_size: Some(5.0),
            method: RankingMethod::Composite,
            map_url: Some("/itn_embed/abc".into()),
            lga_totals: vec![("Fagge".into(), 60_000, 12)],
        });
        let text = compose_answer(&call, &outcome, &SessionContext::default());
        for needle in [
            "118,500",
            "120,000",
            "42 wards",
            "592,500",
            "19.8%",
            "1,500",
            "/itn_embed/abc",
            "Fagge 60,000 (12 wards)",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn ward_detail_answer_names_rank_and_drivers() {
        let d = WardDetail {
            ward: "Zango".into(),
            rank: 1,
            total_wards: 66,
            category: "High Risk".into(),
            score: 0.702,
            pca_rank: Some(2),
            pca_score: Some(0.91),
            top_variables: vec![VariableContribution {
                variable: "test_positivity_rate".into(),
                raw_value: Some(0.62),
                normalised: 0.95,
            }],
        };
        let text = compose_answer(
            &ToolCall::WardDetail {
                ward: "Zango".into(),
            },
            &ToolOutcome::WardDetail(d),
            &SessionContext::default(),
        );
        assert!(text.contains("ranked 1st of 66"), "{text}");
        assert!(text.contains("test positivity rate"));
        assert!(text.contains("0.95"));
        assert!(text.contains("robust"));
    }

    #[test]
    fn errors_are_explained() {
        let text = compose_answer(
            &ToolCall::ExportPackage,
            &ToolOutcome::Error {
                message: "no analysis results".into(),
            },
            &SessionContext::default(),
        );
        assert!(text.contains("couldn't complete"));
        assert!(text.contains("no analysis results"));
    }
}
