//! How results are shown: aligned tables for people, `--json` for scripts.

use serde::Serialize;

/// Prints rows under a header with columns padded to the widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC` (times before 1970 do not occur in the store).
pub fn time(unix: i64) -> String {
    moat_common::date::iso_utc(u64::try_from(unix).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn times() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::time(1_795_961_045), "2026-11-29 14:04:05 UTC");
    }
}
