//! Cooperative cancellation of the CPU work of one request. The host runs a request's blocking
//! work inside [`CancelFlag::scope`] and raises the flag when nobody waits for the answer any
//! more (the client closed the connection); long loops in the readers and the analysis ask
//! [`cancelled`] every few thousand steps and stop with their crate's `Cancelled` error. Outside
//! a scope, [`cancelled`] is always false, so command-line tools and tests never stop early.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag shared between the host (which raises it) and the thread doing the work.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

thread_local! {
    static CURRENT: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

impl CancelFlag {
    /// A lowered flag (nothing cancelled yet).
    pub fn new() -> Self {
        CancelFlag::default()
    }

    /// Asks the work to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelFlag::cancel`] has been called on this flag or a clone of it.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Runs `work` on this thread with this flag as the one [`cancelled`] reads (the previous
    /// one is restored afterwards, also when `work` panics).
    pub fn scope<T>(&self, work: impl FnOnce() -> T) -> T {
        struct Restore(Option<Arc<AtomicBool>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.0.clone()));
        let _restore = Restore(previous);
        work()
    }
}

/// The flag of the work running on this thread, to hand to a thread it starts for part of the
/// same work (`None` outside a scope).
pub fn current() -> Option<CancelFlag> {
    CURRENT.with(|c| c.borrow().clone().map(CancelFlag))
}

/// Whether the work running on this thread has been cancelled.
pub fn cancelled() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_scoped_thread_sees_its_flag() {
        assert!(!cancelled());
        let flag = CancelFlag::new();
        flag.scope(|| {
            assert!(!cancelled());
            flag.cancel();
            assert!(cancelled());
            let other = std::thread::spawn(cancelled).join();
            assert!(matches!(other, Ok(false)));
            CancelFlag::new().scope(|| assert!(!cancelled()));
            assert!(cancelled());
        });
        assert!(!cancelled());
    }
}
