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
    Numeric,
    /// Text with fewer than 10% distinct values.
    Categorical,
    Text,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    EmptyColumns,
    DuplicateRows,
    MissingWardColumn,
    DuplicateWardNames,
    /// Mostly numbers with a few text cells: the column is treated as text (not analysable).
    TextInNumericColumn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityIssue {
    pub kind: IssueKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<BadCell>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completeness {
    /// Percentage of present cells per column (2 decimals).
    pub by_column: BTreeMap<String, f64>,
    pub overall: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityAssessment {
    pub issues_found: usize,
    pub issues: Vec<QualityIssue>,
    /// max(0, 100 - 20 per issue), as ChatMRPT scores it.
    pub quality_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    pub total_rows: usize,
    pub total_columns: usize,
    pub column_names: Vec<String>,
    pub column_types: BTreeMap<String, ColumnKind>,
    pub data_completeness: Completeness,
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
