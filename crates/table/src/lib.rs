//! mrpt-table: the one vocabulary that the malaria crates share.
//!
//! Owns the ward table ([`Table`], [`Column`], [`ColumnData`], [`Cell`], [`WardTable`]), the
//! pandas-compatible float parsing and Python float repr, the ward-name and ward-code column
//! rules ([`find_ward_column`], [`WARD_CODE_COLUMNS`]), the LGA-column rule ([`find_lga_column`]), the one ward-name matcher
//! ([`match_ward_names`], [`match_wards`]) with the one difflib port ([`SequenceMatcher`]), the
//! geometry types ([`Geometry`], [`Polygon`], [`Ring`]), the method/strategy enums
//! ([`RankingMethod`], [`ItnStrategy`]) and the result vocabulary the analysis produces and the
//! other crates show ([`RankedWard`], [`ItnStats`], [`DataSummary`]), so that `mrpt-formats`,
//! `mrpt-analysis`, `mrpt-maps`, `mrpt-interpreter` and `mrpt-app` cannot drift apart.
//!
//! [`cancel`] is the one cancellation flag of a request's CPU work that the readers and the
//! analysis poll.
//!
//! Must not do I/O and must not depend on any other internal crate (every leaf may depend on this
//! one); its only dependencies are serde and ryu (the digits of the float repr).

#![deny(missing_docs)]

pub mod cancel;
pub mod difflib;
mod error;
pub mod explore;
mod float;
pub mod fuzz;
mod geometry;
pub mod matching;
mod method;
mod results;
pub mod summary;
mod table;
pub mod tpr;
mod view;
mod ward;

pub use difflib::{SequenceMatcher, close_matches, sequence_ratio};
pub use error::{BadCell, Error, Result};
pub use float::{PyFloat, parse_pandas_float, push_python_float_repr, python_float_repr};
pub use geometry::{Geometry, Polygon, Ring, signed_area};
pub use matching::{
    DuplicateNames, FuzzyMatch, MatchReport, NameHit, NameRule, WardMatch,
    fix_duplicate_ward_names, match_ward_names, match_wards,
};
pub use method::{ItnStrategy, RankingMethod};
pub use results::{Category, ItnStats, RankedWard, WardCoverageStats};
pub use summary::DataSummary;
pub use table::{Cell, Column, ColumnData, Table};
pub use view::{ColumnView, Strided, TableView};
pub use ward::{
    LGA_COLUMNS, WARD_CODE_COLUMNS, WardTable, find_lga_column, find_ward_code_column,
    find_ward_column, is_ward_name_header, lga_column_is_code,
};
