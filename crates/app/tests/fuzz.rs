//! A bounded fuzz run of every reader of untrusted bytes, part of the normal test command
//! (stable Rust has no `cargo fuzz`): CSV, XLSX, shapefile zip, the multipart upload (through
//! `App::handle`, the real route), the TPR facility export and legacy .xls workbooks. Each target is one `#[test]` that
//! starts this test binary again as a child under a 4 GiB address-space cap (`ulimit -v`), which
//! mutates the seed corpus for `FUZZ_SECONDS` (default 6) and aborts on any input that runs
//! longer than `FUZZ_INPUT_SECONDS` (default 20). Whatever kills the child (a panic that escapes,
//! an allocation failure, the time cap) leaves the input in
//! `tests/fuzz/crashes/<target>-<hash>.bin`, which every later run replays first; the parent
//! prints the child's counts (executions, answers, slowest input).
//!
//! Mutations are structure-aware where it pays: a zip (workbook or shapefile) is mutated inside
//! an entry and re-zipped half of the time, so the inner parsers see valid archives.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mrpt_formats::archive::{read_zip, write_zip};
use mrpt_formats::hostile;

const TARGETS: [&str; 6] = [
    "csv",
    "xlsx",
    "shapefile_zip",
    "multipart",
    "tpr_export",
    "xls",
];

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(repo(&format!("tests/fixtures/{rel}"))).unwrap()
}

fn crash_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/crashes")
}

/// The first `n` lines of a text file.
fn head(bytes: &[u8], n: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.lines().take(n).collect::<Vec<_>>().join("\n");
    out.push('\n');
    out.into_bytes()
}

const BOUNDARY: &str = "fuzzboundary";

fn multipart(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, file, bytes) in parts {
        write!(
            body,
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{BOUNDARY}--\r\n").unwrap();
    body
}

/// The seed corpus of a target: the project's fixtures, small hostile inputs, and every crash
/// input found before.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let kano_csv = head(&fixture("kano/kano_wards.csv"), 40);
    let kano_rows = hostile::csv_rows(&kano_csv);
    let ilorin_zip = fixture("ilorin/ilorin_wards_shapefile.zip");
    let mut seeds: Vec<Vec<u8>> = match target {
        "csv" => vec![
            kano_csv.clone(),
            fixture("formats/latin1_semicolon.csv"),
            fixture("formats/utf16_tab.txt"),
            fixture("formats/mixed_missing.csv"),
            fixture("formats/ragged.csv"),
            hostile::wide_csv(2000),
        ],
        "xlsx" => vec![
            fixture("formats/wards.xlsx"),
            hostile::simple_xlsx(&kano_rows, "").unwrap(),
            hostile::xlsx_far_cell(&kano_rows[..5]).unwrap(),
        ],
        "xls" => {
            let mut seeds = vec![
                fixture("formats/wards.xls"),
                fixture("kano/kano_wards.xls"),
                hostile::simple_xls(&kano_rows),
                hostile::xls_far_cell(&kano_rows[..5]),
                hostile::xls_huge_dimensions(&kano_rows[..5]),
                hostile::xls_huge_sst(&kano_rows[..5]),
                hostile::xls_cyclic_chain(&kano_rows[..5]),
            ];
            seeds.extend(
                xls_streams(&kano_rows)
                    .into_iter()
                    .map(|s| hostile::xls_container(&s, false)),
            );
            seeds
        }
        "shapefile_zip" => vec![
            ilorin_zip.clone(),
            fixture("formats/zip_nested_ok.zip"),
            hostile::dbf_zero_length_fields(300, 2000).unwrap(),
            hostile::zip_many_large_entries(3, 4096).unwrap(),
        ],
        "multipart" => vec![
            multipart(&[
                ("csv_file", "kano.csv", &kano_csv),
                ("shapefile", "ilorin.zip", &ilorin_zip),
            ]),
            multipart(&[("csv_file", "w.xlsx", &fixture("formats/wards.xlsx"))]),
        ],
        "tpr_export" => {
            let tpr = head(&fixture("tpr/kano_nmep_2021_2024.csv"), 30);
            let rows = hostile::csv_rows(&tpr);
            vec![
                hostile::simple_xlsx(&rows, "").unwrap(),
                hostile::simple_xls(&rows),
                tpr,
            ]
        }
        other => panic!("unknown target {other}"),
    };
    if let Ok(dir) = std::fs::read_dir(crash_dir()) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{target}-")) {
                seeds.push(std::fs::read(entry.path()).unwrap());
            }
        }
    }
    seeds
}

/// BIFF8 workbook streams (no container) the .xls target mutates and wraps in a fresh
/// container, so the record parsers see a readable compound file.
fn xls_streams(kano_rows: &[Vec<String>]) -> Vec<Vec<u8>> {
    let cells = hostile::xls_cell_records(&kano_rows[..10]);
    let mut far = cells.clone();
    far.extend(hostile::biff_number(65535, 300, 1.0));
    let mut labels = cells.clone();
    labels.extend(hostile::biff_label(3, 3, 60_000, b"x"));
    vec![
        hostile::xls_stream(&[], &[("Sheet1", cells.clone())]),
        hostile::xls_stream(&[], &[("a", far), ("b", cells)]),
        hostile::xls_stream(&[], &[("Sheet1", labels)]),
    ]
}

/// xorshift64*: deterministic per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [&[u8]; 14] = [
    b",",
    b"\"",
    b"\n",
    b"\r\n",
    b";",
    b"\t",
    b"\0",
    b"NA",
    b"-1",
    b"1e308",
    b"WardName",
    b"\xff\xfe",
    b"XFD1048576",
    b"4294967295",
];

/// One byte-level mutation of `v`.
fn mutate_bytes(v: &mut Vec<u8>, rng: &mut Rng, other: &[u8]) {
    match rng.below(8) {
        0 => {
            let i = rng.below(v.len() + 1);
            v.truncate(i);
        }
        1 | 2 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(v.len());
                if let Some(b) = v.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
        }
        3 => {
            let i = rng.below(v.len());
            if let Some(b) = v.get_mut(i) {
                *b = [0u8, 0xff, 0x7f, 0x80, b'0', b' '][rng.below(6)];
            }
        }
        4 => {
            let at = rng.below(v.len() + 1);
            let token = INTERESTING[rng.below(INTERESTING.len())];
            let most = if rng.below(8) == 0 { 4096 } else { 4 };
            let times = 1 + rng.below(most);
            let insert: Vec<u8> = token.repeat(times);
            v.splice(at..at, insert);
        }
        5 => {
            // Duplicate a chunk (repetition is what parsers amplify).
            if !v.is_empty() {
                let a = rng.below(v.len());
                let len = 1 + rng.below((v.len() - a).min(256));
                let chunk = v[a..a + len].to_vec();
                let at = rng.below(v.len() + 1);
                for _ in 0..1 + rng.below(16) {
                    v.splice(at..at, chunk.iter().copied());
                }
            }
        }
        6 => {
            if !v.is_empty() {
                let a = rng.below(v.len());
                let b = (a + 1 + rng.below(64)).min(v.len());
                v.drain(a..b);
            }
        }
        _ => {
            // Splice in part of another seed.
            if !other.is_empty() {
                let a = rng.below(other.len());
                let b = (a + 1 + rng.below(512)).min(other.len());
                let at = rng.below(v.len() + 1);
                v.splice(at..at, other[a..b].iter().copied());
            }
        }
    }
}

/// Mutates inside one entry of a zip and re-zips it (None when `v` is no zip we can read).
fn mutate_zip_entry(v: &[u8], rng: &mut Rng, other: &[u8]) -> Option<Vec<u8>> {
    let mut entries = read_zip(v, &mrpt_formats::Limits::default()).ok()?;
    if entries.is_empty() {
        return None;
    }
    let k = rng.below(entries.len());
    for _ in 0..1 + rng.below(3) {
        mutate_bytes(&mut entries[k].bytes, rng, other);
    }
    let parts: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.bytes.as_slice()))
        .collect();
    write_zip(&parts).ok()
}

fn mutate(target: &str, seeds: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let seed = &seeds[rng.below(seeds.len())];
    let other = &seeds[rng.below(seeds.len())];
    let zipped = matches!(target, "xlsx" | "shapefile_zip");
    if zipped
        && rng.below(2) == 0
        && let Some(v) = mutate_zip_entry(seed, rng, other)
    {
        return v;
    }
    if target == "xls" && rng.below(2) == 0 {
        static STREAMS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
        let streams = STREAMS.get_or_init(|| {
            xls_streams(&hostile::csv_rows(&head(
                &fixture("kano/kano_wards.csv"),
                20,
            )))
        });
        let mut stream = streams[rng.below(streams.len())].clone();
        for _ in 0..1 + rng.below(4) {
            mutate_bytes(&mut stream, rng, other);
        }
        return hostile::xls_container(&stream, false);
    }
    let mut v = seed.clone();
    for _ in 0..1 + rng.below(4) {
        mutate_bytes(&mut v, rng, other);
    }
    v
}

/// Runs one input through a target; `Ok` or a typed error both count as answered.
struct Runner {
    runtime: tokio::runtime::Runtime,
    app: Option<(mrpt_app::App, String)>,
    _dir: tempfile::TempDir,
}

impl Runner {
    fn new(target: &str) -> Runner {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let app = (target == "multipart").then(|| {
            let app = mrpt_app::App::new(mrpt_app::AppConfig {
                instance_dir: dir.path().join("instance"),
                ..mrpt_app::AppConfig::default()
            })
            .unwrap();
            let created = runtime.block_on(app.handle(request("/api/session", None, Bytes::new())));
            let body = runtime.block_on(http_body_util::BodyExt::collect(created.into_body()));
            let value: serde_json::Value =
                serde_json::from_slice(&body.unwrap().to_bytes()).unwrap();
            (app, value["session_id"].as_str().unwrap().to_owned())
        });
        Runner {
            runtime,
            app,
            _dir: dir,
        }
    }

    /// Whether the reader answered Ok (false: a typed error or an HTTP error status).
    fn run(&self, target: &str, input: &[u8]) -> bool {
        match target {
            "csv" => mrpt_formats::read_ward_table(input, "fuzz.csv").is_ok(),
            "xlsx" => mrpt_formats::read_table(input, "fuzz.xlsx").is_ok(),
            "xls" => {
                let table = mrpt_formats::read_table(input, "fuzz.xls").is_ok();
                let tpr =
                    mrpt_formats::tpr::read_facility_export(input, "fuzz.xls", &Default::default());
                table || tpr.is_ok()
            }
            "shapefile_zip" => mrpt_formats::read_shapefile_zip(input).is_ok(),
            "tpr_export" => {
                let name = if input.starts_with(b"PK") {
                    "fuzz.xlsx"
                } else if input.starts_with(b"\xD0\xCF\x11\xE0") {
                    "fuzz.xls"
                } else {
                    "fuzz.csv"
                };
                mrpt_formats::tpr::read_facility_export(input, name, &Default::default()).is_ok()
            }
            "multipart" => {
                let Some((app, session)) = &self.app else {
                    return false;
                };
                let req = request(
                    "/upload_both_files",
                    Some(session),
                    Bytes::copy_from_slice(input),
                );
                let response = self.runtime.block_on(app.handle(req));
                let status = response.status();
                assert!(status.as_u16() < 500, "multipart answered {status}");
                status.is_success()
            }
            other => panic!("unknown target {other}"),
        }
    }
}

fn request(
    path: &str,
    session: Option<&str>,
    body: Bytes,
) -> http::Request<http_body_util::Full<Bytes>> {
    let mut b = http::Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
    if let Some(id) = session {
        b = b.header("x-session-id", id);
    }
    b.body(http_body_util::Full::new(body)).unwrap()
}

fn env_secs(name: &str, default: f64) -> Duration {
    Duration::from_secs_f64(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// The child: fuzz `target` until the time is up. Each input is written to `current` first, so
/// the parent can keep whatever killed the child.
fn child(target: &str, work: &Path) {
    let seconds = env_secs("FUZZ_SECONDS", 6.0);
    let per_input = env_secs("FUZZ_INPUT_SECONDS", 20.0);
    let seeds = corpus(target);
    let runner = Runner::new(target);
    let started_ms = Arc::new(AtomicU64::new(0));
    let clock = Instant::now();
    {
        let started_ms = Arc::clone(&started_ms);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let s = started_ms.load(Ordering::Relaxed);
                let now = clock.elapsed().as_millis() as u64;
                if s > 0 && now.saturating_sub(s) > per_input.as_millis() as u64 {
                    eprintln!("FUZZ TIMEOUT: one input ran longer than {per_input:?}");
                    std::process::abort();
                }
            }
        });
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ target.len() as u64 ^ std::process::id() as u64);
    let current = work.join("current");
    let (mut execs, mut ok, mut slowest) = (0u64, 0u64, Duration::ZERO);
    let mut run = |input: &[u8]| {
        std::fs::write(&current, input).unwrap();
        started_ms.store(clock.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
        let t = Instant::now();
        let answered = runner.run(target, input);
        started_ms.store(0, Ordering::Relaxed);
        slowest = slowest.max(t.elapsed());
        execs += 1;
        ok += u64::from(answered);
    };
    for seed in &seeds {
        run(seed);
    }
    while clock.elapsed() < seconds {
        let input = mutate(target, &seeds, &mut rng);
        run(&input);
    }
    println!(
        "\nFUZZ {target}: {execs} executions ({ok} read, {} refused with an error), slowest input {:.0} ms, {} seeds",
        execs - ok,
        slowest.as_secs_f64() * 1000.0,
        seeds.len()
    );
}

/// The parent: run the child under the address-space cap and keep any input that killed it.
fn fuzz(target: &str) {
    if let Ok(t) = std::env::var("FUZZ_CHILD") {
        if t == target {
            let work = PathBuf::from(std::env::var("FUZZ_WORK").unwrap());
            child(target, &work);
        }
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304; exec \"$0\" \"$@\"")
        .arg(&exe)
        .args([
            &format!("fuzz_{target}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FUZZ_CHILD", target)
        .env("FUZZ_WORK", work.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(at) = stdout.find("FUZZ ") {
        println!("{}", stdout[at..].lines().next().unwrap_or_default());
    }
    if !out.status.success() {
        let input = std::fs::read(work.path().join("current")).unwrap_or_default();
        let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        std::fs::create_dir_all(crash_dir()).unwrap();
        let kept = crash_dir().join(format!("{target}-{hash:016x}.bin"));
        std::fs::write(&kept, &input).unwrap();
        panic!(
            "fuzz target {target} died ({}) on an input of {} bytes, kept as {}:\n{stderr}",
            out.status,
            input.len(),
            kept.display()
        );
    }
}

#[test]
fn fuzz_csv() {
    fuzz(TARGETS[0]);
}

#[test]
fn fuzz_xlsx() {
    fuzz(TARGETS[1]);
}

#[test]
fn fuzz_shapefile_zip() {
    fuzz(TARGETS[2]);
}

#[test]
fn fuzz_multipart() {
    fuzz(TARGETS[3]);
}

#[test]
fn fuzz_tpr_export() {
    fuzz(TARGETS[4]);
}

#[test]
fn fuzz_xls() {
    fuzz(TARGETS[5]);
}
