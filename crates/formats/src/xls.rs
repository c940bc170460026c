//! A pre-scan of legacy Excel files (.xls: BIFF records in an OLE2/CFB container) that bounds
//! what calamine will allocate before calamine sees the bytes.
//!
//! calamine's .xls reader parses every sheet of the workbook when it opens it and trusts what
//! the file says: it reserves a DIMENSIONS record's rows x columns, builds each sheet's grid over
//! the cells' bounding box, keeps the capacity a label claims (65,535 bytes for a one-character
//! label), copies a shared string into every cell that names it, follows sector chains without
//! looking for cycles and sizes buffers from header fields. A few kilobytes can therefore ask
//! for gigabytes, which aborts the process (an allocation failure cannot be caught).
//!
//! [`check_xls`] walks the same structures the way calamine does, without building anything,
//! and refuses the file when what calamine would allocate is over the caps of [`Limits`]:
//! - the container: sector ids inside the file, no cycles in the DIFAT, FAT and mini-FAT chains,
//!   header sizes (FAT, directory, mini-FAT, root mini stream, the workbook stream) within the
//!   file;
//! - every sheet calamine will parse: a DIMENSIONS area, the bounding box of its cells and of its
//!   formulas at most `max_cells`, at most `max_columns` wide; the cells of all sheets at most
//!   `max_cells`;
//! - the shared string table: at most `max_cells` strings, declared or present;
//! - text: the bytes the cells' strings and the formulas' text will hold (counting the capacity a
//!   label claims and one copy of a shared string per cell) at most `max_inflated_bytes`;
//! - formulas: the bytes calamine's formula printer moves (its inserts are quadratic in a
//!   formula's length) at most [`MAX_XLS_FORMULA_WORK`].
//!
//! The scan itself is linear in the file and holds at most the workbook stream and a table of
//! shared-string lengths.

use crate::error::{Error, Result};
use crate::limits::Limits;

const ENDOFCHAIN: u32 = 0xFFFF_FFFE;
const RESERVED_SECTORS: u32 = 0xFFFF_FFFA;
const DIFSECT: u32 = 0xFFFF_FFFC;

/// Most sheets (BoundSheet records) a workbook may list.
pub const MAX_XLS_SHEETS: usize = 256;
/// Most bytes calamine's formula printer may move for all formulas of a workbook (it inserts
/// into the middle of a formula's text, so a long formula costs its length squared).
pub const MAX_XLS_FORMULA_WORK: u64 = 1 << 30;
/// Most CONTINUE records after the shared string table (calamine's handling of them is
/// quadratic in their count); Excel writes one per 8,224 bytes, so this allows a 134 MB table.
pub const MAX_SST_CONTINUES: usize = 16_384;
/// calamine reserves a vector of 4-byte entries whose length comes from two unrelated header
/// fields; refused when that reservation would be larger than this.
const MAX_DIFAT_RESERVE: u64 = 64 << 20;

/// Refuses an .xls whose reading would cost more than `limits` allow, or that calamine could
/// not read without looping or allocating without bound. Call before calamine opens it.
pub fn check_xls(bytes: &[u8], file: &str, limits: &Limits) -> Result<()> {
    let stream = workbook_stream(bytes).map_err(|reason| Error::NotExcel {
        file: file.into(),
        reason,
    })?;
    scan_biff(&stream, file, limits)
}

/// The workbook stream ("Workbook", else "Book") of the compound file, read the way calamine
/// reads it, with every size and chain checked first.
fn workbook_stream(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let cfb = Cfb::parse(bytes)?;
    // calamine falls back to "Book" only when "Workbook" cannot be read; it reads (or loops
    // on) a "Workbook" entry whenever there is one.
    let name = if cfb.dirs.iter().any(|d| d.0 == "Workbook") {
        "Workbook"
    } else {
        "Book"
    };
    cfb.stream(name).map_err(|e| format!("its container: {e}"))
}

struct Cfb<'a> {
    bytes: &'a [u8],
    sector_size: usize,
    /// calamine's `maxid`: the largest sector id it accepts.
    max_id: u32,
    fat: Vec<u32>,
    dirs: Vec<(String, u32, u64)>,
    mini_fat: Vec<u32>,
    mini_stream: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl<'a> Cfb<'a> {
    fn parse(bytes: &'a [u8]) -> std::result::Result<Cfb<'a>, String> {
        let len = bytes.len();
        let header = bytes
            .get(..512)
            .ok_or("the file is shorter than an OLE2 header (truncated?)")?;
        let field = |at| u32_at(header, at).unwrap_or(0) as u64;
        let sector_size = match u16_at(header, 30) {
            Some(9) => 512usize,
            Some(12) => 4096,
            _ => return Err("its OLE2 sector size is neither 512 nor 4096 bytes".into()),
        };
        if len < sector_size {
            return Err("the file is shorter than its OLE2 header (truncated?)".into());
        }
        if u16_at(header, 32) != Some(6) {
            return Err("its OLE2 mini-sector size is not 64 bytes".into());
        }
        let ss = sector_size as u64;
        let dir_len = field(40);
        let fat_len = field(44);
        let dir_start = field(48) as u32;
        let mini_fat_start = field(60) as u32;
        let mini_fat_len = field(64);
        let difat_start = field(68) as u32;
        // calamine reads the DIFAT length from bytes 62..66 (straddling two fields) and reserves
        // that many entries.
        let difat_reserve = field(62);
        let max_id = (len / sector_size) as u32;
        let too_big = |what: &str, n: u64| {
            Err(format!(
                "its OLE2 header claims {what} of {n} bytes in a file of {len} bytes"
            ))
        };
        if fat_len > max_id as u64 + 1 {
            return too_big("a sector table", fat_len.saturating_mul(ss));
        }
        if dir_len.saturating_mul(ss) > len as u64 {
            return too_big("a directory", dir_len.saturating_mul(ss));
        }
        if mini_fat_len.saturating_mul(ss) > len as u64 {
            return too_big("a mini-sector table", mini_fat_len.saturating_mul(ss));
        }
        if difat_reserve * 4 > MAX_DIFAT_RESERVE.max(len as u64) {
            return too_big("a sector index", difat_reserve * 4);
        }
        let mut cfb = Cfb {
            bytes,
            sector_size,
            max_id,
            fat: Vec::new(),
            dirs: Vec::new(),
            mini_fat: Vec::new(),
            mini_stream: Vec::new(),
        };
        // The DIFAT: 109 entries in the header, then a chain whose last entry links on.
        let mut difat: Vec<u32> = (0..109)
            .map(|i| u32_at(header, 76 + 4 * i).unwrap_or(u32::MAX))
            .collect();
        let mut seen = vec![false; max_id as usize + 1];
        let mut id = difat_start;
        while id < RESERVED_SECTORS {
            let slot = seen
                .get_mut(id as usize)
                .ok_or_else(|| format!("its sector index links to sector {id}, past the end"))?;
            if std::mem::replace(slot, true) {
                return Err(format!("its sector index chain loops (sector {id} twice)"));
            }
            let sector = cfb.sector(id)?;
            difat.extend(
                sector
                    .chunks_exact(4)
                    .map(|c| u32_at(c, 0).unwrap_or(u32::MAX)),
            );
            id = difat.pop().unwrap_or(ENDOFCHAIN);
        }
        let fat_ids: Vec<u32> = difat.into_iter().filter(|id| *id < DIFSECT).collect();
        if fat_ids.len() > max_id as usize + 1 {
            return Err(format!(
                "it lists {} sector-table sectors in a file of {} sectors",
                fat_ids.len(),
                max_id as usize + 1
            ));
        }
        let mut fat = Vec::new();
        for id in fat_ids {
            let sector = cfb.sector(id)?;
            fat.extend(
                sector
                    .chunks_exact(4)
                    .map(|c| u32_at(c, 0).unwrap_or(u32::MAX)),
            );
        }
        cfb.fat = fat;
        let dir_bytes = cfb.chain(dir_start, false)?;
        for entry in dir_bytes.chunks(128) {
            if entry.len() < 128 {
                return Err("its directory ends inside an entry".into());
            }
            let units: Vec<u16> = entry[..64]
                .chunks_exact(2)
                .map(|c| u16_at(c, 0).unwrap_or(0))
                .collect();
            let mut name = String::from_utf16_lossy(&units);
            if let Some(end) = name.find('\0') {
                name.truncate(end);
            }
            let start = u32_at(entry, 116).unwrap_or(ENDOFCHAIN);
            let size = if sector_size == 512 {
                u32_at(entry, 120).unwrap_or(0) as u64
            } else {
                u64_at(entry, 120).unwrap_or(0)
            };
            cfb.dirs.push((name, start, size));
        }
        let Some(&(_, root_start, root_len)) = cfb.dirs.first() else {
            return Err("its directory is empty".into());
        };
        if mini_fat_len > 0 {
            if root_len > len as u64 {
                return too_big("a mini stream", root_len);
            }
            let mut mini = cfb.chain(root_start, false)?;
            if root_len > 0 {
                mini.truncate(root_len as usize);
            }
            let mini_fat = cfb.chain(mini_fat_start, false)?;
            cfb.mini_fat = mini_fat
                .chunks_exact(4)
                .map(|c| u32_at(c, 0).unwrap_or(u32::MAX))
                .collect();
            cfb.mini_stream = mini;
        }
        Ok(cfb)
    }

    /// Sector `id` as calamine reads it (the last one may be short).
    fn sector(&self, id: u32) -> std::result::Result<&'a [u8], String> {
        let start = (id as usize + 1).saturating_mul(self.sector_size);
        if id > self.max_id || start >= self.bytes.len() {
            return Err(format!(
                "sector {id} lies past the end of the file (truncated?)"
            ));
        }
        let end = (start + self.sector_size).min(self.bytes.len());
        Ok(&self.bytes[start..end])
    }

    /// A chain of sectors (or of 64-byte mini sectors in the mini stream), checked for
    /// cycles and for links outside the table.
    fn chain(&self, start: u32, mini: bool) -> std::result::Result<Vec<u8>, String> {
        let table = if mini { &self.mini_fat } else { &self.fat };
        let mut seen = vec![false; table.len()];
        let mut out = Vec::new();
        let mut id = start;
        while id != ENDOFCHAIN {
            let slot = seen
                .get_mut(id as usize)
                .ok_or_else(|| format!("a chain links to sector {id}, outside its table"))?;
            if std::mem::replace(slot, true) {
                return Err(format!("a sector chain loops (sector {id} twice)"));
            }
            if mini {
                let at = id as usize * 64;
                let piece = self
                    .mini_stream
                    .get(at..at + 64)
                    .ok_or_else(|| format!("mini sector {id} lies past the mini stream"))?;
                out.extend_from_slice(piece);
            } else {
                out.extend_from_slice(self.sector(id)?);
            }
            id = table[id as usize];
        }
        Ok(out)
    }

    fn stream(&self, name: &str) -> std::result::Result<Vec<u8>, String> {
        let &(_, start, size) = self
            .dirs
            .iter()
            .find(|d| d.0 == name)
            .ok_or_else(|| format!("no `{name}` stream"))?;
        if size > self.bytes.len() as u64 {
            return Err(format!(
                "the `{name}` stream claims {size} bytes in a file of {} bytes (truncated?)",
                self.bytes.len()
            ));
        }
        let mut data = self.chain(start, size < 4096)?;
        if size > 0 {
            data.truncate(size as usize);
        }
        Ok(data)
    }
}

/// One BIFF record with its CONTINUE records, as calamine's record iterator yields it.
struct Record<'a> {
    typ: u16,
    data: &'a [u8],
    cont: std::collections::VecDeque<&'a [u8]>,
}

impl<'a> Record<'a> {
    fn next_continue(&mut self) -> bool {
        match self.cont.pop_front() {
            Some(d) => {
                self.data = d;
                true
            }
            None => false,
        }
    }

    fn skip(&mut self, mut n: usize) -> Option<()> {
        while n > 0 {
            if self.data.is_empty() && !self.next_continue() {
                return None;
            }
            let l = n.min(self.data.len());
            self.data = &self.data[l..];
            n -= l;
        }
        Some(())
    }
}

/// calamine's record iterator: `None` at the end, `Some(Err)` on a record cut short.
fn next_record<'a>(stream: &mut &'a [u8]) -> Option<std::result::Result<Record<'a>, ()>> {
    if stream.len() < 4 {
        return if stream.is_empty() {
            None
        } else {
            Some(Err(()))
        };
    }
    let typ = u16_at(stream, 0).unwrap_or(0);
    let len = u16_at(stream, 2).unwrap_or(0) as usize;
    if stream.len() < len + 4 {
        return Some(Err(()));
    }
    let data = &stream[4..len + 4];
    *stream = &stream[len + 4..];
    let mut cont = std::collections::VecDeque::new();
    while stream.len() > 4 && u16_at(stream, 0) == Some(0x003C) {
        let len = u16_at(stream, 2).unwrap_or(0) as usize;
        if stream.len() < len + 4 {
            return Some(Err(()));
        }
        cont.push_back(&stream[4..len + 4]);
        *stream = &stream[len + 4..];
    }
    Some(Ok(Record { typ, data, cont }))
}

/// The bytes one decoded character may take (UTF-8 of a UTF-16 unit or of a replacement).
const MAX_UTF8_PER_UNIT: u64 = 3;

struct Totals<'a> {
    file: &'a str,
    limits: &'a Limits,
    cells: u64,
    text: u64,
    formula_work: u64,
}

impl Totals<'_> {
    fn add_text(&mut self, bytes: u64) -> Result<()> {
        self.text += bytes;
        if self.text > self.limits.max_inflated_bytes {
            return Err(Error::TooManyCells {
                file: self.file.into(),
                what: format!(
                    "cells and formulas whose text takes more than {} bytes to hold \
                     (the text limit)",
                    self.limits.max_inflated_bytes
                ),
                max: self.limits.max_cells,
            });
        }
        Ok(())
    }
}

/// Bounding box of a set of cell positions.
#[derive(Default)]
struct Bounds(Option<(u32, u32, u32, u32)>);

impl Bounds {
    fn add(&mut self, row: u32, col: u32) {
        let (r0, r1, c0, c1) = self.0.unwrap_or((row, row, col, col));
        self.0 = Some((r0.min(row), r1.max(row), c0.min(col), c1.max(col)));
    }

    fn size(&self) -> (u64, u64) {
        match self.0 {
            Some((r0, r1, c0, c1)) => ((r1 - r0) as u64 + 1, (c1 - c0) as u64 + 1),
            None => (0, 0),
        }
    }
}

fn malformed(file: &str, reason: impl Into<String>) -> Error {
    Error::NotExcel {
        file: file.into(),
        reason: reason.into(),
    }
}

fn scan_biff(stream: &[u8], file: &str, limits: &Limits) -> Result<()> {
    let mut totals = Totals {
        file,
        limits,
        cells: 0,
        text: 0,
        formula_work: 0,
    };
    let max_cells = limits.max_cells as u64;
    // Workbook globals.
    let mut sheets: Vec<usize> = Vec::new();
    let mut sst: Vec<u32> = Vec::new();
    let mut max_sheet_name = 4u64;
    let mut max_defined_name = 5u64;
    let mut rest = stream;
    while let Some(record) = next_record(&mut rest) {
        let Ok(mut r) = record else {
            return Err(malformed(
                file,
                "a record of the workbook stream is cut short",
            ));
        };
        match r.typ {
            0x0085 => {
                // BoundSheet8: the sheet's offset in the stream, then its name.
                let pos = u32_at(r.data, 0).unwrap_or(u32::MAX) as usize;
                let cch = r.data.get(6).copied().unwrap_or(0) as u64;
                max_sheet_name = max_sheet_name.max(cch * MAX_UTF8_PER_UNIT);
                sheets.push(pos);
                if sheets.len() > MAX_XLS_SHEETS {
                    return Err(Error::TooManyCells {
                        file: file.into(),
                        what: format!("more than {MAX_XLS_SHEETS} sheets"),
                        max: limits.max_cells,
                    });
                }
            }
            0x0018 => {
                // Lbl: a defined name, which a formula may print.
                let cch = r.data.get(3).copied().unwrap_or(0) as u64;
                max_defined_name = max_defined_name.max(cch * MAX_UTF8_PER_UNIT);
            }
            0x00FC => sst = scan_sst(&mut r, &mut totals)?,
            0x000A => break,
            _ => {}
        }
    }
    let mut scanned = 0u64;
    let mut value_area = 0u64;
    let mut formula_area = 0u64;
    for pos in sheets {
        let mut rest = stream
            .get(pos..)
            .ok_or_else(|| malformed(file, format!("a sheet starts at {pos}, past the end")))?;
        let start_len = rest.len();
        let mut values = Bounds::default();
        let mut formulas = Bounds::default();
        let mut formula_pos = (0u32, 0u32);
        let mut cells = 0u64;
        macro_rules! cell {
            ($row:expr, $col:expr) => {{
                values.add($row, $col);
                cells += 1;
            }};
        }
        while let Some(record) = next_record(&mut rest) {
            let Ok(r) = record else {
                // calamine stops the whole read here.
                return Err(malformed(file, "a record of a sheet is cut short"));
            };
            let d = r.data;
            let pos_of = |d: &[u8]| {
                (
                    u16_at(d, 0).unwrap_or(0) as u32,
                    u16_at(d, 2).unwrap_or(0) as u32,
                )
            };
            match r.typ {
                0x0200 => {
                    let (rows, cols) = dimensions(d).ok_or_else(|| {
                        malformed(
                            file,
                            "a DIMENSIONS record is malformed (last row before the first)",
                        )
                    })?;
                    if rows.saturating_mul(cols) > max_cells {
                        return Err(Error::TooManyCells {
                            file: file.into(),
                            what: format!("a sheet declaring {rows} rows by {cols} columns"),
                            max: limits.max_cells,
                        });
                    }
                }
                0x0203 | 0x0205 | 0x027E if d.len() >= 6 => {
                    let (row, col) = pos_of(d);
                    cell!(row, col);
                }
                0x0204 if d.len() >= 6 => {
                    // Label: calamine keeps a string of the capacity the label claims.
                    let (row, col) = pos_of(d);
                    cell!(row, col);
                    let cch = u16_at(d, 6).unwrap_or(0) as u64;
                    totals.add_text(cch * MAX_UTF8_PER_UNIT)?;
                }
                0x0207 => {
                    // String: the text result of the formula before it.
                    cell!(formula_pos.0, formula_pos.1);
                    let cch = u16_at(d, 0).unwrap_or(0) as u64;
                    totals.add_text(cch * MAX_UTF8_PER_UNIT)?;
                }
                0x00FD if d.len() >= 10 => {
                    // LabelSst: a copy of the shared string per cell.
                    let index = u32_at(d, 6).unwrap_or(u32::MAX) as usize;
                    if let Some(&len) = sst.get(index)
                        && len > 0
                    {
                        let (row, col) = pos_of(d);
                        cell!(row, col);
                        totals.add_text(len as u64)?;
                    }
                }
                0x00BD if d.len() >= 6 => {
                    // MulRk: one row, consecutive columns.
                    let (row, first) = pos_of(d);
                    let n = (d.len() - 6) / 6;
                    if n > 0 {
                        values.add(row, first);
                        values.add(row, first + n as u32 - 1);
                        cells += n as u64;
                    }
                }
                0x0006 if d.len() >= 20 => {
                    let (row, col) = pos_of(d);
                    formula_pos = (row, col);
                    cell!(row, col);
                    formulas.add(row, col);
                    let (text, work) = formula_cost(&d[20..], max_sheet_name, max_defined_name);
                    totals.add_text(text)?;
                    totals.formula_work += work;
                    if totals.formula_work > MAX_XLS_FORMULA_WORK {
                        return Err(Error::TooManyCells {
                            file: file.into(),
                            what: format!(
                                "formulas whose printing costs more than {MAX_XLS_FORMULA_WORK} \
                                 bytes of work"
                            ),
                            max: limits.max_cells,
                        });
                    }
                }
                0x000A => break,
                _ => {}
            }
        }
        scanned += (start_len - rest.len()) as u64;
        if scanned > 4 * stream.len() as u64 + 4096 {
            return Err(malformed(file, "its sheets overlap in the workbook stream"));
        }
        let (rows, cols) = values.size();
        if cols > limits.max_columns as u64 {
            return Err(Error::TooManyColumns {
                file: file.into(),
                columns: cols as usize,
                max: limits.max_columns,
            });
        }
        value_area += rows * cols;
        let (frows, fcols) = formulas.size();
        formula_area += frows * fcols;
        totals.cells += cells;
        for (what, n) in [
            ("cells", totals.cells),
            ("a used range of", value_area),
            ("a formula range of", formula_area),
        ] {
            if n > max_cells {
                let what = if what == "cells" {
                    format!("{n} cells")
                } else {
                    format!("{what} {rows} rows by {cols} columns ({n} cells in all sheets)")
                };
                return Err(Error::TooManyCells {
                    file: file.into(),
                    what,
                    max: limits.max_cells,
                });
            }
        }
        if mrpt_table::cancel::cancelled() {
            return Err(Error::Cancelled);
        }
    }
    Ok(())
}

/// A DIMENSIONS record's rows and columns as calamine computes them, `None` when calamine's
/// arithmetic would underflow.
fn dimensions(d: &[u8]) -> Option<(u64, u64)> {
    let (rf, rl, mut cf, cl) = match d.len() {
        10 => (
            u16_at(d, 0)? as u32,
            u16_at(d, 2)? as u32,
            u16_at(d, 4)? as u32,
            u16_at(d, 6)? as u32,
        ),
        14 => (
            u32_at(d, 0)?,
            u32_at(d, 4)?,
            u16_at(d, 8)? as u32,
            u16_at(d, 10)? as u32,
        ),
        // calamine refuses the workbook: nothing is allocated.
        _ => return Some((0, 0)),
    };
    if 0xFF < cf || cl < cf {
        cf = 0;
    }
    if rl >= 1 && cl >= 1 {
        let rows = (rl - 1).checked_sub(rf)? as u64 + 1;
        let cols = (cl - 1).checked_sub(cf)? as u64 + 1;
        Some((rows, cols))
    } else {
        Some((1, 1))
    }
}

/// The shared string table's strings' UTF-8 lengths (upper bounds), parsed as calamine parses
/// it; a table calamine would refuse is refused.
fn scan_sst(r: &mut Record<'_>, totals: &mut Totals<'_>) -> Result<Vec<u32>> {
    let file = totals.file;
    let max_cells = totals.limits.max_cells;
    let bad = || malformed(file, "its shared string table is malformed");
    // calamine takes each CONTINUE record off the front of a vector: quadratic in their count.
    if r.cont.len() > MAX_SST_CONTINUES {
        return Err(Error::TooManyCells {
            file: file.into(),
            what: format!(
                "a shared string table split into {} pieces (at most {MAX_SST_CONTINUES})",
                r.cont.len()
            ),
            max: max_cells,
        });
    }
    let unique = u32_at(r.data, 4).ok_or_else(bad)? as usize;
    if unique > max_cells {
        return Err(Error::TooManyCells {
            file: file.into(),
            what: format!("a shared string table of {unique} strings"),
            max: max_cells,
        });
    }
    r.data = &r.data[8..];
    let mut lens = Vec::new();
    while !r.data.is_empty() || r.next_continue() {
        if r.data.is_empty() {
            lens.push(0);
            continue;
        }
        if r.data.len() < 3 {
            return Err(bad());
        }
        let cch = u16_at(r.data, 0).ok_or_else(bad)? as usize;
        let flags = r.data[2];
        r.data = &r.data[3..];
        let mut high = flags & 1 != 0;
        let mut runs = 0usize;
        let mut ext = 0usize;
        if flags & 0x8 != 0 {
            runs = u16_at(r.data, 0).ok_or_else(bad)? as usize;
            r.data = &r.data[2..];
        }
        if flags & 0x4 != 0 {
            ext = u32_at(r.data, 0).ok_or_else(bad)? as i32 as usize;
            r.data = &r.data[4..];
        }
        let mut left = cch;
        while left > 0 {
            let width = if high { 2 } else { 1 };
            let take = left.min(r.data.len() / width);
            r.data = &r.data[take * width..];
            left -= take;
            if left > 0 {
                if !r.next_continue() || r.data.is_empty() {
                    return Err(bad());
                }
                high = r.data[0] & 1 != 0;
                r.data = &r.data[1..];
            }
        }
        r.skip(runs.saturating_mul(4)).ok_or_else(bad)?;
        r.skip(ext).ok_or_else(bad)?;
        let bytes = cch as u64 * MAX_UTF8_PER_UNIT;
        totals.add_text(bytes)?;
        lens.push(bytes as u32);
        if lens.len() > max_cells {
            return Err(Error::TooManyCells {
                file: file.into(),
                what: format!("a shared string table of more than {max_cells} strings"),
                max: max_cells,
            });
        }
    }
    Ok(lens)
}

/// Upper bounds of the text calamine's formula printer makes of one formula (`d` from the
/// formula's `cce` field on) and of the bytes it moves doing so. Follows calamine's token
/// walk; where calamine stops (an unknown token, a token cut short) the walk stops too, since
/// calamine then keeps only a short error message or refuses the workbook.
fn formula_cost(d: &[u8], sheet_name: u64, defined_name: u64) -> (u64, u64) {
    let Some(cce) = u16_at(d, 0) else {
        return (64, 0);
    };
    let Some(mut rgce) = d.get(2..2 + cce as usize) else {
        return (64, 0);
    };
    let mut len = 0u64;
    let mut work = 0u64;
    // Adds `text` bytes after `skip` bytes of operands; stops where calamine would.
    macro_rules! token {
        ($skip:expr, $text:expr) => {{
            let skip: usize = $skip;
            if rgce.len() < skip {
                break;
            }
            rgce = &rgce[skip..];
            len += $text;
        }};
    }
    while let Some((&ptg, tail)) = rgce.split_first() {
        rgce = tail;
        match ptg {
            0x3a | 0x5a | 0x7a => token!(6, sheet_name + 24),
            0x3b | 0x5b | 0x7b => token!(10, sheet_name + 32),
            0x3c | 0x5c | 0x7c => token!(6, sheet_name + 8),
            0x3d | 0x5d | 0x7d => token!(10, sheet_name + 8),
            0x01 => token!(4, 0),
            0x03..=0x11 => {
                // split_off the right operand and write it back after the operator.
                work += 2 * len;
                len += 2;
            }
            0x12 | 0x13 => {
                work += len;
                len += 1;
            }
            0x14 => len += 1,
            0x15 => {
                work += len;
                len += 2;
            }
            0x16 => {}
            0x17 => {
                let Some(&cch) = rgce.first() else { break };
                token!(2 + cch as usize, 2 + cch as u64 * MAX_UTF8_PER_UNIT)
            }
            0x18 => token!(5, 0),
            0x19 => {
                let Some(&etpg) = rgce.first() else { break };
                rgce = &rgce[1..];
                match etpg {
                    0x01 | 0x02 | 0x08 | 0x20 | 0x21 => token!(2, 0),
                    0x04 => {
                        let Some(n) = u16_at(rgce, 0) else { break };
                        token!(2 + 2 * (n as usize + 1), 0)
                    }
                    0x10 => {
                        work += 2 * len;
                        token!(2, 5)
                    }
                    0x40 | 0x41 => {
                        let (Some(&kind), Some(&cch)) = (rgce.first(), rgce.get(1)) else {
                            break;
                        };
                        if kind > 6 {
                            break;
                        }
                        // One insert into the formula per space.
                        work += cch as u64 * (len + cch as u64);
                        token!(2, cch as u64)
                    }
                    _ => break,
                }
            }
            0x1C => token!(1, 13),
            0x1D => token!(1, 5),
            0x1E => token!(2, 5),
            // f64's Display writes up to ~330 digits (1e308, 5e-324).
            0x1F => token!(8, 340),
            0x20 | 0x40 | 0x60 => token!(7, 10),
            0x21 | 0x41 | 0x61 => {
                // A function of fixed arity: its name, the arguments moved once, commas.
                work += 2 * len;
                token!(2, 64)
            }
            0x22 | 0x42 | 0x62 => {
                let Some(&argc) = rgce.first() else { break };
                work += 2 * len;
                token!(3, 32 + argc as u64)
            }
            0x23 | 0x43 | 0x63 => token!(4, defined_name),
            0x24 | 0x44 | 0x64 => token!(4, 16),
            0x25 | 0x45 | 0x65 => token!(8, 32),
            0x2A | 0x4A | 0x6A => token!(4, 5),
            0x2B | 0x4B | 0x6B => token!(8, 5),
            0x39 | 0x59 => token!(6, 10),
            _ => break,
        }
    }
    (len.max(64), work + len)
}
