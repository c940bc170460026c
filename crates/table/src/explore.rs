//! The exploration vocabulary: how a column is aggregated, compared, correlated and how
//! missing values are counted. The interpreter fills these from a message or a model's typed
//! arguments; mrpt-analysis computes with them.

use serde::{Deserialize, Serialize};

/// A comparison for `filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    /// Greater than (`>`, `gt`).
    Gt,
    /// Greater than or equal (`>=`, `ge`).
    Ge,
    /// Less than (`<`, `lt`).
    Lt,
    /// Less than or equal (`<=`, `le`).
    Le,
    /// Equal (`=`, `==`, `eq`).
    Eq,
    /// Not equal (`!=`, `ne`).
    Ne,
    /// Text cell contains the value as a substring.
    Contains,
}

impl FilterOp {
    /// The operator as shown in answers (`>=`, `contains`).
    pub fn symbol(self) -> &'static str {
        match self {
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Eq => "=",
            FilterOp::Ne => "!=",
            FilterOp::Contains => "contains",
        }
    }

    /// Parses a symbol or its two-letter name (`>=`, `ge`), trimmed; `None` for anything else.
    pub fn parse(s: &str) -> Option<FilterOp> {
        Some(match s.trim() {
            ">" | "gt" => FilterOp::Gt,
            ">=" | "ge" => FilterOp::Ge,
            "<" | "lt" => FilterOp::Lt,
            "<=" | "le" => FilterOp::Le,
            "=" | "==" | "eq" => FilterOp::Eq,
            "!=" | "ne" => FilterOp::Ne,
            "contains" => FilterOp::Contains,
            _ => return None,
        })
    }
}

/// How `group_by` aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    /// Arithmetic mean of the non-missing values (the default).
    #[default]
    Mean,
    /// Sum of the non-missing values.
    Sum,
    /// Median of the non-missing values.
    Median,
    /// Smallest non-missing value.
    Min,
    /// Largest non-missing value.
    Max,
    /// Number of non-missing values.
    Count,
}

impl Agg {
    /// Lower-case name used in column headers and answers (`mean`).
    pub fn label(self) -> &'static str {
        match self {
            Agg::Mean => "mean",
            Agg::Sum => "sum",
            Agg::Median => "median",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Count => "count",
        }
    }

    /// Parses a name or synonym (`average`, `total`, `n`...), case-insensitive; `None` otherwise.
    pub fn parse(s: &str) -> Option<Agg> {
        Some(match s.trim().to_lowercase().as_str() {
            "mean" | "average" | "avg" => Agg::Mean,
            "sum" | "total" => Agg::Sum,
            "median" => Agg::Median,
            "min" | "minimum" => Agg::Min,
            "max" | "maximum" => Agg::Max,
            "count" | "n" => Agg::Count,
            _ => return None,
        })
    }
}

/// Which correlation coefficient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationMethod {
    /// Pearson's r on the values (the default).
    #[default]
    Pearson,
    /// Spearman's rho (Pearson on the ranks, ties averaged).
    Spearman,
}

impl CorrelationMethod {
    /// Name shown in answers (`Pearson`).
    pub fn label(self) -> &'static str {
        match self {
            CorrelationMethod::Pearson => "Pearson",
            CorrelationMethod::Spearman => "Spearman",
        }
    }
}

/// What `missingness` counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingBy {
    /// Missing cells per column (the default).
    #[default]
    Column,
    /// Missing cells per LGA.
    Lga,
    /// Missing cells per year.
    Year,
}

impl MissingBy {
    /// Word used in answers (`column`, `LGA`, `year`).
    pub fn label(self) -> &'static str {
        match self {
            MissingBy::Column => "column",
            MissingBy::Lga => "LGA",
            MissingBy::Year => "year",
        }
    }
}
