//! Health-facility exports (NMEP/DHIS2) for ward test positivity rates (tpr.md): reading them
//! ([`read_facility_export`], [`read_csv_export`]), matching their wards to a shapefile
//! ([`match_tpr_wards`], [`attach_population`]) and writing the result files of tpr.md §8.1
//! ([`write`](mod@write)).

mod mapping;
mod matching;
mod read;
mod rules;
pub mod synth;
pub mod write;

pub use matching::{
    ShapeWard, attach_population, match_tpr_wards, population_for_age, shape_wards,
};
pub use read::{
    ReadOptions, level_from_cell, level_from_name, parse_period, read_csv_export,
    read_facility_export,
};
pub use rules::{IndicatorRule, classify_indicator, match_form, repair_header};
