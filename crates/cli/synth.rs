//! `prefork synth`: deterministic synthetic ward data for benchmarks and load tests.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of wards.
    #[arg(long, default_value_t = 9410)]
    wards: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

/// Writes `<out>/wards.csv` and `<out>/wards_shapefile.zip`.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.wards > 0, "--wards must be at least 1");
    let data = mrpt_formats::synth::synthesize(args.wards, args.seed)
        .context("generating synthetic wards")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for (name, bytes) in [
        ("wards.csv", &data.csv),
        ("wards_shapefile.zip", &data.shapefile_zip),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "wrote {} wards (seed {}) to {}: wards.csv ({} bytes), wards_shapefile.zip ({} bytes)",
        args.wards,
        args.seed,
        args.out.display(),
        data.csv.len(),
        data.shapefile_zip.len()
    );
    Ok(())
}
