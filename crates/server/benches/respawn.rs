//! Worker respawn latency: with one worker, SIGKILL it and time until a request sent right after
//! the kill is answered (it waits in the listen backlog until the replacement accepts it).
//!
//! `cargo bench -p prefork-server --bench respawn` — the bench binary re-executes itself as the
//! server (so the master is a fresh single-threaded process) and measures from the outside.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Under `cargo bench` (which passes --bench); `cargo test --all-targets` runs a 3-round smoke.
const ROUNDS: usize = 30;
const SMOKE_ROUNDS: usize = 3;
const SERVE_FLAG: &str = "--serve-for-bench";

fn main() {
    if std::env::args().any(|a| a == SERVE_FLAG) {
        std::process::exit(i32::from(serve()));
    }
    let rounds = if std::env::args().any(|a| a == "--bench") {
        ROUNDS
    } else {
        SMOKE_ROUNDS
    };
    if let Err(e) = measure(rounds) {
        eprintln!("respawn bench failed: {e}");
        std::process::exit(1);
    }
}

fn serve() -> u8 {
    let settings = prefork_server::Settings {
        workers: 1,
        binds: vec![prefork_server::BindAddr::Tcp("127.0.0.1:0".to_owned())],
        ..prefork_server::Settings::default()
    };
    let factory: prefork_server::HandlerFactory = Box::new(|| {
        let handler = |_req: http::Request<prefork_server::RequestBody>| async {
            http::Response::new(prefork_server::full_body(std::process::id().to_string()))
        };
        Ok(std::sync::Arc::new(handler) as std::sync::Arc<dyn prefork_server::Handler>)
    });
    let reload: prefork_server::Reloader = Box::new(|| Err("reload is not used here".to_owned()));
    match prefork_server::run(settings, factory, reload) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

/// Returns the pid of the worker that answered.
fn get(addr: SocketAddr) -> std::io::Result<i32> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(b"GET /ping HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => body
            .trim()
            .parse()
            .map_err(|_| std::io::Error::other("body is not a pid")),
        _ => Err(std::io::Error::other("not a 200")),
    }
}

fn children(ppid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut f = stat[close + 2..].split_whitespace();
        let (state, parent) = (f.next(), f.next().and_then(|p| p.parse::<i32>().ok()));
        if parent == Some(ppid) && state != Some("Z") {
            out.push(pid);
        }
    }
    out
}

fn measure(rounds: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg(SERVE_FLAG)
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let (addr, master) = loop {
        let line = lines.next().ok_or("server exited before listening")??;
        if let Some(rest) = line.split("Listening at: http://").nth(1) {
            let (a, p) = rest.split_once(" (").ok_or("bad line")?;
            break (
                a.parse::<SocketAddr>()?,
                p.trim_end_matches(')').parse::<i32>()?,
            );
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let mut samples = Vec::with_capacity(rounds);
    let deadline = |d| Instant::now() + Duration::from_secs(d);
    for _ in 0..rounds {
        let end = deadline(30);
        let worker = loop {
            let c = children(master);
            if c.len() == 1 && get(addr).is_ok() {
                break c[0];
            }
            if Instant::now() > end {
                return Err("no single ready worker".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        kill(Pid::from_raw(worker), Signal::SIGKILL)?;
        let t0 = Instant::now();
        let answered_by = get(addr)?;
        samples.push(t0.elapsed());
        if answered_by == worker {
            return Err("the killed worker answered".into());
        }
    }
    let _ = kill(Pid::from_raw(master), Signal::SIGTERM);
    let _ = child.wait();
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "respawn latency over {rounds} kills (SIGKILL -> replacement answered /ping): \
         min {:.1} ms, median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(samples[0]),
        ms(samples[rounds / 2]),
        ms(samples[rounds * 9 / 10]),
        ms(samples[rounds - 1]),
    );
    Ok(())
}
