//! mrpt-table: the one vocabulary that the malaria crates share.
//!
//! Owns the ward table (columns, cells), the pandas-compatible float parsing and Python float
//! repr, the ward-name and ward-code column rules, the ward-name matcher, the geometry types and
//! the method/strategy enums, so that `mrpt-formats`, `mrpt-analysis`, `mrpt-maps`,
//! `mrpt-interpreter` and `mrpt-app` cannot drift apart.
//!
//! Must not do I/O and must not depend on any other internal crate (every leaf may depend on this
//! one); its only dependency is serde.

pub mod tpr;
