//! The `data_summary` of an upload (api.md, chatmrpt-server.md E2): what mrpt-formats reports
//! about a table, stored with the upload and read back, typed, by the assistant.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::BadCell;
use crate::table::Cell;

/// How a column is described to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Int or float column (analysable).
    Numeric,
    /// Text with fewer than 10% distinct values.
    Categorical,
    /// Text with at least 10% distinct values (names, codes).
    Text,
    /// Boolean or any other non-numeric, non-text dtype.
    Other,
}

/// What a [`QualityIssue`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// Columns with no value at all.
    EmptyColumns,
    /// Rows identical to an earlier row.
    DuplicateRows,
    /// No column passes the ward-name rule: the table cannot be analysed.
    MissingWardColumn,
    /// A ward name carried by several rows.
    DuplicateWardNames,
    /// Mostly numbers with a few text cells: the column is treated as text (not analysable).
    TextInNumericColumn,
}

/// One problem the upload report shows the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityIssue {
    /// Which kind of problem (the client may style or filter by it).
    pub kind: IssueKind,
    /// Sentence shown to the user as is.
    pub message: String,
    /// Columns concerned (empty when the issue is about rows); omitted from JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// Offending cells (at most 20), for `TextInNumericColumn`; omitted from JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<BadCell>,
}

/// How full the table is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completeness {
    /// Percentage of present cells per column (2 decimals).
    pub by_column: BTreeMap<String, f64>,
    /// Percentage of present cells over the whole table, 0-100 (2 decimals).
    pub overall: f64,
}

/// The problems found, and ChatMRPT's score for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityAssessment {
    /// `issues.len()`, kept as a field because the JSON carries it.
    pub issues_found: usize,
    /// The problems, in the order they were checked.
    pub issues: Vec<QualityIssue>,
    /// max(0, 100 - 20 per issue), as ChatMRPT scores it.
    pub quality_score: f64,
}

/// The `data_summary` of an upload, as the upload answer carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Data rows (header excluded).
    pub total_rows: usize,
    /// Columns, including index and ward columns.
    pub total_columns: usize,
    /// Column names in file order.
    pub column_names: Vec<String>,
    /// How each column is described ([`ColumnKind`]), by name.
    pub column_types: BTreeMap<String, ColumnKind>,
    /// Share of present cells per column and overall.
    pub data_completeness: Completeness,
    /// Problems found and their score.
    pub data_quality_assessment: QualityAssessment,
    /// The first five rows; missing cells are the text "N/A".
    pub preview_rows: Vec<BTreeMap<String, Cell>>,
}

impl DataSummary {
    /// Whether a column is numeric (analysable).
    pub fn is_numeric(&self, column: &str) -> bool {
        self.column_types.get(column) == Some(&ColumnKind::Numeric)
    }

    /// Percentage of present cells of a column; 100 for a column the summary does not list.
    pub fn completeness(&self, column: &str) -> f64 {
        self.data_completeness
            .by_column
            .get(column)
            .copied()
            .unwrap_or(100.0)
    }
}
