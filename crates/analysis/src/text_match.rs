//! String similarity exactly as ChatMRPT's Python computes it: difflib's SequenceMatcher
//! (Ratcliff–Obershelp, autojunk only from 200 characters), `get_close_matches`, fuzzywuzzy's
//! `token_sort_ratio`/`partial_ratio` (pure-Python flavour, built on SequenceMatcher), the
//! `VariableMatcher` of §2.3, the ITN ward-name normaliser of §5 and the CSV↔shapefile name fix
//! of §1.3. Ports must be exact because match/no-match decisions sit on thresholds.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

struct SequenceMatcher<'a> {
    a: &'a [char],
    b: &'a [char],
    b2j: HashMap<char, Vec<usize>>,
}

impl<'a> SequenceMatcher<'a> {
    fn new(a: &'a [char], b: &'a [char]) -> SequenceMatcher<'a> {
        let mut b2j: HashMap<char, Vec<usize>> = HashMap::new();
        for (j, &c) in b.iter().enumerate() {
            b2j.entry(c).or_default().push(j);
        }
        // difflib's autojunk: with n >= 200, elements occurring more than 1% are "popular" and
        // dropped from b2j (but still extend matches, since they are not junk).
        let n = b.len();
        if n >= 200 {
            let ntest = n / 100 + 1;
            b2j.retain(|_, idxs| idxs.len() <= ntest);
        }
        SequenceMatcher { a, b, b2j }
    }

    fn find_longest_match(
        &self,
        alo: usize,
        ahi: usize,
        blo: usize,
        bhi: usize,
    ) -> (usize, usize, usize) {
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0usize);
        let mut j2len: HashMap<usize, usize> = HashMap::new();
        for i in alo..ahi {
            let mut newj2len: HashMap<usize, usize> = HashMap::new();
            if let Some(js) = self.b2j.get(&self.a[i]) {
                for &j in js {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let k = j
                        .checked_sub(1)
                        .and_then(|jm| j2len.get(&jm))
                        .copied()
                        .unwrap_or(0)
                        + 1;
                    newj2len.insert(j, k);
                    if k > bestsize {
                        besti = i + 1 - k;
                        bestj = j + 1 - k;
                        bestsize = k;
                    }
                }
            }
            j2len = newj2len;
        }
        while besti > alo && bestj > blo && self.a[besti - 1] == self.b[bestj - 1] {
            besti -= 1;
            bestj -= 1;
            bestsize += 1;
        }
        while besti + bestsize < ahi
            && bestj + bestsize < bhi
            && self.a[besti + bestsize] == self.b[bestj + bestsize]
        {
            bestsize += 1;
        }
        (besti, bestj, bestsize)
    }

    fn matching_blocks(&self) -> Vec<(usize, usize, usize)> {
        let (la, lb) = (self.a.len(), self.b.len());
        let mut queue = vec![(0, la, 0, lb)];
        let mut blocks = Vec::new();
        while let Some((alo, ahi, blo, bhi)) = queue.pop() {
            let (i, j, k) = self.find_longest_match(alo, ahi, blo, bhi);
            if k > 0 {
                blocks.push((i, j, k));
                if alo < i && blo < j {
                    queue.push((alo, i, blo, j));
                }
                if i + k < ahi && j + k < bhi {
                    queue.push((i + k, ahi, j + k, bhi));
                }
            }
        }
        blocks.sort_unstable();
        let mut merged: Vec<(usize, usize, usize)> = Vec::new();
        for (i, j, k) in blocks {
            if let Some(last) = merged.last_mut()
                && last.0 + last.2 == i
                && last.1 + last.2 == j
            {
                last.2 += k;
                continue;
            }
            merged.push((i, j, k));
        }
        merged
    }

    fn ratio(&self) -> f64 {
        let total = self.a.len() + self.b.len();
        if total == 0 {
            return 1.0;
        }
        let matches: usize = self.matching_blocks().iter().map(|b| b.2).sum();
        2.0 * matches as f64 / total as f64
    }
}

/// `difflib.SequenceMatcher(None, a, b).ratio()`. Not symmetric in general: argument order matters.
pub fn sequence_ratio(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    SequenceMatcher::new(&a, &b).ratio()
}

/// `difflib.get_close_matches(word, possibilities, n=1, cutoff)`: the best (score, string) pair.
fn close_match<'a>(word: &str, possibilities: &[&'a str], cutoff: f64) -> Option<&'a str> {
    let w: Vec<char> = word.chars().collect();
    let w_sorted = sorted_chars(word);
    let mut best: Option<(f64, &'a str)> = None;
    for &p in possibilities {
        let pc: Vec<char> = p.chars().collect();
        // difflib's real_quick_ratio and quick_ratio are upper bounds: they only prune.
        let total = (pc.len() + w.len()) as f64;
        if total > 0.0 && 2.0 * pc.len().min(w.len()) as f64 / total < cutoff {
            continue;
        }
        if total > 0.0
            && 2.0 * multiset_intersection(&sorted_chars(p), &w_sorted) as f64 / total < cutoff
        {
            continue;
        }
        let r = SequenceMatcher::new(&pc, &w).ratio();
        if r >= cutoff {
            let better = match best {
                None => true,
                Some((bs, bstr)) => r > bs || (r == bs && p > bstr),
            };
            if better {
                best = Some((r, p));
            }
        }
    }
    best.map(|(_, s)| s)
}

/// The characters of `s`, sorted (for multiset intersections).
pub(crate) fn sorted_chars(s: &str) -> Vec<char> {
    let mut v: Vec<char> = s.chars().collect();
    v.sort_unstable();
    v
}

/// Size of the multiset intersection of two sorted character lists: an upper bound on the
/// matched characters of any SequenceMatcher alignment.
pub(crate) fn multiset_intersection(a: &[char], b: &[char]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Whether `token_sort_ratio` can reach `cutoff`, from the two token-sorted keys' sorted
/// characters (ratio <= 2I/T, and fuzzywuzzy rounds 100·ratio half to even).
pub(crate) fn token_sort_may_reach(a: &[char], b: &[char], cutoff: i64) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let bound = 200.0 * multiset_intersection(a, b) as f64 / (a.len() + b.len()) as f64;
    bound >= cutoff as f64 - 0.5
}

/// Whether `partial_ratio` can reach `cutoff` (each window's ratio is at most 2I/(ls + I)).
pub(crate) fn partial_may_reach(a: &[char], b: &[char], cutoff: i64) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let ls = a.len().min(b.len()) as f64;
    let i = multiset_intersection(a, b) as f64;
    200.0 * i / (ls + i).max(1.0) >= cutoff as f64 - 0.5
}

/// Python's `round()` to an integer (half to even), as fuzzywuzzy's `intr` uses it.
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        (2.0 * (x / 2.0).round()) as i64
    } else {
        r as i64
    }
}

/// fuzzywuzzy `utils.full_process(force_ascii=True)`: drop code points 128–255, non-word
/// characters (`\W`: not alphanumeric, not `_`) to spaces, lower-case, trim.
fn full_process(s: &str) -> String {
    s.chars()
        .filter(|c| !(128..=255).contains(&(*c as u32)))
        .map(|c| {
            if c.is_alphanumeric() || c == '_' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .to_lowercase()
        .trim()
        .to_string()
}

fn fuzz_ratio(a: &str, b: &str) -> i64 {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    round_half_even(100.0 * sequence_ratio(a, b))
}

/// The string `token_sort_ratio` compares: processed, tokens sorted, joined by spaces.
pub(crate) fn token_sort_key(s: &str) -> String {
    let p = full_process(s);
    let mut toks: Vec<&str> = p.split_whitespace().collect();
    toks.sort_unstable();
    toks.join(" ")
}

/// fuzzywuzzy `fuzz.ratio` on already-prepared strings.
pub(crate) fn fuzz_ratio_prepared(a: &str, b: &str) -> i64 {
    fuzz_ratio(a, b)
}

/// fuzzywuzzy `fuzz.token_sort_ratio` (full_process on, pure-Python SequenceMatcher).
pub fn token_sort_ratio(a: &str, b: &str) -> i64 {
    fuzz_ratio(&token_sort_key(a), &token_sort_key(b))
}

/// fuzzywuzzy `fuzz.partial_ratio`: best ratio of the shorter string against equal-length
/// windows of the longer one anchored at SequenceMatcher's matching blocks.
pub fn partial_ratio(a: &str, b: &str) -> i64 {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let ac: Vec<char> = a.chars().collect();
    let bc: Vec<char> = b.chars().collect();
    let (shorter, longer) = if ac.len() <= bc.len() {
        (ac, bc)
    } else {
        (bc, ac)
    };
    let blocks = SequenceMatcher::new(&shorter, &longer).matching_blocks();
    let mut best = 0.0f64;
    for (i, j, _) in blocks {
        let start = j.saturating_sub(i);
        let end = (start + shorter.len()).min(longer.len());
        let window = &longer[start..end];
        let r = SequenceMatcher::new(&shorter, window).ratio();
        if r > 0.995 {
            return 100;
        }
        best = best.max(r);
    }
    round_half_even(100.0 * best)
}

/// §5 \[N\] `normalize_ward_name`: cut at "(", drop a 2-letter state prefix and the word "ward",
/// `/`,`-`,`_` to spaces, lower-case, Roman numerals i–ix to digits, collapse spaces.
pub fn normalize_ward_name(name: &str) -> String {
    let s = name.trim();
    let s = s.split('(').next().unwrap_or("");
    // `^[a-z]{2}\s+` (case-insensitive)
    let chars: Vec<char> = s.chars().collect();
    let s: String = if chars.len() > 2
        && chars[0].is_ascii_alphabetic()
        && chars[1].is_ascii_alphabetic()
        && chars[2].is_whitespace()
    {
        chars[2..]
            .iter()
            .collect::<String>()
            .trim_start()
            .to_string()
    } else {
        s.to_string()
    };
    let s = s.replace(['/', '-', '_'], " ");
    let lower = s.to_lowercase();
    let words: Vec<String> = lower
        .split_whitespace()
        .filter(|w| *w != "ward")
        .map(|w| {
            match w {
                "i" => "1",
                "ii" => "2",
                "iii" => "3",
                "iv" => "4",
                "v" => "5",
                "vi" => "6",
                "vii" => "7",
                "viii" => "8",
                "ix" => "9",
                other => other,
            }
            .to_string()
        })
        .collect();
    words.join(" ")
}

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

/// The CSV↔shapefile ward-name fix of §1.3 (difflib close match at 0.8, case-sensitive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WardNameJoin {
    /// Table ward names after renaming (same length and order as the table).
    pub names: Vec<Option<String>>,
    /// Per table row, the shapefile row whose name it now carries (first on duplicates).
    pub geometry_index: Vec<Option<usize>>,
    /// `(from, to)` renames applied, in table order.
    pub renamed: Vec<(String, String)>,
    /// Table names still without a shapefile ward, sorted.
    pub table_only: Vec<String>,
    /// Shapefile names no table row carries, sorted.
    pub shapefile_only: Vec<String>,
}

/// Match table ward names to shapefile ward names (§1.3 steps 1–2) and give, per table row, the
/// index of its geometry. Every shapefile name is a candidate, so two table wards can map to one
/// shapefile ward, exactly as ChatMRPT does.
pub fn join_ward_names(table: &[Option<String>], shapefile: &[Option<String>]) -> WardNameJoin {
    let shape_set: BTreeSet<&str> = shapefile.iter().flatten().map(String::as_str).collect();
    let candidates: Vec<&str> = shape_set.iter().copied().collect();
    let mut renamed = Vec::new();
    let mut names = Vec::with_capacity(table.len());
    let mut fixed: HashMap<&str, Option<&str>> = HashMap::new();
    for name in table {
        let Some(n) = name else {
            names.push(None);
            continue;
        };
        if shape_set.contains(n.as_str()) {
            names.push(Some(n.clone()));
            continue;
        }
        let hit = *fixed
            .entry(n.as_str())
            .or_insert_with(|| close_match(n, &candidates, 0.8));
        match hit {
            Some(to) => {
                renamed.push((n.clone(), to.to_string()));
                names.push(Some(to.to_string()));
            }
            None => names.push(Some(n.clone())),
        }
    }
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    for (i, s) in shapefile.iter().enumerate() {
        if let Some(s) = s {
            first_index.entry(s.as_str()).or_insert(i);
        }
    }
    let geometry_index: Vec<Option<usize>> = names
        .iter()
        .map(|n| n.as_deref().and_then(|n| first_index.get(n).copied()))
        .collect();
    let table_set: BTreeSet<&str> = names.iter().flatten().map(String::as_str).collect();
    let table_only: Vec<String> = table_set
        .iter()
        .filter(|n| !shape_set.contains(*n))
        .map(|s| s.to_string())
        .collect();
    let shapefile_only: Vec<String> = shape_set
        .iter()
        .filter(|n| !table_set.contains(*n))
        .map(|s| s.to_string())
        .collect();
    WardNameJoin {
        names,
        geometry_index,
        renamed,
        table_only,
        shapefile_only,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_ratio_matches_difflib() {
        // Values computed with CPython's difflib.
        assert!((sequence_ratio("fagg c", "fagge c") - 12.0 / 13.0).abs() < 1e-15);
        assert!((sequence_ratio("abcd", "bcde") - 0.75).abs() < 1e-15);
        assert!((sequence_ratio("Fagg c", "Fagge C") - 10.0 / 13.0).abs() < 1e-15);
        assert_eq!(sequence_ratio("", ""), 1.0);
        assert_eq!(sequence_ratio("abc", ""), 0.0);
    }

    #[test]
    fn kano_name_fixes() {
        let table: Vec<Option<String>> = ["Bakin-Ruwa", "Gawunab", "zaitawai", "Fagg c", "Dala"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        let shp: Vec<Option<String>> = ["Bakin Ruwa", "Gawuna", "Zaitawa", "Fagge C", "Dala"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        let j = join_ward_names(&table, &shp);
        assert_eq!(j.names[0].as_deref(), Some("Bakin Ruwa"));
        assert_eq!(j.names[1].as_deref(), Some("Gawuna"));
        assert_eq!(j.names[2].as_deref(), Some("Zaitawa"));
        assert_eq!(j.names[3].as_deref(), Some("Fagg c"));
        assert_eq!(
            j.geometry_index,
            vec![Some(0), Some(1), Some(2), None, Some(4)]
        );
        assert_eq!(j.table_only, vec!["Fagg c".to_string()]);
        assert_eq!(j.shapefile_only, vec!["Fagge C".to_string()]);
    }

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

    #[test]
    fn fuzzy_ratios() {
        assert_eq!(token_sort_ratio("fagg c", "fagge c"), 92);
        assert_eq!(token_sort_ratio("B A", "a b"), 100);
        assert_eq!(partial_ratio("abc", "xxabcxx"), 100);
    }

    #[test]
    fn pruning_bounds_never_undercut_the_real_scores() {
        let words = [
            "fagge c",
            "fagg c",
            "gyadi gyadi arewa",
            "arewa gyadi",
            "sabon gari east",
            "sabon gari",
            "zango",
            "zaitawa",
            "kofar ruwa",
            "bakin ruwa",
            "a",
            "abc",
            "unguwa uku kauyen alu",
            "unguwar gano",
            "dala 2",
            "dala",
        ];
        for a in words {
            for b in words {
                let (ka, kb) = (token_sort_key(a), token_sort_key(b));
                let (ca, cb) = (sorted_chars(&ka), sorted_chars(&kb));
                let ts = token_sort_ratio(a, b);
                assert!(token_sort_may_reach(&ca, &cb, ts), "{a} / {b}");
                let pr = partial_ratio(a, b);
                assert!(
                    partial_may_reach(&sorted_chars(a), &sorted_chars(b), pr),
                    "{a} / {b}"
                );
            }
        }
    }

    #[test]
    fn ward_name_normaliser() {
        assert_eq!(normalize_ward_name("KN Fagge Ward II (KN123)"), "fagge 2");
        assert_eq!(
            normalize_ward_name("Gyadi-Gyadi/Arewa"),
            "gyadi gyadi arewa"
        );
        assert_eq!(normalize_ward_name("She She"), "she she");
    }
}
