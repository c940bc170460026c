//! The crate's one error type. Every variant names what failed so the HTTP layer can echo it.

/// Everything that can go wrong while reading or writing a data file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A table-level failure: no ward-name column, text in a numeric column, a missing column,
    /// a column of the wrong length.
    #[error(transparent)]
    Table(#[from] mrpt_table::Error),

    /// The file has no bytes, or only whitespace: neither header nor rows.
    #[error("{file} is empty: it holds no header and no data rows")]
    Empty {
        /// The file's name as uploaded.
        file: String,
    },

    /// The file has a header but no data row.
    #[error("{file} has a header but no data rows")]
    NoRows {
        /// The file's name as uploaded.
        file: String,
    },

    /// The "table" holds NUL bytes or many control characters: not a text table.
    #[error("{file} looks like binary data, not a text table ({reason})")]
    Binary {
        /// The file's name as uploaded.
        file: String,
        /// What gave it away (NUL bytes, share of control characters).
        reason: String,
    },

    /// The file name's extension is not a table format this reader takes.
    #[error("{file}: unsupported file type; upload a .csv, .txt, .xlsx or .xls table")]
    UnsupportedFileType {
        /// The file's name as uploaded.
        file: String,
    },

    /// Some rows have more or fewer fields than the header.
    #[error("{file} has rows of inconsistent width: the header has {expected} fields, but {}", describe_ragged(.rows))]
    RaggedRows {
        /// The file's name as uploaded.
        file: String,
        /// Number of fields in the header.
        expected: usize,
        /// (1-based line number, field count) of the first offending rows.
        rows: Vec<(usize, usize)>,
    },

    /// The CSV parser failed (an unterminated quote, invalid UTF-8).
    #[error("{file}: CSV syntax error near line {line}: {reason}")]
    CsvSyntax {
        /// The file's name as uploaded.
        file: String,
        /// 1-based line of the file where the parser stopped.
        line: usize,
        /// The parser's message.
        reason: String,
    },

    /// More columns than [`crate::limits::Limits`] allows.
    #[error(
        "{file} has {columns} columns; at most {max} can be read (one column per ward variable is \
         expected): remove the columns the analysis does not need"
    )]
    TooManyColumns {
        /// The file's name as uploaded.
        file: String,
        /// How many were seen (at least; reading stops at the first one over the cap).
        columns: usize,
        /// The configured column cap.
        max: usize,
    },

    /// Rows x columns over the configured cell cap (a sheet's declared range counts).
    #[error(
        "{file} holds {what}: more than the {max} cells (rows x columns) a table may have; \
         split the file or remove unused rows and columns"
    )]
    TooManyCells {
        /// The file's name as uploaded.
        file: String,
        /// What was found, e.g. "rows 1 to 1048576 of columns A to XFD".
        what: String,
        /// The configured cell cap.
        max: usize,
    },

    /// The request's [`mrpt_table::cancel`] flag was raised: nobody waits for the answer.
    #[error("the work was cancelled: nobody waits for its answer any more")]
    Cancelled,

    /// Two columns share a name after header cleaning.
    #[error("column name `{column}` appears twice")]
    DuplicateColumn {
        /// The repeated name.
        column: String,
    },

    /// A `.xlsx`/`.xls` upload that is not a readable workbook.
    #[error("{file} is not a readable Excel workbook: {reason}")]
    NotExcel {
        /// The file's name as uploaded.
        file: String,
        /// The workbook reader's message.
        reason: String,
    },

    /// Every worksheet of the workbook is empty.
    #[error("{file}: no worksheet holds data")]
    NoSheet {
        /// The file's name as uploaded.
        file: String,
    },

    /// The shapefile upload is not a zip archive (or a corrupt one).
    #[error("the upload is not a valid zip archive: {reason}")]
    BadZip {
        /// The zip reader's message.
        reason: String,
    },

    /// The zip lacks a shapefile part.
    #[error("the zip holds no {missing}; entries found: {}", .found.join(", "))]
    ZipMissingPart {
        /// The missing part (`.shp`, `.dbf`, ...).
        missing: &'static str,
        /// Entry names the archive does hold.
        found: Vec<String>,
    },

    /// An entry with an unsafe name (absolute, `..`) or a symbolic link: refused, never extracted.
    #[error("zip entry `{entry}` is refused: {reason}")]
    ZipUnsafeEntry {
        /// The entry's name inside the archive.
        entry: String,
        /// Why it is refused (shown to the user).
        reason: &'static str,
    },

    /// Declared or actual uncompressed size over the caps, or a ratio typical of zip bombs.
    #[error("zip refused as a possible zip bomb: {reason}")]
    ZipBomb {
        /// Which cap was exceeded, with the sizes.
        reason: String,
    },

    /// A `.shp`/`.shx`/`.dbf` whose bytes do not follow the format.
    #[error("{file} is corrupt: {reason}")]
    CorruptShapefile {
        /// The archive entry (`wards.shp`).
        file: String,
        /// What is wrong, with the byte offset where known.
        reason: String,
    },

    /// A shape type other than polygon (points, lines, ...).
    #[error(
        "shapefile geometry type {code} ({name}) is not supported; ward boundaries must be polygons"
    )]
    UnsupportedShapeType {
        /// The shape type code of the `.shp` header (5, 15, 25 are polygons).
        code: i32,
        /// Its name in the ESRI specification (`Point`, `PolyLine`...).
        name: &'static str,
    },

    /// The `.shp` and `.dbf` disagree on the number of wards.
    #[error("the shapefile has {shapes} shapes but its attribute table has {records} records")]
    RecordCountMismatch {
        /// Records in the `.shp`.
        shapes: usize,
        /// Records in the `.dbf`.
        records: usize,
    },

    /// A `.prj` naming a coordinate system other than WGS84 or WGS84 Transverse Mercator.
    #[error(
        "unsupported coordinate system in the .prj ({reason}); re-project the shapefile to WGS84 (EPSG:4326)"
    )]
    UnsupportedCrs {
        /// What the `.prj` declares, or why it could not be parsed.
        reason: String,
    },

    /// A GeoParquet geometry that is not valid WKB; `row` is 0-based.
    #[error("invalid WKB geometry in row {row}: {reason}")]
    BadWkb {
        /// 0-based row of the table.
        row: usize,
        /// The decoding failure.
        reason: String,
    },

    /// A table and its geometries differ in length (a caller bug when writing).
    #[error("{rows} rows but {geometries} geometries")]
    GeometryCount {
        /// Rows of the table.
        rows: usize,
        /// Geometries given.
        geometries: usize,
    },

    /// A parquet file without valid GeoParquet metadata or geometry column.
    #[error("not a readable GeoParquet file: {reason}")]
    BadGeoParquet {
        /// What is missing or malformed.
        reason: String,
    },

    /// The parquet/arrow libraries failed (our fault, not the input's).
    #[error("parquet/arrow failure: {0}")]
    Parquet(String),

    /// A population table without a population column (nor a PBI household layout).
    #[error("no population column (expected `Population`); columns found: {}", .found.join(", "))]
    NoPopulationColumn {
        /// The table's column names.
        found: Vec<String>,
    },

    /// A facility export whose extension is not `.csv`, `.xlsx` or `.xls`.
    #[error(
        "{file}: unsupported file type for a facility export; upload a .csv, .xlsx or .xls file"
    )]
    TprFileType {
        /// The file's name as uploaded.
        file: String,
    },

    /// No row of the first 20 looks like a facility-export header (tpr.md §1.2).
    #[error(
        "{file}: no header row found in the first 20 rows (a header has at least 3 named cells, no numbers, and names such as orgunitlevel3, ward or a testing indicator)"
    )]
    NoHeaderRow {
        /// The file's name as uploaded.
        file: String,
    },

    /// A facility export lacks structural fields (state, LGA, ward...) and no mapping names them.
    #[error("the export has no {} column; columns found: {}. Send `mapping` to name them, e.g. {{\"ward\": \"<header>\", \"lga\": \"<header>\"}}", .missing.join(" or "), .found.join(" | "))]
    TprMissingFields {
        /// Field names not found (tpr.md §2.1).
        missing: Vec<String>,
        /// The file's headers.
        found: Vec<String>,
    },

    /// No complete tested/positive pair of testing columns could be placed (tpr.md §2.2).
    #[error("no malaria testing columns could be placed: a facility export needs, for RDT or microscopy, a tested column and a positive column (e.g. `Persons presenting with fever & tested by RDT <5yrs` and `Persons tested positive for malaria by RDT <5yrs`).{}{}{} Send `mapping` (e.g. {{\"u5_rdt_tested\": \"<header>\", \"u5_rdt_positive\": \"<header>\"}}) to place them", describe_list(" Columns not placed: ", .unplaced), describe_list(" Ambiguous columns: ", .ambiguous), describe_list(" Incomplete pairs: ", .partial))]
    NoIndicatorPair {
        /// Headers that matched no indicator rule.
        unplaced: Vec<String>,
        /// Headers that matched several indicators.
        ambiguous: Vec<String>,
        /// Indicators found without their tested/positive partner.
        partial: Vec<String>,
    },

    /// The user's `mapping` override names an unknown field or header (tpr.md §2.4).
    #[error("invalid mapping: {reason}")]
    TprMapping {
        /// Which entry of the mapping is wrong, and why.
        reason: String,
    },

    /// More data rows than the configured cap.
    #[error("{file} has more than {limit} data rows; split the export (by year or by state)")]
    TooManyRows {
        /// The file's name as uploaded.
        file: String,
        /// The configured row cap.
        limit: usize,
    },

    /// Reading or writing a file failed.
    #[error("I/O failure on {path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the input was at fault (the caller answers 4xx); false for failures of our own
    /// (writing parquet, the file system), which the caller logs and answers generically.
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            Error::Parquet(_) | Error::Io { .. } | Error::Cancelled
        )
    }

    /// True when the input is well formed but over a size cap of [`crate::Limits`] (the caller
    /// answers 422: the file can be read, just not this much of it).
    pub fn is_over_limit(&self) -> bool {
        matches!(
            self,
            Error::TooManyColumns { .. } | Error::TooManyCells { .. } | Error::TooManyRows { .. }
        )
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Parquet(e.to_string())
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::Parquet(e.to_string())
    }
}

/// Runs a third-party decoder so that a panic inside it (arrow and parquet assert on some
/// malformed files) becomes an input error instead of taking the worker down.
pub(crate) fn contain_panic<T>(
    on_panic: impl FnOnce(String) -> Error,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the decoder failed".into());
            Err(on_panic(msg))
        }
    }
}

fn describe_list(title: &str, items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("{title}{}.", items.join(" | "))
    }
}

fn describe_ragged(rows: &[(usize, usize)]) -> String {
    rows.iter()
        .map(|(line, n)| format!("line {line} has {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// This crate's result, with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
