//! The facility-export vocabulary (tpr.md): what a health-facility export holds once read, the
//! choices an officer makes (facility level, age group, test method), and the result rows of
//! ward TPR, trends, hotspots, LGA rates, reprioritisation and missingness.
//!
//! `mrpt-formats` fills [`FacilityExport`] from a file, `mrpt-analysis` turns it into the result
//! types below, and `mrpt-formats` writes those as the CSV files of tpr.md §8.1.

use serde::{Deserialize, Serialize};

/// An age group of the twelve NHMIS indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Age {
    /// Under five years (`u5`).
    U5,
    /// Five years and over, pregnant women excluded (`o5`).
    O5,
    /// Pregnant women (`pw`).
    Pw,
}

impl Age {
    /// The three age groups in slot order.
    pub const ALL: [Age; 3] = [Age::U5, Age::O5, Age::Pw];

    /// The field-name prefix (`u5`, `o5`, `pw`).
    pub fn as_str(self) -> &'static str {
        match self {
            Age::U5 => "u5",
            Age::O5 => "o5",
            Age::Pw => "pw",
        }
    }
}

/// A test method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestMethod {
    /// Rapid diagnostic test.
    Rdt,
    /// Microscopy (blood smear).
    Microscopy,
}

impl TestMethod {
    /// Both methods in slot order (RDT first).
    pub const ALL: [TestMethod; 2] = [TestMethod::Rdt, TestMethod::Microscopy];

    /// The field-name part (`rdt`, `microscopy`).
    pub fn as_str(self) -> &'static str {
        match self {
            TestMethod::Rdt => "rdt",
            TestMethod::Microscopy => "microscopy",
        }
    }
}

/// Tested or positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountKind {
    /// People tested.
    Tested,
    /// People tested positive.
    Positive,
}

impl CountKind {
    /// The field-name suffix (`tested`, `positive`).
    pub fn as_str(self) -> &'static str {
        match self {
            CountKind::Tested => "tested",
            CountKind::Positive => "positive",
        }
    }
}

/// One count column of an export: an age group (or `None` for an all-ages column), a method and
/// a kind. Field names are `u5_rdt_tested`, ..., `all_microscopy_positive` (tpr.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Indicator {
    /// The age group; `None` for an all-ages column (`all_*`).
    pub age: Option<Age>,
    /// RDT or microscopy.
    pub method: TestMethod,
    /// Tested or positive.
    pub kind: CountKind,
}

/// Slots of [`Row::counts`]: the twelve age-specific indicators in the order of
/// `tpr_missingness.csv` (age, then method, then tested before positive), then the four
/// all-ages columns.
pub const INDICATOR_SLOTS: usize = 16;
/// The twelve age-specific indicators (slots 0..12).
pub const AGE_INDICATORS: usize = 12;

impl Indicator {
    /// Every indicator in slot order.
    pub fn all() -> [Indicator; INDICATOR_SLOTS] {
        let mut out = [Indicator {
            age: None,
            method: TestMethod::Rdt,
            kind: CountKind::Tested,
        }; INDICATOR_SLOTS];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = Indicator::from_slot(i);
        }
        out
    }

    fn from_slot(slot: usize) -> Indicator {
        let age = match slot / 4 {
            0 => Some(Age::U5),
            1 => Some(Age::O5),
            2 => Some(Age::Pw),
            _ => None,
        };
        let method = if (slot % 4) / 2 == 0 {
            TestMethod::Rdt
        } else {
            TestMethod::Microscopy
        };
        let kind = if slot.is_multiple_of(2) {
            CountKind::Tested
        } else {
            CountKind::Positive
        };
        Indicator { age, method, kind }
    }

    /// This indicator's slot in [`Row::counts`].
    pub fn slot(self) -> usize {
        let age = match self.age {
            Some(Age::U5) => 0,
            Some(Age::O5) => 1,
            Some(Age::Pw) => 2,
            None => 3,
        };
        let method = match self.method {
            TestMethod::Rdt => 0,
            TestMethod::Microscopy => 1,
        };
        let kind = match self.kind {
            CountKind::Tested => 0,
            CountKind::Positive => 1,
        };
        age * 4 + method * 2 + kind
    }

    /// The field name of tpr.md §2.2 (`o5_microscopy_positive`, `all_rdt_tested`).
    pub fn field_name(self) -> String {
        format!(
            "{}_{}_{}",
            self.age.map_or("all", Age::as_str),
            self.method.as_str(),
            self.kind.as_str()
        )
    }

    /// Parses a field name back (`None` for anything else).
    pub fn from_field_name(name: &str) -> Option<Indicator> {
        Indicator::all()
            .into_iter()
            .find(|i| i.field_name() == name)
    }

    /// The indicator with the other kind (tested <-> positive).
    pub fn partner(self) -> Indicator {
        Indicator {
            kind: match self.kind {
                CountKind::Tested => CountKind::Positive,
                CountKind::Positive => CountKind::Tested,
            },
            ..self
        }
    }
}

/// The structural (non-count) columns of an export (tpr.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuralField {
    /// The state (`kn Kano State`).
    State,
    /// The LGA (`kn Fagge Local Government Area`).
    Lga,
    /// The ward (`kn Fagge A Ward`).
    Ward,
    /// The DHIS2 organisation-unit id of the facility.
    FacilityId,
    /// The facility's name.
    FacilityName,
    /// The facility level cell (§1.6).
    FacilityLevel,
    /// The reporting period (month or year, §1.7).
    Period,
}

impl StructuralField {
    /// The seven structural fields, in the order of §2.1.
    pub const ALL: [StructuralField; 7] = [
        StructuralField::State,
        StructuralField::Lga,
        StructuralField::Ward,
        StructuralField::FacilityId,
        StructuralField::FacilityName,
        StructuralField::FacilityLevel,
        StructuralField::Period,
    ];

    /// The field name of §2.1 (`facility_id`), as used in the mapping override.
    pub fn as_str(self) -> &'static str {
        match self {
            StructuralField::State => "state",
            StructuralField::Lga => "lga",
            StructuralField::Ward => "ward",
            StructuralField::FacilityId => "facility_id",
            StructuralField::FacilityName => "facility_name",
            StructuralField::FacilityLevel => "facility_level",
            StructuralField::Period => "period",
        }
    }

    /// Parses a field name of §2.1 back (exact, lower-case); `None` for anything else.
    pub fn from_name(name: &str) -> Option<StructuralField> {
        StructuralField::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
    }
}

/// A facility's level (tpr.md §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FacilityLevel {
    /// A cell containing `primary` or equal to `phc` (or, by name, a PHC, health post, clinic...).
    Primary,
    /// A cell containing `secondary` (or, by name, a general, cottage or specialist hospital...).
    Secondary,
    /// A cell containing `tertiary` (or, by name, a teaching hospital, federal medical centre...).
    Tertiary,
    /// An empty level cell (never inferred from the name then), or, without a level column, a
    /// name with no cue (tpr.md §1.6).
    Unknown,
    /// A level cell that contains none of `primary`/`phc`, `secondary`, `tertiary`.
    Other,
}

impl FacilityLevel {
    /// Every level; the discriminant order is the index [`FacilityExport::levels`] uses.
    pub const ALL: [FacilityLevel; 5] = [
        FacilityLevel::Primary,
        FacilityLevel::Secondary,
        FacilityLevel::Tertiary,
        FacilityLevel::Unknown,
        FacilityLevel::Other,
    ];

    /// Lower-case name (`primary`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            FacilityLevel::Primary => "primary",
            FacilityLevel::Secondary => "secondary",
            FacilityLevel::Tertiary => "tertiary",
            FacilityLevel::Unknown => "unknown",
            FacilityLevel::Other => "other",
        }
    }
}

/// The facility-level choice (`unknown`/`other` facilities are reachable only through `all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelChoice {
    /// Every facility, whatever its level (the default).
    #[default]
    All,
    /// Primary facilities only.
    Primary,
    /// Secondary facilities only.
    Secondary,
    /// Tertiary facilities only.
    Tertiary,
}

impl LevelChoice {
    /// The choices in the order the officer is asked (`All` last).
    pub const ALL: [LevelChoice; 4] = [
        LevelChoice::Primary,
        LevelChoice::Secondary,
        LevelChoice::Tertiary,
        LevelChoice::All,
    ];

    /// Lower-case name used in requests and file names (`all`, `primary`).
    pub fn as_str(self) -> &'static str {
        match self {
            LevelChoice::All => "all",
            LevelChoice::Primary => "primary",
            LevelChoice::Secondary => "secondary",
            LevelChoice::Tertiary => "tertiary",
        }
    }

    /// Whether a facility of `level` is kept under this choice.
    pub fn admits(self, level: FacilityLevel) -> bool {
        match self {
            LevelChoice::All => true,
            LevelChoice::Primary => level == FacilityLevel::Primary,
            LevelChoice::Secondary => level == FacilityLevel::Secondary,
            LevelChoice::Tertiary => level == FacilityLevel::Tertiary,
        }
    }

    /// Parses an officer's answer (tpr.md §3.1, case-insensitive, trimmed).
    pub fn parse(answer: &str) -> Option<LevelChoice> {
        match answer.trim().to_lowercase().as_str() {
            "all" | "all levels" | "all facilities" => Some(LevelChoice::All),
            "primary" | "phc" => Some(LevelChoice::Primary),
            "secondary" => Some(LevelChoice::Secondary),
            "tertiary" => Some(LevelChoice::Tertiary),
            _ => None,
        }
    }
}

/// The age-group choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeChoice {
    /// All three age groups summed (the default).
    #[default]
    AllAges,
    /// Under fives only.
    U5,
    /// Five and over (pregnant women excluded) only.
    O5,
    /// Pregnant women only.
    Pw,
}

impl AgeChoice {
    /// The choices in the order the officer is asked (`AllAges` last).
    pub const ALL: [AgeChoice; 4] = [
        AgeChoice::U5,
        AgeChoice::O5,
        AgeChoice::Pw,
        AgeChoice::AllAges,
    ];

    /// Name used in requests and file names (`all_ages`, `u5`).
    pub fn as_str(self) -> &'static str {
        match self {
            AgeChoice::AllAges => "all_ages",
            AgeChoice::U5 => "u5",
            AgeChoice::O5 => "o5",
            AgeChoice::Pw => "pw",
        }
    }

    /// The ages summed for this choice.
    pub fn ages(self) -> &'static [Age] {
        match self {
            AgeChoice::AllAges => &Age::ALL,
            AgeChoice::U5 => &[Age::U5],
            AgeChoice::O5 => &[Age::O5],
            AgeChoice::Pw => &[Age::Pw],
        }
    }

    /// Words for labels ("all ages", "under-fives").
    pub fn label(self) -> &'static str {
        match self {
            AgeChoice::AllAges => "all ages",
            AgeChoice::U5 => "under 5 years",
            AgeChoice::O5 => "5 years and over (excluding pregnant women)",
            AgeChoice::Pw => "pregnant women",
        }
    }

    /// Parses an officer's answer with the synonyms of tpr.md §3.1.
    pub fn parse(answer: &str) -> Option<AgeChoice> {
        match answer.trim().to_lowercase().as_str() {
            "all" | "all ages" | "allages" | "all_ages" => Some(AgeChoice::AllAges),
            "under 5" | "under5" | "u5" | "under-5" | "under fives" | "under-fives" => {
                Some(AgeChoice::U5)
            }
            "over 5" | "over5" | "o5" => Some(AgeChoice::O5),
            "pregnant women" | "pw" | "pregnant" => Some(AgeChoice::Pw),
            _ => None,
        }
    }
}

/// The test-method choice; `Both` is the max rule of tpr.md §4.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodChoice {
    /// Per ward, the method with the higher TPR (ties to RDT), the default.
    #[default]
    Both,
    /// RDT only.
    Rdt,
    /// Microscopy only.
    Microscopy,
}

impl MethodChoice {
    /// The choices in the order the officer is asked (`Both` last).
    pub const ALL: [MethodChoice; 3] = [
        MethodChoice::Rdt,
        MethodChoice::Microscopy,
        MethodChoice::Both,
    ];

    /// Name used in requests and file names (`both`, `rdt`).
    pub fn as_str(self) -> &'static str {
        match self {
            MethodChoice::Both => "both",
            MethodChoice::Rdt => "rdt",
            MethodChoice::Microscopy => "microscopy",
        }
    }

    /// Words for answers and labels (`RDT and microscopy (higher of the two)`).
    pub fn label(self) -> &'static str {
        match self {
            MethodChoice::Both => "RDT and microscopy (higher of the two)",
            MethodChoice::Rdt => "RDT",
            MethodChoice::Microscopy => "microscopy",
        }
    }

    /// Parses an officer's answer (`both`/`max`, `rdt`, `microscopy`/`micro`), case-insensitive, trimmed.
    pub fn parse(answer: &str) -> Option<MethodChoice> {
        match answer.trim().to_lowercase().as_str() {
            "both" | "max" => Some(MethodChoice::Both),
            "rdt" => Some(MethodChoice::Rdt),
            "microscopy" | "micro" => Some(MethodChoice::Microscopy),
            _ => None,
        }
    }
}

/// The metric the trends, hotspots, maps and reprioritisation use (tpr.md §0.3): TPR is always
/// computed; burden per 1,000 per year needs a population for the selected ages (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Test positivity rate, percent 0-100 (the default).
    #[default]
    Tpr,
    /// Confirmed cases per 1,000 population per year (tpr.md §5), capped at 1,000.
    Burden,
}

impl Metric {
    /// Name used in requests (`tpr`, `burden`).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Tpr => "tpr",
            Metric::Burden => "burden",
        }
    }

    /// Parses an answer or synonym (`positivity`, `incidence`...), case-insensitive; `None` otherwise.
    pub fn parse(answer: &str) -> Option<Metric> {
        match answer.trim().to_lowercase().as_str() {
            "tpr" | "test positivity" | "test positivity rate" | "positivity" => Some(Metric::Tpr),
            "burden" | "incidence" | "burden per 1000" | "burden per 1,000" => Some(Metric::Burden),
            _ => None,
        }
    }

    /// The value's short name in tables and maps.
    pub fn short(self) -> &'static str {
        match self {
            Metric::Tpr => "TPR (%)",
            Metric::Burden => "Burden per 1,000",
        }
    }

    /// Unit of a slope of this metric.
    pub fn slope_unit(self) -> &'static str {
        match self {
            Metric::Tpr => "percentage points",
            Metric::Burden => "cases per 1,000",
        }
    }
}

impl AgeChoice {
    /// The population table column(s) burden for this age group needs (tpr.md §5).
    pub fn population_columns(self) -> &'static str {
        match self {
            AgeChoice::AllAges => "Population",
            AgeChoice::U5 => "Population_u5",
            AgeChoice::O5 => "Population_o5 (or Population and Population_u5)",
            AgeChoice::Pw => "Population_f15_49",
        }
    }
}

/// What to compute (tpr.md §3.3). Defaults: all levels, all ages, both methods.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Selection {
    /// A state display name (`Kano`); `None` = the only state (an error when there are several).
    pub state: Option<String>,
    /// Which facility levels count.
    pub level: LevelChoice,
    /// Which age groups are summed.
    pub age: AgeChoice,
    /// Which test method's counts give the TPR.
    pub method: MethodChoice,
    /// Inclusive year range.
    pub years: Option<(u16, u16)>,
}

/// The thresholds of tpr.md §0.8; all are request parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Percentage points per year (TPR) beyond which a ward is worsening or improving.
    pub direction: f64,
    /// TPR (%) at which a ward is a hotspot.
    pub hotspot: f64,
    /// Per 1,000 per year (burden).
    pub burden_direction: f64,
    /// Per 1,000 (burden).
    pub burden_hotspot: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            direction: 2.0,
            hotspot: 50.0,
            burden_direction: 5.0,
            burden_hotspot: 200.0,
        }
    }
}

/// Sentinel for "no ward" / "no year" in [`Row`] (keeps rows small at national scale).
pub const NONE_ID: u32 = u32::MAX;

/// One facility-month (or facility-year) of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Index into [`FacilityExport::states`].
    pub state: u32,
    /// Index into [`FacilityExport::lgas`].
    pub lga: u32,
    /// Index into [`FacilityExport::wards`], or [`NONE_ID`] for rows without a ward.
    pub ward: u32,
    /// Index into [`FacilityExport::facilities`].
    pub facility: u32,
    /// Calendar year, 0 when the period holds none.
    pub year: u16,
    /// Month 1-12, 0 when unknown.
    pub month: u8,
    /// The facility's level, copied from [`Facility::level`] for filtering.
    pub level: FacilityLevel,
    /// Counts by [`Indicator::slot`]; NaN = blank (missing, not zero).
    pub counts: [f64; INDICATOR_SLOTS],
}

impl Row {
    /// Whether the row belongs to a ward (rows without one still count for their LGA).
    pub fn has_ward(&self) -> bool {
        self.ward != NONE_ID
    }

    /// The calendar year; `None` when the period held none.
    pub fn year(&self) -> Option<u16> {
        (self.year != 0).then_some(self.year)
    }
}

/// A state of the export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Display name: prefix and trailing ` State` removed (`Kano`).
    pub name: String,
}

/// An LGA, identified by its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lga {
    /// Index into [`FacilityExport::states`].
    pub state: u32,
    /// Display name (`Kano Municipal`).
    pub name: String,
    /// `norm(display)` (`kano municipal`).
    pub key: String,
}

/// A ward of the data, identified by (LGA key, ward key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ward {
    /// Index into [`FacilityExport::lgas`].
    pub lga: u32,
    /// Display name as the data spells it (`Gyadi-Gyadi Arewa`).
    pub name: String,
    /// `norm(display)` of tpr.md §4.1 (`gyadi gyadi arewa`); unique within its LGA.
    pub key: String,
}

/// A facility (identified by its DHIS2 id when the export has one, else by its name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facility {
    /// The DHIS2 id, or the name when there is no id column.
    pub id: String,
    /// Display name (prefix removed).
    pub name: String,
    /// The `Facility level` cell of its first row, as written.
    pub level_cell: Option<String>,
    /// The level used for filtering (from the cell; from the name only without a level column).
    pub level: FacilityLevel,
    /// The level its name suggests (tpr.md §1.6 name cues), reported beside.
    pub level_from_name: FacilityLevel,
}

/// Counts of things the reader noticed and handled (tpr.md §1.5, §8.1 `warnings`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReadWarnings {
    /// Rows with a blank ward cell (kept for LGA figures, left out of ward figures).
    pub rows_without_ward: usize,
    /// Rows whose period holds no year (left out of yearly figures).
    pub rows_without_year: usize,
    /// Count cells holding text, read as blank.
    pub non_numeric_cells: usize,
    /// Negative count cells, read as blank.
    pub negative_cells: usize,
    /// Fields whose duplicate columns disagreed and were summed.
    pub summed_duplicate_columns: Vec<String>,
    /// Rows where positives exceed tested for the same age and method (used as they are).
    pub rows_positives_exceed_tested: usize,
    /// All-ages columns ignored because age-specific columns of that method and kind exist.
    pub ignored_all_ages_columns: Vec<String>,
    /// Empty rows skipped.
    pub empty_rows: usize,
}

/// A header the rules could not place, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmbiguousColumn {
    /// The header as the file spells it.
    pub column: String,
    /// Why it could not be placed (shown to the user).
    pub reason: String,
}

/// The effective column mapping (tpr.md §2): each field and the header(s) it reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ColumnMapping {
    /// 0-based physical row of the header (2 for a DHIS2 .xlsx with a title and a blank row).
    pub header_row_index: usize,
    /// Field name -> header(s), in file order; several headers = one indicator split in two.
    pub fields: std::collections::BTreeMap<String, Vec<String>>,
    /// Headers that matched several fields or none clearly (§2.3), left unmapped.
    pub ambiguous: Vec<AmbiguousColumn>,
    /// Headers neither structural nor an indicator (distractors, ownership, ...).
    pub unmapped: Vec<String>,
    /// Whether the facility levels were inferred from names (no level column).
    pub levels_from_names: bool,
}

/// A health-facility export once read: dictionaries, rows and what the reader noticed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FacilityExport {
    /// Which header feeds which field.
    pub mapping: ColumnMapping,
    /// The DHIS2 state prefix (`kn`), if one was detected.
    pub prefix: Option<String>,
    /// States of the file (usually one).
    pub states: Vec<State>,
    /// LGAs, indexed by [`Row::lga`].
    pub lgas: Vec<Lga>,
    /// Wards, indexed by [`Row::ward`].
    pub wards: Vec<Ward>,
    /// Facilities, indexed by [`Row::facility`].
    pub facilities: Vec<Facility>,
    /// One row per facility-period, in file order (empty rows skipped).
    pub rows: Vec<Row>,
    /// What the reader noticed and handled.
    pub warnings: ReadWarnings,
    /// Which of the [`INDICATOR_SLOTS`] have a column.
    pub present: [bool; INDICATOR_SLOTS],
}

impl FacilityExport {
    /// Distinct calendar years with at least one row, ascending.
    pub fn years(&self) -> Vec<u16> {
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.rows {
            if let Some(y) = r.year() {
                seen.insert(y);
            }
        }
        seen.into_iter().collect()
    }

    /// Facility levels present in the rows, in [`FacilityLevel::ALL`] order.
    pub fn levels(&self) -> Vec<FacilityLevel> {
        let mut seen = [false; 5];
        for r in &self.rows {
            seen[r.level as usize] = true;
        }
        FacilityLevel::ALL
            .into_iter()
            .filter(|l| seen[*l as usize])
            .collect()
    }

    /// Whether a complete tested/positive pair exists for `method` and the ages of `age`.
    pub fn has_pair(&self, age: AgeChoice, method: TestMethod) -> bool {
        let pair = |a: Option<Age>| {
            let tested = Indicator {
                age: a,
                method,
                kind: CountKind::Tested,
            };
            self.present[tested.slot()] && self.present[tested.partner().slot()]
        };
        let specific = age.ages().iter().any(|a| pair(Some(*a)));
        specific || (age == AgeChoice::AllAges && pair(None))
    }
}

/// `norm(s)` of tpr.md §4.1: cut at the first `(`; drop the word `ward`; `/`, `-`, `_` to
/// spaces; lower-case; Roman numerals as whole words to digits; collapse whitespace.
pub fn norm_name(s: &str) -> String {
    let cut = s.split('(').next().unwrap_or("");
    let lowered = cut.to_lowercase();
    let spaced: String = lowered
        .chars()
        .map(|c| if matches!(c, '/' | '-' | '_') { ' ' } else { c })
        .collect();
    let words = spaced
        .split_whitespace()
        .filter(|w| *w != "ward")
        .map(|w| match w {
            "viii" => "8",
            "vii" => "7",
            "vi" => "6",
            "ix" => "9",
            "iv" => "4",
            "v" => "5",
            "iii" => "3",
            "ii" => "2",
            "i" => "1",
            other => other,
        });
    words.collect::<Vec<_>>().join(" ")
}

/// Python's `round(x, digits)`: the decimal nearest to the binary value, exact ties to even
/// (Rust's `{:.N}` formatting is exact with ties to even, so the round trip agrees).
pub fn round_half_even(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.digits$}").parse().unwrap_or(x)
}

/// How a data ward relates to the shapefile and the population table (tpr.md §4.4, §5), one per
/// [`FacilityExport::wards`] entry; [`WardLink::unlinked`] without a shapefile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WardLink {
    /// The shapefile ward's name when matched.
    pub shape_name: Option<String>,
    /// The shapefile ward's code when matched and the shapefile has codes.
    pub code: Option<String>,
    /// `exact`, `normalised`, `fuzzy`, `zero_fix`, `substring`, `ambiguous`, `conflict`,
    /// `none` or `no_shapefile`.
    pub match_kind: String,
    /// The best similarity seen (1.0 for exact and normalised).
    pub score: Option<f64>,
    /// The ward's population (all ages), written in the `Population` column.
    pub population: Option<f64>,
    /// The population of the selected age group: the denominator of burden (tpr.md §5);
    /// `None` when the population table has no column for those ages.
    #[serde(default)]
    pub burden_population: Option<f64>,
}

impl WardLink {
    /// The link of a ward when no shapefile was given (`match_kind` `no_shapefile`, everything else `None`).
    pub fn unlinked() -> WardLink {
        WardLink {
            shape_name: None,
            code: None,
            match_kind: "no_shapefile".into(),
            score: None,
            population: None,
            burden_population: None,
        }
    }

    /// Whether the ward found its shapefile ward.
    pub fn is_matched(&self) -> bool {
        self.code.is_some() || self.shape_name.is_some()
    }
}

/// Ward TPR row of `tpr_results.csv` (tpr.md §4, §8.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WardTpr {
    /// Shapefile name when matched, else the data name.
    pub ward_name: String,
    /// The LGA's display name.
    pub lga: String,
    /// The shapefile ward's code when matched.
    pub ward_code: Option<String>,
    /// The ward's name as the data spells it.
    pub data_ward_name: String,
    /// `norm` of the LGA name (tpr.md §4.1).
    pub lga_key: String,
    /// `norm` of the data ward name (tpr.md §4.1).
    pub ward_key: String,
    /// `exact`, `normalised`, `fuzzy`, `zero_fix`, `substring`, `ambiguous`, `conflict`,
    /// `none` or `no_shapefile`.
    pub match_kind: String,
    /// Tests, positives and TPR of the selection, summed over every period.
    pub counts: MethodCounts,
    /// Distinct facilities with at least one row in the selection.
    pub facilities: usize,
    /// Rows of the selection (facility-periods).
    pub facility_months: usize,
    /// The ward's population for the selected ages; `None` without a population table or match.
    pub population: Option<f64>,
    /// Cases per 1,000 per year, capped at 1,000 (tpr.md §5); `None` without population or tests.
    pub burden: Option<f64>,
    /// Whether the 1,000 cap applied to `burden`.
    pub burden_capped: bool,
}

/// Tests and positives of both methods and the chosen one (tpr.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MethodCounts {
    /// Rounded to 2 decimals; `None` when the chosen method has no tests.
    pub tpr: Option<f64>,
    /// Tests of the chosen method (blank cells count 0).
    pub tested: f64,
    /// Positives of the chosen method.
    pub positive: f64,
    /// The method the TPR comes from; `None` when neither has tests.
    pub method_used: Option<TestMethod>,
    /// RDT tests of the selected ages, whatever the chosen method.
    pub rdt_tested: f64,
    /// RDT positives of the selected ages.
    pub rdt_positive: f64,
    /// RDT TPR, percent (2 decimals); `None` without RDT tests.
    pub rdt_tpr: Option<f64>,
    /// Microscopy tests of the selected ages, whatever the chosen method.
    pub microscopy_tested: f64,
    /// Microscopy positives of the selected ages.
    pub microscopy_positive: f64,
    /// Microscopy TPR, percent (2 decimals); `None` without microscopy tests.
    pub microscopy_tpr: Option<f64>,
}

/// A ward-year of `tpr_time_series.csv` (tpr.md §6.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WardYear {
    /// Index into the ward results.
    pub ward: usize,
    /// The calendar year.
    pub year: u16,
    /// Tests, positives and TPR of that year (method chosen per ward-year under `both`).
    pub counts: MethodCounts,
    /// Distinct facilities reporting that year.
    pub facilities: usize,
    /// Rows of that year.
    pub facility_months: usize,
    /// Cases per 1,000 that year, capped at 1,000; `None` without population or tests.
    pub burden: Option<f64>,
}

/// Direction of a trend (tpr.md §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Slope at or above the direction threshold (+2 pp/yr TPR, +5 per 1,000 burden).
    Worsening,
    /// Slope strictly between the two thresholds.
    Stable,
    /// Slope at or below minus the threshold.
    Improving,
    /// Fewer than two years with a value: no slope.
    InsufficientData,
}

impl Direction {
    /// The name written in `Direction` columns (`insufficient_data`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Worsening => "worsening",
            Direction::Stable => "stable",
            Direction::Improving => "improving",
            Direction::InsufficientData => "insufficient_data",
        }
    }
}

/// A series' trend (tpr.md §6.2-6.3); the fields after `direction` are `None` when n < 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Rounded to 3 decimals.
    pub slope: Option<f64>,
    /// Decided on the unrounded slope.
    pub direction: Direction,
    /// Last minus second-to-last defined value (2 decimals).
    pub delta_latest: Option<f64>,
    /// First defined yearly value (2 decimals).
    pub first: Option<f64>,
    /// Last defined yearly value (2 decimals).
    pub latest: Option<f64>,
    /// Year of `first`.
    pub first_year: Option<u16>,
    /// Year of `latest`.
    pub latest_year: Option<u16>,
    /// Number of years with a defined value (n).
    pub years_count: usize,
    /// Kendall tau-b (§6.3); `None` when n < 2 or all values are equal.
    pub kendall_tau: Option<f64>,
    /// Two-sided Mann-Kendall p, as scipy's `kendalltau` (exact for small untied n); `None` with tau.
    pub mk_p_value: Option<f64>,
    /// Tests of the latest year when it is the dataset's last year.
    pub tested_latest: Option<f64>,
    /// `rdt`, `microscopy` or `microscopy+rdt` over the defined points.
    pub methods_used: String,
}

/// An LGA's yearly trend (tpr.md §6.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LgaTrend {
    /// Index into [`FacilityExport::lgas`].
    pub lga: usize,
    /// The §6.2/§6.3 trend of the LGA's yearly rates.
    pub trend: Trend,
}

/// Emerging or resolving hotspot (tpr.md §6.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hotspot {
    /// Index into the ward results.
    pub ward: usize,
    /// True: below the threshold in the first year, at or above it in the last; false: the reverse (resolving).
    pub emerging: bool,
    /// First year of the whole series (not of the ward).
    pub first_year: u16,
    /// Last year of the whole series.
    pub latest_year: u16,
    /// The ward's value in `first_year` (TPR % or burden).
    pub first: f64,
    /// The ward's value in `latest_year`.
    pub latest: f64,
}

/// An LGA row of `tpr_lga_summary.csv`: `year` `None` = all years (tpr.md §6.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LgaRate {
    /// Index into [`FacilityExport::lgas`].
    pub lga: usize,
    /// The year; `None` for the row over all years.
    pub year: Option<u16>,
    /// Tests, positives and TPR of every row of the LGA (rows without a ward included).
    pub counts: MethodCounts,
    /// Wards of the LGA with rows in the selection.
    pub wards: usize,
    /// Distinct facilities of the LGA with rows in the selection.
    pub facilities: usize,
    /// Rows of the LGA in the selection.
    pub facility_months: usize,
}

/// A row of `tpr_reprioritise.csv` (tpr.md §6.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReprioritisedWard {
    /// 1-based position in the list (1 = reprioritise first).
    pub priority: usize,
    /// Index into the ward results.
    pub ward: usize,
    /// Value in the dataset's last year (TPR % or burden, 2 decimals).
    pub latest: f64,
    /// Trend slope per year (3 decimals).
    pub slope: f64,
    /// The trend's direction.
    pub direction: Direction,
    /// 1 + eligible wards with a strictly higher latest value.
    pub rank_latest: usize,
    /// 1 + eligible wards with a strictly higher slope.
    pub rank_slope: usize,
    /// `rank_latest + rank_slope`; lower comes first.
    pub score: usize,
    /// Tests in the last year (at least `min_tested`, default 100).
    pub tested_latest: f64,
    /// Years with a defined value.
    pub years_count: usize,
}

/// A row of `tpr_missingness.csv` (tpr.md §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingnessRow {
    /// `column`, `year`, `lga`, `ward`, `reporting_year` or `reporting_lga`.
    pub scope: String,
    /// The field name, year, LGA key or `lga_key|ward_key`, depending on `scope`.
    pub key: String,
    /// Cells expected (rows, or rows x 12; facility-months for `reporting_*`).
    pub cells: usize,
    /// Blank cells (an explicit 0 is not missing); missing facility-months for `reporting_*`.
    pub missing: usize,
    /// `missing / cells`, percent (2 decimals); `None` when `cells` is 0.
    pub pct_missing: Option<f64>,
    /// Cells of facilities that report the field at least once; `None` for `reporting_*`.
    pub cells_active: Option<usize>,
    /// Blank cells among `cells_active`.
    pub missing_active: Option<usize>,
    /// `missing_active / cells_active`, percent (2 decimals); `None` when undefined.
    pub pct_missing_active: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicator_slots_round_trip() {
        for (i, ind) in Indicator::all().into_iter().enumerate() {
            assert_eq!(ind.slot(), i);
            assert_eq!(Indicator::from_field_name(&ind.field_name()), Some(ind));
        }
        assert_eq!(Indicator::all()[0].field_name(), "u5_rdt_tested");
        assert_eq!(Indicator::all()[3].field_name(), "u5_microscopy_positive");
        assert_eq!(Indicator::all()[12].field_name(), "all_rdt_tested");
    }

    #[test]
    fn norm_examples_of_the_spec() {
        assert_eq!(norm_name("Hotoro (NNPC)"), "hotoro");
        assert_eq!(norm_name("Are II"), "are 2");
        assert_eq!(norm_name("Unguwa Uku/Kauyen Alu"), "unguwa uku kauyen alu");
        assert_eq!(norm_name("Dan'agundi"), "dan'agundi");
        assert_eq!(norm_name("Gyadi-Gyadi  Arewa Ward"), "gyadi gyadi arewa");
        assert_eq!(norm_name("Kano_Municipal"), "kano municipal");
        assert_eq!(norm_name("Ward IV"), "4");
    }

    #[test]
    fn rounding_vectors_of_the_spec() {
        let cases = [
            (23.0, 160.0, 14.37),
            (49.0, 160.0, 30.63),
            (1.0, 32.0, 3.12),
            (3.0, 32.0, 9.38),
            (97.0, 800.0, 12.12),
            (1.0, 3.0, 33.33),
            (2.0, 3.0, 66.67),
            (1952.0, 19730.0, 9.89),
        ];
        for (p, t, want) in cases {
            let x: f64 = p / t * 100.0;
            assert_eq!(round_half_even(x, 2), want, "{p}/{t}");
        }
        assert_eq!(round_half_even(0.0625, 3), 0.062);
        assert_eq!(round_half_even(-0.001, 2), 0.0);
        assert!(round_half_even(-0.001, 2).is_sign_negative());
    }
}
