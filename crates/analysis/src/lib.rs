//! mrpt-analysis: pure computation of malaria risk rankings and ITN plans.
//!
//! Owns: CSV↔shapefile ward-name matching, imputation (queen contiguity), variable selection,
//! direction and normalisation, composite and PCA scores, ranking, ITN allocation, and the
//! ordered output tables (`analysis.md` §1.5) a writer elsewhere turns into files.
//!
//! Must not depend on: any I/O (files, network, clock), tokio, or any other internal crate. Inputs
//! arrive as plain serde-able values ([`WardTable`], [`WardGeometry`], [`PopulationRow`]); the
//! caller reads files (mrpt-formats) and writes results.
//!
//! Flow for a caller:
//! 1. [`join_ward_names`] (table names vs shapefile names, §1.3) → rename the table's ward
//!    column to `names`, keep `geometry_index`.
//! 2. [`analyze`]`(&AnalysisInput, &AnalysisOptions) -> Result<AnalysisResult, Error>`.
//! 3. [`output_tables`] / [`output_json`] → the §1.5 files; `warnings` → the user.
//! 4. [`itn_rankings`] (or rows parsed from an old `analysis_vulnerability_rankings*.csv`),
//!    population rows (uploaded table, or [`population_from_table`]), then
//!    [`plan_itn`]`(&rankings, &population, &ItnOptions) -> Result<ItnPlan, Error>` and
//!    [`ItnPlan::allocation_table`].
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod composite;
mod contiguity;
mod error;
mod imputation;
mod itn;
mod linalg;
mod normalisation;
mod output;
mod pca;
mod pipeline;
mod ranking;
mod selection;
mod table;
mod text_match;
pub mod tpr;
mod unified;

pub use composite::{CompositeResult, MAX_VARIABLES, Model};
pub use contiguity::queen_neighbours;
pub use error::Error;
pub use imputation::{ImputationMethod, ImputationReport};
pub use itn::{
    AllocationRow, ItnOptions, ItnPlan, ItnRankingRow, ItnStats, MatchingReport, PopulationRow,
    RankingMethod, Strategy, WardCoverageStats, itn_rankings, itn_rankings_from_tables, plan_itn,
    population_from_table, population_rows_from_data,
};
pub use normalisation::{Direction, DirectionSource, NormalizedColumn, VariableDirection};
pub use output::{Cell, OutputColumn, OutputTable, output_json, output_tables, python_float_repr};
pub use pca::{ExplainedVariance, PcaCategories, PcaResult, PcaSuitability};
pub use pipeline::{
    AnalysisInput, AnalysisOptions, AnalysisResult, Warning, WarningKind, analyze,
    analyze_with_probe,
};
pub use ranking::{Category, RankedWard, categorize, rank_descending};
pub use selection::{Selection, SelectionMethod, VariableMatch};
pub use table::{Column, ColumnData, Polygon, WardGeometry, WardTable};
pub use text_match::{
    WardNameJoin, join_ward_names, normalize_ward_name, partial_ratio, sequence_ratio,
    token_sort_ratio,
};
pub use unified::{WardSpatial, unified_table};
