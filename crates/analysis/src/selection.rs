//! Which columns get scored (§2.3 with the fixes of §0.5): user-named variables matched to
//! columns, or automatic selection by geopolitical zone, or the numeric fallback.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::linalg::sample_variance;
use crate::text_match::{match_variable, zone_fuzzy_match};
use mrpt_table::{Table, find_ward_column};

/// How the variables were chosen (analysis.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionMethod {
    /// The user named them.
    UserSpecified,
    /// Zone variables, at least half of them found in the data.
    RegionAware,
    /// Zone detected but fewer than half of its variables were found (ChatMRPT's label; no LLM
    /// is involved).
    LlmFallback,
    /// No zone: numeric columns filtered by name tokens.
    FallbackNumeric,
}

/// How one user-named variable was resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableMatch {
    /// The name as the user wrote it.
    pub requested: String,
    /// The matched column, if any.
    pub column: Option<String>,
    /// Match score of `column`, 0-1 (1.0 for an exact, case-insensitive match).
    pub confidence: f64,
    /// Why the variable is not used (no match, not numeric, no variance, duplicate).
    pub rejected: Option<String>,
}

/// The variables chosen for the analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Selected column names, in selection order.
    pub variables: Vec<String>,
    /// How they were chosen.
    pub method: SelectionMethod,
    /// Detected geopolitical zone (auto selection only).
    pub zone: Option<String>,
    /// How the zone was found (`state_code`, `state`, `ward_names`, `shapefile_state`).
    pub zone_source: Option<String>,
    /// Per user-named variable (empty for auto selection).
    pub matches: Vec<VariableMatch>,
}

const IDENTIFIER_COLUMNS: &[&str] = &[
    "WardName",
    "StateCode",
    "WardCode",
    "LGACode",
    "ward_name",
    "ward_code",
    "X",
    "X.1",
    "X.2",
    "X.3",
    "X.4",
    "X.5",
    "index",
    "Unnamed: 0",
    "global_id",
    "source",
    "source_dat",
    "properties",
    "geometry",
    "Shape_Area",
    "Shape_Leng",
];

fn is_identifier(name: &str) -> bool {
    IDENTIFIER_COLUMNS.contains(&name)
        || name.starts_with("country_")
        || name.starts_with("state_")
        || name.starts_with("lga_")
        // pandas names every unnamed header `Unnamed: <i>`; they are row indices, never data.
        || name.starts_with("Unnamed:")
}

const STATE_CODES: &[(&str, &str)] = &[
    ("KN", "Kano"),
    ("KD", "Kaduna"),
    ("JG", "Jigawa"),
    ("KT", "Katsina"),
    ("KB", "Kebbi"),
    ("SK", "Sokoto"),
    ("ZF", "Zamfara"),
    ("AD", "Adamawa"),
    ("BC", "Bauchi"),
    ("BO", "Borno"),
    ("GM", "Gombe"),
    ("TR", "Taraba"),
    ("YB", "Yobe"),
    ("BN", "Benue"),
    ("KG", "Kogi"),
    ("KW", "Kwara"),
    ("NS", "Nasarawa"),
    ("NG", "Niger"),
    ("PL", "Plateau"),
    ("FCT", "FCT"),
    ("AB", "Abia"),
    ("AN", "Anambra"),
    ("EB", "Ebonyi"),
    ("EN", "Enugu"),
    ("IM", "Imo"),
    ("AK", "Akwa Ibom"),
    ("BY", "Bayelsa"),
    ("CR", "Cross River"),
    ("DT", "Delta"),
    ("ED", "Edo"),
    ("RV", "Rivers"),
    ("EK", "Ekiti"),
    ("LG", "Lagos"),
    ("OG", "Ogun"),
    ("ON", "Ondo"),
    ("OS", "Osun"),
    ("OY", "Oyo"),
];

const ZONES: &[(&str, &[&str])] = &[
    (
        "North_Central",
        &[
            "Benue", "Kogi", "Kwara", "Nasarawa", "Niger", "Plateau", "FCT", "Abuja",
        ],
    ),
    (
        "North_East",
        &["Adamawa", "Bauchi", "Borno", "Gombe", "Taraba", "Yobe"],
    ),
    (
        "North_West",
        &[
            "Jigawa", "Kaduna", "Kano", "Katsina", "Kebbi", "Sokoto", "Zamfara",
        ],
    ),
    ("South_East", &["Abia", "Anambra", "Ebonyi", "Enugu", "Imo"]),
    (
        "South_South",
        &[
            "Akwa Ibom",
            "Bayelsa",
            "Cross River",
            "Delta",
            "Edo",
            "Rivers",
        ],
    ),
    (
        "South_West",
        &["Ekiti", "Lagos", "Ogun", "Ondo", "Osun", "Oyo"],
    ),
];

/// \[J\] `ZONE_VARIABLES` (the reference oracle's version).
const ZONE_VARIABLES: &[(&str, &[&str])] = &[
    (
        "North_Central",
        &[
            "pfpr",
            "nighttime_lights",
            "evi",
            "ndmi",
            "ndwi",
            "soil_wetness",
            "rainfall",
            "temp",
            "u5_tpr_rdt",
        ],
    ),
    (
        "North_East",
        &[
            "pfpr",
            "housing_quality",
            "evi",
            "ndwi",
            "soil_wetness",
            "u5_tpr_rdt",
        ],
    ),
    (
        "North_West",
        &[
            "pfpr",
            "housing_quality",
            "elevation",
            "evi",
            "distance_to_waterbodies",
            "soil_wetness",
            "u5_tpr_rdt",
        ],
    ),
    (
        "South_East",
        &[
            "pfpr",
            "rainfall",
            "elevation",
            "evi",
            "nighttime_lights",
            "soil_wetness",
            "temp",
            "u5_tpr_rdt",
        ],
    ),
    (
        "South_South",
        &[
            "pfpr",
            "elevation",
            "housing_quality",
            "temp",
            "evi",
            "ndwi",
            "ndmi",
            "u5_tpr_rdt",
        ],
    ),
    (
        "South_West",
        &[
            "pfpr",
            "rainfall",
            "elevation",
            "evi",
            "nighttime_lights",
            "u5_tpr_rdt",
        ],
    ),
];

const CORE_VARIABLES: &[&str] = &["pfpr", "u5_tpr_rdt"];

fn zone_of_state(state: &str) -> Option<&'static str> {
    ZONES
        .iter()
        .find(|(_, states)| states.iter().any(|s| s.eq_ignore_ascii_case(state)))
        .map(|(z, _)| *z)
}

fn zone_of_state_fuzzy(state: &str) -> Option<&'static str> {
    let s = state.trim().to_lowercase();
    if s.is_empty() {
        return None;
    }
    zone_of_state(&s).or_else(|| {
        ZONES
            .iter()
            .find(|(_, states)| {
                states.iter().any(|st| {
                    let st = st.to_lowercase();
                    s.contains(&st) || st.contains(&s)
                })
            })
            .map(|(z, _)| *z)
    })
}

fn first_text(table: &Table, column: &str) -> Option<String> {
    let col = table.column(column)?;
    (0..col.data.len()).find_map(|r| col.data.cell_text(r))
}

/// Zone detection with §0.5's fixes: State/StateCode first (table, then shapefile), and only
/// then ward-name keywords, as whole words.
fn detect_zone(
    table: &Table,
    shapefile_state: Option<&str>,
) -> Option<(&'static str, &'static str)> {
    if let Some(code) = first_text(table, "StateCode") {
        let code = code.trim().to_uppercase();
        if let Some((_, state)) = STATE_CODES.iter().find(|(c, _)| *c == code)
            && let Some(z) = zone_of_state(state)
        {
            return Some((z, "state_code"));
        }
    }
    if let Some(state) = first_text(table, "State")
        && let Some(z) = zone_of_state_fuzzy(&state)
    {
        return Some((z, "state"));
    }
    if let Some(state) = shapefile_state {
        let code = state.trim().to_uppercase();
        let by_code = STATE_CODES
            .iter()
            .find(|(c, _)| *c == code)
            .and_then(|(_, s)| zone_of_state(s));
        if let Some(z) = by_code.or_else(|| zone_of_state_fuzzy(state)) {
            return Some((z, "shapefile_state"));
        }
    }
    if let Some(ward) = find_ward_column(table) {
        let names = table.columns()[ward].data.to_text();
        let words: std::collections::HashSet<String> = names
            .iter()
            .flatten()
            .flat_map(|n| {
                n.to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        const RULES: &[(&[&str], &str)] = &[
            (&["kano", "kaduna", "sokoto"], "North_West"),
            (&["borno", "adamawa", "bauchi"], "North_East"),
            (&["lagos", "ogun", "oyo"], "South_West"),
            (&["rivers", "delta", "bayelsa"], "South_South"),
            (&["enugu", "anambra", "imo"], "South_East"),
            (&["plateau", "benue", "niger"], "North_Central"),
        ];
        for (keys, zone) in RULES {
            if keys.iter().any(|k| words.contains(*k)) {
                return Some((zone, "ward_names"));
            }
        }
    }
    None
}

/// A column is usable for scoring: numeric, > 50 % present, sample variance > 0.
fn usable(table: &Table, name: &str) -> Result<(), String> {
    let Some(col) = table.column(name) else {
        return Err("not in the data".into());
    };
    let Some(values) = col.data.to_f64() else {
        return Err("not numeric".into());
    };
    let present = values.iter().flatten().count();
    if values.is_empty() || present * 2 <= values.len() {
        return Err("half or more of its values are missing".into());
    }
    match sample_variance(&values) {
        Some(v) if v > 0.0 => Ok(()),
        Some(_) => Err("constant (no variance)".into()),
        None => Err("fewer than two values".into()),
    }
}

pub(crate) fn select_user(table: &Table, requested: &[String]) -> Result<Selection, Error> {
    let names: Vec<&str> = table.columns().iter().map(|c| c.name.as_str()).collect();
    let mut variables: Vec<String> = Vec::new();
    let mut matches = Vec::new();
    for req in requested {
        let m = match_variable(req, &names, 0.7);
        let (column, confidence) = match m {
            Some((i, conf)) => (Some(names[i].to_string()), conf),
            None => (None, 0.0),
        };
        let rejected = match &column {
            None => Some("no column matches this name".to_string()),
            Some(c) if variables.contains(c) => Some("duplicate of an earlier variable".into()),
            Some(c) => usable(table, c).err(),
        };
        if rejected.is_none()
            && let Some(c) = &column
        {
            variables.push(c.clone());
        }
        matches.push(VariableMatch {
            requested: req.clone(),
            column,
            confidence,
            rejected,
        });
    }
    if variables.len() < 2 {
        let detail = matches
            .iter()
            .filter_map(|m| {
                m.rejected
                    .as_ref()
                    .map(|r| format!("`{}`: {}", m.requested, r))
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::TooFewVariables {
            found: variables.len(),
            detail: if detail.is_empty() {
                "name at least two numeric, non-constant columns".into()
            } else {
                detail
            },
        });
    }
    Ok(Selection {
        variables,
        method: SelectionMethod::UserSpecified,
        zone: None,
        zone_source: None,
        matches,
    })
}

/// Name tokens: split on non-alphanumerics and camelCase boundaries, lower-cased.
fn name_tokens(name: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for part in name.split(|c: char| !c.is_alphanumeric()) {
        let chars: Vec<char> = part.chars().collect();
        let mut cur = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let boundary = i > 0
                && c.is_uppercase()
                && (chars[i - 1].is_lowercase()
                    || chars[i - 1].is_ascii_digit()
                    || (chars[i - 1].is_uppercase()
                        && chars.get(i + 1).is_some_and(|n| n.is_lowercase())));
            if boundary && !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur).to_lowercase());
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            tokens.push(cur.to_lowercase());
        }
    }
    tokens
}

fn fallback_numeric(table: &Table) -> Vec<String> {
    const EXCLUDED: &[&str] = &[
        "id", "code", "name", "ward", "lga", "state", "x", "y", "index",
    ];
    const PRIORITY: &[&str] = &[
        "malaria",
        "fever",
        "parasite",
        "pfpr",
        "tpr",
        "health",
        "rainfall",
        "temperature",
    ];
    let candidates: Vec<&str> = table
        .columns()
        .iter()
        .filter(|c| c.data.is_numeric() && !is_identifier(&c.name))
        .map(|c| c.name.as_str())
        .filter(|n| {
            !name_tokens(n)
                .iter()
                .any(|t| EXCLUDED.contains(&t.as_str()))
        })
        .filter(|n| usable(table, n).is_ok())
        .collect();
    let is_priority = |n: &str| {
        let l = n.to_lowercase();
        PRIORITY.iter().any(|p| l.contains(p))
    };
    let mut ordered: Vec<String> = candidates
        .iter()
        .filter(|n| is_priority(n))
        .map(|s| s.to_string())
        .collect();
    ordered.extend(
        candidates
            .iter()
            .filter(|n| !is_priority(n))
            .map(|s| s.to_string()),
    );
    ordered.truncate(8);
    ordered
}

pub(crate) fn select_auto(
    table: &Table,
    shapefile_state: Option<&str>,
) -> Result<Selection, Error> {
    let Some((zone, source)) = detect_zone(table, shapefile_state) else {
        let variables = fallback_numeric(table);
        if variables.len() < 2 {
            return Err(Error::TooFewVariables {
                found: variables.len(),
                detail:
                    "the data have fewer than two numeric, non-constant, non-identifier columns"
                        .into(),
            });
        }
        return Ok(Selection {
            variables,
            method: SelectionMethod::FallbackNumeric,
            zone: None,
            zone_source: None,
            matches: Vec::new(),
        });
    };
    let zone_vars: &[&str] = ZONE_VARIABLES
        .iter()
        .find(|(z, _)| *z == zone)
        .map(|(_, v)| *v)
        .unwrap_or(&[]);
    let candidates: Vec<&str> = table
        .columns()
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| !is_identifier(n))
        .collect();
    let mut ordered: Vec<&str> = zone_vars
        .iter()
        .filter(|v| CORE_VARIABLES.contains(v))
        .copied()
        .collect();
    ordered.extend(zone_vars.iter().filter(|v| !CORE_VARIABLES.contains(v)));
    let find = |var: &str| -> Option<String> {
        if let Some(c) = candidates.iter().find(|c| **c == var) {
            return Some(c.to_string());
        }
        zone_fuzzy_match(var, &candidates, 0.75).map(|i| candidates[i].to_string())
    };
    let mut selected: Vec<String> = Vec::new();
    let mut matched = 0usize;
    for var in &ordered {
        if let Some(c) = find(var) {
            matched += 1;
            if !selected.contains(&c) {
                selected.push(c);
            }
        }
    }
    if selected.len() < 2 {
        for core in CORE_VARIABLES {
            if let Some(c) = find(core)
                && !selected.contains(&c)
            {
                selected.push(c);
            }
        }
    }
    if selected.len() < 2 {
        for c in table.columns() {
            if selected.len() >= 2 {
                break;
            }
            if c.data.is_numeric()
                && !is_identifier(&c.name)
                && !selected.contains(&c.name)
                && usable(table, &c.name).is_ok()
            {
                selected.push(c.name.clone());
            }
        }
    }
    selected.retain(|v| usable(table, v).is_ok());
    if selected.len() < 2 {
        return Err(Error::TooFewVariables {
            found: selected.len(),
            detail: format!("zone {zone} variables were not found in the data"),
        });
    }
    let method = if matched * 2 < zone_vars.len() {
        SelectionMethod::LlmFallback
    } else {
        SelectionMethod::RegionAware
    };
    Ok(Selection {
        variables: selected,
        method,
        zone: Some(zone.to_string()),
        zone_source: Some(source.to_string()),
        matches: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrpt_table::{Column, ColumnData, Table};

    fn num(name: &str, v: &[f64]) -> Column {
        Column::new(
            name,
            ColumnData::Float(v.iter().map(|x| Some(*x)).collect()),
        )
    }

    fn names(n: usize) -> Column {
        Column::new(
            "WardName",
            ColumnData::Text((0..n).map(|i| Some(format!("W{i}"))).collect()),
        )
    }

    #[test]
    fn tokens_split_camel_case() {
        assert_eq!(name_tokens("WardName"), vec!["ward", "name"]);
        assert_eq!(name_tokens("LGACode"), vec!["lga", "code"]);
        assert_eq!(
            name_tokens("test_positivity_rate"),
            vec!["test", "positivity", "rate"]
        );
        assert_eq!(name_tokens("X.1"), vec!["x", "1"]);
    }

    #[test]
    fn fallback_keeps_tpr_and_drops_identifiers() {
        let t = Table::new(vec![
            Column::new("Unnamed: 0", ColumnData::Int((0..4).map(Some).collect())),
            names(4),
            num("test_positivity_rate", &[0.1, 0.2, 0.3, 0.5]),
            num("housing_quality", &[1.0, 2.0, 3.0, 5.0]),
            num("LGACode", &[1.0, 2.0, 3.0, 4.0]),
            num("flat", &[1.0, 1.0, 1.0, 1.0]),
            num("rainfall", &[3.0, 1.0, 2.0, 0.0]),
        ])
        .unwrap();
        let s = select_auto(&t, None).unwrap();
        assert_eq!(s.method, SelectionMethod::FallbackNumeric);
        assert_eq!(
            s.variables,
            vec!["rainfall", "test_positivity_rate", "housing_quality"]
        );
    }

    #[test]
    fn balogun_is_not_ogun() {
        let t = Table::new(vec![Column::new(
            "WardName",
            ColumnData::Text(vec![Some("Balogun Fulani".into()), Some("Zango".into())]),
        )])
        .unwrap();
        assert_eq!(detect_zone(&t, None), None);
        let t = Table::new(vec![Column::new(
            "StateCode",
            ColumnData::Text(vec![Some("KW".into())]),
        )])
        .unwrap();
        assert_eq!(detect_zone(&t, None), Some(("North_Central", "state_code")));
    }

    #[test]
    fn user_selection_rejects_constant_and_text() {
        let t = Table::new(vec![
            names(3),
            num("a", &[1.0, 2.0, 3.0]),
            num("b", &[1.0, 1.0, 1.0]),
        ])
        .unwrap();
        let e = select_user(&t, &["a".into(), "b".into(), "zzz".into()]).unwrap_err();
        assert!(matches!(e, Error::TooFewVariables { found: 1, .. }), "{e}");
        assert!(e.to_string().contains("constant"));
    }
}
