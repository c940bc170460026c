//! Matching what people type against the names in the data: ward names (fuzzy, because users
//! misspell them and the data spells them oddly: "Fagg c", "Bakin-Ruwa") and column names
//! (underscores, camelCase, abbreviations such as tpr or evi).

use mrpt_table::sequence_ratio;

use crate::context::VariableInfo;

/// Lowercase, every non-alphanumeric run to one space. Digits stay (ward "Fagge D1").
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = true;
    for c in text.chars() {
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                out.push(l);
            }
            last_space = false;
        } else if !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Like [`normalise`] but also splits camelCase ("meanEVI" -> "mean evi"), for column names.
fn normalise_column(name: &str) -> String {
    let mut spaced = String::with_capacity(name.len() + 4);
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if let Some(p) = prev
            && c.is_uppercase()
            && p.is_lowercase()
        {
            spaced.push(' ');
        }
        spaced.push(c);
        prev = Some(c);
    }
    normalise(&spaced)
}

/// Whether `sequence_ratio(a, b)` (difflib, `mrpt_table`'s port) can reach `threshold` at all: it is at most 2*min/(len a + len b), and
/// this cheap bound skips the quadratic comparison for most ward/window pairs.
fn may_reach(a: &str, b: &str, threshold: f64) -> bool {
    let (la, lb) = (a.chars().count(), b.chars().count());
    la + lb > 0 && 2.0 * la.min(lb) as f64 / (la + lb) as f64 >= threshold
}

/// Minimum ratio for a typed name to count as a ward; "Zangoo" ~ "Zango", "game" !~ "gama".
pub const WARD_MATCH_THRESHOLD: f64 = 0.85;

/// A ward found in a message, with where it was found (token positions) so callers can keep
/// mentions in the order the user wrote them.
#[derive(Debug, Clone, PartialEq)]
pub struct WardMention {
    /// The ward's name as the data spells it.
    pub ward: String,
    /// SequenceMatcher ratio, at least [`WARD_MATCH_THRESHOLD`] (1.0 for an exact match).
    pub score: f64,
    /// First token of the mention (0-based).
    pub start: usize,
    /// One past the last token of the mention.
    pub end: usize,
}

/// Alternative names of one ward: the whole name, and for "A/B/C" names each part.
fn ward_aliases(ward: &str) -> Vec<String> {
    let mut out = vec![normalise(ward)];
    if ward.contains('/') {
        out.extend(
            ward.split('/')
                .map(normalise)
                .filter(|p| p.chars().count() >= 4),
        );
    }
    out.retain(|a| !a.is_empty());
    out
}

/// Words that never start or end a ward mention; stops "the dala" matching as one window.
const STOP: &[&str] = &[
    "the", "a", "an", "and", "or", "of", "in", "is", "are", "for", "to", "with", "vs", "versus",
    "ward", "wards", "why", "how", "what", "compare", "between", "about", "me", "show", "tell",
];

/// Every ward named in `message`, non-overlapping, longest and best matches winning, in message
/// order. Exact (normalised) matches always count; fuzzy ones need [`WARD_MATCH_THRESHOLD`] and
/// at least 4 characters so short common words do not turn into wards.
pub fn find_wards(message: &str, wards: &[String]) -> Vec<WardMention> {
    let norm = normalise(message);
    let tokens: Vec<&str> = norm.split(' ').filter(|t| !t.is_empty()).collect();
    // Every window of the message, joined with and without spaces, built once: with 66 wards
    // the same windows are compared many times.
    let aliases: Vec<(&String, Vec<String>)> = wards.iter().map(|w| (w, ward_aliases(w))).collect();
    let widest = aliases
        .iter()
        .flat_map(|(_, a)| a.iter().map(|x| x.split(' ').count() + 1))
        .max()
        .unwrap_or(0);
    let max_width = tokens.len().min(widest);
    let windows: Vec<Vec<Option<(String, String, bool)>>> = (0..=max_width)
        .map(|width| {
            if width == 0 {
                return Vec::new();
            }
            (0..=tokens.len() - width)
                .map(|start| {
                    let window = &tokens[start..start + width];
                    // A stop word may end a ward's own name ("Fagge A"): such windows count
                    // only when they match a name exactly.
                    let stop_bounded =
                        STOP.contains(&window[0]) || STOP.contains(&window[width - 1]);
                    Some((window.join(" "), window.concat(), stop_bounded))
                })
                .collect()
        })
        .collect();
    let mut candidates: Vec<WardMention> = Vec::new();
    for (ward, ward_aliases) in &aliases {
        for alias in ward_aliases {
            let alias = alias.as_str();
            let k = alias.split(' ').count();
            let alias_compact = alias.replace(' ', "");
            let alias_len = alias.chars().count();
            for width in [k, k + 1, k.saturating_sub(1)] {
                if width == 0 || width > max_width {
                    continue;
                }
                for (start, window) in windows[width].iter().enumerate() {
                    let Some((joined, compact, stop_bounded)) = window else {
                        continue;
                    };
                    let score = if joined == alias {
                        1.0
                    } else if !*stop_bounded
                        && alias_len >= 4
                        && joined.chars().count() >= 4
                        && (may_reach(joined, alias, WARD_MATCH_THRESHOLD)
                            || may_reach(compact, &alias_compact, WARD_MATCH_THRESHOLD))
                    {
                        // Compare without spaces too: "bakin ruwa" vs "bakinruwa".
                        sequence_ratio(joined, alias).max(sequence_ratio(compact, &alias_compact))
                    } else {
                        0.0
                    };
                    if score >= WARD_MATCH_THRESHOLD {
                        candidates.push(WardMention {
                            ward: (*ward).clone(),
                            score,
                            start,
                            end: start + width,
                        });
                    }
                }
            }
        }
    }
    // Best first: exactness, then the longer span, then earlier.
    candidates.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then((y.end - y.start).cmp(&(x.end - x.start)))
            .then(x.start.cmp(&y.start))
    });
    let mut chosen: Vec<WardMention> = Vec::new();
    for c in candidates {
        let overlaps = chosen.iter().any(|o| c.start < o.end && o.start < c.end);
        let same_ward = chosen.iter().any(|o| o.ward == c.ward);
        if !overlaps && !same_ward {
            chosen.push(c);
        }
    }
    chosen.sort_by_key(|m| m.start);
    chosen
}

/// Resolve one typed ward name (e.g. a model's argument) to the data's spelling.
pub fn resolve_ward(name: &str, wards: &[String]) -> Option<String> {
    let target = normalise(name);
    if target.is_empty() {
        return None;
    }
    let mut best: Option<(f64, &String)> = None;
    for ward in wards {
        for alias in ward_aliases(ward) {
            let compact = alias.replace(' ', "");
            let target_compact = target.replace(' ', "");
            let score = if alias == target || compact == target_compact {
                1.0
            } else if may_reach(&alias, &target, WARD_MATCH_THRESHOLD)
                || may_reach(&compact, &target_compact, WARD_MATCH_THRESHOLD)
            {
                sequence_ratio(&alias, &target).max(sequence_ratio(&compact, &target_compact))
            } else {
                0.0
            };
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, ward));
            }
        }
    }
    best.filter(|(s, _)| *s >= WARD_MATCH_THRESHOLD)
        .map(|(_, w)| w.clone())
}

/// The closest wards to a name that did not match, for "did you mean ...?".
pub fn suggest_wards(name: &str, wards: &[String], n: usize) -> Vec<String> {
    let target = normalise(name);
    let mut scored: Vec<(f64, &String)> = wards
        .iter()
        .map(|w| (sequence_ratio(&normalise(w), &target), w))
        .filter(|(s, _)| *s >= 0.5)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(n).map(|(_, w)| w.clone()).collect()
}

/// Groups of names that mean the same variable. A column whose normalised name contains any
/// member (as whole words) answers to every member of the group.
const SYNONYMS: &[&[&str]] = &[
    &[
        "tpr",
        "test positivity rate",
        "test positivity",
        "positivity rate",
        "positivity",
    ],
    &[
        "evi",
        "enhanced vegetation index",
        "vegetation index",
        "vegetation",
    ],
    &[
        "ndvi",
        "normalized difference vegetation index",
        "normalised difference vegetation index",
    ],
    &["ndwi", "water index", "normalized difference water index"],
    &["rainfall", "rain", "precipitation"],
    &["temperature", "temp", "lst", "land surface temperature"],
    &["elevation", "altitude"],
    &[
        "distance to water bodies",
        "distance to water",
        "water distance",
        "distance",
    ],
    &["housing quality", "housing", "house quality"],
    &[
        "dumpsites",
        "dump sites",
        "dumpsite",
        "dump site",
        "waste sites",
    ],
    &[
        "settlement type",
        "settlement",
        "poor settlement",
        "informal settlement",
    ],
    &[
        "nets per capita",
        "net coverage",
        "itn coverage",
        "bed net coverage",
    ],
    &["pfpr", "parasite prevalence", "parasite rate", "prevalence"],
    &[
        "ntl",
        "night lights",
        "nighttime lights",
        "night time lights",
    ],
    &["u5", "under five", "under 5", "children under five"],
    &["pop", "population", "total population"],
    &["flood", "flooding", "flood risk"],
];

fn contains_phrase(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let hay = format!(" {haystack} ");
    hay.contains(&format!(" {needle} "))
}

/// All the names a column answers to, longest first.
fn column_names(column: &str) -> Vec<String> {
    let norm = normalise_column(column);
    let mut names = vec![norm.clone(), normalise(column).replace(' ', "")];
    for group in SYNONYMS {
        if group.iter().any(|alias| contains_phrase(&norm, alias)) {
            names.extend(group.iter().map(|s| (*s).to_string()));
        }
    }
    names.retain(|n| !n.is_empty());
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names.dedup();
    names
}

/// Resolve one typed variable name to a column of the data.
pub fn resolve_variable(name: &str, variables: &[VariableInfo]) -> Option<String> {
    let target = normalise_column(name);
    if target.is_empty() {
        return None;
    }
    // Exact column name first, so "rainfall" picks `rainfall` over `rainfall_2020`.
    if let Some(v) = variables
        .iter()
        .find(|v| normalise_column(&v.name) == target || v.name.eq_ignore_ascii_case(name))
    {
        return Some(v.name.clone());
    }
    if let Some(v) = variables
        .iter()
        .find(|v| column_names(&v.name).contains(&target))
    {
        return Some(v.name.clone());
    }
    let mut best: Option<(f64, &VariableInfo)> = None;
    for v in variables {
        for n in column_names(&v.name) {
            let s = sequence_ratio(&n, &target);
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, v));
            }
        }
    }
    best.filter(|(s, _)| *s >= 0.85)
        .map(|(_, v)| v.name.clone())
}

/// Columns named in free text, in the order they appear. Short names (< 3 characters) are only
/// matched exactly as words; single words of 5+ characters may be misspelt ("rainfal").
pub fn find_variables(text: &str, variables: &[VariableInfo]) -> Vec<String> {
    let norm = normalise(text);
    let tokens: Vec<&str> = norm.split(' ').filter(|t| !t.is_empty()).collect();
    let mut hits: Vec<(usize, usize, String)> = Vec::new(); // (start char, len, column)
    let padded = format!(" {norm} ");
    let names: Vec<Vec<String>> = variables.iter().map(|v| column_names(&v.name)).collect();
    for (v, v_names) in variables.iter().zip(&names) {
        for name in v_names {
            if name.len() < 2 {
                continue;
            }
            if let Some(pos) = padded.find(&format!(" {name} ")) {
                hits.push((pos, name.len(), v.name.clone()));
                break;
            }
        }
    }
    for (i, tok) in tokens.iter().enumerate() {
        if tok.chars().count() < 5 {
            continue;
        }
        for (v, v_names) in variables.iter().zip(&names) {
            if hits.iter().any(|h| h.2 == v.name) {
                continue;
            }
            let close = v_names
                .iter()
                .filter(|n| !n.contains(' ') && n.chars().count() >= 5)
                .any(|n| may_reach(n, tok, 0.88) && sequence_ratio(n, tok) >= 0.88);
            if close {
                let pos = tokens[..i].iter().map(|t| t.len() + 1).sum::<usize>();
                hits.push((pos, tok.len(), v.name.clone()));
            }
        }
    }
    hits.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    // One column per place in the text: "test positivity rate" must not also yield a column
    // that only answers to "rate".
    let mut out: Vec<String> = Vec::new();
    let mut covered_until = 0usize;
    for (pos, len, col) in hits {
        if pos < covered_until && out.last().is_some() {
            continue;
        }
        if !out.contains(&col) {
            out.push(col);
        }
        covered_until = pos + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::VariableKind;

    fn wards() -> Vec<String> {
        [
            "Zango",
            "Dala",
            "Fagge A",
            "Fagge B",
            "Fagg c",
            "Bakin-Ruwa",
            "Gama",
            "Sabon Gari East",
            "Oke Oyi/Oke-Ose/Alalubosa",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn vars(names: &[&str]) -> Vec<VariableInfo> {
        names
            .iter()
            .map(|n| VariableInfo {
                name: n.to_string(),
                kind: VariableKind::Numeric,
                completeness_pct: 100.0,
            })
            .collect()
    }

    #[test]
    fn ward_ratios_match_difflib() {
        // difflib.SequenceMatcher(None, "zango", "zangoo").sequence_ratio() == 0.9090...
        assert!((sequence_ratio("zango", "zangoo") - 10.0 / 11.0).abs() < 1e-9);
        assert!((sequence_ratio("abcd", "bcde") - 0.75).abs() < 1e-9);
        assert_eq!(sequence_ratio("", ""), 1.0);
        assert!(sequence_ratio("gama", "game") < WARD_MATCH_THRESHOLD);
    }

    #[test]
    fn wards_found_in_order_longest_first() {
        let w = wards();
        let found = find_wards("compare Dala and Fagge A", &w);
        let names: Vec<&str> = found.iter().map(|m| m.ward.as_str()).collect();
        assert_eq!(names, ["Dala", "Fagge A"]);
        // A name ending in a stop word ("A") is found whatever the order of the list (the app
        // passes wards in rank order, where Fagge B may come first).
        let mut reordered = w.clone();
        reordered.reverse();
        let found = find_wards("compare Dala and Fagge A", &reordered);
        let names: Vec<&str> = found.iter().map(|m| m.ward.as_str()).collect();
        assert_eq!(names, ["Dala", "Fagge A"]);
        let found = find_wards("why is zangoo ranked first?", &w);
        assert_eq!(found[0].ward, "Zango");
        let found = find_wards("tell me about bakin ruwa", &w);
        assert_eq!(found[0].ward, "Bakin-Ruwa");
        let found = find_wards("what about sabon gari east", &w);
        assert_eq!(found[0].ward, "Sabon Gari East");
        let found = find_wards("how is Alalubosa doing", &w);
        assert_eq!(found[0].ward, "Oke Oyi/Oke-Ose/Alalubosa");
        assert!(find_wards("play a game with me", &w).is_empty());
    }

    #[test]
    fn ward_resolution_and_suggestions() {
        let w = wards();
        assert_eq!(resolve_ward("ZANGO", &w).as_deref(), Some("Zango"));
        assert_eq!(resolve_ward("fagge-a", &w).as_deref(), Some("Fagge A"));
        assert_eq!(resolve_ward("BakinRuwa", &w).as_deref(), Some("Bakin-Ruwa"));
        assert_eq!(resolve_ward("Nowhere", &w), None);
        assert!(suggest_wards("Zangu", &w, 3).contains(&"Zango".to_string()));
    }

    #[test]
    fn variables_by_synonym_and_shape() {
        let v = vars(&[
            "test_positivity_rate",
            "enhanced_vegetation_index",
            "rainfall",
            "distance_to_water_bodies",
            "meanEVI",
            "tpr_u5_new",
            "val_housing_15",
        ]);
        assert_eq!(
            resolve_variable("TPR", &v[..1]).as_deref(),
            Some("test_positivity_rate")
        );
        assert_eq!(
            resolve_variable("Test Positivity Rate", &v).as_deref(),
            Some("test_positivity_rate")
        );
        assert_eq!(
            resolve_variable("evi", &v[4..5]).as_deref(),
            Some("meanEVI")
        );
        assert_eq!(
            resolve_variable("housing", &v[6..]).as_deref(),
            Some("val_housing_15")
        );
        assert_eq!(resolve_variable("rainfal", &v).as_deref(), Some("rainfall"));
        assert_eq!(resolve_variable("elevation", &v), None);
        let found = find_variables("map the test positivity rate and rain", &v[..4]);
        assert_eq!(found, ["test_positivity_rate", "rainfall"]);
        let found = find_variables("using tpr, evi and distance to water", &v[..4]);
        assert_eq!(
            found,
            [
                "test_positivity_rate",
                "enhanced_vegetation_index",
                "distance_to_water_bodies"
            ]
        );
        assert_eq!(find_variables("show rainfal", &v), ["rainfall"]);
    }
}
