//! Charts: model scores per ward as box plots, and the ranking as a bar chart.

use std::fmt::Write as _;

use crate::Error;
use crate::colour::{category_fill, quantile_sorted};
use crate::html::{begin, end, fmt_score, fmt_tick, push_escaped};
use crate::input::{BoxPlotInput, MapInput};
use mrpt_table::RankingMethod;

/// Wards per box-plot page (as ChatMRPT's `box_plot_ranking_top20`).
pub const BOX_PLOT_PAGE_SIZE: usize = 20;

const WIDTH: f64 = 900.0;
const LABEL_W: f64 = 230.0;
const PLOT_X0: f64 = 240.0;
const PLOT_X1: f64 = 880.0;
const TOP: f64 = 12.0;
const ROW_H: f64 = 24.0;
const AXIS_H: f64 = 34.0;
/// Longest visible label; the full name is always in the tooltip.
const LABEL_CHARS: usize = 34;

/// Five-number summary with Tukey whiskers (1.5 IQR), linear quantiles like Plotly's default.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BoxStats {
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub lo: f64,
    pub hi: f64,
    pub outliers: Vec<f64>,
    pub n: usize,
}

pub(crate) fn box_stats(scores: &[f64]) -> Option<BoxStats> {
    let mut v: Vec<f64> = scores.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let q1 = quantile_sorted(&v, 0.25);
    let median = quantile_sorted(&v, 0.5);
    let q3 = quantile_sorted(&v, 0.75);
    let iqr = q3 - q1;
    let (fence_lo, fence_hi) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    let inside = || {
        v.iter()
            .copied()
            .filter(|&x| x >= fence_lo && x <= fence_hi)
    };
    let lo = inside().fold(f64::INFINITY, f64::min).min(q1);
    let hi = inside().fold(f64::NEG_INFINITY, f64::max).max(q3);
    let outliers = v
        .iter()
        .copied()
        .filter(|&x| x < fence_lo || x > fence_hi)
        .collect();
    Some(BoxStats {
        q1,
        median,
        q3,
        lo,
        hi,
        outliers,
        n: v.len(),
    })
}

/// A linear axis over [lo, hi] with "nice" ticks.
pub(crate) struct Axis {
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    pub(crate) step: f64,
    pub(crate) ticks: Vec<f64>,
}

impl Axis {
    pub(crate) fn new(min: f64, max: f64) -> Axis {
        let (mut min, mut max) = if min.is_finite() && max.is_finite() {
            (min, max)
        } else {
            (0.0, 1.0)
        };
        if max - min < 1e-12 {
            min -= 0.5;
            max += 0.5;
        }
        let raw = (max - min) / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let lo = (min / step).floor() * step;
        let hi = (max / step).ceil() * step;
        let count = ((hi - lo) / step).round() as usize;
        let ticks = (0..=count).map(|k| lo + k as f64 * step).collect();
        Axis {
            lo,
            hi,
            step,
            ticks,
        }
    }

    fn x(&self, v: f64) -> f64 {
        self.at(v, PLOT_X0, PLOT_X1)
    }

    /// `v` placed linearly on the drawing interval [from, to] (`to < from` for a y axis).
    pub(crate) fn at(&self, v: f64, from: f64, to: f64) -> f64 {
        from + (v - self.lo) / (self.hi - self.lo) * (to - from)
    }
}

pub(crate) fn label_text(s: &str) -> String {
    if s.chars().count() > LABEL_CHARS {
        let mut t: String = s.chars().take(LABEL_CHARS - 1).collect();
        t.push('\u{2026}');
        t
    } else {
        s.to_string()
    }
}

fn chart_open(out: &mut String, rows: usize, aria: &str) -> f64 {
    let height = TOP + rows as f64 * ROW_H + AXIS_H;
    let _ = write!(
        out,
        "<figure><svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\""
    );
    push_escaped(out, aria);
    out.push_str("\">\n");
    height
}

fn axis_and_grid(out: &mut String, axis: &Axis, rows: usize, caption: &str) {
    let y_end = TOP + rows as f64 * ROW_H;
    for &t in &axis.ticks {
        let x = axis.x(t);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{y_end}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y_end + 14.0,
            fmt_tick(t, axis.step)
        );
    }
    let _ = write!(
        out,
        "<line class=\"ax\" x1=\"{PLOT_X0}\" y1=\"{y_end}\" x2=\"{PLOT_X1}\" y2=\"{y_end}\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">",
        (PLOT_X0 + PLOT_X1) / 2.0,
        y_end + 30.0
    );
    push_escaped(out, caption);
    out.push_str("</text>\n");
}

fn category_legend(out: &mut String, categories: &[String]) {
    out.push_str("<ul class=\"legend\">");
    for c in categories {
        let _ = write!(
            out,
            "<li><svg class=\"sw\" viewBox=\"0 0 18 14\" aria-hidden=\"true\"><rect width=\"18\" height=\"14\" fill=\"{}\"/></svg>",
            category_fill(c)
        );
        push_escaped(out, c);
        out.push_str("</li>");
    }
    out.push_str("</ul>");
}

/// Categories in first-seen order, "High…" before "Medium…" before "Low…".
fn ordered_categories<'a>(cats: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for c in cats {
        if !c.is_empty() && !seen.iter().any(|s| s == c) {
            seen.push(c.to_string());
        }
    }
    let weight = |c: &str| {
        let l = c.to_ascii_lowercase();
        if l.starts_with("high") {
            0
        } else if l.starts_with("medium") {
            1
        } else if l.starts_with("low") {
            2
        } else {
            3
        }
    };
    seen.sort_by_key(|c| weight(c));
    seen
}

/// Box plot of each ward's model scores, wards ordered by median score (highest first, ties in
/// input order, wards without scores last), [`BOX_PLOT_PAGE_SIZE`] per page. `page` is 1-based.
/// Returns the document and the number of pages.
pub fn render_box_plot(input: &BoxPlotInput, page: usize) -> Result<(String, usize), Error> {
    if input.wards.is_empty() {
        return Err(Error::NoWards);
    }
    let stats: Vec<Option<BoxStats>> = input.wards.iter().map(|w| box_stats(&w.scores)).collect();
    if stats.iter().all(Option::is_none) {
        return Err(Error::MissingValues {
            what: "model scores".to_string(),
        });
    }
    let pages = input.wards.len().div_ceil(BOX_PLOT_PAGE_SIZE);
    if page == 0 || page > pages {
        return Err(Error::PageOutOfRange { page, pages });
    }
    let mut order: Vec<usize> = (0..input.wards.len()).collect();
    let median = |i: usize| stats[i].as_ref().map_or(f64::NEG_INFINITY, |s| s.median);
    // Stable: equal medians keep input order.
    order.sort_by(|&a, &b| median(b).total_cmp(&median(a)));
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in stats.iter().flatten() {
        min = min
            .min(s.lo)
            .min(s.outliers.iter().copied().fold(f64::INFINITY, f64::min));
        max = max
            .max(s.hi)
            .max(s.outliers.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    }
    // Model scores are means of 0–1 normalised values: keep the full 0–1 frame when they fit.
    if min >= 0.0 && max <= 1.0 {
        min = 0.0;
        max = 1.0;
    }
    let axis = Axis::new(min, max);
    let first = (page - 1) * BOX_PLOT_PAGE_SIZE;
    let rows: Vec<usize> = order
        .iter()
        .copied()
        .skip(first)
        .take(BOX_PLOT_PAGE_SIZE)
        .collect();

    let area = match input.area.as_deref().map(str::trim) {
        Some(a) if !a.is_empty() => format!(" \u{2014} {a}"),
        _ => String::new(),
    };
    let title = format!("Model scores per ward{area}");
    let sub = format!(
        "Page {page} of {pages}: wards {}\u{2013}{} of {}, ordered by median model score (highest first). \
         Box = middle half of the models, line = median, whiskers = 1.5 \u{d7} IQR.",
        first + 1,
        first + rows.len(),
        input.wards.len()
    );
    let mut out = String::with_capacity(16_384);
    begin(&mut out, &title, Some(&sub));
    chart_open(&mut out, rows.len(), "Box plot of model scores per ward");
    axis_and_grid(&mut out, &axis, rows.len(), "Model score");
    for (r, &i) in rows.iter().enumerate() {
        let w = &input.wards[i];
        let y = TOP + r as f64 * ROW_H;
        let cy = y + ROW_H / 2.0;
        let fill = category_fill(w.category.as_deref().unwrap_or(""));
        let _ = write!(out, "<g class=\"row\" data-i=\"{i}\"><title>");
        let mut t = w.name.clone();
        if let Some(rank) = w.rank {
            let _ = write!(t, "\nRank: {rank}");
        }
        if let Some(c) = &w.category {
            let _ = write!(t, "\nCategory: {c}");
        }
        match &stats[i] {
            Some(s) => {
                let _ = write!(
                    t,
                    "\nMedian: {}\nQ1\u{2013}Q3: {} \u{2013} {}\nWhiskers: {} \u{2013} {}\nModels: {}",
                    fmt_score(s.median),
                    fmt_score(s.q1),
                    fmt_score(s.q3),
                    fmt_score(s.lo),
                    fmt_score(s.hi),
                    s.n
                );
                if !s.outliers.is_empty() {
                    let _ = write!(t, "\nOutliers: {}", s.outliers.len());
                }
            }
            None => t.push_str("\nNo model scores"),
        }
        push_escaped(&mut out, &t);
        out.push_str("</title>");
        // A transparent row-wide hit area makes the whole row hoverable and tappable.
        let _ = write!(
            out,
            "<rect x=\"0\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{ROW_H}\" fill=\"transparent\" stroke=\"none\"/>\
             <text x=\"{LABEL_W}\" y=\"{:.1}\" text-anchor=\"end\">",
            cy + 4.0
        );
        let label = match w.rank {
            Some(rank) => format!("{rank}. {}", w.name),
            None => w.name.clone(),
        };
        push_escaped(&mut out, &label_text(&label));
        out.push_str("</text>");
        if let Some(s) = &stats[i] {
            let (xlo, xq1, xm, xq3, xhi) = (
                axis.x(s.lo),
                axis.x(s.q1),
                axis.x(s.median),
                axis.x(s.q3),
                axis.x(s.hi),
            );
            let _ = write!(
                out,
                "<line x1=\"{xlo:.1}\" y1=\"{cy:.1}\" x2=\"{xq1:.1}\" y2=\"{cy:.1}\" stroke=\"#555\"/>\
                 <line x1=\"{xq3:.1}\" y1=\"{cy:.1}\" x2=\"{xhi:.1}\" y2=\"{cy:.1}\" stroke=\"#555\"/>\
                 <line x1=\"{xlo:.1}\" y1=\"{:.1}\" x2=\"{xlo:.1}\" y2=\"{:.1}\" stroke=\"#555\"/>\
                 <line x1=\"{xhi:.1}\" y1=\"{:.1}\" x2=\"{xhi:.1}\" y2=\"{:.1}\" stroke=\"#555\"/>\
                 <rect x=\"{xq1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" fill-opacity=\"0.75\" stroke=\"#333\"/>\
                 <line x1=\"{xm:.1}\" y1=\"{:.1}\" x2=\"{xm:.1}\" y2=\"{:.1}\" stroke=\"#000\" stroke-width=\"2\"/>",
                cy - 5.0,
                cy + 5.0,
                cy - 5.0,
                cy + 5.0,
                y + 4.0,
                (xq3 - xq1).max(1.0),
                ROW_H - 8.0,
                y + 3.0,
                y + ROW_H - 3.0
            );
            for &o in &s.outliers {
                let _ = write!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"2.5\" fill=\"none\" stroke=\"#333\"/>",
                    axis.x(o)
                );
            }
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>");
    let cats = ordered_categories(
        rows.iter()
            .filter_map(|&i| input.wards[i].category.as_deref()),
    );
    if !cats.is_empty() {
        category_legend(&mut out, &cats);
    }
    out.push_str("</figure>");
    end(&mut out);
    Ok((out, pages))
}

/// Horizontal bars of one method's score, wards in rank order, coloured by category. `top`
/// limits the number of wards (0 = all). Wards without a result for the method are left out
/// and counted in the subtitle.
pub fn render_ranking_chart(
    input: &MapInput,
    method: RankingMethod,
    top: usize,
) -> Result<String, Error> {
    if input.wards.is_empty() {
        return Err(Error::NoWards);
    }
    let mut ranked: Vec<usize> = (0..input.wards.len())
        .filter(|&i| input.wards[i].vulnerability(method).is_some())
        .collect();
    if ranked.is_empty() {
        return Err(Error::MissingValues {
            what: format!("{} results", method.title()),
        });
    }
    let missing = input.wards.len() - ranked.len();
    let rank_of = |i: usize| {
        input.wards[i]
            .vulnerability(method)
            .map_or(u32::MAX, |v| v.rank)
    };
    ranked.sort_by_key(|&i| rank_of(i));
    let total = ranked.len();
    if top > 0 {
        ranked.truncate(top);
    }
    let scores: Vec<f64> = ranked
        .iter()
        .filter_map(|&i| input.wards[i].vulnerability(method).map(|v| v.score))
        .filter(|s| s.is_finite())
        .collect();
    let min = scores.iter().copied().fold(0.0f64, f64::min);
    let max = scores.iter().copied().fold(0.0f64, f64::max);
    let axis = Axis::new(min, max);
    let label = method.title();

    let area = match input.area.as_deref().map(str::trim) {
        Some(a) if !a.is_empty() => format!(" \u{2014} {a}"),
        _ => String::new(),
    };
    let title = format!("{label} vulnerability ranking{area}");
    let mut sub = if ranked.len() < total {
        format!(
            "The {} most vulnerable of {total} ranked wards.",
            ranked.len()
        )
    } else {
        format!("All {total} ranked wards, most vulnerable first.")
    };
    if missing > 0 {
        let _ = write!(
            sub,
            " {missing} ward(s) without a {label} result are not shown."
        );
    }
    let mut out = String::with_capacity(8192 + ranked.len() * 400);
    begin(&mut out, &title, Some(&sub));
    chart_open(&mut out, ranked.len(), &format!("{label} ranking"));
    axis_and_grid(&mut out, &axis, ranked.len(), &format!("{label} score"));
    let x0 = axis.x(0.0);
    for (r, &i) in ranked.iter().enumerate() {
        let w = &input.wards[i];
        let Some(v) = w.vulnerability(method) else {
            continue;
        };
        let y = TOP + r as f64 * ROW_H;
        let _ = write!(out, "<g class=\"row\" data-i=\"{i}\"><title>");
        let mut t = format!(
            "{}\n{label} score: {}\nRank: {} of {total}\nCategory: {}",
            w.name,
            fmt_score(v.score),
            v.rank,
            v.category
        );
        if let Some(itn) = &w.itn {
            let _ = write!(t, "\nNets allocated: {}", itn.nets_allocated);
        }
        let t = crate::maps::with_lga(&t, Some(w));
        push_escaped(&mut out, &t);
        out.push_str("</title>");
        let xs = if v.score.is_finite() {
            axis.x(v.score)
        } else {
            x0
        };
        let (bx, bw) = if xs >= x0 {
            (x0, xs - x0)
        } else {
            (xs, x0 - xs)
        };
        let _ = write!(
            out,
            "<rect x=\"0\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{ROW_H}\" fill=\"transparent\" stroke=\"none\"/>\
             <text x=\"{LABEL_W}\" y=\"{:.1}\" text-anchor=\"end\">",
            y + ROW_H / 2.0 + 4.0
        );
        push_escaped(&mut out, &label_text(&format!("{}. {}", v.rank, w.name)));
        let _ = writeln!(
            out,
            "</text><rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/></g>",
            y + 4.0,
            bw.max(0.5),
            ROW_H - 8.0,
            category_fill(&v.category)
        );
    }
    out.push_str("</svg>");
    let cats = ordered_categories(ranked.iter().filter_map(|&i| {
        input.wards[i]
            .vulnerability(method)
            .map(|v| v.category.as_str())
    }));
    category_legend(&mut out, &cats);
    out.push_str("</figure>");
    end(&mut out);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn box_stats_linear_quartiles_and_tukey_whiskers() {
        let s = box_stats(&[1.0, 2.0, 3.0, 4.0, 100.0, f64::NAN]).unwrap();
        assert_eq!(s.n, 5);
        assert_eq!((s.q1, s.median, s.q3), (2.0, 3.0, 4.0));
        assert_eq!((s.lo, s.hi), (1.0, 4.0));
        assert_eq!(s.outliers, vec![100.0]);
        assert!(box_stats(&[f64::NAN]).is_none());
        let one = box_stats(&[0.4]).unwrap();
        assert_eq!(
            (one.lo, one.q1, one.median, one.q3, one.hi),
            (0.4, 0.4, 0.4, 0.4, 0.4)
        );
    }

    #[test]
    fn axis_ticks_are_nice_and_cover_the_range() {
        let a = Axis::new(0.0, 1.0);
        assert_eq!(a.ticks.len(), 6);
        assert!((a.ticks[1] - 0.2).abs() < 1e-12);
        let b = Axis::new(-1.3, 2.7);
        assert!(b.lo <= -1.3 && b.hi >= 2.7);
        let c = Axis::new(5.0, 5.0);
        assert!(c.lo < 5.0 && c.hi > 5.0);
        let d = Axis::new(f64::NAN, 1.0);
        assert_eq!((d.lo, d.hi), (0.0, 1.0));
    }

    #[test]
    fn long_labels_are_shortened() {
        let l = label_text(&"x".repeat(50));
        assert_eq!(l.chars().count(), LABEL_CHARS);
        assert!(l.ends_with('\u{2026}'));
        assert_eq!(label_text("Gwale"), "Gwale");
    }
}
