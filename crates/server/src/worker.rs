//! One worker process: after the fork it builds its own current-thread tokio runtime, builds the
//! handler, reports ready through the heartbeat file and serves HTTP/1.1 (keep-alive) with hyper
//! on the inherited listeners until it is told to stop.
//!
//! TERM (or reaching max_requests) = stop accepting, let in-flight requests finish within the
//! graceful timeout, exit 0. QUIT/INT = exit now. ABRT from the master (heartbeat timeout) or
//! another process = exit 1; an ABRT the worker raised itself (abort()) is left to kill it.
//! USR1 = reopen the logs. The master's death kills the worker (PR_SET_PDEATHSIG), and the
//! heartbeat task also compares getppid() with the master's pid in case the master died before
//! the death signal was armed.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc, watch};

use crate::bind::Listener;
use crate::body::{BodyLimits, RequestBody};
use crate::conns::{self, Connections, Slot};
use crate::heartbeat::{Heartbeat, WorkerState};
use crate::limits::{self, ClientInfo, Limits, TrustedProxies};
use crate::logging::{AccessRecord, Logger};
use crate::metrics::{self, WorkerMetrics};
use crate::wire::{self, Quiet, Sniffed, Timed, Wire};
use crate::{EXIT_WORKER_BOOT_ERROR, Handler, HandlerFactory, ResponseBody, full_body};

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
    pub header_timeout: Duration,
    pub body: BodyLimits,
    pub worker_connections: usize,
    pub limits: Limits,
    pub trusted: TrustedProxies,
    pub metrics: Option<WorkerMetrics>,
}

const BOOT_ERROR: i32 = EXIT_WORKER_BOOT_ERROR as i32;
const WORKER_THREAD_STACK: usize = 8 << 20;

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
        // spawn_blocking threads get the main thread's usual 8 MiB rather than tokio's 2 MiB:
        // the app parses and analyses there, and code that runs fine on a main thread must not
        // overflow (and abort the worker) because it was moved off the event loop.
        .thread_stack_size(WORKER_THREAD_STACK)
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
    limits: Limits,
    trusted: TrustedProxies,
    metrics: Option<Arc<WorkerMetrics>>,
    body: BodyLimits,
    conns: Arc<Connections>,
    /// Set when the worker starts draining: every response then says Connection: close.
    draining: std::sync::atomic::AtomicBool,
}

/// How long an idle keep-alive connection is left open once the worker drains, so a client that
/// is about to send its next request gets an answer (with Connection: close) instead of a
/// connection closed under it.
const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);

/// hyper's header count limit when none is set (`http1::Builder::max_headers`: "Default is 100").
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// How a connection is set up (hyper's builder options and our timers).
#[derive(Clone, Copy)]
struct ConnOptions {
    keep_alive: Duration,
    header_timeout: Duration,
    limits: Limits,
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
        header_timeout,
        body,
        worker_connections,
        limits,
        trusted,
        metrics,
    } = ctx;
    let conn_options = ConnOptions {
        keep_alive,
        header_timeout,
        limits,
    };
    let metrics = metrics.map(Arc::new);
    let pid = std::process::id();
    // Before tokio's own SIGABRT action, so the sender is known when the stream wakes us.
    if let Err(e) = crate::abort::record_senders(heartbeat.raw_fd()) {
        log.error(format!("Worker failed to boot: SIGABRT handler: {e}"));
        return BOOT_ERROR;
    }
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
        limits,
        trusted,
        metrics: metrics.clone(),
        body,
        conns: Connections::new(
            conns::fit_to_open_file_limit(worker_connections, &log),
            log.clone(),
        ),
        draining: std::sync::atomic::AtomicBool::new(false),
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
            conn_options,
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
    if let Some(m) = &metrics {
        let m = Arc::clone(m);
        let log = log.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(metrics::FLUSH_EVERY);
            loop {
                interval.tick().await;
                if let Err(e) = m.flush() {
                    log.debug(format!("metrics: {e}"));
                }
            }
        });
    }

    loop {
        tokio::select! {
            _ = term.recv() => break,
            () = shared.limit_reached.notified() => break,
            _ = quit.recv() => quick_exit(&log, pid),
            _ = int.recv() => quick_exit(&log, pid),
            _ = abrt.recv() => on_abort_signal(&log, pid, master_pid),
            _ = usr1.recv() => {
                if let Err(e) = log.reopen() {
                    log.error(format!("Could not reopen the logs: {e}"));
                }
            }
        }
    }

    let _ = heartbeat.set_state(WorkerState::Draining);
    shared.draining.store(true, Ordering::SeqCst);
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
            _ = abrt.recv() => on_abort_signal(&log, pid, master_pid),
            _ = term.recv() => {}
            _ = usr1.recv() => { let _ = log.reopen(); }
        }
    }
    if let Some(m) = &metrics
        && let Err(e) = m.flush()
    {
        log.warning(format!("metrics: {e}"));
    }
    log.info(format!("Worker exiting (pid: {pid})"));
    0
}

/// SIGABRT: from the master (heartbeat timeout) or another process, log who sent it and exit 1
/// (gunicorn's worker exits 1 too). From the worker itself, abort() is under way on another
/// thread and the process dies of the signal in a moment; the master reports that.
fn on_abort_signal(log: &Logger, pid: u32, master: Pid) {
    match crate::abort::origin(master.as_raw()) {
        crate::abort::Origin::Master => {
            log.critical(format!(
                "Worker (pid:{pid}) aborted by the master (heartbeat timeout)"
            ));
            std::process::exit(1);
        }
        crate::abort::Origin::Other(sender) => {
            log.critical(format!(
                "Worker (pid:{pid}) was sent SIGABRT by pid {sender} (not the master); exiting"
            ));
            std::process::exit(1);
        }
        crate::abort::Origin::Itself => {}
    }
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
    options: ConnOptions,
) {
    let log = shared.log.clone();
    let backoff = || tokio::time::sleep(Duration::from_millis(100));
    let serve = |peer, permit| Accepted {
        peer,
        permit,
        shared: Arc::clone(&shared),
        stop: stop.clone(),
        done: done.clone(),
        options,
    };
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
                        let permit = shared.conns.admit().await;
                        serve(Some(peer), permit).spawn(stream);
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
                        let permit = shared.conns.admit().await;
                        serve(None, permit).spawn(stream);
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

/// Resolves once the worker drains (or the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// The answer to an HTTP/2 prior-knowledge preface (hyper would close without a word).
fn h2_refusal() -> Vec<u8> {
    let text = "This server speaks HTTP/1.1 only; HTTP/2 needs a proxy in front of it.\n";
    format!(
        "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
    .into_bytes()
}

/// A connection just accepted, with what serving it needs.
struct Accepted {
    peer: Option<SocketAddr>,
    permit: tokio::sync::OwnedSemaphorePermit,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
    options: ConnOptions,
}

impl Accepted {
    fn spawn<S>(self, io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let wire = Wire::new();
        let slot = self.shared.conns.enter(self.permit, Arc::clone(&wire));
        tokio::spawn(serve_connection(
            io,
            self.peer,
            wire,
            slot,
            self.shared,
            self.stop,
            self.done,
            self.options,
        ));
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection<S>(
    io: S,
    peer: Option<SocketAddr>,
    wire: Arc<Wire>,
    _slot: Slot,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
    options: ConnOptions,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let log = shared.log.clone();
    let grace = DRAIN_IDLE_GRACE.min(options.keep_alive);
    let mut io = Timed::new(io, Arc::clone(&wire));
    let slow_head = wire.overdue(options.header_timeout);
    tokio::pin!(slow_head);

    // The first bytes: HTTP/2 prior knowledge is refused in words, the rest goes to hyper. Silence
    // is bounded like hyper's wait for a first head (keep-alive, else the header timeout), and a
    // draining worker gives a silent connection only the drain grace.
    let first_wait = if options.keep_alive.is_zero() {
        options.header_timeout
    } else {
        options.keep_alive
    };
    let sniffed = {
        let sniff = tokio::time::timeout(first_wait, wire::sniff(&mut io));
        tokio::pin!(sniff);
        tokio::select! {
            r = &mut sniff => r,
            () = &mut slow_head => return,
            () = wire.evicted() => return,
            () = stopped(&mut stop) => {
                tokio::select! {
                    r = &mut sniff => r,
                    () = &mut slow_head => return,
                    () = tokio::time::sleep(grace) => return,
                }
            }
        }
    };
    match sniffed {
        Ok(Ok(Sniffed::Http1(seen))) => io.replay(seen),
        Ok(Ok(Sniffed::Http2)) => {
            log.debug("Refused an HTTP/2 prior-knowledge connection (505)");
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                let _ = io.write_all(&h2_refusal()).await;
                let _ = io.shutdown().await;
            })
            .await;
            return;
        }
        Ok(Err(_)) | Err(_) => return,
    }

    let service = {
        let wire = Arc::clone(&wire);
        service_fn(move |req| {
            let shared = Arc::clone(&shared);
            let wire = Arc::clone(&wire);
            async move { Ok::<_, Infallible>(shared.respond(req, peer, &wire).await) }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .max_buf_size(options.limits.hyper_buf_size());
    // hyper answers 431 itself past this count, exactly gunicorn's rule (Host included). At
    // hyper's own default the parser keeps its header slots on the stack; naming any count
    // (even the same) makes it fill a fresh array of that many slots for every request head.
    if options.limits.fields != HYPER_DEFAULT_MAX_HEADERS {
        builder.max_headers(options.limits.fields);
    }
    // hyper starts this timer whenever it waits for a request head, so with keep-alive it is
    // the idle timeout; a head that has started but not finished is the Wire's business.
    if options.keep_alive.is_zero() {
        builder
            .keep_alive(false)
            .header_read_timeout(options.header_timeout);
    } else {
        builder
            .keep_alive(true)
            .header_read_timeout(options.keep_alive);
    }
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    // Responses carry Connection: close once the worker drains, so a busy connection ends by
    // itself after its next answer; an idle one gets a short grace before hyper closes it. An
    // evicted connection (worker_connections reached) closes once nothing is in flight.
    let grace_over = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(grace_over);
    let (mut stopping, mut closing) = (false, false);
    let result = loop {
        tokio::select! {
            res = conn.as_mut() => break res,
            () = &mut slow_head => {
                log.debug(format!(
                    "Closing a connection whose request head took over {} s",
                    options.header_timeout.as_secs()
                ));
                return;
            }
            () = wire.evicted(), if !closing => match wire.quiet() {
                Some(Quiet::Idle(_)) => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                Some(Quiet::Owing(_)) => {
                    log.debug("Closing a stalled connection to make room (worker_connections)");
                    return;
                }
                // The server is answering it now: another connection will be chosen.
                None => {}
            },
            () = stopped(&mut stop), if !stopping => {
                stopping = true;
                grace_over
                    .as_mut()
                    .reset(tokio::time::Instant::now() + grace);
            }
            () = &mut grace_over, if stopping && !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    };
    if let Err(e) = result {
        log.debug(format!("connection: {e}"));
    }
}

impl Shared {
    async fn respond(
        &self,
        req: Request<Incoming>,
        peer: Option<SocketAddr>,
        wire: &Wire,
    ) -> Response<ResponseBody> {
        wire.request_started();
        let resp = self.respond_inner(req, peer, wire).await;
        wire.request_finished();
        resp
    }

    async fn respond_inner(
        &self,
        req: Request<Incoming>,
        peer: Option<SocketAddr>,
        wire: &Wire,
    ) -> Response<ResponseBody> {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.max_requests > 0 && n >= self.max_requests;
        if self.max_requests > 0 && n == self.max_requests {
            self.log
                .info("Autorestarting worker after current request.");
            self.limit_reached.notify_one();
        }
        let started = Instant::now();
        if let Some(m) = &self.metrics {
            m.started();
        }
        let fallback = ClientInfo {
            peer,
            client: peer.map(|p| p.ip()),
            https: false,
        };
        let expect_continue = req
            .headers()
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let (parts, incoming) = req.into_parts();
        let (body, body_outcome) = RequestBody::new(incoming, self.body, expect_continue);
        let mut req = Request::from_parts(parts, body);
        let early = self
            .limits
            .check(&req)
            .or_else(|| limits::check_message(&req));
        let (info, early) = match early {
            Some(resp) => (fallback, Some(resp)),
            None => match limits::resolve_client(&mut req, peer, &self.trusted) {
                Ok(info) => (info, None),
                Err(reason) => (
                    fallback,
                    Some(limits::error_page(http::StatusCode::BAD_REQUEST, reason)),
                ),
            },
        };
        let access = self
            .log
            .access_enabled()
            .then(|| RequestLine::of(&req, info.client));
        // Borrowed for the handlers' static route templates: labelling a request allocates nothing.
        let mut route: Option<Cow<'static, str>> = None;
        let mut resp = match early {
            Some(resp) => {
                route = Some(Cow::Borrowed("invalid"));
                // Refused before the handler: the answer closes the connection, nothing to drain.
                RequestBody::abandon(req.into_body());
                resp
            }
            None => {
                if let Some(client) = info.client {
                    let port = peer.filter(|p| p.ip() == client).map_or(0, |p| p.port());
                    req.extensions_mut().insert(SocketAddr::new(client, port));
                }
                req.extensions_mut().insert(info);
                self.dispatch(req, &mut route).await
            }
        };
        // What the body and the framing did while the handler ran wins over its answer.
        if let Some(why) = wire.violation() {
            resp = limits::error_page(StatusCode::BAD_REQUEST, why);
        } else if body_outcome.timed_out() {
            resp = limits::error_page(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "The request body did not arrive in time (body_timeout {} s, body_min_rate {} \
                     bytes/s).",
                    self.body.timeout.as_secs(),
                    self.body.min_rate
                ),
            );
        } else if body_outcome.abandoned() {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let report = resp
            .extensions_mut()
            .remove::<crate::HandlerReport>()
            .unwrap_or_default();
        if let Some(r) = report.route {
            route = Some(r);
        }
        // The handler's own failures reach the error log, never the client.
        if let Some(e) = &report.error {
            self.log.error(format_args!(
                "{} {}: {}",
                route.as_deref().unwrap_or("other"),
                resp.status().as_u16(),
                e.replace(['\r', '\n'], " ")
            ));
        }
        if let Some(m) = &self.metrics {
            m.finished(
                route.as_deref().unwrap_or("other"),
                resp.status().as_u16(),
                started.elapsed().as_secs_f64(),
                &report.metrics,
            );
        }
        if last || self.draining.load(Ordering::Relaxed) {
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

impl Shared {
    /// `/metrics` when enabled, the test hooks when built in, else the application.
    async fn dispatch(
        &self,
        req: Request<RequestBody>,
        route: &mut Option<Cow<'static, str>>,
    ) -> Response<ResponseBody> {
        if let Some(m) = &self.metrics
            && req.uri().path() == "/metrics"
            && (req.method() == http::Method::GET || req.method() == http::Method::HEAD)
        {
            *route = Some(Cow::Borrowed("/metrics"));
            let mut resp = Response::new(full_body(m.render_all()));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return resp;
        }
        #[cfg(feature = "test-hooks")]
        if req.uri().path().starts_with("/_test/") {
            *route = Some(Cow::Owned(req.uri().path().to_owned()));
            return crate::test_hooks::respond(req, &self.log).await;
        }
        self.handler.call(req).await
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
    fn of(req: &Request<RequestBody>, client: Option<std::net::IpAddr>) -> RequestLine {
        let header = |name| {
            req.headers()
                .get(name)
                .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        RequestLine {
            remote: client,
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
