//! PCA (§4, §0.6): z-scores with the population standard deviation, an eigen-decomposition of
//! the centred cross-product matrix (the same subspace sklearn's SVD finds), sklearn >= 1.5's
//! sign rule (largest |loading| positive), score = EVR-weighted sum of the first three
//! components. KMO and Bartlett are computed and reported; unsuitable data still get a PCA,
//! with the reasons attached.

use serde::{Deserialize, Serialize};

use crate::linalg::{chi2_sf, pairwise_sum, symmetric_eigen, symmetric_pinv};
use crate::ranking::rank_wards;
use mrpt_table::{Category, RankedWard};

/// Variance explained by the kept components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainedVariance {
    /// Explained-variance ratio of each kept component, 0-1.
    pub per_component: Vec<f64>,
    /// Running sum of `per_component`.
    pub cumulative: Vec<f64>,
    /// Last of `cumulative`: share of variance the kept components explain, 0-1.
    pub total_explained: f64,
}

/// KMO and Bartlett's sphericity test on the standardised data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcaSuitability {
    /// True when `reasons` is empty: enough wards and variables, KMO >= 0.5, Bartlett's p < 0.05 (the PCA runs either way).
    pub suitable: bool,
    /// Kaiser-Meyer-Olkin measure, 0-1; `None` when it could not be computed.
    pub kmo: Option<f64>,
    /// marvelous / meritorious / middling / mediocre / miserable / unacceptable.
    pub kmo_band: Option<String>,
    /// Bartlett's chi-square statistic; `None` when the correlation matrix is singular.
    pub bartlett_chi_square: Option<f64>,
    /// Its degrees of freedom, p(p - 1)/2.
    pub bartlett_df: usize,
    /// Bartlett's p-value; `None` with the statistic.
    pub bartlett_p_value: Option<f64>,
    /// Why the data are unsuitable (empty when suitable).
    pub reasons: Vec<String>,
}

/// The PCA method's output (analysis.md §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcaResult {
    /// The variables, in selection order (the column order of `components`).
    pub variables: Vec<String>,
    /// Rows of the cleaned table that took part (duplicate ward names keep the first).
    pub rows: Vec<usize>,
    /// Ward names, in `rows` order.
    pub ward_names: Vec<String>,
    /// Components kept: min(p, max(2, floor(0.8 p))) for p variables (the score uses the first 3).
    pub n_components: usize,
    /// `components[c][v]`: loading of variable v on component c (unit vectors).
    pub components: Vec<Vec<f64>>,
    /// `scores[i][c]`: component c for ward i (in `rows` order).
    pub scores: Vec<Vec<f64>>,
    /// Per ward (in `rows` order).
    pub pca_score: Vec<f64>,
    /// Sorted by rank; `score` is the PCA score.
    pub rankings: Vec<RankedWard>,
    /// Over the kept components.
    pub explained_variance: ExplainedVariance,
    /// EVR over all p components (what the ratios are normalised by).
    pub explained_variance_ratio_all: Vec<f64>,
    /// (variable, importance) sorted descending, summing to 1.
    pub importance: Vec<(String, f64)>,
    /// KMO and Bartlett, with reasons when unsuitable.
    pub suitability: PcaSuitability,
}

/// How PCA wards get their High/Medium/Low label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcaCategories {
    /// §3.6 thirds by PCA rank, like the composite.
    #[default]
    Thirds,
    /// ChatMRPT's actual behaviour: `.loc[:n//3 - 1]` / `.loc[n - n//3:]` applied to the
    /// score-sorted frame BEFORE its index is reset, i.e. label slices on the original row
    /// numbers. High runs down the ranking until the ward of row ⌊n/3⌋−1, Low runs from the
    /// ward of row n−⌊n/3⌋ to the end; sizes then depend on row order. Kept only to reproduce
    /// old outputs; falls back to thirds where pandas would raise (a label that is not there).
    ChatMrptLabelSlice,
}

fn apply_label_slice_categories(rankings: &mut [RankedWard]) {
    let n = rankings.len();
    let third = n / 3;
    let pos_of = |label: usize| rankings.iter().position(|w| w.row == label);
    let high_end = third.checked_sub(1).and_then(pos_of);
    let low_start = pos_of(n - third);
    let (Some(high_end), Some(low_start)) = (high_end, low_start) else {
        return;
    };
    for (pos, w) in rankings.iter_mut().enumerate() {
        w.category = Category::Medium;
        if pos <= high_end {
            w.category = Category::High;
        }
        if pos >= low_start {
            w.category = Category::Low;
        }
    }
}

/// k = min(p, max(2, ⌊0.8 p⌋)).
pub(crate) fn component_count(p: usize) -> usize {
    p.min(2.max(p * 4 / 5))
}

fn kmo_band(kmo: f64) -> &'static str {
    if kmo >= 0.9 {
        "marvelous"
    } else if kmo >= 0.8 {
        "meritorious"
    } else if kmo >= 0.7 {
        "middling"
    } else if kmo >= 0.6 {
        "mediocre"
    } else if kmo >= 0.5 {
        "miserable"
    } else {
        "unacceptable"
    }
}

/// Standardise columns (column-major input), sklearn StandardScaler style.
fn standardise(columns: &[Vec<f64>]) -> Vec<Vec<f64>> {
    columns
        .iter()
        .map(|col| {
            let n = col.len() as f64;
            let mean = pairwise_sum(col) / n;
            let dev: Vec<f64> = col.iter().map(|x| x - mean).collect();
            let correction = pairwise_sum(&dev);
            let sq: Vec<f64> = dev.iter().map(|d| d * d).collect();
            let var = (pairwise_sum(&sq) - correction * correction / n) / n;
            // sklearn treats a variance this close to zero as constant.
            let constant = var <= 10.0 * f64::EPSILON * mean * mean || var <= 0.0;
            if constant {
                vec![0.0; col.len()]
            } else {
                let sd = var.sqrt();
                dev.iter().map(|d| d / sd).collect()
            }
        })
        .collect()
}

fn suitability(z: &[Vec<f64>], n: usize) -> PcaSuitability {
    let p = z.len();
    let df = p * p.saturating_sub(1) / 2;
    let mut reasons = Vec::new();
    if n < p {
        reasons.push(format!("fewer wards ({n}) than variables ({p})"));
    }
    if p < 3 {
        reasons.push(format!("only {p} variables (PCA needs at least 3)"));
    }
    // Correlation matrix of the standardised columns.
    let sds: Vec<f64> = z
        .iter()
        .map(|c| pairwise_sum(&c.iter().map(|x| x * x).collect::<Vec<_>>()).sqrt())
        .collect();
    if sds.contains(&0.0) {
        reasons.push("a variable is constant, so correlations are undefined".into());
        return PcaSuitability {
            suitable: false,
            kmo: None,
            kmo_band: None,
            bartlett_chi_square: None,
            bartlett_df: df,
            bartlett_p_value: None,
            reasons,
        };
    }
    let mut r = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..p {
            let prod: Vec<f64> = z[i].iter().zip(&z[j]).map(|(a, b)| a * b).collect();
            r[i * p + j] = if i == j {
                1.0
            } else {
                (pairwise_sum(&prod) / (sds[i] * sds[j])).clamp(-1.0, 1.0)
            };
        }
    }
    let inv = symmetric_pinv(&r, p);
    let (mut r2, mut p2) = (0.0, 0.0);
    for i in 0..p {
        for j in 0..p {
            if i == j {
                continue;
            }
            let partial = -inv[i * p + j] / (inv[i * p + i] * inv[j * p + j]).sqrt();
            r2 += r[i * p + j] * r[i * p + j];
            p2 += partial * partial;
        }
    }
    let kmo = r2 / (r2 + p2);
    let kmo = if kmo.is_finite() { Some(kmo) } else { None };
    match kmo {
        Some(k) if k < 0.5 => reasons.push(format!(
            "KMO sampling adequacy {k:.3} is below 0.5 ({})",
            kmo_band(k)
        )),
        None => reasons.push("KMO could not be computed".into()),
        _ => {}
    }
    let (eig, _) = symmetric_eigen(&r, p);
    let det: f64 = eig.iter().product();
    let (chi, pval) = if det > 0.0 {
        let chi = -((n as f64 - 1.0) - (2.0 * p as f64 + 5.0) / 6.0) * det.ln();
        (Some(chi), Some(chi2_sf(chi, df as f64)))
    } else {
        reasons.push(
            "the correlation matrix is singular (determinant <= 0), so Bartlett's test fails"
                .into(),
        );
        (None, None)
    };
    if let Some(pv) = pval
        && pv.partial_cmp(&0.05) != Some(std::cmp::Ordering::Less)
    {
        reasons.push(format!(
            "Bartlett's test p-value {pv:.3e} is not below 0.05 (variables look uncorrelated)"
        ));
    }
    PcaSuitability {
        suitable: reasons.is_empty(),
        kmo,
        kmo_band: kmo.map(|k| kmo_band(k).to_string()),
        bartlett_chi_square: chi,
        bartlett_df: df,
        bartlett_p_value: pval,
        reasons,
    }
}

/// Run PCA on raw (imputed, unflipped) values: `columns[v][i]` for the kept wards.
/// `Err(reason)` when PCA cannot run at all (too few wards for the component count).
pub(crate) fn pca(
    variables: &[String],
    mut columns: Vec<Vec<f64>>,
    rows: Vec<usize>,
    ward_names: Vec<String>,
    categories: PcaCategories,
) -> Result<PcaResult, String> {
    let p = variables.len();
    let n = rows.len();
    let k = component_count(p);
    if p == 0 {
        return Err("no variables".into());
    }
    if k > n.min(p) {
        return Err(format!(
            "PCA needs at least {k} wards for {k} components, found {n}"
        ));
    }
    // Leftover gaps take the column median (SimpleImputer('median')).
    for col in &mut columns {
        if col.iter().any(|x| x.is_nan()) {
            let mut present: Vec<f64> = col.iter().copied().filter(|x| !x.is_nan()).collect();
            present.sort_by(f64::total_cmp);
            let med = match present.len() {
                0 => 0.0,
                m if m % 2 == 1 => present[m / 2],
                m => (present[m / 2 - 1] + present[m / 2]) / 2.0,
            };
            for x in col.iter_mut() {
                if x.is_nan() {
                    *x = med;
                }
            }
        }
    }
    let z = standardise(&columns);
    let suitability = suitability(&z, n);
    // Centre again (z has mean ~0 up to rounding), exactly as PCA.fit does.
    let zc: Vec<Vec<f64>> = z
        .iter()
        .map(|c| {
            let m = pairwise_sum(c) / n as f64;
            c.iter().map(|x| x - m).collect()
        })
        .collect();
    let mut cross = vec![0.0; p * p];
    for i in 0..p {
        for j in i..p {
            let prod: Vec<f64> = zc[i].iter().zip(&zc[j]).map(|(a, b)| a * b).collect();
            let s = pairwise_sum(&prod);
            cross[i * p + j] = s;
            cross[j * p + i] = s;
        }
    }
    let (values, vectors) = symmetric_eigen(&cross, p);
    let values: Vec<f64> = values.into_iter().map(|v| v.max(0.0)).collect();
    let total = pairwise_sum(&values);
    let evr_all: Vec<f64> = values
        .iter()
        .map(|v| if total > 0.0 { v / total } else { 0.0 })
        .collect();
    let mut components: Vec<Vec<f64>> = (0..k)
        .map(|c| (0..p).map(|v| vectors[v * p + c]).collect())
        .collect();
    for comp in &mut components {
        // sklearn >= 1.5 svd_flip(u_based_decision=False): first max |v| made positive.
        let mut best = 0;
        for (i, x) in comp.iter().enumerate() {
            if x.abs() > comp[best].abs() {
                best = i;
            }
        }
        if comp[best] < 0.0 {
            for x in comp.iter_mut() {
                *x = -*x;
            }
        }
    }
    let scores: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            components
                .iter()
                .map(|comp| {
                    let mut s = 0.0;
                    for v in 0..p {
                        s += zc[v][i] * comp[v];
                    }
                    s
                })
                .collect()
        })
        .collect();
    let evr: Vec<f64> = evr_all[..k].to_vec();
    let pca_score: Vec<f64> = scores
        .iter()
        .map(|s| {
            if k == 1 {
                s[0]
            } else {
                let mut acc = 0.0;
                for c in 0..k.min(3) {
                    acc += s[c] * evr[c];
                }
                acc
            }
        })
        .collect();
    let mut rankings = rank_wards(&ward_names, &rows, &pca_score);
    if categories == PcaCategories::ChatMrptLabelSlice {
        apply_label_slice_categories(&mut rankings);
    }
    let mut cumulative = Vec::with_capacity(k);
    let mut acc = 0.0;
    for e in &evr {
        acc += e;
        cumulative.push(acc);
    }
    let total_explained = pairwise_sum(&evr);
    let raw_importance: Vec<f64> = (0..p)
        .map(|v| {
            let mut s = 0.0;
            for c in 0..k {
                s += components[c][v].abs() * evr[c];
            }
            s
        })
        .collect();
    let imp_total = pairwise_sum(&raw_importance);
    let mut importance: Vec<(String, f64)> = variables
        .iter()
        .cloned()
        .zip(raw_importance.iter().map(|x| x / imp_total))
        .collect();
    importance.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(PcaResult {
        variables: variables.to_vec(),
        rows,
        ward_names,
        n_components: k,
        components,
        scores,
        pca_score,
        rankings,
        explained_variance: ExplainedVariance {
            per_component: evr,
            cumulative,
            total_explained,
        },
        explained_variance_ratio_all: evr_all,
        importance,
        suitability,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_rule() {
        let got: Vec<usize> = [1, 2, 3, 4, 5, 6, 7, 8, 10]
            .iter()
            .map(|&p| component_count(p))
            .collect();
        assert_eq!(got, vec![1, 2, 2, 3, 4, 4, 5, 6, 8]);
    }

    #[test]
    fn two_perfectly_correlated_variables() {
        let vars = vec!["a".to_string(), "b".to_string()];
        let cols = vec![vec![1.0, 2.0, 3.0], vec![2.0, 4.0, 6.0]];
        let r = pca(
            &vars,
            cols,
            vec![0, 1, 2],
            vec!["x".into(), "y".into(), "z".into()],
            PcaCategories::Thirds,
        )
        .unwrap();
        assert!((r.explained_variance_ratio_all[0] - 1.0).abs() < 1e-12);
        assert_eq!(r.rankings[0].ward_name, "z");
        assert!(!r.suitability.suitable);
    }
}
