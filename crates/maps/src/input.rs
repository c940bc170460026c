//! What the caller hands in: wards with optional WGS84 boundaries and the values to draw.

use mrpt_table::{Geometry, ItnStrategy, RankingMethod};
use serde::{Deserialize, Serialize};

/// A ward's score, rank (1 = most vulnerable) and category for one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    pub score: f64,
    pub rank: u32,
    pub category: String,
}

/// A ward's line of the ITN plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnWard {
    /// `None` when the ward had no population and was excluded or given a mean population.
    #[serde(default)]
    pub population: Option<f64>,
    pub nets_needed: u64,
    pub nets_allocated: u64,
    pub coverage_percent: f64,
    /// e.g. "Full Coverage", "Rural Priority (Partial)"; empty when not allocated.
    #[serde(default)]
    pub phase: String,
    /// 1 = rural tier, 2 = urban surplus tier (rural-first strategy); `None` for the rank strategy.
    #[serde(default)]
    pub tier: Option<u8>,
    #[serde(default)]
    pub urban_pct: Option<f64>,
    /// People the ward's nets cover (the plan's `population_covered`); `None` when unknown.
    #[serde(default)]
    pub people_covered: Option<f64>,
}

/// One ward: its name, its boundary (if known) and whatever values exist for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WardInput {
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
    #[serde(default)]
    pub composite: Option<Vulnerability>,
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
    pub wards: Vec<WardInput>,
}

/// Plan-level figures and the parameters the ITN form is pre-filled with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItnSummary {
    pub total_nets: u64,
    pub allocated: u64,
    pub remaining: u64,
    /// Share of the population covered, in percent.
    pub coverage_percent: f64,
    pub avg_household_size: f64,
    pub urban_threshold: f64,
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
    pub lga: String,
    pub nets_allocated: u64,
    pub wards_with_nets: usize,
    /// People covered, when known.
    #[serde(default)]
    pub people_covered: Option<f64>,
}

/// Per-ward model scores for the box plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxWard {
    pub name: String,
    /// One score per composite model (`model_1…`); non-finite values are ignored.
    pub scores: Vec<f64>,
    #[serde(default)]
    pub rank: Option<u32>,
    #[serde(default)]
    pub category: Option<String>,
}

/// Input of [`crate::render_box_plot`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoxPlotInput {
    #[serde(default)]
    pub area: Option<String>,
    pub wards: Vec<BoxWard>,
}
