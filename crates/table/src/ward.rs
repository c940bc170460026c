//! Which columns of a ward table mean what: the ward-name rule, the ward-code rule and pandas/R
//! row-index columns. Every crate asks these functions; none keeps its own list.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::table::{ColumnData, Table};

/// Ward-name column names, exact, in ChatMRPT's detection order.
const WARD_NAMES_EXACT: [&str; 4] = ["WardName", "ward_name", "Ward", "ward"];

/// Common spellings, compared with the column name trimmed and lower-cased.
const WARD_NAMES_LOOSE: [&str; 10] = [
    "wardname",
    "ward_name",
    "ward name",
    "ward_nm",
    "wardnm",
    "ward",
    "wards",
    "adm3_en",
    "adm3_name",
    "ward_name_",
];

/// The ward-code column names (analysis.md §1.3 `WardCode|ward_code|Ward_Code`, and the
/// upper/lower-case spellings shapefile attribute tables use), in the order they are tried.
pub const WARD_CODE_COLUMNS: [&str; 5] =
    ["WardCode", "ward_code", "Ward_Code", "WARDCODE", "wardcode"];

/// Whether a column's name alone says it holds ward names (the name part of
/// [`find_ward_column`]). Readers use it to recognise a header row.
pub fn is_ward_name_header(name: &str) -> bool {
    let loose = name.trim().to_ascii_lowercase();
    WARD_NAMES_EXACT.contains(&name) || WARD_NAMES_LOOSE.contains(&loose.as_str())
}

/// THE ward-name rule: an exact name first, in ChatMRPT's order (`WardName, ward_name, Ward,
/// ward`); then common spellings, whitespace and case ignored (`Ward Name`, `WARDNAME`,
/// `ward_name `, `adm3_en`...); then a text column whose name mentions ward or name and whose
/// values are more than 80 % distinct.
pub fn find_ward_column(table: &Table) -> Option<usize> {
    if let Some(i) = WARD_NAMES_EXACT.iter().find_map(|n| table.column_index(n)) {
        return Some(i);
    }
    let names = table.column_names();
    for want in WARD_NAMES_LOOSE {
        if let Some(i) = names
            .iter()
            .position(|n| n.trim().to_ascii_lowercase() == want)
        {
            return Some(i);
        }
    }
    let rows = table.n_rows();
    table.columns().iter().position(|c| {
        let lower = c.name.to_ascii_lowercase();
        if !(lower.contains("ward") || lower.contains("name")) {
            return false;
        }
        let ColumnData::Text(v) = &c.data else {
            return false;
        };
        let distinct: HashSet<&String> = v.iter().flatten().collect();
        rows > 0 && distinct.len() as f64 / rows as f64 > 0.8
    })
}

/// THE ward-code rule: the first of [`WARD_CODE_COLUMNS`] present.
pub fn find_ward_code_column(table: &Table) -> Option<usize> {
    WARD_CODE_COLUMNS.iter().find_map(|n| table.column_index(n))
}

/// LGA (Local Government Area) column names, exact, in the order they are tried: a name column
/// before a code column, DHIS2's `orgunitlevel3` last.
pub const LGA_COLUMNS: [&str; 12] = [
    "LGA",
    "LGAName",
    "lga",
    "lga_name",
    "LGA_Name",
    "LGA_NAME",
    "LGAName_x",
    "adm2_en",
    "ADM2_EN",
    "LGACode",
    "lga_code",
    "orgunitlevel3",
];

/// THE LGA rule: the first of [`LGA_COLUMNS`] present; then any column whose trimmed,
/// lower-cased name is `lga`, `lga name`, `lganame`, `lga_name`, `adm2_en`, `adm2_name`,
/// `lgacode` or `lga_code`. A name column is preferred to a code column.
pub fn find_lga_column(table: &Table) -> Option<usize> {
    if let Some(i) = LGA_COLUMNS.iter().find_map(|n| table.column_index(n)) {
        return Some(i);
    }
    const LOOSE: [&str; 9] = [
        "lga",
        "lga name",
        "lganame",
        "lga_name",
        "adm2_en",
        "adm2_name",
        "lgacode",
        "lga_code",
        "lga code",
    ];
    let names = table.column_names();
    LOOSE.iter().find_map(|want| {
        names
            .iter()
            .position(|n| n.trim().to_ascii_lowercase() == *want)
    })
}

/// Whether an LGA column holds codes rather than names (`LGACode`, `lga_code`, or every value a
/// number), so a lookup table should name them.
pub fn lga_column_is_code(table: &Table, column: usize) -> bool {
    let Some(c) = table.columns().get(column) else {
        return false;
    };
    let lower = c.name.to_ascii_lowercase();
    if lower.contains("code") {
        return true;
    }
    let texts = c.data.to_text();
    let mut any = false;
    for t in texts.iter().flatten() {
        any = true;
        if !t.trim().chars().all(|ch| ch.is_ascii_digit()) {
            return false;
        }
    }
    any
}

/// Leading columns before the ward column that are row indexes: pandas' `Unnamed: N`, R's `X`,
/// or an empty name.
fn find_index_columns(table: &Table, ward_column: usize) -> Vec<usize> {
    table
        .columns()
        .iter()
        .enumerate()
        .take(ward_column)
        .filter(|(_, c)| {
            c.name.is_empty() || c.name == "X" || c.name == "X.1" || c.name.starts_with("Unnamed: ")
        })
        .map(|(i, _)| i)
        .collect()
}

/// A ward-level table: the table plus which columns mean what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WardTableParts")]
pub struct WardTable {
    /// The table itself; the ward-name column is text.
    pub table: Table,
    /// Index of the ward-name column (always `ColumnData::Text`).
    pub ward_column: usize,
    /// Index of the ward-code column, if any.
    pub code_column: Option<usize>,
    /// Leading row-index columns written by pandas or R (`""`/`Unnamed: 0`, `X`): identifiers,
    /// never analysis variables.
    pub index_columns: Vec<usize>,
}

/// A ward table as serialised, checked on the way in (the column indexes must exist and the
/// ward column must hold text).
#[derive(Deserialize)]
struct WardTableParts {
    table: Table,
    ward_column: usize,
    code_column: Option<usize>,
    index_columns: Vec<usize>,
}

impl TryFrom<WardTableParts> for WardTable {
    type Error = Error;

    fn try_from(p: WardTableParts) -> Result<WardTable> {
        let n = p.table.n_columns();
        let text = p
            .table
            .columns()
            .get(p.ward_column)
            .is_some_and(|c| matches!(c.data, ColumnData::Text(_)));
        let in_range =
            p.code_column.is_none_or(|c| c < n) && p.index_columns.iter().all(|&c| c < n);
        if !text || !in_range {
            return Err(Error::NoWardColumn {
                found: p.table.column_names(),
            });
        }
        Ok(WardTable {
            table: p.table,
            ward_column: p.ward_column,
            code_column: p.code_column,
            index_columns: p.index_columns,
        })
    }
}

impl WardTable {
    /// Identifies the ward-name, ward-code and index columns of a table, or fails naming the
    /// columns found. The ward-name column is converted to text.
    pub fn from_table(mut table: Table) -> Result<Self> {
        let ward_column = find_ward_column(&table).ok_or_else(|| Error::NoWardColumn {
            found: table.column_names(),
        })?;
        let col = &table.columns()[ward_column];
        if !matches!(col.data, ColumnData::Text(_)) {
            let text = ColumnData::Text(col.data.to_text());
            table.set_data(ward_column, text)?;
        }
        let code_column = find_ward_code_column(&table);
        let index_columns = find_index_columns(&table, ward_column);
        Ok(WardTable {
            table,
            ward_column,
            code_column,
            index_columns,
        })
    }

    /// The ward-name column's header as the file spells it (`WardName`, `Ward Name`, `adm3_en`...).
    pub fn ward_column_name(&self) -> &str {
        &self.table.columns()[self.ward_column].name
    }

    /// The ward names (missing names are `None`).
    pub fn ward_names(&self) -> &[Option<String>] {
        match &self.table.columns()[self.ward_column].data {
            ColumnData::Text(v) => v,
            _ => &[],
        }
    }

    /// Replaces the ward names (same row count).
    pub fn set_ward_names(&mut self, names: Vec<Option<String>>) -> Result<()> {
        self.table
            .set_data(self.ward_column, ColumnData::Text(names))
    }

    /// Ward codes as text, when a code column exists.
    pub fn ward_codes(&self) -> Option<Vec<Option<String>>> {
        self.code_column
            .map(|i| self.table.columns()[i].data.to_text())
    }

    /// Names of the numeric columns that may be analysis variables: numeric, and neither the
    /// ward, code nor index columns.
    pub fn candidate_variables(&self) -> Vec<String> {
        self.table
            .columns()
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                c.data.is_numeric()
                    && *i != self.ward_column
                    && Some(*i) != self.code_column
                    && !self.index_columns.contains(i)
            })
            .map(|(_, c)| c.name.clone())
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::table::Column;

    fn table(names: &[&str]) -> Table {
        Table::new(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    Column::new(
                        *n,
                        ColumnData::texts([format!("a{i}"), format!("b{i}"), format!("c{i}")]),
                    )
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn exact_names_win_in_chatmrpt_order() {
        assert_eq!(
            find_ward_column(&table(&["ward", "Ward", "WardName"])),
            Some(2)
        );
        assert_eq!(find_ward_column(&table(&["LGA", "ward"])), Some(1));
    }

    #[test]
    fn spellings_people_use_are_ward_columns() {
        for name in [
            "Ward Name",
            "ward_name ",
            "WARDNAME",
            "adm3_en",
            "ADM3_NAME",
            " Wards",
        ] {
            assert_eq!(
                find_ward_column(&table(&["LGA", name])),
                Some(1),
                "{name:?}"
            );
            assert!(is_ward_name_header(name), "{name:?}");
        }
        assert!(!is_ward_name_header("LGA"));
    }

    #[test]
    fn lga_columns_are_found_names_before_codes() {
        assert_eq!(
            find_lga_column(&table(&["WardName", "LGACode", "LGA"])),
            Some(2)
        );
        assert_eq!(
            find_lga_column(&table(&["WardName", "orgunitlevel3"])),
            Some(1)
        );
        assert_eq!(
            find_lga_column(&table(&["WardName", " LGA Name "])),
            Some(1)
        );
        assert_eq!(find_lga_column(&table(&["WardName", "State"])), None);
        let t = Table::new(vec![
            Column::new("LGACode", ColumnData::ints([20037, 20038])),
            Column::new("LGA", ColumnData::texts(["Fagge", "Dala"])),
            Column::new("orgunitlevel3", ColumnData::texts(["10", "11"])),
        ])
        .unwrap();
        assert!(lga_column_is_code(&t, 0));
        assert!(!lga_column_is_code(&t, 1));
        assert!(lga_column_is_code(&t, 2));
    }

    #[test]
    fn falls_back_to_a_unique_name_column() {
        let t = Table::new(vec![
            Column::new("LGA", ColumnData::texts(["x", "x", "x"])),
            Column::new("ward_label_name", ColumnData::texts(["a", "b", "c"])),
        ])
        .unwrap();
        assert_eq!(find_ward_column(&t), Some(1));
        let t = Table::new(vec![Column::new("LGA", ColumnData::texts(["a", "b"]))]).unwrap();
        assert_eq!(find_ward_column(&t), None);
        match WardTable::from_table(t) {
            Err(Error::NoWardColumn { found }) => assert_eq!(found, ["LGA"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ward_table_identifies_code_and_index_columns() {
        let t = Table::new(vec![
            Column::new("Unnamed: 0", ColumnData::ints([0, 1])),
            Column::new("WardName", ColumnData::ints([7, 8])),
            Column::new("WARDCODE", ColumnData::ints([1, 2])),
            Column::new("tpr", ColumnData::floats([0.1, 0.2])),
        ])
        .unwrap();
        let w = WardTable::from_table(t).unwrap();
        assert_eq!(
            w.ward_names(),
            [Some("7".to_string()), Some("8".to_string())]
        );
        assert_eq!(w.code_column, Some(2));
        assert_eq!(w.index_columns, [0]);
        assert_eq!(w.candidate_variables(), ["tpr"]);
    }
}
