//! The per-worker connection cap (gunicorn's `worker_connections`). Every connection holds a
//! permit. When a client arrives at the cap, the worker makes room by closing its quietest
//! connection: the longest-idle keep-alive one (between requests, nothing in flight) if any,
//! else the one whose client has been silent longest in the middle of a head or body (a stalled
//! upload, a slowloris); a connection whose request the server is working on is never chosen.
//! So descriptors never run out and a new client (a health check's `/ping`) is served at once
//! even while every slot is held by stalled clients; until a slot frees, further clients wait in
//! the kernel's listen queue (the other workers accept them meanwhile).
//!
//! The cap is also bounded by the open-file limit: at boot the worker raises its soft
//! RLIMIT_NOFILE towards the hard limit, and keeps a reserve of descriptors for everything that
//! is not a connection (sessions, logs, metrics files).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::logging::Logger;
use crate::wire::{Quiet, Wire};

/// How often "worker_connections reached" may be logged.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How long a client waits for the chosen connection to close before another is chosen.
const RETRY_EVERY: Duration = Duration::from_millis(100);

pub(crate) struct Connections {
    cap: usize,
    permits: Arc<Semaphore>,
    live: Mutex<HashMap<u64, Arc<Wire>>>,
    next_id: AtomicU64,
    warned_at: Mutex<Option<Instant>>,
    log: Logger,
}

/// A connection's place under the cap; dropping it frees the slot.
pub(crate) struct Slot {
    conns: Arc<Connections>,
    id: u64,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.conns.lock().remove(&self.id);
    }
}

impl Connections {
    pub(crate) fn new(cap: usize, log: Logger) -> Arc<Connections> {
        let cap = cap.max(1);
        Arc::new(Connections {
            cap,
            permits: Arc::new(Semaphore::new(cap)),
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            warned_at: Mutex::new(None),
            log,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Wire>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Room for a client that has just been accepted: a free slot, or one made by closing the
    /// quietest connection (retried while the chosen one is still closing or became busy).
    pub(crate) async fn admit(self: &Arc<Self>) -> OwnedSemaphorePermit {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return permit;
        }
        let mut warned = false;
        loop {
            let evicted = self.evict_quietest();
            if !warned {
                self.warn(evicted);
                warned = true;
            }
            let wait = Arc::clone(&self.permits).acquire_owned();
            // The semaphore is never closed.
            if let Ok(Ok(permit)) = tokio::time::timeout(RETRY_EVERY, wait).await {
                return permit;
            }
        }
    }

    /// Registers an accepted connection under its permit.
    pub(crate) fn enter(self: &Arc<Self>, permit: OwnedSemaphorePermit, wire: Arc<Wire>) -> Slot {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, wire);
        Slot {
            conns: Arc::clone(self),
            id,
            _permit: permit,
        }
    }

    fn evict_quietest(&self) -> bool {
        let victim = self
            .lock()
            .values()
            .filter_map(|w| {
                // Idle ones first (their clients lose nothing), then by silence.
                let key = match w.quiet()? {
                    Quiet::Idle(t) => (0, t),
                    Quiet::Owing(t) => (1, t),
                };
                Some((key, Arc::clone(w)))
            })
            .min_by_key(|(key, _)| *key);
        match victim {
            Some((_, wire)) => {
                wire.evict();
                true
            }
            None => false,
        }
    }

    fn warn(&self, evicted: bool) {
        let mut at = self
            .warned_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if at.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        *at = Some(Instant::now());
        let what = if evicted {
            "closing the quietest connection (idle keep-alive first, then a stalled head or body)"
        } else {
            "every connection is busy; new clients wait in the listen queue"
        };
        self.log.warning(format!(
            "worker_connections ({}) reached in worker {}: {what}",
            self.cap,
            std::process::id()
        ));
    }
}

/// Descriptors kept free for what is not a connection: `max(32, limit / 8)`.
fn reserve(limit: u64) -> u64 {
    (limit / 8).max(32)
}

/// Raises the soft open-file limit as far as `wanted` connections need (up to the hard limit)
/// and returns how many connections fit: `wanted`, or fewer (with a warning) when the limit is
/// too low.
pub(crate) fn fit_to_open_file_limit(wanted: usize, log: &Logger) -> usize {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return wanted;
    };
    let open = std::fs::read_dir("/proc/self/fd").map_or(16, |d| d.count() as u64);
    let wanted64 = wanted as u64;
    let need = |limit: u64| wanted64 + open + reserve(limit);
    let mut soft_now = soft;
    if need(soft) > soft && hard > soft {
        let target = need(hard).min(hard);
        if setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
            soft_now = target;
        }
    }
    let room = soft_now.saturating_sub(open + reserve(soft_now)).max(1);
    if room >= wanted64 {
        return wanted;
    }
    log.warning(format!(
        "worker_connections = {wanted} does not fit the open-file limit ({soft_now}, hard \
         {hard}); worker {} holds at most {room} connections (raise LimitNOFILE / ulimit -n)",
        std::process::id()
    ));
    usize::try_from(room).unwrap_or(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_grows_with_the_limit() {
        assert_eq!(reserve(64), 32);
        assert_eq!(reserve(1024), 128);
        assert_eq!(reserve(65536), 8192);
    }
}
