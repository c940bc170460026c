//! Model tests of the object-store protocol (`object.rs`) on `object_store`'s in-memory backend
//! (atomic conditional PUTs), with several backends on one store standing in for hosts, and a
//! wrapper that injects faults: a write that landed but answered 5xx, a 409 conflict, lost races,
//! lease renewals that never arrive (a paused holder).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path as Key;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use serde_json::json;

use crate::object::{ObjectBackend, ObjectInputs, ObjectOutputs};
use crate::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// The write happens, then the caller gets a 503 (as after object_store's own retries).
    LandedThen5xx,
    /// 409 ConditionalRequestConflict: nothing written.
    Conflict409,
    /// Nothing written, a transient error (a renewal that never reaches the server).
    Dropped,
}

#[derive(Debug)]
struct Fault {
    key_ends: &'static str,
    conditional_only: bool,
    kind: Kind,
    remaining: u32,
}

#[derive(Debug)]
struct Faulty {
    inner: Arc<InMemory>,
    faults: Mutex<Vec<Fault>>,
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

impl Faulty {
    fn new(inner: Arc<InMemory>) -> Faulty {
        Faulty {
            inner,
            faults: Mutex::new(Vec::new()),
        }
    }
    fn inject(&self, key_ends: &'static str, conditional_only: bool, kind: Kind, times: u32) {
        self.faults.lock().unwrap().push(Fault {
            key_ends,
            conditional_only,
            kind,
            remaining: times,
        });
    }
    fn take(&self, key: &Key, opts: &PutOptions) -> Option<Kind> {
        let mut faults = self.faults.lock().unwrap();
        let conditional = !matches!(opts.mode, PutMode::Overwrite);
        let f = faults.iter_mut().find(|f| {
            f.remaining > 0
                && key.as_ref().ends_with(f.key_ends)
                && (conditional || !f.conditional_only)
        })?;
        f.remaining -= 1;
        Some(f.kind)
    }
}

fn generic(msg: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: msg.to_owned().into(),
    }
}

#[async_trait::async_trait]
impl ObjectStore for Faulty {
    async fn put_opts(
        &self,
        location: &Key,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        match self.take(location, &opts) {
            None => self.inner.put_opts(location, payload, opts).await,
            Some(Kind::LandedThen5xx) => {
                self.inner.put_opts(location, payload, opts).await?;
                Err(generic("503 Slow Down (after the write landed)"))
            }
            Some(Kind::Conflict409) => Err(generic("409 ConditionalRequestConflict")),
            Some(Kind::Dropped) => Err(generic("connection reset")),
        }
    }
    async fn put_multipart_opts(
        &self,
        location: &Key,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Key,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Key>>,
    ) -> BoxStream<'static, object_store::Result<Key>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Key>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Key>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Key,
        to: &Key,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

fn host(store: Arc<dyn ObjectStore>) -> ObjectBackend {
    ObjectBackend::new(store, "prefix/p").unwrap()
}

fn upload_files(csv: &str) -> Vec<(Artifact, Bytes)> {
    vec![
        (Artifact::RawCsv, Bytes::from(csv.to_owned())),
        (Artifact::RawShapefile, Bytes::from_static(b"zip")),
    ]
}

fn info() -> UploadInfo {
    UploadInfo {
        upload_type: String::new(),
        info: json!({"rows": 1}),
    }
}

fn pipeline(
    count: Arc<AtomicUsize>,
    pause: Duration,
) -> impl FnOnce(ObjectInputs) -> Result<ObjectOutputs> {
    move |inputs| {
        count.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(pause);
        let csv = inputs
            .files
            .iter()
            .find(|(a, _)| *a == Artifact::RawCsv)
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        Ok((
            AnalysisResult {
                variables_used: vec!["tpr".into()],
                summary: json!({"top": csv}),
            },
            vec![(
                Artifact::Rankings,
                Bytes::from(format!("rankings of {csv}")),
            )],
        ))
    }
}

#[test]
fn the_object_protocol_end_to_end() {
    rt().block_on(async {
        let mem = Arc::new(InMemory::new());
        let a = host(mem.clone());
        let b = host(mem.clone());
        let id = a.create_session().await.unwrap();
        assert_eq!(b.status(&id).await.unwrap().generation, 0);
        let unknown = SessionId::parse(&"0".repeat(32)).unwrap();
        assert!(matches!(
            b.status(&unknown).await,
            Err(Error::SessionNotFound(_))
        ));
        assert_eq!(
            a.commit_upload(&id, upload_files("kano"), info())
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            &b.read_artifact(&id, &Artifact::RawCsv).await.unwrap()[..],
            b"kano"
        );
        let count = Arc::new(AtomicUsize::new(0));
        let first = b
            .run_analysis_once(
                &id,
                &AnalysisRequest::default(),
                pipeline(count.clone(), Duration::ZERO),
            )
            .await
            .unwrap();
        assert!(!first.reused);
        let again = a
            .run_analysis_once(
                &id,
                &AnalysisRequest::default(),
                pipeline(count.clone(), Duration::ZERO),
            )
            .await
            .unwrap();
        assert!(again.reused);
        assert_eq!(again.analysis_id, first.analysis_id);
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(
            &a.read_artifact(&id, &Artifact::Rankings).await.unwrap()[..],
            b"rankings of kano"
        );
        let itn = a
            .commit_itn(&id, &first.analysis_id, Bytes::from_static(b"{}"), vec![])
            .await
            .unwrap();
        assert_eq!(itn.analysis_id, first.analysis_id);
        assert!(matches!(
            a.commit_itn(&id, "stale", Bytes::from_static(b"{}"), vec![])
                .await,
            Err(Error::StaleAnalysis { .. })
        ));
        a.update_conversation(&id, |old| {
            assert_eq!(old, None);
            json!(["hello"])
        })
        .await
        .unwrap();
        b.update_conversation(&id, |old| {
            let mut v = old.unwrap();
            v.as_array_mut().unwrap().push(json!("again"));
            v
        })
        .await
        .unwrap();
        assert_eq!(
            a.read_conversation(&id).await.unwrap().unwrap(),
            json!(["hello", "again"])
        );
        // A new upload retires the analysis; with no grace, its objects are collected.
        let mut c = host(mem.clone());
        c.gc_grace = Duration::ZERO;
        assert_eq!(
            c.commit_upload(&id, upload_files("ilorin"), info())
                .await
                .unwrap(),
            2
        );
        let s = a.status(&id).await.unwrap();
        assert_eq!((s.generation, s.analysis.is_some()), (2, false));
        assert!(matches!(
            a.read_artifact(&id, &Artifact::Rankings).await,
            Err(Error::ArtifactNotFound(_))
        ));
        use futures_util::TryStreamExt;
        let keys: Vec<_> = mem.list(None).try_collect::<Vec<_>>().await.unwrap();
        let tokens: std::collections::BTreeSet<_> = keys
            .iter()
            .filter_map(|m| {
                m.location
                    .as_ref()
                    .split("/data/")
                    .nth(1)
                    .map(|r| r.split('/').next().unwrap().to_owned())
            })
            .collect();
        assert_eq!(
            tokens.len(),
            1,
            "only the current upload's token stays: {tokens:?}"
        );
        assert_eq!(c.clear_session(&id).await.unwrap(), 3);
        assert_eq!(
            a.read_conversation(&id).await.unwrap(),
            None,
            "a clear starts a new conversation"
        );
    });
}

/// Eight hosts, sixteen callers: one computation, one commit.
#[test]
fn concurrent_hosts_compute_once() {
    rt().block_on(async {
        let mem = Arc::new(InMemory::new());
        let hosts: Vec<_> = (0..8).map(|_| host(mem.clone())).collect();
        let id = hosts[0].create_session().await.unwrap();
        hosts[1]
            .commit_upload(&id, upload_files("kano"), info())
            .await
            .unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let calls = (0..16).map(|n| {
            let h = hosts[n % 8].clone();
            let (id, count) = (id.clone(), count.clone());
            tokio::spawn(async move {
                h.run_analysis_once(
                    &id,
                    &AnalysisRequest::default(),
                    pipeline(count, Duration::from_millis(50)),
                )
                .await
                .unwrap()
            })
        });
        let answers = futures_util::future::join_all(calls).await;
        let answers: Vec<_> = answers.into_iter().map(|a| a.unwrap()).collect();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(answers.iter().filter(|a| !a.reused).count(), 1);
        let ids: std::collections::BTreeSet<_> =
            answers.iter().map(|a| a.analysis_id.clone()).collect();
        assert_eq!(ids.len(), 1);
        let m = hosts[3].status(&id).await.unwrap();
        assert_eq!(
            (m.analyses_started, m.analyses_committed, m.running),
            (1, 1, None)
        );
    });
}

/// A manifest write that landed but answered 5xx is recognised as ours (by its nonce): the
/// upload is applied once (generation 1, not 2), and a 409 or a lost race is simply retried.
#[test]
fn a_landed_write_answered_5xx_is_ours_and_conflicts_are_retried() {
    rt().block_on(async {
        let mem = Arc::new(InMemory::new());
        let faulty = Arc::new(Faulty::new(mem.clone()));
        let a = host(faulty.clone());
        let id = a.create_session().await.unwrap();
        faulty.inject("manifest.json", true, Kind::LandedThen5xx, 1);
        assert_eq!(
            a.commit_upload(&id, upload_files("kano"), info())
                .await
                .unwrap(),
            1
        );
        assert_eq!(a.status(&id).await.unwrap().generation, 1);

        faulty.inject("manifest.json", true, Kind::Conflict409, 3);
        assert_eq!(
            a.commit_upload(&id, upload_files("ilorin"), info())
                .await
                .unwrap(),
            2
        );

        // The analysis commit lands, answers 5xx: still one commit, answered fresh.
        faulty.inject("manifest.json", true, Kind::LandedThen5xx, 2);
        let count = Arc::new(AtomicUsize::new(0));
        let out = a
            .run_analysis_once(
                &id,
                &AnalysisRequest::default(),
                pipeline(count.clone(), Duration::ZERO),
            )
            .await
            .unwrap();
        assert!(!out.reused);
        let m = a.status(&id).await.unwrap();
        assert_eq!((m.analyses_started, m.analyses_committed), (1, 1));
        assert_eq!(m.analysis.unwrap().analysis_id, out.analysis_id);

        // The conversation: a landed write answered 5xx is not applied twice.
        faulty.inject("/0.json", true, Kind::LandedThen5xx, 1);
        let runs = AtomicUsize::new(0);
        a.update_conversation(&id, |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            json!(1)
        })
        .await
        .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

/// A holder whose renewals never arrive (paused, partitioned) loses its lease after the TTL;
/// another host takes it (epoch 2), computes and commits; the first holder wakes up, and its
/// commit is fenced: it answers with the winner's result. One commit in the generation.
#[test]
fn a_paused_holder_that_lost_its_lease_cannot_commit() {
    rt().block_on(async {
        let mem = Arc::new(InMemory::new());
        let paused_store = Arc::new(Faulty::new(mem.clone()));
        let mut paused = host(paused_store.clone());
        paused.lease_ttl = Duration::from_millis(300);
        paused.lease_skew = Duration::ZERO;
        let mut other = host(mem.clone());
        other.lease_ttl = Duration::from_millis(300);
        other.lease_skew = Duration::ZERO;
        let id = paused.create_session().await.unwrap();
        paused
            .commit_upload(&id, upload_files("kano"), info())
            .await
            .unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let zombie = {
            let (p, id, count, faults) = (
                paused.clone(),
                id.clone(),
                count.clone(),
                paused_store.clone(),
            );
            tokio::spawn(async move {
                let compute = move |inputs| {
                    // From now on every renewal of this holder is lost, and it sleeps past its
                    // lease.
                    faults.inject("analysis.lease", true, Kind::Dropped, 1_000);
                    started_tx.send(()).unwrap();
                    pipeline(count, Duration::from_millis(1_500))(inputs)
                };
                p.run_analysis_once(&id, &AnalysisRequest::default(), compute)
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        let winner = other
            .run_analysis_once(
                &id,
                &AnalysisRequest::default(),
                pipeline(count.clone(), Duration::ZERO),
            )
            .await
            .unwrap();
        assert!(!winner.reused, "the lease was taken over after expiry");
        let m = other.status(&id).await.unwrap();
        assert_eq!((m.analyses_started, m.analyses_committed), (2, 1));
        let woke = zombie.await.unwrap().unwrap();
        assert!(
            woke.reused,
            "the fenced holder answers with the winner's record"
        );
        assert_eq!(woke.analysis_id, winner.analysis_id);
        assert_eq!(count.load(Ordering::SeqCst), 2);
        let m = other.status(&id).await.unwrap();
        assert_eq!((m.analyses_started, m.analyses_committed), (2, 1));
        assert_eq!(m.analysis.unwrap().analysis_id, winner.analysis_id);
    });
}
