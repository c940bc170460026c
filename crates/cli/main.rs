//! The `prefork` binary. `main` only dispatches: argument parsing and each command live in their
//! own module. Without a subcommand it runs the server.

mod analyze;
mod args;
mod config;
mod serve;
mod sessions;
mod synth;
mod tpr;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "prefork",
    version,
    about = "A prefork HTTP server and the malaria risk prioritisation service",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    serve: args::ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the risk analysis (and optionally ITN planning) offline and write the result files.
    Analyze(analyze::Args),
    /// Write a deterministic synthetic ward dataset (CSV + zipped shapefile).
    Synth(synth::Args),
    /// Session store maintenance (`prefork sessions gc`: remove idle sessions now).
    Sessions(sessions::Args),
    /// Ward test positivity rate, trends and reprioritisation from a health-facility export.
    Tpr(tpr::Args),
}

fn main() -> ExitCode {
    let cli: Cli = args::parse_or_exit();
    match cli.command {
        Some(Command::Analyze(args)) => args::exit_code(analyze::run(args)),
        Some(Command::Synth(args)) => args::exit_code(synth::run(args)),
        Some(Command::Sessions(args)) => args::exit_code(sessions::run(args)),
        Some(Command::Tpr(args)) => args::exit_code(tpr::run(args)),
        None => serve::run(cli.serve),
    }
}
