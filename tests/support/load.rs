//! A bounded, paced request loop on loopback, for tests that change the server under load
//! (reload, upgrade): `keep_alive` clients reusing one connection and `close` clients opening one
//! per request, over the workspace's one HTTP client.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use prefork_loadgen::http::{self, Connection, Failure, Request};

use super::{TIMEOUTS, poll_until};

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
    pub worker_pids: HashSet<i32>,
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

/// The request loop; [`Load::stop`] ends it and sums what every client saw.
pub struct Load {
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicU64>,
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
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicU64::new(0));
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
        self.progress.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests than now have been answered.
    pub fn wait_more(&self, n: u64, deadline: Duration) -> bool {
        let target = self.answered() + n;
        poll_until(deadline, || (self.answered() >= target).then_some(())).is_some()
    }

    pub fn stop(self) -> LoadStats {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = LoadStats::default();
        for h in self.handles {
            total.merge(h.join().unwrap());
        }
        total
    }
}

fn load_client(
    addr: SocketAddr,
    path: &str,
    reuse: bool,
    pause: Duration,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> LoadStats {
    let mut st = LoadStats::default();
    let mut conn: Option<Connection> = None;
    let request = Request::get(path);
    while !stop.load(Ordering::SeqCst) {
        let mut attempt = 0;
        loop {
            let reused = conn.is_some();
            let res = if reuse {
                let c = match conn.take() {
                    Some(c) => Ok(c),
                    None => Connection::open(addr, TIMEOUTS),
                };
                c.and_then(|mut c| {
                    let reply = c.send(&request)?;
                    if !reply.closes_connection() {
                        conn = Some(c);
                    }
                    Ok(reply)
                })
            } else {
                http::send(addr, &request, TIMEOUTS)
            };
            match res {
                Ok(resp) => {
                    st.answered += 1;
                    progress.fetch_add(1, Ordering::SeqCst);
                    if !(200..300).contains(&resp.status) {
                        st.non_2xx += 1;
                    }
                    if let Some(pid) = resp.worker_pid() {
                        st.worker_pids.insert(pid);
                    }
                    break;
                }
                Err(Failure::NoAnswer(_)) if reused && attempt == 0 => {
                    st.retried_stale_keepalive += 1;
                    attempt += 1;
                }
                Err(Failure::Connect(e)) => {
                    if e.to_ascii_lowercase().contains("connection refused") {
                        st.refused += 1;
                    } else {
                        st.failed += 1;
                    }
                    st.errors.push(format!("connect: {e}"));
                    break;
                }
                Err(e) => {
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
