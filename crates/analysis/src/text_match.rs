//! Variable-name matching exactly as ChatMRPT's Python computes it: the `VariableMatcher` of
//! §2.3 and the legacy zone-selection score, on the workspace's one difflib port
//! (`mrpt_table::sequence_ratio`). Ports must be exact because match/no-match decisions sit on
//! thresholds.

use std::collections::BTreeSet;

use mrpt_table::sequence_ratio;

/// Tokens on `[_\s-]+`, as the matcher's Jaccard/initials strategies split them.
fn matcher_tokens(s: &str) -> Vec<&str> {
    s.split(|c: char| c == '_' || c == '-' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Python's `re.split(r'[_\s-]+', s)` keeps empty edge tokens; the Jaccard sets see them.
fn regex_split_tokens(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut cur = String::new();
    let mut in_sep = false;
    for c in s.chars() {
        if c == '_' || c == '-' || c.is_whitespace() {
            if !in_sep {
                out.insert(std::mem::take(&mut cur));
                in_sep = true;
            }
        } else {
            in_sep = false;
            cur.push(c);
        }
    }
    out.insert(cur);
    out
}

const COMMON_VARIATIONS: &[(&str, &[&str])] = &[
    (
        "temperature",
        &[
            "temp",
            "tmp",
            "temperature",
            "air_temp",
            "air_temperature",
            "avg_temp",
        ],
    ),
    (
        "rainfall",
        &[
            "rain",
            "rainfall",
            "precip",
            "precipitation",
            "rain_fall",
            "avg_rainfall",
        ],
    ),
    (
        "humidity",
        &["humid", "humidity", "rh", "relative_humidity", "rel_humid"],
    ),
    (
        "elevation",
        &["elev", "elevation", "alt", "altitude", "height", "dem"],
    ),
    (
        "population",
        &[
            "pop",
            "population",
            "pop_density",
            "population_density",
            "pop_dens",
        ],
    ),
    (
        "malaria",
        &[
            "malaria",
            "mal",
            "malaria_cases",
            "malaria_incidence",
            "mal_inc",
        ],
    ),
    (
        "poverty",
        &["poverty", "pov", "poverty_rate", "poor", "poverty_index"],
    ),
    (
        "education",
        &["edu", "education", "literacy", "school", "education_level"],
    ),
    (
        "health",
        &[
            "health",
            "healthcare",
            "health_access",
            "clinic",
            "hospital",
        ],
    ),
    (
        "water",
        &[
            "water",
            "water_access",
            "water_source",
            "clean_water",
            "water_body",
        ],
    ),
    (
        "sanitation",
        &["sanitation", "sanit", "toilet", "latrine", "sewage"],
    ),
    (
        "housing",
        &["housing", "house", "housing_quality", "hq", "shelter"],
    ),
    (
        "vegetation",
        &[
            "veg",
            "vegetation",
            "ndvi",
            "evi",
            "greenness",
            "vegetation_index",
        ],
    ),
    (
        "urban",
        &[
            "urban",
            "urban_percent",
            "urbanization",
            "urban_pct",
            "urban_percentage",
        ],
    ),
    (
        "distance",
        &["dist", "distance", "distance_to", "dist_to", "proximity"],
    ),
    (
        "nighttime_lights",
        &[
            "night_lights",
            "nighttime_lights",
            "ntl",
            "lights",
            "night_time_lights",
        ],
    ),
    (
        "soil",
        &[
            "soil",
            "soil_moisture",
            "soil_wetness",
            "soil_type",
            "soil_quality",
        ],
    ),
    (
        "pfpr",
        &[
            "pfpr",
            "parasite_rate",
            "parasite_prevalence",
            "p_falciparum",
            "pf_pr",
        ],
    ),
    (
        "tpr",
        &[
            "tpr",
            "test_positivity",
            "test_positivity_rate",
            "positivity_rate",
        ],
    ),
    ("u5", &["u5", "under5", "under_5", "under_five", "children"]),
    (
        "ndwi",
        &["ndwi", "water_index", "normalized_difference_water_index"],
    ),
    (
        "ndmi",
        &[
            "ndmi",
            "moisture_index",
            "normalized_difference_moisture_index",
        ],
    ),
];

fn canonical_of(variation: &str) -> Option<(&'static str, &'static [&'static str])> {
    // Python builds the reverse map in table order, so a later canonical wins for a repeated
    // variation; none repeats today, but keep the same precedence.
    COMMON_VARIATIONS
        .iter()
        .rev()
        .find(|(_, vars)| vars.contains(&variation))
        .map(|(c, v)| (*c, *v))
}

fn is_abbreviation(short: &str, long: &str) -> bool {
    if short.chars().count() >= long.chars().count() {
        return false;
    }
    if long.starts_with(short) {
        return true;
    }
    let toks = regex_split_tokens_ordered(long);
    if toks.len() > 1 {
        let initials: String = toks.iter().filter_map(|t| t.chars().next()).collect();
        if short == initials {
            return true;
        }
    }
    false
}

fn regex_split_tokens_ordered(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_sep = false;
    for c in s.chars() {
        if c == '_' || c == '-' || c.is_whitespace() {
            if !in_sep {
                out.push(std::mem::take(&mut cur));
                in_sep = true;
            }
        } else {
            in_sep = false;
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// `VariableMatcher._calculate_similarity`.
pub(crate) fn variable_similarity(var1: &str, var2: &str) -> f64 {
    let v1 = var1.trim().to_lowercase();
    let v2 = var2.trim().to_lowercase();
    let direct = sequence_ratio(&v1, &v2);
    let substring = if v2.contains(&v1) || v1.contains(&v2) {
        if v2.starts_with(&v1) || v1.starts_with(&v2) {
            0.9
        } else {
            0.8
        }
    } else {
        0.0
    };
    let t1 = regex_split_tokens(&v1);
    let t2 = regex_split_tokens(&v2);
    let inter = t1.intersection(&t2).count();
    let union = t1.union(&t2).count();
    let token = if union > 0 {
        inter as f64 / union as f64
    } else {
        0.0
    };
    let abbrev = if is_abbreviation(&v1, &v2) || is_abbreviation(&v2, &v1) {
        0.85
    } else {
        0.0
    };
    direct.max(substring).max(token).max(abbrev)
}

/// `VariableMatcher._find_best_match`: (column index, confidence) when the score reaches
/// `threshold`.
pub(crate) fn match_variable(user: &str, columns: &[&str], threshold: f64) -> Option<(usize, f64)> {
    let u = user.trim().to_lowercase();
    if let Some(i) = columns.iter().position(|c| c.to_lowercase() == u) {
        return Some((i, 1.0));
    }
    if let Some((canonical, variations)) = canonical_of(&u) {
        for (i, c) in columns.iter().enumerate() {
            let lower = c.to_lowercase();
            if lower.contains(canonical) || variations.contains(&lower.as_str()) {
                return Some((i, 0.95));
            }
        }
    }
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in columns.iter().enumerate() {
        let s = variable_similarity(user, c);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.filter(|&(_, s)| s >= threshold && s > 0.0)
}

const KNOWN_PAIRS: &[(&str, &[&str])] = &[
    ("temp", &["temperature"]),
    ("rain", &["rainfall", "precip"]),
    ("elev", &["elevation"]),
    ("tpr", &["test_positivity_rate"]),
    ("u5_tpr", &["under5_tpr"]),
    ("pfpr", &["parasite_prevalence"]),
    ("evi", &["enhanced_vegetation_index"]),
    ("ndwi", &["normalized_difference_water_index"]),
    ("ndmi", &["normalized_difference_moisture_index"]),
    ("housing_quality", &["hq", "housing_q"]),
    ("distance_to_waterbodies", &["dist_water", "water_distance"]),
    ("nighttime_lights", &["night_lights", "ntl", "lights"]),
];

/// The legacy zone-selection score of §2.3B step 2.
fn legacy_score(var: &str, col: &str) -> f64 {
    let v = var.to_lowercase();
    let c = col.to_lowercase();
    let mut score = sequence_ratio(&v, &c);
    if v.contains(&c) || c.contains(&v) {
        score = score.max(0.9);
    }
    let tv: BTreeSet<&str> = matcher_tokens(&v).into_iter().collect();
    let tc: BTreeSet<&str> = matcher_tokens(&c).into_iter().collect();
    let denom = tv.len().max(tc.len());
    if denom > 0 {
        score = score.max(tv.intersection(&tc).count() as f64 / denom as f64);
    }
    let known = KNOWN_PAIRS.iter().any(|(a, bs)| {
        (v == *a && bs.iter().any(|b| c == *b)) || (c == *a && bs.iter().any(|b| v == *b))
    });
    if known {
        score = score.max(0.95);
    }
    score
}

/// `find_fuzzy_match(var, candidates, 0.75)`: the matcher first, then the legacy score.
pub(crate) fn zone_fuzzy_match(var: &str, candidates: &[&str], threshold: f64) -> Option<usize> {
    if let Some((i, _)) = match_variable(var, candidates, threshold) {
        return Some(i);
    }
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in candidates.iter().enumerate() {
        let s = legacy_score(var, c);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.filter(|&(_, s)| s >= threshold).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_matcher_examples() {
        let cols = ["WardName", "meanEVI", "distance"];
        assert_eq!(match_variable("evi", &cols, 0.7), Some((1, 0.8)));
        let cols = ["tpr_u5_new", "TPR"];
        assert_eq!(
            match_variable("u5_tpr_rdt", &cols, 0.7).map(|m| m.0),
            Some(1)
        );
        let cols = ["tpr_u5_new"];
        assert_eq!(match_variable("u5_tpr_rdt", &cols, 0.7), None);
    }
}
