//! The in-memory table every reader returns and every writer takes.

use crate::error::{BadCell, Error, Result};

/// The values of one column. `None` is a missing cell. Readers follow pandas' dtypes: `Int` only
/// when every cell is an integer literal and none is missing (pandas int64), `Bool` only for a
/// complete column of `True`/`False`, `Float` for any other all-numeric column, `Text` as soon as
/// one cell is not a number (pandas object dtype).
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Float(Vec<Option<f64>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Float(v) => v.len(),
            ColumnData::Int(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
            ColumnData::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Numeric in the pandas sense (`select_dtypes('number')`): float or int, not bool.
    pub fn is_numeric(&self) -> bool {
        matches!(self, ColumnData::Float(_) | ColumnData::Int(_))
    }

    /// The values as f64 when the column is numeric; NaN counts as missing.
    pub fn to_f64(&self) -> Option<Vec<Option<f64>>> {
        match self {
            ColumnData::Float(v) => Some(v.iter().map(|x| x.filter(|f| !f.is_nan())).collect()),
            ColumnData::Int(v) => Some(v.iter().map(|x| x.map(|i| i as f64)).collect()),
            _ => None,
        }
    }

    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            ColumnData::Float(v) => v.get(row).is_none_or(|x| x.is_none_or(f64::is_nan)),
            ColumnData::Int(v) => v.get(row).is_none_or(Option::is_none),
            ColumnData::Bool(v) => v.get(row).is_none_or(Option::is_none),
            ColumnData::Text(v) => v.get(row).is_none_or(Option::is_none),
        }
    }

    pub fn missing_count(&self) -> usize {
        (0..self.len()).filter(|&r| self.is_missing(r)).count()
    }

    /// One cell as pandas would print it in a CSV (`None` for missing).
    pub fn cell_text(&self, row: usize) -> Option<String> {
        match self {
            ColumnData::Float(v) => v
                .get(row)
                .copied()
                .flatten()
                .filter(|f| !f.is_nan())
                .map(crate::delimited::python_float_repr),
            ColumnData::Int(v) => v.get(row).copied().flatten().map(|i| i.to_string()),
            ColumnData::Bool(v) => v
                .get(row)
                .copied()
                .flatten()
                .map(|b| if b { "True" } else { "False" }.to_string()),
            ColumnData::Text(v) => v.get(row).cloned().flatten(),
        }
    }

    /// A text view of the column (numbers printed the pandas way).
    pub fn to_text(&self) -> Vec<Option<String>> {
        (0..self.len()).map(|r| self.cell_text(r)).collect()
    }

    /// A new column holding the given rows, in that order.
    pub fn take(&self, rows: &[usize]) -> ColumnData {
        fn pick<T: Clone>(v: &[Option<T>], rows: &[usize]) -> Vec<Option<T>> {
            rows.iter().map(|&r| v.get(r).cloned().flatten()).collect()
        }
        match self {
            ColumnData::Float(v) => ColumnData::Float(pick(v, rows)),
            ColumnData::Int(v) => ColumnData::Int(pick(v, rows)),
            ColumnData::Bool(v) => ColumnData::Bool(pick(v, rows)),
            ColumnData::Text(v) => ColumnData::Text(pick(v, rows)),
        }
    }
}

/// A named column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

/// Ordered named columns of equal length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    columns: Vec<Column>,
    rows: usize,
}

impl Table {
    /// An empty table with a fixed row count; add columns with [`Table::push`].
    pub fn with_rows(rows: usize) -> Self {
        Table {
            columns: Vec::new(),
            rows,
        }
    }

    /// Builds a table, checking lengths and name uniqueness.
    pub fn new(columns: Vec<Column>) -> Result<Self> {
        let rows = columns.first().map_or(0, |c| c.data.len());
        let mut t = Table::with_rows(rows);
        for c in columns {
            t.push(c.name, c.data)?;
        }
        Ok(t)
    }

    /// Appends a column (or replaces one of the same name, keeping its position).
    pub fn push(&mut self, name: impl Into<String>, data: ColumnData) -> Result<()> {
        let name = name.into();
        if self.columns.is_empty() && self.rows == 0 {
            self.rows = data.len();
        }
        if data.len() != self.rows {
            return Err(Error::ColumnLength {
                column: name,
                expected: self.rows,
                found: data.len(),
            });
        }
        match self.columns.iter_mut().find(|c| c.name == name) {
            Some(c) => c.data = data,
            None => self.columns.push(Column { name, data }),
        }
        Ok(())
    }

    /// Inserts a column at a position (an existing column of that name is removed first).
    pub fn insert(
        &mut self,
        index: usize,
        name: impl Into<String>,
        data: ColumnData,
    ) -> Result<()> {
        let name = name.into();
        if data.len() != self.rows && !(self.columns.is_empty() && self.rows == 0) {
            return Err(Error::ColumnLength {
                column: name,
                expected: self.rows,
                found: data.len(),
            });
        }
        if self.columns.is_empty() {
            self.rows = data.len();
        }
        self.remove(&name);
        let index = index.min(self.columns.len());
        self.columns.insert(index, Column { name, data });
        Ok(())
    }

    /// Removes a column by name, returning it.
    pub fn remove(&mut self, name: &str) -> Option<Column> {
        let i = self.column_index(name)?;
        Some(self.columns.remove(i))
    }

    pub fn n_rows(&self) -> usize {
        self.rows
    }

    pub fn n_columns(&self) -> usize {
        self.columns.len()
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn columns_mut(&mut self) -> &mut [Column] {
        &mut self.columns
    }

    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column's values as f64, or an error naming the text cells that stop it being numeric.
    pub fn numeric(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let col = self.column(name).ok_or_else(|| Error::MissingColumn {
            column: name.to_string(),
            found: self.column_names(),
        })?;
        if let Some(v) = col.data.to_f64() {
            return Ok(v);
        }
        let texts = col.data.to_text();
        let mut cells = Vec::new();
        for (row, t) in texts.iter().enumerate() {
            if let Some(t) = t
                && crate::delimited::parse_pandas_float(t).is_none()
            {
                cells.push(BadCell {
                    row: row + 1,
                    value: t.clone(),
                });
                if cells.len() == 20 {
                    break;
                }
            }
        }
        Err(Error::NonNumericCells {
            column: name.to_string(),
            cells,
        })
    }

    /// A new table holding the given rows in that order.
    pub fn take_rows(&self, rows: &[usize]) -> Table {
        Table {
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    data: c.data.take(rows),
                })
                .collect(),
            rows: rows.len(),
        }
    }
}

/// A ward-level table as uploaded: the table plus which columns mean what.
#[derive(Debug, Clone, PartialEq)]
pub struct WardTable {
    pub table: Table,
    /// Index of the ward-name column (always `ColumnData::Text`).
    pub ward_column: usize,
    /// Index of a ward-code column (`WardCode`, `ward_code`, `Ward_Code`), if any.
    pub code_column: Option<usize>,
    /// Leading row-index columns written by pandas or R (`""`/`Unnamed: 0`, `X`): identifiers,
    /// never analysis variables.
    pub index_columns: Vec<usize>,
}

impl WardTable {
    /// Identifies the ward-name, ward-code and index columns of a table. The ward-name column
    /// is converted to text.
    pub fn from_table(mut table: Table) -> Result<Self> {
        let ward_column = find_ward_column(&table).ok_or_else(|| Error::NoWardColumn {
            found: table.column_names(),
        })?;
        let col = &mut table.columns[ward_column];
        if !matches!(col.data, ColumnData::Text(_)) {
            col.data = ColumnData::Text(col.data.to_text());
        }
        let code_column = ["WardCode", "ward_code", "Ward_Code"]
            .iter()
            .find_map(|n| table.column_index(n));
        let index_columns = find_index_columns(&table, ward_column);
        Ok(WardTable {
            table,
            ward_column,
            code_column,
            index_columns,
        })
    }

    pub fn ward_column_name(&self) -> &str {
        &self.table.columns[self.ward_column].name
    }

    /// The ward names (missing names are `None`).
    pub fn ward_names(&self) -> &[Option<String>] {
        match &self.table.columns[self.ward_column].data {
            ColumnData::Text(v) => v,
            _ => &[],
        }
    }

    /// Replaces the ward names (same row count).
    pub(crate) fn set_ward_names(&mut self, names: Vec<Option<String>>) {
        let i = self.ward_column;
        if names.len() == self.table.n_rows() {
            self.table.columns[i].data = ColumnData::Text(names);
        }
    }

    /// Ward codes as text, when a code column exists.
    pub fn ward_codes(&self) -> Option<Vec<Option<String>>> {
        self.code_column
            .map(|i| self.table.columns[i].data.to_text())
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

/// Exact names first, in ChatMRPT's order, then common spellings case-insensitively, then a
/// text column whose name mentions ward or name and whose values are more than 80% unique.
pub fn find_ward_column(table: &Table) -> Option<usize> {
    const EXACT: [&str; 4] = ["WardName", "ward_name", "Ward", "ward"];
    const LOOSE: [&str; 10] = [
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
    if let Some(i) = EXACT.iter().find_map(|n| table.column_index(n)) {
        return Some(i);
    }
    let names = table.column_names();
    for want in LOOSE {
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
        let distinct: std::collections::HashSet<&String> = v.iter().flatten().collect();
        rows > 0 && distinct.len() as f64 / rows as f64 > 0.8
    })
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(v: &[&str]) -> ColumnData {
        ColumnData::Text(v.iter().map(|s| Some(s.to_string())).collect())
    }

    #[test]
    fn push_checks_length() {
        let mut t = Table::new(vec![Column {
            name: "a".into(),
            data: ColumnData::Int(vec![Some(1), Some(2)]),
        }])
        .unwrap();
        assert!(t.push("b", ColumnData::Int(vec![Some(1)])).is_err());
        t.push("b", ColumnData::Float(vec![None, Some(1.5)]))
            .unwrap();
        assert_eq!(t.column_names(), ["a", "b"]);
    }

    #[test]
    fn ward_column_falls_back_to_unique_name_column() {
        let t = Table::new(vec![
            Column {
                name: "LGA".into(),
                data: text(&["x", "x", "x"]),
            },
            Column {
                name: "ward_label_name".into(),
                data: text(&["a", "b", "c"]),
            },
        ])
        .unwrap();
        assert_eq!(find_ward_column(&t), Some(1));
    }

    #[test]
    fn numeric_reports_text_cells() {
        let t = Table::new(vec![Column {
            name: "tpr".into(),
            data: text(&["0.1", "abc", "0.3"]),
        }])
        .unwrap();
        match t.numeric("tpr") {
            Err(Error::NonNumericCells { column, cells }) => {
                assert_eq!(column, "tpr");
                assert_eq!(
                    cells,
                    vec![BadCell {
                        row: 2,
                        value: "abc".into()
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
