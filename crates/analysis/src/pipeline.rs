//! `analyze`: the whole risk analysis in ChatMRPT's order (§2.1): duplicate-name fix,
//! imputation, variable selection, direction, normalisation, composite, PCA.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::composite::{CompositeResult, MAX_VARIABLES, composite};
use crate::error::Error;
use crate::imputation::{ImputationMethod, ImputationReport, impute, row_neighbours};
use crate::normalisation::{
    Direction, DirectionSource, NormalizedColumn, VariableDirection, keyword_direction, normalize,
};
use crate::pca::{PcaCategories, PcaResult, pca};
use crate::selection::{Selection, select_auto, select_user};
use mrpt_table::{Geometry, WardTable, fix_duplicate_ward_names};

/// Everything `analyze` reads. The caller has already matched table ward names to shapefile
/// ward names (`mrpt_table::match_wards`, §1.3 steps 1-2); `analyze` does step 3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisInput {
    /// The ward table with its ward-name, code and index columns identified.
    pub table: WardTable,
    /// Ward shapes in shapefile order (`None` for a null shape); `None` when no shapefile was
    /// given (imputation then uses column means).
    #[serde(default)]
    pub geometries: Option<Vec<Option<Geometry>>>,
    /// Per table row, the index into `geometries` of its shape (`None`: no shape).
    #[serde(default)]
    pub geometry_index: Vec<Option<usize>>,
    /// The shapefile's state (first non-empty `State|STATE_NAME|StateName`, else its
    /// `StateCode` value such as "KW"), for zone detection when the table has neither.
    #[serde(default)]
    pub shapefile_state: Option<String>,
}

/// The request's choices (api.md `/run_analysis`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisOptions {
    /// User-named variables (§2.3A); `None` or empty = automatic selection.
    pub variables: Option<Vec<String>>,
    /// Per-variable direction overrides (keys matched case-insensitively to selected columns).
    pub relationships: BTreeMap<String, Direction>,
    /// Also run PCA.
    pub run_pca: bool,
    /// Refuse when models x wards exceeds this many scores (memory guard).
    pub max_model_scores: usize,
    /// PCA category rule; `Thirds` (§3.6) unless old ChatMRPT labels must be reproduced.
    pub pca_categories: PcaCategories,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            variables: None,
            relationships: BTreeMap::new(),
            run_pca: true,
            max_model_scores: 50_000_000,
            pca_categories: PcaCategories::Thirds,
        }
    }
}

/// What a [`Warning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// An inverse variable holds 0 or negative values: 1/(x + 1e-10) is then meaningless.
    InverseNonPositive,
    /// KMO/Bartlett say the data are not suited to PCA (the PCA is still returned).
    PcaUnsuitable,
    /// PCA could not run (e.g. fewer wards than components).
    PcaFailed,
    /// A user-named variable was not used.
    VariableRejected,
    /// A column had no value at all and was filled with 0 / "Unknown".
    ColumnAllMissing,
    /// Some wards have no geometry, so their gaps took the column mean.
    WardsWithoutGeometry,
    /// Duplicate ward names: renamed with their code, or (without codes) PCA keeps the first.
    DuplicateWardNames,
    /// A relationship override named a variable that is not selected.
    OverrideIgnored,
    /// A selected variable is constant after cleaning (it normalises to 0.5).
    ConstantVariable,
    /// ITN: wards without population (excluded or given the mean).
    UnmatchedPopulation,
    /// ITN: nothing could be allocated or nets are left over.
    NetsLeftOver,
}

/// Something the user should know about a result that was still produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// A sentence shown to the user as is.
    pub message: String,
}

impl Warning {
    pub(crate) fn new(kind: WarningKind, message: impl Into<String>) -> Warning {
        Warning {
            kind,
            message: message.into(),
        }
    }
}

/// Everything the analysis computed, from which every output file is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisResult {
    /// The table after the duplicate-name fix and imputation, original column order.
    pub cleaned: WardTable,
    /// One entry per column that had gaps.
    pub imputation: Vec<ImputationReport>,
    /// The variables chosen and how.
    pub selection: Selection,
    /// Per selected variable, selection order.
    pub directions: Vec<VariableDirection>,
    /// Normalised selected variables in TABLE column order (as the normalised CSV has them).
    pub normalized: Vec<NormalizedColumn>,
    /// Every model's scores and the composite ranking.
    pub composite: CompositeResult,
    /// The PCA; `None` when not asked for or when it failed (see `warnings`).
    pub pca: Option<PcaResult>,
    /// Everything the user should know, in the order found.
    pub warnings: Vec<Warning>,
}

impl AnalysisResult {
    /// Ward names per cleaned row ("" where missing).
    pub fn ward_names(&self) -> Vec<String> {
        self.cleaned
            .ward_names()
            .iter()
            .map(|n| n.clone().unwrap_or_default())
            .collect()
    }
}

fn validate(input: &AnalysisInput) -> Result<(), Error> {
    let n = input.table.table.n_rows();
    if n == 0 {
        return Err(Error::NoWards);
    }
    if n < 2 {
        return Err(Error::TooFewWards { found: n });
    }
    if let Some(geoms) = &input.geometries {
        if input.geometry_index.len() != n {
            return Err(Error::GeometryIndexLength {
                expected: n,
                found: input.geometry_index.len(),
            });
        }
        for (row, g) in input.geometry_index.iter().enumerate() {
            if let Some(g) = g
                && *g >= geoms.len()
            {
                return Err(Error::BadGeometryIndex {
                    row,
                    index: *g,
                    count: geoms.len(),
                });
            }
        }
    }
    Ok(())
}

/// §1.3 step 3 (`mrpt_table::fix_duplicate_ward_names`), told to the user.
fn fix_duplicate_names(table: &mut WardTable, warnings: &mut Vec<Warning>) -> Result<(), Error> {
    let dups = fix_duplicate_ward_names(table)?;
    if dups.rows == 0 {
        return Ok(());
    }
    warnings.push(Warning::new(
        WarningKind::DuplicateWardNames,
        if dups.renamed {
            format!(
                "{} rows share a ward name; they were renamed \"<name> (<code>)\"",
                dups.rows
            )
        } else {
            format!(
                "{} rows share a ward name and there is no WardCode column; PCA keeps the first of each",
                dups.rows
            )
        },
    ));
    Ok(())
}

/// Run the risk analysis. Errors are input errors (see [`Error`]); everything the user should
/// know but that does not stop the analysis is in `warnings`.
pub fn analyze(input: &AnalysisInput, options: &AnalysisOptions) -> Result<AnalysisResult, Error> {
    analyze_with_probe(input, options, &mut |_| {})
}

/// [`analyze`], calling `probe(stage)` as each stage ends ("validate", "contiguity",
/// "imputation", "selection", "normalisation", "composite", "pca"), so a benchmark can time
/// stages without this crate reading a clock.
#[doc(hidden)]
pub fn analyze_with_probe(
    input: &AnalysisInput,
    options: &AnalysisOptions,
    probe: &mut dyn FnMut(&'static str),
) -> Result<AnalysisResult, Error> {
    validate(input)?;
    let n = input.table.table.n_rows();
    let ward = input.table.ward_column;
    let mut warnings = Vec::new();
    let mut cleaned = input.table.clone();
    fix_duplicate_names(&mut cleaned, &mut warnings)?;
    probe("validate");

    let neighbours = input
        .geometries
        .as_ref()
        .map(|g| row_neighbours(g, &input.geometry_index));
    probe("contiguity");
    let imputation = impute(&mut cleaned.table, ward, neighbours.as_deref());
    probe("imputation");
    for rep in &imputation {
        if matches!(
            rep.method,
            ImputationMethod::Zero | ImputationMethod::Unknown
        ) {
            warnings.push(Warning::new(
                WarningKind::ColumnAllMissing,
                format!("column `{}` has no values at all", rep.column),
            ));
        }
    }
    if input.geometries.is_some() && imputation.iter().any(|r| r.filled > 0) {
        let without = input.geometry_index.iter().filter(|g| g.is_none()).count();
        if without > 0 {
            warnings.push(Warning::new(
                WarningKind::WardsWithoutGeometry,
                format!("{without} wards have no matching shape; their missing values use the column mean"),
            ));
        }
    }

    let requested: Vec<String> = options.variables.clone().unwrap_or_default();
    let selection = if requested.is_empty() {
        select_auto(&cleaned.table, input.shapefile_state.as_deref())?
    } else {
        if requested.len() > MAX_VARIABLES {
            return Err(Error::TooManyVariables {
                count: requested.len(),
                max: MAX_VARIABLES,
            });
        }
        select_user(&cleaned.table, &requested)?
    };
    for m in &selection.matches {
        if let Some(reason) = &m.rejected {
            warnings.push(Warning::new(
                WarningKind::VariableRejected,
                format!("variable `{}` not used: {reason}", m.requested),
            ));
        }
    }
    if selection.variables.len() > MAX_VARIABLES {
        return Err(Error::TooManyVariables {
            count: selection.variables.len(),
            max: MAX_VARIABLES,
        });
    }

    probe("selection");
    let mut overrides: HashMap<String, Direction> = HashMap::new();
    for (k, d) in &options.relationships {
        match selection
            .variables
            .iter()
            .find(|v| v.eq_ignore_ascii_case(k.trim()))
        {
            Some(v) => {
                overrides.insert(v.clone(), *d);
            }
            None => warnings.push(Warning::new(
                WarningKind::OverrideIgnored,
                format!("relationship for `{k}` ignored: it is not a selected variable"),
            )),
        }
    }
    let directions: Vec<VariableDirection> = selection
        .variables
        .iter()
        .map(|v| match overrides.get(v) {
            Some(d) => VariableDirection {
                variable: v.clone(),
                direction: *d,
                source: DirectionSource::Override,
            },
            None => VariableDirection {
                variable: v.clone(),
                direction: keyword_direction(v),
                source: DirectionSource::Keyword,
            },
        })
        .collect();

    let values_of = |name: &str| -> Vec<f64> {
        cleaned
            .table
            .column(name)
            .and_then(|c| c.data.to_f64())
            .map(|v| v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
            .unwrap_or_else(|| vec![f64::NAN; n])
    };
    let mut normalized: Vec<NormalizedColumn> = Vec::new();
    for col in cleaned.table.columns() {
        let Some(dir) = directions.iter().find(|d| d.variable == col.name) else {
            continue;
        };
        let raw = values_of(&col.name);
        if dir.direction == Direction::Inverse && raw.iter().any(|&x| x <= 0.0) {
            let count = raw.iter().filter(|&&x| x <= 0.0).count();
            warnings.push(Warning::new(
                WarningKind::InverseNonPositive,
                format!(
                    "inverse variable `{}` has {count} zero or negative values; 1/(x + 1e-10) makes those wards dominate its normalised score",
                    col.name
                ),
            ));
        }
        if raw.iter().all(|&x| x == raw[0]) {
            warnings.push(Warning::new(
                WarningKind::ConstantVariable,
                format!("variable `{}` is constant; it normalises to 0.5", col.name),
            ));
        }
        normalized.push(NormalizedColumn {
            variable: col.name.clone(),
            column_name: format!("normalization_{}", col.name.to_lowercase()),
            direction: dir.direction,
            values: normalize(&raw, dir.direction),
        });
    }
    let ordered: Vec<&[f64]> = selection
        .variables
        .iter()
        .filter_map(|v| {
            normalized
                .iter()
                .find(|c| &c.variable == v)
                .map(|c| c.values.as_slice())
        })
        .collect();
    let names: Vec<String> = cleaned
        .ward_names()
        .iter()
        .map(|n| n.clone().unwrap_or_default())
        .collect();
    probe("normalisation");
    let composite = composite(
        &selection.variables,
        &ordered,
        &names,
        options.max_model_scores,
    )?;
    probe("composite");

    let pca = if options.run_pca {
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<usize> = (0..n).filter(|&r| seen.insert(names[r].clone())).collect();
        let columns: Vec<Vec<f64>> = selection
            .variables
            .iter()
            .map(|v| {
                let all = values_of(v);
                rows.iter().map(|&r| all[r]).collect()
            })
            .collect();
        let pca_names: Vec<String> = rows.iter().map(|&r| names[r].clone()).collect();
        match pca(
            &selection.variables,
            columns,
            rows,
            pca_names,
            options.pca_categories,
        ) {
            Ok(res) => {
                if !res.suitability.suitable {
                    warnings.push(Warning::new(
                        WarningKind::PcaUnsuitable,
                        format!(
                            "the data are not well suited to PCA: {}; the PCA ranking is shown but treat it with caution",
                            res.suitability.reasons.join("; ")
                        ),
                    ));
                }
                Some(res)
            }
            Err(reason) => {
                warnings.push(Warning::new(
                    WarningKind::PcaFailed,
                    format!("PCA could not run: {reason}"),
                ));
                None
            }
        }
    } else {
        None
    };
    probe("pca");

    Ok(AnalysisResult {
        cleaned,
        imputation,
        selection,
        directions,
        normalized,
        composite,
        pca,
        warnings,
    })
}
