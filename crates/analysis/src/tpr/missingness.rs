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
    let mut by_lga: BTreeMap<(String, u32), Tally> = BTreeMap::new();
    let mut by_ward: BTreeMap<(String, String, u32), Tally> = BTreeMap::new();
    let mut periods: BTreeSet<(u16, u8)> = BTreeSet::new();
    let mut facilities: BTreeSet<u32> = BTreeSet::new();
    let mut lga_facilities: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    let mut lga_rows: BTreeMap<u32, usize> = BTreeMap::new();
    let mut year_rows: BTreeMap<u16, usize> = BTreeMap::new();
    for r in &rows {
        periods.insert((r.year, r.month));
        facilities.insert(r.facility);
        lga_facilities.entry(r.lga).or_default().insert(r.facility);
        *lga_rows.entry(r.lga).or_default() += 1;
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
        let lga = &export.lgas[r.lga as usize];
        add(by_lga.entry((lga.key.clone(), r.lga)).or_default());
        if r.has_ward() {
            let ward = &export.wards[r.ward as usize];
            add(by_ward
                .entry((lga.key.clone(), ward.key.clone(), r.ward))
                .or_default());
        }
    }
    let mut out = Vec::new();
    for &f in &fields {
        out.push(by_field[f].row("column", Indicator::all()[f].field_name()));
    }
    for (y, t) in &by_year {
        out.push(t.row("year", y.to_string()));
    }
    for ((_, l), t) in &by_lga {
        out.push(t.row("lga", export.lgas[*l as usize].name.clone()));
    }
    for ((lk, wk, _), t) in &by_ward {
        out.push(t.row("ward", format!("{lk}|{wk}")));
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
            facilities.len() * months,
            *present,
        ));
    }
    for (lk, l) in by_lga.keys() {
        let _ = lk;
        let expected = lga_facilities.get(l).map_or(0, BTreeSet::len) * periods.len();
        let present = lga_rows.get(l).copied().unwrap_or(0);
        out.push(reporting(
            "reporting_lga",
            export.lgas[*l as usize].name.clone(),
            expected,
            present,
        ));
    }
    Ok(out)
}
