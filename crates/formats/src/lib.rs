//! mrpt-formats: every data format of the service. Ward tables (CSV, XLSX/XLS), zipped
//! shapefiles, GeoParquet, result CSVs written the way pandas writes them, upload summaries,
//! population tables and a synthetic generator.
//!
//! The only crate that depends on csv / parquet / zip / spreadsheet readers. It must not depend
//! on any internal crate but the vocabulary crate `mrpt-table`, touches no session folder
//! (callers pass bytes in and get bytes out) and does no analysis.
//!
//! Entry points: [`read_ward_table`] / [`read_table`], [`read_shapefile_zip`] (each with a
//! `_with` twin taking the caps of [`Limits`]),
//! [`write_csv`] (every CSV the service writes), [`read_geoparquet`] / [`write_geoparquet`],
//! [`summary::summarize`], [`population::read_population`], [`synth::synthesize`]. The table,
//! geometry and ward-column vocabulary is `mrpt-table`'s.
//!
//! Where we differ from pandas' `read_csv` on purpose (each loses data silently in pandas):
//! `-` and whitespace-padded NA tokens count as missing; rows wider *or narrower* than the
//! header are an error; title lines above the header are skipped. Everything else (int/float/
//! bool/object typing, `Unnamed: i` and `name.1` column names, Python float repr on output)
//! follows pandas, and pandas-written result files round-trip byte for byte.

#![deny(missing_docs)]

pub mod archive;
pub mod crs;
mod csv_writer;
pub mod delimited;
pub mod error;
pub mod geoparquet;
pub mod hostile;
pub mod limits;
pub mod population;
pub mod shapefile;
pub mod summary;
pub mod synth;
pub mod tpr;
pub mod wkb;
pub mod workbook;
pub mod xls;

pub use csv_writer::{CsvWriter, unneutralise, write_csv, write_csv_to, write_csv_verbatim};
pub use delimited::read_result_columns;
pub use error::{Error, Result};
pub use geoparquet::{read_geoparquet, write_geoparquet};
pub use limits::Limits;
pub use shapefile::{WardShapes, read_shapefile_zip};

use mrpt_table::{Table, WardTable};

/// Whether bytes are an Excel workbook (xlsx zip or legacy xls), whatever the file is called.
pub fn is_workbook(bytes: &[u8]) -> bool {
    bytes.starts_with(workbook::ZIP_MAGIC) || bytes.starts_with(workbook::OLE_MAGIC)
}

/// Reads an uploaded table: CSV-like text (`.csv`, `.txt`, `.tsv`, no extension) or an Excel
/// workbook (`.xlsx`, `.xls`), within the default [`Limits`]. The content decides over the
/// extension for Excel bytes sent under a `.csv` name (ChatMRPT stored them that way); a `.xlsx`
/// that is not a workbook is refused.
pub fn read_table(bytes: &[u8], file_name: &str) -> Result<Table> {
    read_table_with(bytes, file_name, &Limits::default())
}

/// [`read_table`] within the given caps.
pub fn read_table_with(bytes: &[u8], file_name: &str, limits: &Limits) -> Result<Table> {
    if bytes.is_empty() {
        return Err(Error::Empty {
            file: file_name.into(),
        });
    }
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let excel_bytes = is_workbook(bytes);
    match ext.as_str() {
        "xlsx" | "xlsm" | "xls" => workbook::read_workbook(bytes, file_name, limits),
        "csv" | "txt" | "tsv" | "tab" | "dat" | "" if excel_bytes => {
            workbook::read_workbook(bytes, file_name, limits)
        }
        "csv" | "txt" | "tsv" | "tab" | "dat" | "" => {
            delimited::read_csv_with(bytes, file_name, limits)
        }
        _ => Err(Error::UnsupportedFileType {
            file: file_name.into(),
        }),
    }
}

/// Reads one of the service's own result files back (analysis tables, rankings, the unified
/// dataset): [`read_table`], then the spreadsheet neutralisation of text cells undone
/// ([`unneutralise`]), so a ward called `=X` is `=X` again.
pub fn read_result_table(bytes: &[u8], file_name: &str) -> Result<Table> {
    let table = read_table(bytes, file_name)?;
    let columns = table
        .into_columns()
        .into_iter()
        .map(|mut c| {
            if let Some(name) = unneutralise(&c.name) {
                c.name = name.to_string();
            }
            if let mrpt_table::ColumnData::Text(v) = &mut c.data {
                for t in v.iter_mut().flatten() {
                    if let Some(original) = unneutralise(t) {
                        *t = original.to_string();
                    }
                }
            }
            c
        })
        .collect();
    Ok(Table::new(columns)?)
}

/// Reads an uploaded ward table and identifies its ward-name, ward-code and index columns
/// (`mrpt-table`'s rules). Fails naming the columns found when no ward column exists.
pub fn read_ward_table(bytes: &[u8], file_name: &str) -> Result<WardTable> {
    read_ward_table_with(bytes, file_name, &Limits::default())
}

/// [`read_ward_table`] within the given caps.
pub fn read_ward_table_with(bytes: &[u8], file_name: &str, limits: &Limits) -> Result<WardTable> {
    Ok(WardTable::from_table(read_table_with(
        bytes, file_name, limits,
    )?)?)
}
