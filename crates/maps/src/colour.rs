//! Colour scales: small sampled tables, interpolated in sRGB like Plotly does.

/// matplotlib/Plotly "Plasma" sampled at 0, 0.1, …, 1 (dark blue-violet to yellow).
const PLASMA: [[u8; 3]; 11] = [
    [0x0d, 0x08, 0x87],
    [0x41, 0x04, 0x9d],
    [0x6a, 0x00, 0xa8],
    [0x8f, 0x0d, 0xa4],
    [0xb1, 0x2a, 0x90],
    [0xcc, 0x47, 0x78],
    [0xe1, 0x64, 0x62],
    [0xf2, 0x84, 0x4b],
    [0xfc, 0xa6, 0x36],
    [0xfc, 0xce, 0x25],
    [0xf0, 0xf9, 0x21],
];

/// Four greens from ColorBrewer "Greens", darkest first (ChatMRPT's PCA map runs #238b45 to
/// #c7e9c0).
pub(crate) const GREENS_4: [&str; 4] = ["#238b45", "#41ab5d", "#74c476", "#c7e9c0"];

/// ColorBrewer "YlOrRd" for 1–5 classes, lightest first.
pub(crate) fn yl_or_rd(classes: usize) -> &'static [&'static str] {
    match classes {
        0 => &[],
        1 => &["#fd8d3c"],
        2 => &["#fecc5c", "#e31a1c"],
        3 => &["#ffeda0", "#feb24c", "#f03b20"],
        4 => &["#ffffb2", "#fecc5c", "#fd8d3c", "#e31a1c"],
        _ => &["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"],
    }
}

/// Plasma at `t` in [0, 1] (clamped; NaN gives the start colour).
pub(crate) fn plasma(t: f64) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let pos = t * (PLASMA.len() - 1) as f64;
    let i = (pos.floor() as usize).min(PLASMA.len() - 2);
    let f = pos - i as f64;
    let a = PLASMA[i];
    let b = PLASMA[i + 1];
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
    [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])]
}

pub(crate) fn hex(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// Number of distinct fills on the composite map: enough to look continuous, few enough to group.
pub(crate) const RANK_LEVELS: usize = 64;

/// Colour level of a rank on the reversed-Plasma rank scale: rank 1 gets level 0 (darkest), the
/// last rank `RANK_LEVELS - 1` (yellow).
pub(crate) fn rank_level(rank: u32, max_rank: u32) -> usize {
    if max_rank <= 1 {
        return 0;
    }
    let t = f64::from(rank.clamp(1, max_rank) - 1) / f64::from(max_rank - 1);
    (t * (RANK_LEVELS - 1) as f64).round() as usize
}

pub(crate) fn rank_level_fill(level: usize) -> String {
    hex(plasma(level as f64 / (RANK_LEVELS - 1) as f64))
}

/// Quartile class of a rank, 0 = most vulnerable quarter.
pub(crate) fn rank_quartile(rank: u32, max_rank: u32) -> usize {
    if max_rank == 0 {
        return 0;
    }
    let r = u64::from(rank.clamp(1, max_rank) - 1);
    ((r * 4 / u64::from(max_rank)) as usize).min(3)
}

/// Colour of a vulnerability category on charts.
pub(crate) fn category_fill(category: &str) -> &'static str {
    let c = category.to_ascii_lowercase();
    if c.starts_with("high") {
        "#d73027"
    } else if c.starts_with("medium") {
        "#fdae61"
    } else if c.starts_with("low") {
        "#1a9850"
    } else {
        "#9e9e9e"
    }
}

/// Quantile class breaks of the finite values: at most `max_classes` classes, equal breaks merged.
/// Returns the `k + 1` ascending break values (first = min, last = max); empty without values.
pub(crate) fn quantile_breaks(values: &[f64], max_classes: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() || max_classes == 0 {
        return Vec::new();
    }
    v.sort_by(f64::total_cmp);
    let mut breaks: Vec<f64> = Vec::with_capacity(max_classes + 1);
    for j in 0..=max_classes {
        let q = quantile_sorted(&v, j as f64 / max_classes as f64);
        if breaks.last().is_none_or(|&b| q > b) {
            breaks.push(q);
        }
    }
    if breaks.len() == 1 {
        // All values equal: one class spanning that value.
        breaks.push(breaks[0]);
    }
    breaks
}

/// Class index of `x` for breaks from [`quantile_breaks`]: the first class whose upper break is
/// at least `x`.
pub(crate) fn class_of(x: f64, breaks: &[f64]) -> usize {
    let classes = breaks.len().saturating_sub(1);
    (1..breaks.len())
        .find(|&i| x <= breaks[i])
        .map_or(classes.saturating_sub(1), |i| i - 1)
}

/// Linear-interpolated quantile of sorted values (numpy's default, Plotly's "linear").
pub(crate) fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = p.clamp(0.0, 1.0) * (n - 1) as f64;
            let i = (pos.floor() as usize).min(n - 2);
            let f = pos - i as f64;
            sorted[i] + (sorted[i + 1] - sorted[i]) * f
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plasma_ends_and_midpoint() {
        assert_eq!(hex(plasma(0.0)), "#0d0887");
        assert_eq!(hex(plasma(1.0)), "#f0f921");
        assert_eq!(hex(plasma(0.5)), "#cc4778");
        assert_eq!(hex(plasma(f64::NAN)), "#0d0887");
        assert_eq!(hex(plasma(7.0)), "#f0f921");
    }

    #[test]
    fn rank_one_is_darkest() {
        assert_eq!(rank_level(1, 66), 0);
        assert_eq!(rank_level(66, 66), RANK_LEVELS - 1);
        assert_eq!(rank_level_fill(0), "#0d0887");
        assert_eq!(rank_level_fill(RANK_LEVELS - 1), "#f0f921");
        let lum = |h: &str| {
            let v = u32::from_str_radix(&h[1..], 16).unwrap();
            (v >> 16) + ((v >> 8) & 255) + (v & 255)
        };
        assert!(
            lum(&rank_level_fill(rank_level(1, 66))) < lum(&rank_level_fill(rank_level(33, 66)))
        );
        assert_eq!(rank_level(1, 1), 0);
        assert_eq!(rank_level(0, 0), 0);
    }

    #[test]
    fn rank_quartiles() {
        let counts = (1..=66).fold([0; 4], |mut c, r| {
            c[rank_quartile(r, 66)] += 1;
            c
        });
        assert_eq!(counts, [17, 16, 17, 16]);
        assert_eq!(rank_quartile(1, 66), 0);
        assert_eq!(rank_quartile(66, 66), 3);
        assert_eq!(rank_quartile(1, 1), 0);
    }

    fn approx(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn quantile_classes() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let b = quantile_breaks(&v, 5);
        approx(&b, &[1.0, 2.8, 4.6, 6.4, 8.2, 10.0]);
        assert_eq!(class_of(1.0, &b), 0);
        assert_eq!(class_of(2.8, &b), 0);
        assert_eq!(class_of(3.0, &b), 1);
        assert_eq!(class_of(10.0, &b), 4);
        let counts = v.iter().fold([0; 5], |mut c, &x| {
            c[class_of(x, &b)] += 1;
            c
        });
        assert_eq!(counts, [2, 2, 2, 2, 2]);
    }

    #[test]
    fn quantile_classes_merge_ties_and_skip_missing() {
        let v = [0.0, 0.0, 0.0, 0.0, 1.0, f64::NAN, f64::INFINITY];
        let b = quantile_breaks(&v, 5);
        approx(&b, &[0.0, 0.2, 1.0]);
        assert_eq!(class_of(0.0, &b), 0);
        assert_eq!(class_of(1.0, &b), 1);
        let same = quantile_breaks(&[3.0, 3.0], 5);
        assert_eq!(same, vec![3.0, 3.0]);
        assert_eq!(class_of(3.0, &same), 0);
        assert!(quantile_breaks(&[f64::NAN], 5).is_empty());
    }

    #[test]
    fn colour_tables() {
        for k in 1..=6 {
            assert_eq!(yl_or_rd(k).len(), k.min(5));
        }
        assert_eq!(category_fill("High Risk"), "#d73027");
        assert_eq!(category_fill("Low Risk"), "#1a9850");
        assert_eq!(category_fill("?"), "#9e9e9e");
    }
}
