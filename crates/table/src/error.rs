//! The crate's one error type (written out by hand: this crate depends on serde alone).

use std::fmt;

/// Where a bad cell sits: 1-based data row (the header is row 0) and its text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BadCell {
    /// 1-based data row (the header is row 0).
    pub row: usize,
    /// The cell's text as the file holds it.
    pub value: String,
}

/// What can go wrong building or reading a table. Messages name the column and are shown to
/// users as they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// No column passes the ward-name rule ([`crate::find_ward_column`]).
    NoWardColumn {
        /// The table's column names, listed in the message so the user sees what was there.
        found: Vec<String>,
    },
    /// A column that must be numeric holds text.
    NonNumericCells {
        /// The column's name as the file spells it.
        column: String,
        /// The first offending cells (at most 20).
        cells: Vec<BadCell>,
    },
    /// A column the caller needs is absent.
    MissingColumn {
        /// The name that was looked for.
        column: String,
        /// The table's column names.
        found: Vec<String>,
    },
    /// A column was given a different number of values than the table has rows (a caller bug, refused).
    ColumnLength {
        /// The column being added or replaced.
        column: String,
        /// The table's row count.
        expected: usize,
        /// The number of values the column had.
        found: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoWardColumn { found } => write!(
                f,
                "no ward name column (expected `WardName`); columns found: {}",
                found.join(", ")
            ),
            Error::NonNumericCells { column, cells } => write!(
                f,
                "column `{column}` must be numeric but holds text: {}",
                cells
                    .iter()
                    .map(|c| format!("row {} {:?}", c.row, c.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Error::MissingColumn { column, found } => write!(
                f,
                "no column named `{column}`; columns found: {}",
                found.join(", ")
            ),
            Error::ColumnLength {
                column,
                expected,
                found,
            } => write!(
                f,
                "column `{column}` has {found} values but the table has {expected} rows"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// This crate's result, with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
