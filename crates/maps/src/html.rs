//! The HTML document shell, escaping and number formatting shared by maps and charts.

use crate::csp::{SCRIPT, STYLE};

/// Appends `s` escaped for both text and double-quoted attribute context. Characters XML forbids
/// (C0 controls other than tab/newline/CR) are dropped, since inline SVG must stay well-formed
/// for tools that read the file as XML.
pub(crate) fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
}

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

/// Opens the document: doctype, head with the hashed stylesheet, body, `<main>`, the `<h1>` and
/// an optional subtitle.
pub(crate) fn begin(out: &mut String, title: &str, subtitle: Option<&str>) {
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>",
    );
    push_escaped(out, title);
    out.push_str("</title><style>");
    out.push_str(STYLE);
    out.push_str("</style></head>\n<body><main><h1>");
    push_escaped(out, title);
    out.push_str("</h1>");
    if let Some(sub) = subtitle {
        out.push_str("<p class=\"sub\">");
        push_escaped(out, sub);
        out.push_str("</p>");
    }
    out.push('\n');
}

/// Closes `<main>`, adds the tooltip box and the hashed script.
pub(crate) fn end(out: &mut String) {
    out.push_str("</main><div id=\"tip\" role=\"tooltip\" hidden></div><script>");
    out.push_str(SCRIPT);
    out.push_str("</script></body></html>\n");
}

/// Integer with thousands separators: 1234567 -> "1,234,567".
pub(crate) fn fmt_int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A population or other count held as f64: rounded, with separators.
pub(crate) fn fmt_count(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_string();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    format!("{sign}{}", fmt_int(x.abs().round() as u64))
}

pub(crate) fn fmt_score(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "n/a".to_string()
    }
}

pub(crate) fn fmt_pct(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}%")
    } else {
        "n/a".to_string()
    }
}

/// A parameter as typed by a person: at most two decimals, no trailing zeros (75, 5.5, 0.25).
pub(crate) fn fmt_plain(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_string();
    }
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// An axis tick: as many decimals as the tick step needs.
pub(crate) fn fmt_tick(x: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        let mut d = 0usize;
        while d < 8
            && ((step * 10f64.powi(d as i32)).round() - step * 10f64.powi(d as i32)).abs() > 1e-6
        {
            d += 1;
        }
        d
    } else {
        2
    };
    let v = if x.abs() < step.abs() * 1e-9 { 0.0 } else { x };
    format!("{v:.decimals$}")
}

/// A value of any magnitude with sensible precision.
pub(crate) fn fmt_value(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "n/a".to_string()
    } else if a >= 1000.0 {
        fmt_count(x)
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 || a == 0.0 {
        format!("{x:.2}")
    } else if a >= 0.001 {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_controls() {
        assert_eq!(
            escape("A<b>&\"c'\u{1}d\ne"),
            "A&lt;b&gt;&amp;&quot;c&#39;d\ne"
        );
        assert_eq!(escape("Ùnguwar Kudu"), "Ùnguwar Kudu");
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(999), "999");
        assert_eq!(fmt_int(1000), "1,000");
        assert_eq!(fmt_int(1_234_567), "1,234,567");
        assert_eq!(fmt_count(12345.6), "12,346");
        assert_eq!(fmt_count(f64::NAN), "n/a");
        assert_eq!(fmt_score(0.52349), "0.523");
        assert_eq!(fmt_pct(82.26), "82.3%");
        assert_eq!(fmt_value(0.0), "0.00");
        assert_eq!(fmt_value(12.345), "12.35");
        assert_eq!(fmt_value(0.01234), "0.012");
        assert_eq!(fmt_value(0.000_012_3), "1.23e-5");
        assert_eq!(fmt_value(4567.0), "4,567");
        assert_eq!(fmt_plain(75.0), "75");
        assert_eq!(fmt_plain(5.5), "5.5");
        assert_eq!(fmt_plain(0.25), "0.25");
        assert_eq!(fmt_plain(-0.001), "0");
        assert_eq!(fmt_tick(0.2, 0.2), "0.2");
        assert_eq!(fmt_tick(0.25, 0.25), "0.25");
        assert_eq!(fmt_tick(1000.0, 500.0), "1000");
        assert_eq!(fmt_tick(5.551115123125783e-17, 0.2), "0.0");
    }

    #[test]
    fn shell_is_complete() {
        let mut s = String::new();
        begin(&mut s, "T<1>", Some("sub & more"));
        end(&mut s);
        assert!(s.starts_with("<!DOCTYPE html>"));
        assert!(s.contains("<title>T&lt;1&gt;</title>"));
        assert!(s.contains(&format!("<style>{STYLE}</style>")));
        assert!(s.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(s.trim_end().ends_with("</html>"));
    }
}
