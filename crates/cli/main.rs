//! The `prefork` binary. `main` only dispatches: argument parsing and each command live in their
//! own module.

mod analyze;
mod synth;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "prefork", version, about = "A prefork HTTP server and the malaria risk prioritisation service")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the risk analysis (and optionally ITN planning) offline and write the result files.
    Analyze(analyze::Args),
    /// Write a deterministic synthetic ward dataset (CSV + zipped shapefile).
    Synth(synth::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Analyze(args)) => analyze::run(args),
        Some(Command::Synth(args)) => synth::run(args),
        None => anyhow::bail!("the server is not built yet"),
    }
}
