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

/// Sends `request` as is on a fresh connection and reads the answer to EOF (so the request
/// should say `Connection: close`, or the server must close).
pub fn raw_request(addr: SocketAddr, request: &[u8]) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// `GET /metrics` as (series, value) pairs, comments skipped.
pub fn metrics_of(addr: SocketAddr) -> Option<Vec<(String, f64)>> {
    let r = http_get(addr, "/metrics").ok()?;
    (r.status == 200).then(|| {
        r.body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect()
    })
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

/// What a [`Load`] saw.
#[derive(Debug, Default)]
pub struct LoadStats {
    /// Requests answered with a complete response (any status).
    pub answered: u64,
    /// Of those, not 2xx.
    pub non_2xx: u64,
    /// Connection refused.
    pub refused: u64,
    /// Any other failure (reset, EOF mid-response, timeout) on a fresh connection.
    pub failed: u64,
    /// Requests retried once on a new connection because a reused keep-alive connection was
    /// closed before any byte of the answer (what HTTP clients do, RFC 9112 9.3.1); the retry is
    /// counted in `answered`/`failed`.
    pub retried_stale_keepalive: u64,
    pub worker_pids: std::collections::HashSet<i32>,
    pub errors: Vec<String>,
}

impl LoadStats {
    fn merge(&mut self, o: LoadStats) {
        self.answered += o.answered;
        self.non_2xx += o.non_2xx;
        self.refused += o.refused;
        self.failed += o.failed;
        self.retried_stale_keepalive += o.retried_stale_keepalive;
        self.worker_pids.extend(o.worker_pids);
        self.errors.extend(o.errors.into_iter().take(5));
    }
}

/// A bounded, paced request loop on loopback: `keep_alive` clients reusing one connection and
/// `close` clients opening one per request, each pausing `pause` between requests.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    progress: Arc<std::sync::atomic::AtomicU64>,
    handles: Vec<JoinHandle<LoadStats>>,
}

impl Load {
    pub fn start(
        addr: SocketAddr,
        path: &str,
        keep_alive: usize,
        close: usize,
        pause: Duration,
    ) -> Load {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut handles = Vec::new();
        for i in 0..keep_alive + close {
            let stop = Arc::clone(&stop);
            let progress = Arc::clone(&progress);
            let path = path.to_owned();
            let reuse = i < keep_alive;
            handles.push(std::thread::spawn(move || {
                load_client(addr, &path, reuse, pause, &stop, &progress)
            }));
        }
        Load {
            stop,
            progress,
            handles,
        }
    }

    /// Requests answered so far (all clients).
    pub fn answered(&self) -> u64 {
        self.progress.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until `n` more requests than now have been answered.
    pub fn wait_more(&self, n: u64, deadline: Duration) -> bool {
        let target = self.answered() + n;
        poll_until(deadline, || (self.answered() >= target).then_some(())).is_some()
    }

    pub fn stop(self) -> LoadStats {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut total = LoadStats::default();
        for h in self.handles {
            total.merge(h.join().unwrap());
        }
        total
    }
}

/// Reads one response (head + Content-Length body) from a kept-alive connection.
pub fn read_response(s: &mut TcpStream) -> std::io::Result<(Vec<u8>, HttpResponse)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + len {
                let resp = parse_response(&raw[..end + 4 + len])?;
                return Ok((raw, resp));
            }
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("closed after {} bytes", raw.len()),
            ));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

fn load_client(
    addr: SocketAddr,
    path: &str,
    reuse: bool,
    pause: Duration,
    stop: &std::sync::atomic::AtomicBool,
    progress: &std::sync::atomic::AtomicU64,
) -> LoadStats {
    let mut st = LoadStats::default();
    let mut conn: Option<TcpStream> = None;
    let close_hdr = if reuse { "" } else { "Connection: close\r\n" };
    let req = format!("GET {path} HTTP/1.1\r\nHost: load\r\n{close_hdr}\r\n");
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let mut attempt = 0;
        loop {
            let reused = conn.is_some();
            let mut s = match conn.take() {
                Some(s) => s,
                None => match connect(addr) {
                    Ok(s) => s,
                    Err(e) => {
                        if e.kind() == std::io::ErrorKind::ConnectionRefused {
                            st.refused += 1;
                        } else {
                            st.failed += 1;
                        }
                        st.errors.push(format!("connect: {e}"));
                        break;
                    }
                },
            };
            let res = s
                .write_all(req.as_bytes())
                .and_then(|()| read_response(&mut s));
            match res {
                Ok((_, resp)) => {
                    st.answered += 1;
                    progress.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if !(200..300).contains(&resp.status) {
                        st.non_2xx += 1;
                    }
                    if let Some(pid) = resp.header("x-worker-pid").and_then(|p| p.parse().ok()) {
                        st.worker_pids.insert(pid);
                    }
                    let server_closes = resp
                        .header("connection")
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                    if reuse && !server_closes {
                        conn = Some(s);
                    }
                    break;
                }
                Err(e) => {
                    let nothing_read = e.kind() != std::io::ErrorKind::UnexpectedEof
                        || e.to_string() == "closed after 0 bytes";
                    if reused && nothing_read && attempt == 0 {
                        st.retried_stale_keepalive += 1;
                        attempt += 1;
                        continue;
                    }
                    st.failed += 1;
                    st.errors.push(format!("request: {e}"));
                    break;
                }
            }
        }
        std::thread::sleep(pause);
    }
    st
}
