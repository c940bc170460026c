//! The session store on an object store (S3 API, through the `object_store` crate): the protocol
//! of `shared/specs/scale-out.md` §2, for instances on several hosts that share one bucket.
//!
//! Keys under `<prefix>/uploads/<id>/`:
//! - `manifest.json`: the authority, replaced only by compare-and-swap (PUT `If-Match` its
//!   ETag). Every write raises `rev` and carries a fresh `writer` nonce, so a PUT whose first try
//!   landed before a retry (or a timeout) is recognised as ours by reading the manifest back.
//! - `data/<token>/<file>`: immutable objects, written before the manifest that names them.
//!   Unnamed tokens older than [`ObjectBackend::gc_grace`] are garbage (an upload in flight
//!   has a young token).
//! - `analysis.lease`: who may run the session's analysis: created if absent, taken over when
//!   released or expired (epoch + 1, `If-Match`), renewed by its holder. Never deleted, so epochs
//!   only grow. The epoch is fenced in the manifest: an analysis commits only while
//!   `running.epoch` is its own, so at most one commit per epoch whatever the clocks say.
//! - `conv/<clear_epoch>.json`: the conversation, compare-and-swap on its own key; a clear starts
//!   a new epoch (a new key), so no delete races an update.
//!
//! Status is one GET of the manifest; nothing mutable is cached. Immutable data objects may be
//! cached on this host's disk ([`ObjectBackend::with_cache`]), keyed by token.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analysis::{answers, outcome};
use crate::artifact::{ANALYSIS_EVIDENCE, Artifact, ArtifactKind};
use crate::error::{Error, Result};
use crate::id::{SessionId, random_hex};
use crate::manifest::{AnalysisRecord, ItnRecord, UploadRecord, now_ms};
use crate::{AnalysisOutcome, AnalysisRequest, AnalysisResult, RunError, UploadInfo};

/// Compare-and-swap attempts before a write answers busy (HTTP 503).
const CAS_TRIES: u32 = 20;

/// The manifest of a session in the object store.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ObjectManifest {
    /// +1 per write: the same bytes never recur (no ABA).
    pub rev: u64,
    /// A nonce per write: tells our own landed write from another writer's.
    pub writer: String,
    /// Upload generation: +1 per upload and per clear.
    pub generation: u64,
    /// +1 per clear: uploads begun before a clear never commit.
    pub clear_epoch: u64,
    /// The current upload.
    pub upload: Option<UploadRecord>,
    /// The current analysis (current only while its generation is).
    pub analysis: Option<AnalysisRecord>,
    /// The current ITN plan.
    pub itn: Option<ItnRecord>,
    /// Analyses started over the session's life.
    pub analyses_started: u64,
    /// Analyses committed over the session's life.
    pub analyses_committed: u64,
    /// The analysis running now: the lease epoch that may commit.
    pub running: Option<Running>,
}

/// The lease of the analysis running now.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Running {
    /// The lease epoch; only the holder of the latest epoch may commit.
    pub epoch: u64,
    /// A nonce naming the worker that holds it.
    pub holder: String,
}

impl ObjectManifest {
    /// The tokens (`data/<token>/`) this manifest names.
    pub fn referenced(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.upload.as_ref().and_then(|u| u.dir.clone()));
        out.extend(self.analysis.as_ref().and_then(|a| a.dir.clone()));
        out.extend(self.itn.as_ref().and_then(|i| i.dir.clone()));
        out
    }

    fn current_analysis(&self) -> Option<&AnalysisRecord> {
        self.analysis
            .as_ref()
            .filter(|a| a.generation == self.generation)
    }

    /// `(token, file name)` of an artifact in the current state.
    fn locate(&self, artifact: &Artifact) -> Option<(String, String)> {
        let name = artifact.file_name();
        let hit = |dir: &Option<String>, files: &[String]| {
            dir.clone()
                .filter(|_| files.contains(&name))
                .map(|d| (d, name.clone()))
        };
        match artifact.kind() {
            ArtifactKind::Input => self.upload.as_ref().and_then(|u| hit(&u.dir, &u.files)),
            ArtifactKind::AnalysisOutput => {
                self.current_analysis().and_then(|a| hit(&a.dir, &a.files))
            }
            _ => self
                .itn
                .as_ref()
                .filter(|i| i.generation == self.generation)
                .and_then(|i| {
                    let mut files = i.loose.clone();
                    files.push(Artifact::ItnResults.file_name());
                    hit(&i.dir, &files)
                }),
        }
    }
}

/// The lease object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Lease {
    holder: String,
    epoch: u64,
    expires_ms: u64,
    released: bool,
}

/// What a compare-and-swap step decided.
enum Step<T> {
    /// Write the changed manifest, then answer `T`.
    Write(T),
    /// Nothing to write (already applied, or nothing to do): answer `T`.
    Done(T),
}

/// The inputs of an analysis, read when it started.
#[derive(Clone, Debug)]
pub struct ObjectInputs {
    /// The upload generation read.
    pub generation: u64,
    /// `csv_shapefile` or `csv_only`.
    pub upload_type: String,
    /// What the app recorded with the upload.
    pub upload_info: Value,
    /// The upload's files and their bytes.
    pub files: Vec<(Artifact, Bytes)>,
}

/// What an analysis computed: its result and its output files.
pub type ObjectOutputs = (AnalysisResult, Vec<(Artifact, Bytes)>);

/// Handle on the sessions under one prefix of an object store. Holds no session state.
#[derive(Clone, Debug)]
pub struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// How long a lease lasts without renewal.
    pub lease_ttl: Duration,
    /// Clock skew allowed before an expired lease is taken over.
    pub lease_skew: Duration,
    /// Unnamed data tokens younger than this are kept (uploads in flight).
    pub gc_grace: Duration,
    cache: Option<PathBuf>,
    /// This process, in lease and `running` records.
    holder: String,
}

fn os_error(op: &'static str, key: &Key) -> impl FnOnce(object_store::Error) -> Error {
    let path = PathBuf::from(key.as_ref());
    move |e| Error::Io {
        op,
        path,
        source: io::Error::other(e),
    }
}

fn json_error(key: &Key) -> impl FnOnce(serde_json::Error) -> Error {
    let path = PathBuf::from(key.as_ref());
    move |source| Error::Manifest { path, source }
}

/// Jittered backoff between compare-and-swap attempts: 5 ms doubling to 100 ms.
async fn backoff(attempt: u32) {
    let base = 5u64 << attempt.min(5);
    let jitter = random_hex::<2>()
        .ok()
        .and_then(|h| u64::from_str_radix(&h, 16).ok())
        .unwrap_or(0)
        % base.max(1);
    tokio::time::sleep(Duration::from_millis((base + jitter).min(100))).await;
}

/// Parses `s3://BUCKET/PREFIX` into (bucket, prefix).
pub fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let bad = |reason| Error::UnsafePath {
        path: url.to_owned(),
        reason,
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad("a store URL is s3://BUCKET/PREFIX"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("the store URL names no bucket"));
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

impl ObjectBackend {
    /// A backend over `store`, keeping every key under `prefix` (slashes trimmed).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<ObjectBackend> {
        Ok(ObjectBackend {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            lease_ttl: Duration::from_secs(30),
            lease_skew: Duration::from_secs(5),
            gc_grace: Duration::from_secs(3600),
            cache: None,
            holder: random_hex::<8>()?,
        })
    }

    /// An S3 backend for `s3://BUCKET/PREFIX`. `vars` are the `AWS_*` settings (the caller reads
    /// them from the environment: `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`...). Build it in each worker after
    /// fork: its HTTP client's pool and threads do not survive a fork.
    pub fn s3(
        url: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ObjectBackend> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        // reqwest is built without a TLS provider of its own (`rustls-no-provider`): ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (bucket, prefix) = parse_s3_url(url)?;
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
        for (k, v) in vars {
            if k.starts_with("AWS_")
                && let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
            {
                builder = builder.with_config(key, v);
            }
        }
        let store = builder.build().map_err(|e| Error::Io {
            op: "configure the object store",
            path: PathBuf::from(url),
            source: io::Error::other(e),
        })?;
        ObjectBackend::new(Arc::new(store), &prefix)
    }

    /// Caches immutable data objects under `dir` (this host's disk).
    pub fn with_cache(mut self, dir: PathBuf) -> ObjectBackend {
        self.cache = Some(dir);
        self
    }

    fn key(&self, id: &SessionId, rel: &str) -> Key {
        let sid = id.as_str();
        if self.prefix.is_empty() {
            Key::from(format!("uploads/{sid}/{rel}"))
        } else {
            Key::from(format!("{}/uploads/{sid}/{rel}", self.prefix))
        }
    }

    // ---- the manifest ----------------------------------------------------------------------

    /// One GET: the manifest and its version. A missing manifest is an unknown session.
    pub async fn load(&self, id: &SessionId) -> Result<(ObjectManifest, UpdateVersion)> {
        let key = self.key(id, "manifest.json");
        let got = match self.store.get(&key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::SessionNotFound(id.to_string()));
            }
            Err(e) => return Err(os_error("read", &key)(e)),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got.bytes().await.map_err(os_error("read", &key))?;
        let m = serde_json::from_slice(&bytes).map_err(json_error(&key))?;
        Ok((m, version))
    }

    /// Read-modify-write of the manifest by compare-and-swap. `f` may run several times.
    async fn update<T>(
        &self,
        id: &SessionId,
        mut f: impl FnMut(&mut ObjectManifest) -> Result<Step<T>>,
    ) -> Result<(ObjectManifest, T)> {
        let key = self.key(id, "manifest.json");
        for attempt in 0..CAS_TRIES {
            let (mut m, version) = self.load(id).await?;
            let out = match f(&mut m)? {
                Step::Done(out) => return Ok((m, out)),
                Step::Write(out) => out,
            };
            m.rev += 1;
            m.writer = random_hex::<16>()?;
            let bytes = serde_json::to_vec(&m).map_err(json_error(&key))?;
            let opts = PutOptions {
                mode: PutMode::Update(version),
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&key, PutPayload::from(bytes), opts)
                .await
            {
                Ok(_) => return Ok((m, out)),
                Err(e) => {
                    // A lost race (412), or an ambiguous answer (5xx after retries, timeout): a
                    // try that landed is ours if the manifest now carries our nonce.
                    let lost_race = matches!(e, object_store::Error::Precondition { .. });
                    match self.load(id).await {
                        Ok((now, _)) if now.writer == m.writer => return Ok((m, out)),
                        Ok(_) => {}
                        Err(_) if !lost_race => return Err(os_error("write", &key)(e)),
                        Err(read) => return Err(read),
                    }
                    backoff(attempt).await;
                }
            }
        }
        Err(Error::Busy(id.to_string()))
    }

    /// Mints an id no session uses and writes its empty manifest (conditional put: never overwrites).
    pub async fn create_session(&self) -> Result<SessionId> {
        loop {
            let id = SessionId::mint()?;
            let key = self.key(&id, "manifest.json");
            let m = ObjectManifest {
                writer: random_hex::<16>()?,
                ..ObjectManifest::default()
            };
            let bytes = serde_json::to_vec(&m).map_err(json_error(&key))?;
            let opts = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&key, PutPayload::from(bytes), opts)
                .await
            {
                Ok(_) => return Ok(id),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    // Ours if a retried create landed (our nonce), else a collision: mint again.
                    if self
                        .load(&id)
                        .await
                        .is_ok_and(|(now, _)| now.writer == m.writer)
                    {
                        return Ok(id);
                    }
                }
                Err(e) => return Err(os_error("create", &key)(e)),
            }
        }
    }

    /// The session's manifest now: one GET.
    pub async fn status(&self, id: &SessionId) -> Result<ObjectManifest> {
        Ok(self.load(id).await?.0)
    }

    // ---- writes ----------------------------------------------------------------------------

    async fn put_all(
        &self,
        id: &SessionId,
        token: &str,
        files: &[(Artifact, Bytes)],
    ) -> Result<()> {
        let puts = files.iter().map(|(artifact, bytes)| {
            let key = self.key(id, &format!("data/{token}/{}", artifact.file_name()));
            let payload = PutPayload::from(bytes.clone());
            async move {
                self.store
                    .put(&key, payload)
                    .await
                    .map(drop)
                    .map_err(os_error("write", &key))
            }
        });
        futures_util::future::try_join_all(puts).await.map(drop)
    }

    /// Makes `files` the session's data: a new generation with nothing else in it.
    pub async fn commit_upload(
        &self,
        id: &SessionId,
        files: Vec<(Artifact, Bytes)>,
        info: UploadInfo,
    ) -> Result<u64> {
        if let Some((artifact, _)) = files.iter().find(|(a, _)| a.kind() != ArtifactKind::Input) {
            return Err(Error::WrongArtifactKind {
                artifact: artifact.file_name(),
                context: "in an upload",
            });
        }
        let names: Vec<String> = files.iter().map(|(a, _)| a.file_name()).collect();
        if !names
            .iter()
            .any(|f| f == "raw_data.csv" || f == "raw_data.xlsx")
        {
            return Err(Error::NoData(id.to_string()));
        }
        self.load(id).await?; // a minted session only
        let token = format!("u-{}", random_hex::<16>()?);
        // Immutable objects first; the manifest names them only once they all exist.
        self.put_all(id, &token, &files).await?;
        let upload_type = if info.upload_type.is_empty() {
            if names.iter().any(|f| f == "raw_shapefile.zip") {
                "csv_shapefile"
            } else {
                "csv_only"
            }
            .to_owned()
        } else {
            info.upload_type
        };
        let record = UploadRecord {
            dir: Some(token.clone()),
            files: names,
            upload_type,
            committed_at_ms: now_ms(),
            info: info.info,
            chunked_upload: None,
        };
        let (m, ()) = self
            .update(id, |m| {
                if m.upload.as_ref().and_then(|u| u.dir.as_deref()) == Some(token.as_str()) {
                    return Ok(Step::Done(())); // our earlier try landed
                }
                m.generation += 1;
                m.upload = Some(record.clone());
                m.analysis = None;
                m.itn = None;
                Ok(Step::Write(()))
            })
            .await?;
        self.collect_garbage_best_effort(id, &m).await;
        Ok(m.generation)
    }

    /// Stores ITN results for the current analysis `analysis_id` (else
    /// [`Error::StaleAnalysis`], nothing stored); `maps` live under the record's token.
    pub async fn commit_itn(
        &self,
        id: &SessionId,
        analysis_id: &str,
        results: Bytes,
        maps: Vec<(Artifact, Bytes)>,
    ) -> Result<ItnRecord> {
        let (m, _) = self.load(id).await?;
        let current = m.current_analysis().map(|a| a.analysis_id.clone());
        if current.as_deref() != Some(analysis_id) {
            return Err(Error::StaleAnalysis {
                offered: analysis_id.to_owned(),
                current,
            });
        }
        let generation = m.generation;
        let token = format!("i-{}", random_hex::<16>()?);
        let loose: Vec<String> = maps.iter().map(|(a, _)| a.file_name()).collect();
        let mut files = maps;
        files.push((Artifact::ItnResults, results));
        self.put_all(id, &token, &files).await?;
        let record = ItnRecord {
            analysis_id: analysis_id.to_owned(),
            generation,
            dir: Some(token.clone()),
            committed_at_ms: now_ms(),
            loose,
        };
        let (m, record) = self
            .update(id, |m| {
                if m.itn.as_ref().and_then(|i| i.dir.as_deref()) == Some(token.as_str()) {
                    return Ok(Step::Done(record.clone()));
                }
                let current = m.current_analysis().map(|a| a.analysis_id.clone());
                if current.as_deref() != Some(analysis_id) || m.generation != generation {
                    return Err(Error::StaleAnalysis {
                        offered: analysis_id.to_owned(),
                        current,
                    });
                }
                m.itn = Some(record.clone());
                Ok(Step::Write(record.clone()))
            })
            .await?;
        self.collect_garbage_best_effort(id, &m).await;
        Ok(record)
    }

    /// A new generation with nothing in it, and a new (empty) conversation.
    pub async fn clear_session(&self, id: &SessionId) -> Result<u64> {
        let (m, ()) = self
            .update(id, |m| {
                m.generation += 1;
                m.clear_epoch += 1;
                m.upload = None;
                m.analysis = None;
                m.itn = None;
                Ok(Step::Write(()))
            })
            .await?;
        self.collect_garbage_best_effort(id, &m).await;
        Ok(m.generation)
    }

    // ---- reads -----------------------------------------------------------------------------

    /// The current version of an artifact: the manifest (one GET), then the immutable object
    /// (from this host's cache when present).
    pub async fn read_artifact(&self, id: &SessionId, artifact: &Artifact) -> Result<Bytes> {
        for _ in 0..4 {
            let (m, _) = self.load(id).await?;
            let Some((token, name)) = m.locate(artifact) else {
                return Err(Error::ArtifactNotFound(artifact.file_name()));
            };
            let cached = self
                .cache
                .as_ref()
                .map(|c| c.join(id.as_str()).join(&token).join(&name));
            if let Some(path) = &cached
                && let Ok(bytes) = std::fs::read(path)
            {
                return Ok(Bytes::from(bytes));
            }
            let key = self.key(id, &format!("data/{token}/{name}"));
            match self.store.get(&key).await {
                Ok(got) => {
                    let bytes = got.bytes().await.map_err(os_error("read", &key))?;
                    if let Some(path) = &cached {
                        cache_put(path, &bytes);
                    }
                    return Ok(bytes);
                }
                // Collected under us: the manifest moved on; read it again.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(os_error("read", &key)(e)),
            }
        }
        Err(Error::ArtifactNotFound(artifact.file_name()))
    }

    // ---- the conversation ------------------------------------------------------------------

    /// The stored conversation document; `None` when the session has none yet.
    pub async fn read_conversation(&self, id: &SessionId) -> Result<Option<Value>> {
        let (m, _) = self.load(id).await?;
        Ok(self
            .conversation(id, m.clear_epoch)
            .await?
            .map(|(v, _, _)| v)
            .filter(|v| !v.is_null()))
    }

    async fn conversation(
        &self,
        id: &SessionId,
        epoch: u64,
    ) -> Result<Option<(Value, String, UpdateVersion)>> {
        let key = self.key(id, &format!("conv/{epoch}.json"));
        match self.store.get(&key).await {
            Ok(got) => {
                let version = UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                let bytes = got.bytes().await.map_err(os_error("read", &key))?;
                let mut doc: Value = serde_json::from_slice(&bytes).map_err(json_error(&key))?;
                let writer = doc["writer"].as_str().unwrap_or_default().to_owned();
                Ok(Some((doc["value"].take(), writer, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(os_error("read", &key)(e)),
        }
    }

    /// Compare-and-swap of the conversation. `update` may run more than once (on a lost race).
    pub async fn update_conversation(
        &self,
        id: &SessionId,
        mut update: impl FnMut(Option<Value>) -> Value,
    ) -> Result<Value> {
        for attempt in 0..CAS_TRIES {
            let (m, _) = self.load(id).await?;
            let key = self.key(id, &format!("conv/{}.json", m.clear_epoch));
            let (current, mode) = match self.conversation(id, m.clear_epoch).await? {
                Some((v, _, version)) => {
                    (Some(v).filter(|v| !v.is_null()), PutMode::Update(version))
                }
                None => (None, PutMode::Create),
            };
            let nonce = random_hex::<16>()?;
            let next = update(current);
            let doc = serde_json::json!({"writer": nonce, "value": next});
            let bytes = serde_json::to_vec(&doc).map_err(json_error(&key))?;
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&key, PutPayload::from(bytes), opts)
                .await
            {
                Ok(_) => return Ok(next),
                Err(e) => {
                    let ours = self
                        .conversation(id, m.clear_epoch)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|(_, writer, _)| writer == nonce);
                    if ours {
                        return Ok(next);
                    }
                    if !matches!(
                        e,
                        object_store::Error::Precondition { .. }
                            | object_store::Error::AlreadyExists { .. }
                    ) {
                        return Err(os_error("write", &key)(e));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Err(Error::Busy(id.to_string()))
    }

    // ---- garbage ---------------------------------------------------------------------------

    /// Deletes data tokens the manifest does not name and that are older than `gc_grace`, and
    /// conversations of earlier clear epochs. Returns how many objects went.
    pub async fn collect_garbage(&self, id: &SessionId, m: &ObjectManifest) -> Result<usize> {
        use futures_util::TryStreamExt;
        let keep = m.referenced();
        let data = self.key(id, "data");
        let listed: Vec<_> = self
            .store
            .list(Some(&data))
            .try_collect()
            .await
            .map_err(os_error("list", &data))?;
        let now = chrono_ms_now();
        let grace = u64::try_from(self.gc_grace.as_millis()).unwrap_or(u64::MAX);
        // A token is old only if every object in it is old.
        let mut young = std::collections::HashSet::new();
        for meta in &listed {
            let token = token_of(&data, &meta.location);
            let modified = u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0);
            if now.saturating_sub(modified) < grace {
                young.insert(token);
            }
        }
        let mut removed = 0;
        for meta in &listed {
            let token = token_of(&data, &meta.location);
            if keep.contains(&token) || young.contains(&token) {
                continue;
            }
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                Err(e) => return Err(os_error("delete", &meta.location)(e)),
            }
        }
        for epoch in m.clear_epoch.saturating_sub(2)..m.clear_epoch {
            let key = self.key(id, &format!("conv/{epoch}.json"));
            if self.store.delete(&key).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn collect_garbage_best_effort(&self, id: &SessionId, m: &ObjectManifest) {
        if let Err(e) = self.collect_garbage(id, m).await {
            eprintln!("[mrpt-session] garbage collection of {id} after a commit: {e}");
        }
    }

    // ---- the analysis ----------------------------------------------------------------------

    /// Runs `compute` at most once per answerable request across every host sharing the
    /// bucket (`shared/specs/scale-out.md` §2.4): reuse check, lease, start (fenced CAS),
    /// heartbeat, compute on the blocking pool, outputs, commit (CAS requiring our epoch),
    /// release.
    pub async fn run_analysis_once<E, F>(
        &self,
        id: &SessionId,
        request: &AnalysisRequest,
        compute: F,
    ) -> Result<AnalysisOutcome, RunError<E>>
    where
        E: Send + 'static,
        F: FnOnce(ObjectInputs) -> Result<ObjectOutputs, E> + Send + 'static,
    {
        let (arrived, _) = self.load(id).await?;
        if !request.force
            && let Some(record) = arrived.current_analysis().filter(|r| answers(r, request))
        {
            return Ok(outcome(record, true));
        }
        let fresh_after = arrived.analyses_committed;
        let reuse = |m: &ObjectManifest| {
            m.current_analysis()
                .filter(|r| answers(r, request))
                .filter(|r| !request.force || r.seq > fresh_after)
                .map(|r| outcome(r, true))
        };
        let lease = match self.acquire_lease(id, request.wait, &reuse).await? {
            Acquired::Held(lease) => lease,
            Acquired::Answered(answer) => return Ok(answer),
        };
        let result = self.run_holding(id, request, compute, &lease, &reuse).await;
        lease.stop.store(true, Ordering::SeqCst);
        if let Some(task) = &lease.task {
            task.abort();
        }
        self.release(id, &lease).await;
        result
    }

    async fn run_holding<E, F>(
        &self,
        id: &SessionId,
        request: &AnalysisRequest,
        compute: F,
        lease: &HeldLease,
        reuse: &(dyn Fn(&ObjectManifest) -> Option<AnalysisOutcome> + Sync),
    ) -> Result<AnalysisOutcome, RunError<E>>
    where
        E: Send + 'static,
        F: FnOnce(ObjectInputs) -> Result<ObjectOutputs, E> + Send + 'static,
    {
        let epoch = lease.epoch;
        let holder = lease.holder.clone();
        // Start: the reuse check and the claim in one CAS, so an answer committed between our
        // check and our start is seen here.
        let (m, answer) = self
            .update(id, |m| {
                if let Some(answer) = reuse(m) {
                    return Ok(Step::Done(Some(answer)));
                }
                if m.upload.is_none() {
                    return Err(Error::NoData(id.to_string()));
                }
                if m.running.as_ref().is_some_and(|r| r.epoch == epoch) {
                    return Ok(Step::Done(None)); // our earlier try landed
                }
                m.analyses_started += 1;
                m.running = Some(Running {
                    epoch,
                    holder: holder.clone(),
                });
                Ok(Step::Write(None))
            })
            .await?;
        if let Some(answer) = answer {
            return Ok(answer);
        }
        fault_point("object-analysis-started");
        let Some(upload) = m.upload.clone() else {
            return Err(Error::NoData(id.to_string()).into());
        };
        let mut files = Vec::new();
        for name in &upload.files {
            if let Some(artifact) = Artifact::from_file_name(name) {
                let bytes = self.read_artifact(id, &artifact).await?;
                files.push((artifact, bytes));
            }
        }
        let inputs = ObjectInputs {
            generation: m.generation,
            upload_type: upload.upload_type.clone(),
            upload_info: upload.info.clone(),
            files,
        };
        let generation = inputs.generation;
        let started_at_ms = now_ms();
        let computed = tokio::task::spawn_blocking(move || compute(inputs))
            .await
            .map_err(|e| Error::Io {
                op: "run the analysis",
                path: PathBuf::new(),
                source: io::Error::other(e.to_string()),
            })?;
        let (result, outputs) = match computed {
            Ok(done) => done,
            Err(e) => return Err(RunError::Compute(e)),
        };
        let names: Vec<String> = outputs.iter().map(|(a, _)| a.file_name()).collect();
        if !ANALYSIS_EVIDENCE
            .iter()
            .any(|e| names.contains(&e.file_name()))
        {
            return Err(Error::IncompleteAnalysis.into());
        }
        if let Some((artifact, _)) = outputs
            .iter()
            .find(|(a, _)| a.kind() != ArtifactKind::AnalysisOutput)
        {
            return Err(Error::WrongArtifactKind {
                artifact: artifact.file_name(),
                context: "as an analysis output",
            }
            .into());
        }
        let analysis_id = random_hex::<16>()?;
        let token = format!("a-{analysis_id}");
        self.put_all(id, &token, &outputs).await?;
        fault_point("object-analysis-before-commit");
        let mut record = AnalysisRecord {
            analysis_id: analysis_id.clone(),
            generation,
            seq: 0,
            dir: Some(token),
            files: names,
            variables_requested: request.variables.clone(),
            variables_used: result.variables_used,
            options: request.options.clone(),
            summary: result.summary,
            started_at_ms,
            finished_at_ms: now_ms(),
            legacy: false,
        };
        let committed = self
            .update(id, |m| {
                if m.analysis.as_ref().map(|a| a.analysis_id.as_str()) == Some(&analysis_id) {
                    return Ok(Step::Done(Ok(outcome(
                        m.analysis.as_ref().unwrap_or(&record),
                        false,
                    ))));
                }
                if m.generation != generation {
                    return Err(Error::Superseded {
                        started: generation,
                        current: m.generation,
                    });
                }
                // The fence: only the epoch that started may commit.
                if m.running.as_ref().map(|r| r.epoch) != Some(epoch) {
                    return Ok(Step::Done(Err(())));
                }
                m.analyses_committed += 1;
                record.seq = m.analyses_committed;
                m.analysis = Some(record.clone());
                m.itn = None;
                m.running = None;
                Ok(Step::Write(Ok(outcome(&record, false))))
            })
            .await?;
        match committed {
            (m, Ok(answer)) => {
                self.collect_garbage_best_effort(id, &m).await;
                Ok(answer)
            }
            // Fenced: another holder took over; its answer (when committed) is the answer.
            (m, Err(())) => match reuse(&m) {
                Some(answer) => Ok(answer),
                None => Err(Error::Busy(id.to_string()).into()),
            },
        }
    }

    async fn read_lease(&self, key: &Key) -> Result<Option<(Lease, UpdateVersion)>> {
        match self.store.get(key).await {
            Ok(got) => {
                let version = UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                let bytes = got.bytes().await.map_err(os_error("read", key))?;
                let lease = serde_json::from_slice(&bytes).map_err(json_error(key))?;
                Ok(Some((lease, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(os_error("read", key)(e)),
        }
    }

    async fn acquire_lease(
        &self,
        id: &SessionId,
        wait: Option<Duration>,
        reuse: &(dyn Fn(&ObjectManifest) -> Option<AnalysisOutcome> + Sync),
    ) -> Result<Acquired> {
        let key = self.key(id, "analysis.lease");
        let deadline = tokio::time::Instant::now() + wait.unwrap_or(Duration::from_secs(600));
        let ttl = u64::try_from(self.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        let skew = u64::try_from(self.lease_skew.as_millis()).unwrap_or(u64::MAX);
        let mut pause = Duration::from_millis(50);
        loop {
            let holder = format!("{}-{}", self.holder, random_hex::<4>()?);
            let (mode, epoch) = match self.read_lease(&key).await? {
                None => (PutMode::Create, 1),
                Some((lease, version)) => {
                    if lease.released || lease.expires_ms.saturating_add(skew) < now_ms() {
                        (PutMode::Update(version), lease.epoch + 1)
                    } else {
                        (PutMode::Overwrite, 0) // held: wait
                    }
                }
            };
            if epoch > 0 {
                let lease = Lease {
                    holder: holder.clone(),
                    epoch,
                    expires_ms: now_ms() + ttl,
                    released: false,
                };
                let bytes = serde_json::to_vec(&lease).map_err(json_error(&key))?;
                let opts = PutOptions {
                    mode,
                    ..PutOptions::default()
                };
                let put = self
                    .store
                    .put_opts(&key, PutPayload::from(bytes), opts)
                    .await;
                let won = match put {
                    Ok(r) => Some(UpdateVersion {
                        e_tag: r.e_tag,
                        version: r.version,
                    }),
                    Err(_) => match self.read_lease(&key).await? {
                        // A retried PUT that landed: ours by holder nonce.
                        Some((now, version)) if now.holder == holder => Some(version),
                        _ => None,
                    },
                };
                if let Some(version) = won {
                    return Ok(Acquired::Held(self.hold(id, key, holder, epoch, version)));
                }
            }
            // Someone holds it: has its answer been committed meanwhile?
            let (m, _) = self.load(id).await?;
            if let Some(answer) = reuse(&m) {
                return Ok(Acquired::Answered(answer));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Busy(id.to_string()));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Starts the heartbeat of a lease just taken.
    fn hold(
        &self,
        id: &SessionId,
        key: Key,
        holder: String,
        epoch: u64,
        version: UpdateVersion,
    ) -> HeldLease {
        let version = Arc::new(std::sync::Mutex::new(version));
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let task = {
            let (store, key, holder) = (Arc::clone(&self.store), key.clone(), holder.clone());
            let (version, stop, lost) =
                (Arc::clone(&version), Arc::clone(&stop), Arc::clone(&lost));
            let ttl = self.lease_ttl;
            let id = id.to_string();
            tokio::runtime::Handle::try_current().ok().map(|rt| {
                rt.spawn(async move {
                    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
                    loop {
                        tokio::time::sleep(ttl / 3).await;
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let lease = Lease {
                            holder: holder.clone(),
                            epoch,
                            expires_ms: now_ms() + ttl_ms,
                            released: false,
                        };
                        let Ok(bytes) = serde_json::to_vec(&lease) else {
                            return;
                        };
                        let current = version
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .clone();
                        let opts = PutOptions {
                            mode: PutMode::Update(current),
                            ..PutOptions::default()
                        };
                        match store.put_opts(&key, PutPayload::from(bytes), opts).await {
                            Ok(r) => {
                                *version
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                                    UpdateVersion {
                                        e_tag: r.e_tag,
                                        version: r.version,
                                    };
                            }
                            Err(object_store::Error::Precondition { .. }) => {
                                // Taken over: the fence in the manifest stops our commit.
                                eprintln!(
                                    "[mrpt-session] analysis lease of {id} lost (epoch {epoch})"
                                );
                                lost.store(true, Ordering::SeqCst);
                                return;
                            }
                            Err(_) => {} // transient: try again at the next beat
                        }
                    }
                })
            })
        };
        HeldLease {
            key,
            holder,
            epoch,
            version,
            stop,
            lost,
            task,
        }
    }

    async fn release(&self, id: &SessionId, lease: &HeldLease) {
        if lease.lost.load(Ordering::SeqCst) {
            return;
        }
        let released = Lease {
            holder: lease.holder.clone(),
            epoch: lease.epoch,
            expires_ms: 0,
            released: true,
        };
        let Ok(bytes) = serde_json::to_vec(&released) else {
            return;
        };
        let current = lease
            .version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let opts = PutOptions {
            mode: PutMode::Update(current),
            ..PutOptions::default()
        };
        // A failed release only costs the next holder one lease time.
        if let Err(e) = self
            .store
            .put_opts(&lease.key, PutPayload::from(bytes), opts)
            .await
            && !matches!(e, object_store::Error::Precondition { .. })
        {
            eprintln!("[mrpt-session] release of the analysis lease of {id}: {e}");
        }
    }

    /// Test hook: the underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
}

enum Acquired {
    Held(HeldLease),
    Answered(AnalysisOutcome),
}

struct HeldLease {
    key: Key,
    holder: String,
    epoch: u64,
    version: Arc<std::sync::Mutex<UpdateVersion>>,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn token_of(data: &Key, location: &Key) -> String {
    location
        .prefix_match(data)
        .and_then(|mut parts| parts.next())
        .map(|p| p.as_ref().to_owned())
        .unwrap_or_default()
}

fn chrono_ms_now() -> u64 {
    now_ms()
}

fn cache_put(path: &std::path::Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let Ok(suffix) = random_hex::<8>() else {
        return;
    };
    let temp = dir.join(format!(".tmp-{suffix}"));
    if std::fs::write(&temp, bytes).is_ok() && std::fs::rename(&temp, path).is_err() {
        let _ = std::fs::remove_file(&temp);
    }
}

/// Crash points of the object protocol (process abort, like SIGKILL), for tests.
fn fault_point(name: &str) {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Ok(wanted) = std::env::var("MRPT_FAULT")
        && wanted.split(',').any(|p| p == name)
    {
        std::process::abort();
    }
    let _ = name;
}

/// Runs a future to completion on a current-thread runtime (for synchronous callers and tests).
pub fn block_on<T>(future: impl Future<Output = T>) -> Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("start a runtime", ""))?;
    Ok(rt.block_on(future))
}
