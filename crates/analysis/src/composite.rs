//! The composite score (§3 with §0.1): every combination of two or more selected variables is a
//! model whose score is the mean of its normalised values; a ward's composite score is the
//! median over models; rank 1 = most vulnerable.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ranking::rank_wards;
use mrpt_table::RankedWard;

/// At most 15 variables: 2^15 - 16 = 32,752 models.
pub const MAX_VARIABLES: usize = 15;

/// One model: `model_<k>` over these variables (selection order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// `model_<k>`, k from 1 in generation order.
    pub name: String,
    /// The variables the model averages (at least 2).
    pub variables: Vec<String>,
}

impl Model {
    /// `model_formulas.csv`'s `variables` cell: lower-cased names joined by commas.
    pub fn formula(&self) -> String {
        self.variables
            .iter()
            .map(|v| v.to_lowercase())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The composite method's output (analysis.md §3): every model, every ward's scores, the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompositeResult {
    /// All 2^n - n - 1 variable subsets of size >= 2, in generation order.
    pub models: Vec<Model>,
    /// Every model's score for every table row, in one allocation.
    pub model_scores: ScoreMatrix,
    /// Median over models, per table row.
    pub median_score: Vec<f64>,
    /// Sorted by rank.
    pub rankings: Vec<RankedWard>,
}

/// The model-score matrix: `rows x models` f64 in one row-major `Vec` (a ward's scores are
/// contiguous, which is the order the CSV files are written in; one model's column is a
/// strided view, which is how the GeoParquet writer takes it). NaN is a missing score.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScoreMatrix {
    rows: usize,
    models: usize,
    values: Vec<f64>,
}

impl ScoreMatrix {
    /// A matrix of NaN.
    pub fn new(rows: usize, models: usize) -> ScoreMatrix {
        ScoreMatrix {
            rows,
            models,
            values: vec![f64::NAN; rows * models],
        }
    }

    /// Number of table rows (wards).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of models (columns).
    pub fn models(&self) -> usize {
        self.models
    }

    /// Model `k`'s score for `row` (NaN when out of range).
    pub fn get(&self, k: usize, row: usize) -> f64 {
        if k >= self.models {
            return f64::NAN;
        }
        self.values
            .get(row * self.models + k)
            .copied()
            .unwrap_or(f64::NAN)
    }

    /// One ward's scores, model by model.
    pub fn row(&self, row: usize) -> &[f64] {
        self.values
            .get(row * self.models..(row + 1) * self.models)
            .unwrap_or(&[])
    }

    fn row_mut(&mut self, row: usize) -> &mut [f64] {
        &mut self.values[row * self.models..(row + 1) * self.models]
    }

    /// Model `k`'s column as a borrowed view for the writers.
    pub fn column(&self, k: usize) -> mrpt_table::ColumnView<'_> {
        mrpt_table::ColumnView::Floats(mrpt_table::Strided::new(
            &self.values,
            k,
            self.models.max(1),
            self.rows,
        ))
    }

    /// Model `k`'s scores, copied out.
    pub fn model(&self, k: usize) -> Vec<f64> {
        (0..self.rows).map(|r| self.get(k, r)).collect()
    }
}

/// All combinations of size 2..=p in `itertools.combinations` order (ascending size, then
/// lexicographic by position).
pub(crate) fn combinations(p: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for r in 2..=p {
        let mut idx: Vec<usize> = (0..r).collect();
        loop {
            out.push(idx.clone());
            // Advance the rightmost index that can move.
            let mut i = r;
            let mut advanced = false;
            while i > 0 {
                i -= 1;
                if idx[i] != i + p - r {
                    idx[i] += 1;
                    for j in i + 1..r {
                        idx[j] = idx[j - 1] + 1;
                    }
                    advanced = true;
                    break;
                }
            }
            if !advanced {
                break;
            }
        }
    }
    out
}

pub(crate) fn model_count(p: usize) -> usize {
    if p < 2 { 0 } else { (1usize << p) - p - 1 }
}

/// `columns[v][row]` are the normalised values of the selected variables, in selection order.
pub(crate) fn composite(
    variables: &[String],
    columns: &[&[f64]],
    ward_names: &[String],
    max_scores: usize,
) -> Result<CompositeResult, Error> {
    let p = columns.len();
    if p < 2 {
        return Err(Error::TooFewVariables {
            found: p,
            detail: "a composite score needs at least two normalised numeric variables".into(),
        });
    }
    if p > MAX_VARIABLES {
        return Err(Error::TooManyVariables {
            count: p,
            max: MAX_VARIABLES,
        });
    }
    let n = ward_names.len();
    let m = model_count(p);
    let cells = m.saturating_mul(n);
    if cells > max_scores {
        return Err(Error::TooManyModelScores {
            models: m,
            wards: n,
            cells,
            limit: max_scores,
        });
    }
    let combos = combinations(p);
    let models: Vec<Model> = combos
        .iter()
        .enumerate()
        .map(|(k, c)| Model {
            name: format!("model_{}", k + 1),
            variables: c.iter().map(|&i| variables[i].clone()).collect(),
        })
        .collect();
    let mut model_scores = ScoreMatrix::new(n, m);
    let mut median_score = vec![f64::NAN; n];
    // Each model is a subset of the variables; its sum is built from the subset without its
    // last variable plus that variable, i.e. exactly pandas' left-to-right summation order, so
    // 2^p additions per ward replace Σ|model| ones.
    let masks: Vec<usize> = combos
        .iter()
        .map(|c| c.iter().fold(0usize, |m, &i| m | (1 << i)))
        .collect();
    let subsets = 1usize << p;
    let mut sums = vec![0.0f64; subsets];
    let mut counts = vec![0u32; subsets];
    // Rows go in blocks so each model's writes stay contiguous and the block's per-row scores
    // (for the median) stay in cache.
    const BLOCK: usize = 64;
    let mut block_scores = vec![0.0; BLOCK * m];
    let mut buf: Vec<f64> = Vec::with_capacity(m);
    let mut start = 0;
    while start < n {
        let len = BLOCK.min(n - start);
        for j in 0..len {
            let row = start + j;
            for mask in 1..subsets {
                let top = usize::BITS - 1 - mask.leading_zeros();
                let rest = mask & !(1 << top);
                let x = columns[top as usize][row];
                // NaN is skipped, as pandas' mean does.
                if x.is_nan() {
                    sums[mask] = sums[rest];
                    counts[mask] = counts[rest];
                } else {
                    sums[mask] = sums[rest] + x;
                    counts[mask] = counts[rest] + 1;
                }
            }
            let scores = &mut block_scores[j * m..(j + 1) * m];
            for (slot, &mask) in scores.iter_mut().zip(&masks) {
                *slot = if counts[mask] == 0 {
                    f64::NAN
                } else {
                    sums[mask] / counts[mask] as f64
                };
            }
        }
        for j in 0..len {
            model_scores
                .row_mut(start + j)
                .copy_from_slice(&block_scores[j * m..(j + 1) * m]);
        }
        for j in 0..len {
            buf.clear();
            buf.extend(
                block_scores[j * m..(j + 1) * m]
                    .iter()
                    .copied()
                    .filter(|x| !x.is_nan()),
            );
            median_score[start + j] = median(&mut buf);
        }
        start += len;
    }
    let rows: Vec<usize> = (0..n).collect();
    let rankings = rank_wards(ward_names, &rows, &median_score);
    Ok(CompositeResult {
        models,
        model_scores,
        median_score,
        rankings,
    })
}

/// numpy median (mean of the two middle values for an even count); NaN when empty.
fn median(values: &mut [f64]) -> f64 {
    let len = values.len();
    if len == 0 {
        return f64::NAN;
    }
    let mid = len / 2;
    let (_, hi, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let hi = *hi;
    if len % 2 == 1 {
        hi
    } else {
        let lo = values[..mid]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (lo + hi) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combination_order_and_counts() {
        let c = combinations(3);
        assert_eq!(c, vec![vec![0, 1], vec![0, 2], vec![1, 2], vec![0, 1, 2]]);
        for p in 2..=10 {
            assert_eq!(combinations(p).len(), model_count(p));
        }
        assert_eq!(model_count(5), 26);
        assert_eq!(model_count(8), 247);
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn model_means_skip_gaps_and_match_direct_sums() {
        let a = [0.1, 0.7, f64::NAN];
        let b = [0.3, f64::NAN, f64::NAN];
        let c = [0.9, 0.2, 0.4];
        let vars: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let names: Vec<String> = ["x", "y", "z"].iter().map(|s| s.to_string()).collect();
        let r = composite(&vars, &[&a, &b, &c], &names, usize::MAX).unwrap();
        // Models: (a,b) (a,c) (b,c) (a,b,c).
        assert_eq!(r.model_scores.get(0, 0), (0.1 + 0.3) / 2.0);
        assert_eq!(r.model_scores.get(3, 0), (0.1 + 0.3 + 0.9) / 3.0);
        assert_eq!(r.model_scores.get(0, 1), 0.7);
        assert!(r.model_scores.get(0, 2).is_nan());
        assert_eq!(r.model_scores.get(3, 2), 0.4);
        assert_eq!(r.rankings.last().map(|w| w.rank), Some(3));
        assert_eq!(r.models[3].formula(), "a,b,c");
    }

    #[test]
    fn too_many_variables() {
        let cols: Vec<Vec<f64>> = vec![vec![0.0]; 16];
        let refs: Vec<&[f64]> = cols.iter().map(|c| c.as_slice()).collect();
        let vars: Vec<String> = (0..16).map(|i| format!("v{i}")).collect();
        let e = composite(&vars, &refs, &["a".into()], usize::MAX).unwrap_err();
        assert_eq!(e, Error::TooManyVariables { count: 16, max: 15 });
    }
}
