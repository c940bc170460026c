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

/// Totals of one state (tpr.md §3.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateSummary {
    /// The state's display name.
    pub state: String,
    /// Distinct facilities with rows.
    pub facilities: usize,
    /// Rows (facility-periods).
    pub facility_months: usize,
    /// Tests, positives and TPR of both methods, all ages.
    #[serde(flatten)]
    pub totals: MethodTotals,
}

/// Totals of one facility level (tpr.md §3.2), shown when the officer picks a level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelSummary {
    /// The level's name (`primary`, ..., `all`).
    pub level: String,
    /// Distinct facilities of that level.
    pub facilities: usize,
    /// Rows of that level.
    pub facility_months: usize,
    /// Tests, positives and TPR of both methods, all ages.
    #[serde(flatten)]
    pub totals: MethodTotals,
}

/// Totals of one age group at one level, shown when the officer picks the ages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeSummary {
    /// The level the figures are for.
    pub level: String,
    /// The age group's name (`u5`, ..., `all_ages`).
    pub age_group: String,
    /// Distinct facilities with at least one non-blank tested cell of that age.
    pub facilities_reporting: usize,
    /// Tests, positives and TPR of both methods for those ages.
    #[serde(flatten)]
    pub totals: MethodTotals,
}

/// What one method choice would give, shown when the officer picks the method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodSummary {
    /// The level the figures are for.
    pub level: String,
    /// The age group the figures are for.
    pub age_group: String,
    /// The method choice (`rdt`, `microscopy`, `both`).
    pub method: String,
    /// Wards with a defined TPR under this choice.
    pub wards_with_tpr: usize,
    /// Wards with rows but no tests under this choice.
    pub wards_without_tests: usize,
    /// Wards where microscopy's TPR is the one shown.
    pub wards_microscopy_used: usize,
    /// The state's tests under this choice.
    #[serde(serialize_with = "count")]
    pub state_tested: f64,
    /// The state's positives under this choice.
    #[serde(serialize_with = "count")]
    pub state_positive: f64,
    /// The state's TPR, percent (2 decimals); `None` without tests.
    pub state_tpr: Option<f64>,
    /// The method the state figure comes from (`rdt`/`microscopy`); `None` without tests.
    pub state_method_used: Option<String>,
}

/// Every summary of §3.2 for one state (all states when `None`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summaries {
    /// One per state.
    pub states: Vec<StateSummary>,
    /// One per level present, then `all`.
    pub facility_levels: Vec<LevelSummary>,
    /// One per (level, age group).
    pub age_groups: Vec<AgeSummary>,
    /// One per (level, age group, method).
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
