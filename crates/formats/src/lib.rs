//! mrpt-formats: every data format of the service. Ward tables (CSV, XLSX/XLS), zipped
//! shapefiles, ward-name matching, the unified dataset (GeoParquet + CSV), result CSVs written
//! the way pandas writes them, upload summaries, population tables and a synthetic generator.
//!
//! The only crate that depends on csv / parquet / zip / spreadsheet readers. It must not depend
//! on any other internal crate, touches no session folder (callers pass bytes in and get bytes
//! out) and does no analysis.
//!
//! Entry points: [`read_ward_table`], [`read_shapefile_zip`], [`matching::match_wards`],
//! [`unified::join_geometries`], [`unified::write_unified`], [`write_csv`] / [`read_table`],
//! [`summary::summarize`], [`inspect_upload`], [`population::read_population`],
//! [`synth::synthesize`].
//!
//! Where we differ from pandas' `read_csv` on purpose (each loses data silently in pandas):
//! `-` and whitespace-padded NA tokens count as missing; rows wider *or narrower* than the
//! header are an error; title lines above the header are skipped. Everything else (int/float/
//! bool/object typing, `Unnamed: i` and `name.1` column names, Python float repr on output)
//! follows pandas, and pandas-written result files round-trip byte for byte.

pub mod archive;
pub mod crs;
pub mod delimited;
pub mod error;
pub mod geometry;
pub mod geoparquet;
pub mod matching;
pub mod population;
pub mod shapefile;
pub mod summary;
pub mod synth;
pub mod table;
pub mod tpr;
pub mod unified;
pub mod workbook;

pub use delimited::{python_float_repr, write_csv};
pub use error::{BadCell, Error, Result};
pub use geometry::{Geometry, Polygon, Ring};
pub use geoparquet::{read_geoparquet, write_geoparquet};
pub use matching::{MatchReport, match_wards};
pub use shapefile::{WardShapes, read_shapefile_zip};
pub use table::{Column, ColumnData, Table, WardTable};
pub use unified::{UnifiedBase, UnifiedFiles, join_geometries, write_unified};

/// Reads an uploaded table: CSV-like text (`.csv`, `.txt`, `.tsv`, no extension) or an Excel
/// workbook (`.xlsx`, `.xls`). The content decides over the extension for Excel bytes sent under
/// a `.csv` name (ChatMRPT stored them that way); a `.xlsx` that is not a workbook is refused.
pub fn read_table(bytes: &[u8], file_name: &str) -> Result<Table> {
    if bytes.is_empty() {
        return Err(Error::Empty {
            file: file_name.into(),
        });
    }
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let excel_bytes =
        bytes.starts_with(workbook::ZIP_MAGIC) || bytes.starts_with(workbook::OLE_MAGIC);
    match ext.as_str() {
        "xlsx" | "xlsm" | "xls" => workbook::read_workbook(bytes, file_name),
        "csv" | "txt" | "tsv" | "tab" | "dat" | "" if excel_bytes => {
            workbook::read_workbook(bytes, file_name)
        }
        "csv" | "txt" | "tsv" | "tab" | "dat" | "" => delimited::read_csv(bytes, file_name),
        _ => Err(Error::UnsupportedFileType {
            file: file_name.into(),
        }),
    }
}

/// Reads an uploaded ward table and identifies its ward-name, ward-code and index columns.
/// Fails with [`Error::NoWardColumn`] (listing the columns found) when no ward column exists.
pub fn read_ward_table(bytes: &[u8], file_name: &str) -> Result<WardTable> {
    WardTable::from_table(read_table(bytes, file_name)?)
}

/// What an upload holds, for the upload response: the ward table, its summary, and (with a
/// shapefile) the shapes and how their names match. Nothing is renamed here; the analysis
/// applies [`match_wards`] on its own copy.
#[derive(Debug, Clone)]
pub struct UploadInspection {
    pub wards: WardTable,
    pub summary: summary::DataSummary,
    pub shapes: Option<WardShapes>,
    pub matching: Option<MatchReport>,
}

/// Reads and checks an upload: the table (CSV/XLSX) and optionally the zipped shapefile.
pub fn inspect_upload(
    table_bytes: &[u8],
    table_name: &str,
    shapefile_zip: Option<&[u8]>,
) -> Result<UploadInspection> {
    let wards = read_ward_table(table_bytes, table_name)?;
    let summary = summary::summarize(&wards.table, Some(wards.ward_column));
    let (shapes, matching) = match shapefile_zip {
        Some(zip) => {
            let shapes = read_shapefile_zip(zip)?;
            let (_, report) = matching::match_names(wards.ward_names(), &shapes.ward_names());
            (Some(shapes), Some(report))
        }
        None => (None, None),
    };
    Ok(UploadInspection {
        wards,
        summary,
        shapes,
        matching,
    })
}
