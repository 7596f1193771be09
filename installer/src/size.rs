//! Quota sizes as admins type and read them: `500M`, `2G`, `none`.

use anyhow::{anyhow, bail};

/// Parses a size; `Ok(None)` means unlimited.
pub fn parse_quota(text: &str) -> anyhow::Result<Option<i64>> {
    let t = text.trim();
    if matches!(t.to_ascii_lowercase().as_str(), "none" | "unlimited" | "0") {
        return Ok(None);
    }
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => bail!(
                    "invalid size {text:?}: use bytes or a K, M, G or T suffix, e.g. 500M, or none"
                ),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: i64 = digits.trim().parse().map_err(|_| {
        anyhow!("invalid size {text:?}: use bytes or a K, M, G or T suffix, e.g. 500M, or none")
    })?;
    if n < 0 {
        bail!("invalid size {text:?}: a quota cannot be negative");
    }
    n.checked_mul(1i64 << shift)
        .map(Some)
        .ok_or_else(|| anyhow!("invalid size {text:?}: too large"))
}

/// Formats bytes with the largest whole binary unit, or `unlimited`.
pub fn format_quota(bytes: Option<i64>) -> String {
    let Some(b) = bytes else {
        return "unlimited".to_string();
    };
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if b >= 1i64 << shift && b % (1i64 << shift) == 0 {
            return format!("{}{unit}", b >> shift);
        }
    }
    format!("{b}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_quota("500M").ok(), Some(Some(500 << 20)));
        assert_eq!(parse_quota("2g").ok(), Some(Some(2 << 30)));
        assert_eq!(parse_quota("1234").ok(), Some(Some(1234)));
        assert_eq!(parse_quota("none").ok(), Some(None));
        assert!(parse_quota("-5").is_err());
        assert!(parse_quota("5X").is_err());
        assert!(parse_quota("").is_err());
        assert!(parse_quota("99999999999T").is_err());
        assert_eq!(format_quota(Some(2 << 30)), "2G");
        assert_eq!(format_quota(Some(1500)), "1500");
        assert_eq!(format_quota(None), "unlimited");
    }
}
