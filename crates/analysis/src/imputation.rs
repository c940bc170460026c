//! Missing values (§2.2): every column with a gap, before variable selection. Numeric columns
//! take the mean of the ward's queen neighbours' ORIGINAL values (so imputed neighbours never
//! feed each other), falling back to the column mean; text columns take the mode.

use serde::{Deserialize, Serialize};

use crate::contiguity::queen_neighbours;
use crate::linalg::{mean_present, pairwise_sum};
use mrpt_table::{ColumnData, Geometry, Table};

/// How the gaps of one column were filled (analysis.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImputationMethod {
    /// Neighbour mean where possible, column mean elsewhere.
    SpatialNeighbourMean,
    /// Column mean (no geometry, or the spatial step fixed nothing).
    ColumnMean,
    /// The column was entirely empty: filled with 0.
    Zero,
    /// Most frequent value (smallest on ties, like pandas `mode()[0]`).
    Mode,
    /// A text column with no value at all: filled with "Unknown".
    Unknown,
}

/// What happened to one column that had gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImputationReport {
    /// The column's name.
    pub column: String,
    /// How its gaps were filled.
    pub method: ImputationMethod,
    /// Cells filled in total.
    pub filled: usize,
    /// Of those, cells filled from neighbours (the rest from the column mean / mode).
    pub from_neighbours: usize,
}

/// Row-level neighbour lists: rows whose geometries share a vertex (or are the same geometry).
pub(crate) fn row_neighbours(
    geometries: &[Option<Geometry>],
    geometry_index: &[Option<usize>],
) -> Vec<Vec<usize>> {
    let geom_neighbours = queen_neighbours(geometries);
    let mut rows_of_geom: Vec<Vec<usize>> = vec![Vec::new(); geometries.len()];
    for (row, g) in geometry_index.iter().enumerate() {
        if let Some(g) = g
            && let Some(list) = rows_of_geom.get_mut(*g)
        {
            list.push(row);
        }
    }
    geometry_index
        .iter()
        .enumerate()
        .map(|(row, g)| {
            let Some(g) = g else { return Vec::new() };
            let Some(adjacent) = geom_neighbours.get(*g) else {
                return Vec::new();
            };
            let mut rows: Vec<usize> = std::iter::once(g)
                .chain(adjacent.iter())
                .flat_map(|gg| rows_of_geom[*gg].iter().copied())
                .filter(|&r| r != row)
                .collect();
            // Shapefile order, as libpysal lists neighbours of the shapefile-ordered merge; the
            // order of the summation decides the last bit of the mean.
            rows.sort_by_key(|&r| (geometry_index[r], r));
            rows.dedup();
            rows
        })
        .collect()
}

/// Fill every gap in `table` (the ward-name column excepted). `neighbours` is `None` when no
/// shapefile was given.
pub(crate) fn impute(
    table: &mut Table,
    ward_column: usize,
    neighbours: Option<&[Vec<usize>]>,
) -> Vec<ImputationReport> {
    let mut reports = Vec::new();
    for ci in 0..table.n_columns() {
        let column = &table.columns()[ci];
        if ci == ward_column || column.data.missing_count() == 0 {
            continue;
        }
        let name = column.name.clone();
        let (data, report) = match &column.data {
            ColumnData::Float(_) | ColumnData::Int(_) => {
                let original = column.data.to_f64().unwrap_or_default();
                let (filled, report) = impute_numeric(&name, &original, neighbours);
                (
                    ColumnData::Float(filled.into_iter().map(Some).collect()),
                    report,
                )
            }
            ColumnData::Text(values) => {
                let (filled, report) = impute_text(&name, values);
                (
                    ColumnData::Text(filled.into_iter().map(Some).collect()),
                    report,
                )
            }
            ColumnData::Bool(values) => {
                let texts: Vec<Option<String>> = values
                    .iter()
                    .map(|b| b.map(|b| if b { "True" } else { "False" }.to_string()))
                    .collect();
                let (filled, report) = impute_text(&name, &texts);
                let data = if report.method == ImputationMethod::Unknown {
                    ColumnData::Text(filled.into_iter().map(Some).collect())
                } else {
                    ColumnData::Bool(filled.iter().map(|s| Some(s == "True")).collect())
                };
                (data, report)
            }
        };
        // Same length by construction: every filled column has one value per row.
        if table.set_data(ci, data).is_ok() {
            reports.push(report);
        }
    }
    reports
}

fn impute_numeric(
    name: &str,
    original: &[Option<f64>],
    neighbours: Option<&[Vec<usize>]>,
) -> (Vec<f64>, ImputationReport) {
    let global = mean_present(original);
    let missing: Vec<usize> = (0..original.len())
        .filter(|&r| original[r].is_none())
        .collect();
    let mut out: Vec<f64> = original.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let mut from_neighbours = 0;
    let mut method = ImputationMethod::ColumnMean;
    if let Some(nb) = neighbours {
        let mut fixed_any = false;
        let mut updates = Vec::with_capacity(missing.len());
        for &r in &missing {
            let values: Vec<f64> = nb
                .get(r)
                .map(|list| list.iter().filter_map(|&s| original[s]).collect())
                .unwrap_or_default();
            if values.is_empty() {
                updates.push((r, global));
            } else {
                from_neighbours += 1;
                updates.push((r, Some(pairwise_sum(&values) / values.len() as f64)));
            }
        }
        for (r, v) in updates {
            if let Some(v) = v {
                out[r] = v;
                fixed_any = true;
            }
        }
        if fixed_any {
            method = ImputationMethod::SpatialNeighbourMean;
        }
    }
    if method == ImputationMethod::ColumnMean {
        let fill = match global {
            Some(g) => g,
            None => {
                method = ImputationMethod::Zero;
                0.0
            }
        };
        for &r in &missing {
            out[r] = fill;
        }
    }
    let report = ImputationReport {
        column: name.to_string(),
        method,
        filled: missing.len(),
        from_neighbours,
    };
    (out, report)
}

fn impute_text(name: &str, values: &[Option<String>]) -> (Vec<String>, ImputationReport) {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for v in values.iter().flatten() {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    // BTreeMap iterates in sorted order, so the first maximum is pandas' `mode()[0]`.
    let mut mode: Option<(&str, usize)> = None;
    for (k, c) in &counts {
        if mode.is_none_or(|(_, mc)| *c > mc) {
            mode = Some((k, *c));
        }
    }
    let (fill, method) = match mode {
        Some((m, _)) => (m.to_string(), ImputationMethod::Mode),
        None => ("Unknown".to_string(), ImputationMethod::Unknown),
    };
    let filled = values.iter().filter(|v| v.is_none()).count();
    let out = values
        .iter()
        .map(|v| v.clone().unwrap_or_else(|| fill.clone()))
        .collect();
    (
        out,
        ImputationReport {
            column: name.to_string(),
            method,
            filled,
            from_neighbours: 0,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrpt_table::Column;

    #[test]
    fn neighbour_mean_uses_original_values_only() {
        // Chain 0-1-2: rows 1 and 2 missing; row 2's only neighbour (1) is missing originally,
        // so it falls back to the column mean even though row 1 gets a value.
        let nb = vec![vec![1], vec![0, 2], vec![1], vec![]];
        let mut t = Table::new(vec![
            Column::new("WardName", ColumnData::Text(vec![Some("a".into()); 4])),
            Column::new(
                "v",
                ColumnData::Float(vec![Some(2.0), None, None, Some(4.0)]),
            ),
        ])
        .unwrap();
        let r = impute(&mut t, 0, Some(&nb));
        assert_eq!(r[0].method, ImputationMethod::SpatialNeighbourMean);
        assert_eq!(r[0].from_neighbours, 1);
        assert_eq!(
            t.columns()[1].data,
            ColumnData::Float(vec![Some(2.0), Some(2.0), Some(3.0), Some(4.0)])
        );
    }

    #[test]
    fn all_missing_numeric_becomes_zero_and_text_mode() {
        let mut t = Table::new(vec![
            Column::new("WardName", ColumnData::Text(vec![Some("a".into()); 3])),
            Column::new("v", ColumnData::Float(vec![None, None, None])),
            Column::new(
                "t",
                ColumnData::Text(vec![Some("b".into()), None, Some("a".into())]),
            ),
            Column::new("u", ColumnData::Text(vec![None, None, None])),
        ])
        .unwrap();
        let r = impute(&mut t, 0, None);
        assert_eq!(r[0].method, ImputationMethod::Zero);
        assert_eq!(t.columns()[1].data, ColumnData::Float(vec![Some(0.0); 3]));
        assert_eq!(
            t.columns()[2].data,
            ColumnData::Text(vec![Some("b".into()), Some("a".into()), Some("a".into())])
        );
        assert_eq!(r[2].method, ImputationMethod::Unknown);
    }
}
