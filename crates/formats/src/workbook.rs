//! Excel workbooks (.xlsx, and legacy .xls) through calamine.

use std::io::Cursor;

use calamine::{Data, Reader};

use crate::delimited::{is_missing_token, table_from_cells};
use crate::error::{Error, Result};
use mrpt_table::Table;
use mrpt_table::python_float_repr;

/// Zip local-file magic: every .xlsx starts with it.
pub(crate) const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// OLE2 compound document magic: legacy .xls.
pub(crate) const OLE_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Reads the first worksheet, or the first one whose header row holds `WardName`.
pub fn read_workbook(bytes: &[u8], file: &str) -> Result<Table> {
    crate::error::contain_panic(
        |reason| Error::NotExcel {
            file: file.into(),
            reason,
        },
        || decode_workbook(bytes, file),
    )
}

fn decode_workbook(bytes: &[u8], file: &str) -> Result<Table> {
    let not_excel = |reason: String| Error::NotExcel {
        file: file.into(),
        reason,
    };
    let sheets: Vec<(String, calamine::Range<Data>)> = if bytes.starts_with(ZIP_MAGIC) {
        let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
            .map_err(|e: calamine::XlsxError| not_excel(e.to_string()))?;
        collect_sheets(&mut wb).map_err(not_excel)?
    } else if bytes.starts_with(OLE_MAGIC) {
        let mut wb: calamine::Xls<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
            .map_err(|e: calamine::XlsError| not_excel(e.to_string()))?;
        collect_sheets(&mut wb).map_err(not_excel)?
    } else {
        return Err(not_excel(
            "it does not start like an .xlsx (zip) or .xls (OLE) file".into(),
        ));
    };
    let grids: Vec<Vec<Vec<Option<String>>>> = sheets
        .iter()
        .map(|(_, range)| grid(range))
        .filter(|g| !g.is_empty())
        .collect();
    let chosen = grids
        .iter()
        .position(|g| {
            g.first().is_some_and(|h| {
                h.iter()
                    .any(|c| c.as_deref().map(str::trim) == Some("WardName"))
            })
        })
        .unwrap_or(0);
    let Some(mut rows) = grids.into_iter().nth(chosen) else {
        return Err(Error::NoSheet { file: file.into() });
    };
    let header: Vec<String> = rows
        .remove(0)
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    if rows.is_empty() {
        return Err(Error::NoRows { file: file.into() });
    }
    table_from_cells(&header, rows)
}

fn collect_sheets<RS, R>(
    wb: &mut R,
) -> std::result::Result<Vec<(String, calamine::Range<Data>)>, String>
where
    RS: std::io::Read + std::io::Seek,
    R: Reader<RS>,
    R::Error: std::fmt::Display,
{
    let mut out = Vec::new();
    for name in wb.sheet_names() {
        let range = wb
            .worksheet_range(&name)
            .map_err(|e| format!("sheet `{name}`: {e}"))?;
        out.push((name, range));
    }
    Ok(out)
}

/// Cells as text (numbers printed so that the common typing path reads them back unchanged),
/// blank rows dropped, ragged right edges padded.
fn grid(range: &calamine::Range<Data>) -> Vec<Vec<Option<String>>> {
    range
        .rows()
        .map(|row| row.iter().map(cell_text).collect::<Vec<_>>())
        .filter(|row: &Vec<Option<String>>| row.iter().any(Option::is_some))
        .collect()
}

fn cell_text(cell: &Data) -> Option<String> {
    let s = match cell {
        Data::Empty | Data::Error(_) => return None,
        Data::Int(i) => i.to_string(),
        // Excel stores every number as a float; pandas turns integral ones into ints.
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", *f as i64),
        Data::Float(f) => python_float_repr(*f),
        Data::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Data::String(s) => s.clone(),
        Data::DateTime(d) => d.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
    };
    (!is_missing_token(&s)).then_some(s)
}
