//! Inputs that attacked the service (issue 18), generated rather than stored: a few kilobytes
//! each that a careless reader expands into gigabytes or CPU-minutes. The readers' tests, the
//! black-box tests that run them through the real server under an address-space cap, the fuzz
//! corpus and the benchmarks all use these, so they agree on what "hostile" means.
//!
//! Also [`simple_xlsx`], a minimal workbook writer (inline strings), for tests that need a
//! workbook of a given shape.

use crate::archive::write_zip_level;
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
    write_zip_level(
        &[
            ("[Content_Types].xml", content_types.as_bytes()),
            ("_rels/.rels", rels.as_bytes()),
            ("xl/workbook.xml", workbook.as_bytes()),
            ("xl/_rels/workbook.xml.rels", workbook_rels.as_bytes()),
            ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
        ],
        9,
    )
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
    write_zip_level(
        &[
            ("bomb.shp", &shp),
            ("bomb.dbf", &dbf),
            ("bomb.prj", WGS84_PRJ.as_bytes()),
        ],
        9,
    )
}

/// Finding 3: a valid two-ward shapefile plus `entries` entries of `entry_bytes` zeros each
/// (1 MiB entries sit exactly at the ratio check's threshold). A reader that inflates every
/// entry holds entries x entry_bytes.
pub fn zip_many_large_entries(entries: usize, entry_bytes: usize) -> Result<Vec<u8>> {
    let (shp, dbf) = one_square_shapefile(2)?;
    let zeros = vec![0u8; entry_bytes];
    let base = write_zip_level(
        &[
            ("wards.shp", &shp),
            ("wards.dbf", &dbf),
            ("wards.prj", WGS84_PRJ.as_bytes()),
            ("padding/0000.bin", &zeros),
        ],
        9,
    )?;
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

/// One BIFF8 record: type, length, data.
fn biff(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + data.len());
    out.extend_from_slice(&typ.to_le_bytes());
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    out.extend_from_slice(data);
    out
}

fn biff_bof(sheet: bool) -> Vec<u8> {
    let mut d = vec![0u8; 16];
    d[0..2].copy_from_slice(&0x0600u16.to_le_bytes());
    d[2..4].copy_from_slice(&(if sheet { 0x0010u16 } else { 0x0005 }).to_le_bytes());
    biff(0x0809, &d)
}

/// A BIFF8 DIMENSIONS record: rows `first..last_plus_one`, columns `0..cols`.
fn biff_dimensions(first: u32, last_plus_one: u32, cols: u16) -> Vec<u8> {
    let mut d = Vec::with_capacity(14);
    d.extend_from_slice(&first.to_le_bytes());
    d.extend_from_slice(&last_plus_one.to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes());
    d.extend_from_slice(&cols.to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes());
    biff(0x0200, &d)
}

/// A Number cell record.
pub fn biff_number(row: u16, col: u16, value: f64) -> Vec<u8> {
    let mut d = Vec::with_capacity(14);
    d.extend_from_slice(&row.to_le_bytes());
    d.extend_from_slice(&col.to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes());
    d.extend_from_slice(&value.to_le_bytes());
    biff(0x0203, &d)
}

/// A Label cell record (8-bit characters) claiming `cch` characters; `text` is what follows.
pub fn biff_label(row: u16, col: u16, cch: u16, text: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(9 + text.len());
    d.extend_from_slice(&row.to_le_bytes());
    d.extend_from_slice(&col.to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes());
    d.extend_from_slice(&cch.to_le_bytes());
    d.push(0);
    d.extend_from_slice(text);
    biff(0x0204, &d)
}

/// The records of a sheet of `rows` (numbers where a cell parses as one, labels otherwise; no
/// DIMENSIONS record).
pub fn xls_cell_records(rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if cell.is_empty() {
                continue;
            }
            match cell.trim().parse::<f64>() {
                Ok(v) if r > 0 => out.extend(biff_number(r as u16, c as u16, v)),
                _ => {
                    let text: Vec<u8> = cell.chars().map(|ch| ch as u32 as u8).collect();
                    out.extend(biff_label(r as u16, c as u16, text.len() as u16, &text));
                }
            }
        }
    }
    out
}

/// A BIFF8 workbook stream: globals (`extra_globals` before their EOF) and one sheet per
/// `(name, records)`, each between its BOF and EOF.
pub fn xls_stream(extra_globals: &[u8], sheets: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut globals = biff_bof(false);
    globals.extend(biff(0x0042, &1200u16.to_le_bytes()));
    let bound_len: usize = sheets.iter().map(|(n, _)| 4 + 8 + n.len()).sum();
    let mut at = globals.len() + bound_len + extra_globals.len() + 4;
    let mut bodies = Vec::new();
    for (name, records) in sheets {
        let mut d = Vec::new();
        d.extend_from_slice(&(at as u32).to_le_bytes());
        d.extend_from_slice(&[0, 0, name.len() as u8, 0]);
        d.extend_from_slice(name.as_bytes());
        globals.extend(biff(0x0085, &d));
        let mut body = biff_bof(true);
        body.extend_from_slice(records);
        body.extend(biff(0x000A, &[]));
        at += body.len();
        bodies.push(body);
    }
    globals.extend_from_slice(extra_globals);
    globals.extend(biff(0x000A, &[]));
    for body in bodies {
        globals.extend(body);
    }
    globals
}

const FREESECT: u32 = 0xFFFF_FFFF;

/// An OLE2 compound file (version 4, 4096-byte sectors) holding `stream` as "Workbook" (padded
/// to 4096 bytes so it lives in regular sectors). With `cyclic`, the stream's last sector links
/// back to its first.
pub fn xls_container(stream: &[u8], cyclic: bool) -> Vec<u8> {
    const SS: usize = 4096;
    let mut stream = stream.to_vec();
    stream.resize(stream.len().max(SS), 0);
    let data_sectors = stream.len().div_ceil(SS);
    let mut fat_sectors = 1;
    while fat_sectors * (SS / 4) < fat_sectors + 1 + data_sectors {
        fat_sectors += 1;
    }
    assert!(
        fat_sectors <= 109,
        "stream too large for a header-only DIFAT"
    );
    let dir = fat_sectors as u32;
    let first = dir + 1;
    let mut fat = vec![FREESECT; fat_sectors * SS / 4];
    for e in fat.iter_mut().take(fat_sectors) {
        *e = 0xFFFF_FFFD;
    }
    fat[dir as usize] = 0xFFFF_FFFE;
    for i in 0..data_sectors {
        let id = first as usize + i;
        fat[id] = if i + 1 == data_sectors {
            if cyclic { first } else { 0xFFFF_FFFE }
        } else {
            id as u32 + 1
        };
    }
    let mut out = vec![0u8; SS];
    out[..8].copy_from_slice(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    let put16 =
        |out: &mut Vec<u8>, at: usize, v: u16| out[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |out: &mut Vec<u8>, at: usize, v: u32| out[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put16(&mut out, 24, 0x003E);
    put16(&mut out, 26, 4);
    put16(&mut out, 28, 0xFFFE);
    put16(&mut out, 30, 12);
    put16(&mut out, 32, 6);
    put32(&mut out, 40, 1);
    put32(&mut out, 44, fat_sectors as u32);
    put32(&mut out, 48, dir);
    put32(&mut out, 56, 4096);
    put32(&mut out, 60, 0xFFFF_FFFE);
    put32(&mut out, 68, 0xFFFF_FFFE);
    for i in 0..109 {
        let v = if i < fat_sectors { i as u32 } else { FREESECT };
        put32(&mut out, 76 + 4 * i, v);
    }
    for e in &fat {
        out.extend_from_slice(&e.to_le_bytes());
    }
    let mut dirs = vec![0u8; SS];
    let entry =
        |dirs: &mut Vec<u8>, i: usize, name: &str, typ: u8, child: u32, start: u32, size: u64| {
            let base = i * 128;
            let units: Vec<u16> = name.encode_utf16().collect();
            for (k, u) in units.iter().enumerate() {
                dirs[base + 2 * k..base + 2 * k + 2].copy_from_slice(&u.to_le_bytes());
            }
            dirs[base + 64..base + 66]
                .copy_from_slice(&((units.len() as u16 + 1) * 2).to_le_bytes());
            dirs[base + 66] = typ;
            dirs[base + 67] = 1;
            dirs[base + 68..base + 72].copy_from_slice(&FREESECT.to_le_bytes());
            dirs[base + 72..base + 76].copy_from_slice(&FREESECT.to_le_bytes());
            dirs[base + 76..base + 80].copy_from_slice(&child.to_le_bytes());
            dirs[base + 116..base + 120].copy_from_slice(&start.to_le_bytes());
            dirs[base + 120..base + 128].copy_from_slice(&size.to_le_bytes());
        };
    entry(&mut dirs, 0, "Root Entry", 5, 1, 0, 0);
    entry(
        &mut dirs,
        1,
        "Workbook",
        2,
        FREESECT,
        first,
        stream.len() as u64,
    );
    out.extend(dirs);
    out.extend_from_slice(&stream);
    out.resize(SS * (1 + fat_sectors + 1 + data_sectors), 0);
    out
}

/// A one-sheet legacy workbook (.xls) of `rows`, written like [`simple_xlsx`].
pub fn simple_xls(rows: &[Vec<String>]) -> Vec<u8> {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0) as u16;
    let mut records = biff_dimensions(0, rows.len() as u32, width);
    records.extend(xls_cell_records(rows));
    xls_container(&xls_stream(&[], &[("Sheet1", records)]), false)
}

/// Finding 1 for .xls: the ward table plus one number at the last row and column a BIFF8 cell
/// can name (65535, 65535); calamine builds the sheet's grid over the cells' bounding box
/// (4.3 billion cells).
pub fn xls_far_cell(rows: &[Vec<String>]) -> Vec<u8> {
    let mut records = xls_cell_records(rows);
    records.extend(biff_number(u16::MAX, u16::MAX, 1.0));
    xls_container(&xls_stream(&[], &[("Sheet1", records)]), false)
}

/// A ward table whose DIMENSIONS record declares 4 billion rows by 256 columns, which calamine
/// reserves before reading a cell.
pub fn xls_huge_dimensions(rows: &[Vec<String>]) -> Vec<u8> {
    let mut records = biff_dimensions(0, u32::MAX, 256);
    records.extend(xls_cell_records(rows));
    xls_container(&xls_stream(&[], &[("Sheet1", records)]), false)
}

/// A ward table whose shared string table declares 4 billion strings (it holds one).
pub fn xls_huge_sst(rows: &[Vec<String>]) -> Vec<u8> {
    let mut sst = Vec::new();
    sst.extend_from_slice(&u32::MAX.to_le_bytes());
    sst.extend_from_slice(&u32::MAX.to_le_bytes());
    sst.extend_from_slice(&[1, 0, 0, b'x']);
    let globals = biff(0x00FC, &sst);
    xls_container(
        &xls_stream(&globals, &[("Sheet1", xls_cell_records(rows))]),
        false,
    )
}

/// `labels` one-character labels that each claim 65,535 characters: 12 bytes of file each,
/// 64 KiB each in calamine (which keeps the claimed capacity).
pub fn xls_label_capacity(labels: usize) -> Vec<u8> {
    let mut records = Vec::with_capacity(labels * 13);
    records.extend(biff_label(0, 0, 8, b"WardName"));
    for i in 0..labels {
        records.extend(biff_label(
            (1 + i % 60_000) as u16,
            (i / 60_000) as u16,
            u16::MAX,
            b"x",
        ));
    }
    xls_container(&xls_stream(&[], &[("Sheet1", records)]), false)
}

/// A ward table whose workbook stream's sector chain loops back on itself.
pub fn xls_cyclic_chain(rows: &[Vec<String>]) -> Vec<u8> {
    xls_container(
        &xls_stream(&[], &[("Sheet1", xls_cell_records(rows))]),
        true,
    )
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

    #[test]
    fn a_simple_legacy_workbook_reads_back() {
        let rows = vec![
            vec!["WardName".to_string(), "tpr".to_string()],
            vec!["Kofa & Co".to_string(), "0.25".to_string()],
            vec!["Dala".to_string(), "0.5".to_string()],
        ];
        let t = crate::read_table(&simple_xls(&rows), "w.xls").unwrap();
        assert_eq!(t.column_names(), ["WardName", "tpr"]);
        assert_eq!(
            t.column("WardName").unwrap().data.cell_text(0).as_deref(),
            Some("Kofa & Co")
        );
        assert_eq!(
            t.column("tpr").unwrap().data,
            ColumnData::Float(vec![Some(0.25), Some(0.5)])
        );
    }
}
