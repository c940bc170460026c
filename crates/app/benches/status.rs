//! The app's own cost of `GET /api/session/status` (no network, no server): `App::handle` on a
//! session with a Kano-sized manifest, next to `GET /ping` (the floor of every request) and to
//! the status the way it was computed before the manifest had a head (`Store::status`, the full
//! parse). Run: `cargo bench -p mrpt-app --bench status`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use mrpt_app::{App, AppConfig};
use mrpt_session::{Artifact, SessionId, Store, UploadInfo};

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(n).unwrap_or(u32::MAX);
    println!(
        "{name:<46} n={n:<6} mean={mean:>9.2?} p50={:>9.2?} p99={:>9.2?}",
        samples[n / 2],
        samples[n * 99 / 100]
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

/// A session like the Kano one after an analysis: upload info of about 10 KB in the manifest.
fn kano_like(store: &Store) -> Result<SessionId, Box<dyn std::error::Error>> {
    let id = store.create_session()?;
    let mut up = store.begin_upload(&id)?;
    up.write(&Artifact::RawCsv, b"WardName,x\nA,1\n")?;
    let columns: Vec<String> = (0..60).map(|i| format!("variable_number_{i}")).collect();
    let map = |v: serde_json::Value| {
        columns
            .iter()
            .map(|c| (c.clone(), v.clone()))
            .collect::<serde_json::Map<_, _>>()
    };
    let info = serde_json::json!({
        "csv_filename": "kano_wards.csv",
        "available_variables": columns,
        "data_summary": {
            "column_names": columns,
            "column_types": map(serde_json::json!("numeric")),
            "data_completeness": map(serde_json::json!(97.5)),
        },
    });
    store.commit_upload(
        up,
        UploadInfo {
            upload_type: String::new(),
            info,
        },
    )?;
    Ok(id)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let app = App::new(AppConfig {
        instance_dir: dir.path().to_path_buf(),
        ..AppConfig::default()
    })?;
    let store = Store::open(dir.path())?;
    let id = kano_like(&store)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let get = |path: &str| {
        Request::get(path)
            .header("x-session-id", id.as_str())
            .body(Empty::<Bytes>::new())
    };
    let n = 50_000;
    for _ in 0..2 {
        report(
            "App::handle GET /ping",
            time(n, || {
                let req = get("/ping").ok();
                if let Some(req) = req {
                    drop(runtime.block_on(app.handle(req)));
                }
            }),
        );
        report(
            "App::handle GET /api/session/status",
            time(n, || {
                let req = get("/api/session/status").ok();
                if let Some(req) = req {
                    drop(runtime.block_on(app.handle(req)));
                }
            }),
        );
        report(
            "Store::status_head (the route's disk read)",
            time(n, || drop(store.status_head(&id))),
        );
        report(
            "Store::status (full parse, as before)",
            time(n / 10, || drop(store.status(&id))),
        );
    }
    Ok(())
}
