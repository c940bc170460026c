//! Descriptive statistics and correlation tests, written to agree with pandas (`describe`:
//! linear quantiles, sample standard deviation) and scipy (`pearsonr`, `spearmanr`: two-sided
//! p-values from Student's t with n − 2 degrees of freedom). Checked against values scipy
//! computed once (`tests/fixtures/explore_scipy.json`).

pub use mrpt_table::explore::CorrelationMethod;

/// pandas' `describe()` of one numeric column (missing values skipped).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Describe {
    /// Values present (finite).
    pub count: usize,
    /// Values missing or not finite.
    pub missing: usize,
    /// Arithmetic mean; `None` without values.
    pub mean: Option<f64>,
    /// Sample standard deviation (ddof = 1); `None` below two values.
    pub std: Option<f64>,
    /// Smallest value; `None` without values.
    pub min: Option<f64>,
    /// 25th percentile (linear interpolation); `None` without values.
    pub q25: Option<f64>,
    /// 50th percentile; `None` without values.
    pub median: Option<f64>,
    /// 75th percentile; `None` without values.
    pub q75: Option<f64>,
    /// Largest value; `None` without values.
    pub max: Option<f64>,
}

/// Linear-interpolation quantile of sorted values (numpy's default, which pandas uses).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = p.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi.min(n - 1)] - sorted[lo]) * frac)
}

/// Arithmetic mean (summed left to right); `None` for an empty slice.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// Sample standard deviation (ddof = 1).
pub fn std_dev(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let m = mean(values)?;
    let ss: f64 = values.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (n - 1) as f64).sqrt())
}

/// pandas' `describe()` of the finite values; missing and non-finite values are counted in `missing`.
pub fn describe(values: &[Option<f64>]) -> Describe {
    let mut v: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    v.sort_by(f64::total_cmp);
    Describe {
        count: v.len(),
        missing: values.len() - v.len(),
        mean: mean(&v),
        std: std_dev(&v),
        min: v.first().copied(),
        q25: quantile_sorted(&v, 0.25),
        median: quantile_sorted(&v, 0.5),
        q75: quantile_sorted(&v, 0.75),
        max: v.last().copied(),
    }
}

/// A correlation coefficient, its two-sided p-value and the number of complete pairs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Correlation {
    /// Pearson or Spearman.
    pub method: CorrelationMethod,
    /// The coefficient, -1 to 1.
    pub r: f64,
    /// Two-sided p-value, as scipy computes it.
    pub p: f64,
    /// Complete pairs used.
    pub n: usize,
}

/// Complete pairs (both values present and finite).
pub fn complete_pairs(a: &[Option<f64>], b: &[Option<f64>]) -> (Vec<f64>, Vec<f64>) {
    a.iter()
        .zip(b)
        .filter_map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Some((*x, *y)),
            _ => None,
        })
        .unzip()
}

/// Pearson's r of two equally long samples; `None` below 3 pairs or when one side is constant.
pub fn pearson_r(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let mx = mean(x)?;
    let my = mean(y)?;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Ranks from 1, ties given their average rank (scipy's `rankdata(method="average")`).
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = avg;
        }
        i = j + 1;
    }
    ranks
}

/// Two-sided p-value of a correlation r over n pairs (t = r·√((n−2)/(1−r²)), n − 2 df), as
/// scipy's `pearsonr` and `spearmanr` compute it.
pub fn correlation_p(r: f64, n: usize) -> f64 {
    if n < 3 {
        return f64::NAN;
    }
    let df = (n - 2) as f64;
    let r2 = r * r;
    if r2 >= 1.0 {
        return 0.0;
    }
    let t2 = r2 * df / (1.0 - r2);
    regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t2))
}

/// The correlation of two columns over their complete pairs.
pub fn correlate(
    a: &[Option<f64>],
    b: &[Option<f64>],
    method: CorrelationMethod,
) -> Option<Correlation> {
    let (x, y) = complete_pairs(a, b);
    let r = match method {
        CorrelationMethod::Pearson => pearson_r(&x, &y)?,
        CorrelationMethod::Spearman => pearson_r(&average_ranks(&x), &average_ranks(&y))?,
    };
    Some(Correlation {
        method,
        r,
        p: correlation_p(r, x.len()),
        n: x.len(),
    })
}

/// Ordinary least squares y = intercept + slope·x over complete pairs; `None` when x is
/// constant or fewer than 2 pairs.
pub fn ols(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    if x.len() < 2 || x.len() != y.len() {
        return None;
    }
    let mx = mean(x)?;
    let my = mean(y)?;
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let slope = sxy / sxx;
    Some((my - slope * mx, slope))
}

/// I_x(a, b), the regularised incomplete beta function (continued fraction, Numerical Recipes
/// §6.4), accurate to about 1e-14 here.
pub fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front =
        libm::lgamma(a + b) - libm::lgamma(a) - libm::lgamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=500 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    #[test]
    fn hand_computed_describe() {
        // 1, 2, 3, 4 and a missing value: mean 2.5, sd sqrt(5/3), quartiles 1.75 / 2.5 / 3.25.
        let d = describe(&[Some(1.0), Some(2.0), None, Some(3.0), Some(4.0)]);
        assert_eq!((d.count, d.missing), (4, 1));
        close(d.mean.unwrap(), 2.5, 1e-15);
        close(d.std.unwrap(), (5.0f64 / 3.0).sqrt(), 1e-15);
        close(d.q25.unwrap(), 1.75, 1e-15);
        close(d.median.unwrap(), 2.5, 1e-15);
        close(d.q75.unwrap(), 3.25, 1e-15);
        assert_eq!((d.min, d.max), (Some(1.0), Some(4.0)));
        let e = describe(&[None]);
        assert_eq!((e.count, e.mean, e.std), (0, None, None));
    }

    #[test]
    fn hand_computed_correlations() {
        // y = 2x: r = 1, p = 0. x = 1..5, y = 2,1,4,3,5: sxy = 8, sxx = syy = 10, r = 0.8.
        let x = [Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(5.0)];
        let y = [Some(2.0), Some(1.0), Some(4.0), Some(3.0), Some(5.0)];
        let c = correlate(&x, &y, CorrelationMethod::Pearson).unwrap();
        close(c.r, 0.8, 1e-15);
        // t = 0.8·√(3/0.36) = 2.3094; two-sided p with 3 df = 0.10409 (t tables; scipy says
        // 0.10408803866182782).
        close(c.p, 0.104_088_038_661_827_82, 1e-14);
        let s = correlate(&x, &y, CorrelationMethod::Spearman).unwrap();
        close(s.r, 0.8, 1e-15);
        let twice: Vec<Option<f64>> = x.iter().map(|v| v.map(|v| 2.0 * v)).collect();
        let perfect = correlate(&x, &twice, CorrelationMethod::Pearson).unwrap();
        close(perfect.r, 1.0, 1e-15);
        assert!(perfect.p < 1e-12, "{}", perfect.p);
        assert!(correlate(&x[..2], &y[..2], CorrelationMethod::Pearson).is_none());
        let constant = [Some(1.0); 5];
        assert!(correlate(&x, &constant, CorrelationMethod::Pearson).is_none());
    }

    #[test]
    fn ties_get_average_ranks() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 30.0]),
            [1.5, 3.0, 1.5, 4.0]
        );
    }

    #[test]
    fn incomplete_beta_known_values() {
        // I_x(1, 1) = x; I_0.5(a, a) = 0.5.
        close(regularized_incomplete_beta(1.0, 1.0, 0.3), 0.3, 1e-14);
        close(regularized_incomplete_beta(3.5, 3.5, 0.5), 0.5, 1e-14);
    }

    #[test]
    fn ols_fits_a_line() {
        let (a, b) = ols(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]).unwrap();
        close(a, 1.0, 1e-15);
        close(b, 2.0, 1e-15);
        assert!(ols(&[1.0, 1.0], &[1.0, 2.0]).is_none());
    }
}
