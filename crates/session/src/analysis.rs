//! The analysis protocol: exactly one computation per (session, upload generation, request)
//! across processes, committed by one manifest write that checks the generation is still
//! current.
//!
//! 1. Without any lock: if the current analysis answers the request, return it (`reused`).
//! 2. Take `.analysis.lock` (blocking; other callers for this session queue here). A holder that
//!    dies releases it with its file descriptors.
//! 3. Re-read the manifest: a result committed while we waited answers the request (this is how
//!    12 concurrent callers get one computation), even with `force` if it finished after the
//!    caller arrived.
//! 4. Under `.lock`: note the generation, count the start, hand out the input paths.
//! 5. Compute into `.staging/a-<analysis_id>/` (invisible to every reader).
//! 6. Under `.lock`: if the generation changed, discard ([`Error::Superseded`]); else move the
//!    staging dir into `.data/`, write the manifest (the commit point), refresh the mirrors,
//!    collect garbage.
//!
//! A crash before the manifest write leaves only staging or unreferenced data, which nothing
//! reads and the next commit removes; a crash after it leaves a complete committed analysis.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::artifact::{ANALYSIS_EVIDENCE, Artifact, ArtifactKind, UPLOADED_TABLE, UploadedTable};
use crate::durable::{LockGuard, remove_any};
use crate::error::{Error, Result};
use crate::fault;
use crate::id::{SessionId, random_hex};
use crate::manifest::{AnalysisRecord, Manifest, now_ms};
use crate::store::{
    ANALYSIS_LOCK, DATA, LOCK, STAGING, SessionDir, Store, make_staging, promote, retire, sync_tree,
};

/// How long `run_analysis_once` without a wait limit polls for the analysis lock.
const ANALYSIS_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// What `/run_analysis` asked for.
#[derive(Clone, Debug, Default)]
pub struct AnalysisRequest {
    /// `None`: automatic variable selection.
    pub variables: Option<Vec<String>>,
    /// Anything else that changes the result; compared for reuse (use `Value::Null` if none).
    pub options: Value,
    /// Recompute even if the current analysis answers the request (a result that another caller
    /// committed after this request arrived still counts as fresh).
    pub force: bool,
    /// How long to wait for another worker's analysis of this session; `None` waits as long as
    /// it takes. On timeout: [`Error::Busy`].
    pub wait: Option<Duration>,
}

/// The data the analysis reads: the current upload's files, fixed when the run started.
#[derive(Clone, Debug)]
pub struct AnalysisInputs {
    pub generation: u64,
    pub upload_type: String,
    pub upload_info: Value,
    /// (input, path, path relative to the session folder)
    pub(crate) files: Vec<(Artifact, PathBuf, String)>,
    pub(crate) session: SessionDir,
}

impl AnalysisInputs {
    /// Path of an input (`RawCsv`, `RawXlsx`, `RawShapefile`, `Population`) when present.
    pub fn path(&self, artifact: &Artifact) -> Option<&Path> {
        self.files
            .iter()
            .find(|(a, _, _)| a == artifact)
            .map(|(_, p, _)| p.as_path())
    }

    /// Reads an input (without following links); `Ok(None)` when this upload has no such file.
    pub fn read(&self, artifact: &Artifact) -> Result<Option<Vec<u8>>> {
        let Some((_, path, rel)) = self.files.iter().find(|(a, _, _)| a == artifact) else {
            return Ok(None);
        };
        read_all(&self.session, rel, path).map(Some)
    }

    /// This upload's ward table (CSV or Excel), as [`Store::read_uploaded_table`] reads the
    /// current one.
    pub fn uploaded_table(&self) -> Result<Option<UploadedTable>> {
        for artifact in UPLOADED_TABLE {
            if let Some(bytes) = self.read(&artifact)? {
                return Ok(Some(UploadedTable { artifact, bytes }));
            }
        }
        Ok(None)
    }
}

fn read_all(session: &SessionDir, rel: &str, path: &Path) -> Result<Vec<u8>> {
    let mut file = session.open_file(rel)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(Error::io("read", path))?;
    Ok(bytes)
}

/// Where an analysis writes its outputs before the commit.
#[derive(Debug)]
pub struct AnalysisStaging {
    pub(crate) dir: PathBuf,
    pub(crate) analysis_id: String,
    pub(crate) written: std::sync::Mutex<Vec<String>>,
}

impl AnalysisStaging {
    /// Writes one analysis output (`Rankings`, `UnifiedGeoparquet`, `ModelFormulas`, ...).
    pub fn write(&self, artifact: &Artifact, bytes: &[u8]) -> Result<()> {
        let mut file = self.create(artifact)?;
        let path = self.dir.join(artifact.file_name());
        file.write_all(bytes).map_err(Error::io("write", &path))
    }

    /// Creates one analysis output's file for the caller to stream into (a failed write fails
    /// the computation, which discards the whole staging folder).
    pub fn create(&self, artifact: &Artifact) -> Result<fs::File> {
        let name = self.output_name(artifact)?;
        let path = self.dir.join(&name);
        let file = fs::File::create(&path).map_err(Error::io("create", &path))?;
        self.note_written(name);
        Ok(file)
    }

    /// Makes `twin` a second name of the already written `existing` (a hard link: the files
    /// the Python system wrote twice, e.g. `composite_scores.csv`, are written once).
    pub fn link(&self, existing: &Artifact, twin: &Artifact) -> Result<()> {
        let from = self.dir.join(self.output_name(existing)?);
        let name = self.output_name(twin)?;
        let to = self.dir.join(&name);
        let _ = fs::remove_file(&to);
        fs::hard_link(&from, &to).map_err(Error::io("link", &to))?;
        self.note_written(name);
        Ok(())
    }

    fn output_name(&self, artifact: &Artifact) -> Result<String> {
        if artifact.kind() != ArtifactKind::AnalysisOutput {
            return Err(Error::WrongArtifactKind {
                artifact: artifact.file_name(),
                context: "by an analysis",
            });
        }
        Ok(artifact.file_name())
    }

    fn note_written(&self, name: String) {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !written.contains(&name) {
            written.push(name);
        }
        if written.len() == 1 {
            fault::point("analysis-after-first-output");
        }
    }

    /// The id this analysis will have if it commits.
    pub fn analysis_id(&self) -> &str {
        &self.analysis_id
    }
}

/// What the computation reports besides its files.
#[derive(Clone, Debug, Default)]
pub struct AnalysisResult {
    pub variables_used: Vec<String>,
    /// Stored in the manifest and returned on reuse: top wards, PCA figures, warnings...
    pub summary: Value,
}

/// The answer to `/run_analysis`.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisOutcome {
    pub analysis_id: String,
    /// True when no computation ran for this call.
    pub reused: bool,
    pub generation: u64,
    pub variables_used: Vec<String>,
    pub summary: Value,
}

/// Failure of [`Store::run_analysis_once`]: the session layer's, or the computation's own.
#[derive(Debug)]
pub enum RunError<E> {
    Session(Error),
    Compute(E),
}

impl<E> From<Error> for RunError<E> {
    fn from(e: Error) -> Self {
        RunError::Session(e)
    }
}

impl<E: fmt::Display> fmt::Display for RunError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Session(e) => e.fmt(f),
            RunError::Compute(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RunError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Session(e) => Some(e),
            RunError::Compute(e) => Some(e),
        }
    }
}

/// A committed analysis as seen at one moment, for readers such as ITN planning.
#[derive(Clone, Debug)]
pub struct AnalysisView {
    pub analysis_id: String,
    pub generation: u64,
    pub variables_used: Vec<String>,
    pub summary: Value,
    pub legacy: bool,
    /// File names of the outputs this analysis has.
    pub files: Vec<String>,
    pub(crate) source: ViewSource,
}

/// Where an [`AnalysisView`]'s outputs are.
#[derive(Clone, Debug)]
pub(crate) enum ViewSource {
    /// In the session folder, under `prefix`: `.data/a-<id>/` or `` (root).
    Dir { session: SessionDir, prefix: String },
    /// In the object store, under the analysis' token.
    Object(crate::backend::RemoteData),
}

impl AnalysisView {
    /// Reads an output of exactly this analysis. If a newer commit removed it meanwhile, the
    /// answer is [`Error::ArtifactNotFound`]; [`Store::commit_itn`] would refuse results based on
    /// it anyway.
    pub fn read(&self, artifact: &Artifact) -> Result<Vec<u8>> {
        let name = artifact.file_name();
        if artifact.kind() != ArtifactKind::AnalysisOutput || !self.files.contains(&name) {
            return Err(Error::ArtifactNotFound(name));
        }
        match &self.source {
            ViewSource::Dir { session, prefix } => {
                let rel = format!("{prefix}{name}");
                match read_all(session, &rel, &session.join(&rel)) {
                    Err(Error::ArtifactNotFound(_)) => Err(Error::ArtifactNotFound(name)),
                    other => other,
                }
            }
            ViewSource::Object(data) => data.read(&name),
        }
    }

    pub fn has(&self, artifact: &Artifact) -> bool {
        self.files.contains(&artifact.file_name())
    }
}

pub(crate) fn answers(record: &AnalysisRecord, request: &AnalysisRequest) -> bool {
    let same_variables = match &request.variables {
        None => record.variables_requested.is_none() || record.legacy,
        Some(vars) => {
            record.variables_requested.as_ref() == Some(vars) || record.variables_used == *vars
        }
    };
    same_variables
        && (record.options == request.options || record.legacy && request.options.is_null())
}

pub(crate) fn outcome(record: &AnalysisRecord, reused: bool) -> AnalysisOutcome {
    AnalysisOutcome {
        analysis_id: record.analysis_id.clone(),
        reused,
        generation: record.generation,
        variables_used: record.variables_used.clone(),
        summary: record.summary.clone(),
    }
}

impl Store {
    /// The current committed analysis, or `None` (ITN planning answers 409 then).
    pub fn current_analysis(&self, id: &SessionId) -> Result<Option<AnalysisView>> {
        let dir = self.session_dir(id)?;
        let m = Manifest::load(&dir)?;
        Ok(m.current_analysis().map(|a| AnalysisView {
            analysis_id: a.analysis_id.clone(),
            generation: a.generation,
            variables_used: a.variables_used.clone(),
            summary: a.summary.clone(),
            legacy: a.legacy,
            files: a.files.clone(),
            source: ViewSource::Dir {
                prefix: match &a.dir {
                    Some(token) => format!("{DATA}/{token}/"),
                    None => String::new(),
                },
                session: dir.clone(),
            },
        }))
    }

    /// Runs `compute` at most once per answerable request across all processes sharing the
    /// instance directory; see the module docs for the protocol. Blocking: call it from a
    /// blocking thread. `compute` runs while this process holds the session's analysis lock, so
    /// it must not call `run_analysis_once` for the same session.
    pub fn run_analysis_once<E, F>(
        &self,
        id: &SessionId,
        request: &AnalysisRequest,
        compute: F,
    ) -> Result<AnalysisOutcome, RunError<E>>
    where
        F: FnOnce(&AnalysisInputs, &AnalysisStaging) -> Result<AnalysisResult, E>,
    {
        let dir = self.session_dir(id)?;
        let arrived = Manifest::load(&dir)?;
        if !request.force
            && let Some(record) = arrived.current_analysis().filter(|r| answers(r, request))
        {
            return Ok(outcome(record, true));
        }

        let lock_path = dir.join(ANALYSIS_LOCK);
        let _running = match request.wait {
            // Polled, never a blocking flock (see `LockGuard::acquire`); an analysis takes
            // seconds, so a caller that set no limit waits for a generous one.
            None => LockGuard::acquire_within(&lock_path, ANALYSIS_WAIT)?
                .ok_or_else(|| Error::Busy(id.to_string()))?,
            Some(wait) => LockGuard::acquire_within(&lock_path, wait)?
                .ok_or_else(|| Error::Busy(id.to_string()))?,
        };

        let now = Manifest::load(&dir)?;
        if let Some(record) = now.current_analysis().filter(|r| answers(r, request))
            && (!request.force || record.seq > arrived.analyses_committed)
        {
            return Ok(outcome(record, true));
        }

        // We hold the analysis lock, so any analysis staging left is a dead worker's.
        if let Ok(entries) = fs::read_dir(dir.join(STAGING)) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("a-"))
                {
                    crate::durable::remove_best_effort(&entry.path());
                }
            }
        }

        let analysis_id = random_hex::<16>()?;
        let started_at_ms = now_ms();
        // The fence: the commit below happens only if no analysis committed since we started, so
        // two commits in one generation are impossible even if the analysis lock was lost (an
        // NFS lock revoked from a paused holder, a lock file replaced under us).
        let seen_committed;
        let inputs = {
            let _lock = LockGuard::acquire(&dir.join(LOCK))?;
            let mut m = Manifest::load(&dir)?;
            let Some(upload) = m.upload.clone() else {
                return Err(Error::NoData(id.to_string()).into());
            };
            m.analyses_started += 1;
            seen_committed = m.analyses_committed;
            m.store(&dir)?;
            let locate = |token: &Option<String>, name: &str| {
                let rel = match token {
                    Some(token) => format!("{DATA}/{token}/{name}"),
                    None => name.to_owned(),
                };
                (dir.join(&rel), rel)
            };
            let mut files = Vec::new();
            for name in &upload.files {
                if let Some(artifact) = Artifact::from_file_name(name) {
                    let (path, rel) = locate(&upload.dir, name);
                    files.push((artifact, path, rel));
                }
            }
            if let Some(population) = m.current_population() {
                let (path, rel) = locate(&population.dir, &Artifact::Population.file_name());
                files.push((Artifact::Population, path, rel));
            }
            AnalysisInputs {
                generation: m.generation,
                upload_type: upload.upload_type,
                upload_info: upload.info,
                files,
                session: dir.clone(),
            }
        };
        fault::point("analysis-started");

        let token = format!("a-{analysis_id}");
        let staging_dir = make_staging(&dir, &token)?;
        let staging = AnalysisStaging {
            dir: staging_dir.clone(),
            analysis_id: analysis_id.clone(),
            written: Default::default(),
        };
        let computed = compute(&inputs, &staging);
        let discard = || {
            let _ = remove_any(&staging_dir);
        };
        let result = match computed {
            Ok(result) => result,
            Err(e) => {
                discard();
                // Failing because the inputs vanished under a new upload is "superseded".
                let now = Manifest::load(&dir)?;
                let current = now.generation;
                // Failing because a holder that took over our lost lock removed our staging:
                // its answer is the answer.
                if now.analyses_committed != seen_committed
                    && let Some(record) = now.current_analysis().filter(|r| answers(r, request))
                {
                    return Ok(outcome(record, true));
                }
                if current != inputs.generation {
                    return Err(Error::Superseded {
                        started: inputs.generation,
                        current,
                    }
                    .into());
                }
                return Err(RunError::Compute(e));
            }
        };
        let files = staging
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if !ANALYSIS_EVIDENCE
            .iter()
            .any(|e| files.contains(&e.file_name()))
        {
            discard();
            return Err(Error::IncompleteAnalysis.into());
        }
        // Checked after the fence below: if our lock was lost, the new holder may have removed
        // our staging, and the fence's answer is the better one.
        let synced = sync_tree(&staging_dir);
        fault::point("analysis-before-commit");

        let _lock = LockGuard::acquire(&dir.join(LOCK))?;
        let mut m = Manifest::load(&dir)?;
        if m.generation != inputs.generation {
            discard();
            return Err(Error::Superseded {
                started: inputs.generation,
                current: m.generation,
            }
            .into());
        }
        if m.analyses_committed != seen_committed {
            discard();
            return match m.current_analysis().filter(|r| answers(r, request)) {
                Some(record) => Ok(outcome(record, true)),
                None => Err(Error::Busy(id.to_string()).into()),
            };
        }
        synced?;
        promote(&dir, &staging_dir, &token)?;
        fault::point("analysis-after-data-rename");
        // The superseded analysis' maps and packages (named with its id) and its ITN plan's
        // files go with it.
        let mut retired: Vec<String> = m.itn.as_ref().map(|i| i.loose.clone()).unwrap_or_default();
        if let Some(old) = &m.analysis {
            retired.extend(crate::store::loose_files_naming(&dir, &old.analysis_id)?);
        }
        m.analyses_committed += 1;
        let record = AnalysisRecord {
            analysis_id,
            generation: inputs.generation,
            seq: m.analyses_committed,
            dir: Some(token),
            files,
            variables_requested: request.variables.clone(),
            variables_used: result.variables_used,
            options: request.options.clone(),
            summary: result.summary,
            started_at_ms,
            finished_at_ms: now_ms(),
            legacy: false,
        };
        m.analysis = Some(record.clone());
        m.itn = None;
        retire(&dir, &mut m, retired);
        m.store(&dir)?;
        fault::point("analysis-after-manifest");
        // Committed: cleanup is best effort and never fails the request.
        crate::store::after_commit(&dir, &m, "analysis-mid-publish");
        Ok(outcome(&record, false))
    }
}
