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
    Ok(())
}
