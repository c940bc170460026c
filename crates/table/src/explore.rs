//! The exploration vocabulary: how a column is aggregated, compared, correlated and how
//! missing values are counted. The interpreter fills these from a message or a model's typed
//! arguments; mrpt-analysis computes with them.

use serde::{Deserialize, Serialize};

/// A comparison for `filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    Contains,
}

impl FilterOp {
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
    #[default]
    Mean,
    Sum,
    Median,
    Min,
    Max,
    Count,
}

impl Agg {
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
    #[default]
    Pearson,
    Spearman,
}

impl CorrelationMethod {
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
    #[default]
    Column,
    Lga,
    Year,
}

impl MissingBy {
    pub fn label(self) -> &'static str {
        match self {
            MissingBy::Column => "column",
            MissingBy::Lga => "LGA",
            MissingBy::Year => "year",
        }
    }
}
