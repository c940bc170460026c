//! The Kano facility export (tests/fixtures/tpr, a copy of shared/data/tpr) read through the
//! rules: the header, the mapping and the facility levels equal `expected/`.
#![allow(clippy::unwrap_used)]

use mrpt_formats::tpr::{ReadOptions, read_csv_export, read_facility_export};
use mrpt_table::tpr::FacilityExport;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../tests/fixtures/tpr/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Rows comparable with NaN (blank) cells.
/// (state, LGA, ward, facility, year, month, level, count bits) of a row.
type RowKey = (u32, u32, u32, u32, u16, u8, u8, [u64; 16]);

fn rows_key(e: &FacilityExport) -> Vec<RowKey> {
    e.rows
        .iter()
        .map(|r| {
            (
                r.state,
                r.lga,
                r.ward,
                r.facility,
                r.year,
                r.month,
                r.level as u8,
                r.counts.map(f64::to_bits),
            )
        })
        .collect()
}

fn read(name: &str) -> FacilityExport {
    read_facility_export(&fixture(name), name, &ReadOptions::default()).unwrap()
}

#[test]
fn xlsx_and_csv_read_to_the_same_export() {
    let x = read("kano_nmep_2021_2024.xlsx");
    let c = read("kano_nmep_2021_2024.csv");
    assert_eq!(x.mapping.header_row_index, 2);
    assert_eq!(c.mapping.header_row_index, 0);
    assert_eq!(x.rows.len(), 8171);
    assert!(rows_key(&x) == rows_key(&c), "rows differ");
    assert_eq!(x.wards, c.wards);
    assert_eq!(x.facilities, c.facilities);
    assert_eq!(x.mapping.fields, c.mapping.fields);
    // Streaming from a reader gives the same as from bytes.
    let bytes = fixture("kano_nmep_2021_2024.csv");
    let s = read_csv_export(&bytes[..], "k.csv", &ReadOptions::default()).unwrap();
    assert!(rows_key(&s) == rows_key(&c), "rows differ");
}

#[test]
fn mapping_equals_expected() {
    let x = read("kano_nmep_2021_2024.xlsx");
    let expected: serde_json::Value =
        serde_json::from_slice(&fixture("expected/column_mapping.json")).unwrap();
    assert_eq!(
        x.mapping.header_row_index as u64,
        expected["header_row_index"].as_u64().unwrap()
    );
    let want: std::collections::BTreeMap<String, Vec<String>> =
        serde_json::from_value(expected["mapping"].clone()).unwrap();
    assert_eq!(x.mapping.fields, want);
    assert_eq!(x.prefix.as_deref(), expected["prefix"].as_str());
    assert!(x.mapping.ambiguous.is_empty());
    // Distractors and ignored columns are listed, never mapped.
    assert!(
        x.mapping
            .unmapped
            .contains(&"Persons presenting with fever <5yrs".to_string())
    );
    assert!(
        x.mapping
            .unmapped
            .contains(&"Persons presenting with fever  ≥5yrs (excl PW)".to_string())
    );
}

#[test]
fn facility_levels_equal_expected() {
    let x = read("kano_nmep_2021_2024.xlsx");
    let text = String::from_utf8(fixture("expected/facility_levels.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut n = 0;
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let f = x
            .facilities
            .iter()
            .find(|f| f.id == rec[0])
            .unwrap_or_else(|| panic!("facility {}", &rec[0]));
        assert_eq!(f.name, &rec[1]);
        assert_eq!(
            f.level_cell.as_deref().unwrap_or(""),
            &rec[2],
            "{}",
            &rec[0]
        );
        assert_eq!(f.level.as_str(), &rec[3], "{}", &rec[0]);
        assert_eq!(f.level_from_name.as_str(), &rec[4], "{}", &rec[0]);
        n += 1;
    }
    assert_eq!(n, x.facilities.len());
    assert_eq!(x.states.len(), 1);
    assert_eq!(x.states[0].name, "Kano");
    assert_eq!(x.lgas.len(), 6);
    assert_eq!(x.wards.len(), 67);
    assert_eq!(
        x.warnings.rows_without_ward,
        x.rows.iter().filter(|r| !r.has_ward()).count()
    );
    assert!(x.warnings.rows_without_ward > 0);
    assert_eq!(x.warnings.rows_without_year, 0);
}
