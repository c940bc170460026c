//! Hardening for an instance directory shared between hosts (NFS v4.1 / EFS): the analysis
//! commit is fenced, ESTALE is retried, cleanup after a commit never fails the request, and
//! `conversation.json` always exists.

use super::*;

/// A holder that lost its analysis lock (here: the lock file was replaced under it, as when an
/// NFS server revokes the lock of a paused host) cannot commit a second analysis in the same
/// generation: the winner's commit fences it, and it answers with the winner's record.
#[test]
fn a_holder_that_lost_its_lock_cannot_commit_a_second_analysis() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let session = store.session_dir(&id).unwrap();
    let mut winner = None;
    let loser = store
        .run_analysis_once(&id, &AnalysisRequest::default(), |inputs, staging| {
            let computed = fake_pipeline(inputs, staging);
            // The lock is lost: another holder takes a fresh lock file and commits first (and
            // removes our staging, which it takes for a dead worker's).
            fs::remove_file(session.join(crate::store::ANALYSIS_LOCK)).unwrap();
            let w = store
                .run_analysis_once(
                    &id,
                    &AnalysisRequest {
                        force: true,
                        ..Default::default()
                    },
                    fake_pipeline,
                )
                .unwrap();
            winner = Some(w);
            computed
        })
        .unwrap();
    let winner = winner.unwrap();
    assert!(!winner.reused);
    assert!(
        loser.reused,
        "the fenced holder answers with the winner's record"
    );
    assert_eq!(loser.analysis_id, winner.analysis_id);
    let s = store.status(&id).unwrap();
    assert_eq!((s.analyses_started, s.analyses_committed), (2, 1));
    assert_eq!(s.analysis_id.as_deref(), Some(winner.analysis_id.as_str()));
    // The loser's outputs are not left behind as data.
    let data: Vec<_> = fs::read_dir(session.join(crate::store::DATA))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.starts_with("a-"))
        .collect();
    assert_eq!(data, vec![format!("a-{}", winner.analysis_id)]);
}

#[test]
fn estale_on_the_manifest_is_retried() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    crate::store::tests_estale::inject(3);
    let s = store.status(&id).unwrap();
    assert_eq!(s.generation, 1);
    assert!(s.data_loaded);
    // Persistent ESTALE is an error, not a "legacy folder with no manifest".
    crate::store::tests_estale::inject(100);
    let e = store.status(&id).unwrap_err();
    crate::store::tests_estale::inject(0);
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}

#[test]
fn conversation_json_always_exists() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    let path = store.session_dir(&id).unwrap().join("conversation.json");
    assert!(path.is_file(), "created with the session");
    assert_eq!(store.read_conversation(&id).unwrap(), None);
    store
        .update_conversation(&id, |old| {
            assert_eq!(old, None);
            json!({"messages": [1]})
        })
        .unwrap();
    store.clear_session(&id).unwrap();
    assert!(path.is_file(), "a clear empties it, never removes it");
    assert_eq!(store.read_conversation(&id).unwrap(), None);

    // A session made before the file was always written: the update creates it exclusively.
    fs::remove_file(&path).unwrap();
    store
        .update_conversation(&id, |old| {
            assert_eq!(old, None);
            json!({"messages": [2]})
        })
        .unwrap();
    assert_eq!(
        store.read_conversation(&id).unwrap(),
        Some(json!({"messages": [2]}))
    );
}

/// An NFS client renames a file that is unlinked while open to `.nfsXXXX`, and nobody but that
/// client may remove it, so the directory holding it cannot be removed. Cleanup after a commit
/// must leave it and still answer success.
#[test]
fn undeletable_debris_never_fails_a_committed_request() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    upload(&store, &id, "kano");
    let first = analyse(&store, &id, &AnalysisRequest::default());
    store
        .write_file(
            &id,
            &Artifact::Visualization(RelPath::parse("map.html").unwrap()),
            b"<html>",
        )
        .unwrap();
    let session = store.session_dir(&id).unwrap();
    // Silly-rename files: in `.data/` (next to the directories the collection removes) and in a
    // retired folder. Locally they are plain files; cleanup must skip the first by name and
    // must not fail on either.
    let data = session.join(crate::store::DATA);
    fs::write(data.join(".nfs000000001"), b"held open elsewhere").unwrap();
    let vis = session.join("visualizations");
    fs::write(vis.join(".nfs000000002"), b"held open elsewhere").unwrap();
    assert!(data.join(format!("a-{}", first.analysis_id)).is_dir());

    // A new upload retires the analysis directory and the visualizations.
    assert_eq!(upload(&store, &id, "ilorin"), 2);
    let s = store.status(&id).unwrap();
    assert_eq!((s.generation, s.analysis_id), (2, None));
    assert!(
        data.join(".nfs000000001").is_file(),
        ".nfs* files are left alone"
    );
    assert!(!data.join(format!("a-{}", first.analysis_id)).exists());
    assert!(!vis.exists(), "the visualizations folder moved aside");
    let second = analyse(&store, &id, &AnalysisRequest::default());
    assert!(!second.reused);
    store.clear_session(&id).unwrap();
    assert_eq!(store.status(&id).unwrap().generation, 3);
}
