//! Choropleth maps: vulnerability (composite, PCA, both), ITN coverage, one variable.

use std::fmt::Write as _;

use crate::Error;
use crate::colour::{
    GREENS_4, RANK_LEVELS, class_of, quantile_breaks, rank_level, rank_level_fill, rank_quartile,
    yl_or_rd,
};
use crate::geometry::{Projection, TOLERANCE, bounding_box, prepare, write_path};
use crate::html::{
    begin, end, escape, fmt_count, fmt_int, fmt_pct, fmt_plain, fmt_score, fmt_value, push_escaped,
};
use crate::input::{ItnSummary, MapInput, WardInput};
use mrpt_table::{Geometry, RankingMethod};

/// The route the ITN map's form posts to (JSON body, see the crate docs).
pub const ITN_UPDATE_ENDPOINT: &str = "/api/itn/update-distribution";

/// How many names of undrawn wards the note under a map lists before "and N more".
const NOT_DRAWN_LISTED: usize = 30;

/// Geometry projected, simplified and written as path data once per document.
pub(crate) struct Prepared {
    pub(crate) proj: Projection,
    /// Per ward; `None` when the ward has no drawable boundary.
    pub(crate) paths: Vec<Option<String>>,
    /// LGA outline arcs as one path (`None` when no two neighbouring wards differ in LGA).
    outline: Option<String>,
    /// How many outline arcs [`Prepared::outline`] holds.
    pub(crate) outline_arcs: usize,
}

pub(crate) fn prepare_input(input: &MapInput) -> Result<Prepared, Error> {
    if input.wards.is_empty() {
        return Err(Error::NoWards);
    }
    let geoms: Vec<Option<&Geometry>> = input
        .wards
        .iter()
        .map(|w| w.geometry.as_ref().filter(|g| !g.polygons().is_empty()))
        .collect();
    let bbox = bounding_box(
        input
            .wards
            .iter()
            .zip(&geoms)
            .filter_map(|(w, g)| g.map(|g| (w.name.as_str(), g))),
    )?
    .ok_or(Error::NoGeometry)?;
    let proj = Projection::fit(bbox);
    let rings = prepare(&geoms, &proj, TOLERANCE);
    let paths = rings
        .iter()
        .map(|r| {
            if r.is_empty() {
                None
            } else {
                let mut d = String::with_capacity(r.iter().map(Vec::len).sum::<usize>() * 6 + 8);
                write_path(&mut d, r);
                Some(d)
            }
        })
        .collect();
    let lgas: Vec<Option<&str>> = input.wards.iter().map(|w| w.lga.as_deref()).collect();
    let arcs = crate::outline::lga_arcs(&rings, &lgas);
    let outline = (!arcs.is_empty()).then(|| crate::outline::arcs_path(&arcs));
    Ok(Prepared {
        proj,
        paths,
        outline,
        outline_arcs: arcs.len(),
    })
}

pub(crate) enum Legend {
    /// One swatch per class: (fill, label).
    Swatches(Vec<(String, String)>),
    /// A continuous ramp drawn from `stops`, labelled at both ends.
    Ramp {
        stops: Vec<String>,
        left: String,
        right: String,
    },
}

/// One map: classes, which ward is in which, tooltips and legend.
pub(crate) struct Layer {
    /// Prefix for ids inside the document (pattern, gradient); unique per document.
    pub(crate) id: &'static str,
    pub(crate) heading: Option<String>,
    pub(crate) fills: Vec<String>,
    pub(crate) class_of: Vec<Option<usize>>,
    pub(crate) tooltips: Vec<String>,
    pub(crate) legend: Legend,
    pub(crate) no_data_label: String,
    /// Classes from this index on are drawn faint (the urban-extent map's excluded wards).
    pub(crate) faint_from: usize,
}

pub(crate) fn area_suffix(input: &MapInput) -> String {
    match input.area.as_deref().map(str::trim) {
        Some(a) if !a.is_empty() => format!(" \u{2014} {a}"),
        _ => String::new(),
    }
}

fn nets_line(w: &WardInput, t: &mut String) {
    if let Some(itn) = &w.itn {
        let _ = write!(
            t,
            "\nNets allocated: {} of {} needed",
            fmt_int(itn.nets_allocated),
            fmt_int(itn.nets_needed)
        );
    }
}

fn vulnerability_layer(
    input: &MapInput,
    method: RankingMethod,
    id: &'static str,
) -> Result<Layer, Error> {
    let max_rank = input
        .wards
        .iter()
        .filter_map(|w| w.vulnerability(method).map(|v| v.rank))
        .max()
        .ok_or_else(|| Error::MissingValues {
            what: format!("{} results", method.title()),
        })?;
    let label = method.title();
    let mut class_of = Vec::with_capacity(input.wards.len());
    let mut tooltips = Vec::with_capacity(input.wards.len());
    for w in &input.wards {
        let mut t = w.name.clone();
        match w.vulnerability(method) {
            Some(v) => {
                let _ = write!(
                    t,
                    "\n{label} score: {}\nRank: {} of {max_rank}\nCategory: {}",
                    fmt_score(v.score),
                    v.rank,
                    v.category
                );
                class_of.push(Some(match method {
                    RankingMethod::Composite => rank_level(v.rank, max_rank),
                    RankingMethod::Pca => rank_quartile(v.rank, max_rank),
                }));
            }
            None => {
                let _ = write!(t, "\nNo {label} result");
                class_of.push(None);
            }
        }
        nets_line(w, &mut t);
        tooltips.push(t);
    }
    let (fills, legend) = match method {
        RankingMethod::Composite => {
            let fills: Vec<String> = (0..RANK_LEVELS).map(rank_level_fill).collect();
            let stops = (0..=10)
                .map(|k| rank_level_fill(k * (RANK_LEVELS - 1) / 10))
                .collect();
            (
                fills,
                Legend::Ramp {
                    stops,
                    left: "High vulnerability (rank 1)".to_string(),
                    right: format!("Low (rank {max_rank})"),
                },
            )
        }
        RankingMethod::Pca => {
            let fills: Vec<String> = GREENS_4.iter().map(|s| (*s).to_string()).collect();
            let mut ranges: [Option<(u32, u32)>; 4] = [None; 4];
            for r in 1..=max_rank {
                let q = rank_quartile(r, max_rank);
                ranges[q] = Some(ranges[q].map_or((r, r), |(lo, _)| (lo, r)));
            }
            let names = ["highest", "high", "lower", "lowest"];
            let swatches = ranges
                .iter()
                .zip(names)
                .enumerate()
                .filter_map(|(q, (range, name))| {
                    range.map(|(lo, hi)| {
                        (
                            fills[q].clone(),
                            format!("Ranks {lo}\u{2013}{hi} ({name} vulnerability)"),
                        )
                    })
                })
                .collect();
            (fills, Legend::Swatches(swatches))
        }
    };
    Ok(Layer {
        id,
        heading: Some(format!("{label} vulnerability")),
        fills,
        class_of,
        tooltips,
        legend,
        no_data_label: format!("No {label} result"),
        faint_from: usize::MAX,
    })
}

/// A map of one ranking: composite (reversed Plasma by rank, rank 1 darkest) or PCA (four
/// greens by rank quarter, darkest = most vulnerable).
pub fn render_vulnerability_map(input: &MapInput, method: RankingMethod) -> Result<String, Error> {
    let prepared = prepare_input(input)?;
    let layer = vulnerability_layer(input, method, "m")?;
    let title = format!("{} vulnerability map{}", method.title(), area_suffix(input));
    let sub = format!(
        "Wards coloured by {} rank (1 = most vulnerable). Hover or tap a ward for details.",
        method.title()
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

/// Composite and PCA maps side by side (they wrap onto two rows on a narrow screen).
pub fn render_side_by_side(input: &MapInput) -> Result<String, Error> {
    let prepared = prepare_input(input)?;
    let composite = vulnerability_layer(input, RankingMethod::Composite, "c")?;
    let pca = vulnerability_layer(input, RankingMethod::Pca, "p")?;
    let title = format!("Composite and PCA vulnerability{}", area_suffix(input));
    let sub = "Both rankings of the same wards; rank 1 = most vulnerable. Hover or tap a ward for details.";
    Ok(document(
        &title,
        Some(sub),
        input,
        &prepared,
        &[composite, pca],
        None,
    ))
}

/// ITN coverage class of a ward.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Coverage {
    Full,
    Partial,
    None,
}

/// The ITN plan: full / partial / no allocation, split by tier when the plan has tiers
/// (rural-first), wards outside the plan hatched. Carries the summary and the form that posts a
/// new threshold or net total to [`ITN_UPDATE_ENDPOINT`].
pub fn render_itn_map(input: &MapInput, summary: &ItnSummary) -> Result<String, Error> {
    if !summary.urban_threshold.is_finite() || !(0.0..=100.0).contains(&summary.urban_threshold) {
        return Err(Error::InvalidParameter {
            name: "urban_threshold",
            reason: format!("{} is not a percentage", summary.urban_threshold),
        });
    }
    if !summary.avg_household_size.is_finite() || summary.avg_household_size <= 0.0 {
        return Err(Error::InvalidParameter {
            name: "avg_household_size",
            reason: format!("{} is not a positive size", summary.avg_household_size),
        });
    }
    let prepared = prepare_input(input)?;
    if input.wards.iter().all(|w| w.itn.is_none()) {
        return Err(Error::MissingValues {
            what: "an ITN allocation".to_string(),
        });
    }
    let tiered = input
        .wards
        .iter()
        .any(|w| w.itn.as_ref().is_some_and(|i| i.tier.is_some()));
    // Class order: tier 1 full, tier 1 partial, tier 2 full, tier 2 partial, not allocated.
    let (fills, labels): (Vec<&str>, Vec<&str>) = if tiered {
        (
            vec!["#1a9850", "#a6d96a", "#2166ac", "#92c5de", "#bdbdbd"],
            vec![
                "Tier 1 (rural): full coverage",
                "Tier 1 (rural): partial coverage",
                "Tier 2 (urban): full coverage",
                "Tier 2 (urban): partial coverage",
                "No nets allocated",
            ],
        )
    } else {
        (
            vec!["#1a9850", "#a6d96a", "#bdbdbd"],
            vec!["Full coverage", "Partial coverage", "No nets allocated"],
        )
    };
    let none_class = fills.len() - 1;
    // ITN totals per LGA (issue 14), computed with the plan: each ward's tooltip names its LGA's
    // nets, wards given nets and people covered.
    let lga_totals: std::collections::HashMap<&str, &crate::ItnLgaTotal> = summary
        .lga_totals
        .iter()
        .map(|t| (t.lga.as_str(), t))
        .collect();
    let mut class_of = Vec::with_capacity(input.wards.len());
    let mut tooltips = Vec::with_capacity(input.wards.len());
    let mut counts = vec![0usize; fills.len()];
    for (i, w) in input.wards.iter().enumerate() {
        let drawn = prepared.paths.get(i).is_some_and(Option::is_some);
        let mut t = w.name.clone();
        match &w.itn {
            Some(itn) => {
                let coverage = if itn.nets_allocated == 0 {
                    Coverage::None
                } else if itn.nets_allocated >= itn.nets_needed || itn.coverage_percent >= 100.0 {
                    Coverage::Full
                } else {
                    Coverage::Partial
                };
                let tier_offset = if tiered && itn.tier == Some(2) { 2 } else { 0 };
                let class = match coverage {
                    Coverage::Full => tier_offset,
                    Coverage::Partial => tier_offset + 1,
                    Coverage::None => none_class,
                };
                // Legend counts describe the picture; undrawn wards are listed under it.
                if drawn {
                    counts[class] += 1;
                }
                class_of.push(Some(class));
                let _ = write!(
                    t,
                    "\nPopulation: {}\nNets needed: {}\nNets allocated: {}\nCoverage: {}",
                    itn.population.map_or("unknown".to_string(), fmt_count),
                    fmt_int(itn.nets_needed),
                    fmt_int(itn.nets_allocated),
                    fmt_pct(itn.coverage_percent)
                );
                if !itn.phase.is_empty() {
                    let _ = write!(t, "\nPhase: {}", itn.phase);
                }
                if let Some(tier) = itn.tier {
                    let kind = if tier == 1 { " (rural)" } else { " (urban)" };
                    let _ = write!(t, "\nTier: {tier}{kind}");
                }
                if let Some(u) = itn.urban_pct {
                    let _ = write!(t, "\nUrban: {}", fmt_pct(u));
                }
            }
            None => {
                class_of.push(None);
                t.push_str("\nNot in the plan (no population data)");
            }
        }
        if let Some(v) = w.vulnerability(summary.method) {
            let _ = write!(
                t,
                "\n{} rank: {} ({})",
                summary.method.title(),
                v.rank,
                v.category
            );
        }
        // An LGA without a row had no ward in the allocation table: its wards in the plan (left
        // without nets) show it as zero.
        let total = w.lga.as_deref().and_then(|l| match lga_totals.get(l) {
            Some(t) => Some((t.nets_allocated, t.wards_with_nets, t.people_covered)),
            None if w.itn.is_some() && !lga_totals.is_empty() => Some((0, 0, Some(0.0))),
            None => None,
        });
        if let Some((nets, wards, people)) = total {
            let _ = write!(t, "\nLGA total: {} nets to {wards} ward(s)", fmt_int(nets));
            if let Some(p) = people {
                let _ = write!(t, ", {} people covered", fmt_count(p));
            }
        }
        tooltips.push(t);
    }
    let swatches = fills
        .iter()
        .zip(&labels)
        .zip(&counts)
        .map(|((f, l), c)| ((*f).to_string(), format!("{l} ({c})")))
        .collect();
    let layer = Layer {
        id: "n",
        heading: None,
        fills: fills.iter().map(|s| (*s).to_string()).collect(),
        class_of,
        tooltips,
        legend: Legend::Swatches(swatches),
        no_data_label: "Not in the plan".to_string(),
        faint_from: usize::MAX,
    };
    let title = format!("ITN distribution{}", area_suffix(input));
    let strategy_text = if tiered {
        format!(
            "Rural wards (urban share below {}%) first, by {} rank; urban wards get the surplus.",
            fmt_plain(summary.urban_threshold),
            summary.method.title()
        )
    } else {
        format!(
            "Wards covered in order of {} rank until the nets run out.",
            summary.method.title()
        )
    };
    let panel = itn_panel(summary);
    Ok(document(
        &title,
        Some(&strategy_text),
        input,
        &prepared,
        &[layer],
        Some(&panel),
    ))
}

fn itn_panel(s: &ItnSummary) -> String {
    let mut p = String::with_capacity(2048);
    p.push_str("<section class=\"panel\"><div class=\"stats\">");
    let rows = [
        ("Total nets", fmt_int(s.total_nets)),
        ("Allocated", fmt_int(s.allocated)),
        ("Remaining", fmt_int(s.remaining)),
        ("Population covered", fmt_pct(s.coverage_percent)),
        (
            "Urban threshold",
            format!("{}%", fmt_plain(s.urban_threshold)),
        ),
        ("Household size", fmt_plain(s.avg_household_size)),
        ("Ranking", s.method.title().to_string()),
    ];
    for (k, v) in rows {
        let _ = write!(
            p,
            "<div><span>{k}</span><strong>{}</strong></div>",
            escape(&v)
        );
    }
    p.push_str("</div>");
    let _ = write!(
        p,
        "<form id=\"itn-form\" class=\"itn\" method=\"post\" action=\"{ITN_UPDATE_ENDPOINT}\">\
         <label>Total nets<input name=\"total_nets\" type=\"number\" min=\"1\" step=\"1\" required value=\"{}\"></label>\
         <label>Urban threshold (%)<input name=\"urban_threshold\" type=\"number\" min=\"0\" max=\"100\" step=\"any\" required value=\"{}\"></label>\
         <label>Household size<input name=\"avg_household_size\" type=\"number\" min=\"0.1\" step=\"any\" required value=\"{}\"></label>\
         <label>Ranking<select name=\"method\">",
        s.total_nets, s.urban_threshold, s.avg_household_size
    );
    for (value, text, m) in [
        ("composite", "Composite", RankingMethod::Composite),
        ("pca", "PCA", RankingMethod::Pca),
    ] {
        let sel = if s.method == m { " selected" } else { "" };
        let _ = write!(p, "<option value=\"{value}\"{sel}>{text}</option>");
    }
    p.push_str("</select></label>");
    if let Some(strategy) = &s.strategy {
        p.push_str("<input type=\"hidden\" name=\"strategy\" value=\"");
        push_escaped(&mut p, strategy.as_str());
        p.push_str("\">");
    }
    p.push_str(
        "<button type=\"submit\">Recompute</button></form>\
         <p id=\"itn-status\" role=\"status\"></p></section>\n",
    );
    p
}

/// One variable in (at most) five quantile classes on YlOrRd; `values[i]` belongs to
/// `input.wards[i]`, `None` or non-finite = no data.
pub fn render_variable_map(
    input: &MapInput,
    variable: &str,
    values: &[Option<f64>],
) -> Result<String, Error> {
    if values.len() != input.wards.len() {
        return Err(Error::LengthMismatch {
            what: "variable values",
            expected: input.wards.len(),
            got: values.len(),
        });
    }
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
            what: format!("a value for {variable}"),
        });
    }
    let k = breaks.len() - 1;
    let fills: Vec<String> = yl_or_rd(k).iter().map(|s| (*s).to_string()).collect();
    let range_label = |c: usize| {
        format!(
            "{} \u{2013} {}",
            fmt_value(breaks[c]),
            fmt_value(breaks[c + 1])
        )
    };
    let mut class_of_ward = Vec::with_capacity(values.len());
    let mut tooltips = Vec::with_capacity(values.len());
    let mut counts = vec![0usize; k];
    for (i, (w, v)) in input.wards.iter().zip(values).enumerate() {
        let drawn = prepared.paths.get(i).is_some_and(Option::is_some);
        let mut t = w.name.clone();
        match v.filter(|x| x.is_finite()) {
            Some(x) => {
                let c = class_of(x, &breaks);
                if drawn {
                    counts[c] += 1;
                }
                class_of_ward.push(Some(c));
                let _ = write!(
                    t,
                    "\n{variable}: {}\nClass {} of {k}: {}",
                    fmt_value(x),
                    c + 1,
                    range_label(c)
                );
            }
            None => {
                class_of_ward.push(None);
                t.push_str("\nNo value");
            }
        }
        if let Some(v) = &w.composite {
            let _ = write!(t, "\nComposite rank: {}", v.rank);
        }
        tooltips.push(t);
    }
    let swatches = (0..k)
        .map(|c| {
            (
                fills[c].clone(),
                format!("{} ({})", range_label(c), counts[c]),
            )
        })
        .collect();
    let layer = Layer {
        id: "v",
        heading: None,
        fills,
        class_of: class_of_ward,
        tooltips,
        legend: Legend::Swatches(swatches),
        no_data_label: "No value".to_string(),
        faint_from: usize::MAX,
    };
    let title = format!("{variable}{}", area_suffix(input));
    let sub = format!("Distribution of {variable} across wards in {k} quantile classes.");
    Ok(document(
        &title,
        Some(&sub),
        input,
        &prepared,
        &[layer],
        None,
    ))
}

/// A tooltip with the ward's LGA as its second line (after the ward name), when known and not
/// already there.
pub(crate) fn with_lga(tooltip: &str, ward: Option<&WardInput>) -> String {
    match ward.and_then(|w| w.lga.as_deref()) {
        Some(lga) if !tooltip.contains("\nLGA: ") => {
            let (first, rest) = tooltip.split_once('\n').unwrap_or((tooltip, ""));
            if rest.is_empty() {
                format!("{first}\nLGA: {lga}")
            } else {
                format!("{first}\nLGA: {lga}\n{rest}")
            }
        }
        _ => tooltip.to_string(),
    }
}

pub(crate) fn document(
    title: &str,
    subtitle: Option<&str>,
    input: &MapInput,
    prepared: &Prepared,
    layers: &[Layer],
    panel: Option<&str>,
) -> String {
    let path_bytes: usize = prepared.paths.iter().flatten().map(String::len).sum();
    let tip_bytes: usize = layers
        .iter()
        .flat_map(|l| &l.tooltips)
        .map(|t| t.len() + 40)
        .sum();
    let mut out = String::with_capacity(path_bytes * layers.len() + tip_bytes + 16_384);
    begin(&mut out, title, subtitle);
    if let Some(p) = panel {
        out.push_str(p);
    }
    // Several maps of the same wards share one copy of the geometry through <use>.
    let shared = layers.len() > 1;
    if shared {
        out.push_str("<svg class=\"shapes\" aria-hidden=\"true\"><defs>\n");
        for (i, d) in prepared.paths.iter().enumerate() {
            if let Some(d) = d {
                let _ = writeln!(out, "<path id=\"s{i}\" d=\"{d}\"/>");
            }
        }
        out.push_str("</defs></svg>\n");
    }
    out.push_str("<div class=\"maps\">");
    for layer in layers {
        write_figure(&mut out, input, prepared, layer, shared);
    }
    out.push_str("</div>");
    end(&mut out);
    out
}

fn write_figure(
    out: &mut String,
    input: &MapInput,
    prepared: &Prepared,
    layer: &Layer,
    shared: bool,
) {
    let Projection { width, height, .. } = prepared.proj;
    let id = layer.id;
    out.push_str("<figure>");
    if let Some(h) = &layer.heading {
        out.push_str("<h2>");
        push_escaped(out, h);
        out.push_str("</h2>");
    }
    // Hatch spacing relative to the drawing, so it looks the same at any extent.
    let hatch = (f64::from(width.max(height)) / 150.0).max(1.0).round();
    let _ = write!(
        out,
        "<svg class=\"map\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\""
    );
    push_escaped(out, layer.heading.as_deref().unwrap_or("map"));
    let _ = writeln!(
        out,
        "\"><defs><pattern id=\"{id}-nd\" width=\"{hatch}\" height=\"{hatch}\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"{hatch}\" height=\"{hatch}\" fill=\"#eeeeee\"/>\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"{hatch}\" stroke=\"#9e9e9e\" stroke-width=\"{}\"/></pattern></defs>",
        (hatch * 0.4).max(1.0).round()
    );
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); layer.fills.len()];
    let mut no_data: Vec<usize> = Vec::new();
    let mut not_drawn: Vec<usize> = Vec::new();
    for (i, class) in layer.class_of.iter().enumerate() {
        if prepared.paths.get(i).is_none_or(Option::is_none) {
            not_drawn.push(i);
            continue;
        }
        match class {
            Some(c) if *c < members.len() => members[*c].push(i),
            _ => no_data.push(i),
        }
    }
    let write_paths = |out: &mut String, idx: &[usize]| {
        for &i in idx {
            if let (Some(Some(d)), Some(t)) = (prepared.paths.get(i), layer.tooltips.get(i)) {
                let t = &with_lga(t, input.wards.get(i));
                if shared {
                    let _ = write!(out, "<use href=\"#s{i}\" data-i=\"{i}\"><title>");
                    push_escaped(out, t);
                    out.push_str("</title></use>\n");
                } else {
                    let _ = write!(out, "<path data-i=\"{i}\" d=\"{d}\"><title>");
                    push_escaped(out, t);
                    out.push_str("</title></path>\n");
                }
            }
        }
    };
    for (c, idx) in members.iter().enumerate() {
        if idx.is_empty() {
            continue;
        }
        if c >= layer.faint_from {
            let _ = writeln!(out, "<g class=\"faint\" fill=\"{}\">", layer.fills[c]);
        } else {
            let _ = writeln!(out, "<g fill=\"{}\">", layer.fills[c]);
        }
        write_paths(out, idx);
        out.push_str("</g>");
    }
    if !no_data.is_empty() {
        let _ = writeln!(out, "<g class=\"nodata\" fill=\"url(#{id}-nd)\">");
        write_paths(out, &no_data);
        out.push_str("</g>");
    }
    if let Some(d) = &prepared.outline {
        let _ = writeln!(out, "<g class=\"lga\"><path d=\"{d}\"/></g>");
    }
    out.push_str("</svg>\n<ul class=\"legend\">");
    match &layer.legend {
        Legend::Swatches(items) => {
            for (fill, label) in items {
                let _ = write!(
                    out,
                    "<li><svg class=\"sw\" viewBox=\"0 0 18 14\" aria-hidden=\"true\"><rect width=\"18\" height=\"14\" fill=\"{fill}\"/></svg>"
                );
                push_escaped(out, label);
                out.push_str("</li>");
            }
        }
        Legend::Ramp { stops, left, right } => {
            out.push_str("<li><span>");
            push_escaped(out, left);
            let _ = write!(
                out,
                "</span><svg class=\"ramp\" viewBox=\"0 0 220 14\" preserveAspectRatio=\"none\" aria-hidden=\"true\">\
                 <defs><linearGradient id=\"{id}-g\">"
            );
            let last = stops.len().saturating_sub(1).max(1);
            for (k, s) in stops.iter().enumerate() {
                let _ = write!(
                    out,
                    "<stop offset=\"{}\" stop-color=\"{s}\"/>",
                    k as f64 / last as f64
                );
            }
            let _ = write!(
                out,
                "</linearGradient></defs><rect width=\"220\" height=\"14\" fill=\"url(#{id}-g)\"/></svg><span>"
            );
            push_escaped(out, right);
            out.push_str("</span></li>");
        }
    }
    if prepared.outline.is_some() {
        out.push_str(
            "<li><svg class=\"sw\" viewBox=\"0 0 18 14\" aria-hidden=\"true\"><line x1=\"0\" y1=\"7\" x2=\"18\" y2=\"7\" stroke=\"#222\" stroke-width=\"2.5\"/></svg>LGA boundary</li>",
        );
    }
    if !no_data.is_empty() {
        let _ = write!(
            out,
            "<li class=\"nodata\"><svg class=\"sw\" viewBox=\"0 0 18 14\" aria-hidden=\"true\"><defs>\
             <pattern id=\"{id}-ndl\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
             <rect width=\"5\" height=\"5\" fill=\"#eeeeee\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"5\" stroke=\"#9e9e9e\" stroke-width=\"2\"/>\
             </pattern></defs><rect width=\"18\" height=\"14\" fill=\"url(#{id}-ndl)\"/></svg>"
        );
        push_escaped(out, &layer.no_data_label);
        let _ = write!(out, " ({})</li>", no_data.len());
    }
    out.push_str("</ul>");
    if !not_drawn.is_empty() {
        let _ = write!(
            out,
            "<p class=\"note\">Not drawn (no boundary), {} ward{}: ",
            not_drawn.len(),
            if not_drawn.len() == 1 { "" } else { "s" }
        );
        for (k, &i) in not_drawn.iter().take(NOT_DRAWN_LISTED).enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            if let Some(w) = input.wards.get(i) {
                push_escaped(out, &w.name);
            }
        }
        if not_drawn.len() > NOT_DRAWN_LISTED {
            let _ = write!(out, " and {} more", not_drawn.len() - NOT_DRAWN_LISTED);
        }
        out.push_str("</p>");
    }
    out.push_str("</figure>\n");
}

/// A layer of one value per ward in classes given by `breaks` (YlOrRd).
fn value_layer(
    input: &MapInput,
    prepared: &Prepared,
    id: &'static str,
    heading: Option<String>,
    variable: &str,
    values: &[Option<f64>],
    breaks: &[f64],
) -> Layer {
    let k = breaks.len().saturating_sub(1).max(1);
    let fills: Vec<String> = yl_or_rd(k).iter().map(|s| (*s).to_string()).collect();
    let range_label = |c: usize| {
        format!(
            "{} \u{2013} {}",
            fmt_value(breaks.get(c).copied().unwrap_or(0.0)),
            fmt_value(breaks.get(c + 1).copied().unwrap_or(0.0))
        )
    };
    let mut class_of_ward = Vec::with_capacity(values.len());
    let mut tooltips = Vec::with_capacity(values.len());
    let mut counts = vec![0usize; k];
    for (i, (w, v)) in input.wards.iter().zip(values).enumerate() {
        let drawn = prepared.paths.get(i).is_some_and(Option::is_some);
        let mut t = w.name.clone();
        match v.filter(|x| x.is_finite()) {
            Some(x) => {
                let c = class_of(x, breaks).min(k - 1);
                if drawn {
                    counts[c] += 1;
                }
                class_of_ward.push(Some(c));
                let _ = write!(t, "\n{variable}: {}", fmt_value(x));
            }
            None => {
                class_of_ward.push(None);
                t.push_str("\nNo value");
            }
        }
        tooltips.push(t);
    }
    let swatches = (0..k)
        .map(|c| {
            (
                fills[c].clone(),
                format!("{} ({})", range_label(c), counts[c]),
            )
        })
        .collect();
    Layer {
        id,
        heading,
        fills,
        class_of: class_of_ward,
        tooltips,
        legend: Legend::Swatches(swatches),
        no_data_label: "No value".to_string(),
        faint_from: usize::MAX,
    }
}

/// An LGA choropleth: every ward filled with its LGA's value (`lga_values`, by LGA name, e.g.
/// the LGA aggregate of a variable), LGA outlines on top, in at most five quantile classes of
/// the LGA values.
pub fn render_lga_map(
    input: &MapInput,
    variable: &str,
    lga_values: &[(String, Option<f64>)],
) -> Result<String, Error> {
    let prepared = prepare_input(input)?;
    let finite: Vec<f64> = lga_values
        .iter()
        .filter_map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .collect();
    let breaks = quantile_breaks(&finite, 5);
    if breaks.len() < 2 {
        return Err(Error::MissingValues {
            what: format!("an LGA value of {variable}"),
        });
    }
    let by_lga: std::collections::HashMap<&str, Option<f64>> =
        lga_values.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    let values: Vec<Option<f64>> = input
        .wards
        .iter()
        .map(|w| {
            w.lga
                .as_deref()
                .and_then(|l| by_lga.get(l).copied().flatten())
        })
        .collect();
    let label = format!("{variable} (LGA)");
    let layer = value_layer(input, &prepared, "l", None, &label, &values, &breaks);
    let title = format!("{variable} by LGA{}", area_suffix(input));
    let sub = format!(
        "Each ward shows its LGA's value ({} LGAs); thick lines are LGA boundaries.",
        lga_values.len()
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

/// The urban-extent map: wards whose urban share is below `threshold` (%) are drawn faint, the
/// rest by composite vulnerability category; the legend counts each side. Needs one urban
/// percentage per ward (`None` = unknown, drawn hatched).
pub fn render_urban_extent_map(
    input: &MapInput,
    urban_pct: &[Option<f64>],
    threshold: f64,
) -> Result<String, Error> {
    if !threshold.is_finite() || !(0.0..=100.0).contains(&threshold) {
        return Err(Error::InvalidParameter {
            name: "threshold",
            reason: format!("{threshold} is not a percentage"),
        });
    }
    if urban_pct.len() != input.wards.len() {
        return Err(Error::LengthMismatch {
            what: "urban percentages",
            expected: input.wards.len(),
            got: urban_pct.len(),
        });
    }
    let prepared = prepare_input(input)?;
    if urban_pct.iter().all(Option::is_none) {
        return Err(Error::MissingValues {
            what: "an urban percentage".to_string(),
        });
    }
    const CATS: [&str; 4] = ["High Risk", "Medium Risk", "Low Risk", "Not ranked"];
    let cat_index = |w: &WardInput| match w
        .composite
        .as_ref()
        .map(|v| v.category.to_ascii_lowercase())
    {
        Some(c) if c.starts_with("high") => 0,
        Some(c) if c.starts_with("medium") => 1,
        Some(c) if c.starts_with("low") => 2,
        _ => 3,
    };
    let mut fills: Vec<String> = CATS
        .iter()
        .map(|c| crate::colour::category_fill(c).to_string())
        .collect();
    fills.extend(fills.clone());
    let mut class_of_ward = Vec::with_capacity(input.wards.len());
    let mut tooltips = Vec::with_capacity(input.wards.len());
    let mut counts = [0usize; 8];
    for (i, (w, u)) in input.wards.iter().zip(urban_pct).enumerate() {
        let drawn = prepared.paths.get(i).is_some_and(Option::is_some);
        let mut t = w.name.clone();
        match u.filter(|x| x.is_finite()) {
            Some(u) => {
                let below = u < threshold;
                let c = cat_index(w) + if below { 4 } else { 0 };
                if drawn {
                    counts[c] += 1;
                }
                class_of_ward.push(Some(c));
                let _ = write!(t, "\nUrban: {}", fmt_pct(u));
                if below {
                    let _ = write!(t, " (below {}%)", fmt_plain(threshold));
                }
            }
            None => {
                class_of_ward.push(None);
                t.push_str("\nUrban share unknown");
            }
        }
        if let Some(v) = &w.composite {
            let _ = write!(t, "\nComposite rank: {} ({})", v.rank, v.category);
        }
        tooltips.push(t);
    }
    let above: usize = counts[..4].iter().sum();
    let below: usize = counts[4..].iter().sum();
    let mut swatches: Vec<(String, String)> = (0..4)
        .filter(|&c| counts[c] > 0)
        .map(|c| (fills[c].clone(), format!("{} ({})", CATS[c], counts[c])))
        .collect();
    swatches.push((
        "#dddddd".to_string(),
        format!("Below {}% urban, faint ({below})", fmt_plain(threshold)),
    ));
    let layer = Layer {
        id: "u",
        heading: None,
        fills,
        class_of: class_of_ward,
        tooltips,
        legend: Legend::Swatches(swatches),
        no_data_label: "Urban share unknown".to_string(),
        faint_from: 4,
    };
    let title = format!("Urban extent{}", area_suffix(input));
    let sub = format!(
        "{above} ward(s) at or above {t}% urban, coloured by composite vulnerability category; {below} ward(s) below {t}% drawn faint.",
        t = fmt_plain(threshold)
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

/// Maps per composite model page.
pub const COMPOSITE_MAPS_PER_PAGE: usize = 4;

/// Per-model composite score maps, [`COMPOSITE_MAPS_PER_PAGE`] per page (2×2), each model's score
/// on YlOrRd over the fixed range 0–1 (as ChatMRPT's composite score maps). `models` holds each
/// model's name (e.g. "model_1: rainfall + tpr") and one score per ward. `page` is 1-based;
/// returns the document and the number of pages.
pub fn render_composite_maps(
    input: &MapInput,
    models: &[(String, Vec<Option<f64>>)],
    page: usize,
) -> Result<(String, usize), Error> {
    if models.is_empty() {
        return Err(Error::MissingValues {
            what: "composite model scores".to_string(),
        });
    }
    let pages = models.len().div_ceil(COMPOSITE_MAPS_PER_PAGE);
    if page == 0 || page > pages {
        return Err(Error::PageOutOfRange { page, pages });
    }
    for (_, v) in models {
        if v.len() != input.wards.len() {
            return Err(Error::LengthMismatch {
                what: "model scores",
                expected: input.wards.len(),
                got: v.len(),
            });
        }
    }
    let prepared = prepare_input(input)?;
    const IDS: [&str; COMPOSITE_MAPS_PER_PAGE] = ["a", "b", "c", "d"];
    let breaks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
    let layers: Vec<Layer> = models
        .iter()
        .skip((page - 1) * COMPOSITE_MAPS_PER_PAGE)
        .take(COMPOSITE_MAPS_PER_PAGE)
        .enumerate()
        .map(|(k, (name, values))| {
            value_layer(
                input,
                &prepared,
                IDS[k],
                Some(name.clone()),
                "score",
                values,
                &breaks,
            )
        })
        .collect();
    let title = format!(
        "Composite score maps, page {page} of {pages}{}",
        area_suffix(input)
    );
    let sub = format!(
        "{} models; each map is one model's composite score (0 = lowest, 1 = highest vulnerability).",
        models.len()
    );
    Ok((
        document(&title, Some(&sub), input, &prepared, &layers, None),
        pages,
    ))
}

/// How many LGA outline arcs a map of these wards draws (neighbouring wards of different LGAs).
pub fn lga_outline_arcs(input: &MapInput) -> Result<usize, Error> {
    Ok(prepare_input(input)?.outline_arcs)
}
