//! Integration tests of mrpt-formats on the real Kano and Ilorin inputs and on the bad-input
//! fixtures of `tests/fixtures/formats/` (regenerate them with `make_fixtures.py` there).
#![allow(clippy::unwrap_used)]

use mrpt_formats::crs::SourceCrs;
use mrpt_formats::summary::summarize;
use mrpt_formats::{
    Error, read_geoparquet, read_shapefile_zip, read_table, read_ward_table, write_csv,
    write_geoparquet,
};
use mrpt_table::summary::IssueKind;
use mrpt_table::{ColumnData, FuzzyMatch, Geometry, fix_duplicate_ward_names, match_wards};

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/../../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn bad(path: &str) -> Vec<u8> {
    fixture(&format!("formats/{path}"))
}

#[test]
fn kano_loads_matches_and_round_trips() {
    let mut wards = read_ward_table(&fixture("kano/kano_wards.csv"), "kano_wards.csv").unwrap();
    assert_eq!(wards.table.n_rows(), 66);
    assert_eq!(wards.table.n_columns(), 12);
    assert_eq!(wards.ward_column_name(), "WardName");
    assert_eq!(
        &wards.table.column_names()[..3],
        ["Unnamed: 0", "Unnamed: 1", "WardName"]
    );
    assert_eq!(wards.index_columns, [0, 1]);
    assert_eq!(wards.code_column, None);
    assert!(matches!(
        wards.table.column("total").unwrap().data,
        ColumnData::Int(_)
    ));
    assert!(matches!(
        wards.table.column("settlement_type_poor").unwrap().data,
        ColumnData::Float(_)
    ));
    let dist = wards.table.numeric("distance_to_water_bodies").unwrap();
    assert!(dist.iter().any(Option::is_none));
    assert_eq!(
        wards.candidate_variables(),
        [
            "total",
            "nets_per_capita",
            "settlement_type_poor",
            "distance_to_water_bodies",
            "test_positivity_rate",
            "enhanced_vegetation_index",
            "housing_quality",
            "dumpsites",
            "rainfall"
        ]
    );

    let shapes = read_shapefile_zip(&fixture("kano/kano_wards_shapefile.zip")).unwrap();
    assert_eq!(shapes.geometries.len(), 66);
    assert_eq!(shapes.crs, SourceCrs::Unspecified);
    assert_eq!(
        shapes.attributes.columns()[shapes.ward_column].name,
        "WardName"
    );
    assert!(shapes.code_column.is_some());

    let m = match_wards(&mut wards, &shapes.ward_names()).unwrap();
    let report = &m.report;
    assert_eq!(report.exact, 62);
    assert_eq!(report.matched, 65);
    let pairs: Vec<(&str, &str)> = report
        .fuzzy
        .iter()
        .map(
            |FuzzyMatch {
                 table_name,
                 shape_name,
                 ..
             }| (table_name.as_str(), shape_name.as_str()),
        )
        .collect();
    assert_eq!(
        pairs,
        [
            ("Bakin-Ruwa", "Bakin Ruwa"),
            ("Gawunab", "Gawuna"),
            ("zaitawai", "Zaitawa")
        ]
    );
    assert_eq!(report.fuzzy[2].score, 0.8);
    assert_eq!(report.unmatched_table, ["Fagg c"]);
    assert_eq!(report.unmatched_shape, ["Fagge C"]);

    // The CSV writer prints complete rows exactly as pandas wrote the reference cleaned data.
    let written = String::from_utf8(write_csv(&wards.table)).unwrap();
    let reference = String::from_utf8(bad("reference_kano_cleaned_data.csv")).unwrap();
    let ours: Vec<&str> = written.lines().collect();
    let theirs: Vec<&str> = reference.lines().collect();
    assert_eq!(ours[0], theirs[0]);
    let mut compared = 0;
    for (a, b) in ours.iter().zip(&theirs).skip(1) {
        if !a.contains(",,") && !a.ends_with(',') {
            assert_eq!(a, b);
            compared += 1;
        }
    }
    assert!(compared > 30, "{compared}");

    // Each table row takes the shape of the shapefile ward it was matched to.
    let geometries: Vec<Option<Geometry>> = m
        .geometry_index
        .iter()
        .map(|g| g.and_then(|g| shapes.geometries[g].clone()))
        .collect();
    let names = wards.ward_names();
    let fagg = names
        .iter()
        .position(|n| n.as_deref() == Some("Fagg c"))
        .unwrap();
    assert!(geometries[fagg].is_none());
    assert_eq!(geometries.iter().filter(|g| g.is_none()).count(), 1);

    let parquet = write_geoparquet(&wards.table, &geometries).unwrap();
    let (table, geoms) = read_geoparquet(&parquet).unwrap();
    assert_eq!(table, wards.table);
    assert_eq!(geoms, geometries);
    let csv_back = read_table(&write_csv(&wards.table), "unified_dataset.csv").unwrap();
    assert_eq!(csv_back.column_names(), wards.table.column_names());
    assert_eq!(csv_back.n_rows(), 66);
}

/// Result files written by pandas (ChatMRPT's reference run) read and re-written byte for byte.
#[test]
fn pandas_result_csvs_round_trip_byte_identical() {
    for name in [
        "reference_kano_unified_dataset.csv",
        "reference_kano_vulnerability_rankings.csv",
        "reference_kano_cleaned_data.csv",
    ] {
        let bytes = bad(name);
        let t = read_table(&bytes, name).unwrap();
        assert!(write_csv(&t) == bytes, "{name} changed on a round trip");
    }
    let t = read_table(&bad("reference_kano_unified_dataset.csv"), "u.csv").unwrap();
    assert!(matches!(
        t.column("composite_rank").unwrap().data,
        ColumnData::Int(_)
    ));
    assert!(matches!(
        t.column("model_consensus").unwrap().data,
        ColumnData::Bool(_)
    ));
    assert!(matches!(
        t.column("composite_category").unwrap().data,
        ColumnData::Text(_)
    ));
    // Fagg c has no geometry: its spatial cells are missing.
    assert!(t.numeric("area_km2").unwrap().iter().any(Option::is_none));
}

#[test]
fn ilorin_loads_with_its_prj_and_matches_exactly() {
    let mut wards =
        read_ward_table(&fixture("ilorin/ilorin_wards.csv"), "ilorin_wards.csv").unwrap();
    assert_eq!(wards.table.n_rows(), 35);
    assert_eq!(
        &wards.table.column_names()[..3],
        ["Unnamed: 0", "X", "WardName"]
    );
    assert_eq!(wards.index_columns, [0, 1]);
    assert_eq!(
        wards.candidate_variables(),
        [
            "distance",
            "meanEVI",
            "val_housing_15",
            "settlement_type",
            "tpr_u5_new"
        ]
    );
    let shapes = read_shapefile_zip(&fixture("ilorin/ilorin_wards_shapefile.zip")).unwrap();
    assert_eq!(shapes.crs, SourceCrs::Wgs84);
    assert_eq!(shapes.geometries.len(), 35);
    let m = match_wards(&mut wards, &shapes.ward_names()).unwrap();
    let report = &m.report;
    assert_eq!((report.exact, report.matched), (35, 35));
    assert!(
        report.fuzzy.is_empty()
            && report.unmatched_table.is_empty()
            && report.unmatched_shape.is_empty()
    );
    assert!(m.geometry_index.iter().all(Option::is_some));
    let geometries: Vec<Option<Geometry>> = m
        .geometry_index
        .iter()
        .map(|g| g.and_then(|g| shapes.geometries[g].clone()))
        .collect();
    let parquet = write_geoparquet(&wards.table, &geometries).unwrap();
    let (table, geoms) = read_geoparquet(&parquet).unwrap();
    assert_eq!((table, geoms), (wards.table, geometries));
}

#[test]
fn kano_summary() {
    let wards = read_ward_table(&fixture("kano/kano_wards.csv"), "kano_wards.csv").unwrap();
    let s = summarize(&wards.table, Some(wards.ward_column));
    assert_eq!((s.total_rows, s.total_columns), (66, 12));
    assert!(s.data_completeness.overall < 100.0);
    assert_eq!(s.data_completeness.by_column["WardName"], 100.0);
    assert_eq!(s.preview_rows.len(), 5);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["column_types"]["WardName"], "text");
    assert_eq!(json["column_types"]["total"], "numeric");
}

#[test]
fn text_layouts_and_encodings() {
    let t = read_table(&bad("latin1_semicolon.csv"), "latin1_semicolon.csv").unwrap();
    assert_eq!(t.column_names(), ["WardName", "tpr", "note"]);
    assert_eq!(
        t.columns()[0].data.cell_text(0).as_deref(),
        Some("Kofar Maté")
    );
    assert_eq!(
        t.column("note").unwrap().data.cell_text(0).as_deref(),
        Some("\u{201c}ok\u{201d}")
    );
    assert!(t.column("note").unwrap().data.is_missing(1));

    let t = read_table(&bad("utf16_tab.txt"), "utf16_tab.txt").unwrap();
    assert_eq!(
        t.column("tpr").unwrap().data,
        ColumnData::Float(vec![Some(0.5), Some(0.25)])
    );

    let t = read_ward_table(&bad("mixed_missing.csv"), "mixed_missing.csv").unwrap();
    assert_eq!(t.index_columns, [0, 1]);
    assert_eq!(
        t.table.column("tpr").unwrap().data,
        ColumnData::Float(vec![None, None, None, Some(0.5), None])
    );
    assert!(matches!(
        t.table.column("flag").unwrap().data,
        ColumnData::Bool(_)
    ));
}

#[test]
fn xlsx_picks_the_ward_sheet() {
    let t = read_ward_table(&bad("wards.xlsx"), "wards.xlsx").unwrap();
    assert_eq!(
        t.table.column_names(),
        ["WardName", "tpr", "rainfall", "note"]
    );
    assert_eq!(
        t.table.column("tpr").unwrap().data,
        ColumnData::Float(vec![Some(0.5), None, Some(0.25)])
    );
    assert_eq!(
        t.table.column("rainfall").unwrap().data,
        ColumnData::Float(vec![Some(1200.0), Some(1100.5), Some(900.0)])
    );
    assert!(t.table.column("note").unwrap().data.is_missing(1));
}

#[test]
fn bad_tables_get_typed_errors() {
    assert!(matches!(
        read_table(&bad("empty.csv"), "empty.csv"),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        read_table(&bad("whitespace_only.csv"), "w.csv"),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        read_table(&bad("header_only.csv"), "h.csv"),
        Err(Error::NoRows { .. })
    ));
    assert!(matches!(
        read_table(&bad("binary_junk.csv"), "b.csv"),
        Err(Error::Binary { .. })
    ));
    match read_table(&bad("ragged.csv"), "ragged.csv") {
        Err(e @ Error::RaggedRows { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("line 3 has 2") && msg.contains("line 4 has 4"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    match read_ward_table(&bad("no_ward_column.csv"), "no_ward_column.csv") {
        Err(e @ Error::Table(mrpt_table::Error::NoWardColumn { .. })) => {
            assert!(e.to_string().contains("LGA, tpr, rainfall"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        read_table(b"x", "data.pdf"),
        Err(Error::UnsupportedFileType { .. })
    ));
}

#[test]
fn text_in_a_numeric_column_is_reported_with_its_cells() {
    let t = read_ward_table(&bad("text_in_numeric.csv"), "t.csv").unwrap();
    // pandas semantics: the columns are text...
    assert!(matches!(
        t.table.column("tpr").unwrap().data,
        ColumnData::Text(_)
    ));
    assert!(!t.candidate_variables().contains(&"tpr".to_string()));
    // ...asking for them as numbers names the cells...
    match t.table.numeric("rainfall") {
        Err(e @ mrpt_table::Error::NonNumericCells { .. }) => {
            assert!(e.to_string().contains("row 3 \"n.d.\""), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // ...and the upload summary flags them.
    let s = summarize(&t.table, Some(t.ward_column));
    let flagged: Vec<&str> = s
        .data_quality_assessment
        .issues
        .iter()
        .filter(|i| i.kind == IssueKind::TextInNumericColumn)
        .map(|i| i.columns[0].as_str())
        .collect();
    assert_eq!(flagged, ["tpr", "rainfall"]);
}

#[test]
fn duplicate_ward_names() {
    let mut t = read_ward_table(&bad("duplicate_wards.csv"), "d.csv").unwrap();
    assert!(matches!(
        summarize(&t.table, Some(t.ward_column))
            .data_quality_assessment
            .issues[0]
            .kind,
        IssueKind::DuplicateWardNames
    ));
    // Without a ward-code column duplicates keep their names (analysis.md §1.3 step 3).
    let d = fix_duplicate_ward_names(&mut t).unwrap();
    assert_eq!(
        (d.names, d.rows, d.renamed),
        (vec!["Dala".to_string()], 2, false)
    );
    let mut t = read_ward_table(&bad("duplicate_wards_with_code.csv"), "d.csv").unwrap();
    fix_duplicate_ward_names(&mut t).unwrap();
    let names: Vec<_> = t.ward_names().iter().flatten().cloned().collect();
    assert_eq!(names, ["Dala (KN01)", "Fagge", "Dala (KN03)"]);
}

#[test]
fn fake_workbooks_are_refused() {
    assert!(matches!(
        read_table(&bad("fake.xlsx"), "fake.xlsx"),
        Err(Error::NotExcel { .. })
    ));
    assert!(matches!(
        read_table(&bad("zip_not_workbook.xlsx"), "z.xlsx"),
        Err(Error::NotExcel { .. })
    ));
    assert!(matches!(
        read_table(&bad("binary_junk.csv"), "junk.xlsx"),
        Err(Error::NotExcel { .. })
    ));
}

#[test]
fn bad_zips_get_typed_errors() {
    let err = |f: &str| read_shapefile_zip(&bad(f)).unwrap_err();
    assert!(matches!(
        err("zip_without_shp.zip"),
        Error::ZipMissingPart {
            missing: ".shp file",
            ..
        }
    ));
    assert!(matches!(
        err("zip_without_dbf.zip"),
        Error::ZipMissingPart { .. }
    ));
    assert!(matches!(
        err("zip_traversal.zip"),
        Error::ZipUnsafeEntry { .. }
    ));
    assert!(matches!(
        err("zip_absolute.zip"),
        Error::ZipUnsafeEntry { .. }
    ));
    assert!(matches!(
        err("zip_symlink.zip"),
        Error::ZipUnsafeEntry { .. }
    ));
    assert!(matches!(err("zip_bomb.zip"), Error::ZipBomb { .. }));
    assert!(matches!(
        err("zip_corrupt_shp.zip"),
        Error::CorruptShapefile { .. }
    ));
    assert!(matches!(
        err("zip_garbage_shp.zip"),
        Error::CorruptShapefile { .. }
    ));
    assert!(matches!(err("not_a_zip.zip"), Error::BadZip { .. }));
    assert!(matches!(read_shapefile_zip(&[]), Err(Error::Empty { .. })));
    assert!(err("zip_bomb.zip").is_input_error());
    let ok = read_shapefile_zip(&bad("zip_nested_ok.zip")).unwrap();
    assert_eq!(ok.geometries.len(), 66);
}

#[test]
fn population_tables() {
    let p = mrpt_formats::population::read_population(&bad("population.csv"), "population.csv")
        .unwrap();
    assert_eq!(p.ward_names, ["Dala", "Gwale"]);
    assert_eq!(p.populations, [12000.0, 8000.5]);
    assert_eq!(p.skipped_rows, [2]);
    assert_eq!(
        p.ward_codes.unwrap(),
        [Some("KN01".into()), Some("KN03".into())]
    );
    assert!(matches!(
        mrpt_formats::population::read_population(&bad("population_bad.csv"), "p.csv"),
        Err(Error::Table(mrpt_table::Error::NonNumericCells { .. }))
    ));
    assert!(matches!(
        mrpt_formats::population::read_population(&bad("no_ward_column.csv"), "p.csv"),
        Err(Error::Table(mrpt_table::Error::NoWardColumn { .. }))
    ));
}

#[test]
fn pbi_population_export_is_summed_per_ward() {
    let p = mrpt_formats::population::read_population(
        &bad("reference_kano_population_input.csv"),
        "population.csv",
    )
    .unwrap();
    assert_eq!(p.ward_names.len(), 66);
    assert_eq!(p.ward_names[0], "Gawuna");
    assert_eq!(p.populations[0], 2000.0);
    assert!(p.ward_codes.is_none());
}

#[test]
fn synthetic_data_is_deterministic_and_readable() {
    let a = mrpt_formats::synth::synthesize(600, 7).unwrap();
    let b = mrpt_formats::synth::synthesize(600, 7).unwrap();
    assert_eq!(a.csv, b.csv);
    assert_eq!(a.shapefile_zip, b.shapefile_zip);
    assert_ne!(a.csv, mrpt_formats::synth::synthesize(600, 8).unwrap().csv);

    let mut wards = read_ward_table(&a.csv, "synthetic.csv").unwrap();
    assert_eq!(wards.table.n_rows(), 600);
    let shapes = read_shapefile_zip(&a.shapefile_zip).unwrap();
    assert_eq!(shapes.crs, SourceCrs::Wgs84);
    assert_eq!(shapes.geometries, a.geometries);
    let m = match_wards(&mut wards, &shapes.ward_names()).unwrap();
    let report = &m.report;
    assert!(report.matched >= 598, "{report:?}");
    assert!(m.geometry_index.iter().all(Option::is_some));

    // Neighbouring hexagons share vertices bit for bit (queen contiguity depends on it).
    let mut counts = std::collections::HashMap::new();
    for g in a.geometries.iter().flatten() {
        let ring = &g.polygons()[0].exterior;
        for v in &ring[..ring.len() - 1] {
            *counts.entry((v[0].to_bits(), v[1].to_bits())).or_insert(0) += 1;
        }
    }
    assert!(counts.values().filter(|&&c| c == 3).count() > 500);
}

/// Deterministic mutations of real inputs: every reader must answer with `Ok` or a typed error,
/// never panic or abort, whatever the bytes.
#[test]
fn mutated_inputs_never_panic() {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mutate = |src: &[u8], next: &mut dyn FnMut() -> u64| {
        let mut v = src.to_vec();
        match next() % 4 {
            0 => v.truncate((next() as usize) % (src.len() + 1)),
            _ => {
                for _ in 0..1 + next() % 8 {
                    let i = (next() as usize) % v.len().max(1);
                    if let Some(b) = v.get_mut(i) {
                        *b = next() as u8;
                    }
                }
            }
        }
        v
    };
    let csv = fixture("kano/kano_wards.csv");
    let xlsx = bad("wards.xlsx");
    let zip = fixture("ilorin/ilorin_wards_shapefile.zip");
    let synth = mrpt_formats::synth::synthesize(30, 1).unwrap();
    let shp =
        mrpt_formats::shapefile::write_shapefile(&synth.geometries, &synth.attributes).unwrap();
    let parquet = mrpt_formats::write_geoparquet(&synth.table, &synth.geometries).unwrap();
    let wkb = mrpt_formats::wkb::to_wkb(synth.geometries[0].as_ref().unwrap());
    for _ in 0..300 {
        let _ = read_ward_table(&mutate(&csv, &mut next), "k.csv");
        let _ = read_table(&mutate(&xlsx, &mut next), "w.xlsx");
        let _ = read_shapefile_zip(&mutate(&zip, &mut next));
        let _ = mrpt_formats::shapefile::read_shapefile_parts(
            &mutate(&shp.shp, &mut next),
            &mutate(&shp.dbf, &mut next),
            None,
            None,
            "m.shp",
        );
        let _ = read_geoparquet(&mutate(&parquet, &mut next));
        let _ = mrpt_formats::wkb::from_wkb(&mutate(&wkb, &mut next));
    }
}
