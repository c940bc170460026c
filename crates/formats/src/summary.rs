//! The `data_summary` of the upload response (api.md, chatmrpt-server.md E2), computed here and
//! typed by `mrpt-table` so the assistant reads back what the upload stored.

use std::collections::{BTreeMap, HashSet};

use mrpt_table::summary::{
    ColumnKind, Completeness, DataSummary, IssueKind, QualityAssessment, QualityIssue,
};
use mrpt_table::{BadCell, Cell, ColumnData, Table, parse_pandas_float};

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Summarises an uploaded table. `ward_column` is the detected ward-name column, if any.
pub fn summarize(table: &Table, ward_column: Option<usize>) -> DataSummary {
    let ward_column = ward_column.filter(|&i| i < table.n_columns());
    let rows = table.n_rows();
    let mut column_types = BTreeMap::new();
    let mut by_column = BTreeMap::new();
    let mut present_total = 0usize;
    let mut empty = Vec::new();
    let mut issues = Vec::new();
    for c in table.columns() {
        let missing = c.data.missing_count();
        present_total += rows - missing;
        by_column.insert(
            c.name.clone(),
            if rows == 0 {
                0.0
            } else {
                round2(100.0 * (rows - missing) as f64 / rows as f64)
            },
        );
        if rows > 0 && missing == rows {
            empty.push(c.name.clone());
        }
        let kind = match &c.data {
            ColumnData::Float(_) | ColumnData::Int(_) => ColumnKind::Numeric,
            ColumnData::Bool(_) => ColumnKind::Other,
            ColumnData::Text(v) => {
                let distinct: HashSet<&String> = v.iter().flatten().collect();
                if rows > 0 && (distinct.len() as f64) / (rows as f64) < 0.1 {
                    ColumnKind::Categorical
                } else {
                    ColumnKind::Text
                }
            }
        };
        column_types.insert(c.name.clone(), kind);
        if let ColumnData::Text(v) = &c.data
            && Some(c.name.as_str()) != ward_column.map(|i| table.columns()[i].name.as_str())
        {
            let present: Vec<(usize, &String)> = v
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
                .collect();
            let bad: Vec<BadCell> = present
                .iter()
                .filter(|(_, s)| parse_pandas_float(s).is_none())
                .take(20)
                .map(|(i, s)| BadCell {
                    row: i + 1,
                    value: (*s).clone(),
                })
                .collect();
            let numeric = present.len()
                - present
                    .iter()
                    .filter(|(_, s)| parse_pandas_float(s).is_none())
                    .count();
            if !bad.is_empty() && numeric * 2 >= present.len() {
                issues.push(QualityIssue {
                    kind: IssueKind::TextInNumericColumn,
                    message: format!(
                        "column `{}` is mostly numbers but some cells are text, so it cannot be analysed: {}",
                        c.name,
                        bad.iter().map(|b| format!("row {} {:?}", b.row, b.value)).collect::<Vec<_>>().join(", ")
                    ),
                    columns: vec![c.name.clone()],
                    cells: bad,
                });
            }
        }
    }
    if !empty.is_empty() {
        issues.insert(
            0,
            QualityIssue {
                kind: IssueKind::EmptyColumns,
                message: format!("empty columns: {}", empty.join(", ")),
                columns: empty,
                cells: vec![],
            },
        );
    }
    let mut seen = HashSet::new();
    let dup_rows = (0..rows)
        .filter(|&r| {
            let key: Vec<Option<String>> = table
                .columns()
                .iter()
                .map(|c| c.data.cell_text(r))
                .collect();
            !seen.insert(key)
        })
        .count();
    if dup_rows > 0 {
        issues.push(QualityIssue {
            kind: IssueKind::DuplicateRows,
            message: format!("{dup_rows} duplicate rows"),
            columns: vec![],
            cells: vec![],
        });
    }
    match ward_column {
        None => issues.push(QualityIssue {
            kind: IssueKind::MissingWardColumn,
            message: "no WardName column".into(),
            columns: vec![],
            cells: vec![],
        }),
        Some(i) => {
            let names = table.columns()[i].data.to_text();
            let mut seen = HashSet::new();
            let mut dups: Vec<String> = names
                .iter()
                .flatten()
                .filter(|n| !seen.insert(n.as_str()))
                .cloned()
                .collect();
            dups.sort();
            dups.dedup();
            if !dups.is_empty() {
                issues.push(QualityIssue {
                    kind: IssueKind::DuplicateWardNames,
                    message: format!("duplicate ward names: {}", dups.join(", ")),
                    columns: vec![table.columns()[i].name.clone()],
                    cells: vec![],
                });
            }
        }
    }
    let cells = rows * table.n_columns();
    let preview_rows = (0..rows.min(5))
        .map(|r| {
            table
                .columns()
                .iter()
                .map(|c| {
                    let v = match c.data.cell(r) {
                        Cell::Null => Cell::Text("N/A".into()),
                        cell => cell,
                    };
                    (c.name.clone(), v)
                })
                .collect()
        })
        .collect();
    DataSummary {
        total_rows: rows,
        total_columns: table.n_columns(),
        column_names: table.column_names(),
        column_types,
        data_completeness: Completeness {
            by_column,
            overall: if cells == 0 {
                0.0
            } else {
                round2(100.0 * present_total as f64 / cells as f64)
            },
        },
        data_quality_assessment: QualityAssessment {
            issues_found: issues.len(),
            quality_score: (100.0 - 20.0 * issues.len() as f64).max(0.0),
            issues,
        },
        preview_rows,
    }
}
