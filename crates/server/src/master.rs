//! The master: binds, forks, supervises. Single-threaded and runtime-free on purpose — `fork` is
//! only sound while one thread exists — so it is a blocking loop over a signalfd with a 1 s tick
//! (100 ms while workers are booting or being replaced), `waitpid(WNOHANG)`, and plain writes
//! to the log.
//!
//! Each iteration: handle queued intents in arrival order, reap, kill workers whose heartbeat is
//! stale (SIGABRT, then SIGKILL on the next pass) or whose boot takes too long, then bring the
//! worker count back to the target. Workers carry a generation: a reload bumps it, and an old
//! worker is told to stop only once a new one reports ready, so capacity never drops below the
//! target during a reload.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::bind::{self, Listener};
use crate::heartbeat::{self, Heartbeat, WorkerState};
use crate::logging::Logger;
use crate::pidfile::{self, Pidfile};
use crate::signals::{Intent, SignalSource};
use crate::worker::{self, WorkerContext};
use crate::{EXIT_WORKER_BOOT_ERROR, Error, HandlerFactory, Reloader, Settings};

/// Consecutive boot failures (no worker became ready in between) that stop the master.
const BOOT_FAILURE_LIMIT: u32 = 3;
/// How long a quick stop waits for workers before SIGKILL.
const QUICK_STOP_LIMIT: Duration = Duration::from_secs(2);
/// Extra time a draining worker gets beyond the graceful timeout before the master kills it.
const DRAIN_SLACK: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_secs(1);
const FAST_TICK: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillReason {
    Timeout,
    BootTimeout,
    DrainOverdue,
}

#[derive(Debug)]
struct WorkerSlot {
    pid: Pid,
    /// Spawn order: the oldest is retired first (TTOU, count above target).
    age: u64,
    generation: u64,
    heartbeat: Heartbeat,
    spawned_at: Instant,
    ready: bool,
    term_sent_at: Option<Instant>,
    aborted: bool,
    killed_for: Option<KillReason>,
}

pub(crate) struct Master {
    settings: Settings,
    factory: Arc<HandlerFactory>,
    reload: Reloader,
    log: Logger,
    listeners: Vec<Listener>,
    signals: Option<SignalSource>,
    pidfile: Option<Pidfile>,
    heartbeat_dir: PathBuf,
    workers: Vec<WorkerSlot>,
    target: usize,
    generation: u64,
    next_age: u64,
    boot_failures: u32,
    stopping: bool,
    pid: Pid,
}

enum Exit {
    Code(i32),
    Signal(Signal),
}

impl Master {
    pub(crate) fn start(
        settings: Settings,
        factory: HandlerFactory,
        reload: Reloader,
    ) -> Result<Master, Error> {
        let log = Logger::open(
            &settings.error_log,
            settings.access_log.as_ref(),
            settings.log_level,
        )?;
        // Before binding, so a TERM during startup is queued rather than fatal mid-bind.
        let signals = SignalSource::install()?;
        if let Some(path) = &settings.pidfile {
            pidfile::check(path)?;
        }
        let heartbeat_dir = settings
            .heartbeat_dir
            .clone()
            .unwrap_or_else(heartbeat::default_dir);
        // Fail the start, not every later spawn, when the heartbeat directory is unusable.
        drop(Heartbeat::create(&heartbeat_dir)?);
        let pid = Pid::this();
        log.info(format!("Starting prefork {}", env!("CARGO_PKG_VERSION")));
        let listeners = bind::bind_all(&settings.binds, settings.backlog, &log)?;
        let pidfile = settings
            .pidfile
            .as_deref()
            .map(Pidfile::create)
            .transpose()?;
        for l in &listeners {
            log.info(format!("Listening at: {} ({pid})", l.url()));
        }
        log.info("Using worker: tokio (current-thread, hyper http/1.1)");
        Ok(Master {
            target: settings.workers.max(1),
            settings,
            factory: Arc::new(factory),
            reload,
            log,
            listeners,
            signals: Some(signals),
            pidfile,
            heartbeat_dir,
            workers: Vec::new(),
            generation: 0,
            next_age: 0,
            boot_failures: 0,
            stopping: false,
            pid,
        })
    }

    pub(crate) fn run(mut self) -> Result<u8, Error> {
        self.manage_workers();
        loop {
            let tick = if self.needs_fast_tick() {
                FAST_TICK
            } else {
                TICK
            };
            for (intent, name) in self.wait_signals(tick) {
                if intent == Intent::ChildExited {
                    self.log.debug("Handling signal: chld");
                } else {
                    self.log.info(format!("Handling signal: {name}"));
                }
                match intent {
                    Intent::GracefulStop => return Ok(self.halt(true, None, 0)),
                    Intent::QuickStop => return Ok(self.halt(false, None, 0)),
                    Intent::Reload => self.reload(),
                    Intent::IncWorkers => self.target += 1,
                    Intent::DecWorkers => {
                        if self.target > 1 {
                            self.target -= 1;
                        }
                    }
                    Intent::ReopenLogs => self.reopen_logs(),
                    Intent::ChildExited => {}
                    Intent::Upgrade => self
                        .log
                        .warning("USR2 (binary upgrade) is not supported yet; ignored."),
                    Intent::Winch => self.log.debug("SIGWINCH ignored. Not daemonized"),
                }
            }
            if self.reap() {
                return Ok(self.halt(true, Some("Worker failed to boot."), EXIT_WORKER_BOOT_ERROR));
            }
            self.murder_workers();
            self.manage_workers();
        }
    }

    fn wait_signals(&self, tick: Duration) -> Vec<(Intent, &'static str)> {
        match &self.signals {
            Some(s) => s.wait(tick),
            None => Vec::new(),
        }
    }

    fn needs_fast_tick(&self) -> bool {
        self.workers
            .iter()
            .any(|w| !w.ready || w.generation != self.generation || w.term_sent_at.is_some())
    }

    fn spawn_worker(&mut self) -> Result<(), Error> {
        let heartbeat = Heartbeat::create(&self.heartbeat_dir)?;
        self.next_age += 1;
        let max_requests = if self.settings.max_requests == 0 {
            0
        } else {
            let jitter = self.settings.max_requests_jitter;
            let r = RandomState::new().hash_one(self.next_age);
            self.settings.max_requests + r % jitter.saturating_add(1)
        };
        // SAFETY: the master is single-threaded (no runtime, no logging thread, no other thread
        // created anywhere in this crate), so the child is a complete copy with no lock held by a
        // vanished thread; the child never returns into the master loop: it runs the worker and
        // calls process::exit.
        match unsafe { fork() }.map_err(Error::Fork)? {
            ForkResult::Parent { child } => {
                self.workers.push(WorkerSlot {
                    pid: child,
                    age: self.next_age,
                    generation: self.generation,
                    heartbeat,
                    spawned_at: Instant::now(),
                    ready: false,
                    term_sent_at: None,
                    aborted: false,
                    killed_for: None,
                });
                Ok(())
            }
            ForkResult::Child => {
                let code = self.become_worker(heartbeat, max_requests);
                std::process::exit(code)
            }
        }
    }

    /// Runs in the child: drop everything that belongs to the master, then serve.
    fn become_worker(&mut self, heartbeat: Heartbeat, max_requests: u64) -> i32 {
        if let Some(signals) = self.signals.take() {
            signals.release_in_child();
        }
        // Closes the siblings' heartbeat descriptors.
        self.workers.clear();
        self.pidfile = None;
        let listeners = std::mem::take(&mut self.listeners);
        worker::run(WorkerContext {
            listeners,
            heartbeat,
            master_pid: self.pid,
            log: self.log.clone(),
            factory: Arc::clone(&self.factory),
            timeout: self.settings.timeout,
            graceful_timeout: self.settings.graceful_timeout,
            keep_alive: self.settings.keep_alive,
            max_requests,
        })
    }

    fn signal_worker(&self, pid: Pid, sig: Signal) {
        // ESRCH: already gone; the reaper will account for it.
        let _ = kill(pid, sig);
    }

    /// Returns true when boot failures reached the limit and the master must stop.
    fn reap(&mut self) -> bool {
        let mut must_halt = false;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    must_halt |= self.on_exit(pid, Exit::Code(code));
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    must_halt |= self.on_exit(pid, Exit::Signal(sig));
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        must_halt
    }

    fn on_exit(&mut self, pid: Pid, exit: Exit) -> bool {
        let Some(idx) = self.workers.iter().position(|w| w.pid == pid) else {
            self.log.debug(format!("Reaped unknown child (pid:{pid})"));
            return false;
        };
        let w = self.workers.remove(idx);
        let booting = !w.ready && w.heartbeat.state() == WorkerState::Booting;
        let ours = w.term_sent_at.is_some() || w.killed_for.is_some();
        match exit {
            Exit::Code(0) => self
                .log
                .debug(format!("Worker (pid:{pid}) exited with code 0.")),
            Exit::Code(c) => self
                .log
                .error(format!("Worker (pid:{pid}) exited with code {c}.")),
            Exit::Signal(sig) => match (sig, w.killed_for) {
                (_, Some(KillReason::Timeout)) => self.log.error(format!(
                    "Worker (pid:{pid}) was killed after a heartbeat timeout ({sig})."
                )),
                (_, Some(KillReason::BootTimeout)) => self.log.error(format!(
                    "Worker (pid:{pid}) was killed after its boot timeout."
                )),
                (_, Some(KillReason::DrainOverdue)) => self.log.error(format!(
                    "Worker (pid:{pid}) was killed: it did not drain within the graceful timeout."
                )),
                (Signal::SIGKILL, None) => self.log.error(format!(
                    "Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory? \
                     (not sent by the master)"
                )),
                (Signal::SIGTERM, None) => {
                    self.log
                        .info(format!("Worker (pid:{pid}) was sent SIGTERM!"));
                }
                (sig, None) => self
                    .log
                    .warning(format!("Worker (pid:{pid}) was sent {sig}!")),
            },
        }
        if self.stopping {
            return false;
        }
        let boot_failure = matches!(exit, Exit::Code(c) if c == i32::from(EXIT_WORKER_BOOT_ERROR))
            || w.killed_for == Some(KillReason::BootTimeout)
            || (booting && !ours && !matches!(exit, Exit::Code(0)));
        if boot_failure {
            self.boot_failures += 1;
            self.log.error(format!(
                "Worker (pid:{pid}) failed to boot ({} in a row).",
                self.boot_failures
            ));
            return self.boot_failures >= BOOT_FAILURE_LIMIT;
        }
        false
    }

    fn refresh_readiness(&mut self) {
        for w in &mut self.workers {
            if !w.ready && w.heartbeat.state() != WorkerState::Booting {
                w.ready = true;
                self.boot_failures = 0;
                self.log.debug(format!(
                    "Worker (pid:{}) ready after {} ms",
                    w.pid,
                    w.spawned_at.elapsed().as_millis()
                ));
            }
        }
    }

    fn murder_workers(&mut self) {
        self.refresh_readiness();
        let now = Instant::now();
        let (timeout, boot_timeout, graceful) = (
            self.settings.timeout,
            self.settings.boot_timeout,
            self.settings.graceful_timeout,
        );
        let mut to_signal = Vec::new();
        for w in &mut self.workers {
            if !w.ready {
                if !boot_timeout.is_zero()
                    && w.killed_for.is_none()
                    && now.duration_since(w.spawned_at) > boot_timeout
                {
                    self.log
                        .critical(format!("WORKER BOOT TIMEOUT (pid:{})", w.pid));
                    w.killed_for = Some(KillReason::BootTimeout);
                    to_signal.push((w.pid, Signal::SIGKILL));
                }
                continue;
            }
            if let Some(t) = w.term_sent_at
                && w.killed_for.is_none()
                && now.duration_since(t) > graceful + DRAIN_SLACK
            {
                w.killed_for = Some(KillReason::DrainOverdue);
                to_signal.push((w.pid, Signal::SIGKILL));
                continue;
            }
            if timeout.is_zero() {
                continue;
            }
            if let Some(age) = w.heartbeat.age()
                && age > timeout
            {
                if w.aborted {
                    to_signal.push((w.pid, Signal::SIGKILL));
                } else {
                    self.log.critical(format!("WORKER TIMEOUT (pid:{})", w.pid));
                    w.aborted = true;
                    w.killed_for = Some(KillReason::Timeout);
                    to_signal.push((w.pid, Signal::SIGABRT));
                }
            }
        }
        for (pid, sig) in to_signal {
            self.signal_worker(pid, sig);
        }
    }

    fn terminate(&mut self, idx: usize) {
        let pid = self.workers[idx].pid;
        self.workers[idx].term_sent_at = Some(Instant::now());
        self.signal_worker(pid, Signal::SIGTERM);
    }

    fn manage_workers(&mut self) {
        if self.stopping {
            return;
        }
        self.refresh_readiness();
        let active =
            |w: &WorkerSlot, gen_now: u64| w.generation == gen_now && w.term_sent_at.is_none();
        let current = self
            .workers
            .iter()
            .filter(|w| active(w, self.generation))
            .count();
        for _ in current..self.target {
            if let Err(e) = self.spawn_worker() {
                self.log.error(format!("Could not spawn a worker: {e}"));
                break;
            }
        }
        if current > self.target {
            let mut idx: Vec<usize> = (0..self.workers.len())
                .filter(|&i| active(&self.workers[i], self.generation))
                .collect();
            idx.sort_by_key(|&i| self.workers[i].age);
            for &i in idx.iter().take(current - self.target) {
                self.terminate(i);
            }
        }
        // Rolling replacement after a reload: retire an old worker only when a new one is ready.
        let ready_new = self
            .workers
            .iter()
            .filter(|w| active(w, self.generation) && w.ready)
            .count();
        let mut old: Vec<usize> = (0..self.workers.len())
            .filter(|&i| {
                let w = &self.workers[i];
                w.generation != self.generation && w.term_sent_at.is_none()
            })
            .collect();
        old.sort_by_key(|&i| self.workers[i].age);
        let surplus = (ready_new + old.len()).saturating_sub(self.target);
        for &i in old.iter().take(surplus) {
            self.terminate(i);
        }
    }

    fn reopen_logs(&mut self) {
        if let Err(e) = self.log.reopen() {
            self.log.error(format!("Could not reopen the logs: {e}"));
        }
        for w in &self.workers {
            self.signal_worker(w.pid, Signal::SIGUSR1);
        }
    }

    /// HUP: validate everything new before touching anything, so a bad config keeps the old one
    /// (gunicorn exits instead).
    fn reload(&mut self) {
        self.log.info("Hang up: Master");
        let (settings, factory) = match (self.reload)() {
            Ok(x) => x,
            Err(e) => {
                self.log.error(format!(
                    "Reload failed, keeping the current configuration: {e}"
                ));
                return;
            }
        };
        if let Err(e) = self.log.reconfigure(
            &settings.error_log,
            settings.access_log.as_ref(),
            settings.log_level,
        ) {
            self.log.error(format!(
                "Reload failed, keeping the current configuration: {e}"
            ));
            return;
        }
        if settings.binds != self.settings.binds || settings.backlog != self.settings.backlog {
            match bind::bind_all(&settings.binds, settings.backlog, &self.log) {
                Ok(new) => {
                    let old = std::mem::replace(&mut self.listeners, new);
                    for l in old {
                        let keep_path = matches!(&l, Listener::Unix(_, Some(p))
                            if settings.binds.contains(&crate::BindAddr::Unix(p.clone())));
                        if !keep_path {
                            l.close_and_unlink();
                        }
                    }
                    for l in &self.listeners {
                        self.log
                            .info(format!("Listening at: {} ({})", l.url(), self.pid));
                    }
                }
                Err(e) => {
                    self.log.error(format!(
                        "Reload failed, keeping the current configuration: {e}"
                    ));
                    return;
                }
            }
        }
        if settings.pidfile != self.settings.pidfile {
            if let Some(old) = self.pidfile.take() {
                old.remove();
            }
            match settings.pidfile.as_deref().map(Pidfile::create).transpose() {
                Ok(p) => self.pidfile = p,
                Err(e) => self
                    .log
                    .error(format!("Could not write the new pid file: {e}")),
            }
        }
        self.heartbeat_dir = settings
            .heartbeat_dir
            .clone()
            .unwrap_or_else(heartbeat::default_dir);
        self.target = settings.workers.max(1);
        self.settings = settings;
        self.factory = Arc::new(factory);
        self.generation += 1;
    }

    /// Stops every worker (TERM when graceful, INT otherwise), bounded by the graceful timeout;
    /// an INT/QUIT during a graceful stop escalates. Returns the exit status.
    fn halt(mut self, graceful: bool, reason: Option<&str>, code: u8) -> u8 {
        self.stopping = true;
        // Closing our copies first: once the workers close theirs, new clients are refused.
        for l in std::mem::take(&mut self.listeners) {
            l.close_and_unlink();
        }
        let mut graceful = graceful;
        // Workers treat INT like QUIT; INT's default action (for a worker still booting, before
        // its handlers exist) terminates without a core dump.
        let sig = if graceful {
            Signal::SIGTERM
        } else {
            Signal::SIGINT
        };
        for w in &self.workers {
            self.signal_worker(w.pid, sig);
        }
        let limit = if graceful {
            self.settings.graceful_timeout
        } else {
            self.settings.graceful_timeout.min(QUICK_STOP_LIMIT)
        };
        let mut deadline = Instant::now() + limit;
        while !self.workers.is_empty() && Instant::now() < deadline {
            for (intent, name) in self.wait_signals(FAST_TICK) {
                if intent == Intent::QuickStop && graceful {
                    self.log.info(format!("Handling signal: {name}"));
                    self.log.info("Quick shutdown requested");
                    graceful = false;
                    for w in &self.workers {
                        self.signal_worker(w.pid, Signal::SIGINT);
                    }
                    deadline = deadline.min(Instant::now() + QUICK_STOP_LIMIT);
                }
            }
            self.reap();
        }
        for w in &self.workers {
            self.signal_worker(w.pid, Signal::SIGKILL);
        }
        for w in std::mem::take(&mut self.workers) {
            let _ = waitpid(w.pid, None);
        }
        self.log.info("Shutting down: Master");
        if let Some(reason) = reason {
            self.log.error(format!("Reason: {reason}"));
        }
        if let Some(p) = self.pidfile.take() {
            p.remove();
        }
        code
    }
}
