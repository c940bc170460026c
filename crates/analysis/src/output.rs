//! The result files of §1.5 as ordered, typed tables (and the two PCA JSON documents), so a
//! writer elsewhere produces byte-compatible files without knowing the analysis.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::itn::{ItnPlan, Strategy};
use crate::pipeline::AnalysisResult;
use crate::table::ColumnData;

/// One typed cell. `Null` is written as an empty field (pandas writes NaN that way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Null,
}

impl Cell {
    /// The cell as pandas `to_csv` writes it (floats as Python `repr`).
    pub fn render(&self) -> String {
        match self {
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) if f.is_nan() => String::new(),
            Cell::Float(f) => python_float_repr(*f),
            Cell::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Cell::Text(s) => s.clone(),
            Cell::Null => String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputColumn {
    pub name: String,
    pub cells: Vec<Cell>,
}

/// A file to write: its name (§1.5) and its columns in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputTable {
    pub file_name: String,
    pub columns: Vec<OutputColumn>,
}

impl OutputTable {
    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.cells.len())
    }

    /// The rows as JSON objects in column order (e.g. ITN's `prioritized` list); NaN and
    /// missing cells become `null`.
    pub fn records(&self) -> Vec<Map<String, Value>> {
        (0..self.n_rows())
            .map(|r| {
                self.columns
                    .iter()
                    .map(|c| {
                        let v = match &c.cells[r] {
                            Cell::Int(i) => json!(i),
                            Cell::Float(f) if f.is_finite() => json!(f),
                            Cell::Float(_) | Cell::Null => Value::Null,
                            Cell::Bool(b) => json!(b),
                            Cell::Text(t) => json!(t),
                        };
                        (c.name.clone(), v)
                    })
                    .collect()
            })
            .collect()
    }

    /// The whole table as CSV text the way pandas `to_csv(index=False)` writes it (minimal
    /// quoting, `\n` line ends). Convenient for tests and small files; a streaming writer
    /// can use [`Cell::render`] directly.
    pub fn to_csv_string(&self) -> String {
        fn field(s: &str) -> String {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|c| field(&c.name)).collect();
        out.push_str(&header.join(","));
        out.push('\n');
        for r in 0..self.n_rows() {
            let row: Vec<String> = self
                .columns
                .iter()
                .map(|c| field(&c.cells[r].render()))
                .collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
        out
    }
}

/// Python's `repr(float)`: shortest round-trip digits, scientific below 1e-4 and from 1e16.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let nd = digits.len() as i32;
        let body = if exp >= 0 {
            let int_len = exp + 1;
            if nd <= int_len {
                format!("{}{}.0", digits, "0".repeat((int_len - nd) as usize))
            } else {
                format!(
                    "{}.{}",
                    &digits[..int_len as usize],
                    &digits[int_len as usize..]
                )
            }
        } else {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        };
        format!("{sign}{body}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

fn column_cells(data: &ColumnData) -> Vec<Cell> {
    match data {
        ColumnData::Float(v) => v
            .iter()
            .map(|x| match x {
                Some(f) if !f.is_nan() => Cell::Float(*f),
                _ => Cell::Null,
            })
            .collect(),
        ColumnData::Int(v) => v.iter().map(|x| x.map_or(Cell::Null, Cell::Int)).collect(),
        ColumnData::Bool(v) => v.iter().map(|x| x.map_or(Cell::Null, Cell::Bool)).collect(),
        ColumnData::Text(v) => v
            .iter()
            .map(|x| x.clone().map_or(Cell::Null, Cell::Text))
            .collect(),
    }
}

pub(crate) fn cleaned_columns(result: &AnalysisResult) -> Vec<OutputColumn> {
    result
        .cleaned
        .columns
        .iter()
        .map(|c| col(&c.name, column_cells(&c.data)))
        .collect()
}

fn col(name: &str, cells: Vec<Cell>) -> OutputColumn {
    OutputColumn {
        name: name.to_string(),
        cells,
    }
}

fn floats(v: impl IntoIterator<Item = f64>) -> Vec<Cell> {
    v.into_iter().map(Cell::Float).collect()
}

fn texts(v: impl IntoIterator<Item = String>) -> Vec<Cell> {
    v.into_iter().map(Cell::Text).collect()
}

/// The analysis files of §1.5, in this order: `analysis_cleaned_data.csv`,
/// `analysis_normalized_data.csv`, `analysis_vulnerability_rankings.csv`,
/// `analysis_composite_scores.csv`, `composite_scores.csv`, `model_formulas.csv`, and, when PCA
/// ran, `analysis_vulnerability_rankings_pca.csv` and `analysis_pca_scores.csv`.
pub fn output_tables(result: &AnalysisResult) -> Vec<OutputTable> {
    let mut out = Vec::new();
    let cleaned = cleaned_columns(result);
    out.push(OutputTable {
        file_name: "analysis_cleaned_data.csv".into(),
        columns: cleaned.clone(),
    });
    let mut normalized = cleaned;
    for nc in &result.normalized {
        normalized.push(col(&nc.column_name, floats(nc.values.iter().copied())));
    }
    out.push(OutputTable {
        file_name: "analysis_normalized_data.csv".into(),
        columns: normalized,
    });
    let r = &result.composite.rankings;
    out.push(OutputTable {
        file_name: "analysis_vulnerability_rankings.csv".into(),
        columns: vec![
            col("WardName", texts(r.iter().map(|w| w.ward_name.clone()))),
            col("median_score", floats(r.iter().map(|w| w.score))),
            col(
                "overall_rank",
                r.iter().map(|w| Cell::Int(w.rank as i64)).collect(),
            ),
            col(
                "vulnerability_category",
                texts(r.iter().map(|w| w.category.label().to_string())),
            ),
        ],
    });
    let mut scores = vec![col("WardName", texts(result.ward_names()))];
    for (m, s) in result
        .composite
        .models
        .iter()
        .zip(&result.composite.model_scores)
    {
        scores.push(col(&m.name, floats(s.iter().copied())));
    }
    for name in ["analysis_composite_scores.csv", "composite_scores.csv"] {
        out.push(OutputTable {
            file_name: name.into(),
            columns: scores.clone(),
        });
    }
    let models = &result.composite.models;
    out.push(OutputTable {
        file_name: "model_formulas.csv".into(),
        columns: vec![
            col("model", texts(models.iter().map(|m| m.name.clone()))),
            col("variables", texts(models.iter().map(|m| m.formula()))),
            col("method", texts(models.iter().map(|_| "mean".to_string()))),
        ],
    });
    if let Some(p) = &result.pca {
        let pos_of_row: std::collections::HashMap<usize, usize> =
            p.rows.iter().enumerate().map(|(i, r)| (*r, i)).collect();
        let pc1: Vec<f64> = p
            .rankings
            .iter()
            .map(|w| pos_of_row.get(&w.row).map_or(f64::NAN, |&i| p.scores[i][0]))
            .collect();
        let rk = &p.rankings;
        let rank_cells = || rk.iter().map(|w| Cell::Int(w.rank as i64)).collect();
        out.push(OutputTable {
            file_name: "analysis_vulnerability_rankings_pca.csv".into(),
            columns: vec![
                col("WardName", texts(rk.iter().map(|w| w.ward_name.clone()))),
                col("pca_score", floats(rk.iter().map(|w| w.score))),
                col("pc1_score", floats(pc1)),
                col("pca_rank", rank_cells()),
                col(
                    "vulnerability_category",
                    texts(rk.iter().map(|w| w.category.label().to_string())),
                ),
                col("overall_rank", rank_cells()),
                col("median_score", floats(rk.iter().map(|w| w.score))),
                col("value", floats(rk.iter().map(|w| w.score))),
            ],
        });
        let mut cols: Vec<OutputColumn> = (0..p.n_components)
            .map(|c| {
                col(
                    &format!("PC{}", c + 1),
                    floats(p.scores.iter().map(|s| s[c])),
                )
            })
            .collect();
        cols.push(col("WardName", texts(p.ward_names.iter().cloned())));
        out.push(OutputTable {
            file_name: "analysis_pca_scores.csv".into(),
            columns: cols,
        });
    }
    out
}

/// `pca_variable_importance.json` and `pca_explained_variance.json` (when PCA ran).
pub fn output_json(result: &AnalysisResult) -> Vec<(String, Value)> {
    let Some(p) = &result.pca else {
        return Vec::new();
    };
    let mut imp = Map::new();
    for (v, x) in &p.importance {
        imp.insert(v.clone(), json!(x));
    }
    vec![
        (
            "pca_variable_importance.json".to_string(),
            Value::Object(imp),
        ),
        (
            "pca_explained_variance.json".to_string(),
            json!({
                "per_component": p.explained_variance.per_component,
                "cumulative": p.explained_variance.cumulative,
                "total_explained": p.explained_variance.total_explained,
            }),
        ),
    ]
}

impl ItnPlan {
    /// The per-ward allocation table (`prioritized`), columns as ChatMRPT writes them for the
    /// strategy: \[J\] for `rank`, \[N\] (with PopWardName, MatchScore, priority_tier) for
    /// `rural_first`.
    pub fn allocation_table(&self) -> OutputTable {
        let a = &self.allocations;
        let mut cols = vec![col(
            "WardName",
            texts(a.iter().map(|r| r.ward_name.clone())),
        )];
        if self.strategy == Strategy::RuralFirst && a.iter().any(|r| r.ward_code.is_some()) {
            cols.push(col(
                "WardCode",
                a.iter()
                    .map(|r| r.ward_code.clone().map_or(Cell::Null, Cell::Text))
                    .collect(),
            ));
        }
        cols.push(col("score", floats(a.iter().map(|r| r.score))));
        cols.push(col(
            "overall_rank",
            a.iter().map(|r| Cell::Int(r.overall_rank as i64)).collect(),
        ));
        cols.push(col(
            "vulnerability_category",
            texts(a.iter().map(|r| r.vulnerability_category.clone())),
        ));
        let population = col("Population", floats(a.iter().map(|r| r.population)));
        let urban = col("urban_pct", floats(a.iter().map(|r| r.urban_pct)));
        match self.strategy {
            Strategy::Rank => {
                cols.push(population);
                cols.push(urban);
            }
            Strategy::RuralFirst => {
                cols.push(urban);
                cols.push(col(
                    "PopWardName",
                    a.iter()
                        .map(|r| r.pop_ward_name.clone().map_or(Cell::Null, Cell::Text))
                        .collect(),
                ));
                cols.push(col(
                    "MatchScore",
                    a.iter()
                        .map(|r| r.match_score.map_or(Cell::Null, Cell::Int))
                        .collect(),
                ));
                cols.push(population);
            }
        }
        cols.push(col(
            "nets_needed",
            a.iter().map(|r| Cell::Int(r.nets_needed)).collect(),
        ));
        cols.push(col(
            "nets_allocated",
            a.iter().map(|r| Cell::Int(r.nets_allocated)).collect(),
        ));
        cols.push(col(
            "coverage_percent",
            floats(a.iter().map(|r| r.coverage_percent)),
        ));
        cols.push(col(
            "allocation_phase",
            texts(a.iter().map(|r| r.allocation_phase.clone())),
        ));
        if self.strategy == Strategy::RuralFirst {
            cols.push(col(
                "priority_tier",
                a.iter()
                    .map(|r| r.priority_tier.map_or(Cell::Null, |t| Cell::Int(t as i64)))
                    .collect(),
            ));
        }
        cols.push(col(
            "population_covered",
            floats(a.iter().map(|r| r.population_covered)),
        ));
        OutputTable {
            file_name: "itn_distribution_results.csv".into(),
            columns: cols,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        assert_eq!(python_float_repr(1.0), "1.0");
        assert_eq!(python_float_repr(86.0), "86.0");
        assert_eq!(python_float_repr(0.1), "0.1");
        assert_eq!(python_float_repr(10000.800000000001), "10000.800000000001");
        assert_eq!(python_float_repr(1e-14), "1e-14");
        assert_eq!(python_float_repr(1.5e-5), "1.5e-05");
        assert_eq!(python_float_repr(0.0001), "0.0001");
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(123456789012345.6), "123456789012345.6");
        assert_eq!(python_float_repr(-2.5), "-2.5");
        assert_eq!(python_float_repr(6.132296545135592), "6.132296545135592");
    }
}
