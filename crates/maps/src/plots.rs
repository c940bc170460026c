//! Exploration charts: histogram, scatter with its OLS line, bar chart of the top N, box plots
//! by category and a correlation heatmap. Same shell, stylesheet and script as the maps; every
//! mark with data has a `data-i` and a `<title>` tooltip.

use std::fmt::Write as _;

use crate::Error;
use crate::colour::{category_fill, quantile_sorted};
use crate::html::{begin, end, fmt_tick, fmt_value, push_escaped};

const W: f64 = 900.0;
const H: f64 = 520.0;
const X0: f64 = 80.0;
const X1: f64 = 880.0;
const Y0: f64 = 20.0;
const Y1: f64 = 450.0;

/// A linear scale with "nice" ticks.
struct Scale {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Scale {
    fn new(min: f64, max: f64) -> Scale {
        let (mut min, mut max) = if min.is_finite() && max.is_finite() {
            (min, max)
        } else {
            (0.0, 1.0)
        };
        if max - min < 1e-12 {
            min -= 0.5;
            max += 0.5;
        }
        let raw = (max - min) / 6.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        Scale {
            lo: (min / step).floor() * step,
            hi: (max / step).ceil() * step,
            step,
        }
    }

    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round() as usize;
        (0..=n).map(|k| self.lo + k as f64 * self.step).collect()
    }

    fn frac(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }

    fn x(&self, v: f64) -> f64 {
        X0 + self.frac(v) * (X1 - X0)
    }

    fn y(&self, v: f64) -> f64 {
        Y1 - self.frac(v) * (Y1 - Y0)
    }
}

fn open(out: &mut String, title: &str, sub: &str, aria: &str) {
    begin(out, title, Some(sub));
    let _ = write!(
        out,
        "<figure><svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\""
    );
    push_escaped(out, aria);
    out.push_str("\">\n");
}

fn close(out: &mut String, legend: Option<&str>) {
    out.push_str("</svg>");
    if let Some(l) = legend {
        out.push_str(l);
    }
    out.push_str("</figure>");
    end(out);
}

fn axes(out: &mut String, x: Option<&Scale>, y: &Scale, x_label: &str, y_label: &str) {
    for t in y.ticks() {
        let py = y.y(t);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{X0}\" y1=\"{py:.1}\" x2=\"{X1}\" y2=\"{py:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            X0 - 6.0,
            py + 4.0,
            fmt_tick(t, y.step)
        );
    }
    if let Some(x) = x {
        for t in x.ticks() {
            let px = x.x(t);
            let _ = write!(
                out,
                "<line class=\"grid\" x1=\"{px:.1}\" y1=\"{Y0}\" x2=\"{px:.1}\" y2=\"{Y1}\"/>\
                 <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                Y1 + 16.0,
                fmt_tick(t, x.step)
            );
        }
    }
    let _ = write!(
        out,
        "<line class=\"ax\" x1=\"{X0}\" y1=\"{Y1}\" x2=\"{X1}\" y2=\"{Y1}\"/>\
         <line class=\"ax\" x1=\"{X0}\" y1=\"{Y0}\" x2=\"{X0}\" y2=\"{Y1}\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">",
        (X0 + X1) / 2.0,
        Y1 + 40.0
    );
    push_escaped(out, x_label);
    let _ = write!(
        out,
        "</text><text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">",
        (Y0 + Y1) / 2.0,
        (Y0 + Y1) / 2.0
    );
    push_escaped(out, y_label);
    out.push_str("</text>\n");
}

fn finite(values: &[Option<f64>]) -> Vec<f64> {
    values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect()
}

/// Histogram of one variable in `bins` equal-width bins (Sturges' rule when `bins` is 0).
pub fn render_histogram(
    area: Option<&str>,
    variable: &str,
    values: &[Option<f64>],
    bins: usize,
) -> Result<String, Error> {
    let v = finite(values);
    if v.is_empty() {
        return Err(Error::MissingValues {
            what: format!("a value of {variable}"),
        });
    }
    let k = if bins == 0 {
        ((v.len() as f64).log2().ceil() as usize + 1).clamp(1, 50)
    } else {
        bins.min(200)
    };
    let (min, max) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let width = if max > min {
        (max - min) / k as f64
    } else {
        1.0
    };
    let mut counts = vec![0usize; k];
    for x in &v {
        let b = (((x - min) / width) as usize).min(k - 1);
        counts[b] += 1;
    }
    let xs = Scale::new(min, if max > min { max } else { min + width });
    let ys = Scale::new(0.0, *counts.iter().max().unwrap_or(&1) as f64);
    let title = format!("Histogram of {variable}{}", suffix(area));
    let sub = format!(
        "{} ward(s) with a value, {} missing; {k} bins of width {}.",
        v.len(),
        values.len() - v.len(),
        fmt_value(width)
    );
    let mut out = String::with_capacity(8192 + k * 200);
    open(&mut out, &title, &sub, &title);
    axes(&mut out, Some(&xs), &ys, variable, "wards");
    for (b, &c) in counts.iter().enumerate() {
        let lo = min + b as f64 * width;
        let hi = lo + width;
        let (x0, x1) = (xs.x(lo), xs.x(hi));
        let y = ys.y(c as f64);
        let _ = writeln!(
            out,
            "<g class=\"row\" data-i=\"{b}\"><title>{} \u{2013} {}: {c} ward(s)</title>\
             <rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#4575b4\" stroke=\"#fff\"/></g>",
            fmt_value(lo),
            fmt_value(hi),
            x0,
            (x1 - x0).max(0.5),
            (Y1 - y).max(0.0)
        );
    }
    close(&mut out, None);
    Ok(out)
}

fn suffix(area: Option<&str>) -> String {
    match area.map(str::trim) {
        Some(a) if !a.is_empty() => format!(" \u{2014} {a}"),
        _ => String::new(),
    }
}

/// One point of a scatter plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Ward name shown in the tooltip.
    pub label: String,
    /// Value on the horizontal axis (non-finite points are skipped).
    pub x: f64,
    /// Value on the vertical axis (non-finite points are skipped).
    pub y: f64,
}

/// Scatter plot of two variables with the ordinary-least-squares line and, in the subtitle, its
/// equation and the correlation the caller computed (`note`).
pub fn render_scatter(
    area: Option<&str>,
    x_name: &str,
    y_name: &str,
    points: &[Point],
    fit: Option<(f64, f64)>,
    note: &str,
) -> Result<String, Error> {
    let pts: Vec<&Point> = points
        .iter()
        .filter(|p| p.x.is_finite() && p.y.is_finite())
        .collect();
    if pts.is_empty() {
        return Err(Error::MissingValues {
            what: format!("both {x_name} and {y_name}"),
        });
    }
    let (xmin, xmax) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.x), b.max(p.x))
        });
    let (ymin, ymax) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.y), b.max(p.y))
        });
    let xs = Scale::new(xmin, xmax);
    let ys = Scale::new(ymin, ymax);
    let title = format!("{y_name} against {x_name}{}", suffix(area));
    let mut sub = format!("{} ward(s) with both values.", pts.len());
    if let Some((a, b)) = fit {
        let _ = write!(
            sub,
            " OLS line: {y_name} = {} + {} \u{00d7} {x_name}.",
            fmt_value(a),
            fmt_value(b)
        );
    }
    if !note.is_empty() {
        sub.push(' ');
        sub.push_str(note);
    }
    let mut out = String::with_capacity(8192 + pts.len() * 160);
    open(&mut out, &title, &sub, &title);
    axes(&mut out, Some(&xs), &ys, x_name, y_name);
    for (i, p) in pts.iter().enumerate() {
        let _ = write!(out, "<g class=\"row\" data-i=\"{i}\"><title>");
        push_escaped(
            &mut out,
            &format!(
                "{}\n{x_name}: {}\n{y_name}: {}",
                p.label,
                fmt_value(p.x),
                fmt_value(p.y)
            ),
        );
        let _ = writeln!(
            out,
            "</title><circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"#4575b4\" fill-opacity=\"0.75\" stroke=\"#fff\"/></g>",
            xs.x(p.x),
            ys.y(p.y)
        );
    }
    if let Some((a, b)) = fit {
        let (l, r) = (xs.lo, xs.hi);
        let clamp = |y: f64| y.clamp(ys.lo, ys.hi);
        let _ = writeln!(
            out,
            "<line class=\"ols\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d73027\" stroke-width=\"2\"/>",
            xs.x(l),
            ys.y(clamp(a + b * l)),
            xs.x(r),
            ys.y(clamp(a + b * r))
        );
    }
    close(&mut out, None);
    Ok(out)
}

/// Vertical bars, one per row (label, value), in the given order (the caller sorts: top N).
/// `categories` (same length, optional) colours the bars by vulnerability category.
pub fn render_bar_chart(
    title: &str,
    value_label: &str,
    rows: &[(String, f64)],
    categories: Option<&[Option<String>]>,
) -> Result<String, Error> {
    let rows: Vec<(usize, &(String, f64))> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.1.is_finite())
        .collect();
    if rows.is_empty() {
        return Err(Error::MissingValues {
            what: value_label.to_string(),
        });
    }
    let min = rows.iter().map(|r| r.1.1).fold(0.0f64, f64::min);
    let max = rows.iter().map(|r| r.1.1).fold(0.0f64, f64::max);
    let ys = Scale::new(min, max);
    let sub = format!("{} bar(s); hover or tap a bar for its value.", rows.len());
    let mut out = String::with_capacity(8192 + rows.len() * 200);
    open(&mut out, title, &sub, title);
    axes(&mut out, None, &ys, "", value_label);
    let slot = (X1 - X0) / rows.len() as f64;
    let zero = ys.y(0.0);
    for (k, (i, (label, v))) in rows.iter().enumerate() {
        let x = X0 + k as f64 * slot;
        let y = ys.y(*v);
        let (top, h) = if y <= zero {
            (y, zero - y)
        } else {
            (zero, y - zero)
        };
        let fill = categories
            .and_then(|c| c.get(*i).cloned().flatten())
            .map_or("#4575b4", |c| category_fill(&c));
        let _ = write!(out, "<g class=\"row\" data-i=\"{i}\"><title>");
        push_escaped(
            &mut out,
            &format!("{label}\n{value_label}: {}", fmt_value(*v)),
        );
        let _ = write!(
            out,
            "</title><rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"/>",
            x + slot * 0.1,
            slot * 0.8,
            h.max(0.5)
        );
        let short: String = label.chars().take(18).collect();
        let lx = x + slot / 2.0;
        let _ = write!(
            out,
            "<text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"end\" transform=\"rotate(-40 {lx:.1} {:.1})\">",
            Y1 + 12.0,
            Y1 + 12.0
        );
        push_escaped(&mut out, &short);
        out.push_str("</text></g>\n");
    }
    close(&mut out, None);
    Ok(out)
}

/// Box plots of one variable per category (LGA, vulnerability category...), Tukey whiskers.
pub fn render_box_by_category(
    area: Option<&str>,
    variable: &str,
    by: &str,
    groups: &[(String, Vec<f64>)],
) -> Result<String, Error> {
    let stats: Vec<(&String, Option<crate::charts::BoxStats>)> = groups
        .iter()
        .map(|(name, v)| (name, crate::charts::box_stats(v)))
        .collect();
    if stats.iter().all(|(_, s)| s.is_none()) {
        return Err(Error::MissingValues {
            what: format!("a value of {variable}"),
        });
    }
    let all: Vec<f64> = groups
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let min = all.iter().copied().fold(f64::INFINITY, f64::min);
    let max = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ys = Scale::new(min, max);
    let title = format!("{variable} by {by}{}", suffix(area));
    let sub = format!(
        "{} group(s); boxes span the quartiles, whiskers 1.5 IQR, dots are outliers.",
        groups.len()
    );
    let mut out = String::with_capacity(8192 + groups.len() * 400);
    open(&mut out, &title, &sub, &title);
    axes(&mut out, None, &ys, by, variable);
    let slot = (X1 - X0) / groups.len().max(1) as f64;
    for (i, (name, s)) in stats.iter().enumerate() {
        let Some(s) = s else { continue };
        let cx = X0 + (i as f64 + 0.5) * slot;
        let half = (slot * 0.3).min(40.0);
        let fill = match category_fill(name) {
            "#9e9e9e" => "#9ecae1",
            f => f,
        };
        let _ = write!(out, "<g class=\"row\" data-i=\"{i}\"><title>");
        push_escaped(
            &mut out,
            &format!(
                "{name} ({} wards)\nmedian {}\nquartiles {} \u{2013} {}\nwhiskers {} \u{2013} {}",
                s.n,
                fmt_value(s.median),
                fmt_value(s.q1),
                fmt_value(s.q3),
                fmt_value(s.lo),
                fmt_value(s.hi)
            ),
        );
        let _ = write!(
            out,
            "</title><line x1=\"{cx:.1}\" y1=\"{:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" stroke=\"#333\"/>\
             <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#000\" stroke-width=\"2\"/>",
            ys.y(s.hi),
            ys.y(s.lo),
            cx - half,
            ys.y(s.q3),
            2.0 * half,
            (ys.y(s.q1) - ys.y(s.q3)).max(0.5),
            cx - half,
            ys.y(s.median),
            cx + half,
            ys.y(s.median)
        );
        for o in &s.outliers {
            let _ = write!(
                out,
                "<circle cx=\"{cx:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"none\" stroke=\"#333\"/>",
                ys.y(*o)
            );
        }
        let _ = write!(
            out,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">",
            Y1 + 16.0
        );
        push_escaped(&mut out, &name.chars().take(16).collect::<String>());
        out.push_str("</text></g>\n");
        let _ = quantile_sorted;
    }
    close(&mut out, None);
    Ok(out)
}

/// A correlation heatmap: `names` × `names`, `matrix[i][j]` the coefficient (None = not
/// computable), blue (−1) through white (0) to red (+1), values written in the cells.
pub fn render_correlation_heatmap(
    area: Option<&str>,
    method: &str,
    names: &[String],
    matrix: &[Vec<Option<f64>>],
) -> Result<String, Error> {
    let n = names.len();
    if n == 0 {
        return Err(Error::MissingValues {
            what: "a numeric variable".to_string(),
        });
    }
    if matrix.len() != n || matrix.iter().any(|r| r.len() != n) {
        return Err(Error::LengthMismatch {
            what: "correlation matrix",
            expected: n,
            got: matrix.len(),
        });
    }
    let label_w = 200.0;
    let cell = ((W - label_w - 20.0) / n as f64).min(70.0);
    let height = label_w + cell * n as f64 + 20.0;
    let title = format!("{method} correlations{}", suffix(area));
    let sub = format!("{n} variables, pairwise complete wards; red = positive, blue = negative.");
    let mut out = String::with_capacity(8192 + n * n * 200);
    begin(&mut out, &title, Some(&sub));
    let _ = write!(
        out,
        "<figure><svg class=\"chart\" viewBox=\"0 0 {W} {height:.0}\" role=\"img\" aria-label=\""
    );
    push_escaped(&mut out, &title);
    out.push_str("\">\n");
    for (j, name) in names.iter().enumerate() {
        let x = label_w + (j as f64 + 0.5) * cell;
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"start\" transform=\"rotate(-50 {x:.1} {:.1})\">",
            label_w - 6.0,
            label_w - 6.0
        );
        push_escaped(&mut out, &name.chars().take(26).collect::<String>());
        out.push_str("</text>");
    }
    for (i, row) in matrix.iter().enumerate() {
        let y = label_w + i as f64 * cell;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">",
            label_w - 6.0,
            y + cell / 2.0 + 4.0
        );
        push_escaped(&mut out, &names[i].chars().take(26).collect::<String>());
        out.push_str("</text>");
        for (j, v) in row.iter().enumerate() {
            let x = label_w + j as f64 * cell;
            let fill = v.map_or("#eeeeee".to_string(), diverging);
            let _ = write!(out, "<g class=\"row\" data-i=\"{}\"><title>", i * n + j);
            push_escaped(
                &mut out,
                &format!(
                    "{} \u{00d7} {}: {}",
                    names[i],
                    names[j],
                    v.map_or("not computable".to_string(), |r| format!("{r:.3}"))
                ),
            );
            let _ = write!(
                out,
                "</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell:.1}\" height=\"{cell:.1}\" fill=\"{fill}\" stroke=\"#fff\"/>"
            );
            if let Some(r) = v {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{r:.2}</text>",
                    x + cell / 2.0,
                    y + cell / 2.0 + 4.0
                );
            }
            out.push_str("</g>");
        }
        out.push('\n');
    }
    close(&mut out, None);
    Ok(out)
}

/// −1 → blue, 0 → white, +1 → red.
fn diverging(r: f64) -> String {
    let t = r.clamp(-1.0, 1.0);
    let (r0, g0, b0) = if t >= 0.0 {
        (215.0, 48.0, 39.0)
    } else {
        (69.0, 117.0, 180.0)
    };
    let a = t.abs();
    let mix = |c: f64| (255.0 + (c - 255.0) * a).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(r0), mix(g0), mix(b0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_every_value() {
        let v = [Some(1.0), Some(2.0), Some(2.5), None, Some(4.0)];
        let html = render_histogram(None, "rainfall", &v, 3).unwrap();
        assert!(html.contains("4 ward(s) with a value, 1 missing"));
        assert_eq!(html.matches("<g class=\"row\"").count(), 3);
        assert!(render_histogram(None, "x", &[None], 0).is_err());
    }

    #[test]
    fn scatter_has_points_and_the_ols_line() {
        let pts: Vec<Point> = (0..5)
            .map(|i| Point {
                label: format!("W{i}"),
                x: f64::from(i),
                y: 1.0 + 2.0 * f64::from(i),
            })
            .collect();
        let html = render_scatter(
            Some("Kano"),
            "x",
            "y",
            &pts,
            Some((1.0, 2.0)),
            "Pearson r = 1.000",
        )
        .unwrap();
        assert_eq!(html.matches("<circle").count(), 5);
        assert!(html.contains("class=\"ols\""));
        assert!(html.contains("OLS line: y = 1"), "{html}");
    }

    #[test]
    fn bars_boxes_and_heatmap_render() {
        let rows = vec![("A".to_string(), 3.0), ("B".to_string(), 1.0)];
        let cats = vec![Some("High Risk".to_string()), None];
        let html = render_bar_chart("Top 2", "tpr", &rows, Some(&cats)).unwrap();
        assert!(html.contains("#d73027"));
        let html = render_box_by_category(
            None,
            "tpr",
            "LGA",
            &[
                ("Dala".into(), vec![1.0, 2.0, 3.0]),
                ("Fagge".into(), vec![]),
            ],
        )
        .unwrap();
        assert_eq!(html.matches("<g class=\"row\"").count(), 1);
        let names = vec!["a".to_string(), "b".to_string()];
        let m = vec![vec![Some(1.0), Some(-0.5)], vec![Some(-0.5), None]];
        let html = render_correlation_heatmap(None, "Pearson", &names, &m).unwrap();
        assert!(html.contains("not computable"));
        assert_eq!(diverging(1.0), "#d73027");
        assert_eq!(diverging(0.0), "#ffffff");
    }
}
