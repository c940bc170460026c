//! Resumable uploads: a file sent in numbered chunks, any of which may reach any worker, in any
//! order, more than once.
//!
//! Layout: `<session>/.staging/c-<upload id>/`, holding
//! - `<part>.<index>`: one chunk (`part` names the file of the upload: `csv`, `shapefile`...),
//!   written atomically (temp file + fsync + rename), so a retried chunk replaces its earlier
//!   copy and a chunk cut short by a dropped connection never exists at all;
//! - `parts.json`: the total number of chunks each part announced (the first chunk fixes it; a
//!   chunk announcing another total is refused);
//! - `result.json`: the answer of the finalize that committed this upload. A finalize repeated
//!   (the client never saw the answer) returns it instead of committing again;
//! - `.lock`: flock around every change of the folder (held for one chunk write or one
//!   finalize), so the per-upload byte limit holds across workers.
//!
//! Nothing here is session data until a finalize hands the assembled parts to
//! [`Store::begin_upload`]/[`Store::commit_upload`] (the caller's closure). An upload nobody
//! finishes is removed by the idle sweep once no chunk arrived for [`ABANDONED_UPLOAD`].

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::durable::{LockGuard, TEMP_PREFIX, remove_any, write_atomic};
use crate::error::{Error, Result};
use crate::id::{SessionId, random_hex};
use crate::manifest::Manifest;
use crate::store::{STAGING, SessionDir, Store};

/// Prefix of a chunked upload's folder in `.staging/`.
pub(crate) const CHUNKED_PREFIX: &str = "c-";
/// An unfinished chunked upload with no chunk for this long is removed by the idle sweep (and a
/// finished one's remembered answer is forgotten).
pub const ABANDONED_UPLOAD: Duration = Duration::from_secs(6 * 3600);
const PARTS: &str = "parts.json";
const RESULT: &str = "result.json";
const LOCK: &str = ".lock";
/// Longest upload id (the React client's are ~35 characters).
pub const MAX_UPLOAD_ID: usize = 64;
const MAX_PART_NAME: usize = 16;

/// Limits of chunked uploads; the caller passes its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest single chunk.
    pub max_chunk_bytes: u64,
    /// Largest upload, all chunks of all parts together.
    pub max_upload_bytes: u64,
    /// Most chunks one part may announce.
    pub max_chunks: u32,
}

/// One chunk as a request carried it.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    /// The client's id for the whole upload ([`check_upload_id`] rules).
    pub upload_id: &'a str,
    /// Which file of the upload (`csv`, `shapefile`, ...): lowercase letters, digits, `_`.
    pub part: &'a str,
    /// 0-based position of this chunk within its part.
    pub index: u32,
    /// Chunks the part has; must agree across the part's chunks.
    pub total: u32,
    /// The chunk's content.
    pub bytes: &'a [u8],
}

/// What the server holds of one chunked upload, from disk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChunkStatus {
    /// The client's id for the upload.
    pub upload_id: String,
    /// Per part: the announced total and the indexes received, ascending.
    pub parts: BTreeMap<String, PartStatus>,
    /// Bytes received, all parts.
    pub bytes: u64,
    /// The upload was finalized (its answer is remembered).
    pub finalized: bool,
}

/// One part of a chunked upload as received so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartStatus {
    /// Chunks announced for the part.
    pub total: u32,
    /// Indexes received, ascending.
    pub received: Vec<u32>,
}

impl PartStatus {
    /// Indexes not received yet.
    pub fn missing(&self) -> Vec<u32> {
        (0..self.total)
            .filter(|i| self.received.binary_search(i).is_err())
            .collect()
    }
}

/// One part, its chunks joined, handed to the finalize closure.
#[derive(Debug)]
pub struct AssembledPart {
    /// The part's name (`csv`, `shapefile`, ...).
    pub part: String,
    /// Its chunks joined in index order.
    pub bytes: Vec<u8>,
}

/// What a finalize hands its `commit` closure.
#[derive(Debug)]
pub enum Finalizing {
    /// Stage these parts in `upload` and commit it.
    Parts {
        /// The upload to stage the parts in (already begun).
        upload: crate::backend::Upload,
        /// Every part, complete.
        parts: Vec<AssembledPart>,
    },
    /// A worker that died committed this upload already (before its answer was remembered):
    /// describe the session as it is.
    Committed,
}

#[derive(Default, Serialize, Deserialize)]
struct PartsFile {
    totals: BTreeMap<String, u32>,
}

/// Checks an upload id from a request: 1..=64 of `[A-Za-z0-9_-]`.
pub fn check_upload_id(text: &str) -> Result<()> {
    let ok = !text.is_empty()
        && text.len() <= MAX_UPLOAD_ID
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::BadChunk(format!(
            "upload_id must be 1 to {MAX_UPLOAD_ID} letters, digits, '-' or '_'"
        )))
    }
}

pub(crate) fn check_part(text: &str) -> Result<()> {
    let ok = !text.is_empty()
        && text.len() <= MAX_PART_NAME
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::BadChunk(format!(
            "file_type must be 1 to {MAX_PART_NAME} lowercase letters, digits or '_' (csv, shapefile)"
        )))
    }
}

impl Store {
    fn chunk_dir(&self, id: &SessionId, upload_id: &str) -> Result<PathBuf> {
        Ok(self.chunk_folder(id, upload_id)?.1)
    }

    /// The session folder (for reads that must not follow links) and the upload's folder
    /// relative to it and as a path (for writes, ordered by the upload's lock).
    fn chunk_folder(&self, id: &SessionId, upload_id: &str) -> Result<(SessionDir, PathBuf)> {
        check_upload_id(upload_id)?;
        let session = self.session_dir(id)?;
        let dir = session.join(chunk_rel(upload_id));
        Ok((session, dir))
    }

    /// Stores one chunk. Idempotent: the same chunk again replaces its copy. Refuses a chunk
    /// larger than `max_chunk_bytes`, an index outside the announced total, a total that
    /// differs from the one this part announced first, one more chunk than `max_chunks`, and a
    /// chunk that would take the upload past `max_upload_bytes` (counting what is stored, a
    /// replaced chunk's old copy excepted). A finalized upload takes no more chunks.
    pub fn put_chunk(
        &self,
        id: &SessionId,
        chunk: Chunk<'_>,
        limits: &ChunkLimits,
    ) -> Result<ChunkStatus> {
        check_chunk(&chunk, limits)?;
        let size = chunk.bytes.len() as u64;
        let dir = self.chunk_dir(id, chunk.upload_id)?;
        let root = parent_of(&dir)?;
        create_one(root)?;
        create_one(&dir)?;
        let _lock = LockGuard::acquire(&dir.join(LOCK))?;
        // The sweep may have removed the folder between our create and the lock.
        if !dir.is_dir() {
            return Err(Error::BadChunk(
                "this upload was abandoned and removed; start it again".to_owned(),
            ));
        }
        if dir.join(RESULT).exists() {
            return Err(Error::BadChunk(format!(
                "upload {} is already finalized",
                chunk.upload_id
            )));
        }
        let mut parts = read_parts(&dir)?;
        match parts.totals.get(chunk.part) {
            Some(&total) if total != chunk.total => {
                return Err(Error::BadChunk(format!(
                    "total_chunks {} differs from the {total} this upload's {} announced",
                    chunk.total, chunk.part
                )));
            }
            Some(_) => {}
            None => {
                parts.totals.insert(chunk.part.to_owned(), chunk.total);
                let bytes = serde_json::to_vec(&parts).map_err(|source| Error::Manifest {
                    path: dir.join(PARTS),
                    source,
                })?;
                write_atomic(&dir.join(PARTS), &bytes)?;
            }
        }
        let name = format!("{}.{}", chunk.part, chunk.index);
        let before = self.status_of(&dir, chunk.upload_id)?;
        let replaced = fs::metadata(dir.join(&name)).map(|m| m.len()).unwrap_or(0);
        let after = before.bytes - replaced + size;
        if after > limits.max_upload_bytes {
            return Err(Error::TooLarge(format!(
                "this upload would reach {after} bytes, over the limit of {} bytes",
                limits.max_upload_bytes
            )));
        }
        write_atomic(&dir.join(&name), chunk.bytes)?;
        crate::fault::point("chunk-after-write");
        self.status_of(&dir, chunk.upload_id)
    }

    /// What the server holds of an upload; `None` when it has no chunk of it (never started,
    /// or abandoned and removed).
    pub fn chunk_status(&self, id: &SessionId, upload_id: &str) -> Result<Option<ChunkStatus>> {
        let dir = self.chunk_dir(id, upload_id)?;
        if !dir.is_dir() {
            return Ok(None);
        }
        self.status_of(&dir, upload_id).map(Some)
    }

    fn status_of(&self, dir: &Path, upload_id: &str) -> Result<ChunkStatus> {
        let parts = read_parts(dir)?;
        let mut status = ChunkStatus {
            upload_id: upload_id.to_owned(),
            finalized: dir.join(RESULT).exists(),
            ..ChunkStatus::default()
        };
        for (part, total) in &parts.totals {
            status.parts.insert(
                part.clone(),
                PartStatus {
                    total: *total,
                    received: Vec::new(),
                },
            );
        }
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(status),
            Err(e) => return Err(Error::io("list", dir)(e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let Some((part, index)) = name.rsplit_once('.') else {
                continue;
            };
            let (Some(slot), Ok(index)) = (status.parts.get_mut(part), index.parse::<u32>()) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || index >= slot.total {
                continue;
            }
            slot.received.push(index);
            status.bytes += meta.len();
        }
        for slot in status.parts.values_mut() {
            slot.received.sort_unstable();
        }
        Ok(status)
    }

    /// Finishes a chunked upload: checks that every part in `expected` (name, total chunks) is
    /// complete, joins each part's chunks and hands them to `commit` with a started
    /// [`Upload`](crate::backend::Upload) (the closure stages the files, commits with [`Store::commit_upload`] and
    /// returns the answer for the client). Exactly once: the answer is remembered, and a
    /// second finalize of the same upload returns it without committing again; workers
    /// finalizing at once are serialised by the upload's lock. If a worker died after the
    /// commit but before remembering the answer, the manifest (which records the upload id with
    /// the commit) says so, and `commit` is called with [`Finalizing::Committed`] to describe
    /// the state as it is. Once committed, the chunks are removed.
    ///
    /// A part that is incomplete is [`Error::IncompleteUpload`] naming the missing chunks (the
    /// client sends those and finalizes again); nothing is committed.
    pub fn finalize_chunks<E, F>(
        &self,
        id: &SessionId,
        upload_id: &str,
        expected: &[(&str, u32)],
        commit: F,
    ) -> std::result::Result<Value, E>
    where
        E: From<Error>,
        F: FnOnce(Finalizing) -> std::result::Result<Value, E>,
    {
        let (session, dir) = self.chunk_folder(id, upload_id)?;
        if !dir.is_dir() {
            return Err(Error::IncompleteUpload(format!(
                "no chunk of upload {upload_id} is on the server (never sent, or abandoned and removed); send the chunks again"
            ))
            .into());
        }
        let _lock = LockGuard::acquire(&dir.join(LOCK))?;
        if let Some(answer) = read_result(&dir)? {
            return Ok(answer);
        }
        let committed = Manifest::load(&session)?
            .upload
            .is_some_and(|u| u.chunked_upload.as_deref() == Some(upload_id));
        let answer = if committed {
            commit(Finalizing::Committed)?
        } else {
            let parts = self.assemble(&session, &dir, upload_id, expected)?;
            let mut upload = self.begin_upload(id)?;
            upload.chunked_upload = Some(upload_id.to_owned());
            commit(Finalizing::Parts {
                upload: upload.into(),
                parts,
            })?
        };
        crate::fault::point("finalize-after-commit");
        let bytes = serde_json::to_vec(&answer).map_err(|source| Error::Manifest {
            path: dir.join(RESULT),
            source,
        })?;
        write_atomic(&dir.join(RESULT), &bytes)?;
        // The chunks are spent; the folder keeps only the answer (and the lock).
        for entry in fs::read_dir(&dir)
            .map_err(Error::io("list", &dir))?
            .flatten()
        {
            let name = entry.file_name();
            if name != RESULT && name != LOCK {
                let _ = remove_any(&entry.path());
            }
        }
        Ok(answer)
    }

    fn assemble(
        &self,
        session: &SessionDir,
        dir: &Path,
        upload_id: &str,
        expected: &[(&str, u32)],
    ) -> Result<Vec<AssembledPart>> {
        let status = self.status_of(dir, upload_id)?;
        let mut missing = Vec::new();
        for (part, total) in expected {
            check_part(part)?;
            match status.parts.get(*part) {
                Some(slot) if slot.total != *total => {
                    return Err(Error::BadChunk(format!(
                        "{part}: finalize says {total} chunks, the chunks said {}",
                        slot.total
                    )));
                }
                Some(slot) => {
                    let gaps = slot.missing();
                    if !gaps.is_empty() {
                        missing.push(format!("{part} chunks {}", list(&gaps)));
                    }
                }
                None => missing.push(format!("every {part} chunk (0..{total})")),
            }
        }
        if !missing.is_empty() {
            return Err(Error::IncompleteUpload(format!(
                "upload {upload_id} is missing {}; send them and finalize again",
                missing.join(", ")
            )));
        }
        let mut assembled = Vec::new();
        for (part, total) in expected {
            let mut bytes = Vec::new();
            for index in 0..*total {
                // Without following links: a planted link cannot pull another file in.
                let rel = format!("{}/{part}.{index}", chunk_rel(upload_id));
                session
                    .open_file(&rel)?
                    .read_to_end(&mut bytes)
                    .map_err(Error::io("read", dir.join(&rel)))?;
            }
            assembled.push(AssembledPart {
                part: (*part).to_owned(),
                bytes,
            });
        }
        Ok(assembled)
    }

    /// Removes the chunked uploads of one session that saw no chunk for [`ABANDONED_UPLOAD`]
    /// (called by the sweep for the sessions it keeps). Skips one whose lock is held. Returns
    /// how many it removed.
    pub(crate) fn collect_abandoned_uploads(&self, session_dir: &Path, max_age: Duration) -> usize {
        let root = session_dir.join(STAGING);
        let Ok(entries) = fs::read_dir(&root) else {
            return 0;
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries.flatten() {
            let is_chunked = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(CHUNKED_PREFIX));
            if !is_chunked {
                continue;
            }
            let dir = entry.path();
            if !older_than(&dir, now, max_age) {
                continue;
            }
            let Ok(Some(_lock)) = LockGuard::acquire_within(&dir.join(LOCK), Duration::ZERO) else {
                continue;
            };
            // Again under the lock: a chunk may have arrived in between.
            if !older_than(&dir, now, max_age) {
                continue;
            }
            let Ok(suffix) = random_hex::<8>() else {
                continue;
            };
            let trash = root.join(format!("trash-{suffix}"));
            if fs::rename(&dir, &trash).is_ok() {
                let _ = remove_any(&trash);
                removed += 1;
            }
        }
        removed
    }
}

/// True when neither the folder nor any file in it changed for `max_age`.
fn older_than(dir: &Path, now: SystemTime, max_age: Duration) -> bool {
    let age = |path: &Path| {
        fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| now.duration_since(t).unwrap_or(Duration::ZERO))
    };
    let mut newest = age(dir);
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name() == LOCK {
                continue;
            }
            let a = age(&entry.path());
            newest = match (newest, a) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
        }
    }
    newest.is_some_and(|a| a >= max_age)
}

fn chunk_rel(upload_id: &str) -> String {
    format!("{STAGING}/{CHUNKED_PREFIX}{upload_id}")
}

fn list(indexes: &[u32]) -> String {
    const SHOWN: usize = 20;
    let mut text = indexes
        .iter()
        .take(SHOWN)
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if indexes.len() > SHOWN {
        text.push_str(&format!(" and {} more", indexes.len() - SHOWN));
    }
    text
}

fn parent_of(dir: &Path) -> Result<&Path> {
    dir.parent().ok_or_else(|| Error::UnsafePath {
        path: dir.display().to_string(),
        reason: "no parent",
    })
}

/// One directory inside an existing session folder; never `create_dir_all` (a swept session
/// must not come back).
fn create_one(path: &Path) -> Result<()> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create", path)(e)),
    }
}

fn read_parts(dir: &Path) -> Result<PartsFile> {
    let path = dir.join(PARTS);
    match fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| Error::Manifest { path, source })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PartsFile::default()),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

fn read_result(dir: &Path) -> Result<Option<Value>> {
    let path = dir.join(RESULT);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Manifest { path, source }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// The rules every store applies to one chunk before storing it: a known part, `total` within
/// `1..=max_chunks`, `index < total`, at most `max_chunk_bytes`.
pub(crate) fn check_chunk(chunk: &Chunk<'_>, limits: &ChunkLimits) -> Result<()> {
    check_part(chunk.part)?;
    if chunk.total == 0 || chunk.total > limits.max_chunks {
        return Err(Error::BadChunk(format!(
            "total_chunks must be between 1 and {}",
            limits.max_chunks
        )));
    }
    if chunk.index >= chunk.total {
        return Err(Error::BadChunk(format!(
            "chunk_index {} is outside 0..{}",
            chunk.index, chunk.total
        )));
    }
    let size = chunk.bytes.len() as u64;
    if size > limits.max_chunk_bytes {
        return Err(Error::TooLarge(format!(
            "a chunk of {size} bytes is over the limit of {} bytes per chunk",
            limits.max_chunk_bytes
        )));
    }
    Ok(())
}
