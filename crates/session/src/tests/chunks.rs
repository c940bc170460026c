//! Chunked uploads (`chunks.rs`) and the bounded conversation (`conversation.rs`).

use std::cell::Cell;
use std::fs;
use std::process::Child;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{ChildSpec, outcome_of, spawn, store, wait_child};
use crate::*;
// The local backend itself (the facade `crate::Store` is tested over HTTP and in backend.rs).
#[allow(unused_imports)]
use crate::store::{Store, Upload};

pub(super) const UPLOAD: &str = "upload_1764760000000_k3x9";
pub(super) const TOTAL: u32 = 12;
pub(super) const LIMITS: ChunkLimits = ChunkLimits {
    max_chunk_bytes: 4096,
    max_upload_bytes: 64 * 1024,
    max_chunks: 64,
};

/// Chunk `index`'s bytes: distinct per index, so a misordered join shows.
pub(super) fn chunk_bytes(index: u32) -> Vec<u8> {
    format!("row{index:03},").repeat(100).into_bytes()
}

fn put(
    store: &Store,
    id: &SessionId,
    part: &str,
    index: u32,
    total: u32,
    bytes: &[u8],
) -> Result<ChunkStatus> {
    store.put_chunk(
        id,
        Chunk {
            upload_id: UPLOAD,
            part,
            index,
            total,
            bytes,
        },
        &LIMITS,
    )
}

/// The finalize closure of a real caller: stage the joined CSV and commit it.
pub(super) fn commit_csv(store: &Store, id: &SessionId, finalizing: Finalizing) -> Result<Value> {
    let (mut up, parts) = match finalizing {
        Finalizing::Parts { upload, parts } => (upload, parts),
        Finalizing::Committed => {
            let generation = store.status(id)?.generation;
            return Ok(json!({"status": "success", "generation": generation, "recovered": true}));
        }
    };
    for part in parts {
        if part.part == "csv" {
            up.write(&Artifact::RawCsv, &part.bytes)?;
        }
    }
    let generation = store.commit_upload(up, UploadInfo::default())?;
    Ok(json!({"status": "success", "generation": generation}))
}

#[test]
fn chunks_in_any_order_retried_join_in_order_and_finalize_once() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    // Out of order, chunk 5 sent twice (a retry after a lost answer), chunk 7 not yet.
    for index in [3, 0, 5, 1, 2, 5, 4, 6, 8, 9, 10, 11] {
        put(&store, &id, "csv", index, TOTAL, &chunk_bytes(index)).unwrap();
    }
    let status = store.chunk_status(&id, UPLOAD).unwrap().unwrap();
    assert_eq!(status.parts["csv"].missing(), vec![7]);
    assert_eq!(status.bytes, 11 * chunk_bytes(0).len() as u64);
    assert!(!status.finalized);

    // Finalize with a chunk missing: names it, commits nothing.
    let err = store
        .finalize_chunks(&id, UPLOAD, &[("csv", TOTAL)], |parts| {
            commit_csv(&store, &id, parts)
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::IncompleteUpload(ref m) if m.contains("csv chunks 7")),
        "{err}"
    );
    assert!(!store.status(&id).unwrap().data_loaded);

    put(&store, &id, "csv", 7, TOTAL, &chunk_bytes(7)).unwrap();
    let calls = Cell::new(0);
    let finalize = || {
        store.finalize_chunks(&id, UPLOAD, &[("csv", TOTAL)], |f| {
            calls.set(calls.get() + 1);
            commit_csv(&store, &id, f)
        })
    };
    let first = finalize().unwrap();
    assert_eq!(first["generation"], 1);
    // Repeated (the client never saw the answer): the same answer, no second commit.
    let again = finalize().unwrap();
    assert_eq!(again, first);
    assert_eq!(calls.get(), 1);
    assert_eq!(store.status(&id).unwrap().generation, 1);

    let joined: Vec<u8> = (0..TOTAL).flat_map(chunk_bytes).collect();
    assert_eq!(store.read_artifact(&id, &Artifact::RawCsv).unwrap(), joined);
    let status = store.chunk_status(&id, UPLOAD).unwrap().unwrap();
    assert!(status.finalized);
    assert_eq!(status.bytes, 0, "the chunks are removed once committed");
    // A finalized upload takes no more chunks.
    assert!(matches!(
        put(&store, &id, "csv", 0, TOTAL, b"late"),
        Err(Error::BadChunk(_))
    ));
}

#[test]
fn chunk_limits_and_contradictions_are_refused() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    let big = vec![b'x'; LIMITS.max_chunk_bytes as usize + 1];
    assert!(matches!(
        put(&store, &id, "csv", 0, 4, &big),
        Err(Error::TooLarge(_))
    ));
    assert!(matches!(
        put(&store, &id, "csv", 4, 4, b"a"),
        Err(Error::BadChunk(_))
    ));
    assert!(matches!(
        put(&store, &id, "csv", 0, 0, b"a"),
        Err(Error::BadChunk(_))
    ));
    assert!(matches!(
        put(&store, &id, "csv", 0, 65, b"a"),
        Err(Error::BadChunk(_))
    ));
    assert!(matches!(
        put(&store, &id, "../x", 0, 4, b"a"),
        Err(Error::BadChunk(_))
    ));
    for bad_id in ["", "../../etc", "a b", &"x".repeat(65)] {
        let r = store.put_chunk(
            &id,
            Chunk {
                upload_id: bad_id,
                part: "csv",
                index: 0,
                total: 1,
                bytes: b"a",
            },
            &LIMITS,
        );
        assert!(matches!(r, Err(Error::BadChunk(_))), "{bad_id:?}");
    }
    put(&store, &id, "csv", 0, 4, b"a").unwrap();
    // Another total for the same part contradicts the first chunk.
    assert!(matches!(
        put(&store, &id, "csv", 1, 5, b"a"),
        Err(Error::BadChunk(_))
    ));
    // The per-upload limit counts every part; a replaced chunk's old copy does not count twice.
    let full = vec![b'y'; LIMITS.max_chunk_bytes as usize];
    let mut index = 0;
    let err = loop {
        match put(&store, &id, "shapefile", index, 64, &full) {
            Ok(_) => index += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, Error::TooLarge(ref m) if m.contains("over the limit")),
        "{err}"
    );
    let stored = store.chunk_status(&id, UPLOAD).unwrap().unwrap().bytes;
    assert!(stored <= LIMITS.max_upload_bytes);
    put(&store, &id, "shapefile", 0, 64, &full).unwrap();
    // A finalize whose totals differ from the chunks' is refused, nothing committed.
    let r = store.finalize_chunks(&id, UPLOAD, &[("csv", 3)], |parts| {
        commit_csv(&store, &id, parts)
    });
    assert!(matches!(r, Err(Error::BadChunk(_))));
    assert_eq!(store.status(&id).unwrap().generation, 0);
    // Nothing of the upload is visible as session data, and another session sees nothing.
    let other = store.create_session().unwrap();
    assert!(store.chunk_status(&other, UPLOAD).unwrap().is_none());
}

#[test]
fn chunks_from_six_processes_make_one_upload() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut children: Vec<(Child, std::path::PathBuf)> = (0..6)
        .map(|n| {
            // Each child gets two chunks and child 0 also repeats one of child 5's.
            let mut list: Vec<String> = [n, n + 6].iter().map(u32::to_string).collect();
            if n == 0 {
                list.push("11".into());
            }
            let out = work.path().join(format!("out-{n}"));
            let child = spawn(ChildSpec {
                role: "chunks",
                instance: dir.path(),
                session: &id,
                out: out.clone(),
                env: vec![("MRPT_CHUNKS", list.join(","))],
            });
            (child, out)
        })
        .collect();
    for (child, out) in &mut children {
        assert!(wait_child(child).success());
        assert!(outcome_of(out)["stored"].is_array());
    }
    let status = store.chunk_status(&id, UPLOAD).unwrap().unwrap();
    assert!(status.parts["csv"].missing().is_empty(), "{status:?}");
    store
        .finalize_chunks(&id, UPLOAD, &[("csv", TOTAL)], |parts| {
            commit_csv(&store, &id, parts)
        })
        .unwrap();
    let joined: Vec<u8> = (0..TOTAL).flat_map(chunk_bytes).collect();
    assert_eq!(store.read_artifact(&id, &Artifact::RawCsv).unwrap(), joined);
}

fn backdate(path: &std::path::Path, by: Duration) {
    let when = SystemTime::now() - by;
    for entry in fs::read_dir(path).unwrap().flatten() {
        let f = fs::File::options().write(true).open(entry.path()).unwrap();
        f.set_modified(when).unwrap();
    }
    fs::File::open(path).unwrap().set_modified(when).unwrap();
}

#[test]
fn the_sweep_collects_abandoned_uploads_and_keeps_live_ones() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    super::upload(&store, &id, "kept data");
    put(&store, &id, "csv", 0, 2, b"abandoned").unwrap();
    store
        .put_chunk(
            &id,
            Chunk {
                upload_id: "live",
                part: "csv",
                index: 0,
                total: 2,
                bytes: b"live",
            },
            &LIMITS,
        )
        .unwrap();
    let staging = dir
        .path()
        .join("uploads")
        .join(id.as_str())
        .join(".staging");
    backdate(
        &staging.join(format!("c-{UPLOAD}")),
        ABANDONED_UPLOAD + Duration::from_secs(60),
    );
    // A commit's garbage collection leaves chunked uploads to the sweep (a slow link may resume
    // hours later).
    super::upload(&store, &id, "newer data");
    assert!(store.chunk_status(&id, UPLOAD).unwrap().is_some());

    let report = store
        .sweep(&super::lifecycle::POLICY, false, Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!(report.abandoned_uploads, 1);
    assert_eq!(report.removed_idle + report.removed_empty, 0);
    assert!(store.chunk_status(&id, UPLOAD).unwrap().is_none());
    assert_eq!(store.chunk_status(&id, "live").unwrap().unwrap().bytes, 4);
    // The session's data is untouched.
    assert_eq!(
        store.read_artifact(&id, &Artifact::RawCsv).unwrap(),
        b"newer data"
    );
}

#[test]
fn conversation_is_bounded_listed_and_read_back_by_a_new_store() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    assert!(store.conversation_summary(&id).unwrap().is_none());
    let long = "a long answer ".repeat(400);
    for n in 0..200u64 {
        store
            .update_conversation(&id, |old| {
                let mut doc = old.unwrap_or_else(|| json!({"turns": [], "pending": null}));
                let turns = doc["turns"].as_array_mut().unwrap();
                turns.push(json!({"role": "user", "text": format!("question {n}"), "at_ms": 1000 + n}));
                turns.push(json!({"role": "assistant", "text": long, "at_ms": 1000 + n, "visualizations": ["/serve_viz_file/x/visualizations/m.html"]}));
                doc
            })
            .unwrap();
    }
    let path = dir
        .path()
        .join("uploads")
        .join(id.as_str())
        .join("conversation.json");
    let size = fs::metadata(&path).unwrap().len() as usize;
    assert!(size <= MAX_CONVERSATION_BYTES, "{size}");
    // Another process (a restarted worker) reads it back from disk.
    let fresh = Store::open(dir.path()).unwrap();
    let messages = fresh.conversation_messages(&id).unwrap();
    assert!(messages.len() < 400 && messages.len() > 10);
    let last = messages.last().unwrap();
    assert_eq!(last.role, "assistant");
    assert_eq!(
        last.visualizations,
        vec!["/serve_viz_file/x/visualizations/m.html"]
    );
    assert_eq!(messages[messages.len() - 2].text, "question 199");
    let summary = fresh.conversation_summary(&id).unwrap().unwrap();
    assert_eq!(summary.session_id, id.as_str());
    assert_eq!(summary.last_activity_ms, 1199);
    assert!(summary.title.starts_with("question "));
    assert!(summary.preview.starts_with("a long answer") && summary.preview.chars().count() <= 80);
    assert!(!summary.has_files);
    super::upload(&fresh, &id, "csv");
    // An upload keeps the conversation (a clear removes it).
    assert!(fresh.conversation_summary(&id).unwrap().unwrap().has_files);
    fresh.clear_session(&id).unwrap();
    assert!(fresh.conversation_summary(&id).unwrap().is_none());
}

#[test]
fn a_crash_after_a_chunk_or_after_the_commit_leaves_a_resumable_exactly_once_upload() {
    let (dir, store) = store();
    let id = store.create_session().unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = |role: &str, chunks: &str, fault: &str| {
        let out = work.path().join(format!("out-{role}-{fault}"));
        let mut child = spawn(ChildSpec {
            role,
            instance: dir.path(),
            session: &id,
            out,
            env: vec![
                ("MRPT_CHUNKS", chunks.to_owned()),
                ("MRPT_FAULT", fault.to_owned()),
            ],
        });
        wait_child(&mut child).success()
    };
    // The worker dies after storing chunk 0, before answering: the chunk is there (a retry
    // replaces it), nothing else.
    assert!(!run("chunks", "0", "chunk-after-write"));
    let status = store.chunk_status(&id, UPLOAD).unwrap().unwrap();
    assert_eq!(status.parts["csv"].received, vec![0]);
    assert!(run("chunks", "0,1,2,3,4,5,6,7,8,9,10,11", "none"));
    // The worker dies after committing, before remembering its answer.
    assert!(!run("finalize", "", "finalize-after-commit"));
    assert_eq!(store.status(&id).unwrap().generation, 1);
    // The retry does not commit again: it describes the committed state.
    let answer = store
        .finalize_chunks(&id, UPLOAD, &[("csv", TOTAL)], |f| {
            commit_csv(&store, &id, f)
        })
        .unwrap();
    assert_eq!(answer["generation"], 1);
    assert_eq!(answer["recovered"], true);
    assert_eq!(store.status(&id).unwrap().generation, 1);
    let joined: Vec<u8> = (0..TOTAL).flat_map(chunk_bytes).collect();
    assert_eq!(store.read_artifact(&id, &Artifact::RawCsv).unwrap(), joined);
}
