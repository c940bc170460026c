//! One worker process: after the fork it builds its own current-thread tokio runtime, builds the
//! handler, reports ready through the heartbeat file and serves HTTP/1.1 (keep-alive) with hyper
//! on the inherited listeners until it is told to stop.
//!
//! TERM (or reaching max_requests) = stop accepting, let in-flight requests finish within the
//! graceful timeout, exit 0. QUIT/INT = exit now. ABRT (the master's heartbeat timeout) = exit 1.
//! USR1 = reopen the logs. The master's death kills the worker (PR_SET_PDEATHSIG), and the
//! heartbeat task also compares getppid() with the master's pid in case the master died before
//! the death signal was armed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderValue, Request, Response, header};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc, watch};

use crate::bind::Listener;
use crate::heartbeat::{Heartbeat, WorkerState};
use crate::logging::{AccessRecord, Logger};
use crate::{EXIT_WORKER_BOOT_ERROR, Handler, HandlerFactory, ResponseBody};

pub(crate) struct WorkerContext {
    pub listeners: Vec<Listener>,
    pub heartbeat: Heartbeat,
    pub master_pid: Pid,
    pub log: Logger,
    pub factory: Arc<HandlerFactory>,
    pub timeout: Duration,
    pub graceful_timeout: Duration,
    pub keep_alive: Duration,
    /// 0 = unlimited; otherwise already includes this worker's jitter.
    pub max_requests: u64,
}

const BOOT_ERROR: i32 = EXIT_WORKER_BOOT_ERROR as i32;

/// Returns the process exit status.
pub(crate) fn run(ctx: WorkerContext) -> i32 {
    // Armed first, then checked: a master that died before the prctl would never send the signal.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if getppid() != ctx.master_pid {
        return 0;
    }
    ctx.log
        .info(format!("Booting worker with pid: {}", std::process::id()));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ctx.log
                .error(format!("Worker failed to boot: tokio runtime: {e}"));
            return BOOT_ERROR;
        }
    };
    runtime.block_on(serve(ctx))
}

/// What every connection task shares.
struct Shared {
    handler: Arc<dyn Handler>,
    log: Logger,
    served: AtomicU64,
    max_requests: u64,
    limit_reached: Notify,
}

fn heartbeat_period(timeout: Duration) -> Duration {
    if timeout.is_zero() {
        Duration::from_secs(1)
    } else {
        (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

async fn serve(ctx: WorkerContext) -> i32 {
    let WorkerContext {
        listeners,
        heartbeat,
        master_pid,
        log,
        factory,
        timeout,
        graceful_timeout,
        keep_alive,
        max_requests,
    } = ctx;
    let pid = std::process::id();
    let signals = (
        signal(SignalKind::terminate()),
        signal(SignalKind::quit()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::from_raw(Signal::SIGABRT as i32)),
    );
    let (Ok(mut term), Ok(mut quit), Ok(mut int), Ok(mut usr1), Ok(mut abrt)) = signals else {
        log.error("Worker failed to boot: could not install signal handlers");
        return BOOT_ERROR;
    };
    let handler = match factory() {
        Ok(h) => h,
        Err(e) => {
            log.error(format!("Worker (pid:{pid}) failed to boot: {e}"));
            return BOOT_ERROR;
        }
    };
    let shared = Arc::new(Shared {
        handler,
        log: log.clone(),
        served: AtomicU64::new(0),
        max_requests,
        limit_reached: Notify::new(),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection holds a sender; recv() yields None once the last connection is done.
    let (conn_done_tx, mut conn_done_rx) = mpsc::channel::<()>(1);
    let mut accept_tasks = Vec::with_capacity(listeners.len());
    for listener in listeners {
        accept_tasks.push(tokio::spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            stop_rx.clone(),
            conn_done_tx.clone(),
            keep_alive,
        )));
    }
    drop(conn_done_tx);

    let heartbeat = Arc::new(heartbeat);
    if let Err(e) = heartbeat.beat() {
        log.warning(format!("heartbeat: {e}"));
    }
    if let Err(e) = heartbeat.set_state(WorkerState::Ready) {
        log.error(format!("Worker failed to boot: heartbeat file: {e}"));
        return BOOT_ERROR;
    }
    tokio::spawn(heartbeat_loop(
        Arc::clone(&heartbeat),
        heartbeat_period(timeout),
        master_pid,
        log.clone(),
    ));

    loop {
        tokio::select! {
            _ = term.recv() => break,
            () = shared.limit_reached.notified() => break,
            _ = quit.recv() => quick_exit(&log, pid),
            _ = int.recv() => quick_exit(&log, pid),
            _ = abrt.recv() => {
                log.critical(format!("Worker (pid:{pid}) aborted by the master"));
                std::process::exit(1);
            }
            _ = usr1.recv() => {
                if let Err(e) = log.reopen() {
                    log.error(format!("Could not reopen the logs: {e}"));
                }
            }
        }
    }

    let _ = heartbeat.set_state(WorkerState::Draining);
    let _ = stop_tx.send(true);
    // Awaiting the aborted tasks guarantees their listeners are closed before we drain.
    for task in accept_tasks {
        task.abort();
        let _ = task.await;
    }
    let drained = tokio::time::timeout(graceful_timeout, conn_done_rx.recv());
    tokio::pin!(drained);
    loop {
        tokio::select! {
            res = &mut drained => {
                if res.is_err() {
                    log.warning(format!(
                        "Worker (pid:{pid}) graceful timeout reached; closing the remaining connections"
                    ));
                }
                break;
            }
            _ = quit.recv() => quick_exit(&log, pid),
            _ = int.recv() => quick_exit(&log, pid),
            _ = abrt.recv() => std::process::exit(1),
            _ = term.recv() => {}
            _ = usr1.recv() => { let _ = log.reopen(); }
        }
    }
    log.info(format!("Worker exiting (pid: {pid})"));
    0
}

fn quick_exit(log: &Logger, pid: u32) -> ! {
    log.info(format!("Worker exiting (pid: {pid})"));
    std::process::exit(0)
}

async fn heartbeat_loop(hb: Arc<Heartbeat>, period: Duration, master_pid: Pid, log: Logger) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(e) = hb.beat() {
            log.warning(format!("heartbeat: {e}"));
        }
        if getppid() != master_pid {
            log.info(format!(
                "Parent changed, shutting down: worker {}",
                std::process::id()
            ));
            std::process::exit(0);
        }
    }
}

async fn accept_loop(
    listener: Listener,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
    keep_alive: Duration,
) {
    let log = shared.log.clone();
    let backoff = || tokio::time::sleep(Duration::from_millis(100));
    match listener {
        Listener::Tcp(std_listener) => {
            let listener = match tokio::net::TcpListener::from_std(std_listener) {
                Ok(l) => l,
                Err(e) => {
                    log.error(format!("listener: {e}"));
                    return;
                }
            };
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve_connection(
                            stream,
                            Some(peer),
                            Arc::clone(&shared),
                            stop.clone(),
                            done.clone(),
                            keep_alive,
                        ));
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        log.error(format!("accept: {e}"));
                        backoff().await;
                    }
                }
            }
        }
        Listener::Unix(std_listener, _) => {
            let listener = match tokio::net::UnixListener::from_std(std_listener) {
                Ok(l) => l,
                Err(e) => {
                    log.error(format!("listener: {e}"));
                    return;
                }
            };
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_connection(
                            stream,
                            None,
                            Arc::clone(&shared),
                            stop.clone(),
                            done.clone(),
                            keep_alive,
                        ));
                    }
                    Err(e) => {
                        log.error(format!("accept: {e}"));
                        backoff().await;
                    }
                }
            }
        }
    }
}

async fn serve_connection<S>(
    io: S,
    peer: Option<SocketAddr>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
    keep_alive: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let log = shared.log.clone();
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(shared.respond(req, peer).await) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new());
    if keep_alive.is_zero() {
        builder.keep_alive(false);
    } else {
        // hyper starts this timer whenever it waits for a request head, so it is also the
        // idle timeout of a keep-alive connection.
        builder.keep_alive(true).header_read_timeout(keep_alive);
    }
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        res = conn.as_mut() => res,
        stopping = async { stop.wait_for(|stopping| *stopping).await.is_ok() } => {
            let _ = stopping;
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        log.debug(format!("connection: {e}"));
    }
}

impl Shared {
    async fn respond(
        &self,
        mut req: Request<Incoming>,
        peer: Option<SocketAddr>,
    ) -> Response<ResponseBody> {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.max_requests > 0 && n >= self.max_requests;
        if self.max_requests > 0 && n == self.max_requests {
            self.log
                .info("Autorestarting worker after current request.");
            self.limit_reached.notify_one();
        }
        let access = self
            .log
            .access_enabled()
            .then(|| RequestLine::of(&req, peer));
        if let Some(peer) = peer {
            req.extensions_mut().insert(peer);
        }
        #[cfg(feature = "test-hooks")]
        let mut resp = match crate::test_hooks::respond(&req, &self.log).await {
            Some(resp) => resp,
            None => self.handler.call(req).await,
        };
        #[cfg(not(feature = "test-hooks"))]
        let mut resp = self.handler.call(req).await;
        if last {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        #[cfg(feature = "test-hooks")]
        if let Ok(v) = HeaderValue::from_str(&std::process::id().to_string()) {
            resp.headers_mut().insert("x-worker-pid", v);
        }
        if let Some(line) = access {
            self.log.access(&AccessRecord {
                remote: line.remote,
                method: &line.method,
                target: &line.target,
                version: line.version,
                status: resp.status().as_u16(),
                bytes: resp.body().size_hint().exact(),
                referer: line.referer.as_deref(),
                user_agent: line.user_agent.as_deref(),
            });
        }
        resp
    }
}

/// The request fields the access log needs, captured before the handler consumes the request.
struct RequestLine {
    remote: Option<std::net::IpAddr>,
    method: String,
    target: String,
    version: http::Version,
    referer: Option<String>,
    user_agent: Option<String>,
}

impl RequestLine {
    fn of(req: &Request<Incoming>, peer: Option<SocketAddr>) -> RequestLine {
        let header = |name| {
            req.headers()
                .get(name)
                .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        RequestLine {
            remote: peer.map(|p| p.ip()),
            method: req.method().as_str().to_owned(),
            target: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().to_string(), |pq| pq.as_str().to_owned()),
            version: req.version(),
            referer: header(header::REFERER),
            user_agent: header(header::USER_AGENT),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_period_is_a_quarter_of_the_timeout_within_bounds() {
        assert_eq!(heartbeat_period(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(
            heartbeat_period(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert_eq!(
            heartbeat_period(Duration::from_secs(30)),
            Duration::from_secs(1)
        );
        assert_eq!(
            heartbeat_period(Duration::from_millis(10)),
            Duration::from_millis(50)
        );
    }
}
