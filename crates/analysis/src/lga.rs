//! LGAs (Local Government Areas) as a level of their own: which LGA each ward is in (from the
//! data, the shapefile or a user-supplied lookup), LGA aggregates of the ward table, the LGA
//! ranking and ITN plan totals per LGA.
//!
//! Aggregation rules (one place, documented in README):
//! - count columns (population, tests, nets, households, positives) are summed;
//! - rates (`rate`, `tpr`, `prevalence`, `per_capita`, `percent`, `pct`, `ratio`, `coverage`,
//!   `share` in the name) are sum/sum: Σ(rate·w)/Σw with w the tests column when there is one,
//!   else the population;
//! - any other numeric column is the mean, population-weighted when a population column exists;
//! - a ward without a weight (or without a value) is left out of that LGA's weighted figure.

use std::collections::HashMap;

use mrpt_table::{
    Cell, Column, ColumnData, Table, find_lga_column, find_ward_code_column, find_ward_column,
    lga_column_is_code,
};

use crate::error::Error;

/// Names of the population column, tried in order.
pub const POPULATION_COLUMNS: [&str; 6] = [
    "population",
    "Population",
    "POPULATION",
    "total_population",
    "TotalPopulation",
    "pop",
];

/// Names of a tests (denominator) column, tried in order.
pub const TESTS_COLUMNS: [&str; 6] = [
    "tested",
    "total_tested",
    "tests",
    "Tested",
    "TotalTested",
    "n_tested",
];

const RATE_WORDS: [&str; 10] = [
    "rate",
    "tpr",
    "prevalence",
    "per_capita",
    "percent",
    "pct",
    "ratio",
    "coverage",
    "share",
    "proportion",
];
const COUNT_WORDS: [&str; 8] = [
    "population",
    "tested",
    "tests",
    "positive",
    "nets_allocated",
    "nets_needed",
    "households",
    "cases",
];

/// How a column is aggregated to an LGA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Sum over the LGA's wards (counts: nets, households, cases).
    Sum,
    /// Σ(value·weight)/Σweight with the tests (or population) column as weight.
    Rate,
    /// Mean, population-weighted when there is a population column.
    Mean,
}

/// The rule above, by column name.
pub fn aggregation_of(name: &str) -> Aggregation {
    let lower = name.to_ascii_lowercase();
    if RATE_WORDS.iter().any(|w| lower.contains(w)) {
        Aggregation::Rate
    } else if COUNT_WORDS.iter().any(|w| lower.contains(w)) || lower == "pop" {
        Aggregation::Sum
    } else {
        Aggregation::Mean
    }
}

/// A user-supplied lookup: ward name → LGA, or LGA code → LGA name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LgaLookup {
    /// Normalised ward name → LGA name.
    pub by_ward: HashMap<String, String>,
    /// LGA code (as text, trimmed) → LGA name.
    pub by_code: HashMap<String, String>,
}

fn key(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl LgaLookup {
    /// Reads a lookup table: `WardName,LGA` (ward → LGA) and/or `LGACode,LGAName` (code →
    /// name). The LGA name column is the first LGA column that is not a code column.
    pub fn from_table(table: &Table) -> Result<LgaLookup, Error> {
        let found = || Error::BadLgaLookup {
            found: table.column_names(),
        };
        let cols = table.columns();
        let name_col = cols.iter().position(|c| {
            let lower = c.name.trim().to_ascii_lowercase();
            (lower == "lga" || lower == "lganame" || lower == "lga_name" || lower == "lga name")
                || (lower.contains("lga") && !lower.contains("code"))
        });
        let Some(name_col) = name_col else {
            return Err(found());
        };
        let names = cols[name_col].data.to_text();
        let code_col = cols.iter().position(|c| {
            c.name.to_ascii_lowercase().contains("lga")
                && c.name.to_ascii_lowercase().contains("code")
        });
        let ward_col = find_ward_column(table).filter(|&w| w != name_col);
        if code_col.is_none() && ward_col.is_none() {
            return Err(found());
        }
        let mut out = LgaLookup::default();
        if let Some(c) = code_col {
            for (code, name) in cols[c].data.to_text().iter().zip(&names) {
                if let (Some(code), Some(name)) = (code, name) {
                    out.by_code
                        .insert(code.trim().to_string(), name.trim().to_string());
                }
            }
        }
        if let Some(w) = ward_col {
            for (ward, name) in cols[w].data.to_text().iter().zip(&names) {
                if let (Some(ward), Some(name)) = (ward, name) {
                    out.by_ward.insert(key(ward), name.trim().to_string());
                }
            }
        }
        Ok(out)
    }
}

/// Where each ward's LGA came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LgaAssignment {
    /// One per table row; `None` when unknown.
    pub lgas: Vec<Option<String>>,
    /// The data column used, `"shapefile"` or `"lookup"`.
    pub source: String,
}

impl LgaAssignment {
    /// Distinct LGAs, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lgas.iter().flatten().cloned().collect();
        v.sort();
        v.dedup();
        v
    }

    /// Resolves a user's spelling of an LGA (case, spaces, a missing "LGA" suffix) or fails
    /// listing the LGAs there are.
    pub fn resolve(&self, asked: &str) -> Result<String, Error> {
        let names = self.names();
        let want = key(asked
            .trim()
            .trim_end_matches(" LGA")
            .trim_end_matches(" lga"));
        names
            .iter()
            .find(|n| key(n) == want)
            .or_else(|| {
                names
                    .iter()
                    .find(|n| key(n).starts_with(&want) && !want.is_empty())
            })
            .cloned()
            .ok_or_else(|| Error::UnknownLga {
                lga: asked.to_string(),
                lgas: names,
            })
    }

    /// Row indices of the wards in an LGA (already resolved).
    pub fn rows_of(&self, lga: &str) -> Vec<usize> {
        self.lgas
            .iter()
            .enumerate()
            .filter(|(_, l)| l.as_deref() == Some(lga))
            .map(|(i, _)| i)
            .collect()
    }
}

/// Each row's LGA: the data's LGA column first ([`find_lga_column`]); else `shapefile` (one per
/// row, e.g. the shapefile's LGA joined by ward); then codes are named and gaps filled from
/// `lookup`. `None` when nothing gives any row an LGA.
pub fn assign_lgas(
    table: &Table,
    shapefile: Option<&[Option<String>]>,
    lookup: Option<&LgaLookup>,
) -> Option<LgaAssignment> {
    let n = table.n_rows();
    let (mut lgas, mut source) = match find_lga_column(table) {
        Some(c) => (
            table.columns()[c].data.to_text(),
            table.columns()[c].name.clone(),
        ),
        None => match shapefile.filter(|s| s.len() == n) {
            Some(s) => (s.to_vec(), "shapefile".to_string()),
            None => (vec![None; n], "lookup".to_string()),
        },
    };
    for l in lgas.iter_mut() {
        if let Some(s) = l {
            let t = s.trim().to_string();
            *l = (!t.is_empty()).then_some(t);
        }
    }
    if let Some(lookup) = lookup {
        let wards = find_ward_column(table).map(|w| table.columns()[w].data.to_text());
        for (row, l) in lgas.iter_mut().enumerate() {
            if let Some(code) = l.as_ref()
                && let Some(name) = lookup.by_code.get(code)
            {
                *l = Some(name.clone());
                continue;
            }
            if l.is_none()
                && let Some(Some(w)) = wards.as_ref().and_then(|w| w.get(row))
                && let Some(name) = lookup.by_ward.get(&key(w))
            {
                *l = Some(name.clone());
            }
        }
    }
    if lgas.iter().all(Option::is_none) {
        return None;
    }
    let _ = &mut source;
    Some(LgaAssignment { lgas, source })
}

/// Each shapefile-attribute row's LGA, for [`assign_lgas`]'s `shapefile` argument once joined to
/// the table's rows. Uses the attribute table's own LGA column (codes are kept as codes).
pub fn shapefile_lgas(attributes: &Table) -> Option<Vec<Option<String>>> {
    find_lga_column(attributes).map(|c| attributes.columns()[c].data.to_text())
}

/// Joins the shapefile's LGA to the table's rows by ward code when both have one, else by
/// normalised ward name (the first shapefile row of a name wins).
pub fn join_shapefile_lgas(table: &Table, attributes: &Table) -> Option<Vec<Option<String>>> {
    join_shapefile_column(table, attributes, &shapefile_lgas(attributes)?)
}

/// One shapefile attribute per table row (`values` one per shapefile row), joined as
/// [`join_shapefile_lgas`] joins the LGA.
pub fn join_shapefile_column(
    table: &Table,
    attributes: &Table,
    values: &[Option<String>],
) -> Option<Vec<Option<String>>> {
    let by = |t: &Table, col: Option<usize>| col.map(|c| t.columns()[c].data.to_text());
    let (left, right) = match (
        by(table, find_ward_code_column(table)),
        by(attributes, find_ward_code_column(attributes)),
    ) {
        (Some(l), Some(r)) => (l, r),
        _ => (
            by(table, find_ward_column(table))?,
            by(attributes, find_ward_column(attributes))?,
        ),
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, k) in right.iter().enumerate() {
        if let Some(k) = k {
            index.entry(key(k)).or_insert(i);
        }
    }
    Some(
        left.iter()
            .map(|k| {
                k.as_ref()
                    .and_then(|k| index.get(&key(k)))
                    .and_then(|&i| values.get(i).cloned().flatten())
            })
            .collect(),
    )
}

/// Whether a column is the assignment's LGA codes (so a lookup could name them).
pub fn lgas_look_like_codes(table: &Table) -> bool {
    find_lga_column(table).is_some_and(|c| lga_column_is_code(table, c))
}

fn first_numeric(table: &Table, names: &[&str]) -> Option<(String, Vec<Option<f64>>)> {
    names.iter().find_map(|n| {
        table
            .column(n)
            .and_then(|c| c.data.to_f64().map(|v| (c.name.clone(), v)))
    })
}

/// The column that weights `column`'s LGA aggregate under the rules above (`None`: a sum, or a
/// plain mean because the table has no tests or population column).
pub fn weight_for(table: &Table, column: &str) -> Option<String> {
    let population = first_numeric(table, &POPULATION_COLUMNS).map(|(n, _)| n);
    let tests = first_numeric(table, &TESTS_COLUMNS).map(|(n, _)| n);
    match aggregation_of(column) {
        Aggregation::Sum => None,
        Aggregation::Rate => tests
            .filter(|n| n != column)
            .or(population)
            .filter(|n| n != column),
        Aggregation::Mean => population.filter(|n| n != column),
    }
}

/// Weighted or plain aggregate of `values` over `rows`.
fn aggregate(
    values: &[Option<f64>],
    rows: &[usize],
    how: Aggregation,
    weight: Option<&[Option<f64>]>,
) -> Option<f64> {
    let present = rows.iter().filter_map(|&r| {
        values
            .get(r)
            .copied()
            .flatten()
            .filter(|v| v.is_finite())
            .map(|v| (r, v))
    });
    match how {
        Aggregation::Sum => {
            let v: Vec<f64> = present.map(|(_, v)| v).collect();
            (!v.is_empty()).then(|| v.iter().sum())
        }
        Aggregation::Rate | Aggregation::Mean => match weight {
            Some(w) => {
                let (mut num, mut den) = (0.0, 0.0);
                for (r, v) in present {
                    if let Some(wt) = w
                        .get(r)
                        .copied()
                        .flatten()
                        .filter(|x| x.is_finite() && *x >= 0.0)
                    {
                        num += v * wt;
                        den += wt;
                    }
                }
                (den > 0.0).then(|| num / den)
            }
            None => {
                let v: Vec<f64> = present.map(|(_, v)| v).collect();
                crate::stats::mean(&v)
            }
        },
    }
}

/// One row per LGA (sorted by name): `LGA`, `wards`, then every numeric column of `table`
/// (except `skip`) aggregated by the rules of this module. A column named in `skip` (ranks,
/// row indexes, codes) is left out.
pub fn aggregate_by_lga(
    table: &Table,
    assignment: &LgaAssignment,
    skip: &[&str],
) -> Result<Table, Error> {
    let names = assignment.names();
    let groups: Vec<Vec<usize>> = names.iter().map(|n| assignment.rows_of(n)).collect();
    let mut out = Table::with_rows(names.len());
    out.push("LGA", ColumnData::texts(names.iter().cloned()))?;
    out.push(
        "wards",
        ColumnData::ints(groups.iter().map(|g| g.len() as i64)),
    )?;
    for c in table.columns() {
        let lower = c.name.to_ascii_lowercase();
        if skip.contains(&c.name.as_str())
            || lower.contains("rank")
            || lower.contains("code")
            || lower.starts_with("unnamed")
            || c.name.is_empty()
            || c.name == "X"
        {
            continue;
        }
        let Some(values) = c.data.to_f64() else {
            continue;
        };
        let how = aggregation_of(&c.name);
        let weight_values = weight_for(table, &c.name)
            .and_then(|w| table.column(&w))
            .and_then(|w| w.data.to_f64());
        let weight = weight_values.as_deref();
        let col: Vec<Option<f64>> = groups
            .iter()
            .map(|g| aggregate(&values, g, how, weight))
            .collect();
        out.push(c.name.clone(), ColumnData::Float(col))?;
    }
    Ok(out)
}

/// The LGA table ranked by one of its columns: `rank` (1 = highest when `descending`) first,
/// LGAs without a value last and unranked.
pub fn rank_lgas(aggregated: &Table, by: &str, descending: bool) -> Result<Table, Error> {
    let values = aggregated.numeric(by).map_err(|_| Error::UnknownColumn {
        column: by.to_string(),
        found: aggregated.column_names(),
    })?;
    let mut order: Vec<usize> = (0..aggregated.n_rows()).collect();
    order.sort_by(|&a, &b| match (values[a], values[b]) {
        (Some(x), Some(y)) => {
            if descending {
                y.total_cmp(&x)
            } else {
                x.total_cmp(&y)
            }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let mut ranked = aggregated.take_rows(&order);
    let ranks: Vec<Option<i64>> = order
        .iter()
        .enumerate()
        .map(|(k, &r)| values[r].map(|_| k as i64 + 1))
        .collect();
    ranked.insert(0, "rank", ColumnData::Int(ranks))?;
    Ok(ranked)
}

/// Per-LGA composite picture of an analysed (unified) table: wards, wards in each vulnerability
/// category, mean composite score (population-weighted when there is population) and mean rank;
/// ranked by the score (1 = most vulnerable LGA).
pub fn lga_vulnerability(table: &Table, assignment: &LgaAssignment) -> Result<Table, Error> {
    let names = assignment.names();
    let groups: Vec<Vec<usize>> = names.iter().map(|n| assignment.rows_of(n)).collect();
    let score = table
        .numeric("composite_score")
        .map_err(|_| Error::UnknownColumn {
            column: "composite_score".into(),
            found: table.column_names(),
        })?;
    let rank = table.numeric("composite_rank").ok();
    let category = table
        .column("vulnerability_category")
        .map(|c| c.data.to_text());
    let population = first_numeric(table, &POPULATION_COLUMNS);
    let mut out = Table::with_rows(names.len());
    out.push("LGA", ColumnData::texts(names.iter().cloned()))?;
    out.push(
        "wards",
        ColumnData::ints(groups.iter().map(|g| g.len() as i64)),
    )?;
    for cat in ["High Risk", "Medium Risk", "Low Risk"] {
        let counts = groups.iter().map(|g| {
            g.iter()
                .filter(|&&r| {
                    category
                        .as_ref()
                        .and_then(|c| c.get(r).cloned().flatten())
                        .is_some_and(|c| c == cat)
                })
                .count() as i64
        });
        out.push(
            format!("{} wards", cat.to_lowercase().replace(" risk", "_risk")),
            ColumnData::ints(counts),
        )?;
    }
    let weight = population.as_ref().map(|(_, w)| w.as_slice());
    out.push(
        "mean_composite_score",
        ColumnData::Float(
            groups
                .iter()
                .map(|g| aggregate(&score, g, Aggregation::Mean, weight))
                .collect(),
        ),
    )?;
    if let Some(rank) = rank {
        out.push(
            "mean_ward_rank",
            ColumnData::Float(
                groups
                    .iter()
                    .map(|g| aggregate(&rank, g, Aggregation::Mean, None))
                    .collect(),
            ),
        )?;
    }
    rank_lgas(&out, "mean_composite_score", true)
}

/// ITN plan totals per LGA from the plan's allocation table (`WardName`, `Population`,
/// `nets_needed`, `nets_allocated`, `population_covered`, as [`crate::ItnPlan::allocation_table`]
/// writes it): wards, wards given nets, nets allocated and needed, population and people
/// covered. `lga_of_ward` maps ward names to LGAs; wards without one are totalled under
/// "(no LGA)". Sorted by nets allocated, most first.
pub fn itn_by_lga(
    allocation: &Table,
    lga_of_ward: &HashMap<String, String>,
) -> Result<Table, Error> {
    let wards = allocation
        .column("WardName")
        .map(|c| c.data.to_text())
        .ok_or_else(|| Error::UnknownColumn {
            column: "WardName".into(),
            found: allocation.column_names(),
        })?;
    let num = |name: &str| -> Vec<f64> {
        allocation
            .column(name)
            .and_then(|c| c.data.to_f64())
            .map(|v| v.into_iter().map(|x| x.unwrap_or(0.0)).collect())
            .unwrap_or_else(|| vec![0.0; wards.len()])
    };
    let (population, needed, allocated, covered) = (
        num("Population"),
        num("nets_needed"),
        num("nets_allocated"),
        num("population_covered"),
    );
    let mut acc: HashMap<String, [f64; 6]> = HashMap::new();
    for (r, ward) in wards.iter().enumerate() {
        let lga = ward
            .as_ref()
            .and_then(|w| lga_of_ward.get(w))
            .cloned()
            .unwrap_or_else(|| "(no LGA)".to_string());
        let e = acc.entry(lga).or_insert([0.0; 6]);
        e[0] += 1.0;
        if allocated[r] > 0.0 {
            e[1] += 1.0;
        }
        e[2] += allocated[r];
        e[3] += needed[r];
        e[4] += population[r];
        e[5] += covered[r];
    }
    let mut order: Vec<(String, [f64; 6])> = acc.into_iter().collect();
    order.sort_by(|a, b| b.1[2].total_cmp(&a.1[2]).then(a.0.cmp(&b.0)));
    let col = |k: usize| -> Vec<f64> { order.iter().map(|(_, e)| e[k]).collect() };
    let mut out = Table::with_rows(order.len());
    out.push(
        "LGA",
        ColumnData::texts(order.iter().map(|(l, _)| l.clone())),
    )?;
    out.push(
        "wards",
        ColumnData::ints(col(0).into_iter().map(|v| v as i64)),
    )?;
    out.push(
        "wards_with_nets",
        ColumnData::ints(col(1).into_iter().map(|v| v as i64)),
    )?;
    out.push(
        "nets_allocated",
        ColumnData::ints(col(2).into_iter().map(|v| v as i64)),
    )?;
    out.push(
        "nets_needed",
        ColumnData::ints(col(3).into_iter().map(|v| v as i64)),
    )?;
    out.push("population", ColumnData::floats(col(4)))?;
    out.push("people_covered", ColumnData::floats(col(5)))?;
    Ok(out)
}

/// The LGA column appended (or replaced) on a copy of the table, for exports and maps.
pub fn with_lga_column(table: &Table, assignment: &LgaAssignment) -> Result<Table, Error> {
    let mut t = table.clone();
    if let Some(c) = find_lga_column(table)
        && table.columns()[c].name == "LGA"
    {
        t.set_data(c, ColumnData::Text(assignment.lgas.clone()))?;
        return Ok(t);
    }
    t.push("LGA", ColumnData::Text(assignment.lgas.clone()))?;
    Ok(t)
}

/// A cell as text for messages (`—` when missing).
pub fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Null => "\u{2014}".to_string(),
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) => format_number(*f),
        Cell::Bool(b) => b.to_string(),
        Cell::Text(t) => t.clone(),
    }
}

/// Numbers as an answer shows them: up to 4 significant decimals, thousands unseparated.
pub fn format_number(x: f64) -> String {
    if !x.is_finite() {
        return "\u{2014}".to_string();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{x:.0}");
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    }
}

/// A table's first `rows` rows as a compact text table (`|`-separated, header first).
pub fn text_table(table: &Table, rows: usize) -> String {
    let mut out = String::new();
    let names = table.column_names();
    out.push_str(&names.join(" | "));
    out.push('\n');
    for r in 0..table.n_rows().min(rows) {
        let cells: Vec<String> = table
            .columns()
            .iter()
            .map(|c| cell_text(&c.data.cell(r)))
            .collect();
        out.push_str(&cells.join(" | "));
        out.push('\n');
    }
    out
}

/// Builds a one-column-per-field table from rows of cells (all columns the same length).
pub fn table_from_columns(columns: Vec<(String, ColumnData)>) -> Result<Table, Error> {
    Ok(Table::new(
        columns
            .into_iter()
            .map(|(n, d)| Column::new(n, d))
            .collect(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wards() -> Table {
        Table::new(vec![
            Column::new("WardName", ColumnData::texts(["A", "B", "C", "D"])),
            Column::new("LGA", ColumnData::texts(["X", "X", "Y", "Y"])),
            Column::new("tpr", ColumnData::floats([0.5, 0.1, 0.2, 0.4])),
            Column::new("tested", ColumnData::floats([100.0, 300.0, 50.0, 50.0])),
            Column::new(
                "population",
                ColumnData::floats([1000.0, 3000.0, 2000.0, 2000.0]),
            ),
            Column::new("rainfall", ColumnData::floats([10.0, 20.0, 30.0, 50.0])),
        ])
        .unwrap()
    }

    #[test]
    fn hand_computed_lga_aggregates() {
        let t = wards();
        let a = assign_lgas(&t, None, None).unwrap();
        assert_eq!(a.source, "LGA");
        let agg = aggregate_by_lga(&t, &a, &[]).unwrap();
        assert_eq!(
            agg.column_names(),
            ["LGA", "wards", "tpr", "tested", "population", "rainfall"]
        );
        let tpr = agg.numeric("tpr").unwrap();
        // X: (0.5·100 + 0.1·300) / 400 = 0.2 (sum of positives over sum of tests); Y: 0.3.
        assert!((tpr[0].unwrap() - 0.2).abs() < 1e-15);
        assert!((tpr[1].unwrap() - 0.3).abs() < 1e-15);
        assert_eq!(agg.numeric("tested").unwrap(), [Some(400.0), Some(100.0)]);
        // Rainfall, population-weighted: X (10·1000 + 20·3000)/4000 = 17.5; Y 40.
        assert_eq!(agg.numeric("rainfall").unwrap(), [Some(17.5), Some(40.0)]);
        let ranked = rank_lgas(&agg, "tpr", true).unwrap();
        assert_eq!(
            ranked.column("LGA").unwrap().data.cell(0),
            Cell::Text("Y".into())
        );
        assert_eq!(ranked.column("rank").unwrap().data.cell(0), Cell::Int(1));
    }

    #[test]
    fn codes_are_named_by_a_lookup_and_unknown_lgas_list_the_known() {
        let t = Table::new(vec![
            Column::new("WardName", ColumnData::texts(["A", "B", "C"])),
            Column::new("LGACode", ColumnData::ints([20037, 20038, 20037])),
        ])
        .unwrap();
        let lookup = LgaLookup::from_table(
            &Table::new(vec![
                Column::new("LGACode", ColumnData::texts(["20037", "20038"])),
                Column::new("LGAName", ColumnData::texts(["Nassarawa", "Fagge"])),
            ])
            .unwrap(),
        )
        .unwrap();
        let a = assign_lgas(&t, None, Some(&lookup)).unwrap();
        assert_eq!(a.names(), ["Fagge", "Nassarawa"]);
        assert_eq!(a.resolve("fagge lga").unwrap(), "Fagge");
        assert_eq!(a.rows_of("Nassarawa"), [0, 2]);
        match a.resolve("Atlantis") {
            Err(Error::UnknownLga { lgas, .. }) => assert_eq!(lgas, ["Fagge", "Nassarawa"]),
            other => panic!("{other:?}"),
        }
        let by_ward = LgaLookup::from_table(
            &Table::new(vec![
                Column::new("WardName", ColumnData::texts(["a ", "B"])),
                Column::new("LGA", ColumnData::texts(["Dala", "Gwale"])),
            ])
            .unwrap(),
        )
        .unwrap();
        let plain = Table::new(vec![Column::new(
            "WardName",
            ColumnData::texts(["A", "B", "Q"]),
        )])
        .unwrap();
        let a = assign_lgas(&plain, None, Some(&by_ward)).unwrap();
        assert_eq!(a.lgas, [Some("Dala".into()), Some("Gwale".into()), None]);
        assert!(assign_lgas(&plain, None, None).is_none());
    }

    #[test]
    fn shapefile_lgas_join_by_ward_name() {
        let t = Table::new(vec![Column::new(
            "WardName",
            ColumnData::texts(["b", "A", "Z"]),
        )])
        .unwrap();
        let attrs = Table::new(vec![
            Column::new("WardName", ColumnData::texts(["A", "B"])),
            Column::new("LGACode", ColumnData::texts(["1", "2"])),
        ])
        .unwrap();
        assert_eq!(
            join_shapefile_lgas(&t, &attrs).unwrap(),
            [Some("2".to_string()), Some("1".to_string()), None]
        );
    }

    #[test]
    fn itn_totals_per_lga_by_hand() {
        let alloc = Table::new(vec![
            Column::new("WardName", ColumnData::texts(["A", "B", "C", "Z"])),
            Column::new("Population", ColumnData::floats([100.0, 200.0, 50.0, 10.0])),
            Column::new("nets_needed", ColumnData::ints([56, 112, 28, 6])),
            Column::new("nets_allocated", ColumnData::ints([56, 0, 28, 6])),
            Column::new(
                "population_covered",
                ColumnData::floats([100.0, 0.0, 50.0, 10.0]),
            ),
        ])
        .unwrap();
        let lgas: HashMap<String, String> = [("A", "X"), ("B", "X"), ("C", "Y")]
            .iter()
            .map(|(w, l)| (w.to_string(), l.to_string()))
            .collect();
        let t = itn_by_lga(&alloc, &lgas).unwrap();
        assert_eq!(
            t.column("LGA").unwrap().data.to_text(),
            [Some("X".into()), Some("Y".into()), Some("(no LGA)".into())]
        );
        assert_eq!(
            t.column("wards_with_nets").unwrap().data.cell(0),
            Cell::Int(1)
        );
        assert_eq!(
            t.column("nets_allocated").unwrap().data.cell(0),
            Cell::Int(56)
        );
        assert_eq!(
            t.column("nets_needed").unwrap().data.cell(0),
            Cell::Int(168)
        );
        assert_eq!(
            t.column("people_covered").unwrap().data.cell(1),
            Cell::Float(50.0)
        );
    }

    #[test]
    fn aggregation_rules_by_name() {
        assert_eq!(aggregation_of("test_positivity_rate"), Aggregation::Rate);
        assert_eq!(aggregation_of("nets_per_capita"), Aggregation::Rate);
        assert_eq!(aggregation_of("Population"), Aggregation::Sum);
        assert_eq!(aggregation_of("rainfall"), Aggregation::Mean);
    }
}
