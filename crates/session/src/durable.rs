//! Crash-safe file primitives: atomic replacement, directory fsync, and flock-based locks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::id::random_hex;

/// Prefix of temp files; nothing with it is ever evidence of state.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Replaces `path` with `bytes` so that a reader (or a crash) sees either the old or the new
/// content, never a mix: temp file in the same directory, fsync, rename, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)
        .map_err(Error::io("write", &file.temp))?;
    file.commit()
}

/// fsync a directory so that renames and creations inside it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync directory", dir))
}

pub(crate) fn parent(path: &Path) -> Result<&Path> {
    path.parent().ok_or_else(|| Error::Io {
        op: "find parent of",
        path: path.to_owned(),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })
}

/// A file that replaces its target only on [`AtomicFile::commit`]; dropping it uncommitted
/// removes the temp file and leaves the target untouched.
pub struct AtomicFile {
    file: File,
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
    /// Crash point between the fsync of the temp file and the rename (see `fault.rs`).
    fault: Option<&'static str>,
}

impl AtomicFile {
    pub(crate) fn create(target: &Path) -> Result<AtomicFile> {
        let dir = parent(target)?;
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file");
        let temp = dir.join(format!("{TEMP_PREFIX}{name}-{}", random_hex::<8>()?));
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&temp)
            .map_err(Error::io("create", &temp))?;
        Ok(AtomicFile {
            file,
            temp,
            target: target.to_owned(),
            committed: false,
            fault: None,
        })
    }

    /// Names the crash point reached after the fsync, just before the rename.
    pub(crate) fn with_fault_point(mut self, point: &'static str) -> AtomicFile {
        self.fault = Some(point);
        self
    }

    /// fsync, rename over the target, fsync the directory.
    pub fn commit(mut self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(Error::io("fsync", &self.temp))?;
        if let Some(point) = self.fault {
            crate::fault::point(point);
        }
        fs::rename(&self.temp, &self.target)
            .map_err(Error::io("rename into place", &self.target))?;
        self.committed = true;
        sync_dir(parent(&self.target)?)
    }

    /// The temporary file to write into; nothing is visible at the target until `commit`.
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a leftover temp file is ignored by every reader anyway.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// How long a manifest read-modify-write waits for the session lock (held for milliseconds by a
/// live holder) before answering busy.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(30);

/// An exclusive flock on a lock file. The kernel drops it when the holder closes the file or
/// dies, so a killed worker never wedges a session.
pub(crate) struct LockGuard {
    file: File,
}

impl LockGuard {
    fn open(path: &Path) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(Error::io("open lock file", path))
    }

    /// Polls until the lock is ours; after [`LOCK_WAIT`] the session is [`Error::Busy`]. Never a
    /// blocking `flock`: on NFS the kernel re-polls a blocked waiter only every few seconds (up
    /// to 30 s), so the wake-up latency would be the kernel's, not ours.
    pub(crate) fn acquire(path: &Path) -> Result<LockGuard> {
        Self::acquire_within(path, LOCK_WAIT)?.ok_or_else(|| {
            Error::Busy(
                path.parent()
                    .and_then(Path::file_name)
                    .and_then(|n| n.to_str())
                    .unwrap_or("?")
                    .to_owned(),
            )
        })
    }

    /// Polls until the lock is ours or `wait` has passed (`Ok(None)`).
    pub(crate) fn acquire_within(path: &Path, wait: Duration) -> Result<Option<LockGuard>> {
        let file = Self::open(path)?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(5);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(LockGuard { file })),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => return Err(Error::io("lock", path)(e)),
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

impl LockGuard {
    /// The lock file itself (a small state file may live in it, read and written under the lock).
    pub(crate) fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Closing the file releases the flock as well; unlocking first just makes it prompt.
        let _ = self.file.unlock();
    }
}

/// True for an error that means "this file is gone": not found, or ESTALE (NFS: another client
/// removed or replaced it after we looked it up). Callers treat both as vanished and retry from
/// the manifest.
pub(crate) fn vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || stale(e)
}

/// ESTALE: the NFS file handle no longer names a file on the server.
pub(crate) fn stale(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::errno::Errno::ESTALE as i32)
}

/// NFS "silly rename" files (`.nfsXXXX`): a file unlinked while some process on that client still
/// has it open. The client removes it on the last close; nobody else may.
pub(crate) fn is_silly_rename(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with(".nfs"))
}

/// Best-effort removal of a tree after a commit: what cannot be removed (an `.nfs*` file held
/// open by a reader on another client, a directory that is therefore not empty) is left for a
/// later garbage collection. Never fails: the commit it follows already happened.
pub(crate) fn remove_best_effort(path: &Path) {
    if let Err(e) = remove_any(path) {
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                if !is_silly_rename(&entry.file_name()) {
                    remove_best_effort(&entry.path());
                }
            }
            if fs::remove_dir(path).is_ok() {
                return;
            }
        }
        log_cleanup("remove", path, &e);
    }
}

/// A cleanup step that failed after its commit: reported on stderr (the worker's error log),
/// never to the client.
pub(crate) fn log_cleanup(what: &str, path: &Path, e: &dyn std::fmt::Display) {
    eprintln!(
        "[mrpt-session] cleanup after commit: {what} {}: {e} (left for the next collection)",
        path.display()
    );
}

/// Removes a file or directory tree if it exists.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if vanished(&e) => return Ok(()),
        Err(e) => return Err(Error::io("inspect", path)(e)),
    };
    let removed = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if vanished(&e) => Ok(()),
        Err(e) => Err(Error::io("remove", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn dropped_atomic_file_keeps_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write_atomic(&target, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn lock_excludes_a_second_open_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let held = LockGuard::acquire(&path).unwrap();
        assert!(
            LockGuard::acquire_within(&path, Duration::from_millis(30))
                .unwrap()
                .is_none()
        );
        drop(held);
        assert!(
            LockGuard::acquire_within(&path, Duration::from_secs(5))
                .unwrap()
                .is_some()
        );
    }
}
