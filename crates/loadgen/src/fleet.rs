//! Instances the load tool starts itself, so that its chaos mode can SIGKILL a whole instance
//! (the master and all its workers: its process group) and start it again, as a host dies and
//! comes back behind a load balancer.
//!
//! Each instance is a command line with `{port}` (and optionally `{n}`, the instance number) in
//! it. The tool picks the port once, on 127.0.0.1, **outside the kernel's ephemeral range**
//! (`/proc/sys/net/ipv4/ip_local_port_range`): while an instance is down, no outgoing connection
//! of this machine can take its port as a source port, so the restart binds the same port again
//! and the instance's URL never changes. Each incarnation runs in its own process group (the
//! command is spawned as a group leader), so a kill reaches its workers and nothing else.
//! Readiness is the load balancer's health check: `GET <health path>` answers 200 and the master
//! has live children.

use std::fs::OpenOptions;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::Error;
use crate::chaos::children_of;
use crate::http::{self, Request, Timeouts};

/// How to start one instance.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The executable started for each incarnation (`--launch` gives `/bin/sh` with `-c "exec CMD"`).
    pub program: PathBuf,
    /// `{port}` and `{n}` are replaced in every argument.
    pub args: Vec<String>,
    /// Working directory of the instance; `None` = the tool's own.
    pub cwd: Option<PathBuf>,
    /// Variables added to the instance's environment (`{port}` and `{n}` are not replaced here).
    pub envs: Vec<(String, String)>,
    /// Variables removed from the inherited environment (e.g. the caller's own `PREFORK_*`).
    pub env_remove: Vec<String>,
    /// Where the instance's stdout and stderr go (appended, every incarnation); `None` = discarded.
    /// The current master's pid is written next to it (`<log>.pid`), so a script can still stop
    /// the instance's process group if this tool is killed before it could.
    pub log: Option<PathBuf>,
}

impl LaunchSpec {
    /// A shell command line (`/bin/sh -c 'exec CMD'`: the shell becomes the program, so the pid
    /// spawned is the master's).
    pub fn shell(command: &str) -> LaunchSpec {
        LaunchSpec {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), format!("exec {command}")],
            cwd: None,
            envs: Vec::new(),
            env_remove: Vec::new(),
            log: None,
        }
    }

    /// `<log>.pid`: the current master, removed when this tool stops or kills it.
    fn pid_path(&self) -> Option<PathBuf> {
        self.log.as_ref().map(|log| {
            let mut path = log.clone().into_os_string();
            path.push(".pid");
            PathBuf::from(path)
        })
    }

    fn mentions_port(&self) -> bool {
        self.args.iter().any(|a| a.contains("{port}"))
    }
}

struct Instance {
    spec: LaunchSpec,
    n: usize,
    addr: SocketAddr,
    /// The current incarnation (its pid is its process group); `None` while down.
    child: Option<Child>,
    starts: u32,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("addrs", &self.addrs())
            .field("health_path", &self.health_path)
            .finish_non_exhaustive()
    }
}

/// The launched instances. Every method takes `&self`: the chaos thread restarts instances while
/// the users send requests to their (fixed) addresses.
pub struct Fleet {
    instances: Vec<Mutex<Instance>>,
    health_path: String,
    ready_timeout: Duration,
}

impl Fleet {
    /// Picks a port per instance, starts them all and waits until each is ready.
    pub fn launch(
        specs: Vec<LaunchSpec>,
        health_path: &str,
        ready_timeout: Duration,
    ) -> Result<Fleet, Error> {
        let mut taken = Vec::new();
        let mut instances = Vec::new();
        for (n, spec) in specs.into_iter().enumerate() {
            if !spec.mentions_port() {
                return Err(Error::Launch(format!(
                    "instance {n}: the command line has no {{port}} to bind"
                )));
            }
            let port = free_port_outside_ephemeral(&taken)?;
            taken.push(port);
            instances.push(Mutex::new(Instance {
                spec,
                n,
                addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
                child: None,
                starts: 0,
            }));
        }
        let fleet = Fleet {
            instances,
            health_path: health_path.to_owned(),
            ready_timeout,
        };
        for ix in 0..fleet.len() {
            fleet.start(ix)?;
        }
        for ix in 0..fleet.len() {
            fleet.wait_ready(ix)?;
        }
        Ok(fleet)
    }

    /// How many instances the fleet runs (alive or down for chaos).
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// True when the fleet has no instance.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// The instances' addresses (fixed for the fleet's life), in order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.instances
            .iter()
            .filter_map(|i| i.lock().ok().map(|i| i.addr))
            .collect()
    }

    /// The current master of instance `ix`, when it is up (or starting).
    pub fn master(&self, ix: usize) -> Option<i32> {
        let i = self.instances.get(ix)?.lock().ok()?;
        i.child.as_ref().and_then(|c| i32::try_from(c.id()).ok())
    }

    /// How many times instance `ix` was started (1 = never restarted).
    pub fn starts(&self, ix: usize) -> u32 {
        self.instances
            .get(ix)
            .and_then(|i| i.lock().ok().map(|i| i.starts))
            .unwrap_or(0)
    }

    /// Spawns instance `ix` (it must be down) on its port; does not wait for readiness. Waits
    /// (bounded) until the port can be bound again, i.e. the killed incarnation's listening
    /// sockets are gone from every process that held them.
    pub fn start(&self, ix: usize) -> Result<i32, Error> {
        let mut i = self.lock(ix)?;
        if i.child.is_some() {
            return Err(Error::Launch(format!("instance {ix} is already running")));
        }
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            match bindable(i.addr) {
                Ok(()) => break,
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::Launch(format!(
                        "instance {ix}: port {} still in use after {:?}: {e}",
                        i.addr.port(),
                        self.ready_timeout
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let port = i.addr.port().to_string();
        let n = i.n.to_string();
        let spec = &i.spec;
        let mut cmd = Command::new(&spec.program);
        cmd.args(
            spec.args
                .iter()
                .map(|a| a.replace("{port}", &port).replace("{n}", &n)),
        );
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        for k in &spec.env_remove {
            cmd.env_remove(k);
        }
        for (k, v) in &spec.envs {
            cmd.env(k, v);
        }
        let (out, err) = match &spec.log {
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Error::Launch(format!("{}: {e}", path.display())))?;
                let copy = file
                    .try_clone()
                    .map_err(|e| Error::Launch(format!("{}: {e}", path.display())))?;
                (Stdio::from(file), Stdio::from(copy))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            Error::Launch(format!(
                "instance {ix}: cannot start {}: {e}",
                spec.program.display()
            ))
        })?;
        let pid =
            i32::try_from(child.id()).map_err(|_| Error::Launch("pid out of range".into()))?;
        i.child = Some(child);
        i.starts += 1;
        Ok(pid)
    }

    /// Whether instance `ix` passes the health check now (and has workers to kill).
    pub fn ready(&self, ix: usize) -> bool {
        let (addr, pid) = match self.lock(ix) {
            Ok(mut i) => {
                let addr = i.addr;
                let Some(c) = i.child.as_mut() else {
                    return false;
                };
                // An incarnation that exited by itself is down, not starting.
                if !matches!(c.try_wait(), Ok(None)) {
                    return false;
                }
                (addr, i32::try_from(c.id()).unwrap_or(0))
            }
            Err(_) => return false,
        };
        if children_of(pid).is_empty() {
            return false;
        }
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            io: Duration::from_secs(5),
        };
        http::send(
            addr,
            &Request::new("GET", &self.health_path).headers(&[("User-Agent", "prefork-load")]),
            timeouts,
        )
        .is_ok_and(|r| r.status == 200)
    }

    /// Polls [`Fleet::ready`] until the ready timeout.
    pub fn wait_ready(&self, ix: usize) -> Result<(), Error> {
        let deadline = Instant::now() + self.ready_timeout;
        while Instant::now() < deadline {
            if self.ready(ix) {
                return Ok(());
            }
            if self.exited(ix) {
                return Err(Error::Launch(format!(
                    "instance {ix} exited while starting (see its log)"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::Launch(format!(
            "instance {ix} not ready within {:?}",
            self.ready_timeout
        )))
    }

    fn exited(&self, ix: usize) -> bool {
        self.lock(ix).is_ok_and(|mut i| {
            i.child
                .as_mut()
                .is_some_and(|c| !matches!(c.try_wait(), Ok(None)))
        })
    }

    /// SIGKILLs instance `ix`'s whole process group (master and workers) and reaps the master.
    /// Returns the killed master's pid, or `None` when it was already down.
    pub fn kill(&self, ix: usize) -> Result<Option<i32>, Error> {
        let mut i = self.lock(ix)?;
        let Some(mut child) = i.child.take() else {
            return Ok(None);
        };
        let pid =
            i32::try_from(child.id()).map_err(|_| Error::Launch("pid out of range".into()))?;
        // The group was made by spawn (process_group(0)): its id is the master's pid.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        if let Some(path) = i.spec.pid_path() {
            let _ = std::fs::remove_file(path);
        }
        child.wait().map_err(|e| Error::Signal {
            pid,
            message: format!("reaping the killed master: {e}"),
        })?;
        Ok(Some(pid))
    }

    /// Stops every instance: TERM to each group, up to `grace` for the masters to exit, then KILL.
    pub fn stop_all(&self, grace: Duration) {
        for m in &self.instances {
            if let Ok(i) = m.lock()
                && let Some(c) = &i.child
                && let Ok(pid) = i32::try_from(c.id())
            {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for m in &self.instances {
            let Ok(mut i) = m.lock() else { continue };
            let Some(mut child) = i.child.take() else {
                continue;
            };
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.wait();
            if let Some(path) = i.spec.pid_path() {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn lock(&self, ix: usize) -> Result<std::sync::MutexGuard<'_, Instance>, Error> {
        self.instances
            .get(ix)
            .ok_or_else(|| Error::Launch(format!("no instance {ix}")))?
            .lock()
            .map_err(|_| Error::Poisoned("an instance"))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(15));
    }
}

/// Whether a listener could bind `addr` now (SO_REUSEADDR, as the server binds: TIME_WAIT
/// connections of the previous incarnation do not count).
fn bindable(addr: SocketAddr) -> std::io::Result<()> {
    // std's TcpListener sets SO_REUSEADDR on Unix.
    TcpListener::bind(addr).map(drop)
}

/// A free loopback port below the kernel's ephemeral range (or above it when the range starts
/// too low), not in `taken`.
fn free_port_outside_ephemeral(taken: &[u16]) -> Result<u16, Error> {
    let (lo, hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(str::parse::<u16>);
            Some((it.next()?.ok()?, it.next()?.ok()?))
        })
        .unwrap_or((32768, 60999));
    // Spread the starting point so concurrent runs rarely probe the same ports.
    let seed = u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos().into())
            .unwrap_or(0);
    let mut rng = crate::chaos::Rng::new(seed);
    let below = (lo > 11_024).then(|| (10_000u16, lo - 1));
    let above = (hi < 64_535).then(|| (hi + 1, 65_000u16));
    let ranges: Vec<(u16, u16)> = below.into_iter().chain(above).collect();
    if ranges.is_empty() {
        return Err(Error::Launch(
            "no port range outside the ephemeral ports".into(),
        ));
    }
    for _ in 0..200 {
        let (a, b) = ranges[rng.below(ranges.len())];
        let span = usize::from(b - a) + 1;
        let port = a + u16::try_from(rng.below(span)).unwrap_or(0);
        if taken.contains(&port) {
            continue;
        }
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        if bindable(addr).is_ok() {
            return Ok(port);
        }
    }
    Err(Error::Launch(
        "no free loopback port outside the ephemeral range".into(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_outside_the_ephemeral_range() {
        let p = free_port_outside_ephemeral(&[]).unwrap();
        let (lo, hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .map(|t| {
                let v: Vec<u16> = t.split_whitespace().map(|x| x.parse().unwrap()).collect();
                (v[0], v[1])
            })
            .unwrap_or((32768, 60999));
        assert!(p < lo || p > hi, "{p} in {lo}-{hi}");
    }

    #[test]
    fn a_command_without_a_port_is_refused() {
        let r = Fleet::launch(
            vec![LaunchSpec::shell("sleep 30")],
            "/ping",
            Duration::from_secs(1),
        );
        assert!(matches!(r, Err(Error::Launch(m)) if m.contains("{port}")));
    }

    /// A real group: a shell (the "master") with a child; killing the instance kills both, and
    /// it starts again on the same port.
    #[test]
    fn kill_takes_the_whole_group_and_start_rebinds_the_port() {
        let spec = LaunchSpec::shell(
            "python3 -c 'import socket,time,os,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", int(sys.argv[1]))); s.listen(); os.fork() or time.sleep(60); time.sleep(60)' {port}",
        );
        if Command::new("python3").arg("-V").output().is_err() {
            return;
        }
        let fleet = Fleet {
            instances: vec![Mutex::new(Instance {
                spec,
                n: 0,
                addr: SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::LOCALHOST,
                    free_port_outside_ephemeral(&[]).unwrap(),
                )),
                child: None,
                starts: 0,
            })],
            health_path: "/ping".into(),
            ready_timeout: Duration::from_secs(20),
        };
        let first = fleet.start(0).unwrap();
        let addr = fleet.addrs()[0];
        let t0 = Instant::now();
        while children_of(first).is_empty() || std::net::TcpStream::connect(addr).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        let kids = children_of(first);
        assert_eq!(fleet.kill(0).unwrap(), Some(first));
        assert_eq!(fleet.master(0), None);
        let second = fleet.start(0).unwrap();
        assert_ne!(first, second);
        // The old child went with its group: start() could bind the port only once it was gone.
        for k in kids {
            let state = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap_or_default();
            let after = state
                .rsplit_once(')')
                .map(|(_, s)| s.trim_start())
                .unwrap_or("");
            assert!(after.is_empty() || after.starts_with('Z'), "{k}: {state}");
        }
        assert_eq!(fleet.starts(0), 2);
        fleet.stop_all(Duration::from_secs(5));
        assert_eq!(fleet.master(0), None);
    }
}
