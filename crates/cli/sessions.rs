//! `prefork sessions gc`: remove idle sessions now, with the limits of the configuration (the
//! same sweep the workers run on their own every `sessions.sweep_interval_minutes`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use crate::args::ServeArgs;
use crate::config;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Remove sessions idle longer than sessions.ttl_days (empty ones: sessions.empty_ttl_hours)
    Gc(GcArgs),
}

#[derive(clap::Args, Debug)]
struct GcArgs {
    /// TOML config file (default: config/default.toml when present)
    #[arg(
        short = 'c',
        long = "config",
        env = "PREFORK_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    /// Runtime state directory [config: instance_dir, "instance"]
    #[arg(long, env = "PREFORK_INSTANCE_DIR", value_name = "DIR")]
    instance_dir: Option<PathBuf>,
    /// Session store: s3://BUCKET/PREFIX [config: store, local disk]
    #[arg(long, env = "PREFORK_STORE", value_name = "URL")]
    store: Option<String>,
    /// Say what would be removed, remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Seconds to wait for a sweep another process is running (default 60)
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    wait: u64,
    /// Print the report as one JSON object
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Gc(gc) => run_gc(gc),
    }
}

fn run_gc(args: GcArgs) -> anyhow::Result<()> {
    let serve = ServeArgs {
        config: args.config.clone(),
        instance_dir: args.instance_dir.clone(),
        store: args.store.clone(),
        ..ServeArgs::default()
    };
    let config = config::load(&serve)?;
    let policy = config.sessions.limits().policy();
    let uploads = match &config.store {
        Some(url) => url.clone(),
        None => {
            let uploads = config.instance_dir.join("uploads");
            if !uploads.is_dir() {
                bail!(
                    "no session store at {} (instance_dir = {:?})",
                    uploads.display(),
                    config.instance_dir
                );
            }
            uploads.display().to_string()
        }
    };
    let store = config.open_store()?;
    let Some(report) = store.sweep(&policy, args.dry_run, Duration::from_secs(args.wait))? else {
        bail!(
            "another process has been sweeping {} for more than {} s; try again later",
            uploads,
            args.wait
        );
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{verb} {} idle and {} empty sessions of {} ({:.1} MiB){}; {} busy, left alone; {} ms",
        report.removed_idle,
        report.removed_empty,
        report.sessions,
        report.bytes_freed as f64 / (1024.0 * 1024.0),
        if report.debris > 0 {
            format!(", plus {} leftovers of an interrupted sweep", report.debris)
        } else {
            String::new()
        },
        report.busy,
        report.elapsed_ms,
    );
    Ok(())
}
