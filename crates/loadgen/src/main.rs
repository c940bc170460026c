//! `prefork-load`: the load / chaos run and the offline history check. See scripts/load/README.md.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::sync::Arc;

use anyhow::{Context, bail};
use prefork_loadgen::{
    ChaosConfig, Fixtures, Fleet, LaunchSpec, LoadConfig, Mode, RunConfig, check, render, run,
};

const USAGE: &str = "\
usage:
  prefork-load [run] (--url http://127.0.0.1:PORT [--url ...] | --launch 'COMMAND' [--launch ...])
               [--users N=60] [--think-ms MS=1000] [--reclicks N=6]
               [--duration-limit S=900] [--repeat-for-s S=0] [--ramp-up-s S=10]
               [--data DIR=tests/fixtures] [--record FILE.jsonl]
               [--instance DIR] [--bucket http://127.0.0.1:PORT/BUCKET/PREFIX]
               [--p99-limit-ms MS=500 | --no-p99-limit]
               [--launch-logs DIR] [--launch-cwd DIR] [--health-path /ping] [--ready-timeout-s 60]
               [--chaos [--master-pid PID ...] [--chaos-seconds S=duration] [--kill-interval-ms 500]
                [--hup-after-s S=5 or chaos/3; <0 = none] [--seed N]
                [--instance-kill-every-s S=4 | 0 = none] [--instance-down-ms MS=1000]]
  prefork-load check --record FILE.jsonl [--instance DIR] [--bucket URL] [--chaos]

Instances (a load balancer's view):
  --url U        an instance started elsewhere; repeat for several instances serving one store.
                 Each request goes to one of them (a hash of user and attempt, so every session
                 crosses instances, repeatably); a refused connection (nothing sent) is
                 sent to the next instance, as a load balancer fails over (counted as failovers).
                 Only loopback addresses are accepted.
  --launch CMD   prefork-load starts the instance itself: CMD is a shell command line run as
                 `/bin/sh -c 'exec CMD'` in its own process group, with {port} replaced by a free
                 127.0.0.1 port outside the ephemeral range (kept across restarts, so the URL is
                 http://127.0.0.1:{port}) and {n} by the instance number (0, 1, ...). Ready = the
                 health check (GET --health-path) answers 200 and the master has children.
                 Every instance is stopped (TERM to its group, KILL after 15 s) when the run ends.
  --launch-logs DIR   each instance's stdout+stderr appended to DIR/instance-{n}.log.
  --launch-cwd DIR    the instances' working directory (default: this one; prefork reads
                      config/default.toml from it when no -c is given).

A failed non-idempotent step is clicked again up to --reclicks times (a person retrying); the
run fails for a user who gives up.

Store walk (after the run):
  --instance DIR the shared instance directory (local backend): every session folder checked.
  --bucket URL   the object backend's bucket on an S3 endpoint that does not verify signatures
                 (moto_server on loopback): every session's objects checked the same way.

Chaos:
  --chaos        SIGKILL a random worker every --kill-interval-ms and send one SIGHUP (to the
                 first --master-pid, or to launched instance 0). Workers are the children of the
                 --master-pid processes, or of the launched instances' current masters.
  With --launch, also SIGKILL a whole instance (its process group: master and all workers) every
  --instance-kill-every-s, leave it down --instance-down-ms, then start the same command line
  again on the same port; of several instances at most one is down at a time. After the run
  every instance is up again and every session is read back from every instance (final_status):
  each read must answer and all must agree with each other and with every acknowledged write.

Exit status: 0 = no violation, 1 = violations, 2 = the run could not happen.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match real_main(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("prefork-load: {e:#}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

struct Flags {
    values: Vec<(String, Option<String>)>,
}

impl Flags {
    fn parse(args: &[String], switches: &[&str]) -> anyhow::Result<Flags> {
        let mut values = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                bail!("unexpected argument {a:?}");
            };
            if let Some((k, v)) = name.split_once('=') {
                values.push((k.to_owned(), Some(v.to_owned())));
            } else if switches.contains(&name) {
                values.push((name.to_owned(), None));
            } else {
                let v = it
                    .next()
                    .with_context(|| format!("--{name} needs a value"))?;
                values.push((name.to_owned(), Some(v.clone())));
            }
        }
        Ok(Flags { values })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value of a repeatable flag, in order.
    fn all(&self, name: &str) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(k, _)| k == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }

    fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(k, _)| k == name)
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T> {
        match self.get(name) {
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("--{name}: {v:?} is not a number")),
            None => Ok(default),
        }
    }

    fn check_known(&self, known: &[&str]) -> anyhow::Result<()> {
        for (k, _) in &self.values {
            if !known.contains(&k.as_str()) {
                bail!("unknown flag --{k}");
            }
        }
        Ok(())
    }
}

fn real_main(args: &[String]) -> anyhow::Result<bool> {
    match args.first().map(String::as_str) {
        Some("check") => check_main(&args[1..]),
        Some("run") => run_main(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(true)
        }
        _ => run_main(args),
    }
}

fn check_main(args: &[String]) -> anyhow::Result<bool> {
    let flags = Flags::parse(args, &["chaos"])?;
    flags.check_known(&["record", "instance", "bucket", "chaos"])?;
    let record = PathBuf::from(flags.get("record").context("--record is required")?);
    let instance = flags.get("instance").map(PathBuf::from);
    let mode = if flags.has("chaos") {
        Mode::Chaos
    } else {
        Mode::Strict
    };
    let mut report = check::check(&record, instance.as_deref(), mode)?;
    if let Some(url) = flags.get("bucket") {
        check::check_bucket(&bucket(url)?, mode, &mut report)?;
    }
    println!(
        "checker: {} records, {} sessions, {} folders, {} files parsed, {} tolerated debris ({} loose temp files that only a next upload/clear removes), {} violations",
        report.records,
        report.sessions,
        report.folders,
        report.files_checked,
        report.debris.len(),
        report.unswept_temp,
        report.violations.len()
    );
    for d in &report.debris {
        println!("  debris: {d}");
    }
    for v in &report.violations {
        println!("  violation: {v}");
    }
    Ok(report.ok())
}

/// Only loopback: this tool must never be pointed at someone else's server.
fn loopback(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .context("--url must start with http://")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr = hostport
        .to_socket_addrs()
        .with_context(|| format!("--url {url}: cannot resolve {hostport}"))?
        .next()
        .with_context(|| format!("--url {url}: no address"))?;
    if !addr.ip().is_loopback() {
        bail!("--url {url}: only loopback addresses (127.0.0.1) are allowed");
    }
    Ok(addr)
}

/// `--bucket http://127.0.0.1:PORT/BUCKET/PREFIX` (loopback only, like `--url`).
fn bucket(url: &str) -> anyhow::Result<check::Bucket> {
    let endpoint = loopback(url)?;
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    check::Bucket::parse(endpoint, path).with_context(|| format!("--bucket {url}: no bucket name"))
}

fn run_main(args: &[String]) -> anyhow::Result<bool> {
    let flags = Flags::parse(args, &["chaos", "no-p99-limit"])?;
    flags.check_known(&[
        "url",
        "users",
        "think-ms",
        "duration-limit",
        "data",
        "record",
        "instance",
        "bucket",
        "p99-limit-ms",
        "no-p99-limit",
        "chaos",
        "master-pid",
        "chaos-seconds",
        "kill-interval-ms",
        "hup-after-s",
        "seed",
        "ramp-up-s",
        "repeat-for-s",
        "launch",
        "launch-logs",
        "launch-cwd",
        "health-path",
        "ready-timeout-s",
        "instance-kill-every-s",
        "instance-down-ms",
        "reclicks",
    ])?;
    let launch = flags.all("launch");
    if !launch.is_empty() && (flags.has("url") || flags.has("master-pid")) {
        bail!("--launch starts the instances itself: give no --url or --master-pid with it");
    }
    let fleet = if launch.is_empty() {
        None
    } else {
        let logs = flags.get("launch-logs").map(PathBuf::from);
        if let Some(dir) = &logs {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("--launch-logs {}", dir.display()))?;
        }
        let specs = launch
            .iter()
            .enumerate()
            .map(|(n, cmd)| {
                let mut spec = LaunchSpec::shell(cmd);
                spec.cwd = flags.get("launch-cwd").map(PathBuf::from);
                spec.log = logs.as_ref().map(|d| d.join(format!("instance-{n}.log")));
                spec
            })
            .collect();
        let ready = Duration::from_secs_f64(flags.num("ready-timeout-s", 60.0)?);
        let health = flags.get("health-path").unwrap_or("/ping");
        Some(Arc::new(Fleet::launch(specs, health, ready)?))
    };
    // Several --url: instances serving one store; each request goes to one of them (see scenario).
    let targets = match &fleet {
        Some(f) => f.addrs(),
        None => flags
            .all("url")
            .into_iter()
            .map(loopback)
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    let addr = *targets.first().context("--url or --launch is required")?;
    let users: u32 = flags.num("users", 60)?;
    if users == 0 {
        bail!("--users must be at least 1");
    }
    let data = PathBuf::from(flags.get("data").unwrap_or("tests/fixtures"));
    let fixtures = Fixtures::load(&data)?;
    let mut load = LoadConfig::new(addr, users, fixtures);
    load.targets = targets;
    load.think = Duration::from_millis(flags.num("think-ms", 1000)?);
    load.duration_limit = Duration::from_secs_f64(flags.num("duration-limit", 900.0)?);
    load.ramp_up = Duration::from_secs_f64(flags.num("ramp-up-s", 10.0)?);
    load.repeat_for = Duration::from_secs_f64(flags.num("repeat-for-s", 0.0)?);
    load.record = flags.get("record").map(PathBuf::from);
    load.reclicks = flags.num("reclicks", load.reclicks)?;
    let chaos = if flags.has("chaos") {
        let masters = flags
            .all("master-pid")
            .into_iter()
            .map(|p| p.parse::<i32>().context("--master-pid"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if masters.is_empty() && fleet.is_none() {
            bail!("--chaos needs --master-pid (or --launch)");
        }
        let limit =
            Duration::from_secs_f64(flags.num("chaos-seconds", load.duration_limit.as_secs_f64())?);
        // Early by default: the load may end long before the chaos limit.
        let default_hup = if flags.has("chaos-seconds") {
            limit.as_secs_f64() / 3.0
        } else {
            5.0
        };
        let hup = flags.num("hup-after-s", default_hup)?;
        let every: f64 = flags.num("instance-kill-every-s", 4.0)?;
        if fleet.is_none() && flags.has("instance-kill-every-s") && every > 0.0 {
            bail!("--instance-kill-every-s needs --launch (the tool must be able to restart them)");
        }
        let mut c = ChaosConfig::workers(
            &masters,
            Duration::from_millis(flags.num("kill-interval-ms", 500)?),
            limit,
            flags.num("seed", 1)?,
        );
        c.hup_after = (hup >= 0.0).then(|| Duration::from_secs_f64(hup));
        c.instance_every = (fleet.is_some() && every > 0.0).then(|| Duration::from_secs_f64(every));
        c.instance_down = Duration::from_millis(flags.num("instance-down-ms", 1000)?);
        c.fleet = fleet.clone();
        Some(c)
    } else {
        None
    };
    // Latency is a target of the plain load run; under chaos only correctness is judged.
    let p99_limit = if flags.has("no-p99-limit") || (chaos.is_some() && !flags.has("p99-limit-ms"))
    {
        None
    } else {
        Some(Duration::from_millis(flags.num("p99-limit-ms", 500)?))
    };
    let config = RunConfig {
        load,
        chaos,
        instance: flags.get("instance").map(PathBuf::from),
        bucket: flags.get("bucket").map(bucket).transpose()?,
        p99_limit,
    };
    let report = run(&config);
    // The config holds the last reference but one: stop the instances before printing.
    drop(config);
    if let Some(f) = fleet {
        f.stop_all(Duration::from_secs(15));
    }
    let report = report?;
    print!("{}", render(&report));
    Ok(report.ok())
}
