//! mrpt-analysis: pure computation of malaria risk rankings and ITN plans.
//!
//! Owns: imputation, variable selection, normalisation, composite and PCA scores, ranking, ITN
//! allocation. No I/O, no tokio, no other internal crate.
