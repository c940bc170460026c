//! Typed, deterministic exploration of a ward table (the unified table after analysis, else the
//! upload): describe, filter, group by, top N, correlate, missingness. Every answer is a
//! [`Table`] (shown as a short table in chat and written as CSV by the one CSV writer); a bad
//! request is an [`Error`] that lists what does exist.

use std::collections::BTreeMap;

pub use mrpt_table::explore::{Agg, FilterOp, MissingBy};
use mrpt_table::{Cell, ColumnData, Table};

use crate::error::Error;
use crate::stats::{self, Correlation, CorrelationMethod};

/// Rows grouped by a key: an LGA assignment or a text column (e.g. `vulnerability_category`).
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    /// Shown as the first column's header ("LGA", "vulnerability_category").
    pub name: String,
    /// Per table row, its group; `None` = the row belongs to no group and is left out.
    pub keys: Vec<Option<String>>,
}

impl Groups {
    /// Distinct keys in first-seen order... sorted, so answers do not depend on row order.
    pub fn distinct(&self) -> Vec<String> {
        let mut v: Vec<String> = self.keys.iter().flatten().cloned().collect();
        v.sort();
        v.dedup();
        v
    }

    fn rows(&self, key: &str) -> Vec<usize> {
        self.keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.as_deref() == Some(key))
            .map(|(i, _)| i)
            .collect()
    }

    /// A text column of the table as groups.
    pub fn from_column(table: &Table, column: &str) -> Result<Groups, Error> {
        let c = find_column(table, column)?;
        Ok(Groups {
            name: c.to_string(),
            keys: table
                .column(c)
                .map(|c| c.data.to_text())
                .unwrap_or_default(),
        })
    }
}

/// Numeric column names of a table.
pub fn numeric_columns(table: &Table) -> Vec<String> {
    table
        .columns()
        .iter()
        .filter(|c| c.data.is_numeric())
        .map(|c| c.name.clone())
        .collect()
}

/// Resolves a user's spelling of a column (exact, then case- and separator-insensitive) or
/// fails listing the columns.
pub fn find_column<'a>(table: &'a Table, asked: &str) -> Result<&'a str, Error> {
    let norm = |s: &str| s.trim().to_lowercase().replace([' ', '-', '.'], "_");
    let want = norm(asked);
    table
        .columns()
        .iter()
        .find(|c| c.name == asked)
        .or_else(|| table.columns().iter().find(|c| norm(&c.name) == want))
        .map(|c| c.name.as_str())
        .ok_or_else(|| Error::UnknownColumn {
            column: asked.to_string(),
            found: table.column_names(),
        })
}

/// A numeric column by a user's spelling, or why not (missing: lists columns; text: lists the
/// numeric ones).
pub fn numeric_column(table: &Table, asked: &str) -> Result<(String, Vec<Option<f64>>), Error> {
    let name = find_column(table, asked)?.to_string();
    let values = table
        .column(&name)
        .and_then(|c| c.data.to_f64())
        .ok_or_else(|| Error::NotNumeric {
            column: name.clone(),
            numeric: numeric_columns(table),
        })?;
    Ok((name, values))
}

fn opt_float(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// `describe(column[, by])`: one row (`all`) or one per group, with count, missing, mean, std,
/// min, 25%, 50%, 75%, max, as pandas' `describe()`.
pub fn describe(table: &Table, column: &str, by: Option<&Groups>) -> Result<Table, Error> {
    let (name, values) = numeric_column(table, column)?;
    let mut labels = Vec::new();
    let mut rows: Vec<stats::Describe> = Vec::new();
    match by {
        None => {
            labels.push("all".to_string());
            rows.push(stats::describe(&values));
        }
        Some(g) => {
            for key in g.distinct() {
                let sub: Vec<Option<f64>> = g.rows(&key).iter().map(|&r| values[r]).collect();
                labels.push(key);
                rows.push(stats::describe(&sub));
            }
        }
    }
    let mut t = Table::with_rows(rows.len());
    t.push(
        by.map_or("group".to_string(), |g| g.name.clone()),
        ColumnData::texts(labels),
    )?;
    t.push(
        "column",
        ColumnData::texts(rows.iter().map(|_| name.clone())),
    )?;
    t.push(
        "count",
        ColumnData::ints(rows.iter().map(|d| d.count as i64)),
    )?;
    t.push(
        "missing",
        ColumnData::ints(rows.iter().map(|d| d.missing as i64)),
    )?;
    type Get = fn(&stats::Describe) -> Option<f64>;
    let fields: [(&str, Get); 8] = [
        ("mean", |d| d.mean),
        ("std", |d| d.std),
        ("min", |d| d.min),
        ("25%", |d| d.q25),
        ("50%", |d| d.median),
        ("75%", |d| d.q75),
        ("max", |d| d.max),
        ("range", |d| d.max.zip(d.min).map(|(a, b)| a - b)),
    ];
    for (label, get) in fields {
        t.push(
            label,
            ColumnData::Float(rows.iter().map(|d| opt_float(get(d))).collect()),
        )?;
    }
    Ok(t)
}

/// Row indices where `column op value` holds. Numeric comparisons on a numeric column; `=`,
/// `!=` and `contains` on text compare case-insensitively. Missing cells never match.
pub fn filter(table: &Table, column: &str, op: FilterOp, value: &str) -> Result<Vec<usize>, Error> {
    let name = find_column(table, column)?;
    let Some(col) = table.column(name) else {
        return Err(Error::UnknownColumn {
            column: column.to_string(),
            found: table.column_names(),
        });
    };
    let rows = 0..table.n_rows();
    if let (Some(values), Ok(x)) = (col.data.to_f64(), value.trim().parse::<f64>()) {
        return Ok(rows
            .filter(|&r| {
                values[r].is_some_and(|v| match op {
                    FilterOp::Gt => v > x,
                    FilterOp::Ge => v >= x,
                    FilterOp::Lt => v < x,
                    FilterOp::Le => v <= x,
                    FilterOp::Eq => v == x,
                    FilterOp::Ne => v != x,
                    FilterOp::Contains => v.to_string().contains(value.trim()),
                })
            })
            .collect());
    }
    if col.data.is_numeric() && op != FilterOp::Contains {
        return Err(Error::InvalidArgument {
            name: "value",
            reason: format!("`{name}` is numeric; compare it with a number, not {value:?}"),
        });
    }
    if !matches!(op, FilterOp::Eq | FilterOp::Ne | FilterOp::Contains) {
        return Err(Error::InvalidArgument {
            name: "op",
            reason: format!(
                "`{name}` is a text column; use =, != or contains (numeric columns: {})",
                numeric_columns(table).join(", ")
            ),
        });
    }
    let want = value.trim().to_lowercase();
    let texts = col.data.to_text();
    Ok(rows
        .filter(|&r| {
            texts[r].as_ref().is_some_and(|t| {
                let t = t.trim().to_lowercase();
                match op {
                    FilterOp::Eq => t == want,
                    FilterOp::Ne => t != want,
                    _ => t.contains(&want),
                }
            })
        })
        .collect())
}

fn apply(agg: Agg, v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    match agg {
        Agg::Mean => stats::mean(v),
        Agg::Sum => (!v.is_empty()).then(|| v.iter().sum()),
        Agg::Median => stats::quantile_sorted(v, 0.5),
        Agg::Min => v.first().copied(),
        Agg::Max => v.last().copied(),
        Agg::Count => Some(v.len() as f64),
    }
}

/// `group_by(by, agg, columns)`: one row per group, `wards` then `<agg>_<column>` for each
/// column (every numeric column when `columns` is empty).
pub fn group_by(table: &Table, by: &Groups, agg: Agg, columns: &[String]) -> Result<Table, Error> {
    let names: Vec<String> = if columns.is_empty() {
        numeric_columns(table)
    } else {
        columns.to_vec()
    };
    let mut resolved = Vec::with_capacity(names.len());
    for n in &names {
        resolved.push(numeric_column(table, n)?);
    }
    let keys = by.distinct();
    let mut t = Table::with_rows(keys.len());
    t.push(by.name.clone(), ColumnData::texts(keys.iter().cloned()))?;
    let groups: Vec<Vec<usize>> = keys.iter().map(|k| by.rows(k)).collect();
    t.push(
        "wards",
        ColumnData::ints(groups.iter().map(|g| g.len() as i64)),
    )?;
    for (name, values) in resolved {
        let col: Vec<Option<f64>> = groups
            .iter()
            .map(|g| {
                let mut v: Vec<f64> = g
                    .iter()
                    .filter_map(|&r| values[r])
                    .filter(|x| x.is_finite())
                    .collect();
                apply(agg, &mut v)
            })
            .collect();
        t.push(format!("{}_{name}", agg.label()), ColumnData::Float(col))?;
    }
    Ok(t)
}

/// `top_n(by, n[, within rows])`: the rows with the highest (or lowest) values of `by`, best
/// first, missing values never listed. `within` restricts to some rows (an LGA's wards).
pub fn top_n(
    table: &Table,
    by: &str,
    n: usize,
    lowest: bool,
    within: Option<&[usize]>,
) -> Result<Vec<usize>, Error> {
    let (_, values) = numeric_column(table, by)?;
    let mut rows: Vec<usize> = match within {
        Some(w) => w.to_vec(),
        None => (0..table.n_rows()).collect(),
    };
    rows.retain(|&r| values.get(r).copied().flatten().is_some());
    rows.sort_by(|&a, &b| {
        let (x, y) = (values[a].unwrap_or(0.0), values[b].unwrap_or(0.0));
        if lowest {
            x.total_cmp(&y)
        } else {
            y.total_cmp(&x)
        }
        .then(a.cmp(&b))
    });
    rows.truncate(n);
    Ok(rows)
}

/// `correlate(a, b, method)` over complete pairs; both must be numeric.
pub fn correlate(
    table: &Table,
    a: &str,
    b: &str,
    method: CorrelationMethod,
) -> Result<(String, String, Correlation), Error> {
    let (an, av) = numeric_column(table, a)?;
    let (bn, bv) = numeric_column(table, b)?;
    let n = stats::complete_pairs(&av, &bv).0.len();
    let c = stats::correlate(&av, &bv, method).ok_or(Error::TooFewPairs {
        a: an.clone(),
        b: bn.clone(),
        n,
    })?;
    Ok((an, bn, c))
}

/// The correlation matrix of the given numeric columns (pairwise complete), `NaN`-free: a pair
/// that cannot be correlated is missing.
pub fn correlation_matrix(
    table: &Table,
    columns: &[String],
    method: CorrelationMethod,
) -> Result<Table, Error> {
    let mut values = Vec::with_capacity(columns.len());
    for c in columns {
        values.push(numeric_column(table, c)?);
    }
    let mut t = Table::with_rows(values.len());
    t.push(
        "variable",
        ColumnData::texts(values.iter().map(|(n, _)| n.clone())),
    )?;
    for (name, v) in &values {
        let col = values
            .iter()
            .map(|(_, w)| stats::correlate(v, w, method).map(|c| c.r))
            .collect();
        t.push(name.clone(), ColumnData::Float(col))?;
    }
    Ok(t)
}

/// Columns named like a year, tried in order.
pub const YEAR_COLUMNS: [&str; 5] = ["year", "Year", "YEAR", "period_year", "periodname"];

/// `missingness(by)`: per column (missing count and %), or per group (LGA / year): cells
/// missing out of all cells of the columns, and the column with most gaps.
pub fn missingness(table: &Table, by: MissingBy, groups: Option<&Groups>) -> Result<Table, Error> {
    let n = table.n_rows();
    match by {
        MissingBy::Column => {
            let mut t = Table::with_rows(table.n_columns());
            t.push("column", ColumnData::texts(table.column_names()))?;
            let missing: Vec<usize> = table
                .columns()
                .iter()
                .map(|c| c.data.missing_count())
                .collect();
            t.push(
                "missing",
                ColumnData::ints(missing.iter().map(|&m| m as i64)),
            )?;
            t.push(
                "missing_pct",
                ColumnData::floats(missing.iter().map(|&m| pct(m, n))),
            )?;
            Ok(t)
        }
        MissingBy::Lga | MissingBy::Year => {
            let g = match (by, groups) {
                (_, Some(g)) => g.clone(),
                (MissingBy::Year, None) => {
                    let c = YEAR_COLUMNS
                        .iter()
                        .find_map(|y| table.column(y))
                        .ok_or_else(|| Error::UnknownColumn {
                            column: "year".into(),
                            found: table.column_names(),
                        })?;
                    Groups {
                        name: c.name.clone(),
                        keys: c.data.to_text(),
                    }
                }
                _ => {
                    return Err(Error::NoLga {
                        found: table.column_names(),
                    });
                }
            };
            let keys = g.distinct();
            let mut cells = Vec::new();
            let mut missing = Vec::new();
            let mut worst: Vec<Option<String>> = Vec::new();
            let mut wards = Vec::new();
            for k in &keys {
                let rows = g.rows(k);
                let mut per: BTreeMap<&str, usize> = BTreeMap::new();
                let mut m = 0;
                for c in table.columns() {
                    let cm = rows.iter().filter(|&&r| c.data.is_missing(r)).count();
                    m += cm;
                    if cm > 0 {
                        per.insert(&c.name, cm);
                    }
                }
                wards.push(rows.len() as i64);
                cells.push((rows.len() * table.n_columns()) as i64);
                missing.push(m as i64);
                worst.push(
                    per.iter()
                        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                        .map(|(c, m)| format!("{c} ({m})")),
                );
            }
            let mut t = Table::with_rows(keys.len());
            t.push(g.name.clone(), ColumnData::texts(keys))?;
            t.push("wards", ColumnData::ints(wards))?;
            t.push("cells", ColumnData::ints(cells.iter().copied()))?;
            t.push("missing", ColumnData::ints(missing.iter().copied()))?;
            t.push(
                "missing_pct",
                ColumnData::floats(
                    missing
                        .iter()
                        .zip(&cells)
                        .map(|(&m, &c)| pct(m as usize, c as usize)),
                ),
            )?;
            t.push("most_missing", ColumnData::Text(worst))?;
            Ok(t)
        }
    }
}

fn pct(m: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        m as f64 / of as f64 * 100.0
    }
}

/// Each row's share of missing cells (0-100), for the missingness map.
pub fn row_missing_pct(table: &Table) -> Vec<Option<f64>> {
    let cols = table.n_columns();
    (0..table.n_rows())
        .map(|r| {
            let m = table
                .columns()
                .iter()
                .filter(|c| c.data.is_missing(r))
                .count();
            Some(pct(m, cols))
        })
        .collect()
}

/// Selected rows and columns of a table (the identifier columns first), for listing wards.
pub fn select(table: &Table, rows: &[usize], columns: &[&str]) -> Table {
    let picked = table.take_rows(rows);
    let mut t = Table::with_rows(rows.len());
    for c in columns {
        if let Some(col) = picked.column(c) {
            let _ = t.push(col.name.clone(), col.data.clone());
        }
    }
    t
}

/// A cell of a table by column name and row, `Null` when absent.
pub fn cell(table: &Table, column: &str, row: usize) -> Cell {
    table
        .column(column)
        .map_or(Cell::Null, |c| c.data.cell(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrpt_table::Column;

    fn t() -> Table {
        Table::new(vec![
            Column::new("WardName", ColumnData::texts(["A", "B", "C", "D", "E"])),
            Column::new("LGA", ColumnData::texts(["X", "X", "Y", "Y", "Y"])),
            Column::new(
                "rainfall",
                ColumnData::Float(vec![Some(1.0), Some(2.0), Some(3.0), None, Some(5.0)]),
            ),
            Column::new("tpr", ColumnData::floats([0.2, 0.1, 0.4, 0.3, 0.5])),
        ])
        .unwrap()
    }

    fn lga(table: &Table) -> Groups {
        Groups::from_column(table, "LGA").unwrap()
    }

    #[test]
    fn describe_all_and_by_group() {
        let t = t();
        let d = describe(&t, "Rainfall", None).unwrap();
        assert_eq!(cell(&d, "count", 0), Cell::Int(4));
        assert_eq!(cell(&d, "missing", 0), Cell::Int(1));
        assert_eq!(cell(&d, "mean", 0), Cell::Float(2.75));
        let g = describe(&t, "rainfall", Some(&lga(&t))).unwrap();
        assert_eq!(g.n_rows(), 2);
        assert_eq!(cell(&g, "mean", 0), Cell::Float(1.5));
        assert_eq!(cell(&g, "mean", 1), Cell::Float(4.0));
        match describe(&t, "elevation", None) {
            Err(Error::UnknownColumn { found, .. }) => assert!(found.contains(&"rainfall".into())),
            other => panic!("{other:?}"),
        }
        match describe(&t, "LGA", None) {
            Err(Error::NotNumeric { numeric, .. }) => assert_eq!(numeric, ["rainfall", "tpr"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters_numbers_and_text() {
        let t = t();
        assert_eq!(filter(&t, "tpr", FilterOp::Gt, "0.25").unwrap(), [2, 3, 4]);
        assert_eq!(filter(&t, "rainfall", FilterOp::Le, "2").unwrap(), [0, 1]);
        assert_eq!(filter(&t, "LGA", FilterOp::Eq, "x").unwrap(), [0, 1]);
        assert!(filter(&t, "LGA", FilterOp::Gt, "x").is_err());
        assert!(filter(&t, "tpr", FilterOp::Gt, "high").is_err());
    }

    #[test]
    fn group_by_and_top_n() {
        let t = t();
        let g = group_by(&t, &lga(&t), Agg::Sum, &["tpr".to_string()]).unwrap();
        let sums = g.numeric("sum_tpr").unwrap();
        assert!((sums[0].unwrap() - 0.3).abs() < 1e-12 && (sums[1].unwrap() - 1.2).abs() < 1e-12);
        let m = group_by(&t, &lga(&t), Agg::Median, &[]).unwrap();
        assert_eq!(
            m.numeric("median_rainfall").unwrap(),
            [Some(1.5), Some(4.0)]
        );
        assert_eq!(top_n(&t, "tpr", 2, false, None).unwrap(), [4, 2]);
        assert_eq!(
            top_n(&t, "rainfall", 2, true, Some(&[2, 3, 4])).unwrap(),
            [2, 4]
        );
    }

    #[test]
    fn correlate_refuses_text_and_lists_numeric() {
        let t = t();
        let (_, _, c) = correlate(&t, "rainfall", "tpr", CorrelationMethod::Pearson).unwrap();
        assert_eq!(c.n, 4);
        match correlate(&t, "rainfall", "WardName", CorrelationMethod::Pearson) {
            Err(e @ Error::NotNumeric { .. }) => assert!(e.to_string().contains("rainfall, tpr")),
            other => panic!("{other:?}"),
        }
        let m = correlation_matrix(
            &t,
            &["rainfall".into(), "tpr".into()],
            CorrelationMethod::Spearman,
        )
        .unwrap();
        match cell(&m, "rainfall", 0) {
            Cell::Float(r) => assert!((r - 1.0).abs() < 1e-12),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missingness_by_column_and_group() {
        let t = t();
        let c = missingness(&t, MissingBy::Column, None).unwrap();
        assert_eq!(cell(&c, "missing", 2), Cell::Int(1));
        assert_eq!(cell(&c, "missing_pct", 2), Cell::Float(20.0));
        let g = missingness(&t, MissingBy::Lga, Some(&lga(&t))).unwrap();
        // Y: 3 wards x 4 columns = 12 cells, 1 missing.
        assert_eq!(cell(&g, "cells", 1), Cell::Int(12));
        assert_eq!(cell(&g, "missing", 1), Cell::Int(1));
        assert_eq!(
            cell(&g, "most_missing", 1),
            Cell::Text("rainfall (1)".into())
        );
        assert!(missingness(&t, MissingBy::Year, None).is_err());
        assert_eq!(row_missing_pct(&t)[3], Some(25.0));
    }
}
