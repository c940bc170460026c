//! The hostile inputs of issue 18 against the readers, with every allocation counted: each must
//! be refused (or read) at a small, bounded cost. The test binary's allocator refuses to hold more
//! than 1 GiB at once, so a reader that trusts what an input claims aborts this binary instead of
//! the machine (before the fixes, findings 1 and 2 did exactly that).
//!
//! The tests take turns (one lock) so that the peak of each case is its own.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mrpt_formats::hostile::{
    csv_rows, dbf_zero_length_fields, wide_csv, xlsx_far_cell, zip_many_large_entries,
};
use mrpt_formats::{Error, read_shapefile_zip, read_table, read_ward_table};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
const CAP: usize = 1 << 30;

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added,
// and an allocation over the cap is refused with a null pointer, as the trait allows.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        if now > CAP {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: ptr was allocated by System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let grow = new_size - layout.size();
            let now = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
            if now > CAP {
                LIVE.fetch_sub(grow, Ordering::Relaxed);
                return std::ptr::null_mut();
            }
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: ptr and layout come from this allocator; new_size is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `work` and returns its result with the most memory it held at once beyond what was
/// live before it started.
fn peak_of<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = work();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/../../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

const MIB: usize = 1 << 20;

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn hostile_inputs_are_refused_or_read_at_a_bounded_cost() {
    let kano = csv_rows(&fixture("kano/kano_wards.csv"));

    // Finding 1: the Kano sheet plus one cell at XFD1048576 (6.8 KB in the issue).
    let far = xlsx_far_cell(&kano).unwrap();
    let (result, peak) = peak_of(|| read_table(&far, "kano.xlsx"));
    match result {
        Err(Error::TooManyColumns { columns, max, .. }) => {
            assert_eq!((columns, max), (16384, 1000))
        }
        other => panic!("far cell: {other:?}"),
    }
    println!(
        "xlsx far cell: {} bytes in, peak {} KiB",
        far.len(),
        peak / 1024
    );
    assert!(peak < 32 * MIB, "far cell peak {peak}");
    // The TPR facility-export reader walks the same sheet through the same checks.
    let (result, peak) = peak_of(|| {
        mrpt_formats::tpr::read_facility_export(&far, "kano.xlsx", &Default::default()).map(|_| ())
    });
    assert!(
        matches!(result, Err(Error::TooManyColumns { columns: 16384, .. })),
        "tpr far cell: {result:?}"
    );
    assert!(peak < 32 * MIB, "tpr far cell peak {peak}");
    // The same sheet without the far cell reads, and so does a far *row* (blank rows cost
    // nothing: only rows with data become rows).
    let plain = mrpt_formats::hostile::simple_xlsx(&kano, "").unwrap();
    let table = read_ward_table(&plain, "kano.xlsx").unwrap();
    assert_eq!(table.table.n_rows(), kano.len() - 1);
    let far_row = mrpt_formats::hostile::simple_xlsx(
        &kano,
        r#"<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>Zz</t></is></c></row>"#,
    )
    .unwrap();
    let (result, peak) = peak_of(|| read_ward_table(&far_row, "kano.xlsx"));
    assert_eq!(result.unwrap().table.n_rows(), kano.len());
    assert!(peak < 32 * MIB, "far row peak {peak}");

    // Finding 2: 2,000 fields of length 0 and 1M one-byte records (13 KB zipped).
    // Records fill the .dbf to exactly 1 MiB: entries up to 1 MiB escape the ratio check.
    let records = |fields: usize| MIB - (32 + 32 * fields + 1) - 1;
    let bomb = dbf_zero_length_fields(2000, records(2000)).unwrap();
    let (result, peak) = peak_of(|| read_shapefile_zip(&bomb));
    println!(
        "dbf 2000 empty fields: {} bytes in, peak {} KiB: {result:?}",
        bomb.len(),
        peak / 1024
    );
    assert!(
        matches!(&result, Err(Error::CorruptShapefile { reason, .. }) if reason.contains("more than 255 fields")),
        "{result:?}"
    );
    assert!(peak < 16 * MIB, "dbf peak {peak}");
    // Within dBase's field limit, a field of length 0 is refused too.
    let result = read_shapefile_zip(&dbf_zero_length_fields(200, records(200)).unwrap());
    assert!(
        matches!(&result, Err(Error::CorruptShapefile { reason, .. }) if reason.contains("length 0")),
        "{result:?}"
    );

    // Finding 3: a valid shapefile plus 997 entries of 1 MiB zeros (1.3 MB zipped): only the
    // shapefile's parts are inflated.
    let padded = zip_many_large_entries(997, MIB).unwrap();
    let (result, peak) = peak_of(|| read_shapefile_zip(&padded));
    println!(
        "997 x 1 MiB entries: {} bytes in, peak {} KiB",
        padded.len(),
        peak / 1024
    );
    assert_eq!(result.unwrap().geometries.len(), 2);
    assert!(peak < 16 * MIB, "zip peak {peak}");

    // Finding 4: 100k columns (the issue's 1.1 MB) are refused with the cap named.
    let wide = wide_csv(100_000);
    let (result, peak) = peak_of(|| read_table(&wide, "wide.csv"));
    match result {
        Err(Error::TooManyColumns { columns, max, .. }) => {
            assert_eq!((columns, max), (100_000, 1000))
        }
        other => panic!("wide csv: {other:?}"),
    }
    println!(
        "100k columns: {} bytes in, peak {} KiB",
        wide.len(),
        peak / 1024
    );
    assert!(
        peak < mrpt_formats::limits::CSV_BYTES_PER_INPUT_BYTE * wide.len(),
        "wide csv peak {peak}"
    );
}

/// The documented memory bound of a CSV read holds for the worst shape the caps allow: one
/// character per cell, as many cells as allowed.
#[test]
fn csv_memory_is_a_bounded_multiple_of_the_input() {
    let limits = mrpt_formats::Limits::default();
    let columns = 100;
    let rows = limits.max_cells / columns / 4;
    let mut csv = Vec::with_capacity(rows * columns * 2);
    csv.extend_from_slice(b"WardName");
    for c in 1..columns {
        csv.extend_from_slice(format!(",v{c}").as_bytes());
    }
    for r in 0..rows {
        csv.push(b'\n');
        csv.push(b'a' + (r % 26) as u8);
        for _ in 1..columns {
            csv.extend_from_slice(b",z");
        }
    }
    let (result, peak) = peak_of(|| read_table(&csv, "big.csv"));
    assert_eq!(result.unwrap().n_rows(), rows);
    let ratio = peak as f64 / csv.len() as f64;
    println!(
        "csv of {} KiB ({rows} x {columns} one-letter cells): peak {} KiB = {ratio:.1} x input",
        csv.len() / 1024,
        peak / 1024
    );
    assert!(
        ratio < mrpt_formats::limits::CSV_BYTES_PER_INPUT_BYTE as f64,
        "{ratio}"
    );
}

/// Legacy .xls (BIFF8 in an OLE2 container): calamine parses every sheet when it opens the
/// file and trusts the file's sizes, so each of these would abort the reader (or loop forever)
/// without the pre-scan; each is refused before calamine runs, at a small cost, by both the
/// table reader and the TPR export reader. Genuine files (xlwt's, and our writer's) still read.
#[test]
fn legacy_xls_hostile_inputs_are_refused_before_calamine() {
    use mrpt_formats::hostile::{
        simple_xls, xls_cyclic_chain, xls_far_cell, xls_huge_dimensions, xls_huge_sst,
        xls_label_capacity,
    };
    let kano = csv_rows(&fixture("kano/kano_wards.csv"));
    let plain = simple_xls(&kano);
    let mut truncated = plain.clone();
    truncated.truncate(plain.len() / 2);
    type Expect = fn(&Error) -> bool;
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("far cell", xls_far_cell(&kano), |e| {
            matches!(
                e,
                Error::TooManyColumns {
                    columns: 65536,
                    max: 1000,
                    ..
                }
            )
        }),
        (
            "huge DIMENSIONS",
            xls_huge_dimensions(&kano),
            |e| matches!(e, Error::TooManyCells { what, .. } if what.contains("4294967295 rows by 256 columns")),
        ),
        (
            "huge SST count",
            xls_huge_sst(&kano),
            |e| matches!(e, Error::TooManyCells { what, .. } if what.contains("shared string table of 4294967295")),
        ),
        (
            "label capacity",
            xls_label_capacity(100_000),
            |e| matches!(e, Error::TooManyCells { what, .. } if what.contains("text")),
        ),
        (
            "cyclic chain",
            xls_cyclic_chain(&kano),
            |e| matches!(e, Error::NotExcel { reason, .. } if reason.contains("loops")),
        ),
        (
            "truncated",
            truncated,
            |e| matches!(e, Error::NotExcel { reason, .. } if reason.contains("truncated")),
        ),
    ];
    for (what, bytes, expected) in cases {
        let (result, peak) = peak_of(|| read_table(&bytes, "kano.xls"));
        println!(
            "xls {what}: {} bytes in, peak {} KiB: {result:?}",
            bytes.len(),
            peak / 1024
        );
        let err = result.expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
        assert!(err.is_over_limit() || matches!(err, Error::NotExcel { .. }));
        assert!(peak < 32 * MIB, "{what} peak {peak}");
        let (result, peak) = peak_of(|| {
            mrpt_formats::tpr::read_facility_export(&bytes, "kano.xls", &Default::default())
                .map(|_| ())
        });
        let err = result.expect_err(what);
        assert!(expected(&err), "tpr {what}: {err:?}");
        assert!(peak < 32 * MIB, "tpr {what} peak {peak}");
    }

    // Genuine files read: our writer's, and xlwt's (tests/fixtures/formats/make_xls.py).
    let (table, peak) = peak_of(|| read_ward_table(&plain, "kano.xls").unwrap());
    assert_eq!(table.table.n_rows(), kano.len() - 1);
    println!(
        "xls kano: {} bytes in, peak {} KiB",
        plain.len(),
        peak / 1024
    );
    let xlwt_kano = read_ward_table(&fixture("kano/kano_wards.xls"), "kano.xls").unwrap();
    let csv_kano = read_ward_table(&fixture("kano/kano_wards.csv"), "kano.csv").unwrap();
    assert_eq!(xlwt_kano.table.n_rows(), csv_kano.table.n_rows());
    assert_eq!(
        xlwt_kano.table.column_names(),
        csv_kano.table.column_names()
    );
    // The notes sheet is skipped for the sheet that names WardName; xlwt stores no cached
    // value for its formula cell, which reads as missing.
    let wards = read_ward_table(&fixture("formats/wards.xls"), "wards.xls").unwrap();
    assert_eq!(
        wards.table.column_names(),
        ["WardName", "tpr", "rainfall", "note"]
    );
    assert_eq!(
        wards.table.column("rainfall").unwrap().data,
        mrpt_table::ColumnData::Float(vec![Some(1200.0), None, Some(900.0)])
    );
}
