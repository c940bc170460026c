//! Inputs that attacked the service (issue 18), generated rather than stored: a few kilobytes
//! each that a careless reader expands into gigabytes or CPU-minutes. The readers' tests, the
//! black-box tests that run them through the real server under an address-space cap, the fuzz
//! corpus and the benchmarks all use these, so they agree on what "hostile" means.
//!
//! Also [`simple_xlsx`], a minimal workbook writer (inline strings), for tests that need a
//! workbook of a given shape.

use crate::archive::write_zip;
use crate::crs::WGS84_PRJ;
use crate::error::Result;
use crate::shapefile::write_shapefile;
use mrpt_table::{Column, ColumnData, Geometry, Polygon, Table};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Excel's column letters of a 0-based column index (0 -> A, 16383 -> XFD).
pub fn column_letters(mut col: u32) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// A one-sheet workbook of text and number cells (a cell that parses as a number is written as
/// a number), plus `extra` raw `<row>` XML appended at the end of the sheet data.
pub fn simple_xlsx(rows: &[Vec<String>], extra: &str) -> Result<Vec<u8>> {
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (r, row) in rows.iter().enumerate() {
        sheet.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, cell) in row.iter().enumerate() {
            let at = format!("{}{}", column_letters(c as u32), r + 1);
            if cell.parse::<f64>().is_ok_and(f64::is_finite) {
                sheet.push_str(&format!(r#"<c r="{at}"><v>{cell}</v></c>"#));
            } else {
                sheet.push_str(&format!(
                    r#"<c r="{at}" t="inlineStr"><is><t>{}</t></is></c>"#,
                    xml_escape(cell)
                ));
            }
        }
        sheet.push_str("</row>");
    }
    sheet.push_str(extra);
    sheet.push_str("</sheetData></worksheet>");
    let content_types = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
    let rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
    let workbook = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    let workbook_rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    write_zip(&[
        ("[Content_Types].xml", content_types.as_bytes()),
        ("_rels/.rels", rels.as_bytes()),
        ("xl/workbook.xml", workbook.as_bytes()),
        ("xl/_rels/workbook.xml.rels", workbook_rels.as_bytes()),
        ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
    ])
}

/// The rows of a CSV (no quoting: for the plain fixtures this module reads).
pub fn csv_rows(csv: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8_lossy(csv)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Finding 1: a ward table's workbook plus one cell at XFD1048576, the last cell of a sheet.
/// A reader that allocates the used range asks for 1048576 x 16384 cells.
pub fn xlsx_far_cell(rows: &[Vec<String>]) -> Result<Vec<u8>> {
    simple_xlsx(
        rows,
        r#"<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#,
    )
}

fn one_square_shapefile(n: usize) -> Result<(Vec<u8>, Vec<u8>)> {
    let geometries: Vec<Option<Geometry>> = (0..n)
        .map(|i| {
            let x = 8.0 + 0.01 * i as f64;
            Some(Geometry::Polygon(Polygon {
                exterior: vec![
                    [x, 12.0],
                    [x, 12.01],
                    [x + 0.01, 12.01],
                    [x + 0.01, 12.0],
                    [x, 12.0],
                ],
                holes: vec![],
            }))
        })
        .collect();
    let attributes = Table::new(vec![Column::new(
        "WardName",
        ColumnData::texts((0..n).map(|i| format!("Ward {i}"))),
    )])?;
    let out = write_shapefile(&geometries, &attributes)?;
    Ok((out.shp, out.dbf))
}

/// Finding 2: a shapefile whose .dbf declares `fields` fields of length 0, so records are one
/// byte long and `records` of them fit in as many bytes; the .shp holds one shape. A reader that
/// allocates records x fields before checking asks for records x fields cells.
pub fn dbf_zero_length_fields(fields: usize, records: usize) -> Result<Vec<u8>> {
    let (shp, _) = one_square_shapefile(1)?;
    let header_len = 32 + 32 * fields + 1;
    let mut dbf = Vec::with_capacity(header_len + records + 1);
    dbf.push(0x03);
    dbf.extend_from_slice(&[126, 1, 1]);
    dbf.extend_from_slice(&(records as u32).to_le_bytes());
    dbf.extend_from_slice(&(header_len.min(u16::MAX as usize) as u16).to_le_bytes());
    dbf.extend_from_slice(&1u16.to_le_bytes());
    dbf.extend_from_slice(&[0u8; 20]);
    for i in 0..fields {
        let mut name = [0u8; 11];
        for (k, b) in format!("F{i}").bytes().take(10).enumerate() {
            name[k] = b;
        }
        dbf.extend_from_slice(&name);
        dbf.push(b'C');
        dbf.extend_from_slice(&[0u8; 4]);
        dbf.push(0); // length 0
        dbf.push(0);
        dbf.extend_from_slice(&[0u8; 14]);
    }
    dbf.push(0x0D);
    dbf.extend(std::iter::repeat_n(b' ', records));
    dbf.push(0x1A);
    write_zip(&[
        ("bomb.shp", &shp),
        ("bomb.dbf", &dbf),
        ("bomb.prj", WGS84_PRJ.as_bytes()),
    ])
}

/// Finding 3: a valid two-ward shapefile plus `entries` entries of `entry_bytes` zeros each
/// (1 MiB entries sit exactly at the ratio check's threshold). A reader that inflates every
/// entry holds entries x entry_bytes.
pub fn zip_many_large_entries(entries: usize, entry_bytes: usize) -> Result<Vec<u8>> {
    let (shp, dbf) = one_square_shapefile(2)?;
    let zeros = vec![0u8; entry_bytes];
    let base = write_zip(&[
        ("wards.shp", &shp),
        ("wards.dbf", &dbf),
        ("wards.prj", WGS84_PRJ.as_bytes()),
        ("padding/0000.bin", &zeros),
    ])?;
    // The padding is deflated once and copied compressed, so making the zip costs little.
    let fail = |e: zip::result::ZipError| crate::Error::Io {
        path: "zip archive".into(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut source = zip::ZipArchive::new(std::io::Cursor::new(&base)).map_err(fail)?;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..3 {
        out.raw_copy_file(source.by_index(i).map_err(fail)?)
            .map_err(fail)?;
    }
    for i in 0..entries {
        let padding = source.by_index(3).map_err(fail)?;
        out.raw_copy_file_rename(padding, format!("padding/{i:04}.bin"))
            .map_err(fail)?;
    }
    Ok(out.finish().map_err(fail)?.into_inner())
}

/// Finding 4: a CSV with a ward column and `columns - 1` more columns, all named alike (the
/// repeated names are what made pandas-style renaming quadratic), and two data rows.
pub fn wide_csv(columns: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(columns * 8);
    out.extend_from_slice(b"WardName");
    for _ in 1..columns {
        out.extend_from_slice(b",x");
    }
    for ward in ["A", "B"] {
        out.push(b'\n');
        out.extend_from_slice(ward.as_bytes());
        for _ in 1..columns {
            out.extend_from_slice(b",1");
        }
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_are_excels() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(16383), "XFD");
    }

    #[test]
    fn a_simple_workbook_reads_back() {
        let rows = vec![
            vec!["WardName".to_string(), "tpr".to_string()],
            vec!["Kofa & Co".to_string(), "0.25".to_string()],
        ];
        let t = crate::read_table(&simple_xlsx(&rows, "").unwrap(), "w.xlsx").unwrap();
        assert_eq!(t.column_names(), ["WardName", "tpr"]);
        assert_eq!(
            t.column("WardName").unwrap().data.cell_text(0).as_deref(),
            Some("Kofa & Co")
        );
    }
}
