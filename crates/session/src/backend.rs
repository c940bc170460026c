//! The one session-store interface the app uses: [`Store`], an enum over the local-disk backend
//! (`store.rs` and friends: today's, the default and embedded one) and the object-store backend
//! (`object.rs`: S3 through `object_store`, for several hosts sharing one bucket).
//!
//! Blocking, like the local backend: call it from a blocking thread (the app's `blocking`).
//! The object backend runs its requests on a small runtime of its own, built in the process that
//! uses it (after the fork: an HTTP client's pool and threads do not survive a fork), so a
//! blocking caller drives them with `block_on`. Local calls pay one `match`.
//!
//! With the object backend, the instance directory holds only this host's state: spool files of
//! request bodies, the analysis scratch (inputs and outputs of a computation running here), and
//! the cache of immutable data objects. Nothing mutable of a session is kept on the host.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::analysis::{AnalysisInputs, AnalysisStaging, ViewSource};
use crate::artifact::{Artifact, UPLOADED_TABLE, UploadedTable};
use crate::chunks::{Chunk, ChunkLimits, ChunkStatus, Finalizing};
use crate::conversation::{ConversationMessage, ConversationSummary, summary_of, turns};
use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::manifest::{ItnRecord, StatusHead, TprRecord};
use crate::object::{Begun, ObjectBackend};
use crate::store::{self as local, SessionState, UploadInfo, state_of};
use crate::sweep::{SweepPolicy, SweepReport};
use crate::{AnalysisOutcome, AnalysisRequest, AnalysisResult, AnalysisView, RunError};

/// The session store: local disk or an object store. Holds no session state; every call reads
/// the store.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    Local(local::Store),
    Object(Arc<Remote>),
}

/// The object backend with its runtime and this host's folders.
#[derive(Debug)]
pub(crate) struct Remote {
    backend: ObjectBackend,
    runtime: Runtime,
    /// A local store in `<instance>/scratch`: spool files and analysis scratch folders.
    scratch: local::Store,
    url: String,
}

/// The object backend's runtime; shut down without waiting when dropped (the last handle may be
/// dropped on an async thread, where a blocking shutdown panics).
#[derive(Debug)]
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Remote {
    fn block<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        match &self.runtime.0 {
            Some(rt) => rt.block_on(future),
            // Never: the runtime is only taken on drop.
            None => unreachable_runtime(),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_runtime() -> ! {
    panic!("the object store's runtime is gone")
}

/// Outputs of one analysis in the object store, for an [`AnalysisView`].
#[derive(Clone, Debug)]
pub(crate) struct RemoteData {
    remote: Arc<Remote>,
    id: SessionId,
    token: String,
}

impl RemoteData {
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>> {
        match self
            .remote
            .block(self.remote.backend.read_data(&self.id, &self.token, name))?
        {
            Some(bytes) => Ok(bytes.to_vec()),
            None => Err(Error::ArtifactNotFound(name.to_owned())),
        }
    }
}

/// An upload being staged; nothing of it counts until [`Store::commit_upload`].
#[derive(Debug)]
pub struct Upload {
    inner: UploadInner,
}

#[derive(Debug)]
enum UploadInner {
    Local(local::Upload),
    Object {
        session: SessionId,
        files: Vec<(Artifact, Bytes)>,
    },
}

impl From<local::Upload> for Upload {
    fn from(upload: local::Upload) -> Upload {
        Upload {
            inner: UploadInner::Local(upload),
        }
    }
}

impl Upload {
    /// Stages one input file (`RawCsv`, `RawXlsx` or `RawShapefile`).
    pub fn write(&mut self, artifact: &Artifact, bytes: &[u8]) -> Result<()> {
        match &mut self.inner {
            UploadInner::Local(u) => u.write(artifact, bytes),
            UploadInner::Object { files, .. } => {
                if artifact.kind() != crate::ArtifactKind::Input {
                    return Err(Error::WrongArtifactKind {
                        artifact: artifact.file_name(),
                        context: "in an upload",
                    });
                }
                // One data file per generation: a CSV replaces a staged XLSX and vice versa.
                let other = match artifact {
                    Artifact::RawCsv => Some(Artifact::RawXlsx),
                    Artifact::RawXlsx => Some(Artifact::RawCsv),
                    _ => None,
                };
                files.retain(|(a, _)| a != artifact && Some(a) != other.as_ref());
                files.push((artifact.clone(), Bytes::copy_from_slice(bytes)));
                Ok(())
            }
        }
    }

    pub fn session(&self) -> &SessionId {
        match &self.inner {
            UploadInner::Local(u) => u.session(),
            UploadInner::Object { session, .. } => session,
        }
    }
}

/// What a chunked upload needs and the object backend does not offer.
fn chunks_unsupported() -> Error {
    Error::Unsupported(
        "resumable (chunked) uploads are not available with the S3 session store (store = s3://...); \
         send the files in one request to /upload_both_files or /upload_csv"
            .to_owned(),
    )
}

impl Store {
    /// The local backend on `<instance_dir>/uploads/` (creating it if needed).
    pub fn open(instance_dir: impl AsRef<Path>) -> Result<Store> {
        Ok(Store {
            inner: Inner::Local(local::Store::open(instance_dir)?),
        })
    }

    /// The object backend for `s3://BUCKET/PREFIX`, with `vars` the `AWS_*` settings (endpoint,
    /// region, credentials, `AWS_ALLOW_HTTP`). `instance_dir` holds this host's spool files,
    /// analysis scratch and cache of immutable objects. Build it in the process that uses it
    /// (after a fork). Does not contact the store: see [`Store::check`].
    pub fn open_s3(
        url: &str,
        vars: impl IntoIterator<Item = (String, String)>,
        instance_dir: impl AsRef<Path>,
    ) -> Result<Store> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mrpt-object-store")
            .enable_all()
            .build()
            .map_err(Error::io("start the object store's runtime", ""))?;
        let cache = instance_dir.as_ref().join("cache");
        let backend = ObjectBackend::s3(url, vars)?.with_cache(cache);
        let scratch = local::Store::open(instance_dir.as_ref().join("scratch"))?;
        Ok(Store {
            inner: Inner::Object(Arc::new(Remote {
                backend,
                runtime: Runtime(Some(runtime)),
                scratch,
                url: url.to_owned(),
            })),
        })
    }

    /// True for the local-disk backend (cheap enough to call on an async thread).
    pub fn is_local(&self) -> bool {
        matches!(self.inner, Inner::Local(_))
    }

    /// The local backend, when this is one.
    pub fn local(&self) -> Option<&local::Store> {
        match &self.inner {
            Inner::Local(s) => Some(s),
            Inner::Object(_) => None,
        }
    }

    /// Proves the store usable: for S3, lists the prefix (bucket, endpoint and credentials are
    /// right). Local: the folder was opened already.
    pub fn check(&self) -> Result<()> {
        match &self.inner {
            Inner::Local(_) => Ok(()),
            Inner::Object(r) => r.block(r.backend.check()).map_err(|e| Error::Io {
                op: "reach the session store",
                path: PathBuf::from(&r.url),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// Test hook: the object backend, when this is one.
    pub fn object(&self) -> Option<&ObjectBackend> {
        match &self.inner {
            Inner::Local(_) => None,
            Inner::Object(r) => Some(&r.backend),
        }
    }

    // ---- sessions --------------------------------------------------------------------------

    pub fn create_session(&self) -> Result<SessionId> {
        match &self.inner {
            Inner::Local(s) => s.create_session(),
            Inner::Object(r) => r.block(r.backend.create_session()),
        }
    }

    /// Parses an untrusted id and, on local disk, checks that this server minted it. On the
    /// object store this costs no request (it may run on an async thread): the next call on
    /// the session answers [`Error::SessionNotFound`] for an id never minted.
    pub fn session(&self, text: &str) -> Result<SessionId> {
        match &self.inner {
            Inner::Local(s) => s.session(text),
            Inner::Object(_) => SessionId::parse(text),
        }
    }

    pub fn status(&self, id: &SessionId) -> Result<SessionState> {
        match &self.inner {
            Inner::Local(s) => s.status(id),
            Inner::Object(r) => {
                let m = r.block(r.backend.status(id))?;
                Ok(state_of(id, &m.to_local()))
            }
        }
    }

    /// The status route's fields. Local: the manifest's head line (inline-cheap). Object: one
    /// GET of the manifest (call it from a blocking thread).
    pub fn status_head(&self, id: &SessionId) -> Result<StatusHead> {
        match &self.inner {
            Inner::Local(s) => s.status_head(id),
            Inner::Object(r) => {
                let m = r.block(r.backend.status(id))?;
                Ok(StatusHead::of(&m.to_local()))
            }
        }
    }

    // ---- uploads ---------------------------------------------------------------------------

    pub fn begin_upload(&self, id: &SessionId) -> Result<Upload> {
        match &self.inner {
            Inner::Local(s) => s.begin_upload(id).map(Upload::from),
            Inner::Object(_) => Ok(Upload {
                inner: UploadInner::Object {
                    session: id.clone(),
                    files: Vec::new(),
                },
            }),
        }
    }

    pub fn commit_upload(&self, upload: Upload, info: UploadInfo) -> Result<u64> {
        match (&self.inner, upload.inner) {
            (Inner::Local(s), UploadInner::Local(u)) => s.commit_upload(u, info),
            (Inner::Object(r), UploadInner::Object { session, files }) => {
                r.block(r.backend.commit_upload(&session, files, info))
            }
            _ => Err(Error::Unsupported(
                "an upload was staged in another session store".to_owned(),
            )),
        }
    }

    pub fn commit_population(&self, id: &SessionId, bytes: &[u8], info: Value) -> Result<()> {
        match &self.inner {
            Inner::Local(s) => s.commit_population(id, bytes, info),
            Inner::Object(r) => r.block(r.backend.commit_population(
                id,
                Bytes::copy_from_slice(bytes),
                info,
            )),
        }
    }

    pub fn commit_itn(
        &self,
        id: &SessionId,
        analysis_id: &str,
        results: &Value,
        maps: &[(Artifact, &[u8])],
    ) -> Result<ItnRecord> {
        match &self.inner {
            Inner::Local(s) => s.commit_itn(id, analysis_id, results, maps),
            Inner::Object(r) => {
                let maps = maps
                    .iter()
                    .map(|(a, b)| (a.clone(), Bytes::copy_from_slice(b)))
                    .collect();
                r.block(r.backend.commit_itn_doc(id, analysis_id, results, maps))
            }
        }
    }

    pub fn commit_tpr_upload(
        &self,
        id: &SessionId,
        artifact: &Artifact,
        bytes: &[u8],
        info: Value,
    ) -> Result<u64> {
        match &self.inner {
            Inner::Local(s) => s.commit_tpr_upload(id, artifact, bytes, info),
            Inner::Object(r) => r.block(r.backend.commit_tpr_upload(
                id,
                artifact,
                Bytes::copy_from_slice(bytes),
                info,
            )),
        }
    }

    pub fn tpr(&self, id: &SessionId) -> Result<Option<TprRecord>> {
        match &self.inner {
            Inner::Local(s) => s.tpr(id),
            Inner::Object(r) => Ok(r.block(r.backend.status(id))?.tpr),
        }
    }

    pub fn commit_tpr_outputs(
        &self,
        id: &SessionId,
        seq: u64,
        files: &[(Artifact, &[u8])],
        maps: &[(Artifact, &[u8])],
        summary: Value,
    ) -> Result<()> {
        match &self.inner {
            Inner::Local(s) => s.commit_tpr_outputs(id, seq, files, maps, summary),
            Inner::Object(r) => {
                let own = |list: &[(Artifact, &[u8])]| {
                    list.iter()
                        .map(|(a, b)| (a.clone(), Bytes::copy_from_slice(b)))
                        .collect()
                };
                r.block(
                    r.backend
                        .commit_tpr_outputs(id, seq, own(files), own(maps), summary),
                )
            }
        }
    }

    pub fn clear_session(&self, id: &SessionId) -> Result<()> {
        match &self.inner {
            Inner::Local(s) => s.clear_session(id),
            Inner::Object(r) => r.block(r.backend.clear_session(id)).map(drop),
        }
    }

    // ---- reading ---------------------------------------------------------------------------

    pub fn read_artifact(&self, id: &SessionId, artifact: &Artifact) -> Result<Vec<u8>> {
        match &self.inner {
            Inner::Local(s) => s.read_artifact(id, artifact),
            Inner::Object(r) => r
                .block(r.backend.read_artifact(id, artifact))
                .map(|b| b.to_vec()),
        }
    }

    /// The current upload's ward table (CSV or Excel), or `None` before any upload.
    pub fn read_uploaded_table(&self, id: &SessionId) -> Result<Option<UploadedTable>> {
        match &self.inner {
            Inner::Local(s) => s.read_uploaded_table(id),
            Inner::Object(_) => {
                for artifact in UPLOADED_TABLE {
                    match self.read_artifact(id, &artifact) {
                        Ok(bytes) => return Ok(Some(UploadedTable { artifact, bytes })),
                        Err(Error::ArtifactNotFound(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Ok(None)
            }
        }
    }

    pub fn list_visualizations(&self, id: &SessionId) -> Result<Vec<String>> {
        match &self.inner {
            Inner::Local(s) => s.list_visualizations(id),
            Inner::Object(r) => r.block(r.backend.list_loose(id, "visualizations")),
        }
    }

    pub fn list_exports(&self, id: &SessionId) -> Result<Vec<String>> {
        match &self.inner {
            Inner::Local(s) => s.list_exports(id),
            Inner::Object(r) => r.block(r.backend.list_loose(id, "exports")),
        }
    }

    /// Writes a visualization or export atomically.
    pub fn write_file(&self, id: &SessionId, artifact: &Artifact, bytes: &[u8]) -> Result<()> {
        match &self.inner {
            Inner::Local(s) => s.write_file(id, artifact, bytes),
            Inner::Object(r) => r.block(r.backend.write_loose(
                id,
                artifact,
                Bytes::copy_from_slice(bytes),
            )),
        }
    }

    /// The current committed analysis, or `None`.
    pub fn current_analysis(&self, id: &SessionId) -> Result<Option<AnalysisView>> {
        match &self.inner {
            Inner::Local(s) => s.current_analysis(id),
            Inner::Object(r) => {
                let m = r.block(r.backend.status(id))?;
                let Some(a) = m.analysis.as_ref().filter(|a| a.generation == m.generation) else {
                    return Ok(None);
                };
                let Some(token) = a.dir.clone() else {
                    return Ok(None);
                };
                Ok(Some(AnalysisView {
                    analysis_id: a.analysis_id.clone(),
                    generation: a.generation,
                    variables_used: a.variables_used.clone(),
                    summary: a.summary.clone(),
                    legacy: a.legacy,
                    files: a.files.clone(),
                    source: ViewSource::Object(RemoteData {
                        remote: Arc::clone(r),
                        id: id.clone(),
                        token,
                    }),
                }))
            }
        }
    }

    // ---- the conversation ------------------------------------------------------------------

    pub fn read_conversation(&self, id: &SessionId) -> Result<Option<Value>> {
        match &self.inner {
            Inner::Local(s) => s.read_conversation(id),
            Inner::Object(r) => r.block(r.backend.read_conversation(id)),
        }
    }

    /// Read-modify-write of the conversation; two turns never overwrite each other. On the
    /// object store `update` may run more than once (a lost compare-and-swap is retried).
    pub fn update_conversation<F>(&self, id: &SessionId, mut update: F) -> Result<Value>
    where
        F: FnMut(Option<Value>) -> Value,
    {
        match &self.inner {
            Inner::Local(s) => s.update_conversation(id, update),
            Inner::Object(r) => r.block(r.backend.update_conversation(id, |current| {
                crate::conversation::bounded(
                    update(current),
                    crate::conversation::MAX_CONVERSATION_BYTES,
                )
                .0
            })),
        }
    }

    pub fn conversation_messages(&self, id: &SessionId) -> Result<Vec<ConversationMessage>> {
        match &self.inner {
            Inner::Local(s) => s.conversation_messages(id),
            Inner::Object(_) => Ok(self
                .read_conversation(id)?
                .map(|doc| turns(&doc))
                .unwrap_or_default()),
        }
    }

    pub fn conversation_summary(&self, id: &SessionId) -> Result<Option<ConversationSummary>> {
        match &self.inner {
            Inner::Local(s) => s.conversation_summary(id),
            Inner::Object(r) => {
                let messages = self.conversation_messages(id)?;
                if messages.is_empty() {
                    return Ok(None);
                }
                let has_files = r.block(r.backend.status(id))?.upload.is_some();
                Ok(summary_of(id, &messages, has_files))
            }
        }
    }

    // ---- the analysis ----------------------------------------------------------------------

    /// Runs `compute` at most once per answerable request across every process (and, on the
    /// object store, every host) sharing the store. Blocking: call it from a blocking thread.
    /// On the object store the inputs are copied to this host's scratch folder and the outputs
    /// read back from it, so `compute` sees the same [`AnalysisInputs`] and
    /// [`AnalysisStaging`] on both backends.
    pub fn run_analysis_once<E, F>(
        &self,
        id: &SessionId,
        request: &AnalysisRequest,
        compute: F,
    ) -> Result<AnalysisOutcome, RunError<E>>
    where
        F: FnOnce(&AnalysisInputs, &AnalysisStaging) -> Result<AnalysisResult, E>,
    {
        let r = match &self.inner {
            Inner::Local(s) => return s.run_analysis_once(id, request, compute),
            Inner::Object(r) => r,
        };
        let started = match r.block(r.backend.begin_analysis(id, request))? {
            Begun::Answered(answer) => return Ok(answer),
            Begun::Started(started) => started,
        };
        match r.compute_in_scratch(&started.inputs, compute) {
            Ok(computed) => r.block(r.backend.finish_analysis(id, request, started, computed)),
            Err(e) => {
                r.block(r.backend.abandon_analysis(id, started));
                Err(e.into())
            }
        }
    }

    // ---- host-local: spool files, chunked uploads ------------------------------------------

    /// A new spool file for a request body (on this host's disk for the object store).
    pub fn spool(&self, session: Option<&SessionId>) -> Result<File> {
        match &self.inner {
            Inner::Local(s) => s.spool(session),
            Inner::Object(r) => r.scratch.spool(None),
        }
    }

    pub fn put_chunk(
        &self,
        id: &SessionId,
        chunk: Chunk<'_>,
        limits: &ChunkLimits,
    ) -> Result<ChunkStatus> {
        match &self.inner {
            Inner::Local(s) => s.put_chunk(id, chunk, limits),
            Inner::Object(_) => Err(chunks_unsupported()),
        }
    }

    pub fn chunk_status(&self, id: &SessionId, upload_id: &str) -> Result<Option<ChunkStatus>> {
        match &self.inner {
            Inner::Local(s) => s.chunk_status(id, upload_id),
            Inner::Object(_) => Err(chunks_unsupported()),
        }
    }

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
        match &self.inner {
            Inner::Local(s) => s.finalize_chunks(id, upload_id, expected, commit),
            Inner::Object(_) => Err(chunks_unsupported().into()),
        }
    }

    // ---- sweeping --------------------------------------------------------------------------

    /// Sweeps idle sessions now (`prefork sessions gc`).
    pub fn sweep(
        &self,
        policy: &SweepPolicy,
        dry_run: bool,
        wait: Duration,
    ) -> Result<Option<SweepReport>> {
        match &self.inner {
            Inner::Local(s) => s.sweep(policy, dry_run, wait),
            Inner::Object(r) => r.block(r.backend.sweep(policy, dry_run)).map(Some),
        }
    }

    /// The automatic sweep: runs when no process (on any host) swept within `every`.
    pub fn sweep_if_due(
        &self,
        policy: &SweepPolicy,
        every: Duration,
    ) -> Result<Option<SweepReport>> {
        match &self.inner {
            Inner::Local(s) => s.sweep_if_due(policy, every),
            Inner::Object(r) => r.block(r.backend.sweep_if_due(policy, every)),
        }
    }
}

impl Remote {
    /// Runs `compute` on this thread with the inputs copied into a scratch folder of this
    /// host; returns its result and the outputs it wrote. The folder is removed either way.
    fn compute_in_scratch<E, F>(
        &self,
        inputs: &crate::object::ObjectInputs,
        compute: F,
    ) -> Result<std::result::Result<crate::object::ObjectOutputs, E>>
    where
        F: FnOnce(&AnalysisInputs, &AnalysisStaging) -> std::result::Result<AnalysisResult, E>,
    {
        let scratch = self.scratch.create_session()?;
        let dir = self.scratch.session_dir(&scratch)?;
        struct RemoveOnDrop(PathBuf);
        impl Drop for RemoveOnDrop {
            fn drop(&mut self) {
                let _ = fs::remove_dir_all(&self.0);
            }
        }
        let _cleanup = RemoveOnDrop(dir.to_path_buf());
        let input_dir = dir.join("in");
        let output_dir = dir.join("out");
        for d in [&input_dir, &output_dir] {
            fs::create_dir(d).map_err(Error::io("create", d))?;
        }
        let mut files = Vec::new();
        for (artifact, bytes) in &inputs.files {
            let name = artifact.file_name();
            let path = input_dir.join(&name);
            fs::write(&path, bytes).map_err(Error::io("write", &path))?;
            files.push((artifact.clone(), path, format!("in/{name}")));
        }
        let analysis_inputs = AnalysisInputs {
            generation: inputs.generation,
            upload_type: inputs.upload_type.clone(),
            upload_info: inputs.upload_info.clone(),
            files,
            session: dir.clone(),
        };
        let staging = AnalysisStaging {
            dir: output_dir.clone(),
            analysis_id: inputs.analysis_id.clone(),
            written: Default::default(),
        };
        let result = match compute(&analysis_inputs, &staging) {
            Ok(result) => result,
            Err(e) => return Ok(Err(e)),
        };
        let written = staging
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut outputs = Vec::new();
        for name in written {
            let Some(artifact) = Artifact::from_file_name(&name) else {
                continue;
            };
            let path = output_dir.join(&name);
            let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
            outputs.push((artifact, Bytes::from(bytes)));
        }
        Ok(Ok((result, outputs)))
    }
}
