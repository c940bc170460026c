//! The in-memory table every reader returns, the analysis computes on and every writer takes.

use serde::{Deserialize, Serialize};

use crate::error::{BadCell, Error, Result};
use crate::float::{parse_pandas_float, python_float_repr};

/// The values of one column. `None` is a missing cell (and so is NaN in `Float`). Dtypes follow
/// pandas: `Int` only when every cell is an integer literal and none is missing (pandas int64),
/// `Bool` only for a complete column of `True`/`False`, `Float` for any other all-numeric column,
/// `Text` as soon as one cell is not a number (pandas object dtype).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dtype", content = "values", rename_all = "snake_case")]
pub enum ColumnData {
    /// Float64 values (NaN is treated as missing).
    Float(Vec<Option<f64>>),
    /// Int64 values (complete columns of integer literals).
    Int(Vec<Option<i64>>),
    /// `True`/`False` values.
    Bool(Vec<Option<bool>>),
    /// Anything else (pandas object dtype).
    Text(Vec<Option<String>>),
}

/// One value, typed; `Null` is a missing cell. Serialised as the bare JSON value (`null` when
/// missing or not finite), which is how result rows and previews are shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    /// An integer.
    Int(i64),
    /// A finite float (a NaN cell is `Null`).
    Float(f64),
    /// A boolean (`True`/`False` in CSV).
    Bool(bool),
    /// Text, as the file holds it.
    Text(String),
    /// A missing cell.
    Null,
}

impl ColumnData {
    /// Number of rows, missing cells included.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Float(v) => v.len(),
            ColumnData::Int(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
            ColumnData::Text(v) => v.len(),
        }
    }

    /// Whether the column has no rows.
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

    /// Whether `row` is missing (NaN counts as missing; so does a row past the end).
    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            ColumnData::Float(v) => v.get(row).is_none_or(|x| x.is_none_or(f64::is_nan)),
            ColumnData::Int(v) => v.get(row).is_none_or(Option::is_none),
            ColumnData::Bool(v) => v.get(row).is_none_or(Option::is_none),
            ColumnData::Text(v) => v.get(row).is_none_or(Option::is_none),
        }
    }

    /// Number of missing cells ([`ColumnData::is_missing`]).
    pub fn missing_count(&self) -> usize {
        (0..self.len()).filter(|&r| self.is_missing(r)).count()
    }

    /// One cell as pandas would print it in a CSV (`None` for missing).
    pub fn cell_text(&self, row: usize) -> Option<String> {
        match self.cell(row) {
            Cell::Null => None,
            Cell::Int(i) => Some(i.to_string()),
            Cell::Float(f) => Some(python_float_repr(f)),
            Cell::Bool(b) => Some(if b { "True" } else { "False" }.to_string()),
            Cell::Text(t) => Some(t),
        }
    }

    /// One cell, typed (`Null` for a missing cell or NaN, and past the end).
    pub fn cell(&self, row: usize) -> Cell {
        match self {
            ColumnData::Float(v) => match v.get(row).copied().flatten() {
                Some(f) if !f.is_nan() => Cell::Float(f),
                _ => Cell::Null,
            },
            ColumnData::Int(v) => v.get(row).copied().flatten().map_or(Cell::Null, Cell::Int),
            ColumnData::Bool(v) => v.get(row).copied().flatten().map_or(Cell::Null, Cell::Bool),
            ColumnData::Text(v) => v.get(row).cloned().flatten().map_or(Cell::Null, Cell::Text),
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

    /// A float column; NaN becomes missing.
    pub fn floats(values: impl IntoIterator<Item = f64>) -> ColumnData {
        ColumnData::Float(
            values
                .into_iter()
                .map(|f| (!f.is_nan()).then_some(f))
                .collect(),
        )
    }

    /// A text column without missing cells.
    pub fn texts<S: Into<String>>(values: impl IntoIterator<Item = S>) -> ColumnData {
        ColumnData::Text(values.into_iter().map(|s| Some(s.into())).collect())
    }

    /// An integer column without missing cells.
    pub fn ints(values: impl IntoIterator<Item = i64>) -> ColumnData {
        ColumnData::Int(values.into_iter().map(Some).collect())
    }
}

/// A named column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// The header as the file spells it (not trimmed; names are unique in a [`Table`]).
    pub name: String,
    /// The values.
    pub data: ColumnData,
}

impl Column {
    /// A column from its name and values (length is checked when it joins a [`Table`]).
    pub fn new(name: impl Into<String>, data: ColumnData) -> Column {
        Column {
            name: name.into(),
            data,
        }
    }
}

/// Ordered named columns of equal length.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "TableParts")]
pub struct Table {
    columns: Vec<Column>,
    rows: usize,
}

/// A table as serialised, checked on the way in.
#[derive(Deserialize)]
struct TableParts {
    columns: Vec<Column>,
    rows: usize,
}

impl TryFrom<TableParts> for Table {
    type Error = Error;

    fn try_from(parts: TableParts) -> Result<Table> {
        let mut t = Table::with_rows(parts.rows);
        for c in parts.columns {
            t.push(c.name, c.data)?;
        }
        Ok(t)
    }
}

impl Table {
    /// An empty table with a fixed row count; add columns with [`Table::push`].
    pub fn with_rows(rows: usize) -> Self {
        Table {
            columns: Vec::new(),
            rows,
        }
    }

    /// Builds a table, checking lengths (a later column of the same name replaces an earlier).
    /// Linear in the number of columns (a name index replaces the per-column search of
    /// [`Table::push`]), so a table of 100k columns costs no more per column than one of ten.
    pub fn new(columns: Vec<Column>) -> Result<Self> {
        let rows = columns.first().map_or(0, |c| c.data.len());
        let mut t = Table::with_rows(rows);
        let mut at: std::collections::HashMap<String, usize> =
            std::collections::HashMap::with_capacity(columns.len());
        for c in columns {
            if c.data.len() != rows {
                return Err(Error::ColumnLength {
                    column: c.name,
                    expected: rows,
                    found: c.data.len(),
                });
            }
            match at.get(&c.name) {
                Some(&i) => t.columns[i].data = c.data,
                None => {
                    at.insert(c.name.clone(), t.columns.len());
                    t.columns.push(c);
                }
            }
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

    /// Replaces the values of the column at `index` (same length), keeping its name.
    pub fn set_data(&mut self, index: usize, data: ColumnData) -> Result<()> {
        let Some(column) = self.columns.get_mut(index) else {
            return Err(Error::MissingColumn {
                column: format!("#{index}"),
                found: self.column_names(),
            });
        };
        if data.len() != self.rows {
            return Err(Error::ColumnLength {
                column: column.name.clone(),
                expected: self.rows,
                found: data.len(),
            });
        }
        column.data = data;
        Ok(())
    }

    /// Removes a column by name, returning it.
    pub fn remove(&mut self, name: &str) -> Option<Column> {
        let i = self.column_index(name)?;
        Some(self.columns.remove(i))
    }

    /// Number of data rows (every column has this many values).
    pub fn n_rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn n_columns(&self) -> usize {
        self.columns.len()
    }

    /// The columns in file order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The columns, owned.
    pub fn into_columns(self) -> Vec<Column> {
        self.columns
    }

    /// The column names in file order.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Position of the column with exactly this name (case- and space-sensitive).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The column with exactly this name (case- and space-sensitive).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The first of `names` that is a column.
    pub fn first_column(&self, names: &[&str]) -> Option<&Column> {
        names.iter().find_map(|n| self.column(n))
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
                && parse_pandas_float(t).is_none()
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

    /// The rows as name -> value maps (e.g. ITN's `prioritized` list); missing and non-finite
    /// values are `Null`.
    pub fn records(&self) -> Vec<std::collections::BTreeMap<String, Cell>> {
        (0..self.rows)
            .map(|r| {
                self.columns
                    .iter()
                    .map(|c| {
                        let cell = match c.data.cell(r) {
                            Cell::Float(f) if !f.is_finite() => Cell::Null,
                            other => other,
                        };
                        (c.name.clone(), cell)
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(v: &[&str]) -> ColumnData {
        ColumnData::texts(v.iter().copied())
    }

    #[test]
    fn push_checks_length() {
        let mut t = Table::new(vec![Column::new("a", ColumnData::ints([1, 2]))]).unwrap();
        assert!(t.push("b", ColumnData::ints([1])).is_err());
        t.push("b", ColumnData::Float(vec![None, Some(1.5)]))
            .unwrap();
        assert_eq!(t.column_names(), ["a", "b"]);
        assert!(t.set_data(1, ColumnData::ints([1])).is_err());
    }

    #[test]
    fn numeric_reports_text_cells() {
        let t = Table::new(vec![Column::new("tpr", text(&["0.1", "abc", "0.3"]))]).unwrap();
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

    #[test]
    fn cells_render_the_pandas_way() {
        let c = ColumnData::Float(vec![Some(86.0), None, Some(f64::NAN), Some(1e-5)]);
        assert_eq!(
            c.to_text(),
            vec![Some("86.0".into()), None, None, Some("1e-05".into())]
        );
        assert_eq!(
            ColumnData::Bool(vec![Some(true)]).cell_text(0).unwrap(),
            "True"
        );
    }

    #[test]
    fn a_deserialised_table_is_checked() {
        let parts = TableParts {
            columns: vec![Column::new("a", ColumnData::ints([1]))],
            rows: 2,
        };
        assert!(Table::try_from(parts).is_err());
    }
}
