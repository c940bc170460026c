//! Test positivity rate maps and charts (tpr.md §6-§8): the ward choropleth of the metric, the
//! slope map on a diverging scale, the missingness map and the line chart of the most worsening
//! and improving wards. They reuse the maps' geometry, document shell and legends; only the
//! classes and tooltips are TPR-specific.

use std::fmt::Write as _;

use mrpt_table::tpr::Direction;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::charts::{Axis, label_text};
use crate::colour::{class_of, quantile_breaks, yl_or_rd};
use crate::html::{begin, end, fmt_tick, fmt_value, push_escaped};
use crate::input::MapInput;
use crate::maps::{Layer, Legend, area_suffix, document, prepare_input};

/// Diverging fills of the slope map, improving fast (blue) to worsening fast (red).
const SLOPE_FILLS: [&str; 5] = ["#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b"];
/// Sequential purples of the missingness map, lightest = least missing.
const MISSING_FILLS: [&str; 5] = ["#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f"];
/// Upper bounds (percent) of the missingness classes; the last class is open.
const MISSING_UPPER: [f64; 4] = [5.0, 10.0, 25.0, 50.0];
const WORSENING_LINES: [&str; 6] = [
    "#67000d", "#cb181d", "#ef3b2c", "#a50f15", "#fb6a4a", "#99000d",
];
const IMPROVING_LINES: [&str; 6] = [
    "#08306b", "#2171b5", "#4292c6", "#08519c", "#6baed6", "#084594",
];

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), Error> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}

/// Tooltip of ward `i`: its name, the value line, then the caller's detail lines.
fn tooltip(input: &MapInput, i: usize, value_line: &str, details: &[String]) -> String {
    let mut t = input.wards[i].name.clone();
    t.push('\n');
    t.push_str(value_line);
    if let Some(d) = details.get(i).filter(|d| !d.is_empty()) {
        t.push('\n');
        t.push_str(d);
    }
    t
}

fn counted_swatches(fills: &[String], labels: &[String], counts: &[usize]) -> Legend {
    Legend::Swatches(
        fills
            .iter()
            .zip(labels)
            .zip(counts)
            .map(|((f, l), c)| (f.clone(), format!("{l} ({c})")))
            .collect(),
    )
}

/// Ward choropleth of the TPR (or burden) in at most five quantile classes on YlOrRd.
/// `metric` names the value in tooltips ("TPR (%)"), `metric_label` is the full label of
/// tpr.md §0.3 shown under the title. `values[i]` and `details[i]` (extra tooltip lines such as
/// tests, positives, method used and the LGA value; may be empty) belong to `input.wards[i]`.
/// Wards without a value are hatched and labelled "No data" (never 0).
pub fn render_tpr_map(
    input: &MapInput,
    metric: &str,
    metric_label: &str,
    values: &[Option<f64>],
    details: &[String],
) -> Result<String, Error> {
    check_len("TPR values", input.wards.len(), values.len())?;
    check_len("tooltip details", input.wards.len(), details.len())?;
    let prepared = prepare_input(input)?;
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let breaks = quantile_breaks(&finite, 5);
    if breaks.len() < 2 {
        return Err(Error::MissingValues {
            what: format!("a value for {metric}"),
        });
    }
    let k = breaks.len() - 1;
    let fills: Vec<String> = yl_or_rd(k).iter().map(|s| (*s).to_string()).collect();
    let labels: Vec<String> = (0..k)
        .map(|c| {
            format!(
                "{} \u{2013} {}",
                fmt_value(breaks[c]),
                fmt_value(breaks[c + 1])
            )
        })
        .collect();
    let mut counts = vec![0usize; k];
    let mut classes = Vec::with_capacity(values.len());
    let mut tooltips = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let drawn = prepared.paths.get(i).is_some_and(Option::is_some);
        match v.filter(|x| x.is_finite()) {
            Some(x) => {
                let c = class_of(x, &breaks);
                if drawn {
                    counts[c] += 1;
                }
                classes.push(Some(c));
                tooltips.push(tooltip(
                    input,
                    i,
                    &format!("{metric}: {}", fmt_value(x)),
                    details,
                ));
            }
            None => {
                classes.push(None);
                tooltips.push(tooltip(input, i, &format!("{metric}: no data"), details));
            }
        }
    }
    let layer = Layer {
        id: "t",
        heading: None,
        legend: counted_swatches(&fills, &labels, &counts),
        fills,
        class_of: classes,
        tooltips,
        no_data_label: "No data (no facility or no tests)".to_string(),
        faint_from: usize::MAX,
    };
    let title = format!("{metric}{}", area_suffix(input));
    let sub = format!("{metric_label}. Hover or tap a ward for its figures.");
    Ok(document(
        &title,
        Some(&sub),
        input,
        &prepared,
        &[layer],
        None,
    ))
}

/// Ward map of the trend slope on a diverging scale around zero: improving (blue), stable
/// (neutral), worsening (red), with "fast" beyond twice the direction threshold. `slopes[i]` is
/// the ward's slope (per year) and its direction as computed by the analysis, so the map and the
/// tables never disagree at the threshold; `None` or insufficient data = hatched.
pub fn render_slope_map(
    input: &MapInput,
    metric_label: &str,
    unit: &str,
    threshold: f64,
    slopes: &[Option<(f64, Direction)>],
    details: &[String],
) -> Result<String, Error> {
    if !threshold.is_finite() || threshold <= 0.0 {
        return Err(Error::InvalidParameter {
            name: "direction_threshold",
            reason: format!("{threshold} is not a positive number"),
        });
    }
    check_len("slopes", input.wards.len(), slopes.len())?;
    check_len("tooltip details", input.wards.len(), details.len())?;
    let prepared = prepare_input(input)?;
    let mut counts = [0usize; 5];
    let mut classes = Vec::with_capacity(slopes.len());
    let mut tooltips = Vec::with_capacity(slopes.len());
    let mut any = false;
    for (i, s) in slopes.iter().enumerate() {
        let drawn = prepared.paths.get(i).is_some_and(Option::is_some);
        let class = match s {
            Some((x, d)) if x.is_finite() => match d {
                Direction::Improving if *x <= -2.0 * threshold => Some(0),
                Direction::Improving => Some(1),
                Direction::Stable => Some(2),
                Direction::Worsening if *x >= 2.0 * threshold => Some(4),
                Direction::Worsening => Some(3),
                Direction::InsufficientData => None,
            },
            _ => None,
        };
        let line = match (s, class) {
            (Some((x, d)), Some(_)) => {
                format!("Slope: {x:+.3} {unit} per year ({})", d.as_str())
            }
            _ => "Trend: fewer than two years with tests".to_string(),
        };
        if let Some(c) = class {
            any = true;
            if drawn {
                counts[c] += 1;
            }
        }
        classes.push(class);
        tooltips.push(tooltip(input, i, &line, details));
    }
    if !any {
        return Err(Error::MissingValues {
            what: "a trend (two or more years with tests)".to_string(),
        });
    }
    let t = fmt_tick(threshold, threshold);
    let t2 = fmt_tick(2.0 * threshold, threshold);
    let labels: Vec<String> = vec![
        format!("Improving fast (\u{2264} \u{2212}{t2})"),
        format!("Improving (\u{2212}{t2} to \u{2212}{t})"),
        format!("Stable (within \u{00b1}{t})"),
        format!("Worsening (+{t} to +{t2})"),
        format!("Worsening fast (\u{2265} +{t2})"),
    ];
    let fills: Vec<String> = SLOPE_FILLS.iter().map(|s| (*s).to_string()).collect();
    let layer = Layer {
        id: "s",
        heading: None,
        legend: counted_swatches(&fills, &labels, &counts),
        fills,
        class_of: classes,
        tooltips,
        no_data_label: "Fewer than two years with tests".to_string(),
        faint_from: usize::MAX,
    };
    let title = format!("Trend per year{}", area_suffix(input));
    let sub = format!(
        "{metric_label}. Least-squares slope over the yearly values, in {unit} per year; a ward \
         is worsening or improving beyond \u{00b1}{t}."
    );
    Ok(document(
        &title,
        Some(&sub),
        input,
        &prepared,
        &[layer],
        None,
    ))
}

/// Ward map of the share of missing indicator cells (percent, tpr.md §7 `pct_missing_active`) in
/// fixed classes (5, 10, 25, 50 %). Wards without rows are hatched.
pub fn render_missingness_map(
    input: &MapInput,
    what: &str,
    values: &[Option<f64>],
    details: &[String],
) -> Result<String, Error> {
    check_len("missingness values", input.wards.len(), values.len())?;
    check_len("tooltip details", input.wards.len(), details.len())?;
    let prepared = prepare_input(input)?;
    let mut counts = [0usize; 5];
    let mut classes = Vec::with_capacity(values.len());
    let mut tooltips = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let drawn = prepared.paths.get(i).is_some_and(Option::is_some);
        match v.filter(|x| x.is_finite()) {
            Some(x) => {
                let c = MISSING_UPPER.iter().position(|&u| x <= u).unwrap_or(4);
                if drawn {
                    counts[c] += 1;
                }
                classes.push(Some(c));
                tooltips.push(tooltip(input, i, &format!("Missing: {x:.2}%"), details));
            }
            None => {
                classes.push(None);
                tooltips.push(tooltip(input, i, "No rows in the export", details));
            }
        }
    }
    if classes.iter().all(Option::is_none) {
        return Err(Error::MissingValues {
            what: "a missingness figure".to_string(),
        });
    }
    let labels: Vec<String> = vec![
        "0 \u{2013} 5%".into(),
        "5 \u{2013} 10%".into(),
        "10 \u{2013} 25%".into(),
        "25 \u{2013} 50%".into(),
        "over 50%".into(),
    ];
    let fills: Vec<String> = MISSING_FILLS.iter().map(|s| (*s).to_string()).collect();
    let layer = Layer {
        id: "x",
        heading: None,
        legend: counted_swatches(&fills, &labels, &counts),
        fills,
        class_of: classes,
        tooltips,
        no_data_label: "No rows in the export".to_string(),
        faint_from: usize::MAX,
    };
    let title = format!("Missing data{}", area_suffix(input));
    let sub = format!("{what}. Hover or tap a ward for its figures.");
    Ok(document(
        &title,
        Some(&sub),
        input,
        &prepared,
        &[layer],
        None,
    ))
}

/// One ward's yearly series on the trend chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendSeries {
    /// Shown in the legend and the tooltip, e.g. "Dogon Nama (Kano Municipal)".
    pub name: String,
    /// The analysis' direction; picks the line's colour.
    pub direction: Direction,
    /// Slope per year (in `unit`), shown in the legend; `None` with fewer than two years.
    #[serde(default)]
    pub slope: Option<f64>,
    /// (year, value) in any order; non-finite values are skipped.
    pub points: Vec<(u16, f64)>,
}

/// Input of [`render_trend_chart`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrendChartInput {
    /// Shown in the title, e.g. "Kano".
    #[serde(default)]
    pub area: Option<String>,
    /// The y axis, e.g. "TPR (%)".
    pub metric: String,
    /// The tpr.md §0.3 label.
    pub metric_label: String,
    /// Unit of the slope, e.g. "percentage points".
    pub unit: String,
    /// One line per ward.
    pub series: Vec<TrendSeries>,
}

const LC_W: f64 = 900.0;
const LC_H: f64 = 440.0;
const LC_X0: f64 = 64.0;
const LC_X1: f64 = 880.0;
const LC_Y0: f64 = 16.0;
const LC_Y1: f64 = 392.0;

/// Line chart of the given wards' yearly values (the caller picks the N most worsening and the N
/// most improving): worsening wards in reds (solid), improving in blues (dashed), others grey.
/// Every line is a `<g class="row" data-i>` with a tooltip listing its values.
pub fn render_trend_chart(chart: &TrendChartInput) -> Result<String, Error> {
    let mut all: Vec<(u16, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|p| p.1.is_finite())
        .collect();
    if all.is_empty() {
        return Err(Error::MissingValues {
            what: "a yearly value".to_string(),
        });
    }
    all.sort_by_key(|p| p.0);
    let (y_min, y_max) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let axis = Axis::new(y_min.min(0.0), y_max);
    let first_year = all[0].0;
    let last_year = all[all.len() - 1].0;
    let x_of = |year: u16| -> f64 {
        if last_year == first_year {
            (LC_X0 + LC_X1) / 2.0
        } else {
            LC_X0
                + f64::from(year - first_year) / f64::from(last_year - first_year)
                    * (LC_X1 - LC_X0 - 20.0)
                + 10.0
        }
    };
    let y_of = |v: f64| axis.at(v, LC_Y1, LC_Y0);
    let area = match chart.area.as_deref().map(str::trim) {
        Some(a) if !a.is_empty() => format!(" \u{2014} {a}"),
        _ => String::new(),
    };
    let worsening = chart
        .series
        .iter()
        .filter(|s| s.direction == Direction::Worsening)
        .count();
    let improving = chart
        .series
        .iter()
        .filter(|s| s.direction == Direction::Improving)
        .count();
    let title = format!("Most worsening and improving wards{area}");
    let sub = format!(
        "{}. {worsening} worsening ward(s) in red (solid), {improving} improving in blue \
         (dashed), {first_year}\u{2013}{last_year}.",
        chart.metric_label
    );
    let mut out = String::with_capacity(8192 + chart.series.len() * 600);
    begin(&mut out, &title, Some(&sub));
    let _ = write!(
        out,
        "<figure><svg class=\"chart\" viewBox=\"0 0 {LC_W} {LC_H}\" role=\"img\" aria-label=\""
    );
    push_escaped(&mut out, &title);
    out.push_str("\">\n");
    for &t in &axis.ticks {
        let y = y_of(t);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LC_X0}\" y1=\"{y:.1}\" x2=\"{LC_X1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LC_X0 - 6.0,
            y + 4.0,
            fmt_tick(t, axis.step)
        );
    }
    let _ = write!(
        out,
        "<line class=\"ax\" x1=\"{LC_X0}\" y1=\"{LC_Y1}\" x2=\"{LC_X1}\" y2=\"{LC_Y1}\"/>\
         <line class=\"ax\" x1=\"{LC_X0}\" y1=\"{LC_Y0}\" x2=\"{LC_X0}\" y2=\"{LC_Y1}\"/>"
    );
    for year in first_year..=last_year {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{year}</text>",
            x_of(year),
            LC_Y1 + 16.0
        );
    }
    out.push_str("<text x=\"14\" y=\"");
    let _ = write!(
        out,
        "{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">",
        (LC_Y0 + LC_Y1) / 2.0,
        (LC_Y0 + LC_Y1) / 2.0
    );
    push_escaped(&mut out, &chart.metric);
    out.push_str("</text>\n");
    let mut legend: Vec<(String, bool, String)> = Vec::new();
    let (mut wi, mut ii) = (0usize, 0usize);
    for (i, s) in chart.series.iter().enumerate() {
        let mut pts: Vec<(u16, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.1.is_finite())
            .collect();
        pts.sort_by_key(|p| p.0);
        let (colour, dashed) = match s.direction {
            Direction::Worsening => {
                wi += 1;
                (WORSENING_LINES[(wi - 1) % WORSENING_LINES.len()], false)
            }
            Direction::Improving => {
                ii += 1;
                (IMPROVING_LINES[(ii - 1) % IMPROVING_LINES.len()], true)
            }
            _ => ("#757575", false),
        };
        let mut t = s.name.clone();
        match s.slope {
            Some(x) if x.is_finite() => {
                let _ = write!(
                    t,
                    "\nSlope: {x:+.3} {} per year ({})",
                    chart.unit,
                    s.direction.as_str()
                );
            }
            _ => {
                let _ = write!(t, "\n{}", s.direction.as_str());
            }
        }
        for (y, v) in &pts {
            let _ = write!(t, "\n{y}: {}", fmt_value(*v));
        }
        let _ = write!(out, "<g class=\"row\" data-i=\"{i}\"><title>");
        push_escaped(&mut out, &t);
        out.push_str("</title>");
        if pts.len() >= 2 {
            out.push_str("<polyline fill=\"none\" stroke-width=\"2\" stroke=\"");
            out.push_str(colour);
            if dashed {
                out.push_str("\" stroke-dasharray=\"6 3");
            }
            out.push_str("\" points=\"");
            for (k, (y, v)) in pts.iter().enumerate() {
                if k > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{:.1},{:.1}", x_of(*y), y_of(*v));
            }
            out.push_str("\"/>");
        }
        for (y, v) in &pts {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{colour}\"/>",
                x_of(*y),
                y_of(*v)
            );
        }
        out.push_str("</g>\n");
        legend.push((colour.to_string(), dashed, label_text(&s.name)));
    }
    out.push_str("</svg><ul class=\"legend\">");
    for (colour, dashed, name) in &legend {
        let dash = if *dashed {
            " stroke-dasharray=\"4 2\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<li><svg class=\"sw\" viewBox=\"0 0 18 14\" aria-hidden=\"true\"><line x1=\"0\" y1=\"7\" x2=\"18\" y2=\"7\" stroke=\"{colour}\" stroke-width=\"3\"{dash}/></svg>"
        );
        push_escaped(&mut out, name);
        out.push_str("</li>");
    }
    out.push_str("</ul></figure>");
    end(&mut out);
    Ok(out)
}
