//! The one CSV writer: pandas' `to_csv(index=False)` layout (comma separated, `\n` line ends,
//! minimal quoting, floats as Python `repr`, missing values empty, booleans `True`/`False`),
//! streamed row by row into any [`Write`] through one reused buffer: no per-cell `String`, no
//! text table.
//!
//! Every CSV the service writes is meant to be opened in a spreadsheet, so text cells are
//! neutralised against formula injection (OWASP's rule): a text cell starting with `=`, `+`,
//! `-`, `@`, a tab or a carriage return gets a leading `'`, unless the cell is a number (a
//! negative number stays a number). A cell that already starts with quotes before such a
//! character gets one more, so [`unneutralise`] gives back exactly the original text. Numeric
//! columns are never touched. Internal copies of uploaded inputs that the service itself reads
//! back as uploads are written [`CsvWriter::verbatim`].

use std::io::{self, Write};

use mrpt_table::{ColumnData, ColumnView, PyFloat, Table, TableView, parse_pandas_float};

/// Flush to the underlying writer once this much is buffered.
const FLUSH_AT: usize = 64 * 1024;

/// Whether a text cell would be read as a formula by a spreadsheet (after any leading quotes
/// that an earlier neutralisation added).
fn needs_neutralising(text: &str) -> bool {
    let unquoted = text.trim_start_matches('\'');
    let Some(&first) = unquoted.as_bytes().first() else {
        return false;
    };
    if !matches!(first, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') {
        return false;
    }
    // A quote-prefixed cell is escaped whatever follows; a bare one only if it is no number.
    unquoted.len() != text.len() || parse_pandas_float(text).is_none()
}

/// The text a spreadsheet-safe cell stood for: the inverse of the writer's neutralisation, for
/// reading the service's own result files back.
pub fn unneutralise(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('\'')?;
    needs_neutralising(rest).then_some(rest)
}

/// A streaming CSV writer; see the module documentation.
pub struct CsvWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    float: PyFloat,
    /// Bytes of the current record so far (fields and delimiters): a record of none is written
    /// as `""` so that it still reads back as one (empty) field, as the csv crate does.
    record_bytes: usize,
    fields: usize,
    spreadsheet: bool,
}

impl<W: Write> CsvWriter<W> {
    /// A writer for files meant for spreadsheets (text cells neutralised).
    pub fn new(out: W) -> Self {
        CsvWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            float: PyFloat::new(),
            record_bytes: 0,
            fields: 0,
            spreadsheet: true,
        }
    }

    /// A writer that keeps text cells exactly as they are (internal copies of inputs).
    pub fn verbatim(out: W) -> Self {
        CsvWriter {
            spreadsheet: false,
            ..CsvWriter::new(out)
        }
    }

    fn separator(&mut self) {
        if self.fields > 0 {
            self.buf.push(b',');
            self.record_bytes += 1;
        }
        self.fields += 1;
    }

    /// A float cell (`None` and NaN are empty).
    pub fn float(&mut self, x: Option<f64>) {
        self.separator();
        if let Some(x) = x.filter(|x| !x.is_nan()) {
            let s = self.float.format(x);
            self.buf.extend_from_slice(s.as_bytes());
            self.record_bytes += s.len();
        }
    }

    /// An integer cell.
    pub fn int(&mut self, i: Option<i64>) {
        self.separator();
        if let Some(i) = i {
            let mut b = itoa::Buffer::new();
            let s = b.format(i);
            self.buf.extend_from_slice(s.as_bytes());
            self.record_bytes += s.len();
        }
    }

    /// A boolean cell, as Python prints it.
    pub fn bool(&mut self, b: Option<bool>) {
        self.separator();
        if let Some(b) = b {
            let s: &[u8] = if b { b"True" } else { b"False" };
            self.buf.extend_from_slice(s);
            self.record_bytes += s.len();
        }
    }

    /// A text cell: quoted when it holds a comma, a quote or a line break (quotes doubled).
    pub fn text(&mut self, t: Option<&str>) {
        self.separator();
        let Some(t) = t else { return };
        let start = self.buf.len();
        let prefix = self.spreadsheet && needs_neutralising(t);
        let bytes = t.as_bytes();
        if bytes
            .iter()
            .any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        {
            self.buf.push(b'"');
            if prefix {
                self.buf.push(b'\'');
            }
            for part in t.split_inclusive('"') {
                self.buf.extend_from_slice(part.as_bytes());
                if part.ends_with('"') {
                    self.buf.push(b'"');
                }
            }
            self.buf.push(b'"');
        } else {
            if prefix {
                self.buf.push(b'\'');
            }
            self.buf.extend_from_slice(bytes);
        }
        self.record_bytes += self.buf.len() - start;
    }

    /// Ends the record; flushes when enough is buffered.
    pub fn end_row(&mut self) -> io::Result<()> {
        if self.record_bytes == 0 {
            self.buf.extend_from_slice(b"\"\"");
        }
        self.buf.push(b'\n');
        self.record_bytes = 0;
        self.fields = 0;
        if self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what is buffered and hands back the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// One cell of a column.
    fn cell(&mut self, column: &ColumnView<'_>, row: usize) {
        match column {
            ColumnView::Floats(v) => self.float(Some(v.get(row))),
            ColumnView::Data(ColumnData::Float(v)) => self.float(v.get(row).copied().flatten()),
            ColumnView::Data(ColumnData::Int(v)) => self.int(v.get(row).copied().flatten()),
            ColumnView::Data(ColumnData::Bool(v)) => self.bool(v.get(row).copied().flatten()),
            ColumnView::Data(ColumnData::Text(v)) => {
                self.text(v.get(row).and_then(Option::as_deref))
            }
        }
    }

    /// Header and every row of a table view.
    pub fn table(&mut self, table: &TableView<'_>) -> io::Result<()> {
        for (name, _) in table.columns() {
            self.text(Some(name));
        }
        self.end_row()?;
        for row in 0..table.n_rows() {
            for (_, column) in table.columns() {
                self.cell(column, row);
            }
            self.end_row()?;
        }
        Ok(())
    }
}

/// Writes a table as pandas' `to_csv(index=False)` would, spreadsheet-safe, into `out`.
pub fn write_csv_to<W: Write>(table: &TableView<'_>, out: W) -> io::Result<W> {
    let mut w = CsvWriter::new(out);
    w.table(table)?;
    w.finish()
}

/// [`write_csv_to`] into memory.
pub fn write_csv(table: &Table) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * table.n_rows().max(1) * table.n_columns().max(1));
    let mut w = CsvWriter::new(&mut out);
    // Writing into a Vec cannot fail.
    let _ = w.table(&TableView::from(table)).and_then(|()| w.finish());
    out
}

/// [`write_csv`] without neutralising text: for copies of uploaded inputs that the service
/// reads back as uploads (a stored population table, the ward table a TPR download makes).
pub fn write_csv_verbatim(table: &Table) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = CsvWriter::verbatim(&mut out);
    let _ = w.table(&TableView::from(table)).and_then(|()| w.finish());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mrpt_table::Column;

    /// The writer this one replaced (the csv crate, one `String` per cell), kept only as the
    /// reference for the byte-identity test.
    fn old_write_csv(table: &Table) -> Vec<u8> {
        let mut wtr = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(Vec::new());
        let _ = wtr.write_record(table.columns().iter().map(|c| c.name.as_str()));
        for row in 0..table.n_rows() {
            for c in table.columns() {
                let cell = c.data.cell_text(row).unwrap_or_default();
                let _ = wtr.write_field(&cell);
            }
            let _ = wtr.write_record(None::<&[u8]>);
        }
        wtr.into_inner().unwrap_or_default()
    }

    fn texts(v: &[Option<&str>]) -> ColumnData {
        ColumnData::Text(v.iter().map(|s| s.map(str::to_string)).collect())
    }

    #[test]
    fn same_bytes_as_the_csv_crate() {
        let awkward = [
            Some("plain"),
            None,
            Some(""),
            Some("a,b"),
            Some("say \"hi\""),
            Some("two\nlines"),
            Some("cr\rhere"),
            Some(" spaced "),
            Some("Ünïcödé, ward"),
            Some("\""),
        ];
        let n = awkward.len();
        let t = Table::new(vec![
            Column::new("name, with comma", texts(&awkward)),
            Column::new(
                "x",
                ColumnData::Float(
                    [Some(0.1), None, Some(f64::NAN), Some(-0.0), Some(1e-5)]
                        .into_iter()
                        .cycle()
                        .take(n)
                        .collect(),
                ),
            ),
            Column::new(
                "i",
                ColumnData::Int((0..n as i64).map(|i| (i % 3 != 0).then_some(-i)).collect()),
            ),
            Column::new(
                "b",
                ColumnData::Bool((0..n).map(|i| (i % 4 != 0).then_some(i % 2 == 0)).collect()),
            ),
        ])
        .unwrap();
        assert_eq!(
            String::from_utf8(write_csv(&t)).unwrap(),
            String::from_utf8(old_write_csv(&t)).unwrap()
        );
        // One column with empty cells: `""` keeps the row, as the csv crate (and pandas) write.
        let one = Table::new(vec![Column::new("w", texts(&[Some("a"), None, Some("")]))]).unwrap();
        assert_eq!(write_csv(&one), old_write_csv(&one));
        assert_eq!(write_csv(&one), b"w\na\n\"\"\n\"\"\n");
        let none = Table::with_rows(0);
        assert_eq!(write_csv(&none), old_write_csv(&none));
    }

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        let cells = [
            Some("=HYPERLINK(\"http://x\",\"y\")"),
            Some("+cmd|' /C calc'!A0"),
            Some("-2+3"),
            Some("@SUM(A1)"),
            Some("\tTab"),
            Some("\rCR"),
            Some("-12.5"),
            Some("+3"),
            Some("-inf"),
            Some("'=already"),
            Some("'plain"),
            Some("Kano"),
        ];
        let t = Table::new(vec![Column::new("=name", texts(&cells))]).unwrap();
        let csv = String::from_utf8(write_csv(&t)).unwrap();
        assert_eq!(
            csv,
            "'=name\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\n'+cmd|' /C calc'!A0\n'-2+3\n\
             '@SUM(A1)\n'\tTab\n\"'\rCR\"\n-12.5\n+3\n-inf\n''=already\n'plain\nKano\n"
        );
        // Reading back gives the original text.
        let back = crate::read_result_table(csv.as_bytes(), "x.csv").unwrap();
        assert_eq!(back.column_names(), ["=name"]);
        assert_eq!(back.columns()[0].data, texts(&cells));
        // Verbatim keeps every cell.
        let raw = String::from_utf8(write_csv_verbatim(&t)).unwrap();
        assert!(raw.starts_with("=name\n\"=HYPERLINK"));
        // Numeric columns are never touched.
        let n = Table::new(vec![Column::new("x", ColumnData::Float(vec![Some(-1.5)]))]).unwrap();
        assert_eq!(write_csv(&n), b"x\n-1.5\n");
    }
}
