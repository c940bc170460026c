use thiserror::Error;

/// Everything that can stop an analysis or an ITN plan. Each variant names what failed so the
/// app can echo it to the user (these are input errors, not internal ones).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A table-level failure (no ward-name column, a missing or non-numeric column), worded
    /// as mrpt-formats words it at upload.
    #[error(transparent)]
    Table(#[from] mrpt_table::Error),
    #[error("the geometry index for row {row} points at geometry {index}, but only {count} exist")]
    BadGeometryIndex {
        row: usize,
        index: usize,
        count: usize,
    },
    #[error("geometry_index has {found} entries but the table has {expected} rows")]
    GeometryIndexLength { expected: usize, found: usize },
    #[error("the ward table is empty")]
    NoWards,
    #[error("at least 2 usable variables are needed, found {found}: {detail}")]
    TooFewVariables { found: usize, detail: String },
    #[error("{count} variables were selected; at most {max} are allowed (2^n - n - 1 models)")]
    TooManyVariables { count: usize, max: usize },
    #[error(
        "{models} models x {wards} wards = {cells} scores exceeds the limit of {limit}; select fewer variables"
    )]
    TooManyModelScores {
        models: usize,
        wards: usize,
        cells: usize,
        limit: usize,
    },
    #[error("at least 2 wards are needed to rank wards, found {found}")]
    TooFewWards { found: usize },
    #[error("total_nets must be positive, got {0}")]
    InvalidTotalNets(i64),
    #[error("avg_household_size must be a positive number, got {0}")]
    InvalidHouseholdSize(f64),
    #[error("the ranking is empty: no ward has a numeric score")]
    EmptyRanking,
    #[error("no state named `{state}` in the export; states: {}", .states.join(", "))]
    TprUnknownState { state: String, states: Vec<String> },
    #[error("no facility rows at level `{level}`; levels present: {}", .present.join(", "))]
    TprEmptyLevel { level: String, present: Vec<String> },
    #[error(
        "no tests by method `{method}` for age group `{age}` at facility level `{level}`: choose another method, age group or level"
    )]
    TprNoTests {
        method: String,
        age: String,
        level: String,
    },
    #[error("no complete tested/positive column pair for age group `{age}` and method `{method}`{}", ambiguous_note(.ambiguous))]
    TprNoPair {
        age: String,
        method: String,
        ambiguous: Vec<String>,
    },
    #[error(
        "burden per 1,000 for age group `{age}` needs a population for that age: upload a population table with {columns} (wards matched through the shapefile), or choose metric tpr"
    )]
    TprNoPopulation { age: String, columns: String },
    #[error(
        "no ward in the ranking matched the population table ({rankings} wards, {population} population rows)"
    )]
    NoPopulationMatch { rankings: usize, population: usize },
    /// A column asked for by name does not exist.
    #[error("there is no column `{column}`; columns: {}", .found.join(", "))]
    UnknownColumn { column: String, found: Vec<String> },
    /// A statistic needs numbers and the column holds text.
    #[error("`{column}` is a text column; numeric columns: {}", .numeric.join(", "))]
    NotNumeric {
        column: String,
        numeric: Vec<String>,
    },
    /// No LGA column in the data, the shapefile or a lookup.
    #[error("the data has no LGA column (looked for LGA, LGAName, LGACode, orgunitlevel3...); columns: {}", .found.join(", "))]
    NoLga { found: Vec<String> },
    #[error("there is no LGA called `{lga}`; LGAs: {}", .lgas.join(", "))]
    UnknownLga { lga: String, lgas: Vec<String> },
    #[error("`{a}` and `{b}` have {n} ward(s) with both values; a correlation needs at least 3")]
    TooFewPairs { a: String, b: String, n: usize },
    #[error("the lookup table needs an LGA name column and a ward-name or LGA-code column; columns: {}", .found.join(", "))]
    BadLgaLookup { found: Vec<String> },
    #[error("invalid {name}: {reason}")]
    InvalidArgument { name: &'static str, reason: String },
}

fn ambiguous_note(columns: &[String]) -> String {
    if columns.is_empty() {
        String::new()
    } else {
        format!(
            "; these columns could not be placed and may hold it (send `mapping` to name them): {}",
            columns.join(" | ")
        )
    }
}
