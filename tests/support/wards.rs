//! Which dataset an analysis came from, judged by its ward names (the workflow tests upload
//! Kano and Ilorin into different sessions and check that none sees the other's wards).

use std::collections::BTreeSet;

use super::fixture;

/// The WardName column of a CSV (first column named WardName, no quoting inside names).
pub fn ward_names(csv: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(csv);
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_owned())
        .collect();
    let col = header
        .iter()
        .position(|h| h == "WardName")
        .unwrap_or_else(|| panic!("no WardName column in {header:?}"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .nth(col)
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_owned()
        })
        .collect()
}

/// Ward names compared the way the ward matcher does before fuzzy matching: case, spaces and
/// punctuation ignored ("Bakin-Ruwa" in a CSV is "Bakin Ruwa" in the shapefile).
pub fn normalize_ward(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The normalized ward names of a fixture CSV.
pub fn fixture_wards(rel: &str) -> BTreeSet<String> {
    ward_names(&fixture(rel))
        .iter()
        .map(|w| normalize_ward(w))
        .collect()
}

/// `names` (results of an analysis) come from the dataset whose wards are `own`: none is a ward
/// of `other`, and at least half are wards of `own` (the rest are shapefile spellings that fuzzy
/// matching picked).
pub fn wards_from(names: &[String], own: &BTreeSet<String>, other: &BTreeSet<String>) -> bool {
    let normalized: Vec<String> = names.iter().map(|n| normalize_ward(n)).collect();
    let mine = normalized.iter().filter(|n| own.contains(*n)).count();
    !names.is_empty()
        && normalized
            .iter()
            .all(|n| !other.contains(n) || own.contains(n))
        && mine * 2 >= names.len()
}
