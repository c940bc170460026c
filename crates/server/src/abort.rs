//! Who sent a worker its SIGABRT. The master sends one on a heartbeat timeout, but a worker also
//! raises SIGABRT itself when it aborts (an allocation failure, a stack overflow, a panic that
//! cannot unwind, a fault-injection point): abort() runs the handlers once, then dies of the
//! signal. tokio's signal stream says only that the signal arrived, so a second action on the same
//! registry (registered first, so it runs before tokio's wakes the event loop) records the
//! sender's pid from `siginfo_t`, and when the worker is the sender marks its heartbeat file, so
//! the master, which reaps a worker killed by SIGABRT, can say the worker aborted itself.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::libc;

use crate::heartbeat::ABORTED_ITSELF_OFFSET;

/// Pid of the last SIGABRT's sender; 0 = none yet.
static SENDER: AtomicI32 = AtomicI32::new(0);
/// The heartbeat file's descriptor; -1 = not set.
static HEARTBEAT_FD: AtomicI32 = AtomicI32::new(-1);

/// Who sent the SIGABRT the worker received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The master (its heartbeat timeout).
    Master,
    /// The worker itself: abort() is under way on some thread and the process is about to die.
    Itself,
    /// Another process (`kill -ABRT`), by pid.
    Other(i32),
}

/// Installs the recording action. Call before tokio's SIGABRT stream is created.
pub(crate) fn record_senders(heartbeat_fd: RawFd) -> std::io::Result<()> {
    HEARTBEAT_FD.store(heartbeat_fd, Ordering::SeqCst);
    // SAFETY: the action only makes async-signal-safe calls (getpid, pwrite) and atomic stores;
    // it allocates nothing and takes no lock.
    unsafe { signal_hook_registry::register_sigaction(libc::SIGABRT, on_sigabrt) }?;
    Ok(())
}

/// Runs inside the signal handler.
fn on_sigabrt(info: &libc::siginfo_t) {
    // SAFETY: for a signal sent by kill/tgkill (abort() uses tgkill) si_pid is set.
    let sender = unsafe { info.si_pid() };
    SENDER.store(sender, Ordering::SeqCst);
    // SAFETY: getpid has no preconditions.
    if sender != unsafe { libc::getpid() } {
        return;
    }
    let fd = HEARTBEAT_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let mark = [1u8];
        // SAFETY: `mark` outlives the call; a failed write only loses the note.
        let _ = unsafe {
            libc::pwrite(
                fd,
                mark.as_ptr().cast(),
                1,
                ABORTED_ITSELF_OFFSET as libc::off_t,
            )
        };
    }
}

/// The sender of the SIGABRT just received.
pub(crate) fn origin(master: i32) -> Origin {
    let sender = SENDER.load(Ordering::SeqCst);
    if sender == master {
        Origin::Master
    } else if u32::try_from(sender).is_ok_and(|s| s == std::process::id()) {
        Origin::Itself
    } else {
        Origin::Other(sender)
    }
}
