//! The crate's one error type. Every variant names what failed so the HTTP layer can echo it.

/// Everything that can go wrong while reading or writing a data file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A table-level failure: no ward-name column, text in a numeric column, a missing column,
    /// a column of the wrong length.
    #[error(transparent)]
    Table(#[from] mrpt_table::Error),

    #[error("{file} is empty: it holds no header and no data rows")]
    Empty { file: String },

    #[error("{file} has a header but no data rows")]
    NoRows { file: String },

    #[error("{file} looks like binary data, not a text table ({reason})")]
    Binary { file: String, reason: String },

    #[error("{file}: unsupported file type; upload a .csv, .txt, .xlsx or .xls table")]
    UnsupportedFileType { file: String },

    #[error("{file} has rows of inconsistent width: the header has {expected} fields, but {}", describe_ragged(.rows))]
    RaggedRows {
        file: String,
        expected: usize,
        /// (1-based line number, field count) of the first offending rows.
        rows: Vec<(usize, usize)>,
    },

    #[error("{file}: CSV syntax error near line {line}: {reason}")]
    CsvSyntax {
        file: String,
        line: usize,
        reason: String,
    },

    #[error("column name `{column}` appears twice")]
    DuplicateColumn { column: String },

    #[error("{file} is not a readable Excel workbook: {reason}")]
    NotExcel { file: String, reason: String },

    #[error("{file}: no worksheet holds data")]
    NoSheet { file: String },

    #[error("the upload is not a valid zip archive: {reason}")]
    BadZip { reason: String },

    #[error("the zip holds no {missing}; entries found: {}", .found.join(", "))]
    ZipMissingPart {
        missing: &'static str,
        found: Vec<String>,
    },

    #[error("zip entry `{entry}` is refused: {reason}")]
    ZipUnsafeEntry { entry: String, reason: &'static str },

    #[error("zip refused as a possible zip bomb: {reason}")]
    ZipBomb { reason: String },

    #[error("{file} is corrupt: {reason}")]
    CorruptShapefile { file: String, reason: String },

    #[error(
        "shapefile geometry type {code} ({name}) is not supported; ward boundaries must be polygons"
    )]
    UnsupportedShapeType { code: i32, name: &'static str },

    #[error("the shapefile has {shapes} shapes but its attribute table has {records} records")]
    RecordCountMismatch { shapes: usize, records: usize },

    #[error(
        "unsupported coordinate system in the .prj ({reason}); re-project the shapefile to WGS84 (EPSG:4326)"
    )]
    UnsupportedCrs { reason: String },

    #[error("invalid WKB geometry in row {row}: {reason}")]
    BadWkb { row: usize, reason: String },

    #[error("{rows} rows but {geometries} geometries")]
    GeometryCount { rows: usize, geometries: usize },

    #[error("not a readable GeoParquet file: {reason}")]
    BadGeoParquet { reason: String },

    #[error("parquet/arrow failure: {0}")]
    Parquet(String),

    #[error("no population column (expected `Population`); columns found: {}", .found.join(", "))]
    NoPopulationColumn { found: Vec<String> },

    #[error(
        "{file}: unsupported file type for a facility export; upload a .csv, .xlsx or .xls file"
    )]
    TprFileType { file: String },

    #[error(
        "{file}: no header row found in the first 20 rows (a header has at least 3 named cells, no numbers, and names such as orgunitlevel3, ward or a testing indicator)"
    )]
    NoHeaderRow { file: String },

    #[error("the export has no {} column; columns found: {}. Send `mapping` to name them, e.g. {{\"ward\": \"<header>\", \"lga\": \"<header>\"}}", .missing.join(" or "), .found.join(" | "))]
    TprMissingFields {
        missing: Vec<String>,
        found: Vec<String>,
    },

    #[error("no malaria testing columns could be placed: a facility export needs, for RDT or microscopy, a tested column and a positive column (e.g. `Persons presenting with fever & tested by RDT <5yrs` and `Persons tested positive for malaria by RDT <5yrs`).{}{}{} Send `mapping` (e.g. {{\"u5_rdt_tested\": \"<header>\", \"u5_rdt_positive\": \"<header>\"}}) to place them", describe_list(" Columns not placed: ", .unplaced), describe_list(" Ambiguous columns: ", .ambiguous), describe_list(" Incomplete pairs: ", .partial))]
    NoIndicatorPair {
        unplaced: Vec<String>,
        ambiguous: Vec<String>,
        partial: Vec<String>,
    },

    #[error("invalid mapping: {reason}")]
    TprMapping { reason: String },

    #[error("{file} has more than {limit} data rows; split the export (by year or by state)")]
    TooManyRows { file: String, limit: usize },

    #[error("{file} has {found} header columns; at most {limit} are accepted")]
    TooManyColumns {
        file: String,
        found: usize,
        limit: usize,
    },

    #[error("I/O failure on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the input was at fault (the caller answers 4xx); false for failures of our own
    /// (writing parquet, the file system), which the caller logs and answers generically.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Error::Parquet(_) | Error::Io { .. })
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

pub type Result<T, E = Error> = std::result::Result<T, E>;
