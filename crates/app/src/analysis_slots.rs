//! How many analyses one worker computes at once (`app.analysis_concurrency`), and the lower
//! CPU priority they run at, so that a burst of analyses cannot starve the short requests
//! (status, pages, uploads, ITN) that the same worker and the other workers serve meanwhile.
//!
//! A request that finds every slot taken waits for one, in order of arrival as the OS wakes
//! it: its answer simply comes later (a chat stream keeps sending keep-alive comments). After
//! [`SLOT_WAIT`] it is answered 503 with a message to try again. A waiting request whose
//! client has gone stops waiting.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::ApiError;

/// Longest wait for a slot before 503 (the analysis lock of one session waits as long).
pub(crate) const SLOT_WAIT: Duration = Duration::from_secs(300);

/// How much lower than the worker's own priority analysis threads run (nice values: 0 normal,
/// 19 lowest): under CFS a thread 10 nice levels lower gets about a tenth of the CPU share of
/// the worker's other threads when both want to run, and all of the CPU when nothing else does.
pub(crate) const ANALYSIS_NICE_OFFSET: i32 = 10;

/// The analysis slots of one worker.
#[derive(Debug)]
pub struct AnalysisSlots {
    limit: usize,
    busy: Mutex<usize>,
    freed: Condvar,
}

/// A taken slot, given back on drop (also when the analysis panics).
struct Slot<'a>(&'a AnalysisSlots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut busy = self.0.busy.lock().unwrap_or_else(PoisonError::into_inner);
        *busy = busy.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

impl AnalysisSlots {
    /// `limit` analyses at once (at least one).
    pub fn new(limit: usize) -> Self {
        AnalysisSlots {
            limit: limit.max(1),
            busy: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    fn take(&self, wait: Duration) -> Result<Slot<'_>, ApiError> {
        let deadline = Instant::now() + wait;
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy >= self.limit {
            let now = Instant::now();
            if now >= deadline {
                return Err(ApiError::Unavailable(format!(
                    "this server is busy with other analyses ({} at a time per worker) and none \
                     finished within {} s; please try again in a minute",
                    self.limit,
                    wait.as_secs()
                )));
            }
            if mrpt_table::cancel::cancelled() {
                return Err(ApiError::BadRequest(
                    "the request was abandoned while waiting for an analysis slot".to_string(),
                ));
            }
            // Woken by a freed slot; the slice bounds how late an abandoned wait notices.
            let slice = (deadline - now).min(Duration::from_millis(200));
            busy = self
                .freed
                .wait_timeout(busy, slice)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *busy += 1;
        Ok(Slot(self))
    }

    /// Runs `work` in a slot (waiting up to [`SLOT_WAIT`] for one) on a thread of its own at
    /// lower CPU priority. A thread of its own because an unprivileged thread cannot raise its
    /// priority back: a pooled thread, once lowered, would slow every later request it ran.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> Result<T, ApiError> {
        self.run_within(SLOT_WAIT, work)
    }

    pub(crate) fn run_within<T: Send>(
        &self,
        wait: Duration,
        work: impl FnOnce() -> T + Send,
    ) -> Result<T, ApiError> {
        let _slot = self.take(wait)?;
        let cancel = mrpt_table::cancel::current();
        std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("analysis".to_string())
                .spawn_scoped(scope, move || {
                    lower_this_threads_priority();
                    match cancel {
                        Some(flag) => flag.scope(work),
                        None => work(),
                    }
                })
                .map_err(|e| ApiError::internal(format!("cannot start an analysis thread: {e}")))?;
            worker
                .join()
                .map_err(|_| ApiError::internal("the analysis thread panicked"))
        })
    }
}

/// Lowers the calling thread's CPU priority by [`ANALYSIS_NICE_OFFSET`] (on Linux
/// `setpriority` with a thread id changes that thread only). Failure only costs the priority,
/// never the analysis.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Ok(now) = rustix::process::getpriority_process(Some(tid)) {
            let lower = (now + ANALYSIS_NICE_OFFSET).min(19);
            let _ = rustix::process::setpriority_process(Some(tid), lower);
        }
    }
}

/// The nice value of the calling thread (tests).
#[cfg(all(test, target_os = "linux"))]
fn this_threads_nice() -> i32 {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(i32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn at_most_limit_run_at_once_and_the_rest_wait_their_turn() {
        let slots = Arc::new(AnalysisSlots::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (slots, running, most) = (slots.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    slots.run(|| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().is_ok_and(|r| r.is_ok()));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_wait_past_its_limit_is_answered_unavailable() {
        let slots = Arc::new(AnalysisSlots::new(1));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, is_started) = std::sync::mpsc::channel::<()>();
        let holder = {
            let slots = slots.clone();
            std::thread::spawn(move || {
                slots.run(move || {
                    let _ = started.send(());
                    let _ = hold.recv();
                })
            })
        };
        assert!(is_started.recv().is_ok());
        let waited = slots.run_within(Duration::from_millis(50), || ());
        match waited {
            Err(ApiError::Unavailable(message)) => assert!(message.contains("try again")),
            other => panic!("expected 503, got {other:?}"),
        }
        let _ = release.send(());
        assert!(holder.join().is_ok_and(|r| r.is_ok()));
        // The slot is free again.
        assert!(slots.run_within(Duration::from_millis(50), || ()).is_ok());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_work_runs_at_lower_priority_and_the_caller_keeps_its_own() {
        let slots = AnalysisSlots::new(1);
        let before = this_threads_nice();
        let inside = slots.run(this_threads_nice);
        let want = (before + ANALYSIS_NICE_OFFSET).min(19);
        assert_eq!(inside.ok(), Some(want));
        assert_eq!(this_threads_nice(), before);
    }

    #[test]
    fn the_work_sees_its_requests_cancel_flag() {
        let slots = AnalysisSlots::new(1);
        let flag = mrpt_table::cancel::CancelFlag::new();
        flag.cancel();
        let seen = flag.scope(|| slots.run(mrpt_table::cancel::cancelled));
        // A cancelled caller either stops waiting or its work sees the flag.
        assert!(matches!(seen, Ok(true) | Err(ApiError::BadRequest(_))));
    }
}
