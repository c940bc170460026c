//! Costs of the session layer on this machine's disk: `cargo bench -p mrpt-session`.
//! Prints one line per operation: iterations, mean and p99 latency.

use std::time::{Duration, Instant};

use mrpt_session::{AnalysisRequest, AnalysisResult, Artifact, Store, UploadInfo};

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(n).unwrap_or(u32::MAX);
    let p50 = samples[n / 2];
    let p99 = samples[(n * 99 / 100).min(n - 1)];
    let max = samples[n - 1];
    println!(
        "{name:<44} n={n:<6} mean={mean:>9.2?} p50={p50:>9.2?} p99={p99:>9.2?} max={max:>9.2?}"
    );
}

fn time(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let id = store.create_session()?;
    let csv = vec![b'x'; 64 * 1024];
    let upload = |store: &Store| -> Result<u64, mrpt_session::Error> {
        let mut up = store.begin_upload(&id)?;
        up.write(&Artifact::RawCsv, &csv)?;
        up.write(&Artifact::RawShapefile, &csv)?;
        store.commit_upload(up, UploadInfo::default())
    };
    let outputs = vec![b'y'; 64 * 1024];
    let pipeline = |_: &mrpt_session::AnalysisInputs, staging: &mrpt_session::AnalysisStaging| {
        for artifact in [
            Artifact::Rankings,
            Artifact::RankingsPca,
            Artifact::UnifiedCsv,
            Artifact::CleanedData,
        ] {
            staging.write(&artifact, &outputs)?;
        }
        Ok::<_, mrpt_session::Error>(AnalysisResult::default())
    };

    report("create_session", time(200, || drop(store.create_session())));
    report(
        "upload commit (2 x 64 KiB, fsync)",
        time(200, || drop(upload(&store))),
    );
    upload(&store)?;
    let forced = AnalysisRequest {
        force: true,
        ..Default::default()
    };
    report(
        "analysis commit (4 x 64 KiB outputs, fsync)",
        time(200, || {
            drop(store.run_analysis_once(&id, &forced, pipeline))
        }),
    );
    report("status()", time(20_000, || drop(store.status(&id))));
    report(
        "status_head() (the status route)",
        time(20_000, || drop(store.status_head(&id))),
    );

    // A manifest the size of a real one (Kano: ~13 KB of upload info and analysis summary),
    // where the full parse costs most: what the status route used to do, and what it does now.
    let big = store.create_session()?;
    let mut up = store.begin_upload(&big)?;
    up.write(&Artifact::RawCsv, &csv)?;
    let columns: Vec<String> = (0..60).map(|i| format!("variable_number_{i}")).collect();
    let info = serde_json::json!({
        "csv_filename": "kano_wards.csv",
        "available_variables": columns,
        "data_summary": {
            "column_names": columns,
            "column_types": columns.iter().map(|c| (c.clone(), serde_json::json!("numeric"))).collect::<serde_json::Map<_, _>>(),
            "data_completeness": columns.iter().map(|c| (c.clone(), serde_json::json!(97.5))).collect::<serde_json::Map<_, _>>(),
        },
    });
    store.commit_upload(
        up,
        UploadInfo {
            upload_type: String::new(),
            info,
        },
    )?;
    let size = std::fs::metadata(
        dir.path()
            .join("uploads")
            .join(big.as_str())
            .join("manifest.json"),
    )?
    .len();
    report(
        &format!("status() with a {size}-byte manifest (full parse)"),
        time(20_000, || drop(store.status(&big))),
    );
    report(
        &format!("status_head() with a {size}-byte manifest"),
        time(20_000, || drop(store.status_head(&big))),
    );
    let path = dir
        .path()
        .join("uploads")
        .join(big.as_str())
        .join("manifest.json");
    report(
        "for scale: std::fs::read of that manifest (open, fstat, read, close)",
        time(20_000, || drop(std::fs::read(&path))),
    );
    let reuse = AnalysisRequest::default();
    report(
        "run_analysis_once reuse (no lock)",
        time(20_000, || {
            drop(store.run_analysis_once(&id, &reuse, pipeline))
        }),
    );
    report(
        "read rankings (64 KiB)",
        time(20_000, || {
            drop(store.read_artifact(&id, &Artifact::Rankings))
        }),
    );

    // A 12 MiB upload: one commit, against 12 chunks of 1 MiB (each written and fsynced on its
    // own, as they arrive) and the finalize that joins and commits them. The ratio is what
    // resumability costs on the server's disk.
    let twelve = vec![b'z'; 12 << 20];
    let whole = time(10, || {
        let mut up = store.begin_upload(&id).unwrap_or_else(|e| panic!("{e}"));
        up.write(&Artifact::RawCsv, &twelve)
            .unwrap_or_else(|e| panic!("{e}"));
        drop(store.commit_upload(up, UploadInfo::default()));
    });
    let limits = mrpt_session::ChunkLimits {
        max_chunk_bytes: 1 << 20,
        max_upload_bytes: 32 << 20,
        max_chunks: 64,
    };
    let mut n = 0;
    let chunked = time(10, || {
        n += 1;
        let upload_id = format!("bench-{n}");
        for (index, bytes) in twelve.chunks(1 << 20).enumerate() {
            let chunk = mrpt_session::Chunk {
                upload_id: &upload_id,
                part: "csv",
                index: index as u32,
                total: 12,
                bytes,
            };
            drop(store.put_chunk(&id, chunk, &limits));
        }
        drop(store.finalize_chunks(&id, &upload_id, &[("csv", 12)], |f| {
            let mrpt_session::Finalizing::Parts { mut upload, parts } = f else {
                return Ok::<_, mrpt_session::Error>(serde_json::Value::Null);
            };
            for p in parts {
                upload.write(&Artifact::RawCsv, &p.bytes)?;
            }
            store.commit_upload(upload, UploadInfo::default())?;
            Ok(serde_json::Value::Null)
        }));
    });
    let mean = |s: &[Duration]| s.iter().sum::<Duration>() / u32::try_from(s.len()).unwrap_or(1);
    let ratio = mean(&chunked).as_secs_f64() / mean(&whole).as_secs_f64();
    report("upload commit, 12 MiB in one piece", whole);
    report("12 x 1 MiB chunks + finalize (same 12 MiB)", chunked);
    println!("chunked / whole (mean): {ratio:.2}x");
    Ok(())
}
