//! The chaos monkey: SIGKILL a random worker every interval, send one master one SIGHUP part-way
//! through, and, for instances the tool launched itself ([`Fleet`]), SIGKILL a whole instance (its
//! process group: master and workers) every so often and start it again after a pause. Workers
//! are the masters' live children, read from `/proc/<master>/task/*/children`; nothing else is
//! ever signalled. While an instance is down its port refuses connections, and the users' client
//! fails over to another instance as a load balancer would (see `scenario`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;
use crate::fleet::Fleet;

/// What to do, and for how long at most.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// The master whose workers are killed and who gets the HUP (instances started elsewhere).
    /// Unused with a `fleet`: its current masters are read every round.
    pub master_pid: i32,
    /// Further instances' masters (`--master-pid` repeated): their workers are victims too.
    pub other_masters: Vec<i32>,
    /// Pause between two worker kills.
    pub interval: Duration,
    /// Kills stop after this long (or when the load ends, whichever is first).
    pub limit: Duration,
    /// When to send the one SIGHUP, counted from the start; `None` = never.
    pub hup_after: Option<Duration>,
    /// Seed of the choice of victims, so a run can be repeated.
    pub seed: u64,
    /// Instances launched by this tool: whole-instance kills and restarts become possible.
    pub fleet: Option<Arc<Fleet>>,
    /// With a fleet: kill a whole instance this often (the first one after one period); `None` =
    /// worker kills only. At most one instance of several is down at a time, so one always serves.
    pub instance_every: Option<Duration>,
    /// How long a killed instance stays down before it is started again (a host rebooting).
    pub instance_down: Duration,
}

impl ChaosConfig {
    /// Worker kills only, on instances started elsewhere.
    pub fn workers(masters: &[i32], interval: Duration, limit: Duration, seed: u64) -> ChaosConfig {
        ChaosConfig {
            master_pid: masters.first().copied().unwrap_or(0),
            other_masters: masters.iter().skip(1).copied().collect(),
            interval,
            limit,
            hup_after: None,
            seed,
            fleet: None,
            instance_every: None,
            instance_down: Duration::from_secs(1),
        }
    }

    fn masters(&self) -> Vec<i32> {
        match &self.fleet {
            Some(f) => (0..f.len()).filter_map(|ix| f.master(ix)).collect(),
            None => std::iter::once(self.master_pid)
                .chain(self.other_masters.iter().copied())
                .collect(),
        }
    }
}

/// What the monkey did.
#[derive(Debug, Clone, Default)]
pub struct ChaosReport {
    /// Workers SIGKILLed one by one.
    pub kills: u64,
    /// Rounds that found no worker to kill (all were being respawned).
    pub idle_rounds: u64,
    /// Whether the one SIGHUP (configuration reload) was sent.
    pub hup_sent: bool,
    /// The distinct worker pids killed.
    pub victims: Vec<i32>,
    /// Whole instances SIGKILLed (master and workers at once).
    pub instance_kills: u64,
    /// Of those, how many were started again and passed the health check.
    pub instance_restarts: u64,
    /// Per restart: ms from the spawn to the first passed health check.
    pub restart_ms: Vec<f64>,
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
        let masters = config.masters();
        if masters.is_empty() {
            return Err(Error::NoWorkers(config.master_pid));
        }
        if let Some(m) = masters.iter().find(|m| children_of(**m).is_empty()) {
            return Err(Error::NoWorkers(*m));
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

/// Per launched instance: where it is in its kill / restart cycle.
#[derive(Clone, Copy)]
enum Phase {
    Up,
    Down(Instant),
    Starting(Instant),
}

fn run(config: &ChaosConfig, stop: &AtomicBool) -> Result<ChaosReport, Error> {
    let mut report = ChaosReport::default();
    let mut rng = Rng::new(config.seed);
    let start = Instant::now();
    let fleet = config.fleet.as_deref();
    let mut phases = vec![Phase::Up; fleet.map_or(0, Fleet::len)];
    let mut next_worker_kill = start;
    let mut next_instance_kill = config.instance_every.map(|every| start + every);
    while !stop.load(Ordering::SeqCst) && start.elapsed() < config.limit {
        let now = Instant::now();
        if !report.hup_sent && config.hup_after.is_some_and(|at| start.elapsed() >= at) {
            // With a fleet, the first instance's master while it is up; a later round otherwise.
            let target = match fleet {
                Some(f) => matches!(phases.first(), Some(Phase::Up))
                    .then(|| f.master(0))
                    .flatten(),
                None => Some(config.master_pid),
            };
            if let Some(pid) = target {
                kill(Pid::from_raw(pid), Signal::SIGHUP).map_err(|e| Error::Signal {
                    pid,
                    message: e.to_string(),
                })?;
                report.hup_sent = true;
            }
        }
        if now >= next_worker_kill {
            next_worker_kill = now + config.interval;
            let mut workers = Vec::new();
            for m in config.masters() {
                workers.extend(children_of(m));
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
        }
        if let Some(f) = fleet {
            step_fleet(
                config,
                f,
                &mut phases,
                &mut next_instance_kill,
                &mut rng,
                &mut report,
            )?;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Leave every instance up: the checker reads every session from every instance afterwards.
    if let Some(f) = fleet {
        for (ix, phase) in phases.iter().enumerate() {
            let spawned = match *phase {
                Phase::Up => continue,
                Phase::Down(_) => {
                    f.start(ix)?;
                    Instant::now()
                }
                Phase::Starting(at) => at,
            };
            f.wait_ready(ix)?;
            report.instance_restarts += 1;
            report
                .restart_ms
                .push(spawned.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(report)
}

/// One round of the whole-instance cycle: restart what has been down long enough, note what
/// became ready, and kill an instance when it is time and every other one is up.
fn step_fleet(
    config: &ChaosConfig,
    fleet: &Fleet,
    phases: &mut [Phase],
    next_kill: &mut Option<Instant>,
    rng: &mut Rng,
    report: &mut ChaosReport,
) -> Result<(), Error> {
    let now = Instant::now();
    for (ix, phase) in phases.iter_mut().enumerate() {
        match *phase {
            Phase::Down(since) if now.duration_since(since) >= config.instance_down => {
                fleet.start(ix)?;
                *phase = Phase::Starting(Instant::now());
            }
            Phase::Starting(at) if fleet.ready(ix) => {
                report.instance_restarts += 1;
                report.restart_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                *phase = Phase::Up;
            }
            _ => {}
        }
    }
    let Some(at) = *next_kill else {
        return Ok(());
    };
    let up: Vec<usize> = (0..phases.len())
        .filter(|ix| matches!(phases[*ix], Phase::Up))
        .collect();
    // Several instances: one is down at most, so the load balancer always has somewhere to go.
    let may = up.len() == phases.len() || phases.len() == 1;
    if now >= at && may && !up.is_empty() {
        let ix = up[rng.below(up.len())];
        if fleet.kill(ix)?.is_some() {
            report.instance_kills += 1;
        }
        phases[ix] = Phase::Down(Instant::now());
        *next_kill = config.instance_every.map(|every| now + every);
    }
    Ok(())
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
        let monkey = Monkey::start(ChaosConfig::workers(
            &[me],
            Duration::from_millis(50),
            Duration::from_secs(5),
            7,
        ))
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
        let r = Monkey::start(ChaosConfig::workers(
            &[i32::MAX - 1],
            Duration::from_millis(50),
            Duration::from_secs(1),
            1,
        ));
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
