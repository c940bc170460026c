//! The per-option summaries shown at each step of the guided selection (tpr.md §3.2).

use std::collections::BTreeSet;

use mrpt_table::tpr::{
    AgeChoice, CountKind, FacilityExport, FacilityLevel, Indicator, LevelChoice, MethodChoice, Row,
    TestMethod,
};
use serde::Serialize;

use super::{Slots, Sums, method_counts, selected_state, tpr};
use crate::Error;

/// Counts are whole numbers in practice: written as integers when they are.
fn count<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// Both methods side by side (no combined TPR before the method is chosen).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodTotals {
    #[serde(serialize_with = "count")]
    pub rdt_tested: f64,
    #[serde(serialize_with = "count")]
    pub rdt_positive: f64,
    pub rdt_tpr: Option<f64>,
    #[serde(serialize_with = "count")]
    pub microscopy_tested: f64,
    #[serde(serialize_with = "count")]
    pub microscopy_positive: f64,
    pub microscopy_tpr: Option<f64>,
}

impl MethodTotals {
    fn from_sums(s: &Sums) -> MethodTotals {
        MethodTotals {
            rdt_tested: s.tested[0],
            rdt_positive: s.positive[0],
            rdt_tpr: tpr(s.positive[0], s.tested[0]),
            microscopy_tested: s.tested[1],
            microscopy_positive: s.positive[1],
            microscopy_tpr: tpr(s.positive[1], s.tested[1]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateSummary {
    pub state: String,
    pub facilities: usize,
    pub facility_months: usize,
    #[serde(flatten)]
    pub totals: MethodTotals,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelSummary {
    pub level: String,
    pub facilities: usize,
    pub facility_months: usize,
    #[serde(flatten)]
    pub totals: MethodTotals,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeSummary {
    pub level: String,
    pub age_group: String,
    /// Distinct facilities with at least one non-blank tested cell of that age.
    pub facilities_reporting: usize,
    #[serde(flatten)]
    pub totals: MethodTotals,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodSummary {
    pub level: String,
    pub age_group: String,
    pub method: String,
    pub wards_with_tpr: usize,
    pub wards_without_tests: usize,
    /// Wards where microscopy's TPR is the one shown.
    pub wards_microscopy_used: usize,
    #[serde(serialize_with = "count")]
    pub state_tested: f64,
    #[serde(serialize_with = "count")]
    pub state_positive: f64,
    pub state_tpr: Option<f64>,
    pub state_method_used: Option<String>,
}

/// Every summary of §3.2 for one state (all states when `None`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summaries {
    pub states: Vec<StateSummary>,
    pub facility_levels: Vec<LevelSummary>,
    pub age_groups: Vec<AgeSummary>,
    pub methods: Vec<MethodSummary>,
}

fn distinct_facilities<'a>(rows: impl Iterator<Item = &'a Row>) -> usize {
    rows.map(|r| r.facility).collect::<BTreeSet<_>>().len()
}

fn sums<'a>(rows: impl Iterator<Item = &'a Row>, slots: &Slots) -> Sums {
    let mut s = Sums::default();
    for r in rows {
        s.add(r, slots);
    }
    s
}

/// The summaries: states, levels within the state, ages within state + level, methods within
/// state + level + age (every level x age x method, so a client can show any step).
pub fn summaries(export: &FacilityExport, state: Option<&str>) -> Result<Summaries, Error> {
    let chosen = selected_state(export, state)?;
    let all = Slots::new(AgeChoice::AllAges);
    let states = export
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let rows = || export.rows.iter().filter(move |r| r.state == i as u32);
            StateSummary {
                state: s.name.clone(),
                facilities: distinct_facilities(rows()),
                facility_months: rows().count(),
                totals: MethodTotals::from_sums(&sums(rows(), &all)),
            }
        })
        .collect();
    let in_state = |r: &&Row| chosen.is_none_or(|s| r.state == s);
    let level_rows = |level: Option<FacilityLevel>| {
        export
            .rows
            .iter()
            .filter(in_state)
            .filter(move |r| level.is_none_or(|l| r.level == l))
    };
    let mut facility_levels = Vec::new();
    for level in FacilityLevel::ALL.map(Some).into_iter().chain([None]) {
        let n = level_rows(level).count();
        if n == 0 {
            continue;
        }
        facility_levels.push(LevelSummary {
            level: level.map_or("all", FacilityLevel::as_str).to_string(),
            facilities: distinct_facilities(level_rows(level)),
            facility_months: n,
            totals: MethodTotals::from_sums(&sums(level_rows(level), &all)),
        });
    }
    let mut age_groups = Vec::new();
    let mut methods = Vec::new();
    for level in LevelChoice::ALL {
        let rows: Vec<&Row> = export
            .rows
            .iter()
            .filter(in_state)
            .filter(|r| level.admits(r.level))
            .collect();
        if rows.is_empty() {
            continue;
        }
        for age in AgeChoice::ALL {
            let slots = Slots::new(age);
            let tested_slots: Vec<usize> = Indicator::all()
                .into_iter()
                .filter(|i| {
                    i.kind == CountKind::Tested
                        && match i.age {
                            Some(a) => age.ages().contains(&a),
                            None => age == AgeChoice::AllAges,
                        }
                })
                .map(|i| i.slot())
                .collect();
            let reporting = rows
                .iter()
                .filter(|r| tested_slots.iter().any(|s| !r.counts[*s].is_nan()))
                .map(|r| r.facility)
                .collect::<BTreeSet<_>>()
                .len();
            let state_sums = sums(rows.iter().copied(), &slots);
            age_groups.push(AgeSummary {
                level: level.as_str().into(),
                age_group: age.as_str().into(),
                facilities_reporting: reporting,
                totals: MethodTotals::from_sums(&state_sums),
            });
            let mut ward_sums = vec![Sums::default(); export.wards.len()];
            for r in rows.iter().filter(|r| r.has_ward()) {
                ward_sums[r.ward as usize].add(r, &slots);
            }
            for method in MethodChoice::ALL {
                let mut with = 0;
                let mut without = 0;
                let mut microscopy = 0;
                for s in ward_sums.iter().filter(|s| s.rows > 0) {
                    let c = method_counts(s, method);
                    if c.tpr.is_some() {
                        with += 1;
                    } else {
                        without += 1;
                    }
                    if c.method_used == Some(TestMethod::Microscopy) {
                        microscopy += 1;
                    }
                }
                let c = method_counts(&state_sums, method);
                methods.push(MethodSummary {
                    level: level.as_str().into(),
                    age_group: age.as_str().into(),
                    method: method.as_str().into(),
                    wards_with_tpr: with,
                    wards_without_tests: without,
                    wards_microscopy_used: microscopy,
                    state_tested: c.tested,
                    state_positive: c.positive,
                    state_tpr: c.tpr,
                    state_method_used: c.method_used.map(|m| m.as_str().to_string()),
                });
            }
        }
    }
    Ok(Summaries {
        states,
        facility_levels,
        age_groups,
        methods,
    })
}
