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
    /// Also write `facility_export.csv`: a national-size NMEP/DHIS2 facility export (37 states,
    /// the same number of wards, 25,000 facilities, 48 months) for `prefork tpr`.
    #[arg(long)]
    facility_export: bool,
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
    if args.facility_export {
        let shape = mrpt_formats::tpr::synth::ExportShape {
            wards: args.wards,
            seed: args.seed,
            ..mrpt_formats::tpr::synth::ExportShape::national()
        };
        let path = args.out.join("facility_export.csv");
        let file =
            std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        let stats = mrpt_formats::tpr::synth::write_synthetic_export(file, &shape)
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote {}: {} facility-months of {} facilities in {} wards ({} bytes)",
            path.display(),
            stats.rows,
            shape.facilities,
            shape.wards,
            stats.bytes
        );
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
