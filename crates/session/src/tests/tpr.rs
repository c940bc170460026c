//! The TPR upload and its outputs (tpr.md §8): independent of the ward-table generations,
//! replaced together, never stored from a superseded upload, removed by a clear.

use super::*;

fn outputs(store: &Store, id: &SessionId, seq: u64, tag: &str) -> Result<()> {
    let results = format!("WardName,TPR\nGwale,{tag}\n");
    let map = format!("<html>{tag}</html>");
    store.commit_tpr_outputs(
        id,
        seq,
        &[
            (Artifact::TprResults, results.as_bytes()),
            (Artifact::TprSelection, b"{}"),
        ],
        &[(
            Artifact::visualization("tpr_map.html").unwrap(),
            map.as_bytes(),
        )],
        json!({"tag": tag}),
    )
}

#[test]
fn tpr_upload_needs_no_ward_table_and_its_outputs_replace_each_other() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    assert_eq!(store.tpr(&id).unwrap(), None);
    let seq = store
        .commit_tpr_upload(&id, &Artifact::TprUploadCsv, b"export", json!({"rows": 3}))
        .unwrap();
    assert_eq!(seq, 1);
    assert_eq!(
        read_string(&store, &id, &Artifact::TprUploadCsv).unwrap(),
        "export"
    );
    // No ward table: the session still has no data for the analysis.
    assert!(!store.status(&id).unwrap().data_loaded);
    assert!(matches!(
        store.read_artifact(&id, &Artifact::TprResults),
        Err(Error::ArtifactNotFound(_))
    ));
    outputs(&store, &id, seq, "41.5").unwrap();
    assert!(
        read_string(&store, &id, &Artifact::TprResults)
            .unwrap()
            .contains("41.5")
    );
    let record = store.tpr(&id).unwrap().unwrap();
    let o = record.outputs.unwrap();
    assert_eq!(o.summary["tag"], "41.5");
    assert_eq!(o.loose, vec!["visualizations/tpr_map.html".to_string()]);
    // A second computation replaces the first.
    outputs(&store, &id, seq, "43.0").unwrap();
    assert!(
        read_string(&store, &id, &Artifact::TprResults)
            .unwrap()
            .contains("43.0")
    );
    let map = store
        .read_artifact(&id, &Artifact::visualization("tpr_map.html").unwrap())
        .unwrap();
    assert_eq!(map, b"<html>43.0</html>");
    // An Excel export replaces the CSV one, and the old outputs and maps go.
    let seq2 = store
        .commit_tpr_upload(&id, &Artifact::TprUploadXlsx, b"PK..", json!({}))
        .unwrap();
    assert_eq!(seq2, 2);
    assert!(matches!(
        store.read_artifact(&id, &Artifact::TprUploadCsv),
        Err(Error::ArtifactNotFound(_))
    ));
    assert!(matches!(
        store.read_artifact(&id, &Artifact::TprResults),
        Err(Error::ArtifactNotFound(_))
    ));
    assert!(
        store
            .read_artifact(&id, &Artifact::visualization("tpr_map.html").unwrap())
            .is_err()
    );
    // Outputs computed from the first upload are refused now.
    assert!(matches!(
        outputs(&store, &id, seq, "stale"),
        Err(Error::Superseded {
            started: 1,
            current: 2
        })
    ));
    assert!(store.tpr(&id).unwrap().unwrap().outputs.is_none());
}

#[test]
fn a_ward_upload_keeps_the_tpr_data_and_a_clear_removes_it() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    let seq = store
        .commit_tpr_upload(&id, &Artifact::TprUploadCsv, b"export", json!({}))
        .unwrap();
    outputs(&store, &id, seq, "41.5").unwrap();
    upload(&store, &id, "WardName,x\nGwale,1\n");
    // The export and its tables stay; its maps went with the old generation.
    assert!(read_string(&store, &id, &Artifact::TprResults).is_ok());
    assert_eq!(
        read_string(&store, &id, &Artifact::TprUploadCsv).unwrap(),
        "export"
    );
    assert!(
        store
            .tpr(&id)
            .unwrap()
            .unwrap()
            .outputs
            .unwrap()
            .loose
            .is_empty()
    );
    // Loaded through the download route's name lookup.
    assert_eq!(
        Artifact::from_file_name("trend_summary.csv"),
        Some(Artifact::TprTrendSummary)
    );
    store.clear_session(&id).unwrap();
    assert_eq!(store.tpr(&id).unwrap(), None);
    assert!(matches!(
        store.read_artifact(&id, &Artifact::TprUploadCsv),
        Err(Error::ArtifactNotFound(_))
    ));
}

#[test]
fn tpr_writes_refuse_other_artifact_kinds() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    assert!(matches!(
        store.commit_tpr_upload(&id, &Artifact::RawCsv, b"x", json!({})),
        Err(Error::WrongArtifactKind { .. })
    ));
    let seq = store
        .commit_tpr_upload(&id, &Artifact::TprUploadCsv, b"x", json!({}))
        .unwrap();
    assert!(matches!(
        store.commit_tpr_outputs(&id, seq, &[(Artifact::Rankings, b"x")], &[], json!({})),
        Err(Error::WrongArtifactKind { .. })
    ));
}

#[test]
fn a_shapefile_stored_with_the_export_goes_with_it() {
    let (_dir, store) = store();
    let id = store.create_session().unwrap();
    store
        .commit_tpr_upload_with(
            &id,
            &Artifact::TprUploadCsv,
            b"export",
            &[(Artifact::TprShapefile, b"PK-zip")],
            json!({}),
        )
        .unwrap();
    assert_eq!(
        read_string(&store, &id, &Artifact::TprShapefile).unwrap(),
        "PK-zip"
    );
    // It is a TPR input, not the ward data: no generation, no data for the analysis.
    let status = store.status(&id).unwrap();
    assert!(!status.data_loaded && !status.shapefile_loaded);
    // Only TPR inputs may ride along.
    assert!(matches!(
        store.commit_tpr_upload_with(
            &id,
            &Artifact::TprUploadCsv,
            b"export",
            &[(Artifact::RawShapefile, b"PK")],
            json!({}),
        ),
        Err(Error::WrongArtifactKind { .. })
    ));
    // The next export without a shapefile replaces both.
    store
        .commit_tpr_upload(&id, &Artifact::TprUploadCsv, b"export 2", json!({}))
        .unwrap();
    assert!(matches!(
        store.read_artifact(&id, &Artifact::TprShapefile),
        Err(Error::ArtifactNotFound(_))
    ));
}
