//! Session lifecycle against the real binary: no session minted by looking at the page, idle
//! sessions swept by exactly one worker (never the master) and by `prefork sessions gc`, only the
//! current ITN plan's files kept, stored file names bounded, and a planted link refused (issue
//! 18, findings 6 and 8).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::support::{
    Answer, BIN, Body, Part, Server, ServerBuilder, Session, fixture, multipart, poll_until,
    request,
};

const DEADLINE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

fn start(workers: &str, extra: &[&str]) -> Server {
    let mut args = vec!["-w", workers];
    args.extend_from_slice(extra);
    let server = ServerBuilder::new().args(&args).start();
    server
        .wait_workers(workers.parse().unwrap(), DEADLINE)
        .expect("workers");
    server
}

fn uploads_of(server: &Server) -> PathBuf {
    server.dir.path().join("instance").join("uploads")
}

/// The session folders (32 hex names) in an uploads directory.
fn sessions_in(uploads: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(uploads)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| mrpt_session::SessionId::parse(n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Sets the modification time of a session folder and everything directly in it `by` into the
/// past, as if nobody had written to it since.
fn age(dir: &Path, by: Duration) {
    let then = SystemTime::now() - by;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if !entry.file_type().unwrap().is_symlink() {
            std::fs::File::open(entry.path())
                .unwrap()
                .set_modified(then)
                .unwrap();
        }
    }
    std::fs::File::open(dir)
        .unwrap()
        .set_modified(then)
        .unwrap();
}

/// Sessions made through the session crate, as a previous run of the server would have left
/// them: `with_data` ones hold a tiny upload.
fn make_sessions(instance: &Path, with_data: usize, empty: usize) -> Vec<String> {
    let store = mrpt_session::Store::open(instance).unwrap();
    let mut ids = Vec::new();
    for n in 0..with_data + empty {
        let id = store.create_session().unwrap();
        if n < with_data {
            let mut up = store.begin_upload(&id).unwrap();
            up.write(&mrpt_session::Artifact::RawCsv, b"WardName,x\nA,1\n")
                .unwrap();
            store
                .commit_upload(up, mrpt_session::UploadInfo::default())
                .unwrap();
        }
        ids.push(id.as_str().to_owned());
    }
    ids
}

fn write_config(dir: &Path, sessions: &str) -> PathBuf {
    let path = dir.join("sessions.toml");
    std::fs::write(&path, format!("[sessions]\n{sessions}\n")).unwrap();
    path
}

#[test]
fn looking_at_the_page_mints_nothing_and_the_first_upload_does() {
    let server = start("2", &[]);
    let addr = server.addr();
    let uploads = uploads_of(&server);
    for _ in 0..20 {
        let page = request(addr, "GET", "/", &[], Body::Empty).unwrap();
        assert_eq!(page.status, 200);
        assert!(page.header("set-cookie").is_none(), "{:?}", page.headers);
    }
    let status = request(addr, "GET", "/api/session/status", &[], Body::Empty)
        .unwrap()
        .expect(200, "status without a session")
        .json_body();
    assert_eq!(status["session_id"], Value::Null, "{status}");
    assert_eq!(status["data_loaded"], false);
    assert_eq!(status["analysis_complete"], false);
    assert!(sessions_in(&uploads).is_empty(), "page views made folders");

    // The first upload mints the session and sets the cookie.
    let csv = fixture("kano/kano_wards.csv");
    let (ct, form) = multipart(&[Part::file("csv_file", "kano_wards.csv", &csv)]);
    let up = request(
        addr,
        "POST",
        "/upload_both_files",
        &[],
        Body::Sized(&ct, &form),
    )
    .unwrap()
    .expect(200, "first upload");
    let cookie = up.header("set-cookie").unwrap().to_owned();
    let id = up.json_body()["session_id"].as_str().unwrap().to_owned();
    assert!(cookie.contains(&format!("session_id={id}")), "{cookie}");
    assert_eq!(sessions_in(&uploads), std::slice::from_ref(&id));
    let cookie_header = format!("session_id={id}");
    let s = request(
        addr,
        "GET",
        "/api/session/status",
        &[("Cookie", &cookie_header)],
        Body::Empty,
    )
    .unwrap()
    .expect(200, "status")
    .json_body();
    assert_eq!(
        (s["session_id"].as_str(), &s["data_loaded"]),
        (Some(id.as_str()), &json!(true))
    );

    // POST /api/session still mints on request (the page does so before its first chat).
    Session::create(addr);
    assert_eq!(sessions_in(&uploads).len(), 2);

    // A session that is gone (swept): the browser is told to forget its cookie.
    std::fs::remove_dir_all(uploads.join(&id)).unwrap();
    let gone = request(
        addr,
        "GET",
        "/api/session/status",
        &[("Cookie", &cookie_header)],
        Body::Empty,
    )
    .unwrap();
    assert_eq!(gone.status, 404, "{}", gone.text());
    let expire = gone.header("set-cookie").unwrap();
    assert!(
        expire.contains("Max-Age=0") && expire.contains("session_id=;"),
        "{expire}"
    );
    // A script naming it explicitly just gets the 404.
    let by_header = request(
        addr,
        "GET",
        "/api/session/status",
        &[("X-Session-ID", &id)],
        Body::Empty,
    )
    .unwrap();
    assert_eq!(by_header.status, 404);
    assert!(by_header.header("set-cookie").is_none());
}

#[test]
fn idle_sessions_are_swept_by_exactly_one_worker_and_never_the_master() {
    let work = tempfile::tempdir().unwrap();
    let instance = work.path().join("instance");
    let fresh = make_sessions(&instance, 2, 1);
    let old = make_sessions(&instance, 3, 0);
    let old_empty = make_sessions(&instance, 0, 3);
    let uploads = instance.join("uploads");
    for id in &old {
        age(&uploads.join(id), 2 * DAY);
    }
    for id in &old_empty {
        age(&uploads.join(id), Duration::from_secs(2 * 3600));
    }
    let config = write_config(
        work.path(),
        "ttl_days = 1\nempty_ttl_hours = 1\nsweep_interval_minutes = 1",
    );
    let instance_arg = format!("--instance-dir={}", instance.display());
    let server = start(
        "6",
        &["-c", config.to_str().unwrap(), instance_arg.as_str()],
    );
    let gone = poll_until(DEADLINE, || {
        let now = sessions_in(&uploads);
        old.iter()
            .chain(&old_empty)
            .all(|id| !now.contains(id))
            .then_some(now)
    })
    .unwrap_or_else(|| panic!("the idle sessions were not swept:\n{}", server.stderr()));
    let mut kept = fresh.clone();
    kept.sort();
    assert_eq!(gone, kept, "fresh sessions must stay");

    // Six workers each asked at boot; exactly one swept, and it was a worker.
    let line = server
        .wait_for_line(DEADLINE, |l| l.contains("Session sweep:"))
        .unwrap();
    assert!(
        line.contains("removed 3 idle and 3 empty sessions of 9"),
        "{line}"
    );
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        server.count_lines("Session sweep:"),
        1,
        "{}",
        server.stderr()
    );
    let sweeper: i32 = line
        .split("] [")
        .nth(1)
        .and_then(|p| p.split(']').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(sweeper, server.pid, "the master must never sweep");
    assert!(
        server.workers().contains(&sweeper),
        "{sweeper} is not a worker"
    );

    // A swept id is unknown to every worker.
    let id = &old[0];
    for _ in 0..6 {
        let r = request(
            server.addr(),
            "GET",
            "/api/session/status",
            &[("X-Session-ID", id)],
            Body::Empty,
        )
        .unwrap();
        assert_eq!(r.status, 404);
    }
}

#[test]
fn sessions_gc_removes_idle_sessions_on_request() {
    let work = tempfile::tempdir().unwrap();
    let instance = work.path().join("instance");
    let fresh = make_sessions(&instance, 1, 1);
    let old = make_sessions(&instance, 2, 0);
    let uploads = instance.join("uploads");
    for id in &old {
        age(&uploads.join(id), 31 * DAY);
    }
    let gc = |extra: &[&str]| {
        let out = Command::new(BIN)
            .current_dir(work.path())
            .args(["sessions", "gc", "--instance-dir"])
            .arg(&instance)
            .args(extra)
            .env_remove("PREFORK_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dry = gc(&["--dry-run"]);
    assert!(
        dry.contains("would remove 2 idle and 0 empty sessions of 4"),
        "{dry}"
    );
    assert_eq!(sessions_in(&uploads).len(), 4);
    let report: Value = serde_json::from_str(&gc(&["--json"])).unwrap();
    assert_eq!(report["removed_idle"], 2, "{report}");
    assert!(report["bytes_freed"].as_u64().unwrap() > 0);
    let mut fresh = fresh;
    fresh.sort();
    assert_eq!(sessions_in(&uploads), fresh);

    // The limits come from the configuration file; a bad value names the setting.
    let config = write_config(work.path(), "ttl_days = 100000");
    let out = Command::new(BIN)
        .current_dir(work.path())
        .args(["sessions", "gc", "-c"])
        .arg(&config)
        .arg("--instance-dir")
        .arg(&instance)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sessions.ttl_days") && err.contains("100000"),
        "{err}"
    );
    // A directory with no session store is an error, not a new store.
    let out = Command::new(BIN)
        .current_dir(work.path())
        .args(["sessions", "gc", "--instance-dir"])
        .arg(work.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!work.path().join("nowhere").exists());
}

/// The loose files of a session folder (`visualizations/`, `exports/`), relative names.
fn loose_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["visualizations", "exports"] {
        for e in std::fs::read_dir(dir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
        }
    }
    out.sort();
    out
}

#[test]
fn only_the_current_plans_files_stay_and_file_names_are_bounded() {
    let server = start("3", &[]);
    let addr = server.addr();
    let s = Session::create(addr);
    // A 1 MiB file name: stored (and echoed) at most 128 characters, extension kept.
    let long_name = format!("{}.csv", "w".repeat(1 << 20));
    let csv = fixture("kano/kano_wards.csv");
    let zip = fixture("kano/kano_wards_shapefile.zip");
    s.upload((&long_name, &csv), Some(("kano.zip", &zip)))
        .expect(200, "upload with a long name");
    let info = s.get("/session_info").expect(200, "info").json_body();
    let stored = info["csv_filename"].as_str().unwrap();
    assert_eq!(
        stored.chars().count(),
        mrpt_session::MAX_STORED_FILE_NAME,
        "{stored}"
    );
    assert!(stored.ends_with("….csv"), "{stored}");
    let folder = uploads_of(&server).join(&s.id);
    let manifest = std::fs::read(folder.join("manifest.json")).unwrap();
    assert!(
        manifest.len() < 64 * 1024,
        "manifest of {} bytes",
        manifest.len()
    );
    let bad = s
        .upload((&format!("{}.exe", "x".repeat(1 << 20)), &csv), None)
        .expect(415, "bad extension");
    assert!(bad.text().len() < 1024, "the refusal echoes the whole name");

    s.upload_kano_population().expect(200, "population");
    let aid = s
        .run_analysis(&json!({}))
        .expect(200, "analysis")
        .json_body()["analysis_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut maps = Vec::new();
    for nets in [10_000, 20_000, 30_000] {
        let plan = s
            .plan_itn(&json!({"total_nets": nets}))
            .expect(200, "ITN plan")
            .json_body();
        maps.push(plan["map_path"].as_str().unwrap().to_owned());
        let files = loose_files(&folder);
        let itn: Vec<&String> = files.iter().filter(|f| f.contains("itn_")).collect();
        // The map, the allocation table and its totals per LGA (issue 14).
        assert_eq!(
            itn.len(),
            3,
            "one map, one table and its LGA totals: {files:?}"
        );
        assert!(
            maps.last()
                .is_some_and(|m| itn.iter().any(|f| m.ends_with(f.as_str()))),
            "{itn:?}"
        );
    }
    // The current plan's map is served; the earlier plans' are gone.
    assert_eq!(s.get(&maps[2]).status, 200);
    assert_eq!(s.get(&maps[0]).status, 404);
    // The export package has the current plan.
    let report = s
        .send("POST", "/generate_report", Body::Empty)
        .expect(200, "report")
        .json_body();
    let url = report["download_url"].as_str().unwrap();
    assert!(
        report["files"]
            .as_array()
            .unwrap()
            .contains(&json!("itn/itn_allocation.csv"))
    );
    assert_eq!(s.get(url).status, 200);
    // The maps of this analysis stay while it is current.
    assert!(
        loose_files(&folder)
            .iter()
            .any(|f| f.contains(&aid) && f.contains("vulnerability"))
    );
}

#[test]
fn a_planted_link_to_another_session_is_refused() {
    let server = start("2", &[]);
    let addr = server.addr();
    let a = Session::create(addr);
    let b = Session::create(addr);
    a.upload_kano().expect(200, "upload a");
    let theirs = format!("WardName,secret\n{},1\n", "B-only");
    b.upload(("b.csv", theirs.as_bytes()), None)
        .expect(200, "upload b");
    let uploads = uploads_of(&server);
    let token = |id: &str| -> String {
        let m: Value =
            serde_json::from_slice(&std::fs::read(uploads.join(id).join("manifest.json")).unwrap())
                .unwrap();
        m["upload"]["dir"].as_str().unwrap().to_owned()
    };
    let a_data = uploads.join(&a.id).join(".data").join(token(&a.id));
    std::fs::remove_dir_all(&a_data).unwrap();
    std::os::unix::fs::symlink(
        uploads.join(&b.id).join(".data").join(token(&b.id)),
        &a_data,
    )
    .unwrap();
    let r = a.download("raw_data.csv");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(!r.text().contains("B-only"));
    // The status line still answers from a's own manifest; b is untouched.
    assert_eq!(a.get("/api/session/status").status, 200);
    assert_eq!(
        b.download("raw_data.csv")
            .expect(200, "b's own file")
            .text(),
        theirs
    );
    // The server logged what it refused.
    assert!(
        server
            .wait_for_line(DEADLINE, |l| l.contains("symbolic link"))
            .is_some(),
        "{}",
        server.stderr()
    );
}
