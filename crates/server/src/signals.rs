//! The master's signals, read synchronously from a signalfd: no handler runs at interrupt time, so
//! nothing async-signal-unsafe can happen, and signals are read in arrival order.

use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::Error;

/// What an operator asks of the master, one per signal (gunicorn's mapping, not nginx's:
/// TERM is graceful, INT and QUIT are quick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// HUP: re-read the configuration and replace the workers.
    Reload,
    /// TERM: stop accepting, let in-flight requests finish within the graceful timeout.
    GracefulStop,
    /// INT, QUIT: stop now.
    QuickStop,
    /// TTIN: one worker more.
    IncWorkers,
    /// TTOU: one worker fewer (never below one).
    DecWorkers,
    /// USR1: reopen the log files in the master and every worker.
    ReopenLogs,
    /// CHLD: reap exited workers (and respawn them).
    ChildExited,
    /// USR2: binary upgrade (not supported yet; logged and ignored).
    Upgrade,
    /// WINCH: meaningful only for daemonized gunicorn; ignored.
    Winch,
}

impl Intent {
    fn from_signal(sig: Signal) -> Option<Intent> {
        Some(match sig {
            Signal::SIGHUP => Intent::Reload,
            Signal::SIGTERM => Intent::GracefulStop,
            Signal::SIGINT | Signal::SIGQUIT => Intent::QuickStop,
            Signal::SIGTTIN => Intent::IncWorkers,
            Signal::SIGTTOU => Intent::DecWorkers,
            Signal::SIGUSR1 => Intent::ReopenLogs,
            Signal::SIGCHLD => Intent::ChildExited,
            Signal::SIGUSR2 => Intent::Upgrade,
            Signal::SIGWINCH => Intent::Winch,
            _ => return None,
        })
    }
}

const HANDLED: [Signal; 10] = [
    Signal::SIGHUP,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

/// Blocks the handled signals (they queue on the fd instead) and remembers the previous mask,
/// which each worker restores after the fork.
pub(crate) struct SignalSource {
    fd: SignalFd,
    previous_mask: SigSet,
}

impl SignalSource {
    pub(crate) fn install() -> Result<SignalSource, Error> {
        let mut set = SigSet::empty();
        for s in HANDLED {
            set.add(s);
        }
        let mut previous_mask = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut previous_mask))
            .map_err(Error::Signals)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(Error::Signals)?;
        Ok(SignalSource { fd, previous_mask })
    }

    /// Waits up to `timeout` for signals and returns every queued one, in arrival order, with the
    /// signal's name for the log.
    pub(crate) fn wait(&self, timeout: Duration) -> Vec<(Intent, &'static str)> {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        // EINTR or any other poll error: fall through and drain what is there.
        let _ = poll(&mut fds, PollTimeout::from(ms));
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            if let Some(intent) = Intent::from_signal(sig) {
                out.push((intent, signal_name(sig)));
            }
        }
        out
    }

    /// The mask the process had before we blocked our signals (an exec'd child must get it back:
    /// the signal mask survives exec).
    pub(crate) fn previous_mask(&self) -> SigSet {
        self.previous_mask
    }

    /// In a freshly forked worker: close the fd and unblock, so tokio's handlers see the signals.
    pub(crate) fn release_in_child(self) {
        let previous = self.previous_mask;
        drop(self.fd);
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
    }
}

fn signal_name(sig: Signal) -> &'static str {
    match sig {
        Signal::SIGHUP => "hup",
        Signal::SIGTERM => "term",
        Signal::SIGINT => "int",
        Signal::SIGQUIT => "quit",
        Signal::SIGTTIN => "ttin",
        Signal::SIGTTOU => "ttou",
        Signal::SIGUSR1 => "usr1",
        Signal::SIGUSR2 => "usr2",
        Signal::SIGWINCH => "winch",
        Signal::SIGCHLD => "chld",
        _ => "other",
    }
}
