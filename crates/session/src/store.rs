//! The session store: folder layout, state derivation, and the commit protocols for uploads,
//! population files, ITN results, clears, loose files and the conversation document.
//!
//! Layout of `<instance>/uploads/<id>/`:
//! - `manifest.json`: the authority on what is current (see `manifest.rs`).
//! - `.data/<token>/`: immutable directories of committed files, named by the manifest.
//! - `.staging/<token>/`: work in progress; counts for nothing and is swept.
//! - `.lock`: flock for every read-modify-write of the manifest (held for milliseconds).
//! - `.analysis.lock`: flock held for a whole analysis, so one runs per session at a time.
//! - the api.md file names in the root (`raw_data.csv`, `analysis_vulnerability_rankings.csv`,
//!   ...): mirrors (hard links) of the current files for older tools; never read by this crate
//!   when a manifest exists.
//! - `visualizations/`, `exports/`: loose files, each written atomically, removed by a new
//!   upload or a clear.
//! - `conversation.json`: chat history and pending UI state.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::ops::Deref;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::artifact::{Artifact, ArtifactKind, FIXED, RelPath, UPLOADED_TABLE, UploadedTable};
use crate::beneath::{self, Want};
use crate::durable::{
    AtomicFile, LockGuard, TEMP_PREFIX, is_silly_rename, log_cleanup, parent, remove_any,
    remove_best_effort, sync_dir, vanished, write_atomic,
};
use crate::error::{Error, Result};
use crate::fault;
use crate::id::{SessionId, random_hex};
use crate::manifest::{
    HEAD_READ, ItnRecord, MANIFEST, Manifest, PopulationRecord, StatusHead, TprOutputsRecord,
    TprRecord, UploadRecord, loose_artifact, now_ms,
};

pub(crate) const LOCK: &str = ".lock";
pub(crate) const ANALYSIS_LOCK: &str = ".analysis.lock";
pub(crate) const DATA: &str = ".data";
pub(crate) const STAGING: &str = ".staging";
const VISUALIZATIONS: &str = "visualizations";
/// What `conversation.json` holds before the first chat turn (and after a clear).
const EMPTY_CONVERSATION: &[u8] = b"null";
const EXPORTS: &str = "exports";
/// Staging debris older than this is assumed abandoned by a dead worker.
const STALE_STAGING: Duration = Duration::from_secs(3600);

/// Handle on `<instance>/uploads/`. Holds no session state: every call reads the disk, so any
/// number of processes may use their own `Store` on the same instance directory. It keeps the
/// `uploads/` directory open: every read below it is resolved from that descriptor without
/// following links (`beneath.rs`).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) uploads: PathBuf,
    pub(crate) anchor: Arc<OwnedFd>,
}

/// A session folder as one call found it: its path (for writes, which the session lock
/// orders) and the means to open files inside it without following links (for reads).
#[derive(Clone, Debug)]
pub(crate) struct SessionDir {
    path: PathBuf,
    id: SessionId,
    anchor: Arc<OwnedFd>,
}

impl Deref for SessionDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for SessionDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl SessionDir {
    fn beneath(&self, rel: &str) -> String {
        format!("{}/{rel}", self.id.as_str())
    }

    /// Opens the regular file `rel` (relative to the session folder) for reading. A symbolic
    /// link anywhere on the way, the session folder included, is [`Error::Tampered`]; a missing
    /// file (or a directory, a FIFO...) is [`Error::ArtifactNotFound`] naming `rel`.
    pub(crate) fn open_file(&self, rel: &str) -> Result<File> {
        beneath::open_file(self.anchor.as_fd(), &self.beneath(rel))
            .map_err(|e| self.open_error(rel, e))
    }

    /// Removes the file `rel` if it exists, without following links on the way (so a linked
    /// directory cannot make it remove another session's file).
    pub(crate) fn remove_file(&self, rel: &str) -> Result<()> {
        let (parent_rel, name) = match rel.rsplit_once('/') {
            Some((p, n)) => (self.beneath(p), n),
            None => (self.id.as_str().to_owned(), rel),
        };
        let parent = match beneath::open(self.anchor.as_fd(), &parent_rel, Want::Dir) {
            Ok(fd) => fd,
            Err(e) if missing(&e) => return Ok(()),
            Err(e) => return Err(self.open_error(rel, e)),
        };
        match nix::unistd::unlinkat(&parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(Error::io("remove", self.path.join(rel))(e.into())),
        }
    }

    /// Opens `manifest.json` (as [`SessionDir::open_file`]), keeping the raw error so the
    /// caller can tell ESTALE (retry) from not found (a Python-system folder).
    pub(crate) fn open_manifest(&self) -> io::Result<File> {
        #[cfg(test)]
        if tests_estale::take() {
            return Err(io::Error::from_raw_os_error(
                nix::errno::Errno::ESTALE as i32,
            ));
        }
        beneath::open_file(self.anchor.as_fd(), &self.beneath(MANIFEST))
    }

    pub(crate) fn open_error_of(&self, rel: &str, e: io::Error) -> Error {
        self.open_error(rel, e)
    }

    fn open_error(&self, rel: &str, e: io::Error) -> Error {
        if missing(&e) {
            Error::ArtifactNotFound(rel.to_owned())
        } else if beneath::is_refusal(&e) {
            Error::Tampered {
                path: self.path.join(rel),
                reason: "a symbolic link on the way (this server never makes one)".to_owned(),
            }
        } else {
            Error::io("open", self.path.join(rel))(e)
        }
    }

    /// Hard-links the data file `source` (relative to the session folder, opened without
    /// following links) to the new name `target` in the folder root. Through `/proc/self/fd`,
    /// so the link is made to exactly the file that was opened; a copy when links fail.
    fn link_into_root(&self, source: &str, target: &Path) -> Result<()> {
        let mut file = self.open_file(source)?;
        let fd_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
        let linked = nix::unistd::linkat(
            nix::fcntl::AT_FDCWD,
            fd_path.as_str(),
            nix::fcntl::AT_FDCWD,
            target,
            nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
        );
        if linked.is_ok() {
            return Ok(());
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
            .map_err(Error::io("create", target))?;
        io::copy(&mut file, &mut out).map_err(Error::io("copy", target))?;
        Ok(())
    }
}

fn missing(e: &io::Error) -> bool {
    vanished(e) || e.kind() == io::ErrorKind::NotADirectory
}

/// Unit tests: the next N manifest opens on this thread fail with ESTALE.
#[cfg(test)]
pub(crate) mod tests_estale {
    use std::cell::Cell;
    thread_local!(static PENDING: Cell<u32> = const { Cell::new(0) });
    pub(crate) fn inject(n: u32) {
        PENDING.with(|p| p.set(n));
    }
    pub(crate) fn take() -> bool {
        PENDING.with(|p| {
            let n = p.get();
            if n > 0 {
                p.set(n - 1);
            }
            n > 0
        })
    }
}

/// A session's state as derived from disk during this call.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SessionState {
    pub session_id: String,
    /// Upload generation: incremented by every upload and every clear.
    pub generation: u64,
    /// `raw_data.csv` or `raw_data.xlsx` is current.
    pub data_loaded: bool,
    pub csv_loaded: bool,
    pub shapefile_loaded: bool,
    pub population_loaded: bool,
    /// The current upload has a committed analysis with at least one of the four evidence files.
    pub analysis_complete: bool,
    /// ITN results exist for the current analysis.
    pub itn_complete: bool,
    pub analysis_id: Option<String>,
    pub variables_used: Vec<String>,
    /// `"csv_shapefile"` or `"csv_only"` when data is loaded.
    pub upload_type: Option<String>,
    /// What the app recorded with the upload (`UploadInfo::info`).
    pub upload_info: Value,
    /// What the app recorded with the analysis (`AnalysisResult::summary`).
    pub analysis_summary: Value,
    /// File names of the current fixed artifacts (api.md names).
    pub files: Vec<String>,
    /// Analyses that started computing / committed over the session's life (exactly-once proof).
    pub analyses_started: u64,
    pub analyses_committed: u64,
    /// The folder was written by the Python system and has no manifest yet.
    pub legacy: bool,
}

impl SessionState {
    /// The status route's fields of this state.
    pub fn head(&self) -> StatusHead {
        StatusHead {
            generation: self.generation,
            data_loaded: self.data_loaded,
            shapefile_loaded: self.shapefile_loaded,
            population_loaded: self.population_loaded,
            analysis_id: self.analysis_id.clone(),
            itn_complete: self.itn_complete,
            analyses_started: self.analyses_started,
            analyses_committed: self.analyses_committed,
            cleanup_pending: false,
            legacy: self.legacy,
        }
    }
}

/// An upload being written; nothing in it counts until [`Store::commit_upload`].
#[derive(Debug)]
pub struct Upload {
    pub(crate) session: SessionId,
    pub(crate) session_dir: SessionDir,
    pub(crate) token: String,
    pub(crate) staging: PathBuf,
    pub(crate) files: Vec<String>,
    /// Set by `finalize_chunks`: recorded in the manifest with the commit.
    pub(crate) chunked_upload: Option<String>,
}

/// What the app records with an upload.
#[derive(Clone, Debug, Default)]
pub struct UploadInfo {
    /// `"csv_shapefile"` or `"csv_only"`; derived from the staged files when empty.
    pub upload_type: String,
    /// Free-form facts for `/session_info` (original names, row/column counts, ward matching).
    pub info: Value,
}

/// The state a manifest describes (both backends derive status this way).
pub(crate) fn state_of(id: &SessionId, m: &Manifest) -> SessionState {
    // The flags come from the same derivation as the manifest's head line.
    let head = StatusHead::of(m);
    let analysis = m.current_analysis();
    let files = FIXED
        .iter()
        .filter(|a| m.locate(a).is_some())
        .map(Artifact::file_name)
        .collect();
    SessionState {
        session_id: id.to_string(),
        generation: head.generation,
        data_loaded: head.data_loaded,
        csv_loaded: head.data_loaded,
        shapefile_loaded: head.shapefile_loaded,
        population_loaded: head.population_loaded,
        analysis_complete: head.analysis_id.is_some(),
        itn_complete: head.itn_complete,
        analysis_id: head.analysis_id,
        variables_used: analysis
            .map(|a| a.variables_used.clone())
            .unwrap_or_default(),
        upload_type: m.upload.as_ref().map(|u| u.upload_type.clone()),
        upload_info: m
            .upload
            .as_ref()
            .map(|u| u.info.clone())
            .unwrap_or(Value::Null),
        analysis_summary: analysis.map(|a| a.summary.clone()).unwrap_or(Value::Null),
        files,
        analyses_started: head.analyses_started,
        analyses_committed: head.analyses_committed,
        legacy: m.derived_from_legacy,
    }
}

/// `<instance_dir>/run/<name>/`: where the server keeps its runtime files (e.g. `metrics`)
/// inside the instance directory. [`create_runtime_dir`] makes it.
pub fn runtime_dir(instance_dir: impl AsRef<Path>, name: &str) -> PathBuf {
    instance_dir.as_ref().join("run").join(name)
}

/// Creates [`runtime_dir`] if missing (this crate is the only one that creates anything under
/// the instance directory). `name` is one or two plain path components (`<instance>/metrics`).
pub fn create_runtime_dir(instance_dir: impl AsRef<Path>, name: &str) -> Result<PathBuf> {
    let rel = RelPath::parse(name)?;
    if rel.components().count() > 2 {
        return Err(Error::UnsafePath {
            path: name.to_owned(),
            reason: "a runtime directory is one or two path components",
        });
    }
    let dir = runtime_dir(instance_dir, rel.as_str());
    fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
    Ok(dir)
}

impl Store {
    /// Opens (creating if needed) `<instance_dir>/uploads/`.
    pub fn open(instance_dir: impl AsRef<Path>) -> Result<Store> {
        let uploads = instance_dir.as_ref().join("uploads");
        fs::create_dir_all(&uploads).map_err(Error::io("create", &uploads))?;
        let anchor = beneath::open_anchor(&uploads).map_err(Error::io("open", &uploads))?;
        Ok(Store {
            uploads,
            anchor: Arc::new(anchor),
        })
    }

    /// Mints a new id and creates its folder; the folder's existence is what makes an id
    /// "minted by the server".
    pub fn create_session(&self) -> Result<SessionId> {
        loop {
            let id = SessionId::mint()?;
            let dir = self.uploads.join(id.as_str());
            match fs::create_dir(&dir) {
                Ok(()) => {}
                // 128 random bits never collide in practice; loop rather than reason about it.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create", dir)(e)),
            }
            Manifest::empty().store(&dir)?;
            // Always present, so that a reader never has to tell "no history yet" from "not
            // visible yet" (an NFS client caches negative lookups).
            write_atomic(
                &dir.join(Artifact::Conversation.file_name()),
                EMPTY_CONVERSATION,
            )?;
            sync_dir(&self.uploads)?;
            return Ok(id);
        }
    }

    /// Parses an untrusted id and checks that this server minted it.
    pub fn session(&self, text: &str) -> Result<SessionId> {
        let id = SessionId::parse(text)?;
        self.session_dir(&id)?;
        Ok(id)
    }

    /// The instance directory (the parent of `uploads/`).
    pub(crate) fn instance_dir(&self) -> &Path {
        self.uploads.parent().unwrap_or(&self.uploads)
    }

    /// The folder of a minted session. Never creates anything.
    pub(crate) fn session_dir(&self, id: &SessionId) -> Result<SessionDir> {
        let dir = self.uploads.join(id.as_str());
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(SessionDir {
                path: dir,
                id: id.clone(),
                anchor: Arc::clone(&self.anchor),
            }),
            Ok(_) => Err(Error::SessionNotFound(id.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::SessionNotFound(id.to_string()))
            }
            Err(e) => Err(Error::io("inspect", dir)(e)),
        }
    }

    /// Session state derived from disk now.
    pub fn status(&self, id: &SessionId) -> Result<SessionState> {
        let dir = self.session_dir(id)?;
        let m = self.settle(&dir, Manifest::load(&dir)?)?;
        Ok(state_of(id, &m))
    }

    /// The status route's fields, derived from disk now: the manifest's head line (one open
    /// without following links, one read of at most 1 KiB, a typed parse of ~300 bytes). Falls
    /// back to [`Store::status`] for a folder without a manifest (Python system), a manifest
    /// written before heads existed, and a cleanup left pending by a dead worker.
    pub fn status_head(&self, id: &SessionId) -> Result<StatusHead> {
        let mut rel = [0u8; SessionId::LEN + 1 + MANIFEST.len()];
        let (left, right) = rel.split_at_mut(SessionId::LEN);
        left.copy_from_slice(id.as_str().as_bytes());
        right[0] = b'/';
        right[1..].copy_from_slice(MANIFEST.as_bytes());
        // Ids are hex and MANIFEST is ASCII.
        let rel = std::str::from_utf8(&rel).unwrap_or(MANIFEST);
        let fd = match beneath::open(self.anchor.as_fd(), rel, Want::Read) {
            Ok(fd) => fd,
            Err(e) if missing(&e) => return self.status(id).map(|s| s.head()),
            Err(e) => return Err(self.session_dir(id)?.open_error(MANIFEST, e)),
        };
        let mut buf = [0u8; HEAD_READ];
        let mut file = File::from(fd);
        let mut len = 0;
        // Usually one read: the head is complete in the first bytes (a short read of a small
        // manifest is not followed by another one to see the end of the file).
        let head = loop {
            match file.read(&mut buf[len..]) {
                Ok(0) => break None,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read", self.uploads.join(rel))(e)),
            }
            if let Some(head) = StatusHead::parse_prefix(&buf[..len]) {
                break Some(head);
            }
            if len == buf.len() {
                break None;
            }
        };
        match head {
            Some(head) if !head.cleanup_pending => Ok(head),
            _ => self.status(id).map(|s| s.head()),
        }
    }

    // ---- uploads -------------------------------------------------------------------------

    /// Starts staging an upload. Write the inputs with [`Upload::write`], then
    /// [`Store::commit_upload`]; dropping the `Upload` discards it.
    pub fn begin_upload(&self, id: &SessionId) -> Result<Upload> {
        let session_dir = self.session_dir(id)?;
        let token = format!("u-{}", random_hex::<16>()?);
        let staging = make_staging(&session_dir, &token)?;
        Ok(Upload {
            session: id.clone(),
            session_dir,
            token,
            staging,
            files: Vec::new(),
            chunked_upload: None,
        })
    }

    /// Makes a staged upload the session's data: a new generation, with no analysis, no ITN, no
    /// population, no visualizations and no exports. Returns the new generation.
    pub fn commit_upload(&self, mut upload: Upload, info: UploadInfo) -> Result<u64> {
        let dir = upload.session_dir.clone();
        // A clear or another upload may race with us; that is fine (last commit wins), but the
        // session must still exist.
        self.session_dir(&upload.session)?;
        if !upload
            .files
            .iter()
            .any(|f| f == "raw_data.csv" || f == "raw_data.xlsx")
        {
            return Err(Error::NoData(upload.session.to_string()));
        }
        sync_tree(&upload.staging)?;
        fault::point("upload-before-commit");
        let upload_type = if info.upload_type.is_empty() {
            if upload.files.iter().any(|f| f == "raw_shapefile.zip") {
                "csv_shapefile"
            } else {
                "csv_only"
            }
            .to_owned()
        } else {
            info.upload_type
        };

        let _lock = LockGuard::acquire(&dir.join(LOCK))?;
        let mut m = Manifest::load(&dir)?;
        let data_dir = promote(&dir, &upload.staging, &upload.token)?;
        upload.staging = data_dir; // nothing left to discard on drop
        m.format = crate::manifest::FORMAT;
        m.generation += 1;
        m.upload = Some(UploadRecord {
            dir: Some(upload.token.clone()),
            files: std::mem::take(&mut upload.files),
            upload_type,
            committed_at_ms: now_ms(),
            info: info.info,
            chunked_upload: upload.chunked_upload.take(),
        });
        m.population = None;
        m.analysis = None;
        m.itn = None;
        // The TPR data stays (it is not the ward table), but its maps are loose files and go
        // with the generation like every other.
        if let Some(o) = m.tpr.as_mut().and_then(|t| t.outputs.as_mut()) {
            o.loose.clear();
        }
        // Every loose file goes with the generation (`finish_cleanup`).
        m.retired = Vec::new();
        m.cleanup_pending = true;
        m.store(&dir)?;
        fault::point("upload-after-manifest");
        // Committed: from here on nothing may fail the request.
        finish_cleanup(&dir, &mut m);
        Ok(m.generation)
    }

    /// Stores `population.csv` for the current generation. It replaces any previous population
    /// file and drops ITN results (they were computed with the old one).
    pub fn commit_population(&self, id: &SessionId, bytes: &[u8], info: Value) -> Result<()> {
        let dir = self.session_dir(id)?;
        let token = format!("p-{}", random_hex::<16>()?);
        let staging = make_staging(&dir, &token)?;
        let result = (|| {
            write_new(&staging.join(Artifact::Population.file_name()), bytes)?;
            sync_tree(&staging)?;
            let _lock = LockGuard::acquire(&dir.join(LOCK))?;
            let mut m = Manifest::load(&dir)?;
            if m.upload.is_none() {
                return Err(Error::NoData(id.to_string()));
            }
            promote(&dir, &staging, &token)?;
            m.population = Some(PopulationRecord {
                dir: Some(token.clone()),
                generation: m.generation,
                committed_at_ms: now_ms(),
                info,
            });
            // The plan was computed with the old populations: it goes, files included.
            let retired = m.itn.take().map(|i| i.loose).unwrap_or_default();
            retire(&dir, &mut m, retired);
            m.store(&dir)?;
            after_commit(&dir, &m, "");
            Ok(())
        })();
        let _ = remove_any(&staging);
        result
    }

    // ---- ITN -----------------------------------------------------------------------------

    /// Stores ITN results for `analysis_id`, which must be the current analysis (else
    /// [`Error::StaleAnalysis`] and nothing is stored). `analysis_id` and
    /// `analysis_generation` are added to `results` when it is an object. `maps` are
    /// visualizations/exports (e.g. the ITN map) written only if the check passes, so a plan
    /// for superseded data leaves no map behind.
    pub fn commit_itn(
        &self,
        id: &SessionId,
        analysis_id: &str,
        results: &Value,
        maps: &[(Artifact, &[u8])],
    ) -> Result<ItnRecord> {
        let dir = self.session_dir(id)?;
        if let Some((artifact, _)) = maps.iter().find(|(a, _)| a.kind() != ArtifactKind::Loose) {
            return Err(Error::WrongArtifactKind {
                artifact: artifact.file_name(),
                context: "as an ITN map",
            });
        }
        let token = format!("i-{}", random_hex::<16>()?);
        let staging = make_staging(&dir, &token)?;
        let result = (|| {
            let generation = Manifest::load(&dir)?.generation;
            let mut doc = results.clone();
            if let Value::Object(map) = &mut doc {
                map.insert("analysis_id".into(), Value::from(analysis_id));
                map.insert("analysis_generation".into(), Value::from(generation));
            }
            let path = staging.join(Artifact::ItnResults.file_name());
            let bytes = serde_json::to_vec_pretty(&doc).map_err(|source| Error::Manifest {
                path: path.clone(),
                source,
            })?;
            write_new(&path, &bytes)?;
            sync_tree(&staging)?;
            fault::point("itn-before-commit");

            let _lock = LockGuard::acquire(&dir.join(LOCK))?;
            let mut m = Manifest::load(&dir)?;
            let current = m.current_analysis().map(|a| a.analysis_id.clone());
            if current.as_deref() != Some(analysis_id) || m.generation != generation {
                return Err(Error::StaleAnalysis {
                    offered: analysis_id.to_owned(),
                    current,
                });
            }
            for (artifact, bytes) in maps {
                write_loose(&dir, artifact, bytes)?;
            }
            promote(&dir, &staging, &token)?;
            let loose: Vec<String> = maps.iter().map(|(a, _)| a.file_name()).collect();
            // Only the current plan's files are kept: the previous plan's map and table are
            // retired by this commit.
            let retired = m
                .itn
                .take()
                .map(|old| old.loose)
                .unwrap_or_default()
                .into_iter()
                .filter(|n| !loose.contains(n))
                .collect();
            let record = ItnRecord {
                analysis_id: analysis_id.to_owned(),
                generation: m.generation,
                dir: Some(token.clone()),
                committed_at_ms: now_ms(),
                loose,
            };
            m.itn = Some(record.clone());
            retire(&dir, &mut m, retired);
            m.store(&dir)?;
            fault::point("itn-after-manifest");
            after_commit(&dir, &m, "");
            Ok(record)
        })();
        let _ = remove_any(&staging);
        result
    }

    // ---- TPR -----------------------------------------------------------------------------

    /// Stores a facility export as the session's TPR upload (`tpr_upload.<ext>`, tpr.md §8.3),
    /// replacing the previous one and its outputs (their maps included). Needs no ward table and
    /// starts no generation. Returns the upload's [`TprRecord::seq`].
    pub fn commit_tpr_upload(
        &self,
        id: &SessionId,
        artifact: &Artifact,
        bytes: &[u8],
        info: Value,
    ) -> Result<u64> {
        if artifact.kind() != ArtifactKind::TprInput {
            return Err(Error::WrongArtifactKind {
                artifact: artifact.file_name(),
                context: "as a TPR upload",
            });
        }
        let dir = self.session_dir(id)?;
        let token = format!("t-{}", random_hex::<16>()?);
        let staging = make_staging(&dir, &token)?;
        let result = (|| {
            write_new(&staging.join(artifact.file_name()), bytes)?;
            sync_tree(&staging)?;
            let _lock = LockGuard::acquire(&dir.join(LOCK))?;
            let mut m = Manifest::load(&dir)?;
            promote(&dir, &staging, &token)?;
            m.tpr_uploads += 1;
            let retired = m
                .tpr
                .take()
                .and_then(|t| t.outputs)
                .map(|o| o.loose)
                .unwrap_or_default();
            m.tpr = Some(TprRecord {
                seq: m.tpr_uploads,
                dir: Some(token.clone()),
                file: artifact.file_name(),
                committed_at_ms: now_ms(),
                info,
                outputs: None,
            });
            retire(&dir, &mut m, retired);
            m.store(&dir)?;
            after_commit(&dir, &m, "");
            Ok(m.tpr_uploads)
        })();
        let _ = remove_any(&staging);
        result
    }

    /// The current TPR upload and its latest outputs, from disk now; `None` without one.
    pub fn tpr(&self, id: &SessionId) -> Result<Option<TprRecord>> {
        let dir = self.session_dir(id)?;
        Ok(self.settle(&dir, Manifest::load(&dir)?)?.tpr)
    }

    /// Stores the outputs of a TPR computation made from TPR upload `seq` (which must still be
    /// current, else [`Error::Superseded`] and nothing is stored): `files` (TPR outputs) replace
    /// the previous computation's together, `maps` (visualizations) are written and the previous
    /// computation's maps that are not rewritten are retired.
    pub fn commit_tpr_outputs(
        &self,
        id: &SessionId,
        seq: u64,
        files: &[(Artifact, &[u8])],
        maps: &[(Artifact, &[u8])],
        summary: Value,
    ) -> Result<()> {
        if let Some((artifact, _)) = files
            .iter()
            .find(|(a, _)| a.kind() != ArtifactKind::TprOutput)
            .or_else(|| maps.iter().find(|(a, _)| a.kind() != ArtifactKind::Loose))
        {
            return Err(Error::WrongArtifactKind {
                artifact: artifact.file_name(),
                context: "as a TPR output",
            });
        }
        let dir = self.session_dir(id)?;
        let token = format!("r-{}", random_hex::<16>()?);
        let staging = make_staging(&dir, &token)?;
        let result = (|| {
            for (artifact, bytes) in files {
                write_new(&staging.join(artifact.file_name()), bytes)?;
            }
            sync_tree(&staging)?;
            let _lock = LockGuard::acquire(&dir.join(LOCK))?;
            let mut m = Manifest::load(&dir)?;
            let current = m.tpr.as_ref().map_or(0, |t| t.seq);
            if current != seq {
                return Err(Error::Superseded {
                    started: seq,
                    current,
                });
            }
            for (artifact, bytes) in maps {
                write_loose(&dir, artifact, bytes)?;
            }
            promote(&dir, &staging, &token)?;
            let loose: Vec<String> = maps.iter().map(|(a, _)| a.file_name()).collect();
            let Some(tpr) = m.tpr.as_mut() else {
                return Err(Error::NoData(id.to_string()));
            };
            let retired = tpr
                .outputs
                .take()
                .map(|o| o.loose)
                .unwrap_or_default()
                .into_iter()
                .filter(|n| !loose.contains(n))
                .collect();
            tpr.outputs = Some(TprOutputsRecord {
                dir: Some(token.clone()),
                files: files.iter().map(|(a, _)| a.file_name()).collect(),
                committed_at_ms: now_ms(),
                summary,
                loose,
            });
            retire(&dir, &mut m, retired);
            m.store(&dir)?;
            after_commit(&dir, &m, "");
            Ok(())
        })();
        let _ = remove_any(&staging);
        result
    }

    // ---- clear ---------------------------------------------------------------------------

    /// Makes the session report no data (H9): a new generation with nothing in it; inputs,
    /// results, visualizations, exports and the conversation are removed. The id stays valid
    /// (empty); the app hands the browser a fresh id from [`Store::create_session`].
    pub fn clear_session(&self, id: &SessionId) -> Result<()> {
        let dir = self.session_dir(id)?;
        let _lock = LockGuard::acquire(&dir.join(LOCK))?;
        let mut m = Manifest::load(&dir)?;
        m.format = crate::manifest::FORMAT;
        m.generation += 1;
        m.upload = None;
        m.population = None;
        m.analysis = None;
        m.itn = None;
        m.tpr = None;
        m.retired = Vec::new();
        m.cleanup_pending = true;
        m.store(&dir)?;
        // Emptied, not removed: `conversation.json` always exists (see `create_session`).
        if let Err(e) = write_atomic(
            &dir.join(Artifact::Conversation.file_name()),
            EMPTY_CONVERSATION,
        ) {
            log_cleanup("empty", &dir.join(Artifact::Conversation.file_name()), &e);
        }
        finish_cleanup(&dir, &mut m);
        Ok(())
    }

    /// Finishes the cleanup an upload or clear left pending when its worker died after the
    /// commit. Takes the session lock only if it is free: a live committer finishes on its own.
    /// Returns the manifest as it now stands.
    fn settle(&self, dir: &SessionDir, m: Manifest) -> Result<Manifest> {
        if !m.cleanup_pending {
            return Ok(m);
        }
        let Some(_lock) = LockGuard::acquire_within(&dir.join(LOCK), Duration::ZERO)? else {
            return Ok(m);
        };
        let mut m = Manifest::load(dir)?;
        if m.cleanup_pending {
            finish_cleanup(dir, &mut m);
        }
        Ok(m)
    }

    // ---- reading -------------------------------------------------------------------------

    /// Opens the current version of an artifact. Fixed artifacts resolve through the manifest
    /// (so a file of an older generation is [`Error::ArtifactNotFound`]); visualizations and
    /// exports resolve safely under their folder (no symlinks, nothing outside the session).
    pub fn open_artifact(&self, id: &SessionId, artifact: &Artifact) -> Result<File> {
        let dir = self.session_dir(id)?;
        let not_found = |e: Error| match e {
            Error::ArtifactNotFound(_) => Error::ArtifactNotFound(artifact.file_name()),
            other => other,
        };
        match artifact.kind() {
            ArtifactKind::Loose => {
                // Maps and packages of an older generation are never served, even when the
                // worker that committed the new one died before removing them.
                if self.settle(&dir, Manifest::load(&dir)?)?.cleanup_pending {
                    return Err(Error::ArtifactNotFound(artifact.file_name()));
                }
                // `file_name` is `visualizations/<RelPath>` or `exports/<RelPath>`: plain
                // components only; links on the way are refused.
                dir.open_file(&artifact.file_name()).map_err(not_found)
            }
            ArtifactKind::Document => dir.open_file(&artifact.file_name()).map_err(not_found),
            _ => {
                // A concurrent commit may collect the directory we just looked up; the new
                // manifest then tells us where the current file is.
                for _ in 0..4 {
                    let m = Manifest::load(&dir)?;
                    let name = artifact.file_name();
                    let rel = match m.locate(artifact) {
                        None => return Err(Error::ArtifactNotFound(name)),
                        Some(Some(token)) => format!("{DATA}/{token}/{name}"),
                        Some(None) => name,
                    };
                    match dir.open_file(&rel) {
                        Err(Error::ArtifactNotFound(_)) => continue,
                        other => return other,
                    }
                }
                Err(Error::ArtifactNotFound(artifact.file_name()))
            }
        }
    }

    pub fn read_artifact(&self, id: &SessionId, artifact: &Artifact) -> Result<Vec<u8>> {
        let mut file = self.open_artifact(id, artifact)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(Error::io("read", artifact.file_name()))?;
        Ok(bytes)
    }

    /// The current upload's ward table (CSV or Excel), or `None` before any upload. The one way
    /// the service reads the uploaded table back.
    pub fn read_uploaded_table(&self, id: &SessionId) -> Result<Option<UploadedTable>> {
        for artifact in UPLOADED_TABLE {
            match self.read_artifact(id, &artifact) {
                Ok(bytes) => return Ok(Some(UploadedTable { artifact, bytes })),
                Err(Error::ArtifactNotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Lists the files under `visualizations/` (relative names), for `/session_info`.
    pub fn list_visualizations(&self, id: &SessionId) -> Result<Vec<String>> {
        let dir = self.session_dir(id)?;
        let root = dir.join(VISUALIZATIONS);
        let mut out = Vec::new();
        list_files(&root, "", &mut out)?;
        out.sort();
        Ok(out)
    }

    /// Lists the files under `exports/` (relative names), for the download menu.
    pub fn list_exports(&self, id: &SessionId) -> Result<Vec<String>> {
        let dir = self.session_dir(id)?;
        let mut out = Vec::new();
        list_files(&dir.join(EXPORTS), "", &mut out)?;
        out.sort();
        Ok(out)
    }

    // ---- loose files and the conversation --------------------------------------------------

    /// Creates a visualization or export that replaces its target atomically on
    /// [`AtomicFile::commit`].
    pub fn create_file(&self, id: &SessionId, artifact: &Artifact) -> Result<AtomicFile> {
        create_loose(&self.session_dir(id)?, artifact)
    }

    /// Writes a visualization or export atomically.
    pub fn write_file(&self, id: &SessionId, artifact: &Artifact, bytes: &[u8]) -> Result<()> {
        write_loose(&self.session_dir(id)?, artifact, bytes)
    }

    /// The conversation document, `None` when the session has none yet (a fresh or cleared
    /// session stores `null`).
    pub fn read_conversation(&self, id: &SessionId) -> Result<Option<Value>> {
        let dir = self.session_dir(id)?;
        Ok(read_json(&dir, &Artifact::Conversation.file_name())?.filter(|v| !v.is_null()))
    }

    /// Read-modify-write of `conversation.json` under the session lock, so two workers'
    /// turns never overwrite each other. `update` must not call back into the `Store` for this
    /// session (the lock is held while it runs).
    pub fn update_conversation<F>(&self, id: &SessionId, update: F) -> Result<Value>
    where
        F: FnOnce(Option<Value>) -> Value,
    {
        let dir = self.session_dir(id)?;
        let name = Artifact::Conversation.file_name();
        let path = dir.join(&name);
        let _lock = LockGuard::acquire(&dir.join(LOCK))?;
        let current = match read_json(&dir, &name)? {
            Some(v) => Some(v),
            // Missing: a session made before the file was always written, or a stale negative
            // lookup (NFS). An exclusive create asks the server; if the file does exist, it
            // refuses and the read is repeated, so another host's history is never overwritten.
            None => match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    file.write_all(EMPTY_CONVERSATION)
                        .map_err(Error::io("write", &path))?;
                    None
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_json(&dir, &name)?,
                Err(e) => return Err(Error::io("create", &path)(e)),
            },
        };
        // Bounded: the oldest turns go first (`conversation.rs`).
        let (next, bytes) = crate::conversation::bounded(
            update(current.filter(|v| !v.is_null())),
            crate::conversation::MAX_CONVERSATION_BYTES,
        );
        write_atomic(&path, &bytes)?;
        Ok(next)
    }
}

impl Upload {
    /// Stages one input file (`RawCsv`, `RawXlsx` or `RawShapefile`).
    pub fn write(&mut self, artifact: &Artifact, bytes: &[u8]) -> Result<()> {
        if artifact.kind() != ArtifactKind::Input {
            return Err(Error::WrongArtifactKind {
                artifact: artifact.file_name(),
                context: "in an upload",
            });
        }
        let name = artifact.file_name();
        // One data file per generation: a CSV replaces a staged XLSX and vice versa.
        let other = match artifact {
            Artifact::RawCsv => Some(Artifact::RawXlsx),
            Artifact::RawXlsx => Some(Artifact::RawCsv),
            _ => None,
        };
        if let Some(other) = other {
            let other = other.file_name();
            remove_any(&self.staging.join(&other))?;
            self.files.retain(|f| *f != other);
        }
        write_new(&self.staging.join(&name), bytes)?;
        if !self.files.contains(&name) {
            self.files.push(name);
        }
        fault::point("upload-after-first-input");
        Ok(())
    }

    pub fn session(&self) -> &SessionId {
        &self.session
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Uncommitted: the staging directory goes; committed: `staging` now names the data dir
        // and must stay.
        if self.staging.starts_with(self.session_dir.join(STAGING)) {
            let _ = remove_any(&self.staging);
        }
    }
}

// ---- protocol pieces shared with the analysis module --------------------------------------

pub(crate) fn make_staging(session_dir: &Path, token: &str) -> Result<PathBuf> {
    let root = session_dir.join(STAGING);
    create_subdir(&root)?;
    let dir = root.join(token);
    fs::create_dir(&dir).map_err(Error::io("create", &dir))?;
    Ok(dir)
}

/// Writes a file inside a staging directory. No rename needed: the directory as a whole becomes
/// visible by one rename at commit, after [`sync_tree`].
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(Error::io("create", path))?;
    file.write_all(bytes).map_err(Error::io("write", path))
}

/// fsync every file in a staging directory and the directory itself, whoever wrote them.
pub(crate) fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let path = entry.map_err(Error::io("list", dir))?.path();
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(Error::io("fsync", &path))?;
    }
    sync_dir(dir)
}

/// Creates one directory inside an existing session folder. Never `create_dir_all`: a session
/// that the sweep removed must not come back as an empty folder under a request in flight.
fn create_subdir(path: &Path) -> Result<()> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create", path)(e)),
    }
}

/// Moves a staging directory into `.data/` (under the session lock). Until a manifest names it,
/// it is garbage.
pub(crate) fn promote(session_dir: &Path, staging: &Path, token: &str) -> Result<PathBuf> {
    let data = session_dir.join(DATA);
    create_subdir(&data)?;
    let target = data.join(token);
    fs::rename(staging, &target).map_err(Error::io("rename into place", &target))?;
    // The manifest that names `target` is written next; the rename must be durable first.
    // The staging side needs no fsync: if its entry reappears after a power cut, it is debris.
    sync_dir(&data)?;
    Ok(target)
}

/// Makes the root mirrors match the manifest: hard links to the current files, removal of the
/// rest. Only for older tools; this crate never reads them while a manifest exists, so a crash
/// half-way leaves nothing that counts, and the next commit repairs it.
pub(crate) fn publish(
    session_dir: &SessionDir,
    m: &Manifest,
    first_mirror_fault: &str,
) -> Result<()> {
    let mut first = true;
    for artifact in FIXED.iter().filter(|a| a.kind() != ArtifactKind::Document) {
        let name = artifact.file_name();
        let mirror = session_dir.join(&name);
        match m.locate(artifact) {
            Some(None) => {} // a Python-system file in place: it is its own mirror
            Some(Some(token)) => {
                let temp = session_dir.join(format!("{TEMP_PREFIX}{name}-{}", random_hex::<8>()?));
                session_dir.link_into_root(&format!("{DATA}/{token}/{name}"), &temp)?;
                fs::rename(&temp, &mirror).map_err(Error::io("rename into place", &mirror))?;
                // rename(2) is a no-op when both names already link the same inode (an unchanged
                // mirror): the temp name would stay behind.
                let _ = fs::remove_file(&temp);
                if std::mem::take(&mut first) && !first_mirror_fault.is_empty() {
                    fault::point(first_mirror_fault);
                }
            }
            None => remove_any(&mirror)?,
        }
    }
    // No fsync: mirrors are best effort by design; the manifest write already was durable.
    Ok(())
}

/// Before a commit: removes what the previous commit retired (normally gone already; this
/// finishes the job of a worker that died right after its commit), then records `newly` as what
/// this commit retires. Best effort: a file left behind is only disk space.
pub(crate) fn retire(session_dir: &SessionDir, m: &mut Manifest, newly: Vec<String>) {
    remove_retired(session_dir, m);
    m.retired = newly;
}

/// After a commit: removes the loose files it retired. Best effort, never fails a commit.
pub(crate) fn remove_retired(session_dir: &SessionDir, m: &Manifest) {
    for name in &m.retired {
        if loose_artifact(name).is_some() {
            let _ = session_dir.remove_file(name);
        }
    }
}

/// The loose files whose name carries `analysis_id` (`visualizations/...`, `exports/...`): the
/// maps and packages the app derived from that analysis.
pub(crate) fn loose_files_naming(session_dir: &Path, analysis_id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for sub in [VISUALIZATIONS, EXPORTS] {
        let mut names = Vec::new();
        list_files(&session_dir.join(sub), "", &mut names)?;
        out.extend(
            names
                .into_iter()
                .filter(|n| n.contains(analysis_id))
                .map(|n| format!("{sub}/{n}")),
        );
    }
    Ok(out)
}

/// After an upload or clear committed: root mirrors match the new manifest, the previous data's
/// maps and packages are gone (H5b), garbage is collected, and the manifest says so.
///
/// Best effort: it runs after the commit, so a failure is logged and never fails the request.
/// The folders are moved aside by one rename each; only if a rename fails does the manifest keep
/// `cleanup_pending` (old maps stay hidden, and the next reader finishes the job).
fn finish_cleanup(session_dir: &SessionDir, m: &mut Manifest) {
    if let Err(e) = publish(session_dir, m, "") {
        log_cleanup("publish mirrors in", session_dir, &e);
    }
    let mut moved = true;
    for sub in [VISUALIZATIONS, EXPORTS] {
        if let Err(e) = discard_subdir(session_dir, sub) {
            log_cleanup("move aside", &session_dir.join(sub), &e);
            moved = false;
        }
    }
    collect_garbage(session_dir, m);
    if moved {
        m.cleanup_pending = false;
        if let Err(e) = m.store(session_dir) {
            log_cleanup("record the cleanup in", &session_dir.join(MANIFEST), &e);
        }
    }
}

/// After an ITN, population or analysis commit: mirrors, retired files, garbage. Best effort.
pub(crate) fn after_commit(session_dir: &SessionDir, m: &Manifest, first_mirror_fault: &str) {
    if let Err(e) = publish(session_dir, m, first_mirror_fault) {
        log_cleanup("publish mirrors in", session_dir, &e);
    }
    remove_retired(session_dir, m);
    collect_garbage(session_dir, m);
}

/// Removes `.data/` directories the manifest does not name, and abandoned staging and temp
/// files. Called under the session lock after a commit. Best effort: what cannot go now (an NFS
/// `.nfs*` file a reader still holds) goes in a later collection.
pub(crate) fn collect_garbage(session_dir: &Path, m: &Manifest) {
    let keep = m.referenced_dirs();
    let data = session_dir.join(DATA);
    if let Ok(entries) = fs::read_dir(&data) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !keep.iter().any(|k| name.to_str() == Some(k)) && !is_silly_rename(&name) {
                remove_best_effort(&entry.path());
            }
        }
    }
    let now = SystemTime::now();
    let is_stale = |path: &Path| {
        fs::symlink_metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_STAGING)
    };
    if let Ok(entries) = fs::read_dir(session_dir.join(STAGING)) {
        for entry in entries.flatten() {
            // Chunked uploads have their own, longer limit (a slow link resumes hours later):
            // the sweep collects them (`chunks.rs`).
            let chunked = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(crate::chunks::CHUNKED_PREFIX));
            if !chunked && is_stale(&entry.path()) && !is_silly_rename(&entry.file_name()) {
                remove_best_effort(&entry.path());
            }
        }
    }
    // Temp files of writers that died: in the root (mirrors, manifest) and in the loose folders
    // (maps, packages written with `AtomicFile`).
    for folder in [
        session_dir.to_path_buf(),
        session_dir.join(VISUALIZATIONS),
        session_dir.join(EXPORTS),
    ] {
        if let Ok(entries) = fs::read_dir(&folder) {
            for entry in entries.flatten() {
                let temp = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(TEMP_PREFIX));
                if temp && is_stale(&entry.path()) {
                    remove_best_effort(&entry.path());
                }
            }
        }
    }
}

fn create_loose(session_dir: &Path, artifact: &Artifact) -> Result<AtomicFile> {
    // `loose_path` refuses every kind but visualizations and exports.
    let path = loose_path(session_dir, artifact)?;
    ensure_dirs(session_dir, parent(&path)?)?;
    AtomicFile::create(&path)
}

fn write_loose(session_dir: &Path, artifact: &Artifact, bytes: &[u8]) -> Result<()> {
    let mut file = create_loose(session_dir, artifact)?;
    file.write_all(bytes)
        .map_err(Error::io("write", artifact.file_name()))?;
    file.commit()
}

/// Moves a subdirectory out of sight with one rename, then deletes it.
fn discard_subdir(session_dir: &Path, name: &str) -> Result<()> {
    let path = session_dir.join(name);
    if fs::symlink_metadata(&path).is_err() {
        return Ok(());
    }
    let root = session_dir.join(STAGING);
    create_subdir(&root)?;
    let trash = root.join(format!("trash-{}", random_hex::<8>()?));
    fs::rename(&path, &trash).map_err(Error::io("move aside", &path))?;
    sync_dir(session_dir)?;
    // Out of sight now; the removal itself may leave `.nfs*` files behind (swept later).
    remove_best_effort(&trash);
    Ok(())
}

fn loose_path(session_dir: &Path, artifact: &Artifact) -> Result<PathBuf> {
    let (sub, rel): (&str, &RelPath) = match artifact {
        Artifact::Visualization(rel) => (VISUALIZATIONS, rel),
        Artifact::Export(rel) => (EXPORTS, rel),
        other => {
            return Err(Error::WrongArtifactKind {
                artifact: other.file_name(),
                context: "as a loose file",
            });
        }
    };
    let mut path = session_dir.join(sub);
    for component in rel.components() {
        path.push(component);
    }
    Ok(path)
}

/// Creates the directories between the session folder and `dir`, refusing symlinks.
fn ensure_dirs(session_dir: &Path, dir: &Path) -> Result<()> {
    let rel = dir
        .strip_prefix(session_dir)
        .map_err(|_| Error::UnsafePath {
            path: dir.display().to_string(),
            reason: "outside the session",
        })?;
    let mut cursor = session_dir.to_path_buf();
    for component in rel.components() {
        cursor.push(component);
        match fs::symlink_metadata(&cursor) {
            Ok(meta) if meta.is_dir() && !meta.file_type().is_symlink() => {}
            Ok(_) => {
                return Err(Error::UnsafePath {
                    path: cursor.display().to_string(),
                    reason: "not a plain directory",
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&cursor) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("create", &cursor)(e)),
            },
            Err(e) => return Err(Error::io("inspect", &cursor)(e)),
        }
    }
    Ok(())
}

fn read_json(dir: &SessionDir, rel: &str) -> Result<Option<Value>> {
    let mut file = match dir.open_file(rel) {
        Ok(file) => file,
        Err(Error::ArtifactNotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let path = dir.join(rel);
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(Error::io("read", &path))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| Error::Manifest { path, source })
}

fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if file_type.is_dir() {
            list_files(&entry.path(), &rel, out)?;
        } else if file_type.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}
