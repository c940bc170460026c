//! Readers for the Kano fixtures, for tests only: a pandas-like CSV reader (dtype inference,
//! `Unnamed: i` headers) and a minimal .shp/.dbf reader over the zipped shapefile. The crate
//! itself does no I/O; mrpt-formats owns the real readers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use mrpt_table::{Column, ColumnData, Geometry, Polygon, Table, WardTable};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn kano_input(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/kano").join(name)
}

pub fn reference(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/reference/kano").join(name)
}

const NA: &[&str] = &[
    "", "NA", "N/A", "NaN", "nan", "null", "NULL", "#N/A", "None", "n/a", "-NaN", "-nan", "<NA>",
];

/// Header + raw string cells.
pub fn read_csv_raw(path: &PathBuf) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .unwrap();
    let headers: Vec<String> = rdr
        .headers()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if h.is_empty() {
                format!("Unnamed: {i}")
            } else {
                h.to_string()
            }
        })
        .collect();
    let rows = rdr
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (headers, rows)
}

/// A pandas-like `read_csv`: Int when every cell is an integer literal, Float when every present
/// cell is a number, Text otherwise; its ward column by the one rule.
pub fn read_table(path: &PathBuf) -> WardTable {
    WardTable::from_table(read_plain_table(path)).unwrap()
}

/// [`read_table`] without identifying the ward column.
pub fn read_plain_table(path: &PathBuf) -> Table {
    let (headers, rows) = read_csv_raw(path);
    let columns = headers
        .iter()
        .enumerate()
        .map(|(ci, name)| {
            let cells: Vec<&str> = rows.iter().map(|r| r[ci].as_str()).collect();
            let missing = |s: &str| NA.contains(&s);
            let data = if cells
                .iter()
                .all(|c| !missing(c) && c.parse::<i64>().is_ok())
            {
                ColumnData::Int(cells.iter().map(|c| c.parse().ok()).collect())
            } else if cells.iter().all(|c| missing(c) || c.parse::<f64>().is_ok()) {
                ColumnData::Float(
                    cells
                        .iter()
                        .map(|c| if missing(c) { None } else { c.parse().ok() })
                        .collect(),
                )
            } else {
                ColumnData::Text(
                    cells
                        .iter()
                        .map(|c| {
                            if missing(c) {
                                None
                            } else {
                                Some(c.to_string())
                            }
                        })
                        .collect(),
                )
            };
            Column::new(name.clone(), data)
        })
        .collect();
    Table::new(columns).unwrap()
}

/// Rows of a reference CSV as name -> cell maps.
pub fn read_records(path: &PathBuf) -> Vec<HashMap<String, String>> {
    let (headers, rows) = read_csv_raw(path);
    rows.into_iter()
        .map(|r| headers.iter().cloned().zip(r).collect())
        .collect()
}

fn zip_member(zip_path: &PathBuf, ext: &str) -> Vec<u8> {
    let file = std::fs::File::open(zip_path).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        if f.name().unwrap().to_lowercase().ends_with(ext) {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).unwrap();
            return buf;
        }
    }
    panic!("no {ext} in {}", zip_path.display());
}

fn le_i32(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le_f64(b: &[u8], at: usize) -> f64 {
    f64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Geometries (each shapefile part as one polygon ring) and the DBF attributes, in record order.
pub fn read_shapefile(zip_path: &PathBuf) -> (Vec<Option<Geometry>>, Vec<HashMap<String, String>>) {
    let shp = zip_member(zip_path, ".shp");
    let mut geoms = Vec::new();
    let mut pos = 100;
    while pos + 8 <= shp.len() {
        let len_words = u32::from_be_bytes(shp[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let rec = &shp[pos + 8..pos + 8 + 2 * len_words];
        pos += 8 + 2 * len_words;
        let shape_type = le_i32(rec, 0);
        if shape_type == 0 {
            geoms.push(None);
            continue;
        }
        assert!(matches!(shape_type, 5 | 15 | 25), "polygon expected");
        let nparts = le_i32(rec, 36) as usize;
        let npoints = le_i32(rec, 40) as usize;
        let parts: Vec<usize> = (0..nparts)
            .map(|i| le_i32(rec, 44 + 4 * i) as usize)
            .collect();
        let pts_at = 44 + 4 * nparts;
        let points: Vec<[f64; 2]> = (0..npoints)
            .map(|i| {
                [
                    le_f64(rec, pts_at + 16 * i),
                    le_f64(rec, pts_at + 16 * i + 8),
                ]
            })
            .collect();
        let polygons = (0..nparts)
            .map(|p| {
                let end = parts.get(p + 1).copied().unwrap_or(npoints);
                Polygon {
                    exterior: points[parts[p]..end].to_vec(),
                    holes: vec![],
                }
            })
            .collect();
        geoms.push(Some(Geometry::MultiPolygon(polygons)));
    }
    let dbf = zip_member(zip_path, ".dbf");
    let nrec = u32::from_le_bytes(dbf[4..8].try_into().unwrap()) as usize;
    let header_len = u16::from_le_bytes(dbf[8..10].try_into().unwrap()) as usize;
    let rec_len = u16::from_le_bytes(dbf[10..12].try_into().unwrap()) as usize;
    let mut fields = Vec::new();
    let mut at = 32;
    while dbf[at] != 0x0D {
        let name: String = dbf[at..at + 11]
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| *b as char)
            .collect();
        fields.push((name, dbf[at + 16] as usize));
        at += 32;
    }
    let mut attrs = Vec::new();
    for r in 0..nrec {
        let mut off = header_len + r * rec_len + 1;
        let mut m = HashMap::new();
        for (name, len) in &fields {
            let raw = String::from_utf8_lossy(&dbf[off..off + len])
                .trim()
                .to_string();
            m.insert(name.clone(), raw);
            off += len;
        }
        attrs.push(m);
    }
    (geoms, attrs)
}

pub fn f(s: &str) -> f64 {
    if s.is_empty() {
        f64::NAN
    } else {
        s.parse().unwrap()
    }
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * (1.0 + b.abs())
}
