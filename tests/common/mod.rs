//! Shared helpers for the black-box tests: start the real `prefork` binary on 127.0.0.1:0 with a
//! temp instance dir in its own process group, read "Listening at:" from its stderr, talk HTTP
//! to it, find its workers in /proc, and kill the whole group on drop. Every wait polls against
//! a deadline.
//!
//! Use from a test file with `mod common;`.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

pub const BIN: &str = env!("CARGO_BIN_EXE_prefork");
/// Generous: the box has two cores shared with other builds.
pub const START_DEADLINE: Duration = Duration::from_secs(60);
pub const POLL: Duration = Duration::from_millis(50);

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn poll_until<T>(deadline: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

pub struct ServerBuilder {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    stdin: Option<Stdio>,
    default_bind: bool,
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
        }
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
        let mut cmd = Command::new(BIN);
        cmd.args(&args)
            .current_dir(&cwd)
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

    pub fn get(&self, path: &str) -> std::io::Result<HttpResponse> {
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

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn worker_pid(&self) -> i32 {
        self.header("x-worker-pid").unwrap().parse().unwrap()
    }
}

/// One GET on a fresh connection (`Connection: close`), read to EOF.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nUser-Agent: prefork-tests\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// The same over a unix socket.
pub fn http_get_unix(path_to_socket: &Path, path: &str) -> std::io::Result<HttpResponse> {
    let mut s = std::os::unix::net::UnixStream::connect(path_to_socket)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("incomplete response"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let resp = HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    };
    if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        && resp.body.len() < len
    {
        return Err(bad("truncated body"));
    }
    Ok(resp)
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
