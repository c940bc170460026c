//! End-to-end checks of the rendered documents: structure, tooltips, no-data handling,
//! escaping, self-containment and size at national scale.

#![allow(clippy::unwrap_used)]

mod common;

use common::hexgrid::national_input;
use mrpt_maps::{
    BOX_PLOT_PAGE_SIZE, BoxPlotInput, BoxWard, Error, ITN_UPDATE_ENDPOINT, ItnLgaTotal, ItnSummary,
    ItnWard, MapInput, SCRIPT, STYLE, TrendChartInput, TrendSeries, Vulnerability, WardInput,
    content_security_policy, render_box_plot, render_itn_map, render_missingness_map,
    render_ranking_chart, render_side_by_side, render_slope_map, render_tpr_map,
    render_trend_chart, render_variable_map, render_vulnerability_map,
};
use mrpt_table::{Geometry, ItnStrategy, Polygon, RankingMethod};

const EVIL: &str = "Gidan <b>\"Tsoho\" & 'Sons'</b></title><script>alert(1)</script>";

fn square(x: f64, y: f64) -> Geometry {
    let d = 0.01;
    Geometry::Polygon(Polygon {
        exterior: vec![[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]],
        holes: vec![],
    })
}

fn vul(score: f64, rank: u32, category: &str) -> Vulnerability {
    Vulnerability {
        score,
        rank,
        category: category.to_string(),
    }
}

/// A 3×3 grid of wards near Kano (ranks 1..8 for composite, reversed for PCA), one without data
/// and one without a boundary; ward 0 has a hostile name.
fn small_input() -> MapInput {
    let mut wards = Vec::new();
    for i in 0..9u32 {
        let (r, c) = (f64::from(i / 3), f64::from(i % 3));
        let name = if i == 0 {
            EVIL.to_string()
        } else {
            format!("Ward {i}")
        };
        let has_data = i != 4;
        let rank = if i < 4 { i + 1 } else { i };
        let category = match rank {
            1..=2 => "High Risk",
            3..=6 => "Medium Risk",
            _ => "Low Risk",
        };
        wards.push(WardInput {
            name,
            geometry: (i != 8).then(|| square(8.5 + c * 0.01, 12.0 + r * 0.01)),
            lga: None,
            composite: has_data.then(|| vul(1.0 - f64::from(rank) / 10.0, rank, category)),
            pca: has_data.then(|| vul(f64::from(rank) - 4.5, 9 - rank, category)),
            itn: has_data.then(|| ItnWard {
                population: Some(9000.0),
                nets_needed: 5000,
                nets_allocated: match rank {
                    1..=3 => 5000,
                    4 => 1234,
                    _ => 0,
                },
                coverage_percent: match rank {
                    1..=3 => 100.0,
                    4 => 24.68,
                    _ => 0.0,
                },
                phase: "Full Coverage".to_string(),
                tier: None,
                urban_pct: None,
                people_covered: None,
            }),
        });
    }
    MapInput {
        area: Some("Kano & <test>".to_string()),
        wards,
    }
}

/// (data-i, d, title) of every ward path, in document order.
fn paths(doc: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(p) = rest.find("<path data-i=\"") {
        rest = &rest[p + 14..];
        let q = rest.find('"').unwrap();
        let i: usize = rest[..q].parse().unwrap();
        let d0 = rest.find(" d=\"").unwrap() + 4;
        let d1 = d0 + rest[d0..].find('"').unwrap();
        let t0 = rest.find("<title>").unwrap() + 7;
        let t1 = rest.find("</title>").unwrap();
        out.push((i, rest[d0..d1].to_string(), rest[t0..t1].to_string()));
        rest = &rest[t1..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Every element opened in body is closed in order (void and self-closing excepted), and the
/// text between tags contains no raw '<'. Catches any escaping failure.
fn assert_balanced(doc: &str) {
    let body = &doc[doc.find("<html").unwrap()..];
    let body = body.replace(&format!("<script>{SCRIPT}</script>"), "<script></script>");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body.as_str();
    while let Some(lt) = rest.find('<') {
        let gt = lt + rest[lt..].find('>').unwrap();
        let tag = &rest[lt + 1..gt];
        assert!(!tag.contains('<'), "raw '<' inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().unwrap_or_default();
            assert_eq!(open, name, "closing {name} while {open} is open");
        } else if !tag.ends_with('/') {
            let name: String = tag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if !matches!(name.as_str(), "meta" | "input" | "br") {
                stack.push(name);
            }
        }
        rest = &rest[gt + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

fn assert_self_contained(doc: &str) {
    let lower = doc.to_ascii_lowercase();
    for bad in [
        "http://", "https://", "//cdn", "src=", "<link", "@import", "<iframe", "<img",
    ] {
        assert!(!lower.contains(bad), "document contains {bad}");
    }
    // Only same-document references: url(#id).
    for (k, _) in lower.match_indices("url(") {
        assert_eq!(&lower[k + 4..k + 5], "#", "external url() at {k}");
    }
    // Exactly the hashed style and script, nothing else inline.
    assert_eq!(doc.matches("<style>").count(), 1);
    assert_eq!(doc.matches("<script").count(), 1);
    assert!(doc.contains(&format!("<style>{STYLE}</style>")));
    assert!(doc.contains(&format!("<script>{SCRIPT}</script>")));
    assert!(
        !lower.contains(" style=\""),
        "style attributes are blocked by the CSP"
    );
    assert!(!lower.contains(" onclick") && !lower.contains(" onload"));
}

#[test]
fn composite_map_has_every_drawn_ward_once_with_correct_tooltips() {
    let input = small_input();
    let doc = render_vulnerability_map(&input, RankingMethod::Composite).unwrap();
    assert_self_contained(&doc);
    assert_balanced(&doc);
    let ps = paths(&doc);
    let mut ids: Vec<usize> = ps.iter().map(|p| p.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2, 3, 4, 5, 6, 7], "ward 8 has no boundary");
    for (i, d, title) in &ps {
        let w = &input.wards[*i];
        let t = unescape(title);
        assert!(t.starts_with(&format!("{}\n", w.name)), "{t}");
        assert!(d.starts_with('M') && d.ends_with('z'));
        match &w.composite {
            Some(v) => {
                assert!(
                    t.contains(&format!("Composite score: {:.3}", v.score)),
                    "{t}"
                );
                assert!(t.contains(&format!("Rank: {} of 8", v.rank)), "{t}");
                assert!(t.contains(&format!("Category: {}", v.category)), "{t}");
                assert!(t.contains("Nets allocated: "), "{t}");
            }
            None => assert!(t.contains("No Composite result"), "{t}"),
        }
    }
    // Rank 1 gets the darkest Plasma colour, the last rank yellow.
    let g_of = |i: usize| {
        let k = doc.find(&format!("<path data-i=\"{i}\"")).unwrap();
        let g = doc[..k].rfind("<g ").unwrap();
        doc[g..k].split('"').nth(1).unwrap().to_string()
    };
    assert_eq!(g_of(0), "#0d0887");
    // Ward 7 has rank 7 of 8 (rank 8 has no boundary): near the yellow end.
    assert_eq!(g_of(7), "#fcbd2c");
    // The ward without data sits in the hatched group and has a legend entry.
    assert_eq!(g_of(4), "nodata");
    assert!(doc.contains("fill=\"url(#m-nd)\""));
    assert!(doc.contains("No Composite result (1)"));
    assert!(doc.contains("Not drawn (no boundary), 1 ward: Ward 8"));
    assert!(doc.contains("High vulnerability (rank 1)") && doc.contains("Low (rank 8)"));
}

#[test]
fn hostile_ward_names_are_escaped_everywhere() {
    let input = small_input();
    let docs = [
        render_vulnerability_map(&input, RankingMethod::Composite).unwrap(),
        render_vulnerability_map(&input, RankingMethod::Pca).unwrap(),
        render_side_by_side(&input).unwrap(),
        render_itn_map(&input, &summary(None)).unwrap(),
        render_variable_map(&input, "rain<fall>", &[Some(1.0); 9]).unwrap(),
        render_ranking_chart(&input, RankingMethod::Composite, 0).unwrap(),
        render_box_plot(&box_input(3), 1).unwrap().0,
    ];
    for doc in &docs {
        assert!(!doc.contains(EVIL));
        assert!(!doc.contains("<b>") && !doc.contains("alert(1)</script>"));
        assert!(!doc.contains("Kano & <test>"));
        assert_balanced(doc);
        assert_self_contained(doc);
    }
    assert!(docs[0].contains("Kano &amp; &lt;test&gt;"));
    assert!(docs[0].contains("Gidan &lt;b&gt;&quot;Tsoho&quot; &amp; &#39;Sons&#39;"));
}

#[test]
fn pca_map_uses_four_green_classes_by_rank() {
    let input = small_input();
    let doc = render_vulnerability_map(&input, RankingMethod::Pca).unwrap();
    for (i, _, title) in paths(&doc) {
        if let Some(v) = &input.wards[i].pca {
            assert!(unescape(&title).contains(&format!("PCA score: {:.3}", v.score)));
        }
    }
    // PCA ranks 1..8 in quarters of two: 1-2 darkest.
    assert!(doc.contains("Ranks 1\u{2013}2 (highest vulnerability)"));
    assert!(doc.contains("Ranks 7\u{2013}8 (lowest vulnerability)"));
    let k = doc.find("<g fill=\"#238b45\">").unwrap();
    let section = &doc[k..k + doc[k..].find("</g>").unwrap()];
    let ranks: Vec<u32> = paths(section)
        .iter()
        .map(|p| input.wards[p.0].pca.as_ref().unwrap().rank)
        .collect();
    assert!(
        !ranks.is_empty() && ranks.iter().all(|&r| r <= 2),
        "{ranks:?}"
    );
}

#[test]
fn side_by_side_draws_both_maps_with_unique_ids() {
    let input = small_input();
    let doc = render_side_by_side(&input).unwrap();
    assert_self_contained(&doc);
    assert_balanced(&doc);
    // One shared copy of each boundary, referenced once from each map.
    for i in 0..8 {
        assert_eq!(doc.matches(&format!("<path id=\"s{i}\" d=\"M")).count(), 1);
        assert_eq!(
            doc.matches(&format!("<use href=\"#s{i}\" data-i=\"{i}\"><title>"))
                .count(),
            2
        );
    }
    assert!(!doc.contains("id=\"s8\"") && !doc.contains("#s8"));
    let c = doc.find("<h2>Composite vulnerability</h2>").unwrap();
    let p = doc.find("<h2>PCA vulnerability</h2>").unwrap();
    let k = doc[c..p].find("<use href=\"#s3\"").unwrap() + c;
    let t = unescape(&doc[k..k + doc[k..].find("</title>").unwrap()]);
    assert!(
        t.contains("Composite score: 0.600") && t.contains("Rank: 4 of 8"),
        "{t}"
    );
    let k = doc[p..].find("<use href=\"#s3\"").unwrap() + p;
    let t = unescape(&doc[k..k + doc[k..].find("</title>").unwrap()]);
    assert!(
        t.contains("PCA score: -0.500") && t.contains("Rank: 5 of 8"),
        "{t}"
    );
    assert!(doc.contains("id=\"c-nd\"") && doc.contains("id=\"p-nd\""));
    assert_eq!(doc.matches("id=\"c-nd\"").count(), 1);
    assert!(doc.contains("<h2>Composite vulnerability</h2>"));
    assert!(doc.contains("<h2>PCA vulnerability</h2>"));
}

fn summary(strategy: Option<ItnStrategy>) -> ItnSummary {
    ItnSummary {
        total_nets: 16_234,
        allocated: 16_234,
        remaining: 0,
        coverage_percent: 41.3,
        avg_household_size: 5.0,
        urban_threshold: 30.0,
        method: RankingMethod::Composite,
        strategy,
        lga_totals: Vec::new(),
    }
}

#[test]
fn itn_map_classes_summary_and_form() {
    let input = small_input();
    let doc = render_itn_map(&input, &summary(Some(ItnStrategy::Rank))).unwrap();
    assert_self_contained(&doc);
    assert!(doc.contains(&format!(
        "<form id=\"itn-form\" class=\"itn\" method=\"post\" action=\"{ITN_UPDATE_ENDPOINT}\">"
    )));
    assert!(doc.contains(
        "name=\"total_nets\" type=\"number\" min=\"1\" step=\"1\" required value=\"16234\""
    ));
    assert!(doc.contains("name=\"urban_threshold\""));
    assert!(doc.contains("<option value=\"composite\" selected>"));
    assert!(doc.contains("<input type=\"hidden\" name=\"strategy\" value=\"rank\">"));
    // Untiered plan: ranks 1-3 full, rank 4 partial, others none; ward 4 not in the plan.
    assert!(doc.contains("Full coverage (3)"));
    assert!(doc.contains("Partial coverage (1)"));
    assert!(
        doc.contains("No nets allocated (3)"),
        "ranks 5-7 drawn, rank 8 has no boundary"
    );
    assert!(doc.contains("Not in the plan (1)"));
    assert!(!doc.contains("Tier 1"));
    let ps = paths(&doc);
    let t3 = unescape(&ps.iter().find(|p| p.0 == 3).unwrap().2);
    assert!(
        t3.contains("Nets allocated: 1,234") && t3.contains("Coverage: 24.7%"),
        "{t3}"
    );
    assert!(t3.contains("Population: 9,000") && t3.contains("Nets needed: 5,000"));
}

#[test]
fn itn_map_with_tiers_and_bad_parameters() {
    let mut input = small_input();
    for (k, w) in input.wards.iter_mut().enumerate() {
        if let Some(itn) = &mut w.itn {
            itn.tier = Some(if k % 2 == 0 { 1 } else { 2 });
        }
    }
    let doc = render_itn_map(&input, &summary(None)).unwrap();
    assert!(doc.contains("Tier 1 (rural): full coverage"));
    assert!(doc.contains("Tier 2 (urban): partial coverage"));
    assert!(doc.contains("Tier: 2 (urban)"));
    assert!(!doc.contains("name=\"strategy\""));
    let mut bad = summary(None);
    bad.urban_threshold = 130.0;
    assert!(matches!(
        render_itn_map(&input, &bad),
        Err(Error::InvalidParameter {
            name: "urban_threshold",
            ..
        })
    ));
    let mut no_plan = input.clone();
    for w in &mut no_plan.wards {
        w.itn = None;
    }
    assert!(matches!(
        render_itn_map(&no_plan, &summary(None)),
        Err(Error::MissingValues { .. })
    ));
}

#[test]
fn variable_map_quantile_classes() {
    let input = small_input();
    let values: Vec<Option<f64>> = (0..9)
        .map(|i| {
            if i == 2 {
                None
            } else {
                Some(f64::from(i) * 10.0)
            }
        })
        .collect();
    let doc = render_variable_map(&input, "rainfall", &values).unwrap();
    assert_balanced(&doc);
    let ps = paths(&doc);
    assert_eq!(ps.len(), 8);
    let t1 = unescape(&ps.iter().find(|p| p.0 == 1).unwrap().2);
    assert!(
        t1.contains("rainfall: 10.00") && t1.contains("Class 1 of 5"),
        "{t1}"
    );
    let t2 = unescape(&ps.iter().find(|p| p.0 == 2).unwrap().2);
    assert!(t2.contains("No value"));
    assert!(doc.contains("No value (1)"));
    assert_eq!(doc.matches("<li><svg class=\"sw\"").count(), 5);
    assert_eq!(
        render_variable_map(&input, "x", &[Some(1.0)]),
        Err(Error::LengthMismatch {
            what: "variable values",
            expected: 9,
            got: 1
        })
    );
    assert!(matches!(
        render_variable_map(&input, "x", &[None; 9]),
        Err(Error::MissingValues { .. })
    ));
}

#[test]
fn errors_on_unusable_input() {
    assert_eq!(
        render_vulnerability_map(&MapInput::default(), RankingMethod::Composite),
        Err(Error::NoWards)
    );
    let mut input = small_input();
    for w in &mut input.wards {
        w.geometry = None;
    }
    assert_eq!(
        render_vulnerability_map(&input, RankingMethod::Composite),
        Err(Error::NoGeometry)
    );
    let mut input = small_input();
    input.wards[3].geometry = Some(Geometry::Polygon(Polygon {
        exterior: vec![[8.0, 95.0], [8.1, 12.0], [8.0, 12.1]],
        holes: vec![],
    }));
    let err = render_vulnerability_map(&input, RankingMethod::Composite).unwrap_err();
    assert!(matches!(err, Error::InvalidCoordinate { ref ward, .. } if ward == "Ward 3"));
    let mut input = small_input();
    for w in &mut input.wards {
        w.pca = None;
    }
    assert!(matches!(
        render_side_by_side(&input),
        Err(Error::MissingValues { .. })
    ));
}

fn box_input(n: usize) -> BoxPlotInput {
    let wards = (0..n)
        .map(|i| {
            let base = (i * 37 % n) as f64 / n as f64;
            BoxWard {
                name: if i == 0 {
                    EVIL.to_string()
                } else {
                    format!("Ward {i}")
                },
                scores: (0..26)
                    .map(|m| (base + f64::from(m) * 0.004).min(1.0))
                    .collect(),
                rank: Some(i as u32 + 1),
                category: Some("Medium Risk".to_string()),
            }
        })
        .collect();
    BoxPlotInput { area: None, wards }
}

/// data-i of each chart row, in document order.
fn rows(doc: &str) -> Vec<usize> {
    doc.match_indices("<g class=\"row\" data-i=\"")
        .map(|(k, m)| {
            let s = &doc[k + m.len()..];
            s[..s.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

#[test]
fn box_plot_pages_of_twenty_ordered_by_median() {
    let input = box_input(45);
    let medians: Vec<f64> = input
        .wards
        .iter()
        .map(|w| {
            let mut s = w.scores.clone();
            s.sort_by(f64::total_cmp);
            (s[12] + s[13]) / 2.0
        })
        .collect();
    let mut all = Vec::new();
    for page in 1..=3 {
        let (doc, pages) = render_box_plot(&input, page).unwrap();
        assert_eq!(pages, 3);
        assert_balanced(&doc);
        assert_self_contained(&doc);
        let r = rows(&doc);
        assert_eq!(r.len(), if page < 3 { BOX_PLOT_PAGE_SIZE } else { 5 });
        assert!(doc.contains(&format!("Page {page} of 3")));
        all.extend(r);
    }
    assert_eq!(all.len(), 45);
    for w in all.windows(2) {
        assert!(medians[w[0]] >= medians[w[1]]);
    }
    let (doc, _) = render_box_plot(&input, 1).unwrap();
    let k = doc
        .find(&format!("<g class=\"row\" data-i=\"{}\">", all[0]))
        .unwrap();
    let t = unescape(&doc[k..k + doc[k..].find("</title>").unwrap()]);
    assert!(
        t.contains(&format!("Median: {:.3}", medians[all[0]])),
        "{t}"
    );
    assert!(t.contains("Models: 26"));
    assert_eq!(
        render_box_plot(&input, 4),
        Err(Error::PageOutOfRange { page: 4, pages: 3 })
    );
    assert_eq!(
        render_box_plot(&input, 0),
        Err(Error::PageOutOfRange { page: 0, pages: 3 })
    );
    assert_eq!(
        render_box_plot(&BoxPlotInput::default(), 1),
        Err(Error::NoWards)
    );
}

#[test]
fn ranking_chart_orders_by_rank_and_limits() {
    let input = small_input();
    let doc = render_ranking_chart(&input, RankingMethod::Composite, 0).unwrap();
    assert_self_contained(&doc);
    let r = rows(&doc);
    let ranks: Vec<u32> = r
        .iter()
        .map(|&i| input.wards[i].composite.as_ref().unwrap().rank)
        .collect();
    assert_eq!(ranks, (1..=8).collect::<Vec<_>>());
    assert!(doc.contains("1 ward(s) without a Composite result are not shown"));
    let top3 = render_ranking_chart(&input, RankingMethod::Pca, 3).unwrap();
    assert_eq!(rows(&top3).len(), 3);
    assert!(top3.contains("The 3 most vulnerable of 8 ranked wards."));
}

#[test]
fn csp_covers_every_document() {
    let csp = content_security_policy();
    assert!(csp.starts_with("default-src 'none';"));
    assert!(csp.contains("connect-src 'self'"));
}

#[test]
fn input_round_trips_through_json() {
    let input = small_input();
    let json = serde_json::to_string(&input).unwrap();
    let back: MapInput = serde_json::from_str(&json).unwrap();
    assert_eq!(back, input);
    let minimal: MapInput = serde_json::from_str(
        r#"{"wards":[{"name":"A","geometry":{"type":"MultiPolygon",
            "coordinates":[[[[8.5,12.0],[8.6,12.0],[8.6,12.1]]]]},
            "composite":{"score":0.5,"rank":1,"category":"High Risk"}}]}"#,
    )
    .unwrap();
    assert!(render_vulnerability_map(&minimal, RankingMethod::Composite).is_ok());
    let m: RankingMethod = serde_json::from_str("\"pca\"").unwrap();
    assert_eq!(m, RankingMethod::Pca);
}

/// The national case from the issue: 9,410 wards in under 5 MB, every ward drawn once.
/// (Time is measured in `benches/render.rs`, not here.)
#[test]
fn national_grid_stays_small_and_complete() {
    let input = national_input(9410, 8);
    let doc = render_vulnerability_map(&input, RankingMethod::Composite).unwrap();
    assert!(doc.len() < 5_000_000, "{} bytes", doc.len());
    let ps = paths(&doc);
    assert_eq!(ps.len(), 9410);
    let mut seen = vec![false; 9410];
    for (i, _, _) in &ps {
        assert!(!seen[*i], "ward {i} twice");
        seen[*i] = true;
    }
    let itn = render_itn_map(&input, &summary(Some(ItnStrategy::RuralFirst))).unwrap();
    assert!(itn.len() < 5_000_000, "{} bytes", itn.len());
    assert_eq!(paths(&itn).len(), 9410);
}

fn details(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("Tests: {}\nLGA value: 41.2%", 100 * i))
        .collect()
}

#[test]
fn tpr_map_classes_values_and_marks_untested_wards_no_data() {
    let input = small_input();
    let values: Vec<Option<f64>> = (0..9)
        .map(|i| (i != 5).then(|| 20.0 + 5.0 * f64::from(i)))
        .collect();
    let doc = render_tpr_map(
        &input,
        "TPR (%)",
        "Test positivity rate, %, all ages",
        &values,
        &details(9),
    )
    .unwrap();
    assert_balanced(&doc);
    assert_self_contained(&doc);
    let ps = paths(&doc);
    assert_eq!(ps.len(), 8, "ward 8 has no boundary");
    let t3 = unescape(&ps.iter().find(|p| p.0 == 3).unwrap().2);
    assert_eq!(t3, "Ward 3\nTPR (%): 35.00\nTests: 300\nLGA value: 41.2%");
    let t5 = unescape(&ps.iter().find(|p| p.0 == 5).unwrap().2);
    assert!(t5.contains("TPR (%): no data"), "{t5}");
    assert!(!t5.contains("0.00"), "untested is not zero: {t5}");
    assert!(doc.contains("No data (no facility or no tests) (1)"));
    assert!(doc.contains("Test positivity rate, %, all ages."));
    assert!(doc.contains("Kano &amp; &lt;test&gt;"));
    assert_eq!(
        render_tpr_map(&input, "TPR", "x", &values[..3], &details(9)),
        Err(Error::LengthMismatch {
            what: "TPR values",
            expected: 9,
            got: 3
        })
    );
    assert!(matches!(
        render_tpr_map(&input, "TPR", "x", &[None; 9], &details(9)),
        Err(Error::MissingValues { .. })
    ));
}

#[test]
fn slope_map_is_diverging_and_follows_the_analysis_direction() {
    use mrpt_table::tpr::Direction::*;
    let input = small_input();
    let slopes = vec![
        Some((-5.0, Improving)),
        Some((-2.5, Improving)),
        Some((0.3, Stable)),
        // A rounded slope exactly at the threshold whose unrounded value was below it.
        Some((2.0, Stable)),
        Some((2.5, Worsening)),
        Some((4.0, Worsening)),
        Some((9.0, InsufficientData)),
        None,
        Some((1.0, Stable)),
    ];
    let doc = render_slope_map(
        &input,
        "Test positivity rate, %",
        "percentage points",
        2.0,
        &slopes,
        &vec![String::new(); 9],
    )
    .unwrap();
    assert_balanced(&doc);
    assert_self_contained(&doc);
    let fill_of = |i: usize| -> String {
        let at = doc.find(&format!("<path data-i=\"{i}\"")).unwrap();
        let g = doc[..at].rfind("<g ").unwrap();
        doc[g..at].to_string()
    };
    assert!(fill_of(0).contains("#2166ac"));
    assert!(fill_of(1).contains("#92c5de"));
    assert!(fill_of(2).contains("#f7f7f7"));
    assert!(
        fill_of(3).contains("#f7f7f7"),
        "direction wins over the rounded value"
    );
    assert!(fill_of(4).contains("#f4a582"));
    assert!(fill_of(5).contains("#b2182b"));
    assert!(fill_of(6).contains("nodata"));
    assert!(fill_of(7).contains("nodata"));
    let t0 = unescape(&paths(&doc).iter().find(|p| p.0 == 0).unwrap().2);
    assert!(
        t0.contains("Slope: -5.000 percentage points per year (improving)"),
        "{t0}"
    );
    assert!(doc.contains("Stable (within \u{b1}2) (2)"));
    assert!(doc.contains("Fewer than two years with tests (2)"));
    assert!(matches!(
        render_slope_map(&input, "x", "pp", 0.0, &slopes, &vec![String::new(); 9]),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        render_slope_map(&input, "x", "pp", 2.0, &[None; 9], &vec![String::new(); 9]),
        Err(Error::MissingValues { .. })
    ));
}

#[test]
fn missingness_map_fixed_classes() {
    let input = small_input();
    let values: Vec<Option<f64>> = vec![
        Some(0.0),
        Some(5.0),
        Some(7.5),
        Some(25.0),
        Some(49.0),
        Some(80.0),
        None,
        Some(100.0),
        Some(1.0),
    ];
    let doc = render_missingness_map(
        &input,
        "Share of indicator cells blank",
        &values,
        &details(9),
    )
    .unwrap();
    assert_balanced(&doc);
    assert_self_contained(&doc);
    for label in [
        "0 \u{2013} 5% (2)",
        "5 \u{2013} 10% (1)",
        "10 \u{2013} 25% (1)",
        "25 \u{2013} 50% (1)",
        "over 50% (2)",
        "No rows in the export (1)",
    ] {
        assert!(doc.contains(label), "{label}");
    }
}

#[test]
fn trend_chart_draws_one_line_per_ward_with_its_values() {
    use mrpt_table::tpr::Direction::*;
    let chart = TrendChartInput {
        area: Some("Kano".into()),
        metric: "TPR (%)".into(),
        metric_label: "Test positivity rate, %".into(),
        unit: "percentage points".into(),
        series: vec![
            TrendSeries {
                name: EVIL.into(),
                direction: Worsening,
                slope: Some(4.2),
                points: vec![(2023, 50.0), (2021, 40.0), (2024, f64::NAN), (2022, 45.0)],
            },
            TrendSeries {
                name: "Gwale (Gwale)".into(),
                direction: Improving,
                slope: Some(-3.1),
                points: vec![(2021, 60.0), (2024, 51.0)],
            },
            TrendSeries {
                name: "One point".into(),
                direction: Stable,
                slope: None,
                points: vec![(2024, 30.0)],
            },
        ],
    };
    let doc = render_trend_chart(&chart).unwrap();
    assert_balanced(&doc);
    assert_self_contained(&doc);
    assert_eq!(rows(&doc), vec![0, 1, 2]);
    assert_eq!(
        doc.matches("<polyline").count(),
        2,
        "one point draws no line"
    );
    assert_eq!(doc.matches("stroke-dasharray=\"6 3\"").count(), 1);
    assert!(doc.contains("Slope: +4.200 percentage points per year (worsening)\n2021: 40.00\n2022: 45.00\n2023: 50.00</title>"));
    for y in 2021..=2024 {
        assert!(doc.contains(&format!(">{y}</text>")));
    }
    assert!(doc.contains("1 worsening ward(s) in red (solid), 1 improving"));
    assert!(matches!(
        render_trend_chart(&TrendChartInput::default()),
        Err(Error::MissingValues { .. })
    ));
}

#[test]
fn itn_map_tooltips_carry_their_lgas_totals() {
    let mut input = small_input();
    for (i, w) in input.wards.iter_mut().enumerate() {
        w.lga = Some(if i < 5 { "North" } else { "South" }.to_string());
        if let Some(itn) = &mut w.itn {
            itn.people_covered = Some(itn.nets_allocated as f64 * 1.8);
        }
    }
    // The totals come with the plan (mrpt-analysis sums them); the map only shows them.
    let mut with_totals = summary(None);
    with_totals.lga_totals = vec![
        ItnLgaTotal {
            lga: "North".to_string(),
            nets_allocated: 16_234,
            wards_with_nets: 4,
            people_covered: Some(29_221.2),
        },
        ItnLgaTotal {
            lga: "South".to_string(),
            nets_allocated: 0,
            wards_with_nets: 0,
            people_covered: Some(0.0),
        },
    ];
    let doc = render_itn_map(&input, &with_totals).unwrap();
    let ps = paths(&doc);
    let tip = |ward: usize| unescape(&ps.iter().find(|p| p.0 == ward).unwrap().2);
    // North: ranks 1-3 get 5,000 each and rank 4 gets 1,234; ward 4 is not in the plan.
    assert!(
        tip(3).contains("LGA total: 16,234 nets to 4 ward(s), 29,221 people covered"),
        "{}",
        tip(3)
    );
    assert!(
        tip(6).contains("LGA total: 0 nets to 0 ward(s), 0 people covered"),
        "{}",
        tip(6)
    );
    // An LGA without a row (no ward of it in the allocation table): its wards in the plan
    // show zero.
    let mut north_only = with_totals.clone();
    north_only.lga_totals.truncate(1);
    let doc = render_itn_map(&input, &north_only).unwrap();
    let ps = paths(&doc);
    let tip = |ward: usize| unescape(&ps.iter().find(|p| p.0 == ward).unwrap().2);
    assert!(
        tip(6).contains("LGA total: 0 nets to 0 ward(s), 0 people covered"),
        "{}",
        tip(6)
    );
    // Without LGAs on the wards, or without totals, nothing is added.
    let plain = render_itn_map(&small_input(), &with_totals).unwrap();
    assert!(!plain.contains("LGA total"));
    let untotalled = render_itn_map(&input, &summary(None)).unwrap();
    assert!(!untotalled.contains("LGA total"));
}
