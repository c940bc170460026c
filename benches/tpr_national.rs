//! `cargo bench --bench tpr_national`: TPR + trends for a national-size facility export (issue
//! 13): all 37 states, 9,410 wards, 25,000 facilities, 48 months, generated here with the same
//! generator as `prefork synth --facility-export`. It times the whole `prefork tpr` process
//! (read, compute, write every §8.1 file) and its peak RSS, against the targets of 2 s and
//! 500 MiB, and prints the ratios.
//!
//! `PREFORK_TPR_BENCH_RUNS` (default 3) sets the number of runs.

use std::process::{Command, Stdio};
use std::time::Instant;

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; nothing to parse.
    let runs: usize = std::env::var("PREFORK_TPR_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("national_facility_export.csv");
    let shape = mrpt_formats::tpr::synth::ExportShape::national();
    let started = Instant::now();
    let stats =
        mrpt_formats::tpr::synth::write_synthetic_export(std::fs::File::create(&input)?, &shape)?;
    println!(
        "generated {}: {} states, {} wards, {} facilities, {} months -> {} facility-months, {:.1} MiB in {:.2} s",
        input.display(),
        shape.states,
        shape.wards,
        shape.facilities,
        shape.months,
        stats.rows,
        stats.bytes as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    let exe = env!("CARGO_BIN_EXE_prefork");
    let mut times = Vec::new();
    for run in 0..runs {
        let out = dir.path().join(format!("out{run}"));
        let before = load();
        let t = Instant::now();
        let output = Command::new(exe)
            .args(["tpr", "--state", "all", "--input"])
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .stdin(Stdio::null())
            .output()?;
        let secs = t.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!("prefork tpr failed: {stderr}").into());
        }
        let timings = stderr
            .lines()
            .find(|l| l.starts_with("TIMINGS"))
            .unwrap_or("TIMINGS -");
        println!(
            "run {}: {secs:.3} s wall ({timings}); load before {before}",
            run + 1
        );
        times.push(secs);
    }
    // ru_maxrss of reaped children: the largest peak of the runs above (KiB on Linux).
    let rss_kib =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?.max_rss();
    let rss_mib = rss_kib as f64 / 1024.0;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "prefork tpr, national export: median {median:.3} s (min {:.3}, max {:.3}) = {:.2} x the 2 s target; \
         peak RSS {rss_mib:.0} MiB = {:.2} x the 500 MiB target; load after {}",
        times[0],
        times[times.len() - 1],
        median / 2.0,
        rss_mib / 500.0,
        load()
    );
    Ok(())
}
