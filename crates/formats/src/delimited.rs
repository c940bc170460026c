//! Delimited text tables: decoding, delimiter and header detection, pandas-like typing, and the
//! pandas-like CSV writer.

use crate::error::{Error, Result};
use crate::limits::{CANCEL_EVERY, Limits};
use mrpt_table::{Column, ColumnData, Table, is_ward_name_header, parse_pandas_float};

/// pandas' default `na_values`, plus `-` (a common "no data" mark in DHIS2 and Excel exports).
const NA_TOKENS: [&str; 20] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null", "-",
];

/// True for a missing-value token. Surrounding whitespace is ignored (pandas would keep `" NA"`
/// as text and turn the whole column into text; we do not).
pub fn is_missing_token(cell: &str) -> bool {
    let t = cell.trim();
    t.len() <= 8 && NA_TOKENS.contains(&t)
}

fn parse_int_literal(cell: &str) -> Option<i64> {
    let t = cell.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

fn parse_bool(cell: &str) -> Option<bool> {
    match cell.trim() {
        "True" | "TRUE" | "true" => Some(true),
        "False" | "FALSE" | "false" => Some(false),
        _ => None,
    }
}

/// Types one column from its raw cells (`None` = missing token already removed), as pandas
/// would: int64 when complete and integral, bool when complete and boolean, float when every
/// present cell is a number, text otherwise (raw cell text kept).
pub fn type_column(cells: Vec<Option<String>>) -> ColumnData {
    let present = cells.iter().flatten().count();
    let complete = present == cells.len();
    if present > 0 && complete {
        let ints: Option<Vec<Option<i64>>> = cells
            .iter()
            .map(|c| c.as_deref().and_then(parse_int_literal).map(Some))
            .collect();
        if let Some(ints) = ints {
            return ColumnData::Int(ints);
        }
        let bools: Option<Vec<Option<bool>>> = cells
            .iter()
            .map(|c| c.as_deref().and_then(parse_bool).map(Some))
            .collect();
        if let Some(bools) = bools {
            return ColumnData::Bool(bools);
        }
    }
    if present == 0 {
        // pandas reads an all-missing column as float64 of NaN.
        return ColumnData::Float(vec![None; cells.len()]);
    }
    let mut floats = Vec::with_capacity(cells.len());
    for c in &cells {
        match c {
            None => floats.push(None),
            Some(s) => match parse_pandas_float(s) {
                Some(f) => floats.push(Some(f)),
                None => return ColumnData::Text(cells),
            },
        }
    }
    ColumnData::Float(floats)
}

/// Decodes uploaded text: UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252 (a superset
/// of Latin-1 for printable text). Refuses binary data.
pub fn decode_text(bytes: &[u8], file: &str) -> Result<String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Empty { file: file.into() });
    }
    let text = if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        String::from_utf8_lossy(rest).into_owned()
    } else if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        decode_utf16(rest, u16::from_le_bytes)
    } else if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        decode_utf16(rest, u16::from_be_bytes)
    } else {
        check_not_binary(bytes, file)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => decode_windows_1252(bytes),
        }
    };
    check_not_binary(text.as_bytes(), file)?;
    if text.trim().is_empty() {
        return Err(Error::Empty { file: file.into() });
    }
    Ok(text)
}

fn decode_utf16(bytes: &[u8], word: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|c| word([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

fn check_not_binary(bytes: &[u8], file: &str) -> Result<()> {
    let sample = &bytes[..bytes.len().min(8192)];
    if sample.contains(&0) {
        return Err(Error::Binary {
            file: file.into(),
            reason: "it contains NUL bytes".into(),
        });
    }
    let control = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C))
        .count();
    if control * 20 > sample.len() {
        return Err(Error::Binary {
            file: file.into(),
            reason: format!(
                "{control} control characters in the first {} bytes",
                sample.len()
            ),
        });
    }
    Ok(())
}

/// Windows-1252: Latin-1 except 0x80..=0x9F, which hold typographic characters.
pub fn decode_windows_1252(bytes: &[u8]) -> String {
    const HIGH: [u32; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => char::from_u32(HIGH[(b - 0x80) as usize]).unwrap_or('\u{FFFD}'),
            _ => char::from(b),
        })
        .collect()
}

/// Picks the delimiter that splits the sample into the most consistent rows of more than one
/// field; comma wins ties (and single-column files).
fn detect_delimiter(text: &str) -> u8 {
    let sample: String = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(30)
        .collect::<Vec<_>>()
        .join("\n");
    let mut best = (b',', 0usize, 0usize);
    for d in [b',', b';', b'\t', b'|'] {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(d)
            .from_reader(sample.as_bytes());
        let widths: Vec<usize> = rdr
            .records()
            .map_while(|r| r.ok())
            .map(|r| r.len())
            .collect();
        let (width, count) = modal(&widths);
        if width > 1 && (count > best.2 || (count == best.2 && width > best.1 && best.1 <= 1)) {
            best = (d, width, count);
        }
    }
    best.0
}

fn modal(widths: &[usize]) -> (usize, usize) {
    let mut counts = std::collections::BTreeMap::new();
    for &w in widths {
        *counts.entry(w).or_insert(0usize) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(w, c)| (c, w))
        .unwrap_or((0, 0))
}

/// Column names the way pandas makes them: empty -> `Unnamed: i`, repeats -> `name.1`, `name.2`.
pub fn pandas_column_names(raw: &[String]) -> Vec<String> {
    let mut names: Vec<String> = raw
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if n.is_empty() {
                format!("Unnamed: {i}")
            } else {
                n.clone()
            }
        })
        .collect();
    // Sets instead of list searches: linear in the number of columns.
    let raw_names: std::collections::HashSet<&str> = raw.iter().map(String::as_str).collect();
    let mut taken: std::collections::HashSet<String> =
        std::collections::HashSet::with_capacity(names.len());
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for name in names.iter_mut() {
        let base = name.clone();
        let mut count = seen.get(&base).copied().unwrap_or(0);
        if count > 0 {
            let mut candidate = format!("{base}.{count}");
            while taken.contains(&candidate) || raw_names.contains(candidate.as_str()) {
                count += 1;
                candidate = format!("{base}.{count}");
            }
            *name = candidate;
        }
        taken.insert(name.clone());
        seen.insert(base, count + 1);
    }
    names
}

/// Builds a typed table from a header and rows of raw cells.
pub(crate) fn table_from_cells(header: &[String], rows: Vec<Vec<Option<String>>>) -> Result<Table> {
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(rows.len()); header.len()];
    for row in rows {
        for (i, cell) in row.into_iter().enumerate() {
            if let Some(col) = columns.get_mut(i) {
                col.push(cell);
            }
        }
    }
    table_from_columns(header, columns)
}

/// Builds a typed table from a header and columns of raw cells.
fn table_from_columns(header: &[String], columns: Vec<Vec<Option<String>>>) -> Result<Table> {
    let names = pandas_column_names(header);
    let cols = names
        .into_iter()
        .zip(columns)
        .map(|(name, cells)| Column {
            name,
            data: type_column(cells),
        })
        .collect();
    Ok(Table::new(cols)?)
}

/// Reads delimited text (CSV, semicolon, tab or pipe separated) into a typed table.
pub fn read_csv(bytes: &[u8], file: &str) -> Result<Table> {
    read_csv_with(bytes, file, &Limits::default())
}

/// [`read_csv`] within the given caps: a record wider than `max_columns`, or more than
/// `max_cells` cells in all, stops the read at that record. Linear in the input.
pub fn read_csv_with(bytes: &[u8], file: &str, limits: &Limits) -> Result<Table> {
    let text = decode_text(bytes, file)?;
    let delimiter = detect_delimiter(&text);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut records: Vec<(usize, csv::StringRecord)> = Vec::new();
    let mut cells = 0usize;
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::CsvSyntax {
            file: file.into(),
            line: e.position().map_or(0, |p| p.line() as usize),
            reason: e.to_string(),
        })?;
        if rec.len() > limits.max_columns {
            return Err(Error::TooManyColumns {
                file: file.into(),
                columns: rec.len(),
                max: limits.max_columns,
            });
        }
        cells += rec.len();
        if cells > limits.max_cells {
            return Err(Error::TooManyCells {
                file: file.into(),
                what: format!(
                    "more than {} cells in {} rows",
                    limits.max_cells,
                    records.len()
                ),
                max: limits.max_cells,
            });
        }
        if records.len().is_multiple_of(CANCEL_EVERY) && mrpt_table::cancel::cancelled() {
            return Err(Error::Cancelled);
        }
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let line = rec.position().map_or(0, |p| p.line() as usize);
        records.push((line, rec));
    }
    if records.is_empty() {
        return Err(Error::Empty { file: file.into() });
    }
    // Title lines above the header (DHIS2 and Excel exports have them) are narrower than the
    // table: the header is the first of the leading records with the table's usual width.
    let widths: Vec<usize> = records.iter().map(|(_, r)| r.len()).collect();
    let (width, _) = modal(&widths);
    // A row naming the ward column wins (titles padded to full width with empty cells exist);
    // else the first full-width row that is mostly filled in.
    let names_ward = |r: &csv::StringRecord| r.iter().any(is_ward_name_header);
    let mostly_filled = |r: &csv::StringRecord| {
        r.len() == width && 2 * r.iter().filter(|c| !c.trim().is_empty()).count() >= r.len()
    };
    let lead = &records[..records.len().min(10)];
    let header_at = lead
        .iter()
        .position(|(_, r)| r.len() == width && names_ward(r))
        .or_else(|| lead.iter().position(|(_, r)| mostly_filled(r)))
        .or_else(|| lead.iter().position(|(_, r)| r.len() == width))
        .unwrap_or(0);
    let header: Vec<String> = records[header_at].1.iter().map(str::to_string).collect();
    let data = &records[header_at + 1..];
    if data.is_empty() {
        return Err(Error::NoRows { file: file.into() });
    }
    let bad: Vec<(usize, usize)> = data
        .iter()
        .filter(|(_, r)| r.len() != header.len())
        .take(5)
        .map(|(line, r)| (*line, r.len()))
        .collect();
    if !bad.is_empty() {
        return Err(Error::RaggedRows {
            file: file.into(),
            expected: header.len(),
            rows: bad,
        });
    }
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(data.len()); header.len()];
    for (_, r) in data {
        for (col, c) in columns.iter_mut().zip(r.iter()) {
            col.push((!is_missing_token(c)).then(|| c.to_string()));
        }
    }
    table_from_columns(&header, columns)
}

/// Reads one of the service's own result files (header on the first line), keeping only the
/// columns `keep` accepts: a 50 MB unified dataset is read for its handful of ward columns
/// without holding its 2 million model scores as text. Cells are typed as [`read_csv`] types
/// them; spreadsheet neutralisation is undone ([`crate::unneutralise`]).
pub fn read_result_columns(bytes: &[u8], file: &str, keep: &dyn Fn(&str) -> bool) -> Result<Table> {
    let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let text: std::borrow::Cow<'_, str> = match std::str::from_utf8(body) {
        Ok(t) if !t.trim().is_empty() => std::borrow::Cow::Borrowed(t),
        _ => std::borrow::Cow::Owned(decode_text(bytes, file)?),
    };
    let delimiter = detect_delimiter(&text);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut header: Option<(Vec<String>, Vec<usize>)> = None;
    let mut columns: Vec<Vec<Option<String>>> = Vec::new();
    let mut bad: Vec<(usize, usize)> = Vec::new();
    let mut rec = csv::StringRecord::new();
    let mut rows = 0usize;
    loop {
        match rdr.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(Error::CsvSyntax {
                    file: file.into(),
                    line: e.position().map_or(0, |p| p.line() as usize),
                    reason: e.to_string(),
                });
            }
        }
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let Some((names, kept)) = &header else {
            let names = pandas_column_names(&rec.iter().map(str::to_string).collect::<Vec<_>>());
            let kept: Vec<usize> = (0..names.len()).filter(|&i| keep(&names[i])).collect();
            columns = vec![Vec::new(); kept.len()];
            header = Some((names, kept));
            continue;
        };
        rows += 1;
        if rows.is_multiple_of(CANCEL_EVERY) && mrpt_table::cancel::cancelled() {
            return Err(Error::Cancelled);
        }
        if rec.len() != names.len() {
            if bad.len() < 5 {
                bad.push((rec.position().map_or(0, |p| p.line() as usize), rec.len()));
            }
            continue;
        }
        for (col, &i) in columns.iter_mut().zip(kept) {
            let c = &rec[i];
            col.push((!is_missing_token(c)).then(|| c.to_string()));
        }
    }
    let Some((names, kept)) = header else {
        return Err(Error::Empty { file: file.into() });
    };
    if !bad.is_empty() {
        return Err(Error::RaggedRows {
            file: file.into(),
            expected: names.len(),
            rows: bad,
        });
    }
    if rows == 0 {
        return Err(Error::NoRows { file: file.into() });
    }
    let cols = kept
        .iter()
        .zip(columns)
        .map(|(&i, cells)| {
            let name = crate::unneutralise(&names[i])
                .unwrap_or(&names[i])
                .to_string();
            let mut data = type_column(cells);
            if let ColumnData::Text(v) = &mut data {
                for t in v.iter_mut().flatten() {
                    if let Some(original) = crate::unneutralise(t) {
                        *t = original.to_string();
                    }
                }
            }
            Column { name, data }
        })
        .collect();
    Ok(Table::new(cols)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn typing_follows_pandas() {
        let s = |v: &[Option<&str>]| v.iter().map(|c| c.map(str::to_string)).collect::<Vec<_>>();
        assert_eq!(
            type_column(s(&[Some("1"), Some("2")])),
            ColumnData::Int(vec![Some(1), Some(2)])
        );
        assert_eq!(
            type_column(s(&[Some("1"), None])),
            ColumnData::Float(vec![Some(1.0), None])
        );
        assert_eq!(
            type_column(s(&[Some("1.5"), Some(" 2e3 ")])),
            ColumnData::Float(vec![Some(1.5), Some(2000.0)])
        );
        assert!(matches!(
            type_column(s(&[Some("1"), Some("x")])),
            ColumnData::Text(_)
        ));
        assert_eq!(
            type_column(s(&[Some("True"), Some("false")])),
            ColumnData::Bool(vec![Some(true), Some(false)])
        );
        assert!(matches!(
            type_column(s(&[Some("True"), None])),
            ColumnData::Text(_)
        ));
        assert!(matches!(
            type_column(s(&[Some("1,000")])),
            ColumnData::Text(_)
        ));
        assert_eq!(
            type_column(s(&[None, None])),
            ColumnData::Float(vec![None, None])
        );
    }

    #[test]
    fn pandas_names() {
        let raw: Vec<String> = ["", "", "a", "a", "b", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            pandas_column_names(&raw),
            ["Unnamed: 0", "Unnamed: 1", "a", "a.1", "b", "a.2"]
        );
    }

    #[test]
    fn semicolon_latin1_with_title_line() {
        let mut bytes = b"Ward data export\nWardName;tpr;note\nKof\xe9;0,5;x\nAba;1;y\n".to_vec();
        bytes.extend_from_slice(b"Zoo;NA;-\n");
        let t = read_csv(&bytes, "t.csv").unwrap();
        assert_eq!(t.column_names(), ["WardName", "tpr", "note"]);
        assert_eq!(
            t.column("WardName").unwrap().data.cell_text(0).as_deref(),
            Some("Kofé")
        );
        // "0,5" is not a number without a decimal option: the column is text, as in pandas.
        assert!(matches!(t.column("tpr").unwrap().data, ColumnData::Text(_)));
        assert!(t.column("note").unwrap().data.is_missing(2));
    }

    #[test]
    fn padded_title_row_is_not_the_header() {
        let t = read_csv(
            b"Kano wards 2024,,\n,,\nWardName,tpr,x\nA,0.1,1\nB,0.2,2\n",
            "t.csv",
        )
        .unwrap();
        assert_eq!(t.column_names(), ["WardName", "tpr", "x"]);
        assert_eq!(t.n_rows(), 2);
    }

    #[test]
    fn bom_and_crlf() {
        let t = read_csv(b"\xEF\xBB\xBFWardName,x\r\nA,1\r\nB,2\r\n", "t.csv").unwrap();
        assert_eq!(t.column_names(), ["WardName", "x"]);
        assert_eq!(
            t.column("x").unwrap().data,
            ColumnData::Int(vec![Some(1), Some(2)])
        );
    }

    #[test]
    fn csv_round_trip() {
        let t = Table::new(vec![
            Column {
                name: "name, quoted".into(),
                data: ColumnData::Text(vec![Some("a \"b\"".into()), None]),
            },
            Column {
                name: "f".into(),
                data: ColumnData::Float(vec![Some(0.1), Some(f64::NAN)]),
            },
            Column {
                name: "b".into(),
                data: ColumnData::Bool(vec![Some(true), Some(false)]),
            },
        ])
        .unwrap();
        let bytes = crate::write_csv(&t);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "\"name, quoted\",f,b\n\"a \"\"b\"\"\",0.1,True\n,,False\n"
        );
        let back = read_csv(&bytes, "x.csv").unwrap();
        assert_eq!(
            back.column("f").unwrap().data,
            ColumnData::Float(vec![Some(0.1), None])
        );
        assert_eq!(
            back.column("b").unwrap().data,
            ColumnData::Bool(vec![Some(true), Some(false)])
        );
    }
}
