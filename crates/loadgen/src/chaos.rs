//! The chaos monkey: SIGKILL a random worker of the master every interval, and send the master
//! one SIGHUP part-way through. Workers are the master's live children, read from
//! `/proc/<master>/task/<master>/children`; nothing else is ever signalled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;

/// What to do, and for how long at most.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// The prefork master whose workers are SIGKILLed (and which gets the SIGHUP).
    pub master_pid: i32,
    /// Further instances' masters (`--master-pid` repeated): their workers are victims too.
    pub other_masters: Vec<i32>,
    /// Pause between two kills.
    pub interval: Duration,
    /// Kills stop after this long (or when the load ends, whichever is first).
    pub limit: Duration,
    /// When to send the one SIGHUP, counted from the start; `None` = never.
    pub hup_after: Option<Duration>,
    /// Seed of the choice of victims, so a run can be repeated.
    pub seed: u64,
}

/// What the monkey did.
#[derive(Debug, Clone, Default)]
pub struct ChaosReport {
    /// Workers SIGKILLed.
    pub kills: u64,
    /// Rounds that found no worker to kill (all were being respawned).
    pub idle_rounds: u64,
    /// Whether the one SIGHUP (configuration reload) was sent.
    pub hup_sent: bool,
    /// The distinct pids killed.
    pub victims: Vec<i32>,
}

/// A running monkey; [`Monkey::stop`] ends it and reports.
pub struct Monkey {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<ChaosReport, Error>>,
}

/// Live children of `pid` (the kernel's lists, zombies removed). The kernel keeps one list per
/// thread (`/proc/<pid>/task/<tid>/children`): the master forks from its main thread, but all of
/// them are read so a fork from another thread is not missed.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<i32> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|p| !is_zombie(*p))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|t| {
            let after = t.get(t.rfind(')')? + 2..)?;
            after.chars().next()
        })
        .is_none_or(|state| state == 'Z' || state == 'X')
}

/// xorshift64*: enough to pick victims, and repeatable from a seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

impl Monkey {
    /// Starts the killing thread. Fails with [`Error::NoWorkers`] when `master_pid` has no live
    /// child (a wrong pid would turn the chaos run into a plain load run that reports success).
    pub fn start(config: ChaosConfig) -> Result<Monkey, Error> {
        // Refuse to "kill workers" of a process that has none: a wrong pid would make the chaos
        // run a plain load run that reports success.
        if children_of(config.master_pid).is_empty() {
            return Err(Error::NoWorkers(config.master_pid));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || run(&config, &flag));
        Ok(Monkey { stop, handle })
    }

    /// Stops the killing (the thread checks every 20 ms), waits for the thread and returns what
    /// it did; a SIGHUP that could not be sent is an [`Error::Signal`].
    pub fn stop(self) -> Result<ChaosReport, Error> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .join()
            .map_err(|_| Error::Poisoned("the chaos thread"))?
    }
}

fn run(config: &ChaosConfig, stop: &AtomicBool) -> Result<ChaosReport, Error> {
    let mut report = ChaosReport::default();
    let mut rng = Rng::new(config.seed);
    let start = Instant::now();
    let master = Pid::from_raw(config.master_pid);
    while !stop.load(Ordering::SeqCst) && start.elapsed() < config.limit {
        if !report.hup_sent && config.hup_after.is_some_and(|at| start.elapsed() >= at) {
            kill(master, Signal::SIGHUP).map_err(|e| Error::Signal {
                pid: config.master_pid,
                message: e.to_string(),
            })?;
            report.hup_sent = true;
        }
        let mut workers = children_of(config.master_pid);
        for other in &config.other_masters {
            workers.extend(children_of(*other));
        }
        if workers.is_empty() {
            report.idle_rounds += 1;
        } else {
            let victim = workers[rng.below(workers.len())];
            // The victim may have exited on its own since the list was read; that is no kill.
            if kill(Pid::from_raw(victim), Signal::SIGKILL).is_ok() {
                report.kills += 1;
                if !report.victims.contains(&victim) {
                    report.victims.push(victim);
                }
            }
        }
        // Sleep in small slices so `stop` is prompt.
        let until = Instant::now() + config.interval;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20).min(config.interval));
        }
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_kills_real_children() {
        let me = i32::try_from(std::process::id()).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        assert!(children_of(me).contains(&pid));
        let monkey = Monkey::start(ChaosConfig {
            master_pid: me,
            other_masters: Vec::new(),
            interval: Duration::from_millis(50),
            limit: Duration::from_secs(5),
            hup_after: None,
            seed: 7,
        })
        .unwrap();
        let status = child.wait().unwrap();
        let report = monkey.stop().unwrap();
        assert!(!status.success());
        assert!(
            report.kills >= 1 && report.victims.contains(&pid),
            "{report:?}"
        );
        assert!(!report.hup_sent);
    }

    #[test]
    fn refuses_a_master_without_workers() {
        let r = Monkey::start(ChaosConfig {
            master_pid: i32::MAX - 1,
            other_masters: Vec::new(),
            interval: Duration::from_millis(50),
            limit: Duration::from_secs(1),
            hup_after: None,
            seed: 1,
        });
        assert!(matches!(r, Err(Error::NoWorkers(_))));
    }

    #[test]
    fn rng_is_repeatable_and_bounded() {
        let (mut a, mut b) = (Rng::new(9), Rng::new(9));
        for _ in 0..100 {
            let x = a.below(6);
            assert_eq!(x, b.below(6));
            assert!(x < 6);
        }
    }
}
