//! The numeric kernels: numpy's pairwise summation (so means agree with pandas to the last
//! bits where it matters), a cyclic Jacobi eigensolver for small symmetric matrices (p <= 15
//! variables, so O(p^3) sweeps are nothing), and the chi-square tail for Bartlett's test.

/// numpy's `pairwise_sum` for contiguous doubles (blocks of 128, eight accumulators).
pub(crate) fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// Mean of the present values (pandas `mean`, NaN skipped); `None` when nothing is present.
/// pandas' nanmean zero-fills the gaps and sums the whole column, so the blocks of the pairwise
/// sum line up with row positions; doing the same keeps the last bit equal.
pub(crate) fn mean_present(values: &[Option<f64>]) -> Option<f64> {
    let count = values.iter().flatten().count();
    if count == 0 {
        return None;
    }
    let filled: Vec<f64> = values.iter().map(|v| v.unwrap_or(0.0)).collect();
    Some(pairwise_sum(&filled) / count as f64)
}

/// Sample variance (ddof = 1) of the present values; `None` with fewer than two.
pub(crate) fn sample_variance(values: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.len() < 2 {
        return None;
    }
    let mean = pairwise_sum(&present) / present.len() as f64;
    let sq: Vec<f64> = present.iter().map(|x| (x - mean) * (x - mean)).collect();
    Some(pairwise_sum(&sq) / (present.len() - 1) as f64)
}

/// Eigen-decomposition of a symmetric matrix (row-major, n x n) by cyclic Jacobi rotations.
/// Returns eigenvalues in descending order and the matching eigenvectors as columns of a
/// row-major matrix (`vectors[i * n + k]` is component i of eigenvector k).
pub(crate) fn symmetric_eigen(matrix: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = matrix.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let mut off = 0.0;
        for p in 0..n {
            for q in (p + 1)..n {
                off += a[p * n + q] * a[p * n + q];
            }
        }
        let scale: f64 = (0..n)
            .map(|i| a[i * n + i].abs())
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        if off.sqrt() <= 1e-300 || off.sqrt() < scale * 1e-17 {
            break;
        }
        for p in 0..n {
            for q in (p + 1)..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let app = a[p * n + p];
                let aqq = a[q * n + q];
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    // Stable on equal eigenvalues so results are deterministic.
    order.sort_by(|&x, &y| a[y * n + y].total_cmp(&a[x * n + x]));
    let values: Vec<f64> = order.iter().map(|&k| a[k * n + k]).collect();
    let mut vectors = vec![0.0; n * n];
    for (new_k, &k) in order.iter().enumerate() {
        for i in 0..n {
            vectors[i * n + new_k] = v[i * n + k];
        }
    }
    (values, vectors)
}

/// Moore–Penrose pseudo-inverse of a symmetric matrix (numpy `pinv`, rcond 1e-15 relative).
pub(crate) fn symmetric_pinv(matrix: &[f64], n: usize) -> Vec<f64> {
    let (vals, vecs) = symmetric_eigen(matrix, n);
    let max = vals.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let cutoff = 1e-15 * max;
    let mut out = vec![0.0; n * n];
    for k in 0..n {
        if vals[k].abs() <= cutoff {
            continue;
        }
        let inv = 1.0 / vals[k];
        for i in 0..n {
            for j in 0..n {
                out[i * n + j] += vecs[i * n + k] * inv * vecs[j * n + k];
            }
        }
    }
    out
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos (g = 7, n = 9): ~1e-15 relative, plenty for a p-value.
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised upper incomplete gamma Q(a, x) (series below a+1, continued fraction above).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let gln = ln_gamma(a);
    if x < a + 1.0 {
        let mut ap = a;
        let mut sum = 1.0 / a;
        let mut del = sum;
        for _ in 0..10_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        let p = sum * (-x + a * x.ln() - gln).exp();
        (1.0 - p).max(0.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (-x + a * x.ln() - gln).exp() * h
    }
}

/// `1 - chi2.cdf(x, df)`.
pub(crate) fn chi2_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    gamma_q(df / 2.0, x / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_matches_plain_sum_on_exact_values() {
        let v: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        assert_eq!(pairwise_sum(&v), 499_500.0);
        assert_eq!(pairwise_sum(&[]), 0.0);
    }

    #[test]
    fn eigen_of_known_matrix() {
        let m = [2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 5.0];
        let (vals, vecs) = symmetric_eigen(&m, 3);
        assert!((vals[0] - 5.0).abs() < 1e-14);
        assert!((vals[1] - 3.0).abs() < 1e-14);
        assert!((vals[2] - 1.0).abs() < 1e-14);
        // A v = lambda v for each column.
        for k in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|j| m[i * 3 + j] * vecs[j * 3 + k]).sum();
                assert!((av - vals[k] * vecs[i * 3 + k]).abs() < 1e-13);
            }
        }
    }

    #[test]
    fn chi2_tail() {
        // scipy.stats.chi2.sf(3.84145882069412, 1) = 0.05
        assert!((chi2_sf(3.841_458_820_694_124, 1.0) - 0.05).abs() < 1e-12);
        // chi2.sf(10, 10) = 0.44049328506521257
        assert!((chi2_sf(10.0, 10.0) - 0.440_493_285_065_212_6).abs() < 1e-12);
        assert!((chi2_sf(2.0, 2.0) - (-1.0f64).exp()).abs() < 1e-14);
    }
}
