//! fuzzywuzzy's `ratio`, `token_sort_ratio` and `partial_ratio` (the pure-Python flavour ChatMRPT
//! ran, built on difflib), the ward-name normaliser of analysis.md §5 \[N\], and cheap upper
//! bounds that let a caller skip comparisons that cannot reach a cut-off.

use crate::difflib::{SequenceMatcher, sequence_ratio};

/// The characters of `s`, sorted (for multiset intersections).
pub fn sorted_chars(s: &str) -> Vec<char> {
    let mut v: Vec<char> = s.chars().collect();
    v.sort_unstable();
    v
}

/// Size of the multiset intersection of two sorted character lists: an upper bound on the
/// matched characters of any SequenceMatcher alignment.
pub fn multiset_intersection(a: &[char], b: &[char]) -> usize {
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
pub fn token_sort_may_reach(a: &[char], b: &[char], cutoff: i64) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let bound = 200.0 * multiset_intersection(a, b) as f64 / (a.len() + b.len()) as f64;
    bound >= cutoff as f64 - 0.5
}

/// Whether `partial_ratio` can reach `cutoff` (each window's ratio is at most 2I/(ls + I)).
pub fn partial_may_reach(a: &[char], b: &[char], cutoff: i64) -> bool {
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

/// fuzzywuzzy `fuzz.ratio` (pure-Python flavour: 100 x SequenceMatcher ratio, rounded half
/// to even; 0 when either string is empty).
pub fn fuzz_ratio(a: &str, b: &str) -> i64 {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    round_half_even(100.0 * sequence_ratio(a, b))
}

/// The string `token_sort_ratio` compares: processed, tokens sorted, joined by spaces.
pub fn token_sort_key(s: &str) -> String {
    let p = full_process(s);
    let mut toks: Vec<&str> = p.split_whitespace().collect();
    toks.sort_unstable();
    toks.join(" ")
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
    // fuzzywuzzy walks difflib's blocks, closing sentinel included; this port has always
    // stopped before the sentinel (see SequenceMatcher::matching_blocks).
    let blocks = SequenceMatcher::new(&longer).matching_blocks(&shorter);
    let mut best = 0.0f64;
    for (i, j, _) in blocks {
        let start = j.saturating_sub(i);
        let end = (start + shorter.len()).min(longer.len());
        let window = &longer[start..end];
        let r = SequenceMatcher::new(window).ratio(&shorter);
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

#[cfg(test)]
mod tests {
    use super::*;

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
