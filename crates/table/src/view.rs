//! Borrowed columns for the writers: a table's own columns, or one model's scores straight out
//! of the analysis' score matrix, so that a 9,410 x 247 result is written to CSV and GeoParquet
//! without first being copied into [`ColumnData`] (or text).

use crate::table::{ColumnData, Table};

/// Every `stride`-th value of a slice from `start`: one column of a row-major matrix (or, with
/// stride 1, a plain slice).
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    values: &'a [f64],
    start: usize,
    stride: usize,
    len: usize,
}

impl<'a> Strided<'a> {
    /// `len` values `values[start + i * stride]`; reads past the slice are NaN (missing).
    pub fn new(values: &'a [f64], start: usize, stride: usize, len: usize) -> Self {
        Strided {
            values,
            start,
            stride: stride.max(1),
            len,
        }
    }

    /// A plain slice.
    pub fn slice(values: &'a [f64]) -> Self {
        Strided::new(values, 0, 1, values.len())
    }

    /// Number of values (rows).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value at `row` (NaN past the end).
    pub fn get(&self, row: usize) -> f64 {
        if row >= self.len {
            return f64::NAN;
        }
        self.values
            .get(self.start + row * self.stride)
            .copied()
            .unwrap_or(f64::NAN)
    }

    /// The values in row order (NaN for missing).
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        (0..self.len).map(|r| self.get(r))
    }
}

/// One column's values, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum ColumnView<'a> {
    /// A table's own column.
    Data(&'a ColumnData),
    /// A float column where NaN is a missing cell (as [`ColumnData::floats`] stores it).
    Floats(Strided<'a>),
}

impl ColumnView<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnView::Data(d) => d.len(),
            ColumnView::Floats(v) => v.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `row` is missing (NaN for `Floats`).
    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            ColumnView::Data(d) => d.is_missing(row),
            ColumnView::Floats(v) => v.get(row).is_nan(),
        }
    }

    /// An owned copy (what [`ColumnData::floats`] would have built for `Floats`).
    pub fn to_data(&self) -> ColumnData {
        match self {
            ColumnView::Data(d) => (*d).clone(),
            ColumnView::Floats(v) => ColumnData::floats(v.iter()),
        }
    }
}

/// Named borrowed columns of equal length, in file order.
#[derive(Debug, Clone, Default)]
pub struct TableView<'a> {
    columns: Vec<(&'a str, ColumnView<'a>)>,
    rows: usize,
}

impl<'a> TableView<'a> {
    /// An empty view with a fixed row count.
    pub fn with_rows(rows: usize) -> Self {
        TableView {
            columns: Vec::new(),
            rows,
        }
    }

    /// Appends a column, or replaces the data of an earlier one of the same name in its place
    /// (as [`Table::push`] does). A column of another length is a bug of the caller: refused.
    pub fn push(&mut self, name: &'a str, data: ColumnView<'a>) -> crate::Result<()> {
        if data.len() != self.rows {
            return Err(crate::Error::ColumnLength {
                column: name.to_string(),
                expected: self.rows,
                found: data.len(),
            });
        }
        match self.columns.iter_mut().find(|(n, _)| *n == name) {
            Some(c) => c.1 = data,
            None => self.columns.push((name, data)),
        }
        Ok(())
    }

    /// Number of rows (fixed at creation).
    pub fn n_rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn n_columns(&self) -> usize {
        self.columns.len()
    }

    /// The `(name, values)` pairs in order.
    pub fn columns(&self) -> &[(&'a str, ColumnView<'a>)] {
        &self.columns
    }

    /// Position of the column with exactly this name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| *n == name)
    }

    /// An owned table with the same columns.
    pub fn to_table(&self) -> crate::Result<Table> {
        let mut t = Table::with_rows(self.rows);
        for (name, data) in &self.columns {
            t.push(*name, data.to_data())?;
        }
        Ok(t)
    }
}

impl<'a> From<&'a Table> for TableView<'a> {
    fn from(table: &'a Table) -> Self {
        TableView {
            columns: table
                .columns()
                .iter()
                .map(|c| (c.name.as_str(), ColumnView::Data(&c.data)))
                .collect(),
            rows: table.n_rows(),
        }
    }
}
