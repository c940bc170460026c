//! What one uploaded file may cost to read. Every reader checks these caps while it reads,
//! before it allocates for what the input claims (a sheet's used range, a .dbf's record count,
//! a zip entry's declared size), so a few kilobytes can never ask for gigabytes.
//!
//! Memory of a read is bounded by the caps and by the input: a CSV costs at most about
//! [`CSV_BYTES_PER_INPUT_BYTE`] bytes per input byte at its peak (measured by the `hostile`
//! tests); a workbook or a zip at most what its inflated parts hold, which
//! [`Limits::max_inflated_bytes`] bounds, plus the table of at most [`Limits::max_cells`] cells.

/// The bound on a CSV read's peak memory per input byte, which the `hostile` tests assert: the
/// decoded text, the parsed records and the typed columns of a worst-case table of
/// one-character cells (measured: 23 bytes per input byte).
pub const CSV_BYTES_PER_INPUT_BYTE: usize = 32;

/// dBase III/IV's field limit: a `.dbf` declaring more fields is refused.
pub const MAX_DBF_FIELDS: usize = 255;

/// Caps on one read. `Default` holds the service's defaults (the `[app]` configuration keys of
/// the same names override them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most columns of a table (CSV, workbook sheet, .dbf attributes).
    pub max_columns: usize,
    /// Most cells (rows x columns) of a table, counted before the table is built.
    pub max_cells: usize,
    /// Most bytes inflated from one zip: every part of a workbook, or the parts of a shapefile
    /// that are read (.shp, .dbf, .prj, .cpg). Counted while inflating; declared sizes are
    /// not trusted.
    pub max_inflated_bytes: u64,
    /// Most entries in a zip (shapefile or workbook).
    pub max_zip_entries: usize,
    /// Largest inflated/compressed ratio of a read zip entry larger than 1 MiB.
    pub max_zip_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_columns: 1000,
            max_cells: 5_000_000,
            max_inflated_bytes: 512 << 20,
            max_zip_entries: 1000,
            max_zip_ratio: 200,
        }
    }
}

/// How often (in records or cells) the readers look at the cancellation flag.
pub(crate) const CANCEL_EVERY: usize = 4096;
