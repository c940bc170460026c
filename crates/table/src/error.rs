//! The crate's one error type (written out by hand: this crate depends on serde alone).

use std::fmt;

/// Where a bad cell sits: 1-based data row (the header is row 0) and its text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BadCell {
    pub row: usize,
    pub value: String,
}

/// What can go wrong building or reading a table. Messages name the column and are shown to
/// users as they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// No column passes the ward-name rule ([`crate::find_ward_column`]).
    NoWardColumn {
        found: Vec<String>,
    },
    /// A column that must be numeric holds text.
    NonNumericCells {
        column: String,
        /// The first offending cells (at most 20).
        cells: Vec<BadCell>,
    },
    MissingColumn {
        column: String,
        found: Vec<String>,
    },
    ColumnLength {
        column: String,
        expected: usize,
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

pub type Result<T, E = Error> = std::result::Result<T, E>;
