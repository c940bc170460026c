//! Ward test positivity rate from a facility export (tpr.md §4-§7): ward and ward x year TPR
//! with the max rule, burden per 1,000, trends, emerging/resolving hotspots, LGA rates, the
//! reprioritisation rule, missingness and the per-option summaries. Pure: the export comes in
//! read (mrpt-formats), the results go out as the row types of `mrpt_table::tpr`.

mod missingness;
mod summaries;
mod trend;

use std::collections::BTreeSet;

use mrpt_table::tpr::{
    AgeChoice, CountKind, FacilityExport, Hotspot, Indicator, LevelChoice, LgaRate, LgaTrend,
    MethodChoice, MethodCounts, Metric, ReprioritisedWard, Row, Selection, TestMethod, Thresholds,
    Trend, WardLink, WardTpr, WardYear, round_half_even,
};

pub use missingness::missingness;
pub use summaries::{AgeSummary, LevelSummary, MethodSummary, StateSummary, Summaries, summaries};
pub use trend::{Point, kendall, ols_slope, trend};

use crate::Error;

/// What to compute besides the selection.
#[derive(Debug, Clone, PartialEq)]
pub struct TprOptions {
    /// Which state, levels, ages, method and years.
    pub selection: Selection,
    /// Direction and hotspot thresholds (tpr.md §0.8).
    pub thresholds: Thresholds,
    /// The metric of the ward trends, hotspots and reprioritisation. TPR and (with a
    /// population) burden are always both computed per ward and year; LGA trends stay on TPR
    /// (LGAs have no population here).
    pub metric: Metric,
}

/// Everything §4-§6.5 produce for one selection.
#[derive(Debug, Clone, PartialEq)]
pub struct TprResult {
    /// "Test positivity rate, %, all ages, ..." (tpr.md §0.3), of `metric`.
    pub metric_label: String,
    /// The metric of the trends, hotspots and reprioritisation.
    pub metric: Metric,
    /// Distinct years of the selected rows, ascending.
    pub years: Vec<u16>,
    /// Wards with rows in the selection, sorted by (LGA key, ward key).
    pub wards: Vec<WardTpr>,
    /// For each entry of `wards`, its index in [`FacilityExport::wards`].
    pub export_ward: Vec<usize>,
    /// Ward x year rows, sorted like `wards` then by year.
    pub series: Vec<WardYear>,
    /// One per entry of `wards`.
    pub trends: Vec<Trend>,
    /// Emerging and resolving hotspots (§6.4).
    pub hotspots: Vec<Hotspot>,
    /// LGA rates: all years first (sorted by LGA key), then per year.
    pub lga_rates: Vec<LgaRate>,
    /// One per LGA with rows, on TPR (§6.5).
    pub lga_trends: Vec<LgaTrend>,
    /// The whole selection (state level) under the same rule.
    pub state: MethodCounts,
    /// Whether burden per 1,000 was computed (all ages with a population).
    pub has_burden: bool,
    /// Wards whose positives exceed their tests for the chosen method (TPR > 100).
    pub positives_exceed_tested: Vec<String>,
    /// Rows of the selection without a ward (kept in LGA and state totals).
    pub rows_without_ward: usize,
}

impl TprResult {
    /// The dataset's last year.
    pub fn last_year(&self) -> Option<u16> {
        self.years.last().copied()
    }

    /// Wards (display names) listed with no tests.
    pub fn wards_without_tests(&self) -> Vec<String> {
        self.wards
            .iter()
            .filter(|w| w.counts.tpr.is_none())
            .map(|w| w.ward_name.clone())
            .collect()
    }
}

/// Tests and positives of both methods for a group of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sums {
    tested: [f64; 2],
    positive: [f64; 2],
    rows: usize,
}

/// The count slots to add for each method under an age choice.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    tested: [Vec<usize>; 2],
    positive: [Vec<usize>; 2],
}

impl Slots {
    pub(crate) fn new(age: AgeChoice) -> Slots {
        let pick = |method: TestMethod, kind: CountKind| {
            let mut slots: Vec<usize> = age
                .ages()
                .iter()
                .map(|a| {
                    Indicator {
                        age: Some(*a),
                        method,
                        kind,
                    }
                    .slot()
                })
                .collect();
            if age == AgeChoice::AllAges {
                // The all-ages column is present only when no age-specific one is (read rule).
                slots.push(
                    Indicator {
                        age: None,
                        method,
                        kind,
                    }
                    .slot(),
                );
            }
            slots
        };
        Slots {
            tested: [
                pick(TestMethod::Rdt, CountKind::Tested),
                pick(TestMethod::Microscopy, CountKind::Tested),
            ],
            positive: [
                pick(TestMethod::Rdt, CountKind::Positive),
                pick(TestMethod::Microscopy, CountKind::Positive),
            ],
        }
    }
}

impl Sums {
    /// One row's tests and positives per method, to add to several groups.
    pub(crate) fn of_row(row: &Row, slots: &Slots) -> Sums {
        let mut s = Sums::default();
        s.add(row, slots);
        s
    }

    pub(crate) fn merge(&mut self, other: &Sums) {
        for m in 0..2 {
            self.tested[m] += other.tested[m];
            self.positive[m] += other.positive[m];
        }
        self.rows += other.rows;
    }

    pub(crate) fn add(&mut self, row: &Row, slots: &Slots) {
        for m in 0..2 {
            for &s in &slots.tested[m] {
                let v = row.counts[s];
                if !v.is_nan() {
                    self.tested[m] += v;
                }
            }
            for &s in &slots.positive[m] {
                let v = row.counts[s];
                if !v.is_nan() {
                    self.positive[m] += v;
                }
            }
        }
        self.rows += 1;
    }
}

/// `(P / T) * 100` rounded like Python, blank without tests (tpr.md §4.2-4.3).
pub fn tpr(positive: f64, tested: f64) -> Option<f64> {
    (tested > 0.0).then(|| round_half_even((positive / tested) * 100.0, 2))
}

/// `a * b >= c * d`, exactly for integral counts.
fn cross_ge(a: f64, b: f64, c: f64, d: f64) -> bool {
    let integral = |v: f64| v.fract() == 0.0 && v.abs() < 9.2e18;
    if [a, b, c, d].into_iter().all(integral) {
        (a as i128) * (b as i128) >= (c as i128) * (d as i128)
    } else {
        a * b >= c * d
    }
}

/// The method rule of tpr.md §4.2 applied to sums.
pub(crate) fn method_counts(s: &Sums, method: MethodChoice) -> MethodCounts {
    let (rt, rp, mt, mp) = (s.tested[0], s.positive[0], s.tested[1], s.positive[1]);
    let chosen = match method {
        MethodChoice::Rdt => TestMethod::Rdt,
        MethodChoice::Microscopy => TestMethod::Microscopy,
        MethodChoice::Both => match (rt > 0.0, mt > 0.0) {
            // RDT when P_rdt * T_mic >= P_mic * T_rdt (ties to RDT).
            (true, true) if cross_ge(rp, mt, mp, rt) => TestMethod::Rdt,
            (true, true) => TestMethod::Microscopy,
            (false, true) => TestMethod::Microscopy,
            _ => TestMethod::Rdt,
        },
    };
    let (t, p) = match chosen {
        TestMethod::Rdt => (rt, rp),
        TestMethod::Microscopy => (mt, mp),
    };
    let value = tpr(p, t);
    MethodCounts {
        tpr: value,
        tested: t,
        positive: p,
        method_used: value.map(|_| chosen),
        rdt_tested: rt,
        rdt_positive: rp,
        rdt_tpr: tpr(rp, rt),
        microscopy_tested: mt,
        microscopy_positive: mp,
        microscopy_tpr: tpr(mp, mt),
    }
}

/// The rows a selection reads: the state (all states when `None`), the level, the years.
pub(crate) fn selected_state(
    export: &FacilityExport,
    state: Option<&str>,
) -> Result<Option<u32>, Error> {
    match state {
        None => Ok(None),
        Some(name) => {
            let wanted = name.trim().to_lowercase();
            export
                .states
                .iter()
                .position(|s| s.name.to_lowercase() == wanted)
                .map(|i| Some(i as u32))
                .ok_or_else(|| Error::TprUnknownState {
                    state: name.to_string(),
                    states: export.states.iter().map(|s| s.name.clone()).collect(),
                })
        }
    }
}

fn row_selected(
    row: &Row,
    state: Option<u32>,
    level: LevelChoice,
    years: Option<(u16, u16)>,
) -> bool {
    state.is_none_or(|s| row.state == s)
        && level.admits(row.level)
        && years.is_none_or(|(a, b)| row.year().is_some_and(|y| y >= a && y <= b))
}

/// The metric label every answer, file and map carries (tpr.md §0.3).
pub fn metric_label(selection: &Selection, years: &[u16], burden: bool) -> String {
    let levels = match selection.level {
        LevelChoice::All => "all facility levels".to_string(),
        l => format!("{} facilities", l.as_str()),
    };
    let span = match (years.first(), years.last()) {
        (Some(a), Some(b)) if a == b => format!(", {a}"),
        (Some(a), Some(b)) => format!(", {a}–{b}"),
        _ => String::new(),
    };
    let head = if burden {
        "Malaria burden — confirmed cases per 1,000 population per year"
    } else {
        "Test positivity rate, %"
    };
    format!(
        "{head}, {}, {}, {levels}{span}",
        selection.age.label(),
        selection.method.label()
    )
}

/// Checks the selection against the export (tpr.md §0.4: refuse rather than invent).
fn check_selection(
    export: &FacilityExport,
    selection: &Selection,
    state: Option<u32>,
) -> Result<(), Error> {
    let level_rows = export
        .rows
        .iter()
        .filter(|r| state.is_none_or(|s| r.state == s) && selection.level.admits(r.level))
        .count();
    if level_rows == 0 {
        let mut present: Vec<String> = export
            .rows
            .iter()
            .filter(|r| state.is_none_or(|s| r.state == s))
            .map(|r| r.level.as_str().to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        present.push("all".into());
        return Err(Error::TprEmptyLevel {
            level: selection.level.as_str().into(),
            present,
        });
    }
    let methods: Vec<TestMethod> = match selection.method {
        MethodChoice::Rdt => vec![TestMethod::Rdt],
        MethodChoice::Microscopy => vec![TestMethod::Microscopy],
        MethodChoice::Both => TestMethod::ALL.to_vec(),
    };
    if !methods.iter().any(|m| export.has_pair(selection.age, *m)) {
        return Err(Error::TprNoPair {
            age: selection.age.as_str().into(),
            method: selection.method.as_str().into(),
            ambiguous: export
                .mapping
                .ambiguous
                .iter()
                .map(|a| a.column.clone())
                .collect(),
        });
    }
    Ok(())
}

/// Ward TPR, series, trends, hotspots and LGA rates for one selection.
///
/// `links` has one entry per [`FacilityExport::wards`] (empty = no shapefile, no population).
pub fn compute_tpr(
    export: &FacilityExport,
    links: &[WardLink],
    options: &TprOptions,
) -> Result<TprResult, Error> {
    let sel = &options.selection;
    let state = selected_state(export, sel.state.as_deref())?;
    check_selection(export, sel, state)?;
    let slots = Slots::new(sel.age);
    let years: Vec<u16> = {
        let mut seen = BTreeSet::new();
        for r in &export.rows {
            if row_selected(r, state, sel.level, sel.years)
                && let Some(y) = r.year()
            {
                seen.insert(y);
            }
        }
        seen.into_iter().collect()
    };
    let year_slot = |y: u16| years.binary_search(&y).ok();
    let ny = years.len();
    let nw = export.wards.len();
    let nl = export.lgas.len();
    let mut ward_sums = vec![Sums::default(); nw];
    let mut ward_year = vec![Sums::default(); nw * ny];
    let mut lga_sums = vec![Sums::default(); nl];
    let mut lga_year = vec![Sums::default(); nl * ny];
    let mut state_sums = Sums::default();
    // (group, facility) pairs, sorted and deduplicated below to count distinct facilities.
    let mut ward_fac: Vec<u64> = Vec::new();
    let mut ward_year_fac: Vec<u64> = Vec::new();
    let mut lga_fac: Vec<u64> = Vec::new();
    let mut lga_year_fac: Vec<u64> = Vec::new();
    let mut lga_wards: Vec<u64> = Vec::new();
    let mut rows_without_ward = 0;
    // Rows of one facility are usually consecutive: skip a pair equal to the last one pushed
    // (the sort and dedup below keep the counts exact either way).
    fn push_pair(v: &mut Vec<u64>, group: usize, member: u32) {
        let p = ((group as u64) << 32) | member as u64;
        if v.last() != Some(&p) {
            v.push(p);
        }
    }
    for r in &export.rows {
        if !row_selected(r, state, sel.level, sel.years) {
            continue;
        }
        let own = Sums::of_row(r, &slots);
        state_sums.merge(&own);
        let l = r.lga as usize;
        lga_sums[l].merge(&own);
        push_pair(&mut lga_fac, l, r.facility);
        let ys = r.year().and_then(year_slot);
        if let Some(ys) = ys {
            lga_year[l * ny + ys].merge(&own);
            push_pair(&mut lga_year_fac, l * ny + ys, r.facility);
        }
        if r.has_ward() {
            let w = r.ward as usize;
            ward_sums[w].merge(&own);
            push_pair(&mut ward_fac, w, r.facility);
            push_pair(&mut lga_wards, l, r.ward);
            if let Some(ys) = ys {
                ward_year[w * ny + ys].merge(&own);
                push_pair(&mut ward_year_fac, w * ny + ys, r.facility);
            }
        } else {
            rows_without_ward += 1;
        }
    }
    let chosen_tests = match sel.method {
        MethodChoice::Rdt => state_sums.tested[0],
        MethodChoice::Microscopy => state_sums.tested[1],
        MethodChoice::Both => state_sums.tested[0] + state_sums.tested[1],
    };
    if chosen_tests <= 0.0 {
        return Err(Error::TprNoTests {
            method: sel.method.as_str().into(),
            age: sel.age.as_str().into(),
            level: sel.level.as_str().into(),
        });
    }
    let ward_facilities = distinct_counts(ward_fac, nw);
    let ward_year_facilities = distinct_counts(ward_year_fac, nw * ny);
    let lga_facilities = distinct_counts(lga_fac, nl);
    let lga_year_facilities = distinct_counts(lga_year_fac, nl * ny);
    let lga_ward_counts = distinct_counts(lga_wards, nl);

    // The caller links the population of the selected ages (tpr.md §5), so burden is
    // computed for whichever age group has one.
    let link = |w: usize| links.get(w).cloned().unwrap_or_else(WardLink::unlinked);
    let years_count = ny as f64;
    let burden =
        |positive: f64, tested: f64, population: Option<f64>, per_years: f64| match population {
            Some(pop) if pop > 0.0 && tested > 0.0 => {
                let raw = (positive / (pop * per_years)) * 1000.0;
                Some((round_half_even(raw.min(1000.0), 2), raw > 1000.0))
            }
            _ => None,
        };

    // Wards with rows in the selection, sorted by keys.
    let mut order: Vec<usize> = (0..nw).filter(|w| ward_sums[*w].rows > 0).collect();
    let key = |w: usize| {
        let ward = &export.wards[w];
        let lga = &export.lgas[ward.lga as usize];
        (lga.key.as_str(), ward.key.as_str(), lga.state)
    };
    order.sort_by(|a, b| key(*a).cmp(&key(*b)));
    let mut wards = Vec::with_capacity(order.len());
    let mut series = Vec::new();
    let mut trends = Vec::with_capacity(order.len());
    let mut positives_exceed_tested = Vec::new();
    let mut hotspots = Vec::new();
    let last_year = years.last().copied();
    let burden_metric = options.metric == Metric::Burden;
    if burden_metric
        && !order
            .iter()
            .any(|&w| link(w).population.is_some_and(|p| p > 0.0))
    {
        return Err(Error::TprNoPopulation {
            age: sel.age.as_str().into(),
            columns: sel.age.population_columns().into(),
        });
    }
    let (direction_thr, hotspot_thr) = if burden_metric {
        (
            options.thresholds.burden_direction,
            options.thresholds.burden_hotspot,
        )
    } else {
        (options.thresholds.direction, options.thresholds.hotspot)
    };
    for (i, &w) in order.iter().enumerate() {
        let ward = &export.wards[w];
        let lga = &export.lgas[ward.lga as usize];
        let l = link(w);
        let counts = method_counts(&ward_sums[w], sel.method);
        let b = burden(
            counts.positive,
            counts.tested,
            l.burden_population,
            years_count,
        );
        if counts.positive > counts.tested && counts.tested > 0.0 {
            positives_exceed_tested.push(ward.name.clone());
        }
        let mut points = Vec::new();
        for (ys, &year) in years.iter().enumerate() {
            let s = &ward_year[w * ny + ys];
            if s.rows == 0 {
                continue;
            }
            let yc = method_counts(s, sel.method);
            let year_burden = burden(yc.positive, yc.tested, l.burden_population, 1.0).map(|b| b.0);
            let value = if burden_metric { year_burden } else { yc.tpr };
            if let Some(v) = value {
                points.push(Point {
                    year,
                    value: v,
                    method: yc.method_used,
                    tested: yc.tested,
                });
            }
            series.push(WardYear {
                ward: i,
                year,
                counts: yc,
                facilities: ward_year_facilities[w * ny + ys],
                facility_months: s.rows,
                burden: year_burden,
            });
        }
        // Emerging / resolving hotspots between the first and last year of the whole series.
        if let (Some(&first_year), Some(&latest_year)) = (years.first(), years.last())
            && first_year != latest_year
        {
            let at = |y: u16| points.iter().find(|p| p.year == y).map(|p| p.value);
            let thr = hotspot_thr;
            if let (Some(first), Some(latest)) = (at(first_year), at(latest_year)) {
                let emerging = first < thr && latest >= thr;
                if emerging || (first >= thr && latest < thr) {
                    hotspots.push(Hotspot {
                        ward: i,
                        emerging,
                        first_year,
                        latest_year,
                        first,
                        latest,
                    });
                }
            }
        }
        trends.push(trend::trend(&points, last_year, direction_thr));
        wards.push(WardTpr {
            ward_name: l.shape_name.clone().unwrap_or_else(|| ward.name.clone()),
            lga: lga.name.clone(),
            ward_code: l.code.clone(),
            data_ward_name: ward.name.clone(),
            lga_key: lga.key.clone(),
            ward_key: ward.key.clone(),
            match_kind: l.match_kind.clone(),
            counts,
            facilities: ward_facilities[w],
            facility_months: ward_sums[w].rows,
            population: l.population,
            burden: b.map(|b| b.0),
            burden_capped: b.is_some_and(|b| b.1),
        });
    }

    // LGA rates and trends.
    let mut lga_order: Vec<usize> = (0..nl).filter(|l| lga_sums[*l].rows > 0).collect();
    lga_order.sort_by(|a, b| {
        let (x, y) = (&export.lgas[*a], &export.lgas[*b]);
        (x.key.as_str(), x.state).cmp(&(y.key.as_str(), y.state))
    });
    let mut lga_rates = Vec::new();
    for &l in &lga_order {
        lga_rates.push(LgaRate {
            lga: l,
            year: None,
            counts: method_counts(&lga_sums[l], sel.method),
            wards: lga_ward_counts[l],
            facilities: lga_facilities[l],
            facility_months: lga_sums[l].rows,
        });
    }
    let mut lga_trends = Vec::new();
    for &l in &lga_order {
        let mut points = Vec::new();
        for (ys, &year) in years.iter().enumerate() {
            let s = &lga_year[l * ny + ys];
            if s.rows == 0 {
                continue;
            }
            let counts = method_counts(s, sel.method);
            if let Some(v) = counts.tpr {
                points.push(Point {
                    year,
                    value: v,
                    method: counts.method_used,
                    tested: counts.tested,
                });
            }
            lga_rates.push(LgaRate {
                lga: l,
                year: Some(year),
                counts,
                // The LGA's wards in the selection (the reference counts them per LGA, not per
                // year: a ward silent for a year still belongs to the LGA).
                wards: lga_ward_counts[l],
                facilities: lga_year_facilities[l * ny + ys],
                facility_months: s.rows,
            });
        }
        lga_trends.push(LgaTrend {
            lga: l,
            trend: trend::trend(&points, last_year, options.thresholds.direction),
        });
    }
    let has_burden = wards.iter().any(|w| w.burden.is_some());
    Ok(TprResult {
        metric_label: metric_label(sel, &years, burden_metric),
        metric: options.metric,
        years,
        export_ward: order,
        wards,
        series,
        trends,
        hotspots,
        lga_rates,
        lga_trends,
        state: method_counts(&state_sums, sel.method),
        has_burden,
        positives_exceed_tested,
        rows_without_ward,
    })
}

/// Distinct members per group from (group << 32 | member) pairs.
fn distinct_counts(mut pairs: Vec<u64>, groups: usize) -> Vec<usize> {
    pairs.sort_unstable();
    pairs.dedup();
    let mut counts = vec![0usize; groups];
    for p in pairs {
        counts[(p >> 32) as usize] += 1;
    }
    counts
}

/// The reprioritisation rule, stated verbatim in every answer (tpr.md §6.6).
pub fn reprioritisation_rule(n: usize, min_tested: f64, last_year: Option<u16>) -> String {
    let year = last_year.map_or("the last year".to_string(), |y| y.to_string());
    format!(
        "Top {n} wards to reprioritise: high now and rising fastest. Eligible wards have TPR in \
         {year} (the data's last year), at least two years of data and at least {min_tested} \
         tests in {year}. Each gets Rank_Latest (1 = highest TPR in {year}) and Rank_Slope \
         (1 = steepest rise, percentage points per year); Score = Rank_Latest + Rank_Slope, \
         lowest first; ties go to the higher latest TPR, then more tests."
    )
}

/// The §6.6 ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Reprioritisation {
    /// The rule, stated in words for every answer (§6.6).
    pub rule: String,
    /// The ranked wards, at most N.
    pub wards: Vec<ReprioritisedWard>,
    /// Wards (indices into the result's wards) left out for fewer than `min_tested` tests.
    pub excluded_low_tests: Vec<usize>,
}

/// Ranks the eligible wards and takes the top `n` (tpr.md §6.6).
pub fn reprioritise(result: &TprResult, n: usize, min_tested: f64) -> Reprioritisation {
    let last = result.last_year();
    let mut eligible = Vec::new();
    let mut excluded_low_tests = Vec::new();
    for (i, t) in result.trends.iter().enumerate() {
        let (Some(latest), Some(slope), Some(year)) = (t.latest, t.slope, t.latest_year) else {
            continue;
        };
        if Some(year) != last {
            continue;
        }
        let tested = t.tested_latest.unwrap_or(0.0);
        if tested < min_tested {
            excluded_low_tests.push(i);
            continue;
        }
        eligible.push((i, latest, slope, tested));
    }
    // Rank = 1 + number strictly higher: the position of the first equal value in a
    // descending sort.
    let rank_of = |values: Vec<f64>| -> Vec<usize> {
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        values
            .iter()
            .map(|v| 1 + sorted.partition_point(|x| x > v))
            .collect()
    };
    let rank_latest = rank_of(eligible.iter().map(|e| e.1).collect());
    let rank_slope = rank_of(eligible.iter().map(|e| e.2).collect());
    let mut scored: Vec<(usize, usize, usize, usize)> = (0..eligible.len())
        .map(|k| {
            (
                k,
                rank_latest[k],
                rank_slope[k],
                rank_latest[k] + rank_slope[k],
            )
        })
        .collect();
    scored.sort_by(|a, b| {
        let (ea, eb) = (&eligible[a.0], &eligible[b.0]);
        let (wa, wb) = (&result.wards[ea.0], &result.wards[eb.0]);
        a.3.cmp(&b.3)
            .then(eb.1.total_cmp(&ea.1))
            .then(eb.3.total_cmp(&ea.3))
            .then(wa.lga_key.cmp(&wb.lga_key))
            .then(wa.ward_key.cmp(&wb.ward_key))
    });
    let wards = scored
        .into_iter()
        .take(n)
        .enumerate()
        .map(|(p, (k, rl, rs, score))| {
            let (i, latest, slope, tested) = eligible[k];
            let t = &result.trends[i];
            ReprioritisedWard {
                priority: p + 1,
                ward: i,
                latest,
                slope,
                direction: t.direction,
                rank_latest: rl,
                rank_slope: rs,
                score,
                tested_latest: tested,
                years_count: t.years_count,
            }
        })
        .collect();
    Reprioritisation {
        rule: match result.metric {
            Metric::Tpr => reprioritisation_rule(n, min_tested, last),
            Metric::Burden => reprioritisation_rule(n, min_tested, last)
                .replace("TPR", "burden per 1,000")
                .replace("percentage points per year", "cases per 1,000 per year"),
        },
        wards,
        excluded_low_tests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(rt: f64, rp: f64, mt: f64, mp: f64) -> Sums {
        Sums {
            tested: [rt, mt],
            positive: [rp, mp],
            rows: 1,
        }
    }

    #[test]
    fn max_rule() {
        // Kano Dogon Nama: RDT 9,873/20,110 = 49.09 %, microscopy 1,222/2,351 = 51.98 %.
        let c = method_counts(&sums(20110.0, 9873.0, 2351.0, 1222.0), MethodChoice::Both);
        assert_eq!(c.method_used, Some(TestMethod::Microscopy));
        assert_eq!((c.tpr, c.tested, c.positive), (Some(51.98), 2351.0, 1222.0));
        assert_eq!(c.rdt_tpr, Some(49.09));
        // Ties go to RDT.
        let t = method_counts(&sums(10.0, 5.0, 20.0, 10.0), MethodChoice::Both);
        assert_eq!(t.method_used, Some(TestMethod::Rdt));
        // Only one method defined.
        let m = method_counts(&sums(0.0, 0.0, 20.0, 10.0), MethodChoice::Both);
        assert_eq!(m.method_used, Some(TestMethod::Microscopy));
        // Neither: blank TPR, counts 0, no method.
        let z = method_counts(&sums(0.0, 0.0, 0.0, 0.0), MethodChoice::Both);
        assert_eq!((z.tpr, z.method_used, z.tested), (None, None, 0.0));
        // A single method keeps both methods' columns.
        let r = method_counts(&sums(160.0, 23.0, 32.0, 1.0), MethodChoice::Rdt);
        assert_eq!((r.tpr, r.microscopy_tpr), (Some(14.37), Some(3.12)));
        let mic = method_counts(&sums(160.0, 23.0, 0.0, 0.0), MethodChoice::Microscopy);
        assert_eq!(
            (mic.tpr, mic.method_used, mic.rdt_tpr),
            (None, None, Some(14.37))
        );
    }

    #[test]
    fn exact_cross_comparison() {
        // 1/3 vs 33333333/100000000: products differ only in the last digits.
        assert!(!cross_ge(33_333_333.0, 3.0, 1.0, 100_000_000.0));
        assert!(cross_ge(1.0, 100_000_000.0, 33_333_333.0, 3.0));
    }

    /// One ward, one RDT u5 facility, one row a year: (year, tested, positive).
    fn one_ward_export(years: &[(u16, f64, f64)]) -> FacilityExport {
        use mrpt_table::tpr::{Facility, FacilityLevel, Lga, State, Ward};
        let mut present = [false; mrpt_table::tpr::INDICATOR_SLOTS];
        let tested = Indicator {
            age: Some(mrpt_table::tpr::Age::U5),
            method: TestMethod::Rdt,
            kind: CountKind::Tested,
        };
        let positive = tested.partner();
        present[tested.slot()] = true;
        present[positive.slot()] = true;
        let rows = years
            .iter()
            .map(|&(year, t, p)| {
                let mut counts = [f64::NAN; mrpt_table::tpr::INDICATOR_SLOTS];
                counts[tested.slot()] = t;
                counts[positive.slot()] = p;
                Row {
                    state: 0,
                    lga: 0,
                    ward: 0,
                    facility: 0,
                    year,
                    month: 0,
                    level: FacilityLevel::Primary,
                    counts,
                }
            })
            .collect();
        FacilityExport {
            states: vec![State {
                name: "Kano".into(),
            }],
            lgas: vec![Lga {
                state: 0,
                name: "Dala".into(),
                key: "dala".into(),
            }],
            wards: vec![Ward {
                lga: 0,
                name: "Adakawa".into(),
                key: "adakawa".into(),
            }],
            facilities: vec![Facility {
                id: "F1".into(),
                name: "F1".into(),
                level_cell: None,
                level: FacilityLevel::Primary,
                level_from_name: FacilityLevel::Primary,
            }],
            rows,
            present,
            ..Default::default()
        }
    }

    #[test]
    fn burden_trend_per_age_group_by_hand() {
        // Population of the under-fives 2,000. Positives 40, 60, 100 in 2021-2023 ->
        // burden 20, 30, 50 per 1,000 (P / Pop * 1000); OLS slope over the years =
        // ((-1)(-13.33) + 0 + (1)(16.67)) / 2 = 15 per 1,000 per year: worsening (>= 5).
        // Whole period: 200 / (2,000 * 3) * 1000 = 33.33.
        let export = one_ward_export(&[
            (2021, 100.0, 40.0),
            (2022, 100.0, 60.0),
            (2023, 200.0, 100.0),
        ]);
        let mut link = WardLink::unlinked();
        link.population = Some(10_000.0);
        link.burden_population = Some(2000.0);
        let options = TprOptions {
            selection: Selection {
                age: AgeChoice::U5,
                method: MethodChoice::Rdt,
                ..Default::default()
            },
            thresholds: Thresholds::default(),
            metric: Metric::Burden,
        };
        let r = compute_tpr(&export, &[link.clone()], &options).unwrap();
        assert_eq!(r.metric, Metric::Burden);
        assert!(
            r.metric_label.starts_with("Malaria burden"),
            "{}",
            r.metric_label
        );
        assert_eq!(r.wards[0].burden, Some(33.33));
        let yearly: Vec<Option<f64>> = r.series.iter().map(|s| s.burden).collect();
        assert_eq!(yearly, vec![Some(20.0), Some(30.0), Some(50.0)]);
        let t = &r.trends[0];
        assert_eq!(t.slope, Some(15.0));
        assert_eq!(t.direction, mrpt_table::tpr::Direction::Worsening);
        assert_eq!((t.first, t.latest), (Some(20.0), Some(50.0)));
        // The TPR trend of the same ward: 40, 60, 50 % -> slope 5 pp/yr.
        let tpr_trend = compute_tpr(
            &export,
            &[link],
            &TprOptions {
                metric: Metric::Tpr,
                ..options.clone()
            },
        )
        .unwrap();
        assert_eq!(tpr_trend.trends[0].slope, Some(5.0));
        // Burden without any population is refused, naming the column.
        let err = compute_tpr(&export, &[WardLink::unlinked()], &options).unwrap_err();
        assert!(err.to_string().contains("Population_u5"), "{err}");
    }

    #[test]
    fn tpr_divides_first() {
        assert_eq!(tpr(23.0, 160.0), Some(14.37));
        assert_eq!(tpr(0.0, 0.0), None);
        assert_eq!(tpr(5.0, 4.0), Some(125.0));
    }
}
