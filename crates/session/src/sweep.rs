//! Removing sessions nobody uses any more, so `instance/uploads/` does not grow without bound.
//!
//! - **Idle** means no write: the newest modification time of the entries in the session folder
//!   (the manifest, the conversation, `visualizations/`, `exports/`, `.staging/`, `.data/`,
//!   mirrors...; the lock files excepted, since opening a lock creates it). Reads (status polls,
//!   downloads) leave no trace and do not count: the status route stays a pure read.
//! - **Empty** sessions (no upload, no conversation: minted and never used, or cleared) have
//!   their own, shorter limit.
//! - A session is removed only while its `.lock` and `.analysis.lock` are both free (taken
//!   without waiting; a busy session is skipped until the next sweep), after checking again
//!   under those locks that it is still idle. Removal is one `rename` of the folder to
//!   `uploads/.gc-<id>-<random>` (from that instant the id is unknown to every worker), then
//!   deleting that tree; a sweeper that dies half-way leaves a `.gc-*` tree that the next sweep
//!   deletes.
//! - One process sweeps at a time: `uploads/.sweep.lock` is flocked for the whole sweep, and
//!   holds the start time of the last sweep, so [`Store::sweep_if_due`] (what every worker calls
//!   now and then) sweeps at most once per interval across all processes and never waits.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::durable::{LockGuard, remove_any, sync_dir};
use crate::error::{Error, Result};
use crate::id::{SessionId, random_hex};
use crate::manifest::Manifest;
use crate::store::{ANALYSIS_LOCK, LOCK, Store};

const SWEEP_LOCK: &str = ".sweep.lock";
const GC_PREFIX: &str = ".gc-";

/// When a session counts as abandoned. `None`: never.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepPolicy {
    /// A session with data (or a conversation) this long without a write is removed.
    pub idle: Option<Duration>,
    /// A session without data and without a conversation this long without a write is removed.
    pub empty: Option<Duration>,
}

/// What a sweep did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Session folders looked at.
    pub sessions: usize,
    /// Idle sessions with data removed.
    pub removed_idle: usize,
    /// Empty sessions removed.
    pub removed_empty: usize,
    /// Sessions left alone because a request held one of their locks.
    pub busy: usize,
    /// Bytes in the removed folders.
    pub bytes_freed: u64,
    /// Leftovers of an interrupted sweep removed.
    pub debris: usize,
    /// Chunked uploads nobody finished, removed from sessions that stay.
    pub abandoned_uploads: usize,
    /// Nothing was removed: the report says what would have been.
    pub dry_run: bool,
    /// Time the sweep took, ms.
    pub elapsed_ms: u64,
}

impl Store {
    /// Sweeps now (the `prefork sessions gc` command). Waits at most `wait` for another
    /// process' sweep to finish; `Ok(None)` when it was still running.
    pub fn sweep(
        &self,
        policy: &SweepPolicy,
        dry_run: bool,
        wait: Duration,
    ) -> Result<Option<SweepReport>> {
        let path = self.uploads.join(SWEEP_LOCK);
        let Some(mut lock) = SweepLock::acquire(&path, wait)? else {
            return Ok(None);
        };
        if !dry_run {
            lock.stamp(now_ms())?;
        }
        self.sweep_locked(policy, dry_run).map(Some)
    }

    /// The automatic sweep, called by every worker now and then: sweeps when no other process
    /// is sweeping and the last sweep by any process started at least `every` ago; otherwise
    /// returns `Ok(None)` at once. Never waits for a lock.
    pub fn sweep_if_due(
        &self,
        policy: &SweepPolicy,
        every: Duration,
    ) -> Result<Option<SweepReport>> {
        let path = self.uploads.join(SWEEP_LOCK);
        let Some(mut lock) = SweepLock::acquire(&path, Duration::ZERO)? else {
            return Ok(None);
        };
        let now = now_ms();
        let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        if let Some(last) = lock.last()?
            && last <= now
            && now - last < every_ms
        {
            return Ok(None);
        }
        // Stamped first: a sweep that crashes the process is not retried in a loop.
        lock.stamp(now)?;
        self.sweep_locked(policy, false).map(Some)
    }

    fn sweep_locked(&self, policy: &SweepPolicy, dry_run: bool) -> Result<SweepReport> {
        let started = Instant::now();
        let mut report = SweepReport {
            dry_run,
            ..SweepReport::default()
        };
        let entries = fs::read_dir(&self.uploads).map_err(Error::io("list", &self.uploads))?;
        for entry in entries {
            let entry = entry.map_err(Error::io("list", &self.uploads))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(GC_PREFIX) {
                // Only one sweeper runs, so this is a dead sweeper's half-removed session.
                if !dry_run {
                    remove_any(&entry.path())?;
                }
                report.debris += 1;
                continue;
            }
            let Ok(id) = SessionId::parse(name) else {
                continue;
            };
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir {
                continue;
            }
            report.sessions += 1;
            match self.sweep_one(&id, policy, dry_run)? {
                Verdict::Keep => {
                    if !dry_run {
                        report.abandoned_uploads += self.collect_abandoned_uploads(
                            &entry.path(),
                            crate::chunks::ABANDONED_UPLOAD,
                        );
                    }
                }
                Verdict::Busy => report.busy += 1,
                Verdict::Removed { empty, bytes } => {
                    if empty {
                        report.removed_empty += 1;
                    } else {
                        report.removed_idle += 1;
                    }
                    report.bytes_freed += bytes;
                }
            }
        }
        report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(report)
    }

    fn sweep_one(&self, id: &SessionId, policy: &SweepPolicy, dry_run: bool) -> Result<Verdict> {
        let dir = self.uploads.join(id.as_str());
        // A first look without any lock: most sessions are kept, and cheaply.
        let Some(empty) = self.expired(&dir, id, policy)? else {
            return Ok(Verdict::Keep);
        };
        if dry_run {
            return Ok(Verdict::Removed {
                empty,
                bytes: tree_size(&dir),
            });
        }
        let Some(_lock) = LockGuard::acquire_within(&dir.join(LOCK), Duration::ZERO)? else {
            return Ok(Verdict::Busy);
        };
        let Some(_analysis) = LockGuard::acquire_within(&dir.join(ANALYSIS_LOCK), Duration::ZERO)?
        else {
            return Ok(Verdict::Busy);
        };
        // Again under the locks: a request may have written in between.
        let Some(empty) = self.expired(&dir, id, policy)? else {
            return Ok(Verdict::Keep);
        };
        let grave = self
            .uploads
            .join(format!("{GC_PREFIX}{}-{}", id.as_str(), random_hex::<4>()?));
        fs::rename(&dir, &grave).map_err(Error::io("move aside", &dir))?;
        sync_dir(&self.uploads)?;
        let bytes = tree_size(&grave);
        remove_any(&grave)?;
        Ok(Verdict::Removed { empty, bytes })
    }

    /// `Some(empty)` when the session has been idle past its limit, `None` to keep it.
    fn expired(&self, dir: &Path, id: &SessionId, policy: &SweepPolicy) -> Result<Option<bool>> {
        let Some(idle_for) = idle_for(dir)? else {
            return Ok(None);
        };
        let empty = self.is_empty(id);
        let limit = if empty { policy.empty } else { policy.idle };
        Ok(limit.filter(|limit| idle_for >= *limit).map(|_| empty))
    }

    /// No data and no conversation. A session whose manifest cannot be read is not empty (it
    /// gets the longer limit).
    fn is_empty(&self, id: &SessionId) -> bool {
        let Ok(dir) = self.session_dir(id) else {
            return false;
        };
        let no_data =
            Manifest::load(&dir).is_ok_and(|m| m.upload.is_none() && m.population.is_none());
        // `conversation.json` always exists; `null` (or a folder made before that) is no talk.
        let no_talk = matches!(self.read_conversation(id), Ok(None));
        no_data && no_talk
    }
}

enum Verdict {
    Keep,
    Busy,
    Removed { empty: bool, bytes: u64 },
}

/// How long ago the session folder last saw a write: the newest modification time among its
/// entries (lock files excepted) and the folder itself when it has no other entry. `None` when
/// that time is in the future (a clock step): such a session is kept.
fn idle_for(dir: &Path) -> Result<Option<Duration>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    let newest = entries
        .flatten()
        .filter(|entry| entry.file_name() != LOCK && entry.file_name() != ANALYSIS_LOCK)
        .filter_map(|entry| entry.metadata().and_then(|m| m.modified()).ok())
        .max();
    let newest = match newest {
        Some(t) => t,
        None => match fs::symlink_metadata(dir).and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        },
    };
    Ok(SystemTime::now().duration_since(newest).ok())
}

/// Bytes of regular files under `path` (links not followed), for the report.
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `uploads/.sweep.lock`: flocked while a sweep runs; its content is the start time (unix ms) of
/// the last sweep, read and written only under the flock.
struct SweepLock {
    guard: LockGuard,
}

impl SweepLock {
    fn acquire(path: &Path, wait: Duration) -> Result<Option<SweepLock>> {
        Ok(LockGuard::acquire_within(path, wait)?.map(|guard| SweepLock { guard }))
    }

    fn last(&mut self) -> Result<Option<u64>> {
        let file = self.guard.file_mut();
        let mut text = String::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text))
            .map_err(Error::io("read", SWEEP_LOCK))?;
        Ok(text.trim().parse().ok())
    }

    fn stamp(&mut self, ms: u64) -> Result<()> {
        let file = self.guard.file_mut();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(ms.to_string().as_bytes()))
            .map_err(Error::io("write", SWEEP_LOCK))
    }
}
