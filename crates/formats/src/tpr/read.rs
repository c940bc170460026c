//! Reading a facility export (tpr.md §1): CSV streamed record by record (national exports run
//! to hundreds of MB), XLSX/XLS through calamine; header detection, header repair, the column
//! mapping, count parsing, duplicate columns, facility levels, periods, the DHIS2 prefix and
//! the ward keys.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;

use mrpt_table::tpr::{
    ColumnMapping, Facility, FacilityExport, FacilityLevel, INDICATOR_SLOTS, Indicator, Lga,
    NONE_ID, ReadWarnings, Row, State, StructuralField, Ward, norm_name,
};

use super::mapping::{Layout, apply_override, apply_rules, describe, is_placeholder};
use super::rules::{decode_cell, header_looks_known, repair_header};
use crate::error::{Error, Result};
use crate::workbook::{OLE_MAGIC, ZIP_MAGIC};

/// The header must be among the first rows that hold anything (tpr.md §1.2).
const HEADER_SEARCH_ROWS: usize = 20;

/// What the caller may set when reading.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Explicit mapping (tpr.md §2.4): field -> exact header (after repair), `None` unmaps.
    pub mapping: BTreeMap<String, Option<String>>,
    /// Data rows beyond this are refused (a clear error instead of unbounded memory).
    pub max_rows: usize,
    /// Header cells beyond this are refused.
    pub max_columns: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            mapping: BTreeMap::new(),
            max_rows: 5_000_000,
            max_columns: 1_000,
        }
    }
}

/// Reads an export held in memory: `.csv` (or Excel bytes under a `.csv` name), `.xlsx`, `.xls`.
pub fn read_facility_export(
    bytes: &[u8],
    file_name: &str,
    options: &ReadOptions,
) -> Result<FacilityExport> {
    if bytes.is_empty() {
        return Err(Error::Empty {
            file: file_name.into(),
        });
    }
    let excel = bytes.starts_with(ZIP_MAGIC) || bytes.starts_with(OLE_MAGIC);
    match extension(file_name).as_str() {
        "xlsx" | "xls" | "xlsm" => read_workbook_export(bytes, file_name, options),
        "csv" if excel => read_workbook_export(bytes, file_name, options),
        "csv" => read_csv_export(bytes, file_name, options),
        _ => Err(Error::TprFileType {
            file: file_name.into(),
        }),
    }
}

fn extension(file_name: &str) -> String {
    file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Cells of one row, whatever the source.
trait RowCells {
    fn width(&self) -> usize;
    fn cell(&self, i: usize) -> Option<Cow<'_, str>>;
    /// The cell's bytes, undecoded (count cells are parsed from them directly).
    fn raw(&self, i: usize) -> Option<&[u8]>;
    fn is_blank(&self) -> bool {
        (0..self.width()).all(|i| self.cell(i).is_none_or(|c| c.trim().is_empty()))
    }
}

impl RowCells for csv::ByteRecord {
    fn width(&self) -> usize {
        self.len()
    }
    fn cell(&self, i: usize) -> Option<Cow<'_, str>> {
        self.get(i).map(decode_cell)
    }
    fn raw(&self, i: usize) -> Option<&[u8]> {
        self.get(i)
    }
    fn is_blank(&self) -> bool {
        self.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
    }
}

impl RowCells for Vec<Option<String>> {
    fn width(&self) -> usize {
        self.len()
    }
    fn cell(&self, i: usize) -> Option<Cow<'_, str>> {
        self.get(i).and_then(|c| c.as_deref()).map(Cow::Borrowed)
    }
    fn raw(&self, i: usize) -> Option<&[u8]> {
        self.get(i).and_then(|c| c.as_deref()).map(str::as_bytes)
    }
}

/// Reads a CSV export from any reader, one record at a time.
pub fn read_csv_export<R: Read + Send>(
    mut reader: R,
    file_name: &str,
    options: &ReadOptions,
) -> Result<FacilityExport> {
    let io = |source| Error::Io {
        path: file_name.into(),
        source,
    };
    let mut head = Vec::with_capacity(64 * 1024);
    reader
        .by_ref()
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(io)?;
    let start = if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    };
    if head[start..].iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Empty {
            file: file_name.into(),
        });
    }
    if head.contains(&0) {
        return Err(Error::Binary {
            file: file_name.into(),
            reason: "it contains NUL bytes".into(),
        });
    }
    let delimiter = detect_delimiter(&head[start..]);
    let source = std::io::Cursor::new(head[start..].to_vec()).chain(reader);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(256 * 1024)
        .from_reader(source);
    let mut record = csv::ByteRecord::new();
    let syntax = |e: csv::Error| Error::CsvSyntax {
        file: file_name.into(),
        line: e.position().map_or(0, |p| p.line() as usize),
        reason: e.to_string(),
    };
    // Header detection over the first non-empty records.
    let mut seen = 0usize;
    let (header_index, raw_header) = loop {
        if !rdr.read_byte_record(&mut record).map_err(syntax)? {
            return Err(Error::NoHeaderRow {
                file: file_name.into(),
            });
        }
        if record.is_blank() {
            continue;
        }
        seen += 1;
        if let Some(h) = header_candidate(&record) {
            // Physical row = newlines before the record (the csv crate's line numbers drift
            // on CRLF files).
            let mut at = record.position().map_or(0, |p| p.byte() as usize);
            let body = &head[start..];
            // The recorded start may sit on the line end before the record.
            while at < body.len() && matches!(body[at], b'\r' | b'\n') {
                at += 1;
            }
            let index = if at <= body.len() {
                body[..at].iter().filter(|b| **b == b'\n').count()
            } else {
                record
                    .position()
                    .map_or(1, |p| p.line() as usize)
                    .saturating_sub(1)
            };
            break (index, h);
        }
        if seen >= HEADER_SEARCH_ROWS {
            return Err(Error::NoHeaderRow {
                file: file_name.into(),
            });
        }
    };
    let mut builder = Builder::new(file_name, header_index, raw_header, options)?;
    // CSV parsing (a third of the time on a national export) runs on a second thread, a batch
    // of records at a time; batches go back for reuse, so memory stays at a few batches.
    const BATCH: usize = 4096;
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Result<Vec<csv::ByteRecord>>>(4);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<csv::ByteRecord>>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            loop {
                let mut batch = empty_rx.try_recv().unwrap_or_default();
                batch.resize_with(BATCH, csv::ByteRecord::new);
                let mut n = 0;
                while n < BATCH {
                    match rdr.read_byte_record(&mut batch[n]) {
                        Ok(true) => n += 1,
                        Ok(false) => break,
                        Err(e) => {
                            let _ = full_tx.send(Err(syntax(e)));
                            return;
                        }
                    }
                }
                batch.truncate(n);
                let last = n < BATCH;
                // The receiver has gone when the builder stopped early (an error).
                if full_tx.send(Ok(batch)).is_err() || last {
                    return;
                }
            }
        });
        for batch in full_rx {
            let batch = batch?;
            for record in &batch {
                builder.push(record)?;
            }
            let _ = empty_tx.send(batch);
        }
        Ok::<(), Error>(())
    })?;
    builder.finish()
}

/// `;` when the header-like lines hold more `;` than `,` (tpr.md §1.1).
fn detect_delimiter(head: &[u8]) -> u8 {
    let text = decode_cell(head);
    let best = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(HEADER_SEARCH_ROWS)
        .map(|l| (l.matches(',').count(), l.matches(';').count()))
        .max_by_key(|(c, s)| c + s)
        .unwrap_or((0, 0));
    if best.1 > best.0 { b';' } else { b',' }
}

/// The repaired header when the row passes tpr.md §1.2: at least 3 non-empty cells, none a
/// number, at least one a known structural name or an indicator.
fn header_candidate(row: &impl RowCells) -> Option<Vec<String>> {
    let cells: Vec<String> = (0..row.width())
        .map(|i| {
            row.cell(i)
                .map(|c| c.trim().to_string())
                .unwrap_or_default()
        })
        .collect();
    let filled: Vec<&String> = cells.iter().filter(|c| !c.is_empty()).collect();
    if filled.len() < 3 {
        return None;
    }
    if filled
        .iter()
        .any(|c| c.replace(',', "").trim().parse::<f64>().is_ok())
    {
        return None;
    }
    let repaired: Vec<String> = cells.iter().map(|c| repair_header(c)).collect();
    repaired
        .iter()
        .any(|h| !h.is_empty() && header_looks_known(h))
        .then_some(repaired)
}

/// Reads the first sheet of a workbook.
fn read_workbook_export(
    bytes: &[u8],
    file_name: &str,
    options: &ReadOptions,
) -> Result<FacilityExport> {
    let range = crate::error::contain_panic(
        |reason| Error::NotExcel {
            file: file_name.into(),
            reason,
        },
        || first_sheet(bytes, file_name, options),
    )?;
    let offset = range.start().map_or(0, |(r, _)| r as usize);
    let mut rows = range.rows().enumerate();
    let mut seen = 0usize;
    let (header_index, raw_header) = loop {
        let Some((i, row)) = rows.next() else {
            return Err(Error::NoHeaderRow {
                file: file_name.into(),
            });
        };
        let cells: Vec<Option<String>> = row.iter().map(workbook_cell).collect();
        if cells.is_blank() {
            continue;
        }
        seen += 1;
        if let Some(h) = header_candidate(&cells) {
            break (offset + i, h);
        }
        if seen >= HEADER_SEARCH_ROWS {
            return Err(Error::NoHeaderRow {
                file: file_name.into(),
            });
        }
    };
    let mut builder = Builder::new(file_name, header_index, raw_header, options)?;
    for (_, row) in rows {
        let cells: Vec<Option<String>> = row.iter().map(workbook_cell).collect();
        builder.push(&cells)?;
    }
    builder.finish()
}

/// The first sheet, within the default caps (the used range is checked while the cells stream
/// in, before calamine allocates it; see `workbook::first_sheet_range`).
fn first_sheet(
    bytes: &[u8],
    file_name: &str,
    options: &ReadOptions,
) -> Result<calamine::Range<calamine::Data>> {
    let limits = crate::Limits {
        max_columns: options.max_columns,
        ..crate::Limits::default()
    };
    crate::workbook::first_sheet_range(bytes, file_name, &limits)
}

/// A workbook cell as text; Excel's integral floats (`202101.0`) as their integer text.
fn workbook_cell(cell: &calamine::Data) -> Option<String> {
    use calamine::Data;
    match cell {
        Data::Empty | Data::Error(_) => None,
        Data::Int(i) => Some(i.to_string()),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(format!("{}", *f as i64)),
        Data::Float(f) => Some(mrpt_table::python_float_repr(*f)),
        Data::Bool(b) => Some(if *b { "TRUE" } else { "FALSE" }.to_string()),
        Data::String(s) => Some(s.clone()),
        // A date-formatted period cell (`2021-01-01` typed into Excel) as ISO text, so the
        // period rules see its year and month rather than the serial number.
        Data::DateTime(d) if d.is_datetime() => {
            let (y, m, day, ..) = d.to_ymd_hms_milli();
            Some(format!("{y:04}-{m:02}-{day:02}"))
        }
        Data::DateTime(d) => Some(d.to_string()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Some(s.clone()),
    }
}

/// A count cell (tpr.md §1.5).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Count {
    Blank,
    Value(f64),
    NonNumeric,
    Negative,
}

/// A count cell from its bytes: plain non-negative integers (nearly every cell of a national
/// export) and empty cells without decoding, anything else through [`parse_count`].
fn parse_count_bytes(b: &[u8]) -> Count {
    if b.is_empty() {
        return Count::Blank;
    }
    if b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        let v = b.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        return Count::Value(v as f64);
    }
    parse_count(&decode_cell(b))
}

fn parse_count(cell: &str) -> Count {
    let t = cell.trim();
    if t.is_empty() {
        return Count::Blank;
    }
    let parsed = if t.contains(',') {
        t.replace(',', "").parse::<f64>()
    } else {
        t.parse::<f64>()
    };
    match parsed {
        Ok(v) if v.is_finite() && v < 0.0 => Count::Negative,
        Ok(v) if v.is_finite() => Count::Value(v),
        _ => Count::NonNumeric,
    }
}

/// §1.6 from the level cell.
pub fn level_from_cell(cell: &str) -> FacilityLevel {
    let l = cell.trim().to_lowercase();
    if l.is_empty() {
        FacilityLevel::Unknown
    } else if l.contains("primary") || l == "phc" {
        FacilityLevel::Primary
    } else if l.contains("secondary") {
        FacilityLevel::Secondary
    } else if l.contains("tertiary") {
        FacilityLevel::Tertiary
    } else {
        FacilityLevel::Other
    }
}

/// §1.6 name cues (used only without a level column, reported always).
pub fn level_from_name(name: &str) -> FacilityLevel {
    const TERTIARY: [&str; 4] = [
        "teaching hospital",
        "federal medical cent",
        "university",
        "national hospital",
    ];
    const SECONDARY: [&str; 5] = [
        "general hospital",
        "cottage hospital",
        "specialist hospital",
        "district hospital",
        "state hospital",
    ];
    const PRIMARY: [&str; 8] = [
        "primary health",
        "phc",
        "health post",
        "health centre",
        "health center",
        "clinic",
        "dispensary",
        "maternity",
    ];
    let n = name.to_lowercase();
    if TERTIARY.iter().any(|c| n.contains(c)) {
        FacilityLevel::Tertiary
    } else if SECONDARY.iter().any(|c| n.contains(c)) {
        FacilityLevel::Secondary
    } else if PRIMARY.iter().any(|c| n.contains(c)) {
        FacilityLevel::Primary
    } else {
        FacilityLevel::Unknown
    }
}

/// §1.7: (year, month) of a period cell; year 0 / month 0 when absent.
pub fn parse_period(cell: &str) -> (u16, u8) {
    let t = cell.trim();
    let t = t.strip_suffix(".0").unwrap_or(t);
    let b = t.as_bytes();
    if b.len() == 6 && b.iter().all(u8::is_ascii_digit) {
        let year: u16 = t[..4].parse().unwrap_or(0);
        let month: u8 = t[4..].parse().unwrap_or(0);
        if (1900..2100).contains(&year) {
            return (year, if (1..=12).contains(&month) { month } else { 0 });
        }
    }
    let year_at = (0..b.len().saturating_sub(3)).find(|&i| {
        (b[i] == b'1' && b[i + 1] == b'9' || b[i] == b'2' && b[i + 1] == b'0')
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
    });
    let Some(i) = year_at else {
        return (0, 0);
    };
    let year: u16 = t[i..i + 4].parse().unwrap_or(0);
    // `YYYY-MM-...`
    let rest = &b[i + 4..];
    if rest.len() >= 3 && rest[0] == b'-' && rest[1].is_ascii_digit() && rest[2].is_ascii_digit() {
        let m = (rest[1] - b'0') * 10 + (rest[2] - b'0');
        if (1..=12).contains(&m) {
            return (year, m);
        }
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = t.to_lowercase();
    let month = MONTHS
        .iter()
        .enumerate()
        .filter_map(|(m, name)| lower.find(name).map(|pos| (pos, m as u8 + 1)))
        .min()
        .map_or(0, |(_, m)| m);
    (year, month)
}

/// Ward display values that mean "no ward" (tpr.md §4.1).
fn is_no_ward(display: &str) -> bool {
    matches!(
        display.trim().to_lowercase().as_str(),
        "" | "unknown" | "not assigned" | "unassigned" | "n/a" | "na" | "none" | "nil"
    )
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> &'a str {
    let n = s.len();
    if n >= suffix.len()
        && s.is_char_boundary(n - suffix.len())
        && s[n - suffix.len()..].eq_ignore_ascii_case(suffix)
    {
        s[..n - suffix.len()].trim_end()
    } else {
        s
    }
}

fn strip_prefix<'a>(s: &'a str, prefix: Option<&str>) -> &'a str {
    let s = s.trim();
    match prefix {
        Some(p) if s.len() > 3 && s.starts_with(p) && s.as_bytes()[2] == b' ' => s[3..].trim(),
        _ => s,
    }
}

/// The two lower-case letters and a space that begin every non-empty value (tpr.md §4.1).
fn detect_prefix<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut prefix: Option<[u8; 2]> = None;
    let mut any = false;
    for v in values {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        any = true;
        let b = v.as_bytes();
        if b.len() < 4 || !b[0].is_ascii_lowercase() || !b[1].is_ascii_lowercase() || b[2] != b' ' {
            return None;
        }
        match prefix {
            None => prefix = Some([b[0], b[1]]),
            Some(p) if p == [b[0], b[1]] => {}
            Some(_) => return None,
        }
    }
    if !any {
        return None;
    }
    prefix.map(|p| String::from_utf8_lossy(&p).into_owned())
}

/// Interns strings, remembering the last one (consecutive rows usually repeat it).
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    values: Vec<String>,
    last: Option<(String, u32)>,
}

impl Interner {
    fn id(&mut self, value: &str) -> u32 {
        if let Some((s, id)) = &self.last
            && s == value
        {
            return *id;
        }
        let id = match self.ids.get(value) {
            Some(id) => *id,
            None => {
                let id = self.values.len() as u32;
                self.values.push(value.to_string());
                self.ids.insert(value.to_string(), id);
                id
            }
        };
        self.last = Some((value.to_string(), id));
        id
    }
}

/// A facility as first seen (raw cells).
struct RawFacility {
    name: String,
    level_cell: Option<String>,
}

/// Undecoded state, LGA and ward cells and their (state, LGA, ward) ids.
type RawPlace = (Vec<u8>, Vec<u8>, Vec<u8>, (u32, u32, u32));

/// Rows with raw ids, turned into a [`FacilityExport`] by [`Builder::finish`].
struct Builder {
    file: String,
    header_index: usize,
    headers: Vec<String>,
    layout: Layout,
    /// Column of each structural field, by `StructuralField as usize`.
    columns: [Option<usize>; 7],
    options_max_rows: usize,
    states: Interner,
    lgas: Interner,
    wards: Interner,
    facilities: Interner,
    raw_facilities: Vec<RawFacility>,
    /// Raw LGA key -> raw state id; raw ward key -> raw lga id.
    lga_state: Vec<u32>,
    ward_lga: Vec<u32>,
    last_period: Option<(String, (u16, u8))>,
    /// Undecoded state, LGA and ward cells of the previous row and their ids.
    last_raw_place: Option<RawPlace>,
    last_level: Option<(String, FacilityLevel)>,
    rows: Vec<Row>,
    /// First copy's values for indicators split over several columns, and whether copies
    /// ever disagreed where both were filled.
    first_copy: Vec<(usize, Vec<f64>)>,
    disagree: [bool; INDICATOR_SLOTS],
    /// For overridden columns: non-blank and non-numeric cells.
    checked: HashMap<usize, (usize, usize)>,
    warnings: ReadWarnings,
}

impl Builder {
    fn new(
        file: &str,
        header_index: usize,
        raw_header: Vec<String>,
        options: &ReadOptions,
    ) -> Result<Builder> {
        let mut headers = raw_header;
        while headers.last().is_some_and(String::is_empty) {
            headers.pop();
        }
        if headers.len() > options.max_columns {
            return Err(Error::TooManyColumns {
                file: file.into(),
                columns: headers.len(),
                max: options.max_columns,
            });
        }
        let placeholders: Vec<bool> = headers.iter().map(String::is_empty).collect();
        for (i, h) in headers.iter_mut().enumerate() {
            if h.is_empty() {
                *h = format!("column_{}", i + 1);
            }
        }
        let mut layout = apply_rules(&headers, &placeholders);
        apply_override(&mut layout, &headers, &options.mapping)?;
        let missing: Vec<&str> = [StructuralField::Lga, StructuralField::Ward]
            .into_iter()
            .filter(|f| layout.field(*f).is_none())
            .map(|f| f.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::TprMissingFields {
                missing: missing.iter().map(|s| s.to_string()).collect(),
                found: headers.clone(),
            });
        }
        if !layout.has_any_pair() {
            return Err(no_pair_error(&layout, &headers));
        }
        let first_copy = layout
            .indicators
            .iter()
            .enumerate()
            .filter(|(_, cols)| cols.len() > 1)
            .map(|(slot, _)| (slot, Vec::new()))
            .collect();
        let checked = layout
            .overridden
            .iter()
            .flat_map(|slot| layout.indicators[*slot].clone())
            .map(|c| (c, (0, 0)))
            .collect();
        let mut columns = [None; 7];
        for f in StructuralField::ALL {
            columns[f as usize] = layout.field(f);
        }
        Ok(Builder {
            file: file.into(),
            header_index,
            headers,
            layout,
            columns,
            options_max_rows: options.max_rows,
            states: Interner::default(),
            lgas: Interner::default(),
            wards: Interner::default(),
            facilities: Interner::default(),
            raw_facilities: Vec::new(),
            lga_state: Vec::new(),
            ward_lga: Vec::new(),
            last_period: None,
            last_raw_place: None,
            last_level: None,
            rows: Vec::new(),
            first_copy,
            disagree: [false; INDICATOR_SLOTS],
            checked,
            warnings: ReadWarnings::default(),
        })
    }

    fn text<'r>(&self, row: &'r impl RowCells, f: StructuralField) -> Cow<'r, str> {
        match self.columns[f as usize].and_then(|c| row.cell(c)) {
            Some(Cow::Borrowed(s)) => Cow::Borrowed(s.trim()),
            Some(Cow::Owned(s)) => Cow::Owned(s.trim().to_string()),
            None => Cow::Borrowed(""),
        }
    }

    fn push(&mut self, row: &impl RowCells) -> Result<()> {
        if row.is_blank() {
            self.warnings.empty_rows += 1;
            return Ok(());
        }
        if self.rows.len() >= self.options_max_rows {
            return Err(Error::TooManyRows {
                file: self.file.clone(),
                limit: self.options_max_rows,
            });
        }
        let raw = |f: StructuralField| {
            self.columns[f as usize]
                .and_then(|c| row.raw(c))
                .unwrap_or(b"")
        };
        // Consecutive rows mostly repeat the previous facility's state, LGA and ward: compare
        // the undecoded cells and reuse the ids.
        let same_place = self.last_raw_place.as_ref().is_some_and(|(s, l, w, _)| {
            s == raw(StructuralField::State)
                && l == raw(StructuralField::Lga)
                && w == raw(StructuralField::Ward)
        });
        let (state, lga, ward) =
            if let Some((_, _, _, ids)) = self.last_raw_place.as_ref().filter(|_| same_place) {
                *ids
            } else {
                let state_text = self.text(row, StructuralField::State);
                let state = self.states.id(&state_text);
                // Raw keys carry their parent's id so equal names in two parents stay apart.
                let lga_text = self.text(row, StructuralField::Lga);
                let ward_text = self.text(row, StructuralField::Ward);
                let lga = self.lgas.id(&format!("{state}\u{1f}{lga_text}"));
                if lga as usize == self.lga_state.len() {
                    self.lga_state.push(state);
                }
                let ward = self.wards.id(&format!("{lga}\u{1f}{ward_text}"));
                if ward as usize == self.ward_lga.len() {
                    self.ward_lga.push(lga);
                }
                self.last_raw_place = Some((
                    raw(StructuralField::State).to_vec(),
                    raw(StructuralField::Lga).to_vec(),
                    raw(StructuralField::Ward).to_vec(),
                    (state, lga, ward),
                ));
                (state, lga, ward)
            };
        let has_id = self.columns[StructuralField::FacilityId as usize].is_some();
        let facility = if has_id {
            let key = self.text(row, StructuralField::FacilityId);
            self.facilities.id(&key)
        } else {
            let key = self.text(row, StructuralField::FacilityName);
            self.facilities.id(&key)
        };
        let level_cell = self.columns[StructuralField::FacilityLevel as usize]
            .map(|_| self.text(row, StructuralField::FacilityLevel));
        if facility as usize == self.raw_facilities.len() {
            let name = self.text(row, StructuralField::FacilityName);
            self.raw_facilities.push(RawFacility {
                name: name.into_owned(),
                level_cell: level_cell.as_ref().map(|c| c.to_string()),
            });
        }
        let level = match &level_cell {
            None => FacilityLevel::Unknown, // set from the name in finish()
            Some(cell) => match &self.last_level {
                Some((s, l)) if s == cell.as_ref() => *l,
                _ => {
                    let l = level_from_cell(cell);
                    self.last_level = Some((cell.to_string(), l));
                    l
                }
            },
        };
        let period_text = self.text(row, StructuralField::Period);
        let digits = period_text.as_bytes();
        let (year, month) = match &self.last_period {
            _ if digits.len() == 6 && digits.iter().all(u8::is_ascii_digit) => {
                parse_period(&period_text)
            }
            Some((s, p)) if s == period_text.as_ref() => *p,
            _ => {
                let p = parse_period(&period_text);
                self.last_period = Some((period_text.to_string(), p));
                p
            }
        };
        let mut counts = [f64::NAN; INDICATOR_SLOTS];
        for (slot, count) in counts.iter_mut().enumerate() {
            let columns = &self.layout.indicators[slot];
            if columns.is_empty() {
                continue;
            }
            let mut sum: Option<f64> = None;
            let mut first: Option<f64> = None;
            let mut first_seen = false;
            for &c in columns {
                let parsed = row.raw(c).map_or(Count::Blank, parse_count_bytes);
                if !self.checked.is_empty()
                    && parsed != Count::Blank
                    && let Some(check) = self.checked.get_mut(&c)
                {
                    check.0 += 1;
                    if parsed == Count::NonNumeric {
                        check.1 += 1;
                    }
                }
                let value = match parsed {
                    Count::Value(v) => Some(v),
                    Count::Blank => None,
                    Count::NonNumeric => {
                        self.warnings.non_numeric_cells += 1;
                        None
                    }
                    Count::Negative => {
                        self.warnings.negative_cells += 1;
                        None
                    }
                };
                if !first_seen {
                    first = value;
                    first_seen = true;
                } else if let (Some(a), Some(b)) = (first, value)
                    && a != b
                {
                    self.disagree[slot] = true;
                }
                if let Some(v) = value {
                    sum = Some(sum.unwrap_or(0.0) + v);
                }
            }
            *count = sum.unwrap_or(f64::NAN);
            if columns.len() > 1
                && let Some((_, values)) = self.first_copy.iter_mut().find(|(s, _)| *s == slot)
            {
                values.push(first.unwrap_or(f64::NAN));
            }
        }
        self.rows.push(Row {
            state,
            lga,
            ward,
            facility,
            year,
            month,
            level,
            counts,
        });
        Ok(())
    }

    fn finish(mut self) -> Result<FacilityExport> {
        // Overridden count columns must hold numbers (tpr.md §2.4: at most 5 % text).
        for (c, (filled, text)) in &self.checked {
            if *text * 20 > *filled {
                return Err(Error::TprMapping {
                    reason: format!(
                        "column `{}` holds text in {text} of its {filled} non-blank cells; a \
                         count field needs numbers",
                        self.headers[*c]
                    ),
                });
            }
        }
        // Duplicate columns: keep the first copy when copies never disagree, else the sums.
        for (slot, values) in std::mem::take(&mut self.first_copy) {
            if self.disagree[slot] {
                self.warnings
                    .summed_duplicate_columns
                    .push(Indicator::all()[slot].field_name());
            } else {
                for (row, v) in self.rows.iter_mut().zip(values) {
                    row.counts[slot] = v;
                }
            }
        }
        for row in &self.rows {
            let exceeds = (0..INDICATOR_SLOTS).step_by(2).any(|tested| {
                let (t, p) = (row.counts[tested], row.counts[tested + 1]);
                !t.is_nan() && !p.is_nan() && p > t
            });
            if exceeds {
                self.warnings.rows_positives_exceed_tested += 1;
            }
        }
        let has_state = self.layout.field(StructuralField::State).is_some();
        let lga_text = |raw: &str| raw.split_once('\u{1f}').map_or("", |(_, t)| t).to_string();
        let prefix = if has_state {
            detect_prefix(self.states.values.iter().map(String::as_str))
        } else {
            let lgas: Vec<String> = self.lgas.values.iter().map(|r| lga_text(r)).collect();
            detect_prefix(lgas.iter().map(String::as_str))
        };
        let p = prefix.as_deref();
        // States by display name.
        let mut states: Vec<State> = Vec::new();
        let mut state_ids: HashMap<String, u32> = HashMap::new();
        let state_map: Vec<u32> = self
            .states
            .values
            .iter()
            .map(|raw| {
                let display = if has_state {
                    let s = strip_prefix(raw, p).to_string();
                    strip_suffix_ci(&s, " State").to_string()
                } else {
                    "All data".to_string()
                };
                *state_ids.entry(display.clone()).or_insert_with(|| {
                    states.push(State { name: display });
                    (states.len() - 1) as u32
                })
            })
            .collect();
        // LGAs by (state, key).
        let mut lgas: Vec<Lga> = Vec::new();
        let mut lga_ids: HashMap<(u32, String), u32> = HashMap::new();
        let lga_map: Vec<u32> = self
            .lgas
            .values
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let state = state_map[self.lga_state[i] as usize];
                let text = lga_text(raw);
                let stripped = strip_prefix(&text, p);
                let display =
                    strip_suffix_ci(strip_suffix_ci(stripped, " Local Government Area"), " LGA")
                        .to_string();
                let key = norm_name(&display);
                *lga_ids.entry((state, key.clone())).or_insert_with(|| {
                    lgas.push(Lga {
                        state,
                        name: display,
                        key,
                    });
                    (lgas.len() - 1) as u32
                })
            })
            .collect();
        // Wards by (LGA, key); "no ward" values get NONE_ID.
        let mut wards: Vec<Ward> = Vec::new();
        let mut ward_ids: HashMap<(u32, String), u32> = HashMap::new();
        let ward_map: Vec<u32> = self
            .wards
            .values
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let lga = lga_map[self.ward_lga[i] as usize];
                let text = raw.split_once('\u{1f}').map_or("", |(_, t)| t);
                let display = strip_suffix_ci(strip_prefix(text, p), " Ward").to_string();
                if is_no_ward(&display) {
                    return NONE_ID;
                }
                let key = norm_name(&display);
                if key.is_empty() {
                    return NONE_ID;
                }
                *ward_ids.entry((lga, key.clone())).or_insert_with(|| {
                    wards.push(Ward {
                        lga,
                        name: display,
                        key,
                    });
                    (wards.len() - 1) as u32
                })
            })
            .collect();
        let has_level = self.layout.field(StructuralField::FacilityLevel).is_some();
        let facilities: Vec<Facility> = self
            .raw_facilities
            .iter()
            .zip(&self.facilities.values)
            .map(|(f, id)| {
                let name = strip_prefix(&f.name, p).to_string();
                let from_name = level_from_name(&name);
                let level = match &f.level_cell {
                    Some(cell) => level_from_cell(cell),
                    None => from_name,
                };
                Facility {
                    id: id.clone(),
                    name,
                    level_cell: f.level_cell.clone().filter(|c| !c.is_empty()),
                    level,
                    level_from_name: from_name,
                }
            })
            .collect();
        let mut warnings = std::mem::take(&mut self.warnings);
        for row in &mut self.rows {
            row.state = state_map[row.state as usize];
            row.lga = lga_map[row.lga as usize];
            row.ward = ward_map[row.ward as usize];
            if !has_level {
                row.level = facilities[row.facility as usize].level;
            }
            if !row.has_ward() {
                warnings.rows_without_ward += 1;
            }
            if row.year().is_none() {
                warnings.rows_without_year += 1;
            }
        }
        warnings.ignored_all_ages_columns = self
            .layout
            .ignored_all_ages
            .iter()
            .map(|c| self.headers[*c].clone())
            .collect();
        let mut present = [false; INDICATOR_SLOTS];
        for (slot, cols) in self.layout.indicators.iter().enumerate() {
            present[slot] = !cols.is_empty();
        }
        let mapping = ColumnMapping {
            header_row_index: self.header_index,
            fields: describe(&self.layout, &self.headers),
            ambiguous: self.layout.ambiguous.clone(),
            unmapped: self
                .layout
                .unmapped
                .iter()
                .map(|c| self.headers[*c].clone())
                .collect(),
            levels_from_names: !has_level,
        };
        if self.rows.is_empty() {
            return Err(Error::NoRows { file: self.file });
        }
        Ok(FacilityExport {
            mapping,
            prefix,
            states,
            lgas,
            wards,
            facilities,
            rows: self.rows,
            warnings,
            present,
        })
    }
}

/// The refusal when no tested/positive pair could be placed: which columns were not placed
/// and what was expected.
fn no_pair_error(layout: &Layout, headers: &[String]) -> Error {
    let mut placed: BTreeSet<usize> = layout.structural.values().copied().collect();
    for cols in &layout.indicators {
        placed.extend(cols.iter().copied());
    }
    let unplaced: Vec<String> = (0..headers.len())
        .filter(|c| !placed.contains(c) && !is_placeholder(&headers[*c], *c))
        .map(|c| headers[c].clone())
        .collect();
    let partial: Vec<String> = Indicator::all()
        .into_iter()
        .filter(|i| !layout.indicators[i.slot()].is_empty())
        .map(|i| {
            let missing = i.partner();
            format!(
                "`{}` has no `{}` column",
                i.field_name(),
                missing.field_name()
            )
        })
        .collect();
    Error::NoIndicatorPair {
        unplaced,
        ambiguous: layout
            .ambiguous
            .iter()
            .map(|a| format!("{} ({})", a.column, a.reason))
            .collect(),
        partial,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(parse_period("202101"), (2021, 1));
        assert_eq!(parse_period("202112.0"), (2021, 12));
        assert_eq!(parse_period("January 2021"), (2021, 1));
        assert_eq!(parse_period("2021"), (2021, 0));
        assert_eq!(parse_period("2021Q3"), (2021, 0));
        assert_eq!(parse_period("2021W05"), (2021, 0));
        assert_eq!(parse_period("2025-01-24"), (2025, 1));
        assert_eq!(parse_period("Sept 2019"), (2019, 9));
        assert_eq!(parse_period(""), (0, 0));
        assert_eq!(parse_period("last year"), (0, 0));
    }

    #[test]
    fn excel_date_periods_become_iso_dates() {
        use calamine::{Data, ExcelDateTime, ExcelDateTimeType};
        // 44197 = 2021-01-01 in the 1900 system; 45316.5 = 2024-01-25 noon.
        let jan = Data::DateTime(ExcelDateTime::new(
            44197.0,
            ExcelDateTimeType::DateTime,
            false,
        ));
        assert_eq!(workbook_cell(&jan).as_deref(), Some("2021-01-01"));
        let cell = workbook_cell(&Data::DateTime(ExcelDateTime::new(
            45316.5,
            ExcelDateTimeType::DateTime,
            false,
        )))
        .unwrap();
        assert_eq!(cell, "2024-01-25");
        assert_eq!(parse_period(&cell), (2024, 1));
        // The 1904 system (old Mac workbooks) counts from another epoch.
        let mac = Data::DateTime(ExcelDateTime::new(
            42735.0,
            ExcelDateTimeType::DateTime,
            true,
        ));
        assert_eq!(parse_period(&workbook_cell(&mac).unwrap()), (2021, 1));
    }

    #[test]
    fn levels() {
        assert_eq!(
            level_from_cell(" Primary Health Facility "),
            FacilityLevel::Primary
        );
        assert_eq!(level_from_cell("PHC"), FacilityLevel::Primary);
        assert_eq!(level_from_cell("Tertiary"), FacilityLevel::Tertiary);
        assert_eq!(level_from_cell("secondary"), FacilityLevel::Secondary);
        assert_eq!(level_from_cell(""), FacilityLevel::Unknown);
        assert_eq!(level_from_cell("private"), FacilityLevel::Other);
        assert_eq!(
            level_from_name("Aminu Kano Teaching Hospital"),
            FacilityLevel::Tertiary
        );
        assert_eq!(
            level_from_name("Murtala General Hospital"),
            FacilityLevel::Secondary
        );
        assert_eq!(
            level_from_name("Adakawa Basic Health Clinic"),
            FacilityLevel::Primary
        );
        assert_eq!(
            level_from_name("Salama Hospital Sheshe"),
            FacilityLevel::Unknown
        );
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count(" 1,234 "), Count::Value(1234.0));
        assert_eq!(parse_count("0"), Count::Value(0.0));
        assert_eq!(parse_count("2.5"), Count::Value(2.5));
        assert_eq!(parse_count("  "), Count::Blank);
        assert_eq!(parse_count("-3"), Count::Negative);
        assert_eq!(parse_count("n/a"), Count::NonNumeric);
        assert_eq!(parse_count("inf"), Count::NonNumeric);
    }

    #[test]
    fn prefix_detection() {
        assert_eq!(
            detect_prefix(["kn Kano State", "kn Kano State", ""].into_iter()).as_deref(),
            Some("kn")
        );
        assert_eq!(detect_prefix(["kn Kano", "kw Kwara"].into_iter()), None);
        assert_eq!(detect_prefix(["Kano State"].into_iter()), None);
        assert_eq!(
            strip_prefix("kn Dala Local Government Area", Some("kn")),
            "Dala Local Government Area"
        );
        assert_eq!(strip_prefix("kno Dala", Some("kn")), "kno Dala");
        assert_eq!(
            strip_suffix_ci("Dala Local Government Area", " Local Government Area"),
            "Dala"
        );
        assert_eq!(strip_suffix_ci("Dala lga", " LGA"), "Dala");
    }

    #[test]
    fn no_ward_values() {
        for v in ["", "Unknown", "NOT ASSIGNED", "n/a", "NA", "none", "Nil"] {
            assert!(is_no_ward(v), "{v}");
        }
        assert!(!is_no_ward("Nasarawa"));
    }

    #[test]
    fn delimiter() {
        assert_eq!(detect_delimiter(b"title\nward;lga;x,y\n1;2;3\n"), b';');
        assert_eq!(detect_delimiter(b"ward,lga,x\n"), b',');
    }
}
