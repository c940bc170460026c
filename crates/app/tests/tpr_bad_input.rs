//! Bad facility exports (issue 13): each gets a clear error or a stated, documented handling.
#![allow(clippy::unwrap_used)]

use mrpt_app::pipeline::{InputFile, PipelineError};
use mrpt_app::tpr::{TprParams, compute, read_export};
use mrpt_table::tpr::{Direction, FacilityExport, WardLink};

const HEAD: &str = "orgunitlevel2,orgunitlevel3,orgunitlevel4,organisationunitid,organisationunitname,periodcode,Facility level";
const RDT_U5: &str = "Persons presenting with fever & tested by RDT <5yrs,Persons tested positive for malaria by RDT <5yrs";

fn read(name: &str, bytes: &[u8]) -> Result<FacilityExport, PipelineError> {
    read_export(InputFile { name, bytes }, &Default::default())
}

fn run(export: &FacilityExport) -> mrpt_app::tpr::TprOutput {
    let links = vec![WardLink::unlinked(); export.wards.len()];
    compute(export, links, &TprParams::default()).unwrap()
}

fn file<'a>(out: &'a mrpt_app::tpr::TprOutput, name: &str) -> Option<&'a str> {
    out.files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| std::str::from_utf8(b).unwrap())
}

#[test]
fn an_export_without_testing_columns_is_refused_naming_its_columns() {
    let csv = format!(
        "{HEAD},Persons presenting with fever <5yrs,Ownership\n\
         kn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,202101,primary,5,Public\n"
    );
    let err = read("no_tests.csv", csv.as_bytes()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PipelineError::Unprocessable(_)), "{err:?}");
    assert!(msg.contains("no malaria testing columns"), "{msg}");
    assert!(msg.contains("Persons presenting with fever <5yrs"), "{msg}");
    assert!(msg.contains("Ownership"), "{msg}");
    assert!(msg.contains("u5_rdt_tested"), "{msg}");
    // A tested column without its positive column is named as an incomplete pair.
    let half = format!(
        "{HEAD},Persons presenting with fever & tested by RDT <5yrs\n\
         kn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,202101,primary,5\n"
    );
    let msg = read("half.csv", half.as_bytes()).unwrap_err().to_string();
    assert!(
        msg.contains("`u5_rdt_tested` has no `u5_rdt_positive` column"),
        "{msg}"
    );
}

#[test]
fn missing_ward_or_lga_columns_are_named() {
    let csv = format!("State,Facility,periodcode,{RDT_U5}\nKano,PHC,202101,5,2\n");
    let msg = read("x.csv", csv.as_bytes()).unwrap_err().to_string();
    assert!(msg.contains("no lga or ward column"), "{msg}");
    assert!(msg.contains("mapping"), "{msg}");
}

#[test]
fn positives_above_tested_are_kept_counted_and_listed() {
    let csv = format!(
        "{HEAD},{RDT_U5}\n\
         kn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,202101,primary,10,12\n\
         kn Kano State,kn Dala Local Government Area,kn Yalwa Ward,a2,kn PHC 2,202101,primary,10,4\n"
    );
    let export = read("over.csv", csv.as_bytes()).unwrap();
    assert_eq!(export.warnings.rows_positives_exceed_tested, 1);
    let out = run(&export);
    // No clamping: 12 / 10 -> 120 %, and the ward is listed in the warnings.
    assert!(
        file(&out, "tpr_results.csv")
            .unwrap()
            .contains("Adakawa,Dala,,Adakawa,dala,adakawa,no_shapefile,120.0,10,12,rdt")
    );
    assert_eq!(
        out.summary["warnings"]["positives_exceed_tested"],
        serde_json::json!(["Adakawa"])
    );
    assert_eq!(out.summary["warnings"]["rows_positives_exceed_tested"], 1);
}

#[test]
fn a_year_with_no_data_is_absent_and_slopes_use_calendar_years() {
    // 2021, 2023 and 2024 only: 2022 has no row anywhere.
    let mut csv = format!("{HEAD},{RDT_U5}\n");
    for (period, tested, positive) in [
        ("202101", 100, 40),
        ("202301", 100, 50),
        ("202401", 100, 70),
    ] {
        csv.push_str(&format!(
            "kn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,{period},primary,{tested},{positive}\n"
        ));
    }
    let out = run(&read("gap.csv", csv.as_bytes()).unwrap());
    assert_eq!(out.result.years, vec![2021, 2023, 2024]);
    let series = file(&out, "tpr_time_series.csv").unwrap();
    assert!(!series.contains(",2022,"), "{series}");
    let t = &out.result.trends[0];
    // x = 2021, 2023, 2024 (not 0, 1, 2): slope = 9.285714... -> 9.286, not 15.0.
    assert_eq!(t.slope, Some(9.286));
    assert_eq!(t.direction, Direction::Worsening);
    assert_eq!(t.years_count, 3);
    let missing = file(&out, "tpr_missingness.csv").unwrap();
    assert!(missing.contains("reporting_year,2021,"), "{missing}");
    assert!(!missing.contains("reporting_year,2022,"), "{missing}");
}

#[test]
fn one_year_gives_no_trend_files() {
    let csv = format!(
        "{HEAD},{RDT_U5}\nkn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,202101,primary,10,4\n"
    );
    let out = run(&read("one.csv", csv.as_bytes()).unwrap());
    assert!(file(&out, "tpr_results.csv").is_some());
    assert!(file(&out, "trend_summary.csv").is_none());
    assert!(out.summary["trend"].is_null());
}

#[test]
fn dhis2_csv_with_header_on_row_3_and_garbled_ge() {
    // A title, a blank line, then the header; the file is Windows-1252 (the title's © is one
    // byte, so the file is not UTF-8) and `≥` appears as its UTF-8 bytes read as 1252: `â‰¥`.
    let mut bytes: Vec<u8> = b"Kano malaria report \xA9 2024\r\n,,,\r\n".to_vec();
    bytes.extend_from_slice(HEAD.as_bytes());
    bytes.extend_from_slice(
        b",Persons presenting with fever & tested by RDT  \xE2\x89\xA5 5yrs (excl PW),Persons tested positive for malaria by RDT  \xE2\x89\xA55yrs (excl PW)\r\n",
    );
    bytes.extend_from_slice(
        b"kn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,202101,primary,\"1,200\",600\r\n",
    );
    let export = read("dhis2.csv", &bytes).unwrap();
    assert_eq!(export.mapping.header_row_index, 2);
    assert_eq!(
        export.mapping.fields["o5_rdt_tested"],
        ["Persons presenting with fever & tested by RDT  ≥ 5yrs (excl PW)"]
    );
    assert_eq!(
        export.mapping.fields["o5_rdt_positive"],
        ["Persons tested positive for malaria by RDT  ≥5yrs (excl PW)"]
    );
    let out = run(&export);
    assert_eq!(out.result.wards[0].counts.tested, 1200.0);
    assert_eq!(out.result.wards[0].counts.tpr, Some(50.0));
}

#[test]
fn no_header_in_the_first_20_rows() {
    let mut csv = String::new();
    for i in 0..25 {
        csv.push_str(&format!("{i},{i},{i}\n"));
    }
    let msg = read("numbers.csv", csv.as_bytes()).unwrap_err().to_string();
    assert!(
        msg.contains("no header row found in the first 20 rows"),
        "{msg}"
    );
}

#[test]
fn wrong_file_types_and_empty_files() {
    let err = read("export.pdf", b"%PDF-1.4").unwrap_err();
    assert!(matches!(err, PipelineError::UnsupportedType(_)), "{err:?}");
    assert!(read("empty.csv", b"").is_err());
    assert!(read("blank.csv", b"\n\n  \n").is_err());
    let not_xlsx = read("fake.xlsx", b"not a workbook").unwrap_err();
    assert!(
        not_xlsx
            .to_string()
            .contains("not a readable Excel workbook"),
        "{not_xlsx}"
    );
}

#[test]
fn a_20_mb_export_reads_and_computes() {
    let shape = mrpt_formats::tpr::synth::ExportShape {
        states: 2,
        wards: 400,
        facilities: 2400,
        months: 48,
        report_rate: 0.86,
        seed: 3,
    };
    let mut bytes = Vec::new();
    let stats = mrpt_formats::tpr::synth::write_synthetic_export(&mut bytes, &shape).unwrap();
    assert!(stats.bytes > 20 * 1024 * 1024, "{} bytes", stats.bytes);
    let export = read("big.csv", &bytes).unwrap();
    assert_eq!(export.rows.len(), stats.rows);
    let out = run(&export);
    assert_eq!(out.result.wards.len(), 400);
    assert_eq!(out.result.years.len(), 4);
    // Beyond the row cap the reader stops with a clear error instead of growing.
    let options = mrpt_formats::tpr::ReadOptions {
        max_rows: 1000,
        ..Default::default()
    };
    let err = mrpt_formats::tpr::read_facility_export(&bytes, "big.csv", &options).unwrap_err();
    assert!(
        err.to_string().contains("more than 1000 data rows"),
        "{err}"
    );
}

#[test]
fn mapping_override_places_unknown_headers_and_is_validated() {
    let csv = "Ward name,Council,Clinic,Month,Tests (RDT),Malaria cases (RDT)\n\
               Adakawa,Dala,PHC,2021-01,10,4\nYalwa,Dala,PHC 2,2021-02,20,5\n";
    let refused = read("custom.csv", csv.as_bytes()).unwrap_err().to_string();
    assert!(refused.contains("no lga column"), "{refused}");
    let mut mapping = std::collections::BTreeMap::new();
    for (field, header) in [
        ("ward", "Ward name"),
        ("lga", "Council"),
        ("facility_name", "Clinic"),
        ("period", "Month"),
        ("all_rdt_tested", "Tests (RDT)"),
        ("all_rdt_positive", "Malaria cases (RDT)"),
    ] {
        mapping.insert(field.to_string(), Some(header.to_string()));
    }
    let export = read_export(
        InputFile {
            name: "custom.csv",
            bytes: csv.as_bytes(),
        },
        &mapping,
    )
    .unwrap();
    let out = run(&export);
    assert_eq!(out.result.wards.len(), 2);
    assert_eq!(out.result.wards[0].counts.tpr, Some(40.0));
    // Without a level column, levels come from names and the response says so.
    assert!(export.mapping.levels_from_names);
    // A text column given for a count is refused.
    mapping.remove("facility_name");
    mapping.insert("all_rdt_positive".into(), Some("Clinic".into()));
    let err = read_export(
        InputFile {
            name: "custom.csv",
            bytes: csv.as_bytes(),
        },
        &mapping,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("holds text"), "{err}");
}

#[test]
fn a_level_that_matches_nothing_is_refused_with_the_levels_present() {
    let csv = format!(
        "{HEAD},{RDT_U5}\nkn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,202101,primary,10,4\n"
    );
    let export = read("lvl.csv", csv.as_bytes()).unwrap();
    let refusal = |selection: mrpt_table::tpr::Selection| {
        let params = TprParams {
            selection,
            ..Default::default()
        };
        compute(&export, vec![WardLink::unlinked()], &params)
            .unwrap_err()
            .to_string()
    };
    let err = refusal(mrpt_table::tpr::Selection {
        level: mrpt_table::tpr::LevelChoice::Tertiary,
        ..Default::default()
    });
    assert!(
        err.contains("no facility rows at level `tertiary`"),
        "{err}"
    );
    assert!(err.contains("primary"), "{err}");
    // An age group without columns is refused too.
    let err = refusal(mrpt_table::tpr::Selection {
        age: mrpt_table::tpr::AgeChoice::Pw,
        ..Default::default()
    });
    assert!(
        err.contains("no complete tested/positive column pair for age group `pw`"),
        "{err}"
    );
    // A method whose columns exist but hold no tests is refused, not shown as blank wards.
    let zero = format!(
        "{HEAD},{RDT_U5},Persons presenting with fever and tested by Microscopy <5yrs,Persons tested positive for malaria by Microscopy <5yrs\n\
         kn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,202101,primary,10,4,0,0\n"
    );
    let export = read("zero.csv", zero.as_bytes()).unwrap();
    let params = TprParams {
        selection: mrpt_table::tpr::Selection {
            method: mrpt_table::tpr::MethodChoice::Microscopy,
            ..Default::default()
        },
        ..Default::default()
    };
    let err = compute(&export, vec![WardLink::unlinked()], &params)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no tests by method `microscopy`"), "{err}");
}

#[test]
fn duplicate_indicator_columns_are_kept_or_summed() {
    // Kwara's two `... tested by RDT <5yrs` columns (one per form version).
    let head = format!(
        "{HEAD},Persons presenting with fever & tested by RDT <5yrs,Persons presenting with fever & tested by RDT <5yrs,Persons tested positive for malaria by RDT <5yrs"
    );
    let row = |t1: &str, t2: &str, p: &str| {
        format!(
            "kn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,202101,primary,{t1},{t2},{p}\n"
        )
    };
    // Equal wherever both are filled: the first copy is kept (a blank first stays blank).
    let same = format!("{head}\n{}{}", row("10", "10", "5"), row("", "7", "1"));
    let export = read("dup.csv", same.as_bytes()).unwrap();
    assert!(export.warnings.summed_duplicate_columns.is_empty());
    assert_eq!(run(&export).result.wards[0].counts.tested, 10.0);
    // Different: summed cell-wise, blank only when every copy is blank, and warned.
    let differ = format!("{head}\n{}{}", row("10", "4", "5"), row("", "7", "1"));
    let export = read("dup.csv", differ.as_bytes()).unwrap();
    assert_eq!(export.warnings.summed_duplicate_columns, ["u5_rdt_tested"]);
    assert_eq!(run(&export).result.wards[0].counts.tested, 21.0);
}

#[test]
fn text_and_negative_counts_are_missing_and_counted() {
    let csv = format!(
        "{HEAD},{RDT_U5}\n\
         kn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,202101,primary,ten,-2\n\
         kn Kano State,kn Dala Local Government Area,kn Adakawa Ward,a1,kn PHC,202102,primary,10,4\n\
         kn Kano State,kn Dala Local Government Area,Unknown,a2,kn PHC 2,202102,primary,10,4\n"
    );
    let export = read("text.csv", csv.as_bytes()).unwrap();
    assert_eq!(export.warnings.non_numeric_cells, 1);
    assert_eq!(export.warnings.negative_cells, 1);
    assert_eq!(export.warnings.rows_without_ward, 1);
    let out = run(&export);
    assert_eq!(out.result.wards.len(), 1);
    assert_eq!(out.result.wards[0].counts.tested, 10.0);
    // The row without a ward is in the LGA total.
    assert_eq!(out.result.lga_rates[0].counts.tested, 20.0);
}
