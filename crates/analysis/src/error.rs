use thiserror::Error;

/// Everything that can stop an analysis or an ITN plan. Each variant names what failed so the
/// app can echo it to the user (these are input errors, not internal ones).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A table-level failure (no ward-name column, a missing or non-numeric column), worded
    /// as mrpt-formats words it at upload.
    #[error(transparent)]
    Table(#[from] mrpt_table::Error),
    /// An entry of `geometry_index` points past the geometries (a caller bug).
    #[error("the geometry index for row {row} points at geometry {index}, but only {count} exist")]
    BadGeometryIndex {
        /// 0-based table row.
        row: usize,
        /// The index it holds.
        index: usize,
        /// Geometries given.
        count: usize,
    },
    /// `geometry_index` does not have one entry per table row.
    #[error("geometry_index has {found} entries but the table has {expected} rows")]
    GeometryIndexLength {
        /// Rows of the table.
        expected: usize,
        /// Entries of `geometry_index`.
        found: usize,
    },
    /// The ward table has no rows.
    #[error("the ward table is empty")]
    NoWards,
    /// Fewer than two numeric variables with variance could be selected.
    #[error("at least 2 usable variables are needed, found {found}: {detail}")]
    TooFewVariables {
        /// Usable variables found.
        found: usize,
        /// Which were tried and why they were left out.
        detail: String,
    },
    /// More variables than [`crate::MAX_VARIABLES`] (the model count doubles with each).
    #[error("{count} variables were selected; at most {max} are allowed (2^n - n - 1 models)")]
    TooManyVariables {
        /// Variables selected.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// The model-score matrix would exceed `AnalysisOptions::max_model_scores` (memory guard).
    #[error(
        "{models} models x {wards} wards = {cells} scores exceeds the limit of {limit}; select fewer variables"
    )]
    TooManyModelScores {
        /// Models the selection would generate.
        models: usize,
        /// Wards of the table.
        wards: usize,
        /// `models x wards`.
        cells: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Fewer than two wards: nothing to rank.
    #[error("at least 2 wards are needed to rank wards, found {found}")]
    TooFewWards {
        /// Wards in the table.
        found: usize,
    },
    /// The ITN request's `total_nets` is zero or negative.
    #[error("total_nets must be positive, got {0}")]
    InvalidTotalNets(i64),
    /// The ITN request's household size is not a positive finite number.
    #[error("avg_household_size must be a positive number, got {0}")]
    InvalidHouseholdSize(f64),
    /// No ranked ward has a numeric score, so ITN planning has nothing to allocate to.
    #[error("the ranking is empty: no ward has a numeric score")]
    EmptyRanking,
    /// The TPR selection names a state the export does not hold.
    #[error("no state named `{state}` in the export; states: {}", .states.join(", "))]
    TprUnknownState {
        /// The state asked for.
        state: String,
        /// The export's states.
        states: Vec<String>,
    },
    /// No facility row has the selected level.
    #[error("no facility rows at level `{level}`; levels present: {}", .present.join(", "))]
    TprEmptyLevel {
        /// The level asked for.
        level: String,
        /// Levels the export has.
        present: Vec<String>,
    },
    /// The selected method, ages and level have no tests at all.
    #[error(
        "no tests by method `{method}` for age group `{age}` at facility level `{level}`: choose another method, age group or level"
    )]
    TprNoTests {
        /// The method asked for.
        method: String,
        /// The age group asked for.
        age: String,
        /// The facility level asked for.
        level: String,
    },
    /// The export has no tested/positive column pair for these ages and method.
    #[error("no complete tested/positive column pair for age group `{age}` and method `{method}`{}", ambiguous_note(.ambiguous))]
    TprNoPair {
        /// The age group asked for.
        age: String,
        /// The method asked for.
        method: String,
        /// Unplaced headers that might hold it (named in the message).
        ambiguous: Vec<String>,
    },
    /// Burden was asked for, but the population table has no column for these ages (tpr.md §5).
    #[error(
        "burden per 1,000 for age group `{age}` needs a population for that age: upload a population table with {columns} (wards matched through the shapefile), or choose metric tpr"
    )]
    TprNoPopulation {
        /// The age group asked for.
        age: String,
        /// The column(s) needed, in words.
        columns: String,
    },
    /// No ranked ward found a population row: the ITN plan would be empty.
    #[error(
        "no ward in the ranking matched the population table ({rankings} wards, {population} population rows)"
    )]
    NoPopulationMatch {
        /// Wards in the ranking.
        rankings: usize,
        /// Rows in the population table.
        population: usize,
    },
    /// A column asked for by name does not exist.
    #[error("there is no column `{column}`; columns: {}", .found.join(", "))]
    UnknownColumn {
        /// The name asked for.
        column: String,
        /// The table's columns.
        found: Vec<String>,
    },
    /// A statistic needs numbers and the column holds text.
    #[error("`{column}` is a text column; numeric columns: {}", .numeric.join(", "))]
    NotNumeric {
        /// The column asked for.
        column: String,
        /// The table's numeric columns.
        numeric: Vec<String>,
    },
    /// No LGA column in the data, the shapefile or a lookup.
    #[error("the data has no LGA column (looked for LGA, LGAName, LGACode, orgunitlevel3...); columns: {}", .found.join(", "))]
    NoLga {
        /// The table's columns.
        found: Vec<String>,
    },
    /// The LGA asked for is not among the data's.
    #[error("there is no LGA called `{lga}`; LGAs: {}", .lgas.join(", "))]
    UnknownLga {
        /// The LGA asked for.
        lga: String,
        /// The data's LGAs.
        lgas: Vec<String>,
    },
    /// Fewer than three wards have both values: no correlation.
    #[error("`{a}` and `{b}` have {n} ward(s) with both values; a correlation needs at least 3")]
    TooFewPairs {
        /// The first column.
        a: String,
        /// The second column.
        b: String,
        /// Wards with both values.
        n: usize,
    },
    /// An LGA lookup table without the columns it needs.
    #[error("the lookup table needs an LGA name column and a ward-name or LGA-code column; columns: {}", .found.join(", "))]
    BadLgaLookup {
        /// The lookup's columns.
        found: Vec<String>,
    },
    /// An exploration argument out of range (a zero `n`, an empty filter value).
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
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
