//! What the caller hands in: wards with optional WGS84 boundaries and the values to draw.

use mrpt_table::{Geometry, ItnStrategy, RankingMethod};
use serde::{Deserialize, Serialize};

/// A ward's score, rank (1 = most vulnerable) and category for one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    /// The method's score (higher = more vulnerable), shown in the tooltip.
    pub score: f64,
    /// 1-based rank, 1 = most vulnerable.
    pub rank: u32,
    /// `High Risk`, `Medium Risk` or `Low Risk`: picks the fill on category maps.
    pub category: String,
}

/// A ward's line of the ITN plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnWard {
    /// `None` when the ward had no population and was excluded or given a mean population.
    #[serde(default)]
    pub population: Option<f64>,
    /// Nets the ward needs to be fully covered (one per 1.8 people, at least one per household).
    pub nets_needed: u64,
    /// Nets it received (0 when not reached).
    pub nets_allocated: u64,
    /// Share of its need covered, percent 0-100.
    pub coverage_percent: f64,
    /// e.g. "Full Coverage", "Rural Priority (Partial)"; empty when not allocated.
    #[serde(default)]
    pub phase: String,
    /// 1 = rural tier, 2 = urban surplus tier (rural-first strategy); `None` for the rank strategy.
    #[serde(default)]
    pub tier: Option<u8>,
    /// Urban share of the ward, percent 0-100; `None` when the table has no urban column.
    #[serde(default)]
    pub urban_pct: Option<f64>,
    /// People the ward's nets cover (the plan's `population_covered`); `None` when unknown.
    #[serde(default)]
    pub people_covered: Option<f64>,
}

/// One ward: its name, its boundary (if known) and whatever values exist for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WardInput {
    /// The ward's name, shown in tooltips and the list of undrawn wards.
    pub name: String,
    /// `None` (or empty) when the ward has no boundary: it is listed under the map, not drawn.
    /// Coordinates are `[longitude, latitude]` in WGS84 degrees; ring orientation does not
    /// matter (even-odd fill) and a repeated closing point is ignored.
    #[serde(default)]
    pub geometry: Option<Geometry>,
    /// The ward's LGA: shown in every tooltip, and borders between wards of different LGAs are
    /// drawn as LGA outlines on every map.
    #[serde(default)]
    pub lga: Option<String>,
    /// The composite-score ranking; `None` when that method was not run for this ward.
    #[serde(default)]
    pub composite: Option<Vulnerability>,
    /// The PCA ranking; `None` when PCA was not run (or failed) for this ward.
    #[serde(default)]
    pub pca: Option<Vulnerability>,
    /// `None` when the ward is not in the ITN plan (e.g. no population match).
    #[serde(default)]
    pub itn: Option<ItnWard>,
}

impl WardInput {
    pub(crate) fn vulnerability(&self, method: RankingMethod) -> Option<&Vulnerability> {
        match method {
            RankingMethod::Composite => self.composite.as_ref(),
            RankingMethod::Pca => self.pca.as_ref(),
        }
    }
}

/// Everything the maps need; build it once per session and pass it to each renderer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MapInput {
    /// Shown in titles, e.g. "Kano". Optional.
    #[serde(default)]
    pub area: Option<String>,
    /// The wards, in any order; renderers keep this order for ties.
    pub wards: Vec<WardInput>,
}

/// Plan-level figures and the parameters the ITN form is pre-filled with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnSummary {
    /// Nets available.
    pub total_nets: u64,
    /// Nets allocated to wards.
    pub allocated: u64,
    /// Nets left over (`total_nets - allocated`).
    pub remaining: u64,
    /// Share of the population covered, in percent.
    pub coverage_percent: f64,
    /// People per household (each household gets at least one net); pre-fills the form.
    pub avg_household_size: f64,
    /// Urban share, percent 0-100, above which a ward waits for the urban tier; pre-fills the form.
    pub urban_threshold: f64,
    /// The ranking the plan followed.
    pub method: RankingMethod,
    /// The plan's strategy, posted back with the form; `None` leaves the choice to the server.
    #[serde(default)]
    pub strategy: Option<ItnStrategy>,
    /// The plan's totals per LGA (mrpt-analysis' `itn_by_lga`, the rows the answer and the
    /// export carry): each ward's tooltip names its LGA's; a ward in the plan whose LGA has no
    /// row (none of its wards is in the allocation table) shows zero. Empty when no LGA is
    /// known: then no tooltip names a total.
    #[serde(default)]
    pub lga_totals: Vec<ItnLgaTotal>,
}

/// One LGA's ITN totals, as computed with the plan (the map does not sum them again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnLgaTotal {
    /// The LGA's name, as the wards' `lga` spells it.
    pub lga: String,
    /// Nets the plan gives the LGA's wards.
    pub nets_allocated: u64,
    /// Wards of the LGA that received nets.
    pub wards_with_nets: usize,
    /// People covered, when known.
    #[serde(default)]
    pub people_covered: Option<f64>,
}

/// Per-ward model scores for the box plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxWard {
    /// The ward's name (x-axis label and tooltip).
    pub name: String,
    /// One score per composite model (`model_1…`); non-finite values are ignored.
    pub scores: Vec<f64>,
    /// Rank of the composite ranking, shown in the tooltip; `None` when unknown.
    #[serde(default)]
    pub rank: Option<u32>,
    /// Category label (`High Risk`...); picks the box's colour.
    #[serde(default)]
    pub category: Option<String>,
}

/// Input of [`crate::render_box_plot`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoxPlotInput {
    /// Shown in the title, e.g. "Kano".
    #[serde(default)]
    pub area: Option<String>,
    /// The wards, drawn in this order.
    pub wards: Vec<BoxWard>,
}
