//! `prefork synth`: deterministic synthetic ward data for benchmarks and load tests.

use std::path::PathBuf;

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

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::bail!("synth is not implemented yet ({args:?})")
}
