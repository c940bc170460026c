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
use crate::manifest::{
    AnalysisRecord, ItnRecord, Manifest, PopulationRecord, TprOutputsRecord, TprRecord,
    UploadRecord, now_ms,
};
use crate::sweep::{SweepPolicy, SweepReport};
use crate::{AnalysisOutcome, AnalysisRequest, AnalysisResult, RunError, UploadInfo};

/// Compare-and-swap attempts before a write answers busy (HTTP 503).
const CAS_TRIES: u32 = 20;

/// The manifest of a session in the object store.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ObjectManifest {
    /// +1 per write: the same bytes never recur (no ABA).
    pub rev: u64,
    /// A nonce per write: tells our own landed write from another writer's.
    pub writer: String,
    pub generation: u64,
    pub clear_epoch: u64,
    pub upload: Option<UploadRecord>,
    pub analysis: Option<AnalysisRecord>,
    pub itn: Option<ItnRecord>,
    pub analyses_started: u64,
    pub analyses_committed: u64,
    /// The analysis running now: the lease epoch that may commit.
    pub running: Option<Running>,
    /// `population.csv` of the current generation (as the local manifest's).
    pub population: Option<PopulationRecord>,
    /// The TPR workflow's upload and outputs (as the local manifest's).
    pub tpr: Option<TprRecord>,
    pub tpr_uploads: u64,
}

/// Where an artifact of the current state is stored.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Location {
    /// `data/<token>/<name>`: immutable, cacheable.
    Data(String, String),
    /// `g<generation>/<name>`: a loose file of this generation, replaced in place.
    Loose(String),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Running {
    pub epoch: u64,
    pub holder: String,
}

impl ObjectManifest {
    /// The tokens (`data/<token>/`) this manifest names.
    pub fn referenced(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.upload.as_ref().and_then(|u| u.dir.clone()));
        out.extend(self.analysis.as_ref().and_then(|a| a.dir.clone()));
        out.extend(self.itn.as_ref().and_then(|i| i.dir.clone()));
        out.extend(self.population.as_ref().and_then(|p| p.dir.clone()));
        if let Some(t) = &self.tpr {
            out.extend(t.dir.clone());
            out.extend(t.outputs.as_ref().and_then(|o| o.dir.clone()));
        }
        out
    }

    /// The same state as a local manifest (for the derivations both backends share: status,
    /// where a fixed artifact is).
    pub(crate) fn to_local(&self) -> Manifest {
        Manifest {
            format: crate::manifest::FORMAT,
            generation: self.generation,
            analyses_started: self.analyses_started,
            analyses_committed: self.analyses_committed,
            upload: self.upload.clone(),
            population: self.population.clone(),
            analysis: self.analysis.clone(),
            itn: self.itn.clone(),
            tpr: self.tpr.clone(),
            tpr_uploads: self.tpr_uploads,
            ..Manifest::default()
        }
    }

    fn current_itn(&self) -> Option<&ItnRecord> {
        self.itn.as_ref().filter(|i| {
            i.generation == self.generation
                && self.current_analysis().map(|a| a.analysis_id.as_str())
                    == Some(i.analysis_id.as_str())
        })
    }

    /// Where an artifact of the current state is: fixed artifacts under the token their record
    /// names; loose files under the ITN plan's or TPR outputs' token when those wrote them,
    /// else under the generation.
    pub(crate) fn place(&self, artifact: &Artifact) -> Option<Location> {
        let name = artifact.file_name();
        match artifact.kind() {
            ArtifactKind::Loose => {
                if let Some(i) = self.current_itn()
                    && i.loose.contains(&name)
                    && let Some(dir) = &i.dir
                {
                    return Some(Location::Data(dir.clone(), name));
                }
                if let Some(o) = self.tpr.as_ref().and_then(|t| t.outputs.as_ref())
                    && o.loose.contains(&name)
                    && let Some(dir) = &o.dir
                {
                    return Some(Location::Data(dir.clone(), name));
                }
                Some(Location::Loose(format!("g{}/{name}", self.generation)))
            }
            ArtifactKind::Document => None,
            _ => match self.to_local().locate(artifact) {
                Some(Some(token)) => Some(Location::Data(token.to_owned(), name)),
                _ => None,
            },
        }
    }

    fn current_analysis(&self) -> Option<&AnalysisRecord> {
        self.analysis
            .as_ref()
            .filter(|a| a.generation == self.generation)
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
    pub generation: u64,
    pub upload_type: String,
    pub upload_info: Value,
    pub files: Vec<(Artifact, Bytes)>,
    /// The id the analysis gets if it commits.
    pub analysis_id: String,
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
        // A request path gives up within seconds, not object_store's 3 minutes: a store that
        // does not answer is a 500 the operator sees, not a hung worker.
        let retry = object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(10),
            ..object_store::RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_retry(retry);
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
                m.population = None;
                // The TPR data stays (it is not the ward table); its maps go with the
                // generation, as on local disk.
                if let Some(o) = m.tpr.as_mut().and_then(|t| t.outputs.as_mut()) {
                    o.loose.clear();
                }
                Ok(Step::Write(()))
            })
            .await?;
        self.collect_garbage_best_effort(id, &m).await;
        self.collect_loose_best_effort(id, &m).await;
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
        self.commit_itn_at(id, analysis_id, &m, results, maps).await
    }

    /// [`ObjectBackend::commit_itn`] with the results as a document: `analysis_id` and
    /// `analysis_generation` are added to it when it is an object (as on local disk).
    pub async fn commit_itn_doc(
        &self,
        id: &SessionId,
        analysis_id: &str,
        results: &Value,
        maps: Vec<(Artifact, Bytes)>,
    ) -> Result<ItnRecord> {
        let (m, _) = self.load(id).await?;
        let mut doc = results.clone();
        if let Value::Object(map) = &mut doc {
            map.insert("analysis_id".into(), Value::from(analysis_id));
            map.insert("analysis_generation".into(), Value::from(m.generation));
        }
        let key = self.key(id, "itn");
        let bytes = serde_json::to_vec_pretty(&doc).map_err(json_error(&key))?;
        self.commit_itn_at(id, analysis_id, &m, Bytes::from(bytes), maps)
            .await
    }

    async fn commit_itn_at(
        &self,
        id: &SessionId,
        analysis_id: &str,
        m: &ObjectManifest,
        results: Bytes,
        maps: Vec<(Artifact, Bytes)>,
    ) -> Result<ItnRecord> {
        if let Some((artifact, _)) = maps.iter().find(|(a, _)| a.kind() != ArtifactKind::Loose) {
            return Err(Error::WrongArtifactKind {
                artifact: artifact.file_name(),
                context: "as an ITN map",
            });
        }
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
                m.population = None;
                m.tpr = None;
                Ok(Step::Write(()))
            })
            .await?;
        self.collect_garbage_best_effort(id, &m).await;
        self.collect_loose_best_effort(id, &m).await;
        Ok(m.generation)
    }

    /// Stores `population.csv` for the current generation; drops the ITN plan (computed with
    /// the old populations).
    pub async fn commit_population(&self, id: &SessionId, bytes: Bytes, info: Value) -> Result<()> {
        let (m, _) = self.load(id).await?;
        if m.upload.is_none() {
            return Err(Error::NoData(id.to_string()));
        }
        let token = format!("p-{}", random_hex::<16>()?);
        self.put_all(id, &token, &[(Artifact::Population, bytes)])
            .await?;
        let (m, ()) = self
            .update(id, |m| {
                if m.population.as_ref().and_then(|p| p.dir.as_deref()) == Some(token.as_str()) {
                    return Ok(Step::Done(()));
                }
                if m.upload.is_none() {
                    return Err(Error::NoData(id.to_string()));
                }
                m.population = Some(PopulationRecord {
                    dir: Some(token.clone()),
                    generation: m.generation,
                    committed_at_ms: now_ms(),
                    info: info.clone(),
                });
                m.itn = None;
                Ok(Step::Write(()))
            })
            .await?;
        self.collect_garbage_best_effort(id, &m).await;
        Ok(())
    }

    /// Stores a facility export as the TPR upload (replacing the previous one and its
    /// outputs). Returns its sequence number.
    pub async fn commit_tpr_upload(
        &self,
        id: &SessionId,
        artifact: &Artifact,
        bytes: Bytes,
        info: Value,
    ) -> Result<u64> {
        if artifact.kind() != ArtifactKind::TprInput {
            return Err(Error::WrongArtifactKind {
                artifact: artifact.file_name(),
                context: "as a TPR upload",
            });
        }
        self.load(id).await?;
        let token = format!("t-{}", random_hex::<16>()?);
        self.put_all(id, &token, &[(artifact.clone(), bytes)])
            .await?;
        let (m, seq) = self
            .update(id, |m| {
                if let Some(t) = &m.tpr
                    && t.dir.as_deref() == Some(token.as_str())
                {
                    return Ok(Step::Done(t.seq));
                }
                m.tpr_uploads += 1;
                m.tpr = Some(TprRecord {
                    seq: m.tpr_uploads,
                    dir: Some(token.clone()),
                    file: artifact.file_name(),
                    committed_at_ms: now_ms(),
                    info: info.clone(),
                    outputs: None,
                });
                Ok(Step::Write(m.tpr_uploads))
            })
            .await?;
        self.collect_garbage_best_effort(id, &m).await;
        Ok(seq)
    }

    /// Stores the outputs of a TPR computation of upload `seq` (else [`Error::Superseded`]);
    /// its maps live under the outputs' token.
    pub async fn commit_tpr_outputs(
        &self,
        id: &SessionId,
        seq: u64,
        files: Vec<(Artifact, Bytes)>,
        maps: Vec<(Artifact, Bytes)>,
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
        let token = format!("r-{}", random_hex::<16>()?);
        let names: Vec<String> = files.iter().map(|(a, _)| a.file_name()).collect();
        let loose: Vec<String> = maps.iter().map(|(a, _)| a.file_name()).collect();
        let mut all = files;
        all.extend(maps);
        self.put_all(id, &token, &all).await?;
        let (m, ()) = self
            .update(id, |m| {
                let current = m.tpr.as_ref().map_or(0, |t| t.seq);
                if current != seq {
                    return Err(Error::Superseded {
                        started: seq,
                        current,
                    });
                }
                let Some(tpr) = m.tpr.as_mut() else {
                    return Err(Error::NoData(id.to_string()));
                };
                if tpr.outputs.as_ref().and_then(|o| o.dir.as_deref()) == Some(token.as_str()) {
                    return Ok(Step::Done(()));
                }
                tpr.outputs = Some(TprOutputsRecord {
                    dir: Some(token.clone()),
                    files: names.clone(),
                    committed_at_ms: now_ms(),
                    summary: summary.clone(),
                    loose: loose.clone(),
                });
                Ok(Step::Write(()))
            })
            .await?;
        self.collect_garbage_best_effort(id, &m).await;
        Ok(())
    }

    // ---- reads -----------------------------------------------------------------------------

    /// The current version of an artifact: the manifest (one GET), then the object (an
    /// immutable one from this host's cache when present).
    pub async fn read_artifact(&self, id: &SessionId, artifact: &Artifact) -> Result<Bytes> {
        for _ in 0..4 {
            let (m, _) = self.load(id).await?;
            match m.place(artifact) {
                None => return Err(Error::ArtifactNotFound(artifact.file_name())),
                Some(Location::Loose(rel)) => {
                    let key = self.key(id, &rel);
                    return match self.store.get(&key).await {
                        Ok(got) => got.bytes().await.map_err(os_error("read", &key)),
                        Err(object_store::Error::NotFound { .. }) => {
                            Err(Error::ArtifactNotFound(artifact.file_name()))
                        }
                        Err(e) => Err(os_error("read", &key)(e)),
                    };
                }
                Some(Location::Data(token, name)) => {
                    match self.read_data(id, &token, &name).await? {
                        Some(bytes) => return Ok(bytes),
                        // Collected under us: the manifest moved on; read it again.
                        None => continue,
                    }
                }
            }
        }
        Err(Error::ArtifactNotFound(artifact.file_name()))
    }

    /// An immutable data object (`data/<token>/<name>`), through this host's cache; `None` when
    /// it is gone (collected).
    pub(crate) async fn read_data(
        &self,
        id: &SessionId,
        token: &str,
        name: &str,
    ) -> Result<Option<Bytes>> {
        let cached = self
            .cache
            .as_ref()
            .map(|c| c.join(id.as_str()).join(token).join(name));
        if let Some(path) = &cached
            && let Ok(bytes) = std::fs::read(path)
        {
            return Ok(Some(Bytes::from(bytes)));
        }
        let key = self.key(id, &format!("data/{token}/{name}"));
        match self.store.get(&key).await {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(os_error("read", &key))?;
                if let Some(path) = &cached {
                    cache_put(path, &bytes);
                }
                Ok(Some(bytes))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(os_error("read", &key)(e)),
        }
    }

    /// Writes a visualization or export of the current generation (replaced in place; the next
    /// upload or clear hides it).
    pub async fn write_loose(
        &self,
        id: &SessionId,
        artifact: &Artifact,
        bytes: Bytes,
    ) -> Result<()> {
        if artifact.kind() != ArtifactKind::Loose {
            return Err(Error::WrongArtifactKind {
                artifact: artifact.file_name(),
                context: "as a loose file",
            });
        }
        let (m, _) = self.load(id).await?;
        let key = self.key(id, &format!("g{}/{}", m.generation, artifact.file_name()));
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map(drop)
            .map_err(os_error("write", &key))
    }

    /// The current loose files under `folder` (`visualizations` or `exports`), relative to it.
    pub async fn list_loose(&self, id: &SessionId, folder: &str) -> Result<Vec<String>> {
        use futures_util::TryStreamExt;
        let (m, _) = self.load(id).await?;
        let base = self.key(id, &format!("g{}/{folder}", m.generation));
        let listed: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(os_error("list", &base))?;
        let mut out: Vec<String> = listed
            .iter()
            .filter_map(|meta| {
                meta.location.prefix_match(&base).map(|parts| {
                    parts
                        .map(|p| p.as_ref().to_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                })
            })
            .collect();
        let lead = format!("{folder}/");
        let mut named: Vec<&String> = Vec::new();
        if let Some(i) = m.current_itn() {
            named.extend(i.loose.iter());
        }
        if let Some(o) = m.tpr.as_ref().and_then(|t| t.outputs.as_ref()) {
            named.extend(o.loose.iter());
        }
        out.extend(
            named
                .iter()
                .filter_map(|n| n.strip_prefix(&lead).map(str::to_owned)),
        );
        out.sort();
        out.dedup();
        Ok(out)
    }

    // ---- the conversation ------------------------------------------------------------------

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

    // ---- operations ------------------------------------------------------------------------

    /// Proves the bucket reachable with these credentials: one LIST of the sessions' prefix
    /// (at most one key).
    pub async fn check(&self) -> Result<()> {
        use futures_util::StreamExt;
        let base = self.root("uploads");
        let mut listing = self.store.list(Some(&base));
        match listing.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(os_error("list", &base)(e)),
        }
    }

    fn root(&self, rel: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// Removes idle sessions: a session is as old as its newest object (status reads write
    /// nothing, as on local disk). A session with data or a conversation goes after
    /// `policy.idle`, one with neither after `policy.empty`. The manifest goes first, so the
    /// session is unknown to every host before its objects are deleted.
    pub async fn sweep(&self, policy: &SweepPolicy, dry_run: bool) -> Result<SweepReport> {
        use futures_util::TryStreamExt;
        let began = std::time::Instant::now();
        let base = self.root("uploads");
        let listed: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(os_error("list", &base))?;
        // session id -> (newest write ms, has data or a conversation, bytes, keys)
        let mut sessions: std::collections::BTreeMap<String, (u64, bool, u64, Vec<Key>)> =
            Default::default();
        for meta in listed {
            let (sid, rest) = match meta.location.prefix_match(&base) {
                Some(mut parts) => (
                    parts.next().map(|p| p.as_ref().to_owned()),
                    parts
                        .next()
                        .map(|p| p.as_ref().to_owned())
                        .unwrap_or_default(),
                ),
                None => (None, String::new()),
            };
            let Some(sid) = sid else {
                continue;
            };
            let entry = sessions.entry(sid).or_default();
            let modified = u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0);
            entry.0 = entry.0.max(modified);
            entry.1 |= rest == "data" || rest == "conv";
            entry.2 += meta.size;
            entry.3.push(meta.location);
        }
        let now = now_ms();
        let ms = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (idle, empty) = (ms(policy.idle), ms(policy.empty));
        let mut report = SweepReport {
            sessions: sessions.len(),
            dry_run,
            ..SweepReport::default()
        };
        for (sid, (newest, has_data, bytes, mut keys)) in sessions {
            let limit = if has_data { idle } else { empty };
            let Some(limit) = limit else { continue };
            if now.saturating_sub(newest) < limit {
                continue;
            }
            if has_data {
                report.removed_idle += 1;
            } else {
                report.removed_empty += 1;
            }
            report.bytes_freed += bytes;
            if dry_run {
                continue;
            }
            keys.sort_by_key(|k| !k.as_ref().ends_with("/manifest.json"));
            for key in keys {
                match self.store.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        eprintln!("[mrpt-session] sweep of session {sid}: {e}");
                        break;
                    }
                }
            }
        }
        report.elapsed_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(report)
    }

    /// The automatic sweep: at most one per `every` across all hosts, claimed by a
    /// compare-and-swap of `sweep.json` (when another host claimed it, `None` at once).
    pub async fn sweep_if_due(
        &self,
        policy: &SweepPolicy,
        every: Duration,
    ) -> Result<Option<SweepReport>> {
        let key = self.root("sweep.json");
        let now = now_ms();
        let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        let mode = match self.store.get(&key).await {
            Ok(got) => {
                let version = UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                let bytes = got.bytes().await.map_err(os_error("read", &key))?;
                let last = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v["last_ms"].as_u64())
                    .unwrap_or(0);
                if last <= now && now - last < every_ms {
                    return Ok(None);
                }
                PutMode::Update(version)
            }
            Err(object_store::Error::NotFound { .. }) => PutMode::Create,
            Err(e) => return Err(os_error("read", &key)(e)),
        };
        let stamp = serde_json::json!({ "last_ms": now, "holder": self.holder });
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&key, PutPayload::from(stamp.to_string().into_bytes()), opts)
            .await
        {
            Ok(_) => self.sweep(policy, false).await.map(Some),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Ok(None),
            Err(e) => Err(os_error("write", &key)(e)),
        }
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

    /// Deletes the loose files (`g<n>/...`) of the two generations before `m`'s: the commit that
    /// started `m.generation` hid them. Best effort.
    async fn collect_loose_best_effort(&self, id: &SessionId, m: &ObjectManifest) {
        use futures_util::TryStreamExt;
        for generation in m.generation.saturating_sub(2)..m.generation {
            let base = self.key(id, &format!("g{generation}"));
            let listed: Vec<_> = match self.store.list(Some(&base)).try_collect().await {
                Ok(listed) => listed,
                Err(e) => {
                    eprintln!("[mrpt-session] listing old loose files of {id}: {e}");
                    return;
                }
            };
            for meta in listed {
                let _ = self.store.delete(&meta.location).await;
            }
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
        let started = match self.begin_analysis(id, request).await? {
            Begun::Answered(answer) => return Ok(answer),
            Begun::Started(started) => started,
        };
        let inputs = started.inputs.clone();
        let computed = match tokio::task::spawn_blocking(move || compute(inputs)).await {
            Ok(computed) => computed,
            Err(e) => {
                self.end_lease(id, &started.lease).await;
                return Err(Error::Io {
                    op: "run the analysis",
                    path: PathBuf::new(),
                    source: io::Error::other(e.to_string()),
                }
                .into());
            }
        };
        self.finish_analysis(id, request, started, computed).await
    }

    /// The first half of [`ObjectBackend::run_analysis_once`]: the answer when one is committed,
    /// else the lease (renewed in the background until [`ObjectBackend::finish_analysis`]) and
    /// the inputs. For callers that compute on their own thread.
    pub async fn begin_analysis(&self, id: &SessionId, request: &AnalysisRequest) -> Result<Begun> {
        let (arrived, _) = self.load(id).await?;
        if !request.force
            && let Some(record) = arrived.current_analysis().filter(|r| answers(r, request))
        {
            return Ok(Begun::Answered(outcome(record, true)));
        }
        let fresh_after = arrived.analyses_committed;
        let reuse = |m: &ObjectManifest| reuse_of(m, request, fresh_after);
        let lease = match self.acquire_lease(id, request.wait, &reuse).await? {
            Acquired::Held(lease) => lease,
            Acquired::Answered(answer) => return Ok(Begun::Answered(answer)),
        };
        match self.start_holding(id, &lease, &reuse).await {
            Ok(Some(inputs)) => Ok(Begun::Started(Box::new(Started {
                lease,
                inputs,
                fresh_after,
                started_at_ms: now_ms(),
            }))),
            Ok(None) => {
                self.end_lease(id, &lease).await;
                let (m, _) = self.load(id).await?;
                match reuse(&m) {
                    Some(answer) => Ok(Begun::Answered(answer)),
                    None => Err(Error::Busy(id.to_string())),
                }
            }
            Err(e) => {
                self.end_lease(id, &lease).await;
                Err(e)
            }
        }
    }

    /// Start (the reuse check and the claim in one CAS), then the inputs; `None` when an answer
    /// was committed meanwhile.
    async fn start_holding(
        &self,
        id: &SessionId,
        lease: &HeldLease,
        reuse: &(dyn Fn(&ObjectManifest) -> Option<AnalysisOutcome> + Sync),
    ) -> Result<Option<ObjectInputs>> {
        let epoch = lease.epoch;
        let holder = lease.holder.clone();
        let (m, answered) = self
            .update(id, |m| {
                if reuse(m).is_some() {
                    return Ok(Step::Done(true));
                }
                if m.upload.is_none() {
                    return Err(Error::NoData(id.to_string()));
                }
                if m.running.as_ref().is_some_and(|r| r.epoch == epoch) {
                    return Ok(Step::Done(false)); // our earlier try landed
                }
                m.analyses_started += 1;
                m.running = Some(Running {
                    epoch,
                    holder: holder.clone(),
                });
                Ok(Step::Write(false))
            })
            .await?;
        if answered {
            return Ok(None);
        }
        fault_point("object-analysis-started");
        let Some(upload) = m.upload.clone() else {
            return Err(Error::NoData(id.to_string()));
        };
        let mut wanted: Vec<(Artifact, String, String)> = upload
            .files
            .iter()
            .filter_map(|name| Artifact::from_file_name(name).map(|a| (a, name.clone())))
            .filter_map(|(a, name)| upload.dir.clone().map(|d| (a, d, name)))
            .collect();
        if let Some(p) = m
            .population
            .as_ref()
            .filter(|p| p.generation == m.generation)
            && let Some(dir) = &p.dir
        {
            wanted.push((
                Artifact::Population,
                dir.clone(),
                Artifact::Population.file_name(),
            ));
        }
        let reads = wanted
            .into_iter()
            .map(|(artifact, token, name)| async move {
                match self.read_data(id, &token, &name).await? {
                    Some(bytes) => Ok((artifact, bytes)),
                    // Collected: a newer upload replaced it; the commit will be superseded.
                    None => Err(Error::ArtifactNotFound(name)),
                }
            });
        let files = futures_util::future::try_join_all(reads).await?;
        Ok(Some(ObjectInputs {
            generation: m.generation,
            upload_type: upload.upload_type.clone(),
            upload_info: upload.info.clone(),
            files,
            analysis_id: random_hex::<16>()?,
        }))
    }

    /// The second half of [`ObjectBackend::run_analysis_once`]: stores the outputs, commits
    /// (fenced by the lease epoch) and releases the lease, whatever happens.
    pub async fn finish_analysis<E>(
        &self,
        id: &SessionId,
        request: &AnalysisRequest,
        started: Box<Started>,
        computed: std::result::Result<ObjectOutputs, E>,
    ) -> Result<AnalysisOutcome, RunError<E>> {
        let result = self.commit_holding(id, request, &started, computed).await;
        self.end_lease(id, &started.lease).await;
        result
    }

    /// Gives up an analysis begun with [`ObjectBackend::begin_analysis`] (this host failed
    /// before computing): the lease is released, nothing commits.
    pub async fn abandon_analysis(&self, id: &SessionId, started: Box<Started>) {
        self.end_lease(id, &started.lease).await;
    }

    async fn end_lease(&self, id: &SessionId, lease: &HeldLease) {
        lease.stop.store(true, Ordering::SeqCst);
        if let Some(task) = &lease.task {
            task.abort();
        }
        self.release(id, lease).await;
    }

    async fn commit_holding<E>(
        &self,
        id: &SessionId,
        request: &AnalysisRequest,
        started: &Started,
        computed: std::result::Result<ObjectOutputs, E>,
    ) -> Result<AnalysisOutcome, RunError<E>> {
        let epoch = started.lease.epoch;
        let generation = started.inputs.generation;
        let reuse = |m: &ObjectManifest| reuse_of(m, request, started.fresh_after);
        let (result, outputs) = match computed {
            Ok(done) => done,
            Err(e) => {
                // Failing because the inputs vanished under a new upload is "superseded".
                let (m, _) = self.load(id).await?;
                if m.generation != generation {
                    return Err(Error::Superseded {
                        started: generation,
                        current: m.generation,
                    }
                    .into());
                }
                return Err(RunError::Compute(e));
            }
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
        let analysis_id = started.inputs.analysis_id.clone();
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
            started_at_ms: started.started_at_ms,
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

/// What [`ObjectBackend::begin_analysis`] found.
pub enum Begun {
    /// A committed analysis answers the request.
    Answered(AnalysisOutcome),
    /// This caller holds the lease and computes.
    Started(Box<Started>),
}

/// An analysis under way: its lease (renewed in the background) and inputs.
pub struct Started {
    lease: HeldLease,
    pub inputs: ObjectInputs,
    fresh_after: u64,
    started_at_ms: u64,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("epoch", &self.lease.epoch)
            .field("generation", &self.inputs.generation)
            .finish()
    }
}

fn reuse_of(
    m: &ObjectManifest,
    request: &AnalysisRequest,
    fresh_after: u64,
) -> Option<AnalysisOutcome> {
    m.current_analysis()
        .filter(|r| answers(r, request))
        .filter(|r| !request.force || r.seq > fresh_after)
        .map(|r| outcome(r, true))
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
