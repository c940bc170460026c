//! Missingness by column, year, LGA and ward, and silent non-reporting (tpr.md §7).

use std::collections::{BTreeMap, BTreeSet};

use mrpt_table::tpr::{AGE_INDICATORS, FacilityExport, Indicator, MissingnessRow, round_half_even};

use super::selected_state;
use crate::Error;

#[derive(Default, Clone, Copy)]
struct Tally {
    cells: usize,
    missing: usize,
    cells_active: usize,
    missing_active: usize,
}

fn pct(missing: usize, cells: usize) -> Option<f64> {
    (cells > 0).then(|| round_half_even((missing as f64 / cells as f64) * 100.0, 2))
}

impl Tally {
    fn row(&self, scope: &str, key: String) -> MissingnessRow {
        MissingnessRow {
            scope: scope.into(),
            key,
            cells: self.cells,
            missing: self.missing,
            pct_missing: pct(self.missing, self.cells),
            cells_active: Some(self.cells_active),
            missing_active: Some(self.missing_active),
            pct_missing_active: pct(self.missing_active, self.cells_active),
        }
    }
}

/// The rows of `tpr_missingness.csv` over the rows of the state (all facility levels), for the
/// mapped age-specific indicator fields. A cell is missing when blank; `*_active` counts only
/// cells of facilities that report that field at least once in the file.
pub fn missingness(
    export: &FacilityExport,
    state: Option<&str>,
) -> Result<Vec<MissingnessRow>, Error> {
    let state = selected_state(export, state)?;
    let fields: Vec<usize> = (0..AGE_INDICATORS).filter(|s| export.present[*s]).collect();
    let rows: Vec<&mrpt_table::tpr::Row> = export
        .rows
        .iter()
        .filter(|r| state.is_none_or(|s| r.state == s))
        .collect();
    let mut active = vec![[false; AGE_INDICATORS]; export.facilities.len()];
    for r in &rows {
        for &f in &fields {
            if !r.counts[f].is_nan() {
                active[r.facility as usize][f] = true;
            }
        }
    }
    let mut by_field = vec![Tally::default(); AGE_INDICATORS];
    let mut by_year: BTreeMap<u16, Tally> = BTreeMap::new();
    // Dense by id (national exports have ~1M rows); sorted by keys when written.
    let mut by_lga = vec![Tally::default(); export.lgas.len()];
    let mut by_ward = vec![Tally::default(); export.wards.len()];
    let mut periods: BTreeSet<(u16, u8)> = BTreeSet::new();
    let mut last_period = None;
    let mut facility_seen = vec![false; export.facilities.len()];
    let mut lga_facilities: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    let mut last_pair = None;
    let mut lga_rows = vec![0usize; export.lgas.len()];
    let mut year_rows: BTreeMap<u16, usize> = BTreeMap::new();
    let mut ward_rows = vec![false; export.wards.len()];
    for r in &rows {
        if r.has_ward() {
            ward_rows[r.ward as usize] = true;
        }
        if last_period != Some((r.year, r.month)) {
            periods.insert((r.year, r.month));
            last_period = Some((r.year, r.month));
        }
        facility_seen[r.facility as usize] = true;
        if last_pair != Some((r.lga, r.facility)) {
            lga_facilities.entry(r.lga).or_default().insert(r.facility);
            last_pair = Some((r.lga, r.facility));
        }
        lga_rows[r.lga as usize] += 1;
        if let Some(y) = r.year() {
            *year_rows.entry(y).or_default() += 1;
        }
        let mut t = Tally::default();
        for &f in &fields {
            let missing = r.counts[f].is_nan();
            let is_active = active[r.facility as usize][f];
            let ft = &mut by_field[f];
            ft.cells += 1;
            ft.missing += missing as usize;
            ft.cells_active += is_active as usize;
            ft.missing_active += (missing && is_active) as usize;
            t.cells += 1;
            t.missing += missing as usize;
            t.cells_active += is_active as usize;
            t.missing_active += (missing && is_active) as usize;
        }
        let add = |acc: &mut Tally| {
            acc.cells += t.cells;
            acc.missing += t.missing;
            acc.cells_active += t.cells_active;
            acc.missing_active += t.missing_active;
        };
        if let Some(y) = r.year() {
            add(by_year.entry(y).or_default());
        }
        add(&mut by_lga[r.lga as usize]);
        if r.has_ward() {
            add(&mut by_ward[r.ward as usize]);
        }
    }
    let mut out = Vec::new();
    for &f in &fields {
        out.push(by_field[f].row("column", Indicator::all()[f].field_name()));
    }
    for (y, t) in &by_year {
        out.push(t.row("year", y.to_string()));
    }
    let mut lga_order: Vec<usize> = (0..by_lga.len()).filter(|l| lga_rows[*l] > 0).collect();
    lga_order.sort_by(|a, b| {
        let (x, y) = (&export.lgas[*a], &export.lgas[*b]);
        (x.key.as_str(), x.state).cmp(&(y.key.as_str(), y.state))
    });
    for &l in &lga_order {
        out.push(by_lga[l].row("lga", export.lgas[l].name.clone()));
    }
    let ward_key = |w: usize| {
        let ward = &export.wards[w];
        let lga = &export.lgas[ward.lga as usize];
        (lga.key.as_str(), ward.key.as_str(), lga.state)
    };
    let mut ward_order: Vec<usize> = (0..by_ward.len())
        .filter(|w| by_ward[*w].cells > 0 || ward_rows[*w])
        .collect();
    ward_order.sort_by(|a, b| ward_key(*a).cmp(&ward_key(*b)));
    for &w in &ward_order {
        let (lk, wk, _) = ward_key(w);
        out.push(by_ward[w].row("ward", format!("{lk}|{wk}")));
    }
    let reporting = |scope: &str, key: String, expected: usize, present: usize| MissingnessRow {
        scope: scope.into(),
        key,
        cells: expected,
        missing: expected.saturating_sub(present),
        pct_missing: pct(expected.saturating_sub(present), expected),
        cells_active: None,
        missing_active: None,
        pct_missing_active: None,
    };
    for (y, present) in &year_rows {
        let months = periods.iter().filter(|(py, _)| py == y).count();
        out.push(reporting(
            "reporting_year",
            y.to_string(),
            facility_seen.iter().filter(|s| **s).count() * months,
            *present,
        ));
    }
    for &l in &lga_order {
        let l32 = l as u32;
        let expected = lga_facilities.get(&l32).map_or(0, BTreeSet::len) * periods.len();
        let present = lga_rows[l];
        out.push(reporting(
            "reporting_lga",
            export.lgas[l].name.clone(),
            expected,
            present,
        ));
    }
    Ok(out)
}
