//! prefork-utc: the calendar date and time, in UTC, of a unix timestamp.
//!
//! Owns the one days-to-civil conversion of the workspace (Howard Hinnant's algorithm, proleptic
//! Gregorian), used by the server's log lines and by the app's `last_updated` column and log
//! lines. Always UTC: reading the local zone needs libc's non-thread-safe tz machinery or a tz
//! database.
//!
//! Must not depend on anything (std only): `prefork-server`, which knows nothing of the malaria
//! crates, and `mrpt-app` both depend on it.

#![deny(missing_docs)]

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC date and time to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UtcDateTime {
    /// Proleptic Gregorian year.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59 (unix time has no leap seconds).
    pub second: u32,
}

impl UtcDateTime {
    /// The date and time `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: u64) -> UtcDateTime {
        // u64::MAX / 86 400 fits an i64, and `rem` < 86 400 fits a u32.
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        UtcDateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: ((rem % 3600) / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// `t` to the second; a time before 1970 (a clock set wrong) reads as 1970-01-01.
    pub fn from_system_time(t: SystemTime) -> UtcDateTime {
        UtcDateTime::from_unix(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    /// Now, from the system clock.
    pub fn now() -> UtcDateTime {
        UtcDateTime::from_system_time(SystemTime::now())
    }

    /// `YYYY-MM-DDTHH:MM:SS` (ISO 8601, no zone suffix).
    pub fn iso8601(&self) -> String {
        let UtcDateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        } = self;
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}")
    }

    /// The month's English three-letter abbreviation (`Jan`..`Dec`), as in access logs.
    pub fn month_abbrev(&self) -> &'static str {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        MONTHS[(self.month as usize).saturating_sub(1) % 12]
    }
}

/// (year, month, day) of the day `days` days after 1970-01-01 (negative: before it).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small positive numbers: day 1..=31, month 1..=12.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(10_957), (2000, 1, 1));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
    }

    #[test]
    fn iso_dates() {
        assert_eq!(UtcDateTime::from_unix(0).iso8601(), "1970-01-01T00:00:00");
        assert_eq!(
            UtcDateTime::from_unix(1_796_000_000).iso8601(),
            "2026-11-30T00:53:20"
        );
        let t = UNIX_EPOCH + Duration::from_secs(1_795_930_763);
        let d = UtcDateTime::from_system_time(t);
        assert_eq!(d.iso8601(), "2026-11-29T05:39:23");
        assert_eq!(d.month_abbrev(), "Nov");
        assert_eq!(
            UtcDateTime::from_system_time(UNIX_EPOCH - Duration::from_secs(5)),
            UtcDateTime::from_unix(0)
        );
    }

    /// Every day of 1970..2400 follows the one before it (the calendar has no gap or repeat).
    #[test]
    fn consecutive_days_are_consecutive_dates() {
        let mut prev = civil_from_days(-1);
        for days in 0..160_000 {
            let (y, m, d) = civil_from_days(days);
            let next_day = (y, m, d) > prev
                && (d == prev.2 + 1 && m == prev.1 && y == prev.0
                    || d == 1
                        && (m == prev.1 + 1 && y == prev.0
                            || m == 1 && prev.1 == 12 && y == prev.0 + 1));
            assert!(next_day, "{prev:?} -> {:?} at day {days}", (y, m, d));
            prev = (y, m, d);
        }
    }
}
