//! Per-request cost of the session store: local disk vs the object backend on an S3 API server
//! (`cargo bench -p mrpt-session --bench object`). Starts `moto_server` (from PATH, or
//! `MOTO_SERVER=/path/to/moto_server`) on a free loopback port. Prints p50/p99 per operation
//! and the ratio S3/local. Compute is a stub (the store's own cost only).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mrpt_session::object::ObjectBackend;
use mrpt_session::{AnalysisRequest, AnalysisResult, Artifact, Store, UploadInfo};
use serde_json::json;

fn stats(mut s: Vec<Duration>) -> (Duration, Duration) {
    s.sort();
    (s[s.len() / 2], s[(s.len() * 99 / 100).min(s.len() - 1)])
}

fn time<E: std::fmt::Debug>(n: usize, mut f: impl FnMut() -> Result<(), E>) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f().expect("operation");
            t.elapsed()
        })
        .collect()
}

fn row(name: &str, local: Vec<Duration>, s3: Vec<Duration>) {
    let (l50, l99) = stats(local);
    let (s50, s99) = stats(s3);
    println!(
        "{name:<28} local p50={l50:>10.2?} p99={l99:>10.2?}   s3(moto) p50={s50:>10.2?} p99={s99:>10.2?}   ratio p50 {:.0}x",
        s50.as_secs_f64() / l50.as_secs_f64().max(1e-9)
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut moto = Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let made = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.write_all(
                b"PUT /bench HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            let mut r = String::new();
            s.read_to_string(&mut r)?;
            Ok(r.starts_with("HTTP/1.1 200"))
        });
        if made.unwrap_or(false) {
            break;
        }
        if Instant::now() > deadline {
            let _ = moto.kill();
            return Err("moto_server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let env = vec![
        (
            "AWS_ENDPOINT_URL".to_owned(),
            format!("http://127.0.0.1:{port}"),
        ),
        ("AWS_ACCESS_KEY_ID".to_owned(), "x".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "x".to_owned()),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("AWS_ALLOW_HTTP".to_owned(), "true".to_owned()),
    ];
    let n = 50;
    let csv = Bytes::from(vec![b'x'; 64 * 1024]);
    let result = run(n, &csv, env);
    let _ = moto.kill();
    let _ = moto.wait();
    result
}

fn run(
    n: usize,
    csv: &Bytes,
    env: Vec<(String, String)>,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let lid = store.create_session()?;
    let s3 = ObjectBackend::s3("s3://bench/p", env)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sid = rt.block_on(s3.create_session())?;
    println!(
        "{n} iterations each; 64 KiB CSV + 64 KiB shapefile; stub compute; moto_server on loopback"
    );

    let upload_local = time(n, || {
        let mut up = store.begin_upload(&lid)?;
        up.write(&Artifact::RawCsv, csv)?;
        up.write(&Artifact::RawShapefile, csv)?;
        store.commit_upload(up, UploadInfo::default()).map(drop)
    });
    let upload_s3 = time(n, || {
        rt.block_on(s3.commit_upload(
            &sid,
            vec![
                (Artifact::RawCsv, csv.clone()),
                (Artifact::RawShapefile, csv.clone()),
            ],
            UploadInfo::default(),
        ))
        .map(drop)
    });
    row("upload (commit)", upload_local, upload_s3);

    let status_local = time(n, || store.status_head(&lid).map(drop));
    let status_s3 = time(n, || rt.block_on(s3.status(&sid)).map(drop));
    row("status", status_local, status_s3);

    let forced = AnalysisRequest {
        force: true,
        ..Default::default()
    };
    let analysis_local = time(n, || {
        store
            .run_analysis_once(&lid, &forced, |_, staging| {
                staging.write(&Artifact::Rankings, b"rankings")?;
                Ok::<_, mrpt_session::Error>(AnalysisResult::default())
            })
            .map(drop)
            .map_err(|e| format!("{e}"))
    });
    let analysis_s3 = time(n, || {
        rt.block_on(s3.run_analysis_once(&sid, &forced, |_| {
            Ok::<_, mrpt_session::Error>((
                AnalysisResult::default(),
                vec![(Artifact::Rankings, Bytes::from_static(b"rankings"))],
            ))
        }))
        .map(drop)
        .map_err(|e| format!("{e}"))
    });
    row("analysis (store overhead)", analysis_local, analysis_s3);

    let reuse = AnalysisRequest::default();
    let reuse_local = time(n, || {
        store
            .run_analysis_once(&lid, &reuse, |_, _| {
                Err::<AnalysisResult, _>("no compute on reuse")
            })
            .map(drop)
            .map_err(|e| format!("{e}"))
    });
    let reuse_s3 = time(n, || {
        rt.block_on(s3.run_analysis_once(&sid, &reuse, |_| {
            Err::<mrpt_session::object::ObjectOutputs, _>("no compute on reuse")
        }))
        .map(drop)
        .map_err(|e| format!("{e}"))
    });
    row("analysis (reused)", reuse_local, reuse_s3);

    let local_id = store.status(&lid)?.analysis_id.unwrap_or_default();
    let s3_id = rt
        .block_on(s3.status(&sid))?
        .analysis
        .map(|a| a.analysis_id)
        .unwrap_or_default();
    let itn_local = time(n, || {
        store
            .commit_itn(&lid, &local_id, &json!({"nets": 1}), &[])
            .map(drop)
    });
    let itn_s3 = time(n, || {
        rt.block_on(s3.commit_itn(&sid, &s3_id, Bytes::from_static(b"{\"nets\":1}"), vec![]))
            .map(drop)
    });
    row("itn (commit)", itn_local, itn_s3);

    let read_local = time(n, || {
        store.read_artifact(&lid, &Artifact::Rankings).map(drop)
    });
    let read_s3 = time(n, || {
        rt.block_on(s3.read_artifact(&sid, &Artifact::Rankings))
            .map(drop)
    });
    row("read_artifact (no cache)", read_local, read_s3);
    Ok(())
}
