//! The real `prefork` binary under test: started on 127.0.0.1:0 with a temp instance dir in its
//! own process group, "Listening at:" read from its stderr, its workers found in /proc, the
//! whole group killed on drop. Every wait polls against a deadline.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::{Failure, Reply, http_get, poll_until};

pub const BIN: &str = env!("CARGO_BIN_EXE_prefork");
/// Generous: the box has two cores shared with other builds.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

pub struct ServerBuilder {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    stdin: Option<Stdio>,
    default_bind: bool,
    program: Option<PathBuf>,
    listen_fd: Option<i32>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    pub fn new() -> Self {
        ServerBuilder {
            args: Vec::new(),
            envs: Vec::new(),
            cwd: None,
            stdin: None,
            default_bind: true,
            program: None,
            listen_fd: None,
        }
    }

    /// Run this path instead of the built binary (a symlink to it, so a test can swap it).
    pub fn program(mut self, path: &Path) -> Self {
        self.program = Some(path.to_path_buf());
        self
    }

    /// systemd socket activation: `fd` (a listening socket the test owns) becomes fd 3 of the
    /// server, with LISTEN_FDS=1 and LISTEN_PID set to the server's own pid (through a shell
    /// that exports LISTEN_PID=$$ and execs). No `-b` is added.
    pub fn listen_fd(mut self, fd: i32) -> Self {
        self.listen_fd = Some(fd);
        self.default_bind = false;
        self
    }

    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|s| s.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Working directory (default: a fresh temp dir, so the repository's config/default.toml
    /// is not picked up).
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Don't add `-b 127.0.0.1:0` (the test binds through a config file or the environment).
    pub fn without_default_bind(mut self) -> Self {
        self.default_bind = false;
        self
    }

    /// What the server gets as fd 0 (e.g. a listening socket for `-b fd://0`); default /dev/null.
    pub fn stdin(mut self, stdin: Stdio) -> Self {
        self.stdin = Some(stdin);
        self
    }

    /// Starts the process without waiting for it to listen.
    pub fn spawn(mut self) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let cwd = self.cwd.clone().unwrap_or_else(|| dir.path().to_path_buf());
        let mut args = self.args.clone();
        if self.default_bind && !args.iter().any(|a| a == "-b" || a.starts_with("--bind")) {
            args.extend(["-b".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        if !args.iter().any(|a| a.starts_with("--instance-dir")) {
            args.push("--instance-dir".to_owned());
            args.push(dir.path().join("instance").display().to_string());
        }
        let program = self.program.clone().unwrap_or_else(|| PathBuf::from(BIN));
        let mut cmd = match self.listen_fd {
            Some(fd) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c")
                    .arg("LISTEN_PID=$$ LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; exec \"$0\" \"$@\"")
                    .arg(&program)
                    .args(&args);
                // SAFETY: dup2 and fcntl are async-signal-safe and allocate nothing.
                unsafe {
                    c.pre_exec(move || {
                        let ok = if fd == 3 {
                            // dup2 onto itself keeps close-on-exec; clear it instead.
                            nix::libc::fcntl(3, nix::libc::F_SETFD, 0) >= 0
                        } else {
                            nix::libc::dup2(fd, 3) >= 0
                        };
                        if !ok {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                c
            }
            None => {
                let mut c = Command::new(&program);
                c.args(&args);
                c
            }
        };
        cmd.current_dir(&cwd)
            .stdin(self.stdin.take().unwrap_or_else(Stdio::null))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, _) in std::env::vars() {
            if k.starts_with("PREFORK_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            pump(child.stderr.take().unwrap(), Arc::clone(&lines)),
            pump(child.stdout.take().unwrap(), Arc::clone(&stdout_lines)),
        ];
        let pid = child.id() as i32;
        Server {
            child,
            pid,
            addr: None,
            lines,
            stdout_lines,
            readers,
            dir,
            exited: None,
        }
    }

    /// Starts and waits for the first "Listening at: http://..." line.
    pub fn start(self) -> Server {
        let mut server = self.spawn();
        let line = server
            .wait_for_line(START_DEADLINE, |l| l.contains("Listening at: http://"))
            .unwrap_or_else(|| panic!("server did not start:\n{}", server.stderr()));
        server.addr = Some(parse_listening(&line).0);
        server
    }
}

fn pump(stream: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    })
}

/// `Listening at: http://HOST:PORT (PID)` -> (address, pid).
pub fn parse_listening(line: &str) -> (SocketAddr, i32) {
    let rest = line.split("Listening at: http://").nth(1).unwrap();
    let (addr, pid) = rest.split_once(" (").unwrap();
    (
        addr.parse().unwrap(),
        pid.trim_end_matches(')').parse().unwrap(),
    )
}

pub struct Server {
    child: Child,
    pub pid: i32,
    addr: Option<SocketAddr>,
    lines: Arc<Mutex<Vec<String>>>,
    stdout_lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    /// Temp dir holding the instance dir (and the default working directory).
    pub dir: tempfile::TempDir,
    exited: Option<ExitStatus>,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("server was spawned, not started")
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_lines.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.lines().join("\n")
    }

    pub fn count_lines(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    pub fn wait_for_line(&self, deadline: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        poll_until(deadline, || self.lines().into_iter().find(|l| pred(l)))
    }

    /// Waits for the `n`-th line (1-based) containing `needle`.
    pub fn wait_for_nth(&self, deadline: Duration, needle: &str, n: usize) -> bool {
        poll_until(deadline, || (self.count_lines(needle) >= n).then_some(())).is_some()
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid), sig).unwrap();
    }

    /// Live (non-zombie) children of the master.
    pub fn workers(&self) -> Vec<i32> {
        children_of(self.pid)
    }

    /// Waits until exactly `n` workers are alive in two consecutive polls.
    pub fn wait_workers(&self, n: usize, deadline: Duration) -> Option<Vec<i32>> {
        let mut previous: Option<Vec<i32>> = None;
        poll_until(deadline, || {
            let now = self.workers();
            let stable = now.len() == n && previous.as_ref() == Some(&now);
            previous = Some(now.clone());
            stable.then_some(now)
        })
    }

    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.exited {
            return Some(s);
        }
        let status = poll_until(deadline, || self.child.try_wait().unwrap());
        self.exited = status;
        status
    }

    /// `GET path` on a fresh connection.
    pub fn get(&self, path: &str) -> Result<Reply, Failure> {
        http_get(self.addr(), path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- server stderr (pid {}) ----\n{}",
                self.pid,
                self.stderr()
            );
        }
    }
}

/// Pids whose parent is `ppid`, zombies excluded, sorted.
pub fn children_of(ppid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some((state, parent)) = stat_of(pid)
            && parent == ppid
            && state != 'Z'
        {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// (state, ppid) from /proc/PID/stat.
pub fn stat_of(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let after = &text[text.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// A process that is gone or a zombie no longer runs anything.
pub fn is_running(pid: i32) -> bool {
    matches!(stat_of(pid), Some((state, _)) if state != 'Z')
}

/// Socket inodes ("socket:[N]") a process holds.
pub fn socket_inodes(pid: i32) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in entries.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.to_string_lossy().into_owned();
                if t.starts_with("socket:") {
                    out.push(t);
                }
            }
        }
    }
    out
}

/// Runs `prefork` to completion (for --check-config, bad flags...). Returns (status, stdout, stderr).
pub fn run_to_exit(
    args: &[&str],
    envs: &[(&str, &str)],
    cwd: &Path,
) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .process_group(0);
    for (k, _) in std::env::vars() {
        if k.starts_with("PREFORK_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
