//! CPU per MB of each reader of untrusted uploads (CSV, XLSX, a zipped shapefile, legacy .xls)
//! at 1, 4 and 16 MB of input: linear readers show the same seconds per MB at every size (the
//! ratio column, against the smallest input's figure, stays near 1; a quadratic reader would show 4 and 16).
//! Inputs are synthetic ward tables (20 numeric columns) and synthetic ward shapefiles, grown
//! until they reach the size. The caps are raised so that the largest input is read whole.
//! CPU is this thread's time on a CPU (Linux `/proc/thread-self/schedstat`); the best of
//! `RUNS` runs is printed.
//!
//!     cargo bench -p mrpt-formats --bench linearity [-- csv xlsx xls shapefile]

use mrpt_formats::Limits;
use mrpt_formats::hostile::{simple_xls, simple_xlsx};

const RUNS: usize = 3;
const MIB: usize = 1 << 20;

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// A ward table of `n` rows: a name and 20 numbers.
fn rows(n: usize) -> Vec<Vec<String>> {
    let mut out = vec![
        std::iter::once("WardName".to_string())
            .chain((1..=20).map(|c| format!("v{c}")))
            .collect::<Vec<_>>(),
    ];
    let mut x = 0x9E37_79B9u64;
    for r in 0..n {
        let mut row = vec![format!("Ward {r}")];
        for _ in 0..20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            row.push(format!("{:.4}", (x % 1_000_000) as f64 / 997.0));
        }
        out.push(row);
    }
    out
}

fn csv(rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(r.join(",").as_bytes());
        out.push(b'\n');
    }
    out
}

/// An input of `make(n)` of about `bytes`: `n` scaled from a probe of 2,000 units.
fn sized(bytes: usize, make: &dyn Fn(usize) -> Vec<u8>) -> Vec<u8> {
    let probe = make(2000).len().max(1);
    make((2000 * bytes).div_ceil(probe))
}

fn main() {
    let limits = Limits {
        max_cells: 50_000_000,
        max_inflated_bytes: 4 << 30,
        ..Limits::default()
    };
    type Make = Box<dyn Fn(usize) -> Vec<u8>>;
    type Read = Box<dyn Fn(&[u8]) -> bool>;
    let formats: Vec<(&str, Make, Read)> = vec![
        (
            "csv",
            Box::new(|n| csv(&rows(n))),
            Box::new(move |b| mrpt_formats::read_table_with(b, "b.csv", &limits).is_ok()),
        ),
        (
            "xlsx",
            Box::new(|n| simple_xlsx(&rows(n), "").unwrap_or_default()),
            Box::new(move |b| mrpt_formats::read_table_with(b, "b.xlsx", &limits).is_ok()),
        ),
        (
            "xls",
            Box::new(|n| simple_xls(&rows(n))),
            Box::new(move |b| mrpt_formats::read_table_with(b, "b.xls", &limits).is_ok()),
        ),
        (
            "shapefile zip",
            Box::new(|n| {
                mrpt_formats::synth::synthesize(n, 7)
                    .map(|d| d.shapefile_zip)
                    .unwrap_or_default()
            }),
            Box::new(|b| mrpt_formats::read_shapefile_zip(b).is_ok()),
        ),
    ];
    println!(
        "{:<14} {:>8} {:>10} {:>10} {:>8}",
        "format", "MB", "CPU ms", "ms/MB", "ratio"
    );
    // `cargo bench ... -- xls csv` measures only those formats.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for (name, make, read) in &formats {
        if !only.is_empty() && !only.iter().any(|o| name.starts_with(o.as_str())) {
            continue;
        }
        let mut base = None;
        for mb in [1usize, 4, 16] {
            let input = sized(mb * MIB, make.as_ref());
            let mut best = u64::MAX;
            for _ in 0..RUNS {
                let t = cpu_ns();
                let ok = read(&input);
                best = best.min(cpu_ns() - t);
                assert!(ok, "{name} at {mb} MB was not read");
            }
            let size = input.len() as f64 / MIB as f64;
            let per_mb = best as f64 / 1e6 / size;
            let ratio = per_mb / *base.get_or_insert(per_mb);
            println!(
                "{name:<14} {size:>8.2} {:>10.1} {per_mb:>10.1} {ratio:>8.2}",
                best as f64 / 1e6
            );
        }
    }
}
