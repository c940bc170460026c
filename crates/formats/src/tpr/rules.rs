//! The deterministic rules of tpr.md §1.2-§2.2: header repair (mojibake and the DHIS2 "na"->"0"
//! template corruption), the match form, structural field names and the indicator phrases.

use mrpt_table::tpr::{Age, CountKind, Indicator, StructuralField, TestMethod};

use crate::delimited::decode_windows_1252;

/// Windows-1252 bytes 0x80..=0x9F as WHATWG decodes them (the five undefined bytes map to the
/// C1 control of the same value), for the inverse mapping.
const CP1252_HIGH: [u32; 32] = [
    0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
];

/// Encodes text as Windows-1252; `None` when a character has no byte there.
fn encode_windows_1252(s: &str) -> Option<Vec<u8>> {
    s.chars()
        .map(|c| {
            let u = c as u32;
            if u < 0x80 || (0xA0..=0xFF).contains(&u) {
                Some(u as u8)
            } else {
                CP1252_HIGH
                    .iter()
                    .position(|&h| h == u)
                    .map(|i| 0x80 + i as u8)
            }
        })
        .collect()
}

/// tpr.md §1.3 step 1: text that was UTF-8, read as Windows-1252 (`â‰¥` for `≥`), possibly
/// twice. While the text shows the tell-tale characters (at most twice): re-encode as
/// Windows-1252 and decode as UTF-8; when that fails, replace the two known literals and stop.
fn repair_mojibake(name: &str) -> String {
    let mut s = name.to_string();
    for _ in 0..2 {
        if !s.contains(['â', 'Ã', 'Â']) {
            break;
        }
        match encode_windows_1252(&s).and_then(|b| String::from_utf8(b).ok()) {
            Some(fixed) => s = fixed,
            None => {
                s = s.replace("â‰¥", "≥").replace("â‰¤", "≤");
                break;
            }
        }
    }
    s
}

/// tpr.md §1.3 step 2: the DHIS2 template's "na" -> "0" corruption, for the known names only.
fn repair_zero_for_na(name: &str) -> String {
    const WHOLE: [(&str, &str); 4] = [
        ("period0me", "periodname"),
        ("organisationunit0me", "organisationunitname"),
        ("categoryoptioncomboid0me", "categoryoptioncomboname"),
        ("attributeoptioncomboid0me", "attributeoptioncomboname"),
    ];
    let (base, suffix) = match name.rsplit_once('.') {
        Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => {
            (b, &name[b.len()..])
        }
        _ => (name, ""),
    };
    for (bad, good) in WHOLE {
        if base == bad {
            return format!("{good}{suffix}");
        }
    }
    name.replace("Artesu0te", "Artesunate")
        .replace("Arte0te", "Artesunate")
}

/// A header as it is named from then on (tpr.md §1.3).
pub fn repair_header(raw: &str) -> String {
    let trimmed = raw.trim();
    repair_zero_for_na(&repair_mojibake(trimmed))
        .trim()
        .to_string()
}

/// Bytes that were not UTF-8 decode as Windows-1252 (tpr.md §1.1).
pub fn decode_cell(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(decode_windows_1252(bytes)),
    }
}

/// The match form: lower-case, `≥` -> `>=`, `≤` -> `<=`, whitespace runs collapsed.
pub fn match_form(s: &str) -> String {
    let lowered = s.to_lowercase().replace('≥', ">=").replace('≤', "<=");
    lowered.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The candidate names of a structural field, in priority order (tpr.md §2.1).
pub fn structural_candidates(field: StructuralField) -> &'static [&'static str] {
    match field {
        StructuralField::State => &[
            "orgunitlevel2",
            "state",
            "statename",
            "state_name",
            "state name",
        ],
        StructuralField::Lga => &[
            "orgunitlevel3",
            "lga",
            "lganame",
            "lga_name",
            "lga name",
            "local government area",
            "localgovernment",
            "local_government",
        ],
        StructuralField::Ward => &[
            "orgunitlevel4",
            "ward",
            "wardname",
            "ward_name",
            "ward name",
        ],
        StructuralField::FacilityId => &[
            "organisationunitid",
            "orgunitid",
            "facility_id",
            "facilityid",
            "facility id",
        ],
        StructuralField::FacilityName => &[
            "organisationunitname",
            "healthfacility",
            "health facility",
            "health faccility",
            "facility_name",
            "facility name",
            "facilityname",
            "facility",
        ],
        StructuralField::FacilityLevel => &[
            "facility level",
            "facilitylevel",
            "facility_level",
            "level of health facility",
            "facility type",
            "facilitytype",
            "facility_type",
            "level",
        ],
        StructuralField::Period => &["periodcode", "periodid", "periodname", "period", "year"],
    }
}

/// Whether a match form is a known structural name (or `orgunitlevel1`), for header detection.
pub fn is_structural_name(form: &str) -> bool {
    form == "orgunitlevel1"
        || StructuralField::ALL
            .iter()
            .any(|f| structural_candidates(*f).contains(&form))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Regex `\b<word>\b` on plain text.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        before.is_none_or(|c| !is_word_char(c)) && after.is_none_or(|c| !is_word_char(c))
    })
}

/// Skips optional spaces (the match form has single spaces only).
fn skip_spaces(s: &str) -> &str {
    s.trim_start_matches(' ')
}

/// Whether `pattern` followed by optional spaces and then `next` occurs (`pattern\s*next`),
/// with `word_start` requiring a word boundary before `pattern`.
fn has_then(text: &str, pattern: &str, next: &str, word_start: bool) -> bool {
    text.match_indices(pattern).any(|(i, _)| {
        let boundary = !word_start
            || text[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !is_word_char(c));
        boundary && skip_spaces(&text[i + pattern.len()..]).starts_with(next)
    })
}

/// `excl(\.|uding)?\s*(pw|preg)`.
fn is_excluding_pw(f: &str) -> bool {
    f.match_indices("excl").any(|(i, _)| {
        let mut rest = &f[i + 4..];
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("uding") {
            rest = r;
        }
        let rest = skip_spaces(rest);
        rest.starts_with("pw") || rest.starts_with("preg")
    })
}

fn is_pw(f: &str) -> bool {
    !is_excluding_pw(f) && (f.contains("preg") || f.contains("(pw)") || has_word(f, "pw"))
}

fn is_o5(f: &str) -> bool {
    is_excluding_pw(f)
        || has_then(f, ">=", "5", false)
        || has_then(f, ">", "5", false)
        || f.match_indices('5').any(|(i, _)| {
            let boundary = f[..i].chars().next_back().is_none_or(|c| !is_word_char(c));
            boundary && skip_spaces(&f[i + 1..]).starts_with('+')
        })
        || has_then(f, "over", "5", true)
        || has_then(f, "above", "5", true)
        || has_word(f, "o5")
}

fn is_u5(f: &str) -> bool {
    f.match_indices('<').any(|(i, _)| {
        let rest = &f[i + 1..];
        let rest = rest.strip_prefix('=').unwrap_or(rest);
        skip_spaces(rest).starts_with('5')
    }) || f.match_indices("under").any(|(i, _)| {
        let boundary = f[..i].chars().next_back().is_none_or(|c| !is_word_char(c));
        let rest = skip_spaces(&f[i + 5..]);
        let rest = skip_spaces(rest.strip_prefix('-').unwrap_or(rest));
        boundary && rest.starts_with('5')
    }) || has_word(f, "u5")
        || f.contains("less than 5")
        || f.contains("below 5")
}

/// What the indicator rules make of a header's match form (tpr.md §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndicatorRule {
    /// A count column for this field.
    Field(Indicator),
    /// Not a count column (ratio, no method, no kind, fever-only distractor).
    NotIndicator,
    /// Several age groups match: never guessed.
    Ambiguous(String),
}

/// Classifies one header's match form.
pub fn classify_indicator(f: &str) -> IndicatorRule {
    if has_word(f, "rate")
        || f.contains('%')
        || f.contains("percent")
        || has_word(f, "tpr")
        || f.contains("proportion")
        || has_word(f, "ratio")
    {
        return IndicatorRule::NotIndicator;
    }
    let method = match (f.contains("rdt"), f.contains("microscop")) {
        (true, false) => TestMethod::Rdt,
        (false, true) => TestMethod::Microscopy,
        _ => return IndicatorRule::NotIndicator,
    };
    let kind = if f.contains("positive") {
        CountKind::Positive
    } else if f.contains("negative") {
        return IndicatorRule::NotIndicator;
    } else if f.contains("tested") || f.contains("examined") {
        CountKind::Tested
    } else {
        return IndicatorRule::NotIndicator;
    };
    let ages: Vec<Age> = [
        (Age::U5, is_u5(f)),
        (Age::O5, is_o5(f)),
        (Age::Pw, is_pw(f)),
    ]
    .into_iter()
    .filter(|(_, hit)| *hit)
    .map(|(a, _)| a)
    .collect();
    match ages.as_slice() {
        [] => IndicatorRule::Field(Indicator {
            age: None,
            method,
            kind,
        }),
        [age] => IndicatorRule::Field(Indicator {
            age: Some(*age),
            method,
            kind,
        }),
        several => IndicatorRule::Ambiguous(format!(
            "matches several age groups ({})",
            several
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Criterion (c) of the header detection (tpr.md §1.2): a known structural name or an indicator.
pub fn header_looks_known(repaired: &str) -> bool {
    let f = match_form(repaired);
    is_structural_name(&f) || !matches!(classify_indicator(&f), IndicatorRule::NotIndicator)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn field(header: &str) -> Option<String> {
        match classify_indicator(&match_form(&repair_header(header))) {
            IndicatorRule::Field(i) => Some(i.field_name()),
            _ => None,
        }
    }

    #[test]
    fn the_twelve_nhmis_headers_map() {
        let cases = [
            (
                "Persons presenting with fever & tested by RDT <5yrs",
                "u5_rdt_tested",
            ),
            (
                "Persons presenting with fever & tested by RDT  ≥5yrs (excl PW)",
                "o5_rdt_tested",
            ),
            (
                "Persons presenting with fever & tested by RDT Preg Women (PW)",
                "pw_rdt_tested",
            ),
            (
                "Persons tested positive for malaria by RDT <5yrs",
                "u5_rdt_positive",
            ),
            (
                "Persons tested positive for malaria by RDT  ≥5yrs (excl PW)",
                "o5_rdt_positive",
            ),
            (
                "Persons tested positive for malaria by RDT Preg Women (PW)",
                "pw_rdt_positive",
            ),
            (
                "Persons presenting with fever and tested by Microscopy <5yrs",
                "u5_microscopy_tested",
            ),
            (
                "Persons presenting with fever and tested by Microscopy  ≥5yrs (excl PW)",
                "o5_microscopy_tested",
            ),
            (
                "Persons presenting with fever and tested by Microscopy Preg Women (PW)",
                "pw_microscopy_tested",
            ),
            (
                "Persons tested positive for malaria by Microscopy <5yrs",
                "u5_microscopy_positive",
            ),
            (
                "Persons tested positive for malaria by Microscopy  ≥5yrs (excl PW)",
                "o5_microscopy_positive",
            ),
            (
                "Persons tested positive for malaria by Microscopy Preg Women (PW)",
                "pw_microscopy_positive",
            ),
            // The CSV's mojibake form.
            (
                "Persons presenting with fever & tested by RDT  â‰¥5yrs (excl PW)",
                "o5_rdt_tested",
            ),
        ];
        for (header, want) in cases {
            assert_eq!(field(header).as_deref(), Some(want), "{header}");
        }
    }

    #[test]
    fn other_names_of_the_spec() {
        assert_eq!(
            field("Persons tested positive for malaria by RDT >=5").as_deref(),
            Some("o5_rdt_positive")
        );
        assert_eq!(
            field("Persons tested positive for malaria by RDT >5yrs").as_deref(),
            Some("o5_rdt_positive")
        );
        assert_eq!(
            field("Pregnant women tested positive by RDT").as_deref(),
            Some("pw_rdt_positive")
        );
        // "positive" wins over "tested" ([B]'s test fixture).
        assert_eq!(
            field("Persons presenting with fever & tested positive by RDT <5yrs").as_deref(),
            Some("u5_rdt_positive")
        );
        assert_eq!(
            field("Persons tested for malaria by RDT").as_deref(),
            Some("all_rdt_tested")
        );
        assert_eq!(
            field("RDT tested under-5").as_deref(),
            Some("u5_rdt_tested")
        );
        assert_eq!(
            field("RDT tested under 5").as_deref(),
            Some("u5_rdt_tested")
        );
        assert_eq!(
            field("Microscopy examined 5+").as_deref(),
            Some("o5_microscopy_tested")
        );
        assert_eq!(
            field("rdt positive over 5").as_deref(),
            Some("o5_rdt_positive")
        );
        assert_eq!(
            field("rdt positive above5").as_deref(),
            Some("o5_rdt_positive")
        );
        assert_eq!(field("rdt positive o5").as_deref(), Some("o5_rdt_positive"));
        assert_eq!(field("rdt positive u5").as_deref(), Some("u5_rdt_positive"));
        assert_eq!(
            field("rdt positive less than 5").as_deref(),
            Some("u5_rdt_positive")
        );
        assert_eq!(
            field("rdt positive below 5").as_deref(),
            Some("u5_rdt_positive")
        );
        assert_eq!(
            field("rdt tested excluding pw").as_deref(),
            Some("o5_rdt_tested")
        );
        assert_eq!(
            field("rdt tested excl. preg").as_deref(),
            Some("o5_rdt_tested")
        );
        assert_eq!(field("rdt tested pw").as_deref(), Some("pw_rdt_tested"));
    }

    #[test]
    fn distractors_and_ratios_are_not_indicators() {
        for header in [
            "Persons presenting with fever <5yrs",
            "Persons presenting with fever  ≥5yrs (excl PW)",
            "Persons with Confirmed Uncomplicated Malaria <5yrs",
            "RDT positivity rate <5",
            "TPR RDT positive",
            "% RDT positive",
            "RDT positive percent",
            "Proportion tested positive by RDT",
            "RDT positive ratio",
            "Persons tested negative by RDT <5yrs",
            "Persons tested by RDT and microscopy <5",
            "Outpatient attendance",
            "RDT stock",
        ] {
            assert_eq!(
                classify_indicator(&match_form(header)),
                IndicatorRule::NotIndicator,
                "{header}"
            );
        }
        // "rated" is not the word "rate".
        assert!(matches!(
            classify_indicator(&match_form("RDT tested <5 (rated)")),
            IndicatorRule::Field(_)
        ));
    }

    #[test]
    fn several_ages_are_ambiguous() {
        assert!(matches!(
            classify_indicator(&match_form("RDT tested <5 and >=5")),
            IndicatorRule::Ambiguous(_)
        ));
        assert!(matches!(
            classify_indicator(&match_form("RDT tested u5 pw")),
            IndicatorRule::Ambiguous(_)
        ));
    }

    #[test]
    fn header_repair() {
        assert_eq!(
            repair_header("  RDT  â‰¥5yrs (excl PW) "),
            "RDT  ≥5yrs (excl PW)"
        );
        assert_eq!(repair_header("RDT â‰¤5"), "RDT ≤5");
        // Double encoding.
        assert_eq!(repair_header("RDT Ã¢â€°Â¥5yrs"), "RDT ≥5yrs");
        // Not repairable as a whole (a character outside Windows-1252): the literal fix only.
        assert_eq!(repair_header("ŁRDT â‰¥5"), "ŁRDT ≥5");
        assert_eq!(repair_header("period0me"), "periodname");
        assert_eq!(
            repair_header("organisationunit0me.1"),
            "organisationunitname.1"
        );
        assert_eq!(
            repair_header("Artesu0te injections"),
            "Artesunate injections"
        );
        assert_eq!(repair_header("Arte0te"), "Artesunate");
        // No general 0 -> na rule.
        assert_eq!(repair_header("Ade0"), "Ade0");
        assert_eq!(repair_header("Café"), "Café");
    }

    #[test]
    fn match_form_folds() {
        assert_eq!(match_form("RDT  ≥5yrs\t(excl PW)"), "rdt >=5yrs (excl pw)");
        assert_eq!(match_form("RDT ≤5"), "rdt <=5");
    }

    #[test]
    fn structural_names() {
        assert!(is_structural_name("orgunitlevel1"));
        assert!(is_structural_name("health faccility"));
        assert!(!is_structural_name("orgunitlevel5"));
    }
}
