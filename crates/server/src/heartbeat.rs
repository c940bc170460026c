//! Worker liveness through an unlinked temp file, as gunicorn's WorkerTmp: the master creates it
//! before the fork, both ends keep only the descriptor. The worker stamps the file's mtime with
//! the CLOCK_MONOTONIC time from a runtime task (so a blocked event loop stops beating), and
//! writes its lifecycle state into the first byte (so the master knows when a worker is ready,
//! which gates boot timeouts and the rolling replacement of old workers). The second byte is set
//! by the worker's SIGABRT handler when the worker aborts itself, so the master can say so.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::stat::futimens;
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_gettime};

use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerState {
    Booting = 0,
    Ready = 1,
    Draining = 2,
}

/// Offset of the "aborted itself" byte (0 or absent = no, 1 = yes).
pub(crate) const ABORTED_ITSELF_OFFSET: u64 = 1;

#[derive(Debug)]
pub(crate) struct Heartbeat {
    file: File,
}

/// /dev/shm when it is there: a heartbeat on a disk-backed /tmp can block on a stalled disk
/// (gunicorn's FAQ recommends the same by hand).
pub(crate) fn default_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn monotonic_now() -> Duration {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(Duration::ZERO, Duration::from)
}

impl Heartbeat {
    pub(crate) fn create(dir: &Path) -> Result<Heartbeat, Error> {
        let err = |source: std::io::Error| Error::Heartbeat {
            dir: dir.to_path_buf(),
            source,
        };
        let file = tempfile::tempfile_in(dir).map_err(err)?;
        let hb = Heartbeat { file };
        hb.set_state(WorkerState::Booting).map_err(err)?;
        // mtime 0 = "never beaten"; the boot timeout covers that phase.
        futimens(&hb.file, &TimeSpec::new(0, 0), &TimeSpec::new(0, 0))
            .map_err(|e| err(e.into()))?;
        Ok(hb)
    }

    /// The descriptor, for the worker's signal handler (which may only make raw system calls).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Whether the worker marked the file from its SIGABRT handler: the signal came from the
    /// worker itself (abort()), not from the master or another process.
    pub(crate) fn aborted_itself(&self) -> bool {
        let mut b = [0u8; 1];
        self.file
            .read_exact_at(&mut b, ABORTED_ITSELF_OFFSET)
            .is_ok()
            && b[0] == 1
    }

    pub(crate) fn beat(&self) -> std::io::Result<()> {
        let now = TimeSpec::from(monotonic_now());
        futimens(&self.file, &now, &now).map_err(std::io::Error::from)
    }

    pub(crate) fn set_state(&self, state: WorkerState) -> std::io::Result<()> {
        self.file.write_all_at(&[state as u8], 0)
    }

    pub(crate) fn state(&self) -> WorkerState {
        let mut b = [0u8; 1];
        match self.file.read_exact_at(&mut b, 0) {
            Ok(()) if b[0] == WorkerState::Ready as u8 => WorkerState::Ready,
            Ok(()) if b[0] == WorkerState::Draining as u8 => WorkerState::Draining,
            _ => WorkerState::Booting,
        }
    }

    /// Time since the last beat; `None` if the worker never beat (or the file can't be read).
    pub(crate) fn age(&self) -> Option<Duration> {
        let meta = self.file.metadata().ok()?;
        let secs = u64::try_from(meta.mtime()).ok()?;
        let nanos = u32::try_from(meta.mtime_nsec()).ok()?;
        let stamp = Duration::new(secs, nanos);
        if stamp.is_zero() {
            return None;
        }
        Some(monotonic_now().saturating_sub(stamp))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn state_and_age_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let hb = Heartbeat::create(dir.path()).unwrap();
        assert_eq!(hb.state(), WorkerState::Booting);
        assert_eq!(hb.age(), None);
        hb.beat().unwrap();
        hb.set_state(WorkerState::Ready).unwrap();
        assert_eq!(hb.state(), WorkerState::Ready);
        assert!(!hb.aborted_itself());
        hb.file.write_all_at(&[1], ABORTED_ITSELF_OFFSET).unwrap();
        assert!(hb.aborted_itself());
        assert_eq!(hb.state(), WorkerState::Ready);
        let age = hb.age().unwrap();
        assert!(age < Duration::from_secs(5), "{age:?}");
        // The file is unlinked: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
