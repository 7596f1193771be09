//! Calendar dates for FETCH INTERNALDATE and the date keys of SEARCH, in days since
//! 1970-01-01 (proleptic Gregorian, UTC), without a calendar library.
//!
//! INTERNALDATE is shown in UTC (`+0000`), so SEARCH BEFORE/ON/SINCE compare the UTC date of
//! INTERNALDATE: the date the client sees. SENTBEFORE/SENTON/SENTSINCE compare the date
//! written in the `Date:` field, disregarding its time and zone (RFC 3501 §6.4.4).

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm); month 1–12, day 1–31
/// (not checked against the month: callers pass parsed, range-checked values).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count: (year, month 1–12, day 1–31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are small by construction (1..=12, 1..=31).
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// The UTC day of a Unix time.
pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

/// INTERNALDATE as RFC 3501 `date-time`, in UTC: `"29-Nov-2026 13:16:58 +0000"` (quotes
/// included). Years outside 0–9999 are clamped: the syntax has four digits.
pub fn internal_date(out: &mut Vec<u8>, unix: i64) {
    let unix = unix.clamp(
        days_from_civil(0, 1, 1) * 86_400,
        days_from_civil(9999, 12, 31) * 86_400 + 86_399,
    );
    let (year, month, day) = civil_from_days(day_of(unix));
    let secs = unix.rem_euclid(86_400);
    let name = usize::try_from(month)
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("Jan");
    out.extend_from_slice(
        format!(
            "\"{day:02}-{name}-{year:04} {:02}:{:02}:{:02} +0000\"",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
        .as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_formats() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for d in [-800_000, -1, 0, 59, 60, 11_016, 20_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d, "{d}");
        }
        let mut out = Vec::new();
        internal_date(&mut out, 1_795_958_218);
        assert_eq!(out, b"\"29-Nov-2026 13:16:58 +0000\"");
        out.clear();
        internal_date(&mut out, -1);
        assert_eq!(out, b"\"31-Dec-1969 23:59:59 +0000\"");
        out.clear();
        internal_date(&mut out, i64::MAX);
        assert_eq!(out, b"\"31-Dec-9999 23:59:59 +0000\"");
        assert_eq!(day_of(-1), -1);
    }
}
