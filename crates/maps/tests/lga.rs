//! LGA outlines, LGA tooltips, the LGA choropleth, the urban-extent map and the per-model
//! composite maps on a fixture whose outline arcs can be counted by hand.

#![allow(clippy::unwrap_used)]

use mrpt_maps::{
    MapInput, Vulnerability, WardInput, lga_outline_arcs, render_composite_maps, render_lga_map,
    render_urban_extent_map, render_variable_map, render_vulnerability_map,
};
use mrpt_table::{Geometry, Polygon, RankingMethod};

fn square(c: usize, r: usize) -> Geometry {
    let d = 0.01;
    let (x, y) = (8.5 + c as f64 * d, 12.0 + r as f64 * d);
    Geometry::Polygon(Polygon {
        exterior: vec![[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]],
        holes: vec![],
    })
}

/// A 4×4 grid of wards in three LGAs:
/// ```text
/// row 3:  A A B B
/// row 2:  A A B B
/// row 1:  C C C B
/// row 0:  C C C B
/// ```
/// Outline arcs: A|B (x = 2, rows 2-3), A|C (y = 2, x 0-2), C|B (x = 3, rows 0-1, then y = 2
/// from x = 2 to 3). They meet at (2, 2), where three LGAs meet, so the three arcs are
/// A|B from (2,4) to (2,2), A|C from (0,2) to (2,2), and C|B from (2,2) via (3,2) to (3,0).
fn grid() -> MapInput {
    let layout = ["CCCB", "CCCB", "AABB", "AABB"];
    let mut wards = Vec::new();
    for (r, row) in layout.iter().enumerate() {
        for (c, lga) in row.chars().enumerate() {
            let i = r * 4 + c;
            let rank = i as u32 + 1;
            wards.push(WardInput {
                name: format!("Ward {i}"),
                geometry: Some(square(c, r)),
                lga: Some(format!("LGA {lga}")),
                composite: Some(Vulnerability {
                    score: 1.0 - f64::from(rank) / 20.0,
                    rank,
                    category: match rank {
                        1..=5 => "High Risk",
                        6..=11 => "Medium Risk",
                        _ => "Low Risk",
                    }
                    .to_string(),
                }),
                ..WardInput::default()
            });
        }
    }
    MapInput {
        area: Some("Grid".into()),
        wards,
    }
}

#[test]
fn outline_arcs_are_where_neighbouring_lgas_differ() {
    let input = grid();
    assert_eq!(lga_outline_arcs(&input).unwrap(), 3);
    let mut one = grid();
    for w in &mut one.wards {
        w.lga = Some("Same".into());
    }
    assert_eq!(lga_outline_arcs(&one).unwrap(), 0);
    // An LGA enclosed by another: one closed arc.
    let mut enclave = grid();
    for (i, w) in enclave.wards.iter_mut().enumerate() {
        w.lga = Some(if i == 5 { "Inner" } else { "Outer" }.into());
    }
    assert_eq!(lga_outline_arcs(&enclave).unwrap(), 1);
}

#[test]
fn every_map_draws_the_outlines_and_names_the_lga_in_tooltips() {
    let input = grid();
    let values: Vec<Option<f64>> = (0..16).map(|i| Some(f64::from(i))).collect();
    for html in [
        render_vulnerability_map(&input, RankingMethod::Composite).unwrap(),
        render_variable_map(&input, "rainfall", &values).unwrap(),
    ] {
        assert_eq!(html.matches("<g class=\"lga\">").count(), 1);
        assert!(html.contains("LGA boundary"));
        assert!(
            html.contains("<title>Ward 0\nLGA: LGA C\n"),
            "ward first, then LGA"
        );
    }
}

#[test]
fn lga_choropleth_colours_wards_by_their_lga() {
    let input = grid();
    let html = render_lga_map(
        &input,
        "rainfall",
        &[
            ("LGA A".into(), Some(1.0)),
            ("LGA B".into(), Some(2.0)),
            ("LGA C".into(), Some(3.0)),
        ],
    )
    .unwrap();
    assert!(html.contains("rainfall (LGA): 3"));
    assert!(html.contains("(3 LGAs)"));
}

#[test]
fn urban_extent_counts_each_side_of_the_threshold() {
    let input = grid();
    let urban: Vec<Option<f64>> = (0..16)
        .map(|i| Some(if i < 6 { 20.0 } else { 80.0 }))
        .collect();
    let html = render_urban_extent_map(&input, &urban, 50.0).unwrap();
    assert!(
        html.contains("10 ward(s) at or above 50% urban"),
        "{}",
        &html[..900]
    );
    assert!(html.contains("6 ward(s) below 50% drawn faint"));
    assert_eq!(
        html.matches("<g class=\"faint\"").count(),
        2,
        "High and Medium faint groups"
    );
    assert!(render_urban_extent_map(&input, &urban, 150.0).is_err());
    assert!(render_urban_extent_map(&input, &urban[..3], 50.0).is_err());
}

#[test]
fn composite_maps_four_per_page() {
    let input = grid();
    let models: Vec<(String, Vec<Option<f64>>)> = (1..=6)
        .map(|m| {
            (
                format!("model_{m}"),
                (0..16).map(|i| Some(f64::from(i) / 15.0)).collect(),
            )
        })
        .collect();
    let (html, pages) = render_composite_maps(&input, &models, 1).unwrap();
    assert_eq!(pages, 2);
    assert_eq!(html.matches("<figure>").count(), 4);
    let (html, _) = render_composite_maps(&input, &models, 2).unwrap();
    assert_eq!(html.matches("<figure>").count(), 2);
    assert!(render_composite_maps(&input, &models, 3).is_err());
}
