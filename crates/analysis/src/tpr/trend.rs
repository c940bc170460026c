//! Trends of yearly series (tpr.md §6.2-6.3): OLS slope on calendar years, direction,
//! Kendall's tau-b and the Mann-Kendall p-value exactly as scipy 1.17's `kendalltau`.

use mrpt_table::tpr::{Direction, TestMethod, Trend, round_half_even};

/// One defined point of a series: (year, rounded value, method used, tests that year).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Calendar year (the x of the slope).
    pub year: u16,
    /// The value that year, rounded as written (TPR % or burden).
    pub value: f64,
    /// The method the value comes from.
    pub method: Option<TestMethod>,
    /// Tests that year.
    pub tested: f64,
}

/// OLS slope of `y` on `x`, sums left to right (tpr.md §6.2).
pub fn ols_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mut sx = 0.0;
    let mut sy = 0.0;
    for (x, y) in points {
        sx += x;
        sy += y;
    }
    let (mx, my) = (sx / n, sy / n);
    let mut num = 0.0;
    let mut den = 0.0;
    for (x, y) in points {
        num += (x - mx) * (y - my);
        den += (x - mx) * (x - mx);
    }
    num / den
}

fn sign(v: f64) -> i64 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}

/// Kendall's tau-b and the two-sided p-value (scipy `kendalltau(method='auto')`) for distinct
/// x. `None` when n < 2 or every y is equal.
pub fn kendall(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let mut s: i64 = 0;
    let mut discordant: u64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            let v = sign(points[j].0 - points[i].0) * sign(points[j].1 - points[i].1);
            s += v;
            if v < 0 {
                discordant += 1;
            }
        }
    }
    // Tie groups of y.
    let mut ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    ys.sort_by(f64::total_cmp);
    let mut ytie: u64 = 0;
    let mut y1: f64 = 0.0;
    let mut i = 0;
    while i < ys.len() {
        let mut j = i;
        while j < ys.len() && ys[j] == ys[i] {
            j += 1;
        }
        let t = (j - i) as u64;
        ytie += t * (t - 1) / 2;
        y1 += (t * (t - 1) * (2 * t + 5)) as f64;
        i = j;
    }
    let tot = (n * (n - 1) / 2) as u64;
    if ytie == tot {
        return None;
    }
    // scipy: tau = con_minus_dis / sqrt(tot - xtie) / sqrt(tot - ytie), clipped to [-1, 1].
    let tau = (s as f64 / (tot as f64).sqrt() / ((tot - ytie) as f64).sqrt()).clamp(-1.0, 1.0);
    let p = if ytie == 0 && (n <= 33 || discordant.min(tot - discordant) <= 1) {
        kendall_p_exact(n as u64, tot - discordant)
    } else {
        let m = (n * (n - 1)) as f64;
        let var = (m * (2.0 * n as f64 + 5.0) - y1) / 18.0;
        let z = s as f64 / var.sqrt();
        // 2 * sf(|z|) of the standard normal.
        libm::erfc(z.abs() / std::f64::consts::SQRT_2)
    };
    Some((tau, p))
}

/// scipy's `_kendall_p_exact(n, c)`, two-sided, with c the concordant pairs.
fn kendall_p_exact(n: u64, c: u64) -> f64 {
    let tot = n * (n - 1) / 2;
    let c = c.min(tot - c);
    let factorial = |k: u64| (1..=k).fold(1.0f64, |acc, v| acc * v as f64);
    let prob = if n <= 2 {
        1.0
    } else if c == 0 {
        if n < 171 { 2.0 / factorial(n) } else { 0.0 }
    } else if c == 1 {
        if n < 172 { 2.0 / factorial(n - 1) } else { 0.0 }
    } else if 4 * c == n * (n - 1) {
        1.0
    } else if n < 171 {
        // Mahonian numbers by cumulative sums, as scipy does.
        let c = c as usize;
        let mut new = vec![0.0f64; c + 1];
        new[0] = 1.0;
        if c >= 1 {
            new[1] = 1.0;
        }
        for j in 3..=n as usize {
            let mut acc = 0.0;
            for v in new.iter_mut() {
                acc += *v;
                *v = acc;
            }
            if j <= c {
                let shifted: Vec<f64> = new[..c + 1 - j].to_vec();
                for (k, v) in shifted.into_iter().enumerate() {
                    new[j + k] -= v;
                }
            }
        }
        2.0 * new.iter().sum::<f64>() / factorial(n)
    } else {
        // Beyond n = 170 scipy uses the normal approximation only via `method='auto'`
        // (n > 33 with c > 1 never reaches here).
        1.0
    };
    prob.clamp(0.0, 1.0)
}

/// The trend of a series of defined points, sorted by year (tpr.md §6.2-6.3). `last_year` is
/// the dataset's last year (for `Tested_Latest`), `threshold` the direction threshold.
pub fn trend(points: &[Point], last_year: Option<u16>, threshold: f64) -> Trend {
    let n = points.len();
    let mut methods: Vec<&str> = points
        .iter()
        .filter_map(|p| p.method.map(TestMethod::as_str))
        .collect();
    methods.sort_unstable();
    methods.dedup();
    let methods_used = methods.join("+");
    if n < 2 {
        return Trend {
            slope: None,
            direction: Direction::InsufficientData,
            delta_latest: None,
            first: None,
            latest: None,
            first_year: None,
            latest_year: None,
            years_count: n,
            kendall_tau: None,
            mk_p_value: None,
            tested_latest: None,
            methods_used,
        };
    }
    let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.year as f64, p.value)).collect();
    let slope = ols_slope(&xy);
    let direction = if slope >= threshold {
        Direction::Worsening
    } else if slope <= -threshold {
        Direction::Improving
    } else {
        Direction::Stable
    };
    let (first, latest) = (points[0], points[n - 1]);
    let kendall = kendall(&xy);
    Trend {
        slope: Some(round_half_even(slope, 3)),
        direction,
        delta_latest: Some(round_half_even(latest.value - points[n - 2].value, 2)),
        first: Some(first.value),
        latest: Some(latest.value),
        first_year: Some(first.year),
        latest_year: Some(latest.year),
        years_count: n,
        kendall_tau: kendall.map(|k| k.0),
        mk_p_value: kendall.map(|k| k.1),
        tested_latest: (Some(latest.year) == last_year).then_some(latest.tested),
        methods_used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(values: &[(u16, f64)]) -> Vec<Point> {
        values
            .iter()
            .map(|&(year, value)| Point {
                year,
                value,
                method: Some(TestMethod::Rdt),
                tested: 100.0,
            })
            .collect()
    }

    #[test]
    fn slope_on_years_not_index() {
        // Kano Adakawa: 36.29, 35.24, 33.36, 31.09 -> -1.748.
        let t = trend(
            &pts(&[(2021, 36.29), (2022, 35.24), (2023, 33.36), (2024, 31.09)]),
            Some(2024),
            2.0,
        );
        assert_eq!(t.slope, Some(-1.748));
        assert_eq!(t.direction, Direction::Stable);
        assert_eq!(t.delta_latest, Some(-2.27));
        assert_eq!(t.kendall_tau, Some(-1.0));
        assert_eq!(t.mk_p_value, Some(0.08333333333333333));
        assert_eq!(t.tested_latest, Some(100.0));
        // A gap year: x = years (2021, 2023, 2024) gives a different slope from the index.
        let gap = ols_slope(&[(2021.0, 1.0), (2023.0, 2.0), (2024.0, 4.0)]);
        let index = ols_slope(&[(0.0, 1.0), (1.0, 2.0), (2.0, 4.0)]);
        assert!((gap - 0.9285714285714286).abs() < 1e-12, "{gap}");
        assert_eq!(index, 1.5);
    }

    #[test]
    fn direction_thresholds() {
        let w = trend(&pts(&[(2021, 10.0), (2022, 12.0)]), None, 2.0);
        assert_eq!(w.direction, Direction::Worsening);
        assert_eq!(w.tested_latest, None);
        let i = trend(&pts(&[(2021, 12.0), (2022, 10.0)]), None, 2.0);
        assert_eq!(i.direction, Direction::Improving);
        let s = trend(&pts(&[(2021, 12.0), (2022, 10.01)]), None, 2.0);
        assert_eq!(s.direction, Direction::Stable);
        let one = trend(&pts(&[(2021, 12.0)]), None, 2.0);
        assert_eq!(one.direction, Direction::InsufficientData);
        assert_eq!(one.years_count, 1);
        assert_eq!(one.slope, None);
    }

    #[test]
    fn kendall_like_scipy() {
        // Values from scipy.stats.kendalltau on the same points.
        let k = |ys: &[f64]| {
            let xy: Vec<(f64, f64)> = ys
                .iter()
                .enumerate()
                .map(|(i, y)| (2021.0 + i as f64, *y))
                .collect();
            kendall(&xy)
        };
        assert_eq!(
            k(&[1.0, 3.0, 2.0, 4.0]),
            Some((0.6666666666666669, 0.3333333333333333))
        );
        assert_eq!(
            k(&[2.0, 1.0, 3.0, 4.0]).map(|v| v.1),
            Some(0.3333333333333333)
        );
        assert_eq!(
            k(&[1.0, 2.0, 4.0, 3.0]).map(|v| v.1),
            Some(0.3333333333333333)
        );
        assert_eq!(k(&[3.0, 1.0, 4.0, 2.0]), Some((0.0, 1.0)));
        assert_eq!(k(&[1.0, 3.0, 2.0]), Some((0.33333333333333337, 1.0)));
        assert_eq!(k(&[2.0, 1.0]), Some((-1.0, 1.0)));
        assert_eq!(k(&[2.0, 2.0, 2.0]), None);
        // n = 6, exact path through the Mahonian recursion: 2 discordant pairs, so
        // p = 2 * (M(6,0) + M(6,1) + M(6,2)) / 6! = 2 * (1 + 5 + 14) / 720.
        let six = k(&[1.0, 3.0, 2.0, 5.0, 4.0, 6.0]).unwrap();
        assert!((six.0 - 0.7333333333333333).abs() < 1e-12, "{six:?}");
        assert!((six.1 - 0.05555555555555555).abs() < 1e-12, "{six:?}");
        // Ties in y: the asymptotic path. tau = 5 / sqrt(6) / sqrt(5); var = (12 * 13 - 18) / 18,
        // p = erfc(|S| / sqrt(var) / sqrt(2)) (Python's math.erfc on the same numbers).
        let tied = k(&[1.0, 1.0, 2.0, 3.0]).unwrap();
        assert!((tied.0 - 0.9128709291752769).abs() < 1e-12, "{tied:?}");
        assert!((tied.1 - 0.07095149242730567).abs() < 1e-12, "{tied:?}");
    }
}
