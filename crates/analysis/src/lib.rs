//! mrpt-analysis: pure computation of malaria risk rankings and ITN plans.
//!
//! Owns: imputation (queen contiguity), variable selection, direction and normalisation,
//! composite and PCA scores, ranking, ITN allocation, the spatial measures and the ordered output
//! tables (`analysis.md` §1.5) mrpt-formats writes.
//!
//! Also: LGA assignment and aggregates ([`lga`]), typed exploration of a ward table
//! ([`explore`]: describe, filter, group by, top N, correlate, missingness) and the statistics
//! under them ([`stats`], agreeing with pandas and scipy).
//!
//! Must not depend on: any I/O (files, network, clock), tokio, or any internal crate but the
//! vocabulary crate `mrpt-table`, whose tables, geometries, ward-name matcher and result types
//! it computes on.
//!
//! Flow for a caller:
//! 1. `mrpt_table::match_wards` (table names vs shapefile names, §1.3 steps 1-2) renames the
//!    table's wards and gives each row its geometry index.
//! 2. [`analyze`]`(&AnalysisInput, &AnalysisOptions) -> Result<AnalysisResult, Error>` (step 3,
//!    the duplicate-name fix, included).
//! 3. [`output_tables`] / [`pca_documents`] / [`unified_table`] → the §1.5 files; `warnings` →
//!    the user.
//! 4. [`itn_rankings_from_tables`] (from the rankings file and the unified dataset, this
//!    service's or the old system's) or [`itn_rankings`], population rows
//!    ([`population_rows_from_data`] on the population table, or [`population_from_table`]),
//!    then [`plan_itn`]`(&rankings, &population, &ItnOptions) -> Result<ItnPlan, Error>` and
//!    [`ItnPlan::allocation_table`].

#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod composite;
mod contiguity;
mod error;
pub mod explore;
mod imputation;
mod itn;
pub mod lga;
mod linalg;
mod normalisation;
mod output;
mod pca;
mod pipeline;
mod ranking;
mod selection;
mod spatial;
pub mod stats;
mod text_match;
pub mod tpr;
mod unified;

pub use composite::{CompositeResult, MAX_VARIABLES, Model, ScoreMatrix};
pub use contiguity::queen_neighbours;
pub use error::Error;
pub use imputation::{ImputationMethod, ImputationReport};
pub use itn::{
    AllocationRow, ItnOptions, ItnPlan, ItnRankingRow, MatchingReport, PopulationRow, itn_rankings,
    itn_rankings_from_tables, plan_itn, population_from_table, population_rows_from_data,
};
pub use normalisation::{Direction, DirectionSource, NormalizedColumn, VariableDirection};
pub use output::{
    CompositeScores, OutputTables, PcaDocuments, PcaTables, composite_scores, output_tables,
    pca_documents,
};
pub use pca::{ExplainedVariance, PcaCategories, PcaResult, PcaSuitability};
pub use pipeline::{
    AnalysisInput, AnalysisOptions, AnalysisResult, Warning, WarningKind, analyze,
    analyze_with_probe,
};
pub use ranking::{categorize, rank_descending};
pub use selection::{Selection, SelectionMethod, VariableMatch};
pub use spatial::WardSpatial;
pub use unified::{Unified, row_spatial, unified_columns, unified_table};
