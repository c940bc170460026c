//! The manifest's head line, planted links and tokens, the retention of loose files and the
//! sweep of idle sessions. Multi-process where it matters (children of this test binary, see
//! `child_process` in the parent module).

use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::{
    ChildSpec, analyse, outcome_of, read_string, spawn, store, upload, wait_child, wait_for,
};
use crate::manifest::{MANIFEST, Manifest, StatusHead};
use crate::*;
// The local backend itself (the facade `crate::Store` is tested over HTTP and in backend.rs).
#[allow(unused_imports)]
use crate::store::{Store, Upload};

pub(super) const POLICY: SweepPolicy = SweepPolicy {
    idle: Some(Duration::from_secs(30 * 86_400)),
    empty: Some(Duration::from_secs(86_400)),
};

/// The loose files of ITN plan `plan`: its map and its allocation table.
pub(super) fn plan_files(plan: &str) -> Vec<Artifact> {
    vec![
        Artifact::visualization(&format!("itn_map_{plan}.html")).unwrap(),
        Artifact::export(&format!("itn_allocation_{plan}.csv")).unwrap(),
    ]
}

fn commit_plan(store: &Store, id: &SessionId, analysis_id: &str, plan: &str) {
    let files = plan_files(plan);
    let maps: Vec<(Artifact, &[u8])> = files.iter().map(|a| (a.clone(), b"p".as_slice())).collect();
    store
        .commit_itn(id, analysis_id, &json!({"stats": {}}), &maps)
        .unwrap();
}

fn folder(instance: &Path, id: &SessionId) -> std::path::PathBuf {
    instance.join("uploads").join(id.as_str())
}

/// The relative names of every file under `visualizations/` and `exports/`.
fn loose(instance: &Path, id: &SessionId) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["visualizations", "exports"] {
        let Ok(entries) = fs::read_dir(folder(instance, id).join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().into_string().unwrap();
            if !name.starts_with('.') {
                out.push(format!("{sub}/{name}"));
            }
        }
    }
    out.sort();
    out
}

/// Head line and body of the manifest on disk come from one read of one file and must agree;
/// the fast status read must equal the full derivation.
fn assert_consistent(store: &Store, instance: &Path, id: &SessionId, context: &str) {
    let bytes = fs::read(folder(instance, id).join(MANIFEST)).unwrap();
    let head = StatusHead::parse_prefix(&bytes).unwrap_or_else(|| panic!("{context}: no head"));
    let body: Manifest = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(head, StatusHead::of(&body), "{context}");
    if !head.cleanup_pending {
        assert_eq!(
            store.status_head(id).unwrap(),
            store.status(id).unwrap().head(),
            "{context}"
        );
    }
}

/// Sets the modification time of a session folder and of everything directly in it `by` into
/// the past, as if nobody had written to it since.
fn age(dir: &Path, by: Duration) {
    let then = SystemTime::now() - by;
    for entry in fs::read_dir(dir).unwrap().flatten() {
        if !entry.file_type().unwrap().is_symlink() {
            fs::File::open(entry.path())
                .unwrap()
                .set_modified(then)
                .unwrap();
        }
    }
    fs::File::open(dir).unwrap().set_modified(then).unwrap();
}

const DAY: Duration = Duration::from_secs(86_400);

// ---- the head line -----------------------------------------------------------------------------

#[test]
fn the_manifest_starts_with_its_head_and_a_status_read_needs_only_that() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let out = analyse(&store, &id, &AnalysisRequest::default());
    let bytes = fs::read(folder(dir.path(), &id).join(MANIFEST)).unwrap();
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap();
    assert!(
        first_line.starts_with(b"{\"head\":{"),
        "{}",
        String::from_utf8_lossy(first_line)
    );
    assert!(first_line.len() < 400, "{}", first_line.len());
    // The first line alone is enough; the rest of the file is never parsed for a status.
    let head = StatusHead::parse_prefix(first_line).unwrap();
    assert_eq!(head.analysis_id.as_deref(), Some(out.analysis_id.as_str()));
    assert!(head.data_loaded && head.shapefile_loaded && !head.itn_complete);
    assert_eq!(store.status_head(&id).unwrap(), head);
    // A head cut short, or garbage after it, is no head: the whole document is read instead.
    assert!(StatusHead::parse_prefix(&first_line[..first_line.len() - 10]).is_none());
    assert!(StatusHead::parse_prefix(b"{\"head\":{\"generation\":1}}").is_none());
    assert_consistent(&store, dir.path(), &id, "after analysis");
}

#[test]
fn manifests_without_a_head_and_python_folders_take_the_full_path() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    analyse(&store, &id, &AnalysisRequest::default());
    // As the previous release wrote it: the body only.
    let path = folder(dir.path(), &id).join(MANIFEST);
    let m: Manifest = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let head = store.status_head(&id).unwrap();
    assert_eq!(head, store.status(&id).unwrap().head());
    assert!(head.analysis_id.is_some());

    // A folder of the Python system: no manifest at all.
    let py = store.create_session().unwrap();
    let py_dir = folder(dir.path(), &py);
    fs::remove_file(py_dir.join(MANIFEST)).unwrap();
    fs::write(py_dir.join("raw_data.csv"), "WardName\nA\n").unwrap();
    fs::write(
        py_dir.join("analysis_vulnerability_rankings.csv"),
        "WardName\nA\n",
    )
    .unwrap();
    let head = store.status_head(&py).unwrap();
    assert!(head.legacy && head.data_loaded);
    assert!(head.analysis_id.as_deref().unwrap().starts_with("legacy-"));
}

/// Head and body are one file written by one rename: whatever the crash point (the new
/// `manifest-before-rename` point sits between the fsync of the complete new manifest and its
/// rename), the head on disk describes the body on disk, and the status read agrees with the
/// full derivation.
#[test]
fn head_and_body_never_disagree_whatever_the_crash_point() {
    for point in fault::POINTS {
        for role in ["upload", "analyse", "itn"] {
            let (dir, store) = store();
            let id = store.create_session().unwrap();
            upload(&store, &id, "kano");
            let first = analyse(&store, &id, &AnalysisRequest::default());
            commit_plan(&store, &id, &first.analysis_id, "one");
            if role == "analyse" {
                upload(&store, &id, "niger");
            }
            let work = tempfile::tempdir().unwrap();
            let mut env = vec![
                ("MRPT_FAULT", point.to_owned()),
                ("MRPT_CSV", "ghana".to_owned()),
                ("MRPT_ANALYSIS", first.analysis_id.clone()),
                ("MRPT_PLAN", "two".to_owned()),
            ];
            if role != "itn" {
                env.pop();
            }
            let mut child = spawn(ChildSpec {
                role,
                instance: dir.path(),
                session: &id,
                out: work.path().join("out"),
                env,
            });
            wait_child(&mut child);
            let context = format!("{role} crashed at {point}");
            assert_consistent(&store, dir.path(), &id, &context);
            // The next operation of each kind still works, and stays consistent.
            upload(&store, &id, "mali");
            assert_consistent(&store, dir.path(), &id, &context);
            let next = analyse(&store, &id, &AnalysisRequest::default());
            assert_consistent(&store, dir.path(), &id, &context);
            commit_plan(&store, &id, &next.analysis_id, "three");
            assert_consistent(&store, dir.path(), &id, &context);
        }
    }
}

/// While other processes commit uploads, analyses and plans, every read of the manifest in
/// this one finds head and body in agreement.
#[test]
fn concurrent_readers_never_see_head_and_body_disagree() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let work = tempfile::tempdir().unwrap();
    let mut children: Vec<Child> = Vec::new();
    for n in 0..6 {
        let role = ["upload", "analyse", "analyse"][n % 3];
        children.push(spawn(ChildSpec {
            role,
            instance: dir.path(),
            session: &id,
            out: work.path().join(format!("out-{n}")),
            env: vec![("MRPT_CSV", format!("csv-{n}"))],
        }));
    }
    let path = folder(dir.path(), &id).join(MANIFEST);
    let mut reads = 0;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) || reads < 100 {
        let bytes = fs::read(&path).unwrap();
        let head = StatusHead::parse_prefix(&bytes).unwrap();
        let body: Manifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(head, StatusHead::of(&body));
        let fast = store.status_head(&id).unwrap();
        assert!(fast.generation >= head.generation);
        reads += 1;
    }
    for child in &mut children {
        assert!(wait_child(child).success());
    }
    assert_consistent(&store, dir.path(), &id, "after the writers");
}

// ---- planted links and tokens ----------------------------------------------------------------

#[test]
fn planted_links_are_refused_and_never_reach_another_session() {
    let (dir, store) = store();
    let a = store.create_session().unwrap();
    let b = store.create_session().unwrap();
    upload(&store, &a, "mine");
    upload(&store, &b, "secret of b");
    analyse(&store, &b, &AnalysisRequest::default());
    let (a_dir, b_dir) = (folder(dir.path(), &a), folder(dir.path(), &b));
    let tampered = |r: Result<Vec<u8>>| match r {
        Err(Error::Tampered { .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    };
    let b_manifest: Manifest =
        serde_json::from_slice(&fs::read(b_dir.join(MANIFEST)).unwrap()).unwrap();
    let b_upload = b_manifest.upload.unwrap().dir.unwrap();
    let a_manifest: Manifest =
        serde_json::from_slice(&fs::read(a_dir.join(MANIFEST)).unwrap()).unwrap();
    let a_upload = a_manifest.upload.clone().unwrap().dir.unwrap();

    // 1. The data directory named by a's manifest replaced by a link to b's.
    let a_data = a_dir.join(".data").join(&a_upload);
    fs::rename(&a_data, a_dir.join("saved")).unwrap();
    std::os::unix::fs::symlink(b_dir.join(".data").join(&b_upload), &a_data).unwrap();
    tampered(store.read_artifact(&a, &Artifact::RawCsv));
    fs::remove_file(&a_data).unwrap();
    fs::rename(a_dir.join("saved"), &a_data).unwrap();
    assert_eq!(read_string(&store, &a, &Artifact::RawCsv).unwrap(), "mine");

    // 2. `.data` itself a link to b's.
    fs::rename(a_dir.join(".data"), a_dir.join("saved")).unwrap();
    std::os::unix::fs::symlink(b_dir.join(".data"), a_dir.join(".data")).unwrap();
    tampered(store.read_artifact(&a, &Artifact::RawCsv));
    fs::remove_file(a_dir.join(".data")).unwrap();
    fs::rename(a_dir.join("saved"), a_dir.join(".data")).unwrap();

    // 3. The manifest a link to b's: the status route and every reader refuse.
    fs::rename(a_dir.join(MANIFEST), a_dir.join("saved.json")).unwrap();
    std::os::unix::fs::symlink(b_dir.join(MANIFEST), a_dir.join(MANIFEST)).unwrap();
    assert!(matches!(store.status_head(&a), Err(Error::Tampered { .. })));
    assert!(matches!(store.status(&a), Err(Error::Tampered { .. })));
    tampered(store.read_artifact(&a, &Artifact::RawCsv));
    fs::remove_file(a_dir.join(MANIFEST)).unwrap();
    fs::rename(a_dir.join("saved.json"), a_dir.join(MANIFEST)).unwrap();

    // 4. The conversation a link to b's.
    store
        .update_conversation(&b, |_| json!({"b": "private"}))
        .unwrap();
    fs::remove_file(a_dir.join("conversation.json")).unwrap();
    std::os::unix::fs::symlink(
        b_dir.join("conversation.json"),
        a_dir.join("conversation.json"),
    )
    .unwrap();
    assert!(matches!(
        store.read_conversation(&a),
        Err(Error::Tampered { .. })
    ));
    fs::remove_file(a_dir.join("conversation.json")).unwrap();

    // 5. A session folder that is a link to another is no session.
    let c = SessionId::parse(&"c".repeat(32)).unwrap();
    std::os::unix::fs::symlink(&b_dir, folder(dir.path(), &c)).unwrap();
    assert!(matches!(
        store.status_head(&c),
        Err(Error::SessionNotFound(_))
    ));
    assert!(matches!(store.status(&c), Err(Error::SessionNotFound(_))));

    // b was never touched, a still works.
    assert_eq!(
        read_string(&store, &b, &Artifact::RawCsv).unwrap(),
        "secret of b"
    );
    assert_eq!(read_string(&store, &a, &Artifact::RawCsv).unwrap(), "mine");
    assert_consistent(&store, dir.path(), &a, "after the links are gone");
}

#[test]
fn data_directory_tokens_and_file_names_must_have_the_exact_format() {
    let (dir, store) = store();
    let a = store.create_session().unwrap();
    let b = store.create_session().unwrap();
    upload(&store, &a, "mine");
    upload(&store, &b, "secret of b");
    let a_path = folder(dir.path(), &a).join(MANIFEST);
    let b_manifest: Manifest =
        serde_json::from_slice(&fs::read(folder(dir.path(), &b).join(MANIFEST)).unwrap()).unwrap();
    let b_token = b_manifest.upload.unwrap().dir.unwrap();
    let original: Manifest = serde_json::from_slice(&fs::read(&a_path).unwrap()).unwrap();
    let bad_tokens = [
        format!("../../{}/.data/{b_token}", b.as_str()),
        format!("{b_token}/../../../{}/.data/{b_token}", b.as_str()),
        b_token.to_uppercase(),
        b_token.replacen('u', "a", 1),
        format!("{b_token}0"),
        "u-".to_owned(),
        String::new(),
    ];
    for token in bad_tokens {
        let mut m = original.clone();
        m.upload.as_mut().unwrap().dir = Some(token.clone());
        fs::write(&a_path, m.to_bytes().unwrap()).unwrap();
        assert!(
            matches!(store.status(&a), Err(Error::Tampered { .. })),
            "{token}"
        );
        assert!(
            matches!(
                store.read_artifact(&a, &Artifact::RawCsv),
                Err(Error::Tampered { .. })
            ),
            "{token}"
        );
    }
    let mut m = original.clone();
    m.upload.as_mut().unwrap().files = vec!["../raw_data.csv".into()];
    fs::write(&a_path, m.to_bytes().unwrap()).unwrap();
    assert!(matches!(store.status(&a), Err(Error::Tampered { .. })));
    let mut m = original.clone();
    m.retired = vec!["../../manifest.json".into()];
    fs::write(&a_path, m.to_bytes().unwrap()).unwrap();
    assert!(matches!(store.status(&a), Err(Error::Tampered { .. })));

    fs::write(&a_path, original.to_bytes().unwrap()).unwrap();
    assert_eq!(read_string(&store, &a, &Artifact::RawCsv).unwrap(), "mine");
}

// ---- retention of loose files ----------------------------------------------------------------

#[test]
fn only_the_current_plans_files_are_kept() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let first = analyse(&store, &id, &AnalysisRequest::default());
    let aid = first.analysis_id.clone();
    let map = Artifact::visualization(&format!("vulnerability_map_{aid}.html")).unwrap();
    store.write_file(&id, &map, b"map").unwrap();
    let other = Artifact::visualization("chart_of_something.html").unwrap();
    store.write_file(&id, &other, b"chart").unwrap();
    for plan in ["one", "two", "three"] {
        commit_plan(&store, &id, &aid, plan);
        assert_eq!(
            loose(dir.path(), &id),
            [
                format!("exports/itn_allocation_{plan}.csv"),
                "visualizations/chart_of_something.html".to_owned(),
                format!("visualizations/itn_map_{plan}.html"),
                format!("visualizations/vulnerability_map_{aid}.html"),
            ],
            "after plan {plan}"
        );
    }
    assert!(store.status(&id).unwrap().itn_complete);

    // A worker dies right after committing plan "four": plan three's files are still there,
    // and the next commit removes them.
    let work = tempfile::tempdir().unwrap();
    let mut child = spawn(ChildSpec {
        role: "itn",
        instance: dir.path(),
        session: &id,
        out: work.path().join("out"),
        env: vec![
            ("MRPT_FAULT", "itn-after-manifest".to_owned()),
            ("MRPT_ANALYSIS", aid.clone()),
            ("MRPT_PLAN", "four".to_owned()),
        ],
    });
    assert!(!wait_child(&mut child).success());
    assert!(loose(dir.path(), &id).contains(&"exports/itn_allocation_three.csv".to_owned()));
    commit_plan(&store, &id, &aid, "five");
    let now = loose(dir.path(), &id);
    assert!(
        !now.iter()
            .any(|n| n.contains("three") || n.contains("four")),
        "{now:?}"
    );

    // A new population drops the plan and its files.
    store
        .commit_population(&id, b"WardName,Population\nA,1\n", json!({}))
        .unwrap();
    assert!(!loose(dir.path(), &id).iter().any(|n| n.contains("itn_")));

    // A new analysis of the same upload retires the old one's maps and plan.
    commit_plan(&store, &id, &aid, "six");
    let forced = AnalysisRequest {
        force: true,
        ..AnalysisRequest::default()
    };
    let second = analyse(&store, &id, &forced);
    assert_ne!(second.analysis_id, aid);
    assert_eq!(
        loose(dir.path(), &id),
        ["visualizations/chart_of_something.html"]
    );
    assert_consistent(&store, dir.path(), &id, "after the retirements");
}

// ---- the sweep ---------------------------------------------------------------------------------

#[test]
fn idle_and_empty_sessions_are_swept_fresh_and_busy_ones_kept() {
    let (dir, store) = store();
    let uploads = dir.path().join("uploads");
    let make = |data: bool| {
        let id = store.create_session().unwrap();
        if data {
            upload(&store, &id, "kano");
        }
        id
    };
    let fresh = make(true);
    let old = make(true);
    let old_chat = make(false);
    store
        .update_conversation(&old_chat, |_| json!({"history": []}))
        .unwrap();
    let empty_old = make(false);
    let empty_young = make(false);
    let busy = make(true);
    let python = make(false);
    let py_dir = folder(dir.path(), &python);
    fs::remove_file(py_dir.join(MANIFEST)).unwrap();
    fs::write(py_dir.join("raw_data.csv"), "WardName\nA\n").unwrap();
    age(&folder(dir.path(), &old), 31 * DAY);
    age(&folder(dir.path(), &old_chat), 31 * DAY);
    age(
        &folder(dir.path(), &empty_old),
        Duration::from_secs(25 * 3600),
    );
    age(
        &folder(dir.path(), &empty_young),
        Duration::from_secs(23 * 3600),
    );
    age(&folder(dir.path(), &busy), 40 * DAY);
    age(&py_dir, 40 * DAY);
    // Not sessions: left alone. Debris of a sweeper that died: removed.
    fs::create_dir(uploads.join("notes")).unwrap();
    fs::create_dir_all(uploads.join(".gc-deadbeef-1234/.data")).unwrap();

    // Another process is in the middle of a request on `busy`.
    let work = tempfile::tempdir().unwrap();
    let started = work.path().join("started");
    let go = work.path().join("go");
    let mut holder = spawn(ChildSpec {
        role: "hold-lock",
        instance: dir.path(),
        session: &busy,
        out: work.path().join("out"),
        env: vec![
            ("MRPT_STARTED", started.display().to_string()),
            ("MRPT_GO", go.display().to_string()),
        ],
    });
    wait_for("the lock holder", Duration::from_secs(60), || {
        started.exists()
    });

    let dry = store.sweep(&POLICY, true, Duration::ZERO).unwrap().unwrap();
    assert_eq!((dry.removed_idle, dry.removed_empty), (4, 1), "{dry:?}");
    assert!(
        folder(dir.path(), &old).exists(),
        "a dry run removes nothing"
    );

    let report = store
        .sweep(&POLICY, false, Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(report.sessions, 7, "{report:?}");
    assert_eq!(
        (report.removed_idle, report.removed_empty),
        (3, 1),
        "{report:?}"
    );
    assert_eq!((report.busy, report.debris), (1, 1), "{report:?}");
    assert!(report.bytes_freed > 0);
    for (id, kept) in [
        (&fresh, true),
        (&old, false),
        (&old_chat, false),
        (&empty_old, false),
        (&empty_young, true),
        (&busy, true),
        (&python, false),
    ] {
        assert_eq!(folder(dir.path(), id).exists(), kept, "{id:?}");
        if !kept {
            assert!(matches!(store.status(id), Err(Error::SessionNotFound(_))));
        }
    }
    assert!(uploads.join("notes").exists());
    assert!(!uploads.join(".gc-deadbeef-1234").exists());

    fs::write(&go, b"").unwrap();
    assert!(wait_child(&mut holder).success());
    let report = store
        .sweep(&POLICY, false, Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!((report.removed_idle, report.busy), (1, 0), "{report:?}");
    assert!(!folder(dir.path(), &busy).exists());
    assert!(folder(dir.path(), &fresh).exists());
}

#[test]
fn one_process_sweeps_at_most_once_per_interval() {
    let (dir, store) = store();
    let ids: Vec<SessionId> = (0..4).map(|_| store.create_session().unwrap()).collect();
    for id in &ids {
        age(&folder(dir.path(), id), 2 * DAY);
    }
    let work = tempfile::tempdir().unwrap();
    let go = work.path().join("go");
    let mut children: Vec<(Child, std::path::PathBuf)> = (0..6)
        .map(|n| {
            let out = work.path().join(format!("out-{n}"));
            let child = spawn(ChildSpec {
                role: "sweep",
                instance: dir.path(),
                session: &ids[0],
                out: out.clone(),
                env: vec![("MRPT_GO", go.display().to_string())],
            });
            (child, out)
        })
        .collect();
    fs::write(&go, b"").unwrap();
    let mut sweepers = 0;
    for (child, out) in &mut children {
        assert!(wait_child(child).success());
        let o = outcome_of(out);
        if o["swept"] == json!(true) {
            sweepers += 1;
            assert_eq!(o["report"]["removed_empty"], json!(4), "{o}");
        }
    }
    assert_eq!(sweepers, 1, "exactly one of six processes sweeps");
    assert!(ids.iter().all(|id| !folder(dir.path(), id).exists()));

    // Within the interval nobody sweeps again, however many ask.
    let late = store.create_session().unwrap();
    age(&folder(dir.path(), &late), 2 * DAY);
    for _ in 0..3 {
        assert!(
            store
                .sweep_if_due(&POLICY, Duration::from_secs(3600))
                .unwrap()
                .is_none()
        );
    }
    assert!(folder(dir.path(), &late).exists());
    // An operator's `prefork sessions gc` does not wait for the interval.
    let report = store
        .sweep(&POLICY, false, Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(report.removed_empty, 1);
}

#[test]
fn a_request_in_flight_cannot_bring_a_swept_session_back() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let mut up = store.begin_upload(&id).unwrap();
    up.write(&Artifact::RawCsv, b"late").unwrap();
    age(&folder(dir.path(), &id), 31 * DAY);
    let report = store
        .sweep(&POLICY, false, Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(report.removed_idle, 1);
    // The upload that was staged before the sweep fails; the folder does not come back.
    assert!(store.commit_upload(up, UploadInfo::default()).is_err());
    assert!(store.begin_upload(&id).is_err());
    assert!(!folder(dir.path(), &id).exists());
    assert!(matches!(
        store.session(id.as_str()),
        Err(Error::SessionNotFound(_))
    ));
}
