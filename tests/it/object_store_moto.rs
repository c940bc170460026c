//! The object-store session protocol against a real S3-compatible server (moto_server on a
//! loopback port, started by the test): conditional PUTs over the wire, three "hosts" (backends
//! with their own HTTP clients) on one bucket, one computation for concurrent analyses, GC.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use mrpt_session::object::{ObjectBackend, ObjectInputs, ObjectOutputs};
use mrpt_session::{AnalysisRequest, AnalysisResult, Artifact, Error, UploadInfo};
use serde_json::json;

use crate::support::moto::Moto;

fn pipeline(
    count: Arc<AtomicUsize>,
) -> impl FnOnce(ObjectInputs) -> Result<ObjectOutputs, Error> + Send + 'static {
    move |inputs| {
        count.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        let csv = inputs
            .files
            .iter()
            .find(|(a, _)| *a == Artifact::RawCsv)
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        Ok((
            AnalysisResult {
                variables_used: vec!["tpr".into()],
                summary: json!({"bytes": csv.len()}),
            },
            vec![(Artifact::Rankings, csv)],
        ))
    }
}

#[test]
fn sessions_on_a_real_s3_api_server() {
    let moto = Moto::start("prefork-it");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(3)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let hosts: Vec<ObjectBackend> = (0..3)
            .map(|_| ObjectBackend::s3("s3://prefork-it/sessions", moto.env()).unwrap())
            .collect();
        let id = hosts[0].create_session().await.unwrap();
        let generation = hosts[1]
            .commit_upload(
                &id,
                vec![
                    (Artifact::RawCsv, Bytes::from_static(b"ward,tpr\nA,1\n")),
                    (Artifact::RawShapefile, Bytes::from_static(b"zip")),
                ],
                UploadInfo {
                    upload_type: String::new(),
                    info: json!({}),
                },
            )
            .await
            .unwrap();
        assert_eq!(generation, 1);
        assert_eq!(hosts[2].status(&id).await.unwrap().generation, 1);

        let count = Arc::new(AtomicUsize::new(0));
        let calls = (0..9).map(|n| {
            let (h, id, count) = (hosts[n % 3].clone(), id.clone(), count.clone());
            tokio::spawn(async move {
                h.run_analysis_once(&id, &AnalysisRequest::default(), pipeline(count))
                    .await
                    .unwrap()
            })
        });
        let answers: Vec<_> = futures_join(calls).await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "one computation across hosts"
        );
        assert_eq!(answers.iter().filter(|a| !a.reused).count(), 1);
        let m = hosts[0].status(&id).await.unwrap();
        assert_eq!((m.analyses_started, m.analyses_committed), (1, 1));
        assert_eq!(
            hosts[2]
                .read_artifact(&id, &Artifact::Rankings)
                .await
                .unwrap(),
            Bytes::from_static(b"ward,tpr\nA,1\n")
        );
        let itn = hosts[1]
            .commit_itn(
                &id,
                &answers[0].analysis_id,
                Bytes::from_static(b"{}"),
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(itn.analysis_id, answers[0].analysis_id);
        hosts[0]
            .update_conversation(&id, |_| json!(["hi"]))
            .await
            .unwrap();
        assert_eq!(
            hosts[1].read_conversation(&id).await.unwrap(),
            Some(json!(["hi"]))
        );
        assert_eq!(hosts[2].clear_session(&id).await.unwrap(), 2);
        let mut gc = hosts[0].clone();
        gc.gc_grace = Duration::ZERO;
        let m = gc.status(&id).await.unwrap();
        gc.collect_garbage(&id, &m).await.unwrap();
        assert!(matches!(
            gc.read_artifact(&id, &Artifact::RawCsv).await,
            Err(Error::ArtifactNotFound(_))
        ));
    });
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
