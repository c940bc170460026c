//! Renders every map of a `MapInput` JSON file into a folder, for a look in a browser.
//!
//! `cargo run -p mrpt-maps --example render_json -- input.json out_dir`
//! Also writes `content-security-policy.txt`, the header to serve the files with.

use std::path::PathBuf;

use mrpt_maps::{
    MapInput, content_security_policy, render_ranking_chart, render_side_by_side,
    render_vulnerability_map,
};
use mrpt_table::RankingMethod;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: render_json <input.json> <out_dir>".into());
    };
    let input: MapInput = serde_json::from_slice(&std::fs::read(&input)?)?;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    let docs = [
        (
            "composite.html",
            render_vulnerability_map(&input, RankingMethod::Composite),
        ),
        (
            "pca.html",
            render_vulnerability_map(&input, RankingMethod::Pca),
        ),
        ("side_by_side.html", render_side_by_side(&input)),
        (
            "ranking.html",
            render_ranking_chart(&input, RankingMethod::Composite, 0),
        ),
    ];
    for (name, doc) in docs {
        match doc {
            Ok(html) => std::fs::write(out.join(name), html)?,
            Err(e) => eprintln!("{name}: {e}"),
        }
    }
    std::fs::write(
        out.join("content-security-policy.txt"),
        content_security_policy(),
    )?;
    Ok(())
}
