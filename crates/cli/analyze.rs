//! `prefork analyze`: the offline analysis command.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ward data table (.csv or .xlsx).
    #[arg(long)]
    csv: PathBuf,
    /// Zipped ward shapefile.
    #[arg(long)]
    shapefile: Option<PathBuf>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::bail!("analyze is not implemented yet ({args:?})")
}
