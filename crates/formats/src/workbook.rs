//! Excel workbooks (.xlsx, and legacy .xls) through calamine. Sheets are streamed cell by cell
//! and checked against [`Limits`] before any grid is built (an .xls is pre-scanned by
//! [`crate::xls::check_xls`] first: calamine builds all its sheets when it opens one) (a sheet's used range is not
//! trusted: one cell at XFD1048576 would otherwise ask for 17 billion cells); an .xlsx is
//! inflated once without keeping anything, to bound what the reader will inflate.

use std::io::Cursor;

use calamine::{Data, Reader};

use crate::delimited::{is_missing_token, table_from_cells};
use crate::error::{Error, Result};
use crate::limits::{CANCEL_EVERY, Limits};
use mrpt_table::Table;
use mrpt_table::python_float_repr;

/// Zip local-file magic: every .xlsx starts with it.
pub(crate) const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// OLE2 compound document magic: legacy .xls.
pub(crate) const OLE_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Parts of an .xlsx other than worksheets (shared strings, styles, the workbook) are held in
/// memory whole by the reader: their inflated total may be at most this (or
/// `max_inflated_bytes`, when smaller).
pub const MAX_XLSX_SHARED_PARTS: u64 = 64 << 20;

/// Reads the first worksheet, or the first one whose header row holds `WardName`.
pub fn read_workbook(bytes: &[u8], file: &str, limits: &Limits) -> Result<Table> {
    crate::error::contain_panic(
        |reason| Error::NotExcel {
            file: file.into(),
            reason,
        },
        || decode_workbook(bytes, file, limits),
    )
}

fn decode_workbook(bytes: &[u8], file: &str, limits: &Limits) -> Result<Table> {
    let not_excel = |reason: String| Error::NotExcel {
        file: file.into(),
        reason,
    };
    let mut chosen: Option<Grid> = None;
    let mut take = |grid: Grid| -> bool {
        let names_ward = grid.rows.first().is_some_and(|h| {
            h.iter()
                .any(|c| c.as_deref().map(str::trim) == Some("WardName"))
        });
        if names_ward || chosen.is_none() {
            chosen = Some(grid);
        }
        names_ward
    };
    if bytes.starts_with(ZIP_MAGIC) {
        let mut wb = open_xlsx(bytes, file, limits)?;
        for name in wb.sheet_names() {
            let mut cells = match wb.worksheet_cells_reader(&name) {
                Ok(reader) => reader,
                Err(calamine::XlsxError::NotAWorksheet(_)) => continue,
                Err(e) => return Err(not_excel(format!("sheet `{name}`: {e}"))),
            };
            let mut sheet = SheetCells::new(file, &name, limits);
            loop {
                match cells.next_cell() {
                    Ok(Some(cell)) => {
                        let (row, col) = cell.get_position();
                        sheet.push(row, col, Data::from(cell.get_value().clone()))?;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(not_excel(format!("sheet `{name}`: {e}"))),
                }
            }
            if take(sheet.into_grid()?) {
                break;
            }
        }
    } else if bytes.starts_with(OLE_MAGIC) {
        crate::xls::check_xls(bytes, file, limits)?;
        let mut wb: calamine::Xls<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
            .map_err(|e: calamine::XlsError| not_excel(e.to_string()))?;
        for name in wb.sheet_names() {
            let range = wb
                .worksheet_range(&name)
                .map_err(|e| not_excel(format!("sheet `{name}`: {e}")))?;
            let mut sheet = SheetCells::new(file, &name, limits);
            for (row, col, value) in range.used_cells() {
                sheet.push(row as u32, col as u32, value.clone())?;
            }
            if take(sheet.into_grid()?) {
                break;
            }
        }
    } else {
        return Err(not_excel(
            "it does not start like an .xlsx (zip) or .xls (OLE) file".into(),
        ));
    }
    let Some(mut grid) = chosen else {
        return Err(Error::NoSheet { file: file.into() });
    };
    let header: Vec<String> = grid
        .rows
        .remove(0)
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    if grid.rows.is_empty() {
        return Err(Error::NoRows { file: file.into() });
    }
    table_from_cells(&header, grid.rows)
}

/// The first sheet of a workbook as calamine's range, streamed and checked like
/// [`read_workbook`]'s sheets (used-range width and cell count, and the range's area, which the
/// range allocates, within `max_cells`) before the range exists. For readers that walk the rows
/// themselves (the TPR facility export).
pub(crate) fn first_sheet_range(
    bytes: &[u8],
    file: &str,
    limits: &Limits,
) -> Result<calamine::Range<Data>> {
    let not_excel = |reason: String| Error::NotExcel {
        file: file.into(),
        reason,
    };
    let mut cells: Vec<calamine::Cell<Data>> = Vec::new();
    let mut bounds: Option<(u32, u32, u32, u32)> = None;
    let mut push = |row: u32, col: u32, value: Data, sheet: &str| -> Result<()> {
        if matches!(value, Data::Empty) {
            return Ok(());
        }
        let (r0, r1, c0, c1) = bounds.unwrap_or((row, row, col, col));
        let b = (r0.min(row), r1.max(row), c0.min(col), c1.max(col));
        bounds = Some(b);
        let width = (b.3 - b.2) as usize + 1;
        let height = (b.1 - b.0) as usize + 1;
        let where_ = || format!("{file} (sheet `{sheet}`)");
        if width > limits.max_columns {
            return Err(Error::TooManyColumns {
                file: where_(),
                columns: width,
                max: limits.max_columns,
            });
        }
        if height.saturating_mul(width) > limits.max_cells {
            return Err(Error::TooManyCells {
                file: where_(),
                what: format!("a used range of {height} rows by {width} columns"),
                max: limits.max_cells,
            });
        }
        if cells.len().is_multiple_of(CANCEL_EVERY) && mrpt_table::cancel::cancelled() {
            return Err(Error::Cancelled);
        }
        cells.push(calamine::Cell::new((row, col), value));
        Ok(())
    };
    if bytes.starts_with(ZIP_MAGIC) {
        let mut wb = open_xlsx(bytes, file, limits)?;
        let name = wb
            .sheet_names()
            .first()
            .cloned()
            .ok_or(Error::NoSheet { file: file.into() })?;
        let mut reader = wb
            .worksheet_cells_reader(&name)
            .map_err(|e| not_excel(e.to_string()))?;
        while let Some(cell) = reader.next_cell().map_err(|e| not_excel(e.to_string()))? {
            let (row, col) = cell.get_position();
            push(row, col, Data::from(cell.get_value().clone()), &name)?;
        }
    } else if bytes.starts_with(OLE_MAGIC) {
        crate::xls::check_xls(bytes, file, limits)?;
        let mut wb: calamine::Xls<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
            .map_err(|e: calamine::XlsError| not_excel(e.to_string()))?;
        let name = wb
            .sheet_names()
            .first()
            .cloned()
            .ok_or(Error::NoSheet { file: file.into() })?;
        let range = wb
            .worksheet_range(&name)
            .map_err(|e| not_excel(e.to_string()))?;
        for (row, col, value) in range.used_cells() {
            push(row as u32, col as u32, value.clone(), &name)?;
        }
    } else {
        return Err(not_excel(
            "it does not start like an .xlsx (zip) or .xls (OLE) file".into(),
        ));
    }
    Ok(calamine::Range::from_sparse(cells))
}

/// Opens an .xlsx for calamine once [`check_xlsx_parts`] has bounded what it will inflate.
fn open_xlsx<'a>(
    bytes: &'a [u8],
    file: &str,
    limits: &Limits,
) -> Result<calamine::Xlsx<Cursor<&'a [u8]>>> {
    let not_excel = |reason: String| Error::NotExcel {
        file: file.into(),
        reason,
    };
    check_xlsx_parts(bytes, limits).map_err(|e| match e {
        Error::BadZip { reason } => not_excel(reason),
        other => other,
    })?;
    calamine::open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e: calamine::XlsxError| not_excel(e.to_string()))
}

/// Inflates the workbook once, keeping nothing, to know what reading it costs before the
/// reader runs: at most `max_inflated_bytes` in all, and at most [`MAX_XLSX_SHARED_PARTS`] in
/// the parts the reader holds whole (everything but the worksheets, which are streamed).
fn check_xlsx_parts(bytes: &[u8], limits: &Limits) -> Result<()> {
    let parts = crate::archive::measure_zip(bytes, limits)?;
    let held: u64 = parts
        .iter()
        .filter(|(name, _)| !name.starts_with("xl/worksheets/"))
        .map(|(_, len)| len)
        .sum();
    let cap = MAX_XLSX_SHARED_PARTS.min(limits.max_inflated_bytes);
    if held > cap {
        return Err(Error::ZipBomb {
            reason: format!(
                "the workbook's shared strings, styles and other parts inflate to {held} bytes \
                 (limit {cap})"
            ),
        });
    }
    Ok(())
}

/// One sheet's non-empty cells as they stream in, checked against the caps before any grid
/// exists: the used range may be at most `max_columns` wide, and the cells kept at most
/// `max_cells`.
struct SheetCells<'a> {
    file: &'a str,
    sheet: &'a str,
    limits: &'a Limits,
    /// (row, column, text) of the cells that hold a value.
    cells: Vec<(u32, u32, String)>,
    first_col: u32,
    last_col: u32,
    seen: usize,
}

/// A sheet as rows of cells: blank rows dropped, every row as wide as the used range.
struct Grid {
    rows: Vec<Vec<Option<String>>>,
}

impl<'a> SheetCells<'a> {
    fn new(file: &'a str, sheet: &'a str, limits: &'a Limits) -> Self {
        SheetCells {
            file,
            sheet,
            limits,
            cells: Vec::new(),
            first_col: u32::MAX,
            last_col: 0,
            seen: 0,
        }
    }

    fn push(&mut self, row: u32, col: u32, value: Data) -> Result<()> {
        if matches!(value, Data::Empty) {
            return Ok(());
        }
        self.seen += 1;
        if self.seen.is_multiple_of(CANCEL_EVERY) && mrpt_table::cancel::cancelled() {
            return Err(Error::Cancelled);
        }
        self.first_col = self.first_col.min(col);
        self.last_col = self.last_col.max(col);
        let width = (self.last_col - self.first_col) as usize + 1;
        if width > self.limits.max_columns {
            return Err(Error::TooManyColumns {
                file: format!("{} (sheet `{}`)", self.file, self.sheet),
                columns: width,
                max: self.limits.max_columns,
            });
        }
        if let Some(text) = cell_text(&value) {
            if self.cells.len() >= self.limits.max_cells {
                return Err(self.too_many_cells(format!("more than {} cells", self.cells.len())));
            }
            self.cells.push((row, col, text));
        }
        Ok(())
    }

    fn too_many_cells(&self, what: String) -> Error {
        Error::TooManyCells {
            file: format!("{} (sheet `{}`)", self.file, self.sheet),
            what,
            max: self.limits.max_cells,
        }
    }

    /// The grid of the used range, once its size is known to be within the caps.
    fn into_grid(mut self) -> Result<Grid> {
        if self.cells.is_empty() {
            return Ok(Grid { rows: Vec::new() });
        }
        self.cells.sort_by_key(|&(r, c, _)| (r, c));
        let width = (self.last_col - self.first_col) as usize + 1;
        let mut rows_with_data = 0usize;
        let mut last_row = None;
        for &(r, _, _) in &self.cells {
            if last_row != Some(r) {
                rows_with_data += 1;
                last_row = Some(r);
            }
        }
        if rows_with_data.saturating_mul(width) > self.limits.max_cells {
            return Err(self.too_many_cells(format!("{rows_with_data} rows of {width} columns")));
        }
        let mut rows: Vec<Vec<Option<String>>> = Vec::with_capacity(rows_with_data);
        let mut last_row = None;
        for (r, c, text) in self.cells {
            if last_row != Some(r) {
                rows.push(vec![None; width]);
                last_row = Some(r);
            }
            if let Some(row) = rows.last_mut() {
                row[(c - self.first_col) as usize] = Some(text);
            }
        }
        Ok(Grid { rows })
    }
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
