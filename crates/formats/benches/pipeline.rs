//! The upload-to-unified-dataset chain on Nigeria-sized synthetic data (9,410 wards): read the
//! CSV and the zipped shapefile, match ward names (`mrpt-table`'s matcher, as the upload and the
//! analysis do), join geometries, write GeoParquet and CSV. Prints the median of each stage over several runs.
//! Target: the whole chain under 300 ms in release on a 2-core machine.
//!
//! Wall time suffers when other work shares the machine, so each stage also reports the time
//! this thread spent on a CPU (Linux `/proc/thread-self/schedstat`), which does not.

use std::time::{Duration, Instant};

use mrpt_formats::{
    read_geoparquet, read_shapefile_zip, read_ward_table, write_csv, write_geoparquet,
};
use mrpt_table::{Geometry, match_wards};

const RUNS: usize = 7;

/// Nanoseconds this thread has run on a CPU (0 where the kernel does not say).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[derive(Clone, Copy)]
struct Lap {
    wall: Instant,
    cpu: u64,
}

impl Lap {
    fn now() -> Self {
        Lap {
            wall: Instant::now(),
            cpu: cpu_ns(),
        }
    }
    fn since(&self) -> (Duration, Duration) {
        (
            self.wall.elapsed(),
            Duration::from_nanos(cpu_ns().saturating_sub(self.cpu)),
        )
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wards: usize = std::env::var("SYNTH_WARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(mrpt_formats::synth::NIGERIA_WARDS);
    let t = Instant::now();
    let data = mrpt_formats::synth::synthesize(wards, 1)?;
    println!(
        "synthetic input: {wards} wards, CSV {} KiB, shapefile zip {} KiB (generated in {:.1} ms)",
        data.csv.len() / 1024,
        data.shapefile_zip.len() / 1024,
        ms(t.elapsed())
    );
    let stages = [
        "read CSV",
        "read shapefile zip",
        "match ward names",
        "join geometries",
        "write GeoParquet",
        "write CSV",
        "TOTAL",
        "(read GeoParquet back)",
    ];
    let mut times: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); stages.len()];
    let mut report = None;
    for _ in 0..RUNS {
        let start = Lap::now();
        let mut lap = Lap::now();
        let mut mark = |i: usize, times: &mut Vec<Vec<(Duration, Duration)>>| {
            times[i].push(lap.since());
            lap = Lap::now();
        };
        let mut table = read_ward_table(&data.csv, "wards.csv")?;
        mark(0, &mut times);
        let shapes = read_shapefile_zip(&data.shapefile_zip)?;
        mark(1, &mut times);
        let m = match_wards(&mut table, &shapes.ward_names())?;
        mark(2, &mut times);
        let geometries: Vec<Option<Geometry>> = m
            .geometry_index
            .iter()
            .map(|i| i.and_then(|i| shapes.geometries[i].clone()))
            .collect();
        mark(3, &mut times);
        let parquet = write_geoparquet(&table.table, &geometries)?;
        mark(4, &mut times);
        let csv = write_csv(&table.table);
        mark(5, &mut times);
        times[6].push(start.since());
        let back = Lap::now();
        let (t2, _) = read_geoparquet(&parquet)?;
        times[7].push(back.since());
        assert_eq!(t2.n_rows(), wards);
        assert!(!csv.is_empty());
        report = Some((m.report, parquet.len(), csv.len()));
    }
    if let Some((r, pq, csv)) = report {
        println!(
            "matched {} (exact {}, fuzzy {}), unmatched table {}, GeoParquet {} KiB, CSV {} KiB",
            r.matched,
            r.exact,
            r.fuzzy.len(),
            r.unmatched_table.len(),
            pq / 1024,
            csv / 1024
        );
    }
    println!("median of {RUNS} runs:      wall ms    cpu ms   (min wall)");
    for (name, t) in stages.iter().zip(times) {
        let wall: Vec<Duration> = t.iter().map(|x| x.0).collect();
        let cpu: Vec<Duration> = t.iter().map(|x| x.1).collect();
        let min = wall.iter().min().copied().unwrap_or_default();
        println!(
            "  {name:<26} {:>8.2} {:>9.2} {:>10.2}",
            ms(median(wall)),
            ms(median(cpu)),
            ms(min)
        );
    }
    Ok(())
}
