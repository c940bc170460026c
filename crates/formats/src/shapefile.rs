//! ESRI shapefiles: .shp polygons, .dbf attributes, .prj/.cpg, read from an uploaded zip; and a
//! writer for the synthetic generator. Written by hand so that every malformed byte becomes an
//! error naming the file, never a panic, and vertex values stay bit-exact.

use crate::archive::{ZipEntry, base_name, read_zip_selected};
use crate::crs::{SourceCrs, TransverseMercator, parse_prj};
use crate::delimited::decode_windows_1252;
use crate::error::{Error, Result};
use crate::limits::{CANCEL_EVERY, Limits, MAX_DBF_FIELDS};
use mrpt_table::{
    Column, ColumnData, Geometry, Polygon, Ring, Table, find_ward_code_column, find_ward_column,
    signed_area,
};

/// Ward boundaries and their attribute table, row i of one matching row i of the other.
#[derive(Debug, Clone)]
pub struct WardShapes {
    /// The `.dbf` attribute table, one row per shape.
    pub attributes: Table,
    /// `None` for a null shape.
    pub geometries: Vec<Option<Geometry>>,
    /// Index of the ward-name column in `attributes` (text).
    pub ward_column: usize,
    /// Index of a `WardCode`-like column in `attributes`.
    pub code_column: Option<usize>,
    /// The coordinate system the `.prj` declared (vertices are WGS84 whatever it was).
    pub crs: SourceCrs,
    /// The .shp's name inside the archive.
    pub source: String,
}

impl WardShapes {
    /// The ward-name column as text, one per shape (`None` for a blank cell).
    pub fn ward_names(&self) -> Vec<Option<String>> {
        self.attributes.columns()[self.ward_column].data.to_text()
    }

    /// The ward-code column as text, when the attributes have one.
    pub fn ward_codes(&self) -> Option<Vec<Option<String>>> {
        self.code_column
            .map(|i| self.attributes.columns()[i].data.to_text())
    }
}

/// Reads the first shapefile of an uploaded zip (with default caps).
pub fn read_shapefile_zip(bytes: &[u8]) -> Result<WardShapes> {
    read_shapefile_zip_with(bytes, &Limits::default())
}

/// As [`read_shapefile_zip`], with explicit caps. Only the parts a shapefile needs are inflated
/// (the first `.shp`, and the `.dbf`, `.prj` and `.cpg` of the same name; the `.shx` index is not
/// needed, records are read in sequence): whatever else the zip holds costs nothing, and the
/// inflated total of those parts is bounded by `max_inflated_bytes`.
pub fn read_shapefile_zip_with(bytes: &[u8], limits: &Limits) -> Result<WardShapes> {
    if bytes.is_empty() {
        return Err(Error::Empty {
            file: "shapefile zip".into(),
        });
    }
    let ext = |name: &str, want: &str| {
        base_name(name)
            .rsplit_once('.')
            .is_some_and(|(_, e)| e.eq_ignore_ascii_case(want))
    };
    let stem = |name: &str| {
        let n = name.rsplit_once('.').map_or(name, |(s, _)| s);
        n.to_ascii_lowercase()
    };
    // Which entry is which part: indexes into the list of names.
    let mut parts: [Option<usize>; 4] = [None; 4];
    let entries = read_zip_selected(bytes, limits, |names| {
        let shp =
            names
                .iter()
                .position(|n| ext(n, "shp"))
                .ok_or_else(|| Error::ZipMissingPart {
                    missing: ".shp file",
                    found: names.to_vec(),
                })?;
        let sibling = |want: &str| {
            names
                .iter()
                .position(|n| ext(n, want) && stem(n) == stem(&names[shp]))
        };
        let dbf = sibling("dbf").ok_or_else(|| Error::ZipMissingPart {
            missing: ".dbf file next to the .shp",
            found: names.to_vec(),
        })?;
        let wanted: Vec<usize> = [Some(shp), Some(dbf), sibling("prj"), sibling("cpg")]
            .into_iter()
            .flatten()
            .collect();
        parts = [Some(shp), Some(dbf), sibling("prj"), sibling("cpg")];
        Ok(wanted)
    })?;
    // `entries` holds the wanted parts in the order given: shp, dbf, then prj and cpg if found.
    let mut it = entries.into_iter();
    let (Some(shp), Some(dbf)) = (it.next(), it.next()) else {
        return Err(Error::ZipMissingPart {
            missing: ".shp and .dbf files",
            found: Vec::new(),
        });
    };
    let prj = parts[2].and_then(|_| it.next());
    let cpg = parts[3].and_then(|_| it.next());
    let text = |e: Option<ZipEntry>| e.map(|e| String::from_utf8_lossy(&e.bytes).into_owned());
    let (prj, cpg) = (text(prj), text(cpg));
    read_shapefile_parts_with(
        &shp.bytes,
        &dbf.bytes,
        prj.as_deref(),
        cpg.as_deref(),
        base_name(&shp.name),
        limits,
    )
}

/// Reads a shapefile from its parts (.shx is not needed: records are read in sequence).
pub fn read_shapefile_parts(
    shp: &[u8],
    dbf: &[u8],
    prj: Option<&str>,
    cpg: Option<&str>,
    source: &str,
) -> Result<WardShapes> {
    read_shapefile_parts_with(shp, dbf, prj, cpg, source, &Limits::default())
}

/// [`read_shapefile_parts`] within the given caps.
pub fn read_shapefile_parts_with(
    shp: &[u8],
    dbf: &[u8],
    prj: Option<&str>,
    cpg: Option<&str>,
    source: &str,
    limits: &Limits,
) -> Result<WardShapes> {
    let (crs, transform) = match prj {
        Some(p) => parse_prj(p)?,
        None => (SourceCrs::Unspecified, None),
    };
    let mut shapes = read_shp(shp, source)?;
    let dbf_name = source
        .rsplit_once('.')
        .map_or_else(|| format!("{source}.dbf"), |(s, _)| format!("{s}.dbf"));
    let (attributes, deleted) = read_dbf(dbf, cpg, &dbf_name, shapes.len(), limits)?;
    let attributes = if deleted.iter().any(|&d| d) {
        let keep: Vec<usize> = (0..deleted.len()).filter(|&i| !deleted[i]).collect();
        shapes = keep.iter().map(|&i| shapes[i].take()).collect();
        attributes.take_rows(&keep)
    } else {
        attributes
    };
    if let Some(tm) = transform {
        for g in shapes.iter_mut().flatten() {
            project_inverse(g, &tm);
        }
    } else if let Some(v) = shapes
        .iter()
        .flatten()
        .flat_map(|g| g.vertices())
        .find(|v| !(v[0].abs() <= 180.0 && v[1].abs() <= 90.0))
    {
        return Err(Error::UnsupportedCrs {
            reason: format!(
                "coordinates such as ({}, {}) are not longitude/latitude and no projection is declared",
                v[0], v[1]
            ),
        });
    }
    let ward_column =
        find_ward_column(&attributes).ok_or_else(|| mrpt_table::Error::NoWardColumn {
            found: attributes.column_names(),
        })?;
    let code_column = find_ward_code_column(&attributes);
    Ok(WardShapes {
        attributes,
        geometries: shapes,
        ward_column,
        code_column,
        crs,
        source: source.to_string(),
    })
}

fn project_inverse(g: &mut Geometry, tm: &TransverseMercator) {
    let polys: &mut [Polygon] = match g {
        Geometry::Polygon(p) => std::slice::from_mut(p),
        Geometry::MultiPolygon(v) => v,
    };
    for p in polys {
        for v in p.exterior.iter_mut().chain(p.holes.iter_mut().flatten()) {
            *v = tm.inverse(v[0], v[1]);
        }
    }
}

fn shape_type_name(code: i32) -> &'static str {
    match code {
        1 | 11 | 21 => "point",
        3 | 13 | 23 => "polyline",
        8 | 18 | 28 => "multipoint",
        31 => "multipatch",
        _ => "unknown",
    }
}

struct Bytes<'a> {
    data: &'a [u8],
    file: &'a str,
}

impl Bytes<'_> {
    fn slice(&self, at: usize, len: usize) -> Result<&[u8]> {
        at.checked_add(len)
            .and_then(|end| self.data.get(at..end))
            .ok_or_else(|| {
                self.corrupt(format!(
                    "needs {len} bytes at offset {at}; the file has {}",
                    self.data.len()
                ))
            })
    }
    fn corrupt(&self, reason: String) -> Error {
        Error::CorruptShapefile {
            file: self.file.to_string(),
            reason,
        }
    }
    fn i32_be(&self, at: usize) -> Result<i32> {
        let s = self.slice(at, 4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn i32_le(&self, at: usize) -> Result<i32> {
        let s = self.slice(at, 4)?;
        Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn f64_le(&self, at: usize) -> Result<f64> {
        let s = self.slice(at, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(f64::from_le_bytes(a))
    }
}

fn read_shp(data: &[u8], file: &str) -> Result<Vec<Option<Geometry>>> {
    let b = Bytes { data, file };
    if data.len() < 100 {
        return Err(b.corrupt(format!(
            "{} bytes is shorter than the 100-byte header",
            data.len()
        )));
    }
    if b.i32_be(0)? != 9994 {
        return Err(b.corrupt("the file code is not 9994: not a .shp file".into()));
    }
    let shape_type = b.i32_le(32)?;
    if !matches!(shape_type, 0 | 5 | 15 | 25) {
        return Err(Error::UnsupportedShapeType {
            code: shape_type,
            name: shape_type_name(shape_type),
        });
    }
    let declared_len = (b.i32_be(24)?.max(0) as usize).saturating_mul(2);
    let end = declared_len.min(data.len());
    let mut out = Vec::new();
    let mut at = 100;
    while at + 8 <= end {
        if out.len().is_multiple_of(CANCEL_EVERY) && mrpt_table::cancel::cancelled() {
            return Err(Error::Cancelled);
        }
        let content_words = b.i32_be(at + 4)?;
        if content_words < 2 {
            return Err(b.corrupt(format!(
                "record {} has length {content_words}",
                out.len() + 1
            )));
        }
        let content_len = content_words as usize * 2;
        let content = b.slice(at + 8, content_len)?;
        out.push(read_record(
            &Bytes {
                data: content,
                file,
            },
            out.len() + 1,
        )?);
        at += 8 + content_len;
    }
    Ok(out)
}

fn read_record(b: &Bytes, number: usize) -> Result<Option<Geometry>> {
    let kind = b.i32_le(0)?;
    match kind {
        0 => return Ok(None),
        5 | 15 | 25 => {}
        other => {
            return Err(b.corrupt(format!(
                "record {number} has shape type {other} in a polygon file"
            )));
        }
    }
    let n_parts = b.i32_le(36)?;
    let n_points = b.i32_le(40)?;
    if n_parts < 0 || n_points < 0 {
        return Err(b.corrupt(format!("record {number} has negative counts")));
    }
    let (n_parts, n_points) = (n_parts as usize, n_points as usize);
    if n_parts == 0 || n_points == 0 {
        return Ok(None);
    }
    let parts_at = 44;
    let points_at = parts_at + 4 * n_parts;
    // Bounds first, so corrupt counts cannot make us allocate.
    b.slice(points_at, n_points.saturating_mul(16))?;
    let mut starts = Vec::with_capacity(n_parts);
    for i in 0..n_parts {
        let s = b.i32_le(parts_at + 4 * i)?;
        if s < 0
            || s as usize >= n_points
            || starts.last().is_some_and(|&p| s as usize <= p)
            || (i == 0 && s != 0)
        {
            return Err(b.corrupt(format!("record {number} has an invalid part index {s}")));
        }
        starts.push(s as usize);
    }
    let mut rings: Vec<Ring> = Vec::with_capacity(n_parts);
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(n_points);
        let mut ring = Vec::with_capacity(e - s);
        for k in s..e {
            let at = points_at + 16 * k;
            ring.push([b.f64_le(at)?, b.f64_le(at + 8)?]);
        }
        rings.push(ring);
    }
    Ok(Some(organise_rings(rings)))
}

/// Shapefile rings -> polygons: clockwise rings are exteriors, counter-clockwise rings are holes
/// of the exterior that contains them (GDAL's rule). Without any clockwise ring every ring is an
/// exterior. One exterior gives a Polygon, several a MultiPolygon.
fn organise_rings(rings: Vec<Ring>) -> Geometry {
    let clockwise: Vec<bool> = rings.iter().map(|r| signed_area(r) < 0.0).collect();
    let any_cw = clockwise.iter().any(|&c| c);
    let mut polygons: Vec<Polygon> = Vec::new();
    let mut holes: Vec<Ring> = Vec::new();
    for (ring, cw) in rings.into_iter().zip(clockwise) {
        if cw || !any_cw {
            polygons.push(Polygon {
                exterior: ring,
                holes: vec![],
            });
        } else {
            holes.push(ring);
        }
    }
    for hole in holes {
        let probe = hole.first().copied().unwrap_or([0.0, 0.0]);
        match polygons
            .iter_mut()
            .find(|p| point_in_ring(probe, &p.exterior))
        {
            Some(p) => p.holes.push(hole),
            None => polygons.push(Polygon {
                exterior: hole,
                holes: vec![],
            }),
        }
    }
    if polygons.len() == 1 {
        Geometry::Polygon(polygons.remove(0))
    } else {
        Geometry::MultiPolygon(polygons)
    }
}

fn point_in_ring(p: [f64; 2], ring: &[[f64; 2]]) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    inside
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Utf8,
    Windows1252,
    Guess,
}

/// The .cpg decides; without one we guess per cell (UTF-8 if valid, else Windows-1252), since
/// the header's language driver byte is unreliable in exports from QGIS and ArcGIS.
fn dbf_encoding(cpg: Option<&str>) -> Encoding {
    if let Some(c) = cpg {
        let c = c.trim().to_ascii_uppercase();
        if c.contains("UTF") && c.contains('8') {
            return Encoding::Utf8;
        }
        if c.contains("1252") || c.contains("8859") || c.contains("LATIN") {
            return Encoding::Windows1252;
        }
    }
    Encoding::Guess
}

fn decode(bytes: &[u8], enc: Encoding) -> String {
    match enc {
        Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Encoding::Windows1252 => decode_windows_1252(bytes),
        Encoding::Guess => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => decode_windows_1252(bytes),
        },
    }
}

struct Field {
    name: String,
    kind: u8,
    len: usize,
    decimals: u8,
}

/// Reads a .dbf: the typed table and, per record, whether it is marked deleted. Everything the
/// header claims is checked before anything is allocated for it: at most [`MAX_DBF_FIELDS`]
/// (and `max_columns`) fields, none of length 0, as many records as the .shp has shapes, and
/// records x fields within `max_cells`.
fn read_dbf(
    data: &[u8],
    cpg: Option<&str>,
    file: &str,
    shapes: usize,
    limits: &Limits,
) -> Result<(Table, Vec<bool>)> {
    let b = Bytes { data, file };
    if data.len() < 32 {
        return Err(b.corrupt(format!(
            "{} bytes is shorter than the 32-byte header",
            data.len()
        )));
    }
    let n_records = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    let header_len = u16::from_le_bytes([data[8], data[9]]) as usize;
    let record_len = u16::from_le_bytes([data[10], data[11]]) as usize;
    let enc = dbf_encoding(cpg);
    let mut fields = Vec::new();
    let mut at = 32;
    let max_fields = MAX_DBF_FIELDS.min(limits.max_columns);
    while at < header_len.min(data.len()) && data[at] != 0x0D {
        if fields.len() == max_fields {
            return Err(b.corrupt(format!(
                "the attribute table declares more than {max_fields} fields"
            )));
        }
        let d = b.slice(at, 32)?;
        let raw_name: Vec<u8> = d[..11].iter().copied().take_while(|&c| c != 0).collect();
        fields.push(Field {
            name: decode(&raw_name, enc).trim().to_string(),
            kind: d[11].to_ascii_uppercase(),
            len: d[16] as usize,
            decimals: d[17],
        });
        at += 32;
    }
    if fields.is_empty() {
        return Err(b.corrupt("the attribute table declares no fields".into()));
    }
    if let Some(i) = fields.iter().position(|f| f.len == 0) {
        return Err(b.corrupt(format!(
            "field {} (`{}`) has length 0",
            i + 1,
            fields[i].name
        )));
    }
    let width: usize = 1 + fields.iter().map(|f| f.len).sum::<usize>();
    if width != record_len {
        return Err(b.corrupt(format!(
            "fields add up to {width} bytes but records are {record_len} bytes"
        )));
    }
    if n_records != shapes {
        return Err(Error::RecordCountMismatch {
            shapes,
            records: n_records,
        });
    }
    if n_records.saturating_mul(fields.len()) > limits.max_cells {
        return Err(Error::TooManyCells {
            file: file.into(),
            what: format!("{n_records} records of {} fields", fields.len()),
            max: limits.max_cells,
        });
    }
    b.slice(header_len, n_records.saturating_mul(record_len))?;
    let mut raw: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(n_records); fields.len()];
    let mut deleted = Vec::with_capacity(n_records);
    for r in 0..n_records {
        if r.is_multiple_of(CANCEL_EVERY) && mrpt_table::cancel::cancelled() {
            return Err(Error::Cancelled);
        }
        let rec = b.slice(header_len + r * record_len, record_len)?;
        deleted.push(rec[0] == b'*');
        let mut p = 1;
        for (i, f) in fields.iter().enumerate() {
            let cell = &rec[p..p + f.len];
            p += f.len;
            let text = decode(cell, enc);
            let text = text.trim_end_matches([' ', '\0']);
            let text = if f.kind == b'C' { text } else { text.trim() };
            raw[i].push((!text.is_empty()).then(|| text.to_string()));
        }
    }
    let names = crate::delimited::pandas_column_names(
        &fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
    );
    let mut columns = Vec::with_capacity(fields.len());
    for ((f, name), cells) in fields.iter().zip(names).zip(raw) {
        columns.push(Column {
            name,
            data: dbf_column(f, cells),
        });
    }
    Ok((Table::new(columns)?, deleted))
}

fn dbf_column(f: &Field, cells: Vec<Option<String>>) -> ColumnData {
    match f.kind {
        b'N' | b'F' => {
            let nums: Vec<Option<f64>> = cells
                .iter()
                .map(|c| c.as_deref().and_then(|s| s.parse::<f64>().ok()))
                .collect();
            let complete = nums.iter().all(Option::is_some);
            if f.decimals == 0
                && complete
                && nums
                    .iter()
                    .flatten()
                    .all(|x| x.fract() == 0.0 && x.abs() < 9.0e15)
            {
                ColumnData::Int(nums.iter().map(|x| x.map(|v| v as i64)).collect())
            } else {
                ColumnData::Float(nums)
            }
        }
        b'D' => ColumnData::Text(
            cells
                .into_iter()
                .map(|c| {
                    c.map(
                        |s| match s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
                            true => format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..]),
                            false => s,
                        },
                    )
                })
                .collect(),
        ),
        _ => ColumnData::Text(cells),
    }
}

/// The three files of a written shapefile.
#[derive(Debug, Clone)]
pub struct ShapefileBytes {
    /// The `.shp` (geometries).
    pub shp: Vec<u8>,
    /// The `.shx` (offsets of each record in the `.shp`).
    pub shx: Vec<u8>,
    /// The `.dbf` (attribute table, dBASE III).
    pub dbf: Vec<u8>,
}

/// Writes polygons and their attributes (text, int and float columns) as .shp/.shx/.dbf
/// (UTF-8 text; pair with a `.cpg` of "UTF-8" and a WGS84 `.prj`). Rings are written as given,
/// so exteriors must be clockwise.
pub fn write_shapefile(
    geometries: &[Option<Geometry>],
    attributes: &Table,
) -> Result<ShapefileBytes> {
    if attributes.n_rows() != geometries.len() {
        return Err(Error::GeometryCount {
            rows: attributes.n_rows(),
            geometries: geometries.len(),
        });
    }
    let mut shp = vec![0u8; 100];
    let mut shx = vec![0u8; 100];
    let mut bbox = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for (i, g) in geometries.iter().enumerate() {
        let offset_words = (shp.len() / 2) as i32;
        let mut content = Vec::new();
        match g {
            None => content.extend_from_slice(&0i32.to_le_bytes()),
            Some(g) => {
                let rings: Vec<&Ring> = g.polygons().iter().flat_map(|p| p.rings()).collect();
                let b = g.bbox().unwrap_or([0.0; 4]);
                for k in 0..2 {
                    bbox[k] = bbox[k].min(b[k]);
                    bbox[k + 2] = bbox[k + 2].max(b[k + 2]);
                }
                content.extend_from_slice(&5i32.to_le_bytes());
                for v in b {
                    content.extend_from_slice(&v.to_le_bytes());
                }
                let n_points: usize = rings.iter().map(|r| r.len()).sum();
                content.extend_from_slice(&(rings.len() as i32).to_le_bytes());
                content.extend_from_slice(&(n_points as i32).to_le_bytes());
                let mut start = 0i32;
                for r in &rings {
                    content.extend_from_slice(&start.to_le_bytes());
                    start += r.len() as i32;
                }
                for r in &rings {
                    for v in r.iter() {
                        content.extend_from_slice(&v[0].to_le_bytes());
                        content.extend_from_slice(&v[1].to_le_bytes());
                    }
                }
            }
        }
        let words = (content.len() / 2) as i32;
        shp.extend_from_slice(&(i as i32 + 1).to_be_bytes());
        shp.extend_from_slice(&words.to_be_bytes());
        shp.extend_from_slice(&content);
        shx.extend_from_slice(&offset_words.to_be_bytes());
        shx.extend_from_slice(&words.to_be_bytes());
    }
    if !bbox[0].is_finite() {
        bbox = [0.0; 4];
    }
    for (buf, kind) in [(&mut shp, 5i32), (&mut shx, 5i32)] {
        let len_words = (buf.len() / 2) as i32;
        buf[0..4].copy_from_slice(&9994i32.to_be_bytes());
        buf[24..28].copy_from_slice(&len_words.to_be_bytes());
        buf[28..32].copy_from_slice(&1000i32.to_le_bytes());
        buf[32..36].copy_from_slice(&kind.to_le_bytes());
        for (k, v) in bbox.iter().enumerate() {
            buf[36 + 8 * k..44 + 8 * k].copy_from_slice(&v.to_le_bytes());
        }
    }
    Ok(ShapefileBytes {
        shp,
        shx,
        dbf: write_dbf(attributes),
    })
}

fn write_dbf(table: &Table) -> Vec<u8> {
    struct Out {
        name: [u8; 11],
        kind: u8,
        len: usize,
        decimals: u8,
        cells: Vec<String>,
    }
    let mut fields = Vec::new();
    for c in table.columns() {
        let mut name = [0u8; 11];
        for (i, b) in c.name.bytes().filter(u8::is_ascii).take(10).enumerate() {
            name[i] = b;
        }
        let (kind, decimals, cells): (u8, u8, Vec<String>) = match &c.data {
            ColumnData::Text(v) => (
                b'C',
                0,
                v.iter().map(|s| s.clone().unwrap_or_default()).collect(),
            ),
            ColumnData::Int(v) => (
                b'N',
                0,
                v.iter()
                    .map(|x| x.map(|i| i.to_string()).unwrap_or_default())
                    .collect(),
            ),
            ColumnData::Float(v) => (
                b'N',
                10,
                v.iter()
                    .map(|x| {
                        x.filter(|f| f.is_finite())
                            .map(|f| format!("{f:.10}"))
                            .unwrap_or_default()
                    })
                    .collect(),
            ),
            ColumnData::Bool(v) => (
                b'L',
                0,
                v.iter()
                    .map(|x| match x {
                        Some(true) => "T".into(),
                        Some(false) => "F".into(),
                        None => "?".into(),
                    })
                    .collect(),
            ),
        };
        let cap = if kind == b'C' { 254 } else { 32 };
        let len = cells
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(1)
            .clamp(1, cap);
        fields.push(Out {
            name,
            kind,
            len,
            decimals,
            cells,
        });
    }
    let header_len = 32 + 32 * fields.len() + 1;
    let record_len = 1 + fields.iter().map(|f| f.len).sum::<usize>();
    let mut out = Vec::with_capacity(header_len + record_len * table.n_rows() + 1);
    out.push(0x03);
    out.extend_from_slice(&[126, 1, 1]); // fixed date (2026-01-01) keeps output reproducible
    out.extend_from_slice(&(table.n_rows() as u32).to_le_bytes());
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(&(record_len as u16).to_le_bytes());
    out.extend_from_slice(&[0u8; 20]);
    for f in &fields {
        out.extend_from_slice(&f.name);
        out.push(f.kind);
        out.extend_from_slice(&[0u8; 4]);
        out.push(f.len as u8);
        out.push(f.decimals);
        out.extend_from_slice(&[0u8; 14]);
    }
    out.push(0x0D);
    for r in 0..table.n_rows() {
        out.push(b' ');
        for f in &fields {
            let cell = f.cells[r].as_bytes();
            // Truncate on a char boundary so the text stays valid UTF-8.
            let mut take = cell.len().min(f.len);
            while take > 0 && take < cell.len() && (cell[take] & 0xC0) == 0x80 {
                take -= 1;
            }
            let pad = f.len - take;
            if f.kind == b'N' {
                out.extend(std::iter::repeat_n(b' ', pad));
                out.extend_from_slice(&cell[..take]);
            } else {
                out.extend_from_slice(&cell[..take]);
                out.extend(std::iter::repeat_n(b' ', pad));
            }
        }
    }
    out.push(0x1A);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn square(x0: f64, y0: f64, s: f64, clockwise: bool) -> Ring {
        let mut r = vec![
            [x0, y0],
            [x0 + s, y0],
            [x0 + s, y0 + s],
            [x0, y0 + s],
            [x0, y0],
        ];
        if clockwise {
            r.reverse();
        }
        r
    }

    #[test]
    fn write_then_read_keeps_vertices_and_holes() {
        let geoms = vec![
            Some(Geometry::Polygon(Polygon {
                exterior: square(8.0, 12.0, 0.3, true),
                holes: vec![square(8.1, 12.1, 0.05, false)],
            })),
            Some(Geometry::MultiPolygon(vec![
                Polygon {
                    exterior: square(9.0, 11.0, 0.1, true),
                    holes: vec![],
                },
                Polygon {
                    exterior: square(9.5, 11.0, 0.1 / 3.0, true),
                    holes: vec![],
                },
            ])),
            None,
        ];
        let attrs = Table::new(vec![
            Column {
                name: "WardName".into(),
                data: ColumnData::Text(vec![
                    Some("Kofé".into()),
                    Some("B".into()),
                    Some("C".into()),
                ]),
            },
            Column {
                name: "Pop".into(),
                data: ColumnData::Int(vec![Some(5), Some(-7), Some(0)]),
            },
            Column {
                name: "x".into(),
                data: ColumnData::Float(vec![Some(0.25), None, Some(-1.5)]),
            },
        ])
        .unwrap();
        let out = write_shapefile(&geoms, &attrs).unwrap();
        let back = read_shapefile_parts(&out.shp, &out.dbf, None, Some("UTF-8"), "t.shp").unwrap();
        assert_eq!(back.geometries, geoms);
        assert_eq!(back.ward_names()[0].as_deref(), Some("Kofé"));
        assert_eq!(
            back.attributes.column("Pop").unwrap().data,
            ColumnData::Int(vec![Some(5), Some(-7), Some(0)])
        );
        assert_eq!(
            back.attributes.column("x").unwrap().data,
            ColumnData::Float(vec![Some(0.25), None, Some(-1.5)])
        );
    }

    #[test]
    fn utm_shapes_are_converted_and_unlabelled_metres_refused() {
        let prj = r#"PROJCS["WGS_1984_UTM_Zone_32N",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",9.0],PARAMETER["Scale_Factor",0.9996],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]"#;
        let (_, tm) = parse_prj(prj).unwrap();
        let tm = tm.unwrap();
        let lonlat = [
            [8.50, 12.00],
            [8.50, 12.01],
            [8.51, 12.01],
            [8.51, 12.00],
            [8.50, 12.00],
        ];
        let projected: Ring = lonlat.iter().map(|v| tm.forward(v[0], v[1])).collect();
        let geoms = vec![Some(Geometry::Polygon(Polygon {
            exterior: projected,
            holes: vec![],
        }))];
        let attrs = Table::new(vec![Column {
            name: "WardName".into(),
            data: ColumnData::Text(vec![Some("A".into())]),
        }])
        .unwrap();
        let out = write_shapefile(&geoms, &attrs).unwrap();
        let back = read_shapefile_parts(&out.shp, &out.dbf, Some(prj), None, "utm.shp").unwrap();
        assert!(matches!(back.crs, SourceCrs::TransverseMercator { .. }));
        let got = back.geometries[0].as_ref().unwrap().polygons()[0]
            .exterior
            .clone();
        for (g, want) in got.iter().zip(lonlat) {
            assert!(
                (g[0] - want[0]).abs() < 1e-9 && (g[1] - want[1]).abs() < 1e-9,
                "{g:?}"
            );
        }
        assert!(matches!(
            read_shapefile_parts(&out.shp, &out.dbf, None, None, "utm.shp"),
            Err(Error::UnsupportedCrs { .. })
        ));
    }

    #[test]
    fn corrupt_shp_is_an_error() {
        let geoms = vec![Some(Geometry::Polygon(Polygon {
            exterior: square(1.0, 1.0, 1.0, true),
            holes: vec![],
        }))];
        let attrs = Table::new(vec![Column {
            name: "WardName".into(),
            data: ColumnData::Text(vec![Some("A".into())]),
        }])
        .unwrap();
        let out = write_shapefile(&geoms, &attrs).unwrap();
        // Truncated record.
        let cut = &out.shp[..out.shp.len() - 20];
        assert!(matches!(
            read_shapefile_parts(cut, &out.dbf, None, None, "t.shp"),
            Err(Error::CorruptShapefile { .. })
        ));
        // Absurd point count.
        let mut bad = out.shp.clone();
        bad[100 + 8 + 40..100 + 8 + 44].copy_from_slice(&i32::MAX.to_le_bytes());
        assert!(matches!(
            read_shapefile_parts(&bad, &out.dbf, None, None, "t.shp"),
            Err(Error::CorruptShapefile { .. })
        ));
        // Not a shapefile at all.
        assert!(matches!(
            read_shapefile_parts(&[7u8; 300], &out.dbf, None, None, "t.shp"),
            Err(Error::CorruptShapefile { .. })
        ));
        // Point file.
        let mut pts = out.shp.clone();
        pts[32..36].copy_from_slice(&1i32.to_le_bytes());
        assert!(matches!(
            read_shapefile_parts(&pts, &out.dbf, None, None, "t.shp"),
            Err(Error::UnsupportedShapeType { code: 1, .. })
        ));
        // Corrupt dbf.
        assert!(matches!(
            read_shapefile_parts(&out.shp, &out.dbf[..40], None, None, "t.shp"),
            Err(Error::CorruptShapefile { .. })
        ));
    }
}
