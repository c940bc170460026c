//! Direction (§2.4) and min-max normalisation (§2.5, §0.2). Inverse variables use ChatMRPT's
//! (and R MRPT's) min-max of 1/(x + 1e-10), not 1 - minmax, so scores stay comparable with what
//! programmes already have.

use serde::{Deserialize, Serialize};

/// Whether a higher value makes a ward more or less vulnerable (analysis.md §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher value = more vulnerable.
    Direct,
    /// Higher value = less vulnerable.
    Inverse,
}

/// Where a variable's direction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectionSource {
    /// The keyword rule of §2.4.
    Keyword,
    /// The request's `relationships` override.
    Override,
}

/// One selected variable's direction and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableDirection {
    /// The column name.
    pub variable: String,
    /// Its direction.
    pub direction: Direction,
    /// Keyword rule or user override.
    pub source: DirectionSource,
}

/// A normalised variable: `normalization_<lower(variable)>`, one value per table row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizedColumn {
    /// The source column's name.
    pub variable: String,
    /// `normalization_<lower(variable)>`, as written in the normalised CSV.
    pub column_name: String,
    /// The direction used (inverse variables are normalised as 1/(x + 1e-10)).
    pub direction: Direction,
    /// Values in 0-1, one per table row (0.5 for a constant column).
    pub values: Vec<f64>,
}

const INVERSE_KEYWORDS: &[&str] = &[
    "distance",
    "elevation",
    "altitude",
    "slope",
    "housing",
    "quality",
    "income",
    "education",
    "access",
    "urban",
    "facility",
];

pub(crate) fn keyword_direction(variable: &str) -> Direction {
    let l = variable.to_lowercase();
    if INVERSE_KEYWORDS.iter().any(|k| l.contains(k)) {
        Direction::Inverse
    } else {
        Direction::Direct
    }
}

fn min_max(values: &[f64]) -> Vec<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        if v.is_nan() {
            continue;
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo == hi || !lo.is_finite() || !hi.is_finite() {
        return vec![0.5; values.len()];
    }
    values.iter().map(|v| (v - lo) / (hi - lo)).collect()
}

/// Normalise one column. A constant column gives 0.5 everywhere whatever its dtype (§0.2).
pub(crate) fn normalize(values: &[f64], direction: Direction) -> Vec<f64> {
    if let Some(&first) = values.first()
        && values.iter().all(|&v| v == first)
    {
        return vec![0.5; values.len()];
    }
    match direction {
        Direction::Direct => min_max(values),
        Direction::Inverse => {
            let t: Vec<f64> = values.iter().map(|x| 1.0 / (x + 1e-10)).collect();
            min_max(&t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_rule() {
        assert_eq!(keyword_direction("val_housing_15"), Direction::Inverse);
        assert_eq!(
            keyword_direction("distance_to_water_bodies"),
            Direction::Inverse
        );
        assert_eq!(keyword_direction("urban_percentage"), Direction::Inverse);
        assert_eq!(keyword_direction("nets_per_capita"), Direction::Direct);
        assert_eq!(keyword_direction("tpr"), Direction::Direct);
    }

    #[test]
    fn inverse_is_minmax_of_reciprocal() {
        let v = normalize(&[1.0, 2.0, 4.0], Direction::Inverse);
        assert_eq!(v[0], 1.0);
        assert_eq!(v[2], 0.0);
        assert!((v[1] - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(normalize(&[3.0, 3.0], Direction::Direct), vec![0.5, 0.5]);
        let z = normalize(&[0.0, 1.0, 2.0], Direction::Inverse);
        assert_eq!(z[0], 1.0);
        assert!(z[1] < 1e-9);
    }
}
