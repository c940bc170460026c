//! The one ward-name matcher. Every join of ward names in the workspace goes through
//! [`match_ward_names`]: the upload report, the analysis' table ↔ shapefile join (analysis.md
//! §1.3), the assistant's map of uploaded data, and ITN planning's population join (§5). The
//! rules differ only where the specification says the joins differ ([`NameRule`]); the
//! duplicate-name fix of §1.3 step 3 is [`fix_duplicate_ward_names`].

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::difflib::close_matches_prepared;
use crate::error::Result;
use crate::fuzz::{
    fuzz_ratio, normalize_ward_name, partial_may_reach, partial_ratio, sorted_chars,
    token_sort_key, token_sort_may_reach,
};
use crate::ward::WardTable;

/// Similarity cutoff of ChatMRPT's `fix_wardname_mismatches` (difflib ratio).
pub const SHAPEFILE_CUTOFF: f64 = 0.8;
/// `token_sort_ratio` cutoff of the \[N\] population join.
pub const TOKEN_SORT_CUTOFF: i64 = 70;
/// `partial_ratio` cutoff of the \[N\] population join.
pub const PARTIAL_CUTOFF: i64 = 90;

/// How two ward names are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// §1.3, table ↔ shapefile: identical names; else `difflib.get_close_matches(n=1,
    /// cutoff=0.8)` among every candidate name (case-sensitive; ties to the larger string).
    /// Scores are SequenceMatcher ratios (1.0 for identical names).
    Shapefile,
    /// §5 \[J\] population join: names lower-cased without a ` (XX123)` code suffix, with
    /// ChatMRPT's two fixed spellings; equal keys only. Every candidate with the key is a hit.
    PopulationExact,
    /// §5 \[N\] population join: [`normalize_ward_name`] keys equal (score 100); else the best
    /// `token_sort_ratio` ≥ 70; else the best `partial_ratio` ≥ 90 (fuzzywuzzy scores).
    PopulationFuzzy,
}

impl NameRule {
    /// The key names are compared by before any fuzzy step.
    pub fn key(self, name: &str) -> String {
        match self {
            NameRule::Shapefile => name.to_string(),
            NameRule::PopulationExact => {
                let k = strip_code_suffix(name).trim().to_lowercase();
                match k.as_str() {
                    "jauben kudu" => "jaube".to_string(),
                    "rigar duka" => "rugar duka".to_string(),
                    _ => k,
                }
            }
            NameRule::PopulationFuzzy => normalize_ward_name(name),
        }
    }

    /// The score of an exact (equal-key) match.
    fn exact_score(self) -> f64 {
        match self {
            NameRule::Shapefile => 1.0,
            NameRule::PopulationExact | NameRule::PopulationFuzzy => 100.0,
        }
    }
}

/// `\s*\([A-Z]{2}\d+\)$` removed.
fn strip_code_suffix(name: &str) -> &str {
    let t = name.trim_end();
    if let Some(open) = t.rfind('(')
        && t.ends_with(')')
    {
        let inner = &t[open + 1..t.len() - 1];
        let b = inner.as_bytes();
        if b.len() > 2
            && b[0].is_ascii_uppercase()
            && b[1].is_ascii_uppercase()
            && b[2..].iter().all(u8::is_ascii_digit)
        {
            return t[..open].trim_end();
        }
    }
    t
}

/// Where one name landed.
#[derive(Debug, Clone, PartialEq)]
pub struct NameHit {
    /// The candidates it matched, in candidate order: one for a fuzzy match; for an exact one
    /// every candidate with the same key (the first is the one a plain join takes).
    pub candidates: Vec<usize>,
    /// 1.0 (or 100) for equal keys; else the rule's similarity score.
    pub score: f64,
    /// True when the keys were equal (no fuzzy step).
    pub exact: bool,
}

impl NameHit {
    /// The candidate a plain join takes (the first with the name).
    pub fn first(&self) -> usize {
        self.candidates[0]
    }
}

/// Matches each of `names` to `candidates` under `rule`: one hit (or `None`) per name, in order.
pub fn match_ward_names(
    names: &[Option<String>],
    candidates: &[Option<String>],
    rule: NameRule,
) -> Vec<Option<NameHit>> {
    let keys: Vec<Option<String>> = candidates
        .iter()
        .map(|c| c.as_deref().map(|c| rule.key(c)))
        .collect();
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        if let Some(k) = k {
            by_key.entry(k.as_str()).or_default().push(i);
        }
    }
    let fuzzy = FuzzyCandidates::new(rule, candidates, &keys);
    let mut memo: HashMap<&str, Option<NameHit>> = HashMap::new();
    names
        .iter()
        .map(|name| {
            let name = name.as_deref()?;
            if let Some(hit) = memo.get(name) {
                return hit.clone();
            }
            let key = rule.key(name);
            let hit = match by_key.get(key.as_str()) {
                Some(found) if !(rule == NameRule::PopulationFuzzy && key.is_empty()) => {
                    Some(NameHit {
                        candidates: found.clone(),
                        score: rule.exact_score(),
                        exact: true,
                    })
                }
                _ => fuzzy.best(&key).map(|(index, score)| NameHit {
                    candidates: match rule {
                        // A shapefile name found by similarity is joined like an exact one.
                        NameRule::Shapefile => keys
                            .get(index)
                            .and_then(|k| k.as_deref())
                            .and_then(|k| by_key.get(k).cloned())
                            .unwrap_or_else(|| vec![index]),
                        _ => vec![index],
                    },
                    score,
                    exact: false,
                }),
            };
            memo.insert(name, hit.clone());
            hit
        })
        .collect()
}

/// The fuzzy step of a rule, prepared once per candidate list.
enum FuzzyCandidates<'c> {
    None,
    /// Distinct candidate names, sorted, split into chars, with their first index.
    Difflib(Vec<(Vec<char>, &'c str)>, HashMap<&'c str, usize>),
    /// Normalised keys, their token-sorted form and the sorted characters of both (bounds).
    Fuzz {
        keys: Vec<String>,
        sort_keys: Vec<String>,
        sort_chars: Vec<Vec<char>>,
        raw_chars: Vec<Vec<char>>,
    },
}

impl<'c> FuzzyCandidates<'c> {
    fn new(rule: NameRule, candidates: &'c [Option<String>], keys: &[Option<String>]) -> Self {
        match rule {
            NameRule::PopulationExact => FuzzyCandidates::None,
            NameRule::Shapefile => {
                let distinct: BTreeSet<&'c str> =
                    candidates.iter().flatten().map(String::as_str).collect();
                let mut first = HashMap::new();
                for (i, c) in candidates.iter().enumerate() {
                    if let Some(c) = c {
                        first.entry(c.as_str()).or_insert(i);
                    }
                }
                FuzzyCandidates::Difflib(
                    distinct
                        .into_iter()
                        .map(|c| (c.chars().collect(), c))
                        .collect(),
                    first,
                )
            }
            NameRule::PopulationFuzzy => {
                // Unnamed candidates get an empty key, which nothing reaches.
                let keys: Vec<String> =
                    keys.iter().map(|k| k.clone().unwrap_or_default()).collect();
                let sort_keys: Vec<String> = keys.iter().map(|k| token_sort_key(k)).collect();
                let sort_chars = sort_keys.iter().map(|k| sorted_chars(k)).collect();
                let raw_chars = keys.iter().map(|k| sorted_chars(k)).collect();
                FuzzyCandidates::Fuzz {
                    keys,
                    sort_keys,
                    sort_chars,
                    raw_chars,
                }
            }
        }
    }

    /// The best candidate for a name's key, with its score.
    fn best(&self, key: &str) -> Option<(usize, f64)> {
        match self {
            FuzzyCandidates::None => None,
            FuzzyCandidates::Difflib(prepared, first) => {
                let &(score, hit) =
                    close_matches_prepared(key, prepared, 1, SHAPEFILE_CUTOFF).first()?;
                first.get(hit).map(|&i| (i, score))
            }
            FuzzyCandidates::Fuzz {
                keys,
                sort_keys,
                sort_chars,
                raw_chars,
            } => {
                let qk = token_sort_key(key);
                let qk_chars = sorted_chars(&qk);
                let mut best: Option<(usize, i64)> = None;
                for (i, k) in sort_keys.iter().enumerate() {
                    if !token_sort_may_reach(&qk_chars, &sort_chars[i], TOKEN_SORT_CUTOFF) {
                        continue;
                    }
                    let s = fuzz_ratio(&qk, k);
                    if s >= TOKEN_SORT_CUTOFF && best.is_none_or(|(_, b)| s > b) {
                        best = Some((i, s));
                    }
                }
                if best.is_none() {
                    let q_chars = sorted_chars(key);
                    for (i, p) in keys.iter().enumerate() {
                        if !partial_may_reach(&q_chars, &raw_chars[i], PARTIAL_CUTOFF) {
                            continue;
                        }
                        let s = partial_ratio(key, p);
                        if s >= PARTIAL_CUTOFF && best.is_none_or(|(_, b)| s > b) {
                            best = Some((i, s));
                        }
                    }
                }
                best.map(|(i, s)| (i, s as f64))
            }
        }
    }
}

/// A table name renamed to a close shapefile name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuzzyMatch {
    /// The ward name as the table spelled it.
    pub table_name: String,
    /// The shapefile name it was renamed to.
    pub shape_name: String,
    /// SequenceMatcher ratio.
    pub score: f64,
}

/// How a ward table's names met the shapefile's (§1.3 steps 1-2), for the upload report, the
/// analysis and the logs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MatchReport {
    /// Table rows whose name is found in the shapefile (after fuzzy renames).
    pub matched: usize,
    /// Table rows whose name is identical in both files.
    pub exact: usize,
    /// Table names renamed to a close shapefile name (distinct, sorted).
    pub fuzzy: Vec<FuzzyMatch>,
    /// Table names with no shapefile ward (distinct, sorted).
    pub unmatched_table: Vec<String>,
    /// Shapefile names no table row carries (distinct, sorted).
    pub unmatched_shape: Vec<String>,
}

/// The table ↔ shapefile join of one ward table.
#[derive(Debug, Clone, PartialEq)]
pub struct WardMatch {
    /// Per table row, the shapefile row whose shape it takes (the first with its name).
    pub geometry_index: Vec<Option<usize>>,
    /// Counts and lists for the upload report and the logs.
    pub report: MatchReport,
}

/// §1.3 steps 1-2: renames each table ward missing from the shapefile to its close shapefile
/// name (two table wards may land on one shapefile ward, as in ChatMRPT), and says which
/// shapefile row each table row takes its shape from.
pub fn match_wards(wards: &mut WardTable, shape_names: &[Option<String>]) -> Result<WardMatch> {
    let names = wards.ward_names().to_vec();
    let hits = match_ward_names(&names, shape_names, NameRule::Shapefile);
    let mut report = MatchReport::default();
    let mut renamed = Vec::with_capacity(names.len());
    let mut geometry_index = Vec::with_capacity(names.len());
    let mut fuzzy: BTreeSet<(String, String, u64)> = BTreeSet::new();
    let mut unmatched: BTreeSet<String> = BTreeSet::new();
    for (name, hit) in names.iter().zip(&hits) {
        match (name, hit) {
            (Some(n), Some(hit)) => {
                let shape = shape_names[hit.first()].clone().unwrap_or_default();
                report.matched += 1;
                if hit.exact {
                    report.exact += 1;
                } else {
                    fuzzy.insert((n.clone(), shape.clone(), hit.score.to_bits()));
                }
                renamed.push(Some(shape));
                geometry_index.push(Some(hit.first()));
            }
            (Some(n), None) => {
                unmatched.insert(n.clone());
                renamed.push(Some(n.clone()));
                geometry_index.push(None);
            }
            (None, _) => {
                renamed.push(None);
                geometry_index.push(None);
            }
        }
    }
    report.fuzzy = fuzzy
        .into_iter()
        .map(|(table_name, shape_name, score)| FuzzyMatch {
            table_name,
            shape_name,
            score: f64::from_bits(score),
        })
        .collect();
    report.unmatched_table = unmatched.into_iter().collect();
    let used: std::collections::HashSet<&str> =
        renamed.iter().flatten().map(String::as_str).collect();
    let shapes: BTreeSet<&str> = shape_names.iter().flatten().map(String::as_str).collect();
    report.unmatched_shape = shapes
        .into_iter()
        .filter(|n| !used.contains(n))
        .map(str::to_string)
        .collect();
    wards.set_ward_names(renamed)?;
    Ok(WardMatch {
        geometry_index,
        report,
    })
}

/// What §1.3 step 3 found and did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DuplicateNames {
    /// The names carried by more than one row (distinct, sorted, before renaming).
    pub names: Vec<String>,
    /// How many rows carry one of them.
    pub rows: usize,
    /// True when the rows were renamed `"<name> (<code>)"` (a ward-code column exists); without
    /// one they keep their names, and PCA keeps the first row of each (§4).
    pub renamed: bool,
}

/// §1.3 step 3: when a ward-code column exists, every row whose name is duplicated becomes
/// `"<name> (<code>)"` (a missing code reads `nan`, as pandas formats it).
pub fn fix_duplicate_ward_names(wards: &mut WardTable) -> Result<DuplicateNames> {
    let names = wards.ward_names().to_vec();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in names.iter().flatten() {
        *counts.entry(n.as_str()).or_default() += 1;
    }
    let is_dup = |n: &Option<String>| {
        n.as_deref()
            .is_some_and(|n| counts.get(n).copied().unwrap_or(0) > 1)
    };
    let dup_names: BTreeSet<&str> = names
        .iter()
        .filter(|n| is_dup(n))
        .flatten()
        .map(String::as_str)
        .collect();
    let mut out = DuplicateNames {
        names: dup_names.iter().map(|s| s.to_string()).collect(),
        rows: names.iter().filter(|n| is_dup(n)).count(),
        renamed: false,
    };
    let Some(codes) = wards.ward_codes() else {
        return Ok(out);
    };
    if out.rows == 0 {
        return Ok(out);
    }
    let new: Vec<Option<String>> = names
        .iter()
        .zip(&codes)
        .map(|(n, code)| match n {
            Some(n) if is_dup(&Some(n.clone())) => {
                Some(format!("{n} ({})", code.as_deref().unwrap_or("nan")))
            }
            other => other.clone(),
        })
        .collect();
    wards.set_ward_names(new)?;
    out.renamed = true;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::table::{Column, ColumnData, Table};

    fn some(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    fn wards(names: &[&str], codes: Option<&[&str]>) -> WardTable {
        let mut columns = vec![Column::new(
            "WardName",
            ColumnData::texts(names.iter().copied()),
        )];
        if let Some(codes) = codes {
            columns.push(Column::new(
                "WardCode",
                ColumnData::texts(codes.iter().copied()),
            ));
        }
        WardTable::from_table(Table::new(columns).unwrap()).unwrap()
    }

    #[test]
    fn kano_style_names() {
        let mut t = wards(
            &["Bakin-Ruwa", "Gawunab", "zaitawai", "Fagg c", "Dala"],
            None,
        );
        let shapes = some(&[
            "Bakin Ruwa",
            "Gawuna",
            "Zaitawa",
            "Fagge C",
            "Fagge A",
            "Dala",
        ]);
        let m = match_wards(&mut t, &shapes).unwrap();
        assert_eq!(
            t.ward_names(),
            some(&["Bakin Ruwa", "Gawuna", "Zaitawa", "Fagg c", "Dala"])
        );
        assert_eq!(m.geometry_index, [Some(0), Some(1), Some(2), None, Some(5)]);
        assert_eq!(m.report.matched, 4);
        assert_eq!(m.report.exact, 1);
        assert_eq!(m.report.fuzzy.len(), 3);
        assert_eq!(m.report.fuzzy[0].table_name, "Bakin-Ruwa");
        assert_eq!(m.report.fuzzy[0].score, 0.9);
        assert_eq!(m.report.unmatched_table, ["Fagg c"]);
        assert_eq!(m.report.unmatched_shape, ["Fagge A", "Fagge C"]);
    }

    #[test]
    fn two_table_wards_may_land_on_one_shape_and_repeats_take_the_first() {
        let mut t = wards(&["Gawunab", "Gawunaa", "Dala"], None);
        let shapes = some(&["Dala", "Gawuna", "Dala"]);
        let m = match_wards(&mut t, &shapes).unwrap();
        assert_eq!(t.ward_names(), some(&["Gawuna", "Gawuna", "Dala"]));
        assert_eq!(m.geometry_index, [Some(1), Some(1), Some(0)]);
        assert!(m.report.unmatched_shape.is_empty());
    }

    #[test]
    fn duplicates_take_their_code_only_when_there_is_one() {
        let mut t = wards(&["Dala", "Fagge", "Dala"], Some(&["KN01", "KN02", "KN03"]));
        let d = fix_duplicate_ward_names(&mut t).unwrap();
        assert_eq!(
            t.ward_names(),
            some(&["Dala (KN01)", "Fagge", "Dala (KN03)"])
        );
        assert_eq!(
            (d.names.as_slice(), d.rows, d.renamed),
            (&["Dala".to_string()][..], 2, true)
        );
        let mut t = wards(&["Dala", "Fagge", "Dala"], None);
        let d = fix_duplicate_ward_names(&mut t).unwrap();
        assert_eq!(t.ward_names(), some(&["Dala", "Fagge", "Dala"]));
        assert_eq!((d.rows, d.renamed), (2, false));
    }

    #[test]
    fn population_rules() {
        let pop = some(&[
            "KN Fagge Ward II (KN123)",
            "Jaube",
            "dala",
            "Dala",
            "Gyadi-Gyadi/Arewa",
        ]);
        let wards = some(&[
            "Fagge 2",
            "Jauben Kudu",
            "Dala (KN01)",
            "Gyadi Gyadi Arewa",
            "Zango",
        ]);
        let exact = match_ward_names(&wards, &pop, NameRule::PopulationExact);
        assert!(exact[0].is_none());
        assert_eq!(exact[1].as_ref().unwrap().candidates, [1]);
        assert_eq!(exact[2].as_ref().unwrap().candidates, [2, 3]);
        assert!(exact[3].is_none() && exact[4].is_none());
        let fuzzy = match_ward_names(&wards, &pop, NameRule::PopulationFuzzy);
        let hit = |i: usize| fuzzy[i].as_ref().map(|h| (h.first(), h.score, h.exact));
        assert_eq!(hit(0), Some((0, 100.0, true)));
        assert_eq!(hit(2), Some((2, 100.0, true)));
        assert_eq!(hit(3), Some((4, 100.0, true)));
        assert_eq!(hit(4), None);
        assert!(hit(1).is_some_and(|(i, s, exact)| i == 1 && s >= 70.0 && !exact));
    }
}
