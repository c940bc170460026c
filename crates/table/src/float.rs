//! pandas-compatible number parsing and Python's float `repr`, the two halves of reading and
//! writing tables the way ChatMRPT's pandas did (one copy for the whole workspace).

/// Parses a number the way pandas' C parser accepts it: optional sign, digits, a decimal point,
/// an exponent, or `inf`/`infinity`; surrounding whitespace allowed. No thousands separators.
pub fn parse_pandas_float(cell: &str) -> Option<f64> {
    let t = cell.trim();
    if t.is_empty() {
        return None;
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return t.parse::<f64>().ok();
    }
    // Rust also accepts "nan"; pandas treats that as missing, handled before we get here.
    if !unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Formats a float as Python's `repr` does (what pandas writes into CSV files): the shortest
/// string that round-trips, in fixed notation for exponents -4..16, scientific otherwise.
pub fn python_float_repr(x: f64) -> String {
    let mut out = String::with_capacity(24);
    push_python_float_repr(&mut out, x, &mut String::with_capacity(32));
    out
}

/// Appends `repr(x)` to `out`; `scratch` is reused between calls to avoid allocations.
pub fn push_python_float_repr(out: &mut String, x: f64, scratch: &mut String) {
    use std::fmt::Write;
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }
    if x == 0.0 {
        out.push_str(if x.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    // `{:e}` gives the shortest round-trip digits: "d.ddde[-]x".
    scratch.clear();
    let _ = write!(scratch, "{:e}", x.abs());
    let (mantissa, exp) = scratch.split_once('e').unwrap_or((scratch.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (first, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if x < 0.0 {
        out.push('-');
    }
    let decpt = exp + 1;
    let n = (first.len() + rest.len()) as i32;
    if decpt <= -4 || decpt > 16 {
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-decpt) as usize));
        out.push_str(first);
        out.push_str(rest);
    } else if decpt >= n {
        out.push_str(first);
        out.push_str(rest);
        out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
        out.push_str(".0");
    } else {
        // 0 < decpt < n: the point falls inside the digits; `first` is one digit.
        let split = (decpt - 1) as usize;
        out.push_str(first);
        out.push_str(&rest[..split]);
        out.push('.');
        out.push_str(&rest[split..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        let cases = [
            (0.1, "0.1"),
            (1e-10, "1e-10"),
            (1.0, "1.0"),
            (86.0, "86.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5, "-2.5"),
            (0.2834316215614093, "0.2834316215614093"),
            (1e100, "1e+100"),
            (12.010156126362066, "12.010156126362066"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (10000.800000000001, "10000.800000000001"),
            (123456789012345.6, "123456789012345.6"),
            (6.132296545135592, "6.132296545135592"),
            (1e-14, "1e-14"),
        ];
        for (x, want) in cases {
            assert_eq!(python_float_repr(x), want, "{x:e}");
        }
    }

    #[test]
    fn pandas_numbers() {
        assert_eq!(parse_pandas_float(" 1.5e3 "), Some(1500.0));
        assert_eq!(parse_pandas_float("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_pandas_float("1,000"), None);
        assert_eq!(parse_pandas_float("nan"), None);
        assert_eq!(parse_pandas_float(""), None);
    }
}
