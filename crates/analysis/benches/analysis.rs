//! Benchmark: synthetic national-scale data (8 variables = 247 models) through the whole
//! analysis and ITN planning, per stage, at 1k / 9,410 / 50k wards. Hand-written timing main
//! (harness = false): `cargo bench -p mrpt-analysis`.

#[path = "../tests/synthetic/mod.rs"]
mod synthetic;

use std::time::{Duration, Instant};

use mrpt_analysis::{
    AnalysisOptions, ItnOptions, analyze_with_probe, itn_rankings, output_tables, plan_itn,
    unified_table,
};
use mrpt_table::{ItnStrategy, RankingMethod};

const STAGES: &[&str] = &[
    "validate",
    "contiguity",
    "imputation",
    "selection",
    "normalisation",
    "composite",
    "pca",
];

/// On-CPU time of this thread (ns), from the scheduler's accounting: unlike wall time it does
/// not grow when other processes compete for the 2 cores.
fn cpu_now() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// Mean, not median: the scheduler's CPU accounting ticks in ~4 ms steps here, and averaging
/// over repetitions recovers the sub-tick part.
fn mean(v: Vec<Duration>) -> Duration {
    let n = v.len().max(1) as u32;
    v.into_iter().sum::<Duration>() / n
}

fn ms(d: Duration) -> String {
    format!("{:8.2}", d.as_secs_f64() * 1e3)
}

fn main() {
    let p = 8;
    let options = AnalysisOptions {
        variables: Some(
            synthetic::VARIABLE_NAMES[..p]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        ..AnalysisOptions::default()
    };
    println!(
        "mrpt-analysis benchmark: {p} variables (247 models), 5% missing cells, square-grid queen contiguity"
    );
    println!(
        "{:>7} | {} | {:>8} {:>8} {:>8} {:>8} | {:>8} | {:>9}",
        "wards",
        STAGES
            .iter()
            .map(|s| format!("{:>8}", &s[..s.len().min(8)]))
            .collect::<Vec<_>>()
            .join(" "),
        "analysis",
        "itn_rank",
        "itn_rf",
        "tables",
        "total",
        "wall:anal"
    );
    // MRPT_BENCH_SIZES=9410 (comma-separated) limits the run, e.g. under `perf stat`.
    let sizes: Vec<(usize, usize)> = match std::env::var("MRPT_BENCH_SIZES") {
        Ok(v) => v
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .map(|n: usize| (n, if n > 20_000 { 3 } else { 10 }))
            .collect(),
        Err(_) => vec![(1_000, 40), (9_410, 10), (50_000, 3)],
    };
    for &(n, reps) in &sizes {
        let input = synthetic::dataset(n, p, 0.05, 42);
        let mut population = synthetic::population(n, 42);
        // 1% misspelt names: `rank` leaves them out, `rural_first` goes through its fuzzy join.
        for row in population.iter_mut().step_by(100) {
            row.ward_name = row.ward_name.replace("Ward ", "Wrd ");
        }
        let mut stage_times: Vec<Vec<Duration>> = vec![Vec::new(); STAGES.len()];
        let mut analysis_times = Vec::new();
        let mut wall_times = Vec::new();
        let mut itn_times = Vec::new();
        let mut rural_times = Vec::new();
        let mut table_times = Vec::new();
        let mut totals = Vec::new();
        for rep in 0..=reps {
            let start = Instant::now();
            let cpu_start = cpu_now();
            let mut last = cpu_start;
            let mut marks: Vec<(&'static str, Duration)> = Vec::new();
            let result = analyze_with_probe(&input, &options, &mut |stage| {
                let now = cpu_now();
                marks.push((stage, now - last));
                last = now;
            })
            .expect("synthetic analysis");
            let analysis = start.elapsed();
            let analysis_cpu = cpu_now() - cpu_start;
            let t = cpu_now();
            let rankings = itn_rankings(&result, RankingMethod::Composite, None, None)
                .expect("composite ranking");
            let plan = plan_itn(
                &rankings,
                &population,
                &ItnOptions {
                    total_nets: (n as i64) * 2_000,
                    strategy: Some(ItnStrategy::Rank),
                    ..ItnOptions::default()
                },
            )
            .expect("itn plan");
            let itn = cpu_now() - t;
            let t = cpu_now();
            let mut urban_rows = rankings.clone();
            for (i, row) in urban_rows.iter_mut().enumerate() {
                row.urban_pct = Some(((i * 37) % 101) as f64);
            }
            let rural = plan_itn(
                &urban_rows,
                &population,
                &ItnOptions {
                    total_nets: (n as i64) * 2_000,
                    strategy: Some(ItnStrategy::RuralFirst),
                    ..ItnOptions::default()
                },
            )
            .expect("rural-first plan");
            let rural_time = cpu_now() - t;
            std::hint::black_box(&rural);
            let t = cpu_now();
            let tables = output_tables(&result);
            let unified = unified_table(&result, None, "2026-01-01T00:00:00");
            let table_time = cpu_now() - t;
            std::hint::black_box((&plan, &tables, &unified));
            if rep == 0 {
                continue; // warm-up
            }
            for (stage, d) in marks {
                if let Some(i) = STAGES.iter().position(|s| *s == stage) {
                    stage_times[i].push(d);
                }
            }
            analysis_times.push(analysis_cpu);
            wall_times.push(analysis);
            itn_times.push(itn);
            rural_times.push(rural_time);
            table_times.push(table_time);
            totals.push(cpu_now() - cpu_start);
        }
        println!(
            "{:>7} | {} | {} {} {} {} | {} | {} ",
            n,
            stage_times
                .into_iter()
                .map(|v| ms(mean(v)))
                .collect::<Vec<_>>()
                .join(" "),
            ms(mean(analysis_times)),
            ms(mean(itn_times)),
            ms(mean(rural_times)),
            ms(mean(table_times)),
            ms(mean(totals)),
            ms(mean(wall_times)),
        );
    }
    println!(
        "(milliseconds of on-CPU time, mean of the timed repetitions after one warm-up; analysis = the stages
 before it; tables = the §1.5 CSV tables + unified dataset; wall:anal = wall-clock time of the analysis)"
    );
}
