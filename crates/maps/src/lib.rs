//! mrpt-maps: choropleth maps and charts as SVG inside self-contained HTML documents.
//!
//! Owns: projecting ward boundaries (WGS84 lon/lat) to SVG, simplifying and quantising them so
//! that national inputs stay small, colour classes and legends, tooltips, and the HTML shell
//! with its one inline stylesheet and one inline script (see [`content_security_policy`]).
//!
//! Must not depend on: any internal crate but the vocabulary crate `mrpt-table` (whose
//! geometry and ranking method it draws), the file system, the network, a clock or randomness.
//! Every function takes values and returns a `String`; the caller writes the file atomically
//! and serves it. Output is deterministic for a given input.
//!
//! The documents load nothing: no CDN, no fonts, no map tiles, no external URL at all. They work
//! offline and under [`content_security_policy`], which the server should send with them.
//! Tooltips: every ward's `<path>` (every chart row's `<g>`) carries a `data-i` attribute (its
//! index in the input) and an SVG `<title>`, which browsers show on hover; the script shows the
//! same text on tap. A map of several layers (side by side) keeps one copy of each boundary in a
//! hidden `<svg class="shapes">` (`<path id="s{i}">`) and draws `<use href="#s{i}" data-i="{i}">`.
//!
//! The ITN map's form posts to [`ITN_UPDATE_ENDPOINT`] with `fetch` (same origin, cookies
//! included), header `Content-Type: application/json`, body
//! `{"total_nets": int, "urban_threshold": number, "avg_household_size": number,
//! "method": "composite"|"pca", "strategy"?: string}`. On a 2xx answer with
//! `{"status":"success", "map_url"|"map_path": "/…"}` the page navigates there (same-origin
//! paths only); otherwise it shows `message` or `error` from the JSON body.

#![deny(missing_docs)]

mod charts;
mod colour;
mod csp;
mod geometry;
mod html;
mod input;
mod maps;
mod outline;
mod plots;
mod tpr;

pub use charts::{BOX_PLOT_PAGE_SIZE, render_box_plot, render_ranking_chart};
pub use csp::{SCRIPT, SCRIPT_SHA256, STYLE, STYLE_SHA256, content_security_policy};
pub use geometry::Projection;
pub use input::{
    BoxPlotInput, BoxWard, ItnLgaTotal, ItnSummary, ItnWard, MapInput, Vulnerability, WardInput,
};
pub use maps::{
    COMPOSITE_MAPS_PER_PAGE, ITN_UPDATE_ENDPOINT, lga_outline_arcs, render_composite_maps,
    render_itn_map, render_lga_map, render_side_by_side, render_urban_extent_map,
    render_variable_map, render_vulnerability_map,
};
pub use plots::{
    Point, render_bar_chart, render_box_by_category, render_correlation_heatmap, render_histogram,
    render_scatter,
};
pub use tpr::{
    TrendChartInput, TrendSeries, render_missingness_map, render_slope_map, render_tpr_map,
    render_trend_chart,
};

/// Why a map or chart could not be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The input holds no ward.
    #[error("there are no wards to draw")]
    NoWards,
    /// No ward has a geometry (every ward would be listed, none drawn).
    #[error("no ward has a boundary to draw")]
    NoGeometry,
    /// A vertex outside [-180, 180] x [-90, 90] or not finite: not WGS84 degrees.
    #[error("ward {ward:?} has an invalid coordinate ({lon}, {lat}); expected WGS84 degrees")]
    InvalidCoordinate {
        /// The ward's name.
        ward: String,
        /// The offending longitude.
        lon: f64,
        /// The offending latitude.
        lat: f64,
    },
    /// No ward carries the values this map draws (e.g. an ITN map without a plan).
    #[error("no ward has {what}")]
    MissingValues {
        /// What is missing, in words ("an ITN allocation").
        what: String,
    },
    /// A per-ward vector does not have one value per ward.
    #[error("{what}: expected {expected} values (one per ward), got {got}")]
    LengthMismatch {
        /// Which vector.
        what: &'static str,
        /// Number of wards.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// A box-plot page past the last one.
    #[error("page {page} does not exist; there are {pages} page(s), numbered from 1")]
    PageOutOfRange {
        /// The page asked for (1-based).
        page: usize,
        /// How many pages there are.
        pages: usize,
    },
    /// A rendering parameter out of range (an urban threshold outside 0-100, a household size <= 0).
    #[error("invalid {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}
