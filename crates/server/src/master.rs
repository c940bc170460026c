//! The master: binds, forks, supervises. Single-threaded and runtime-free on purpose — `fork` is
//! only sound while one thread exists — so it is a blocking loop over a signalfd with a 1 s tick
//! (100 ms while workers are booting or being replaced), `waitpid(WNOHANG)`, and plain writes
//! to the log.
//!
//! Each iteration: handle queued intents in arrival order, reap, kill workers whose heartbeat is
//! stale (SIGABRT, then SIGKILL on the next pass) or whose boot takes too long, then bring the
//! worker count back to the target. Workers carry a generation: a reload bumps it, and an old
//! worker is told to stop only once a new one reports ready, so capacity never drops below the
//! target during a reload. New workers of a reload are started one at a time, each only after
//! the previous one is ready, so memory never doubles either; a worker over
//! `max_worker_memory` is replaced the same way.
//!
//! USR2 starts the new binary as a child (listeners inherited through `PREFORK_FD`); the child
//! writes `PIDFILE.2` and runs its own workers on the same sockets. TERM to the old master hands
//! over (systemd `MAINPID=`, unix sockets left in place); the child notices its parent changed,
//! logs "Master has been promoted." and takes the pidfile name.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getppid};

use crate::bind::{self, Listener};
use crate::body::BodyLimits;
use crate::heartbeat::{self, Heartbeat, WorkerState};
use crate::limits::Limits;
use crate::logging::Logger;
use crate::metrics::{MasterMetrics, WorkerMetrics};
use crate::notify::{self, Notifier};
use crate::pidfile::{self, Pidfile};
use crate::signals::{Intent, SignalSource};
use crate::worker::{self, WorkerContext};
use crate::{
    ENV_UPGRADE_FDS, ENV_UPGRADE_PARENT, EXIT_WORKER_BOOT_ERROR, Error, HandlerFactory, Reloader,
    Settings,
};

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
    /// Marked for a rolling replacement (memory limit); retired once its successor is ready.
    retiring: bool,
    /// Why the master told it to stop (the restart reason in /metrics).
    stop_reason: Option<&'static str>,
    metrics_file: Option<PathBuf>,
}

/// `PIDFILE.2`: the name a USR2 child uses until it is promoted.
fn upgrade_pidfile(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".2");
    PathBuf::from(name)
}

/// Resident set size of a process in bytes (VmRSS of /proc/PID/status).
fn rss_bytes(pid: Pid) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub(crate) struct Master {
    settings: Settings,
    factory: Arc<HandlerFactory>,
    reload: Reloader,
    log: Logger,
    listeners: Vec<Listener>,
    signals: Option<SignalSource>,
    pidfile: Option<Pidfile>,
    /// `PIDFILE.2.ready`: an unpromoted USR2 child writes it once all its workers are ready, so
    /// scripts/upgrade.sh knows when to TERM the old master.
    ready_marker: Option<Pidfile>,
    heartbeat_dir: PathBuf,
    workers: Vec<WorkerSlot>,
    target: usize,
    generation: u64,
    next_age: u64,
    boot_failures: u32,
    stopping: bool,
    pid: Pid,
    notifier: Notifier,
    metrics: Option<MasterMetrics>,
    /// The USR2 child while it runs (a second USR2 is ignored then).
    reexec_child: Option<Pid>,
    /// Set while we are an unpromoted USR2 child: the old master's pid.
    upgrade_parent: Option<Pid>,
    /// Listeners came from the parent (socket activation or USR2): never rebind or unlink them.
    inherited: bool,
    /// READY=1 sent (initially, or after a reload): resent when a reload completes.
    announced_ready: bool,
    last_watchdog: Instant,
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
        let upgrade_parent = settings
            .upgrade_parent
            .map(Pid::from_raw)
            .filter(|p| *p == getppid());
        // An upgrade child runs next to the old master, which still owns the pidfile.
        let pidfile_path = settings.pidfile.as_deref().map(|p| {
            if upgrade_parent.is_some() {
                upgrade_pidfile(p)
            } else {
                p.to_path_buf()
            }
        });
        if let Some(path) = &pidfile_path {
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
        if settings.upgrade_parent.is_some() && upgrade_parent.is_none() {
            log.warning(
                "The master that started this upgrade is gone; running as the only master.",
            );
        }
        let inherited = !settings.inherited_fds.is_empty();
        let listeners = if inherited {
            let mut out = Vec::with_capacity(settings.inherited_fds.len());
            for fd in &settings.inherited_fds {
                out.push(bind::adopt_fd(*fd).map_err(|source| Error::Bind {
                    addr: format!("fd://{fd}"),
                    source,
                })?);
            }
            out
        } else {
            bind::bind_all(&settings.binds, settings.backlog, &log)?
        };
        let pidfile = pidfile_path.as_deref().map(Pidfile::create).transpose()?;
        let metrics = match &settings.metrics_dir {
            Some(dir) => Some(
                MasterMetrics::open(dir, pid.as_raw(), settings.upgrade_parent.is_none()).map_err(
                    |source| Error::MetricsDir {
                        dir: dir.clone(),
                        source,
                    },
                )?,
            ),
            None => None,
        };
        for l in &listeners {
            log.info(format!("Listening at: {} ({pid})", l.url()));
        }
        log.info("Using worker: tokio (current-thread, hyper http/1.1)");
        let notifier = Notifier::new(settings.notify_socket.clone());
        Ok(Master {
            target: settings.workers.max(1),
            settings,
            factory: Arc::new(factory),
            reload,
            log,
            listeners,
            signals: Some(signals),
            pidfile,
            ready_marker: None,
            heartbeat_dir,
            workers: Vec::new(),
            generation: 0,
            next_age: 0,
            boot_failures: 0,
            stopping: false,
            pid,
            notifier,
            metrics,
            reexec_child: None,
            upgrade_parent,
            inherited,
            announced_ready: false,
            last_watchdog: Instant::now(),
        })
    }

    fn notify(&self, msg: &str) {
        if let Err(e) = self.notifier.send(msg) {
            self.log.debug(format!("sd_notify: {e}"));
        }
    }

    fn tick(&self) -> Duration {
        let base = if self.needs_fast_tick() {
            FAST_TICK
        } else {
            TICK
        };
        match self.settings.watchdog {
            Some(w) if !w.is_zero() => base.min(w / 4).max(Duration::from_millis(10)),
            _ => base,
        }
    }

    /// Everything besides workers that a pass of the loop looks after: readiness and watchdog
    /// notifications, memory limits, promotion after an upgrade.
    fn housekeeping(&mut self) {
        if let Some(w) = self.settings.watchdog
            && !w.is_zero()
            && self.last_watchdog.elapsed() >= w / 2
        {
            self.last_watchdog = Instant::now();
            self.notify("WATCHDOG=1");
        }
        if let Some(parent) = self.upgrade_parent
            && getppid() != parent
        {
            self.promote();
        }
        self.check_memory();
        if !self.announced_ready && self.settled() {
            self.announced_ready = true;
            let status = format!(
                "STATUS=Serving with {} workers (master pid {})",
                self.target, self.pid
            );
            if self.upgrade_parent.is_none() {
                self.notify(&format!("READY=1\n{status}"));
            } else if self.ready_marker.is_none()
                && let Some(path) = &self.settings.pidfile
            {
                let mut marker = upgrade_pidfile(path).into_os_string();
                marker.push(".ready");
                match Pidfile::create(Path::new(&marker)) {
                    Ok(m) => self.ready_marker = Some(m),
                    Err(e) => self
                        .log
                        .error(format!("Could not write the ready marker: {e}")),
                }
            }
            self.log.info(format!(
                "All {} workers are ready (generation {})",
                self.target, self.generation
            ));
        }
    }

    /// The target number of current workers are ready and no old or retiring worker is left.
    fn settled(&self) -> bool {
        let ready = self
            .workers
            .iter()
            .filter(|w| {
                w.generation == self.generation
                    && w.ready
                    && w.term_sent_at.is_none()
                    && !w.retiring
            })
            .count();
        ready >= self.target
            && self
                .workers
                .iter()
                .all(|w| w.generation == self.generation || w.term_sent_at.is_some())
    }

    fn promote(&mut self) {
        self.upgrade_parent = None;
        if let Some(m) = self.ready_marker.take() {
            m.remove();
        }
        self.log.info("Master has been promoted.");
        if let Some(path) = self.settings.pidfile.clone() {
            if let Some(old) = self.pidfile.take() {
                old.remove();
            }
            match Pidfile::create(&path) {
                Ok(p) => self.pidfile = Some(p),
                Err(e) => self.log.error(format!("Could not write the pid file: {e}")),
            }
        }
        self.notify(&format!(
            "MAINPID={}\nREADY=1\nSTATUS=Promoted after an upgrade (master pid {})",
            self.pid, self.pid
        ));
    }

    fn check_memory(&mut self) {
        let Some(limit) = self.settings.max_worker_memory else {
            return;
        };
        let generation = self.generation;
        for w in &mut self.workers {
            if !w.ready || w.retiring || w.term_sent_at.is_some() || w.generation != generation {
                continue;
            }
            if let Some(rss) = rss_bytes(w.pid)
                && rss > limit
            {
                w.retiring = true;
                self.log.warning(format!(
                    "Worker (pid:{}) uses {} MiB, over max_worker_memory ({} MiB): replacing it",
                    w.pid,
                    rss >> 20,
                    limit >> 20
                ));
            }
        }
    }

    /// USR2: start the new binary with our listeners; we keep serving until told to stop.
    fn upgrade(&mut self) {
        if self.reexec_child.is_some() {
            self.log.warning("USR2 signal ignored. Child exists.");
            return;
        }
        if self.upgrade_parent.is_some() {
            self.log.warning("USR2 signal ignored. Parent exists.");
            return;
        }
        let Some(exec) = self.settings.exec.clone() else {
            self.log
                .warning("USR2 signal ignored: no command line to re-execute.");
            return;
        };
        let fds: Vec<i32> = self.listeners.iter().map(Listener::raw_fd).collect();
        let fd_list = fds.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        let mut cmd = std::process::Command::new(&exec.program);
        cmd.args(&exec.args)
            .current_dir(&exec.cwd)
            .env(ENV_UPGRADE_FDS, fd_list)
            .env(ENV_UPGRADE_PARENT, self.pid.to_string())
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES");
        let mask = self
            .signals
            .as_ref()
            .map_or_else(SigSet::empty, SignalSource::previous_mask);
        // SAFETY: runs in the forked child before exec; it only calls sigprocmask and fcntl
        // (async-signal-safe) on values prepared before the fork, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // Our signals are blocked (they go to the signalfd); a blocked mask survives exec.
                sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)
                    .map_err(std::io::Error::from)?;
                for fd in &fds {
                    let flags = nix::libc::fcntl(*fd, nix::libc::F_GETFD);
                    if flags < 0
                        || nix::libc::fcntl(*fd, nix::libc::F_SETFD, flags & !nix::libc::FD_CLOEXEC)
                            < 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(child) => {
                let pid = Pid::from_raw(child.id() as i32);
                // Reaped by our waitpid(-1) loop, not through the Child.
                drop(child);
                self.reexec_child = Some(pid);
                self.log.info(format!(
                    "Upgrade: started {} (pid:{pid}) on our listeners; TERM this master (pid:{}) once it serves",
                    exec.program.display(),
                    self.pid
                ));
            }
            Err(e) => self.log.error(format!(
                "Upgrade failed: could not start {}: {e}",
                exec.program.display()
            )),
        }
    }

    pub(crate) fn run(mut self) -> Result<u8, Error> {
        self.manage_workers();
        self.notify(&format!(
            "STATUS=Booting {} workers (master pid {})",
            self.target, self.pid
        ));
        loop {
            let tick = self.tick();
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
                    Intent::Upgrade => self.upgrade(),
                    Intent::Winch => self.log.debug("SIGWINCH ignored. Not daemonized"),
                }
            }
            if self.reap() {
                return Ok(self.halt(true, Some("Worker failed to boot."), EXIT_WORKER_BOOT_ERROR));
            }
            self.murder_workers();
            self.manage_workers();
            self.housekeeping();
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
        let metrics_file = self
            .metrics
            .as_ref()
            .map(|m| m.worker_file(self.pid.as_raw(), self.next_age));
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
                    retiring: false,
                    stop_reason: None,
                    metrics_file,
                });
                Ok(())
            }
            ForkResult::Child => {
                let code = self.become_worker(heartbeat, max_requests, metrics_file);
                std::process::exit(code)
            }
        }
    }

    /// Runs in the child: drop everything that belongs to the master, then serve.
    fn become_worker(
        &mut self,
        heartbeat: Heartbeat,
        max_requests: u64,
        metrics_file: Option<PathBuf>,
    ) -> i32 {
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
            header_timeout: self.settings.header_timeout,
            body: BodyLimits {
                timeout: self.settings.body_timeout,
                min_rate: self.settings.body_min_rate,
            },
            worker_connections: self.settings.worker_connections,
            limits: Limits::new(
                self.settings.limit_request_line,
                self.settings.limit_request_fields,
                self.settings.limit_request_field_size,
            ),
            trusted: self.settings.forwarded_allow_ips.clone(),
            metrics: self
                .metrics
                .as_ref()
                .and_then(|m| metrics_file.map(|f| WorkerMetrics::new(m.dir().to_path_buf(), f))),
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
            if self.reexec_child == Some(pid) {
                self.reexec_child = None;
                let how = match exit {
                    Exit::Code(c) => format!("exited with code {c}"),
                    Exit::Signal(s) => format!("was killed by {s}"),
                };
                self.log.error(format!(
                    "Upgrade master (pid:{pid}) {how}; still serving here, USR2 may be retried."
                ));
                return false;
            }
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
            Exit::Code(c) if w.killed_for == Some(KillReason::Timeout) => self.log.error(format!(
                "Worker (pid:{pid}) exited with code {c} after the master aborted it (heartbeat \
                 timeout)."
            )),
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
                (Signal::SIGABRT, None) if w.heartbeat.aborted_itself() => self.log.error(format!(
                    "Worker (pid:{pid}) aborted itself (SIGABRT raised inside the worker: an \
                         allocation failure, a stack overflow or a panic that could not unwind; \
                         the lines above say which). The master did not signal it."
                )),
                (
                    Signal::SIGABRT
                    | Signal::SIGSEGV
                    | Signal::SIGBUS
                    | Signal::SIGILL
                    | Signal::SIGFPE
                    | Signal::SIGSYS,
                    None,
                ) => self.log.error(format!(
                    "Worker (pid:{pid}) died of {sig} (not sent by the master)."
                )),
                (sig, None) => self
                    .log
                    .warning(format!("Worker (pid:{pid}) was sent {sig}!")),
            },
        }
        if let (Some(m), Some(f)) = (&mut self.metrics, &w.metrics_file)
            && let Err(e) = m.absorb(f)
        {
            self.log.debug(format!("metrics: {e}"));
        }
        if self.stopping {
            return false;
        }
        let reason = match (w.killed_for, w.stop_reason, &exit) {
            (Some(KillReason::Timeout), _, _) => Some("timeout"),
            (Some(KillReason::BootTimeout), _, _) => Some("boot_timeout"),
            (_, Some(r), _) => Some(r),
            (None, None, Exit::Code(0)) => Some("max_requests"),
            (None, None, Exit::Code(_)) => Some("exit_error"),
            (None, None, Exit::Signal(_)) => Some("signal"),
            _ => None,
        };
        if let (Some(m), Some(r)) = (&mut self.metrics, reason)
            && r != "ttou"
            && let Err(e) = m.restart(r)
        {
            self.log.debug(format!("metrics: {e}"));
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

    fn terminate(&mut self, idx: usize, reason: &'static str) {
        let pid = self.workers[idx].pid;
        self.workers[idx].term_sent_at = Some(Instant::now());
        self.workers[idx].stop_reason.get_or_insert(reason);
        self.signal_worker(pid, Signal::SIGTERM);
    }

    fn manage_workers(&mut self) {
        if self.stopping {
            return;
        }
        self.refresh_readiness();
        let active = |w: &WorkerSlot, gen_now: u64| {
            w.generation == gen_now && w.term_sent_at.is_none() && !w.retiring
        };
        let outgoing = |w: &WorkerSlot, gen_now: u64| {
            (w.generation != gen_now || w.retiring) && w.term_sent_at.is_none()
        };
        let current = self
            .workers
            .iter()
            .filter(|w| active(w, self.generation))
            .count();
        let rolling = self.workers.iter().any(|w| outgoing(w, self.generation));
        let booting = self
            .workers
            .iter()
            .filter(|w| active(w, self.generation) && !w.ready)
            .count();
        // While old workers still serve, bring new ones up one at a time: a broken new version
        // then costs one failed boot, not N, and memory never doubles.
        let wanted = if rolling {
            usize::from(current < self.target && booting == 0)
        } else {
            self.target.saturating_sub(current)
        };
        for _ in 0..wanted {
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
                self.terminate(i, "ttou");
            }
        }
        // Rolling replacement: retire an outgoing worker only when a new one is ready.
        let ready_new = self
            .workers
            .iter()
            .filter(|w| active(w, self.generation) && w.ready)
            .count();
        let mut old: Vec<usize> = (0..self.workers.len())
            .filter(|&i| outgoing(&self.workers[i], self.generation))
            .collect();
        old.sort_by_key(|&i| (!self.workers[i].retiring, self.workers[i].age));
        let surplus = (ready_new + old.len()).saturating_sub(self.target);
        for &i in old.iter().take(surplus) {
            let reason = if self.workers[i].retiring {
                "memory"
            } else {
                "reload"
            };
            self.terminate(i, reason);
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
        self.notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=Reloading the configuration",
            notify::monotonic_usec()
        ));
        let failed = |this: &mut Master, e: &dyn std::fmt::Display| {
            this.log.error(format!(
                "Reload failed, keeping the current configuration: {e}"
            ));
            this.notify(&format!(
                "READY=1\nSTATUS=Reload failed, still serving the previous configuration: {e}"
            ));
        };
        let (settings, factory) = match (self.reload)() {
            Ok(x) => x,
            Err(e) => {
                failed(self, &e);
                return;
            }
        };
        if let Err(e) = self.log.reconfigure(
            &settings.error_log,
            settings.access_log.as_ref(),
            settings.log_level,
        ) {
            failed(self, &e);
            return;
        }
        // Inherited sockets (systemd, USR2) are the operator's choice of address; keep them.
        if !self.inherited
            && (settings.binds != self.settings.binds || settings.backlog != self.settings.backlog)
        {
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
                    failed(self, &e);
                    return;
                }
            }
        }
        if settings.pidfile != self.settings.pidfile && self.upgrade_parent.is_none() {
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
        self.announced_ready = false;
    }

    /// Stops every worker (TERM when graceful, INT otherwise), bounded by the graceful timeout;
    /// an INT/QUIT during a graceful stop escalates. Returns the exit status.
    fn halt(mut self, graceful: bool, reason: Option<&str>, code: u8) -> u8 {
        self.stopping = true;
        // An upgrade child that is still ours takes over: systemd must follow it, and the sockets
        // (unix paths included) stay, since it serves on them.
        let successor = self.reexec_child.filter(|c| kill(*c, None).is_ok());
        match successor {
            Some(child) => {
                self.log
                    .info(format!("Handing over to the new master (pid:{child})"));
                self.notify(&format!(
                    "MAINPID={child}\nSTATUS=Handing over to the new master (pid {child})"
                ));
            }
            None => self.notify("STOPPING=1\nSTATUS=Stopping"),
        }
        // Closing our copies first: once the workers close theirs, new clients are refused.
        for l in std::mem::take(&mut self.listeners) {
            if successor.is_none() && !self.inherited && self.upgrade_parent.is_none() {
                l.close_and_unlink();
            }
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
        if let Some(m) = self.ready_marker.take() {
            m.remove();
        }
        code
    }
}
