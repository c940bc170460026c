//! mrpt-formats: CSV, XLSX, shapefile zip and GeoParquet <-> in-memory tables.
//!
//! The only crate that depends on csv / parquet / zip / shapefile readers. Must not depend on any
//! other internal crate and does no analysis.
