//! Numbers as programme officers write them: 120,000 / 120k / 1.2m / 1.2 million /
//! "one hundred thousand" / "ten thousand", and the ITN parameters they belong to.

/// A number found in text, with the token span it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberMention {
    /// The value (`120k` is 120000; a percentage stays 0-100).
    pub value: f64,
    /// First token of the number's words (0-based).
    pub start: usize,
    /// One past its last token.
    pub end: usize,
    /// Followed by `%` or "percent".
    pub percent: bool,
}

/// Lowercase tokens; punctuation other than the `.`, `,` and `%` that belong to numbers is
/// dropped.
pub fn tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for raw in lower.split(|c: char| c.is_whitespace() || c == '/' || c == '(' || c == ')') {
        let mut t: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '.' | ',' | '%' | '-' | '\''))
            .collect();
        // Trailing sentence punctuation: "nets." / "120,000," / "5?".
        while t.ends_with(['.', ',', '\'', '-']) {
            t.pop();
        }
        while t.starts_with(['\'', '-']) && !t[1..].starts_with(|c: char| c.is_ascii_digit()) {
            t.remove(0);
        }
        if t.is_empty() {
            continue;
        }
        if let Some(stripped) = t.strip_suffix('%') {
            if !stripped.is_empty() {
                out.push(stripped.to_string());
            }
            out.push("%".to_string());
        } else {
            out.push(t);
        }
    }
    out
}

fn unit_word(w: &str) -> Option<f64> {
    Some(match w {
        "zero" => 0.0,
        "one" => 1.0,
        "two" => 2.0,
        "three" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "eleven" => 11.0,
        "twelve" => 12.0,
        "thirteen" => 13.0,
        "fourteen" => 14.0,
        "fifteen" => 15.0,
        "sixteen" => 16.0,
        "seventeen" => 17.0,
        "eighteen" => 18.0,
        "nineteen" => 19.0,
        "twenty" => 20.0,
        "thirty" => 30.0,
        "forty" => 40.0,
        "fifty" => 50.0,
        "sixty" => 60.0,
        "seventy" => 70.0,
        "eighty" => 80.0,
        "ninety" => 90.0,
        _ => return None,
    })
}

fn scale_word(w: &str) -> Option<f64> {
    Some(match w {
        "hundred" => 100.0,
        "thousand" | "k" => 1_000.0,
        "million" | "millions" | "m" | "mn" => 1_000_000.0,
        "billion" | "bn" => 1_000_000_000.0,
        _ => return None,
    })
}

/// "120,000", "1.2", "120k", "1.2m", "50K" -> value. Commas only as thousands separators.
fn parse_numeric_token(t: &str) -> Option<f64> {
    let (body, mult) = if let Some(b) = t.strip_suffix('k') {
        (b, 1_000.0)
    } else if let Some(b) = t.strip_suffix("mn") {
        (b, 1_000_000.0)
    } else if let Some(b) = t.strip_suffix('m') {
        (b, 1_000_000.0)
    } else {
        (t, 1.0)
    };
    if body.is_empty() || !body.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if body.contains(',') {
        let mut parts = body.split(',');
        let first = parts.next()?;
        if first.is_empty() || first.len() > 3 {
            return None;
        }
        let rest: Vec<&str> = parts.collect();
        let (last, middle) = rest.split_last()?;
        if middle
            .iter()
            .any(|p| p.len() != 3 || !p.chars().all(|c| c.is_ascii_digit()))
        {
            return None;
        }
        let (last_int, last_frac) = last.split_once('.').unwrap_or((last, ""));
        if last_int.len() != 3 || !last_int.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let joined = format!(
            "{first}{}{last_int}{}{last_frac}",
            middle.concat(),
            if last_frac.is_empty() { "" } else { "." }
        );
        return joined.parse::<f64>().ok().map(|v| v * mult);
    }
    body.parse::<f64>().ok().map(|v| v * mult)
}

/// Every number in the text, in order.
pub fn find_numbers(text: &str) -> Vec<NumberMention> {
    let toks = tokens(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let start = i;
        let mut value: Option<f64> = None;
        if let Some(v) = parse_numeric_token(&toks[i]) {
            value = Some(v);
            // "150 000": space as the thousands separator.
            let grouped = toks[i].len() <= 3 && toks[i].chars().all(|c| c.is_ascii_digit());
            i += 1;
            while grouped
                && toks
                    .get(i)
                    .is_some_and(|t| t.len() == 3 && t.chars().all(|c| c.is_ascii_digit()))
            {
                value = value.map(|v| v * 1000.0 + toks[i].parse::<f64>().unwrap_or(0.0));
                i += 1;
            }
            // "1.2 million", "120 thousand", "100 k"
            while i < toks.len() {
                match scale_word(&toks[i]) {
                    Some(s) if s >= 1_000.0 || (s == 100.0 && value.is_some_and(|v| v < 100.0)) => {
                        value = value.map(|v| v * s);
                        i += 1;
                    }
                    _ => break,
                }
            }
        } else if unit_word(&toks[i]).is_some()
            || (toks[i].contains('-') && toks[i].split('-').all(|p| unit_word(p).is_some()))
            || (matches!(toks[i].as_str(), "a" | "one" | "half")
                && toks
                    .get(i + 1)
                    .is_some_and(|n| scale_word(n).is_some() || n == "a"))
        {
            // Word numbers: total + current, as usual ("one hundred and twenty thousand").
            let mut total = 0.0;
            let mut current = 0.0;
            let mut any = false;
            let mut half = false;
            while i < toks.len() {
                let w = toks[i].as_str();
                if let Some(u) = unit_word(w) {
                    current += u;
                    any = true;
                } else if w == "a" && toks.get(i + 1).is_some_and(|n| scale_word(n).is_some()) {
                    current += 1.0;
                } else if w == "half" {
                    half = true;
                } else if let Some(s) = scale_word(w).filter(|_| w.len() > 2) {
                    any = true;
                    if current == 0.0 {
                        current = 1.0;
                    }
                    if s == 100.0 {
                        current *= s;
                    } else {
                        total += current * s;
                        current = 0.0;
                    }
                } else if w == "and"
                    && any
                    && toks.get(i + 1).is_some_and(|n| unit_word(n).is_some())
                {
                    // "one hundred and twenty"
                } else if w.contains('-') && w.split('-').all(|p| unit_word(p).is_some()) {
                    current += w.split('-').filter_map(unit_word).sum::<f64>();
                    any = true;
                } else {
                    break;
                }
                i += 1;
            }
            if any {
                let v = total + current;
                value = Some(if half { v / 2.0 } else { v });
            }
            if i == start {
                i += 1;
            }
        } else if toks[i].contains('-') && toks[i].split('-').all(|p| unit_word(p).is_some()) {
            value = Some(toks[i].split('-').filter_map(unit_word).sum());
            i += 1;
        } else {
            i += 1;
        }
        if let Some(v) = value {
            let percent = toks
                .get(i)
                .is_some_and(|t| t == "%" || t == "percent" || t == "per");
            out.push(NumberMention {
                value: v,
                start,
                end: i,
                percent,
            });
        }
    }
    out
}

/// The ITN parameters a message states. `None` means "not said": no defaults are filled in here
/// (a default used as a "missing" marker is how "I have 10000 nets" got asked again, H10).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItnNumbers {
    /// Nets available.
    pub total_nets: Option<u64>,
    /// People per household.
    pub avg_household_size: Option<f64>,
    /// Urban threshold, percent 0-100.
    pub urban_threshold: Option<f64>,
}

const NET_WORDS: &[&str] = &[
    "net", "nets", "llin", "llins", "itn", "itns", "bednet", "bednets", "bed", "mosquito",
];

/// Pull net total, household size and urban threshold out of a message. `bare_number_is_nets`
/// says whether a lone number with no label counts as the net total (the assistant just asked
/// for it, or the message is clearly about ITN).
pub fn itn_numbers(text: &str, bare_number_is_nets: bool) -> ItnNumbers {
    let toks = tokens(text);
    let nums = find_numbers(text);
    let mut out = ItnNumbers::default();
    let mut used = vec![false; nums.len()];
    let window = |from: usize, to: usize| -> Vec<&str> {
        toks[from.min(toks.len())..to.min(toks.len())]
            .iter()
            .map(String::as_str)
            .collect()
    };
    for (k, n) in nums.iter().enumerate() {
        let before = window(n.start.saturating_sub(4), n.start);
        let after = window(n.end, n.end + 3);
        let near_household = before.iter().any(|w| w.starts_with("household"))
            || (after.iter().any(|w| {
                matches!(
                    *w,
                    "people" | "persons" | "person" | "members" | "individuals"
                )
            }) && window(n.end, n.end + 4)
                .iter()
                .any(|w| w.starts_with("household") || *w == "hh" || *w == "house"))
            || before.contains(&"hh");
        let near_threshold = before
            .iter()
            .any(|w| w.starts_with("threshold") || *w == "urban" || *w == "urbanity")
            || (n.percent && after.iter().any(|w| w.starts_with("urban")));
        if near_household && out.avg_household_size.is_none() && n.value > 0.0 && n.value <= 50.0 {
            out.avg_household_size = Some(n.value);
            used[k] = true;
        } else if near_threshold && out.urban_threshold.is_none() {
            out.urban_threshold = Some(n.value);
            used[k] = true;
        }
    }
    // Net total: a number right before a net word ("120k nets", "10000 bed nets"), else after
    // "have"/"with"/"total", else a lone remaining number when the caller says it is about nets.
    let as_count = |v: f64| -> Option<u64> {
        if v.is_finite() && (1.0..=1e12).contains(&v) && (v - v.round()).abs() < 1e-6 {
            Some(v.round() as u64)
        } else {
            None
        }
    };
    // Counts of people, households or wards are never the net total.
    for (k, n) in nums.iter().enumerate() {
        let next = window(n.end, n.end + 1);
        if next.first().is_some_and(|w| {
            [
                "people",
                "person",
                "population",
                "resident",
                "inhabitant",
                "household",
                "ward",
                "member",
            ]
            .iter()
            .any(|p| w.starts_with(p))
        }) {
            used[k] = true;
        }
    }
    for (k, n) in nums.iter().enumerate() {
        if used[k] || n.percent {
            continue;
        }
        let after = window(n.end, n.end + 3);
        // "120k nets", "50,000 of the nets", "10000 new LLINs".
        let labelled = after.first().is_some_and(|w| NET_WORDS.contains(w))
            || (after.first().is_some_and(|w| *w == "of")
                && after.iter().any(|w| NET_WORDS.contains(w)))
            || (after.len() >= 2
                && NET_WORDS.contains(&after[1])
                && !NET_WORDS.contains(&after[0])
                && after[0].len() <= 10
                && !after[0].chars().all(|c| c.is_ascii_digit()));
        if labelled && let Some(c) = as_count(n.value) {
            out.total_nets = Some(c);
            used[k] = true;
            break;
        }
    }
    if out.total_nets.is_none() {
        for (k, n) in nums.iter().enumerate() {
            if used[k] || n.percent {
                continue;
            }
            let before = window(n.start.saturating_sub(3), n.start);
            if before.iter().any(|w| {
                matches!(
                    *w,
                    "have"
                        | "got"
                        | "total"
                        | "with"
                        | "distribute"
                        | "allocate"
                        | "plan"
                        | "using"
                        | "of"
                )
            }) && let Some(c) = as_count(n.value)
            {
                out.total_nets = Some(c);
                used[k] = true;
                break;
            }
        }
    }
    if out.total_nets.is_none() && bare_number_is_nets {
        let rest: Vec<usize> = (0..nums.len())
            .filter(|k| !used[*k] && !nums[*k].percent)
            .collect();
        if let [only] = rest.as_slice() {
            out.total_nets = as_count(nums[*only].value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> f64 {
        find_numbers(text)[0].value
    }

    #[test]
    fn numeric_forms() {
        assert_eq!(first("120,000"), 120_000.0);
        assert_eq!(first("120k nets"), 120_000.0);
        assert_eq!(first("1.2m"), 1_200_000.0);
        assert_eq!(first("1.2 million nets"), 1_200_000.0);
        assert_eq!(first("50 thousand"), 50_000.0);
        assert_eq!(first("2,500,000."), 2_500_000.0);
        assert_eq!(first("household size 5.5"), 5.5);
        assert!(find_numbers("12,34").is_empty());
    }

    #[test]
    fn word_forms() {
        assert_eq!(first("one hundred thousand nets"), 100_000.0);
        assert_eq!(first("ten thousand"), 10_000.0);
        assert_eq!(first("fifty thousand nets"), 50_000.0);
        assert_eq!(first("a million nets"), 1_000_000.0);
        assert_eq!(first("half a million nets"), 500_000.0);
        assert_eq!(first("one hundred and twenty thousand nets"), 120_000.0);
        assert_eq!(first("twenty-five thousand"), 25_000.0);
        assert_eq!(first("two million"), 2_000_000.0);
    }

    #[test]
    fn itn_parameters() {
        let n = itn_numbers("I have 10000 nets", false);
        assert_eq!(n.total_nets, Some(10_000));
        let n = itn_numbers("Plan ITN with 10000 nets and household size 5", false);
        assert_eq!(n.total_nets, Some(10_000));
        assert_eq!(n.avg_household_size, Some(5.0));
        let n = itn_numbers(
            "distribute 120,000 bed nets, 6 people per household, urban threshold 40%",
            false,
        );
        assert_eq!(n.total_nets, Some(120_000));
        assert_eq!(n.avg_household_size, Some(6.0));
        assert_eq!(n.urban_threshold, Some(40.0));
        let n = itn_numbers("household size of 4.5 and 1.2m llins", false);
        assert_eq!(n.total_nets, Some(1_200_000));
        assert_eq!(n.avg_household_size, Some(4.5));
        let n = itn_numbers("plan ITN distribution", false);
        assert_eq!(n.total_nets, None);
        let n = itn_numbers("100000", true);
        assert_eq!(n.total_nets, Some(100_000));
        let n = itn_numbers("household size 6", true);
        assert_eq!(n.total_nets, None);
        assert_eq!(n.avg_household_size, Some(6.0));
        let n = itn_numbers("we have one hundred thousand mosquito nets", false);
        assert_eq!(n.total_nets, Some(100_000));
        let n = itn_numbers("plan nets for 150 000 people", true);
        assert_eq!(n.total_nets, None);
        let n = itn_numbers("we have 150 000 nets", false);
        assert_eq!(n.total_nets, Some(150_000));
        let n = itn_numbers(
            "I have 120000 nets for Kano, help me distribute them",
            false,
        );
        assert_eq!(n.total_nets, Some(120_000));
    }
}
