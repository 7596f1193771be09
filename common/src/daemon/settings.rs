//! Parsing the settings the supervisor hands a daemon (`Setup::get_opt`, or a map in tests),
//! the pieces every daemon's `Settings::from_lookup` shares.
//!
//! SECURITY: settings come from the supervisor, which is trusted; they are still parsed
//! strictly (a typo in a number is an error at start, not a silent default), and a host name
//! is checked because it goes into replies and header lines.

/// How a daemon reads its settings: the value of a key, if it was passed.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A setting that must be there and not empty.
pub fn required(get: Lookup<'_>, key: &str) -> Result<String, String> {
    get(key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("setting {key} is missing"))
}

/// A whole number, `default` when absent, at least `min`.
pub fn number(get: Lookup<'_>, key: &str, default: u64, min: u64) -> Result<u64, String> {
    let value = match get(key) {
        None => default,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("setting {key} = {v:?} is not a number"))?,
    };
    if value < min {
        return Err(format!(
            "setting {key} must be at least {min} (got {value})"
        ));
    }
    Ok(value)
}

/// A count of connections and the like: a number from 1 that fits in a `u32`.
pub fn count(get: Lookup<'_>, key: &str, default: u64) -> Result<u32, String> {
    number(get, key, default, 1)
        .and_then(|n| u32::try_from(n).map_err(|_| format!("setting {key} is too large")))
}

/// `true` or `false`, `default` when absent; anything else is an error.
pub fn flag(get: Lookup<'_>, key: &str, default: bool) -> Result<bool, String> {
    match get(key).as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("setting {key} = {other:?} is not true or false")),
    }
}

/// A host name fit for a greeting and a header line: LDH labels (and `_`), dots, at most 253.
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_counts_and_names() {
        let get = |k: &str| match k {
            "n" => Some(" 7 ".to_string()),
            "zero" => Some("0".to_string()),
            "word" => Some("ten".to_string()),
            "huge" => Some("99999999999".to_string()),
            "empty" => Some(String::new()),
            _ => None,
        };
        assert_eq!(number(&get, "n", 1, 1), Ok(7));
        assert_eq!(number(&get, "absent", 5, 1), Ok(5));
        assert_eq!(number(&get, "zero", 5, 0), Ok(0));
        assert!(number(&get, "zero", 5, 1).is_err());
        assert!(number(&get, "word", 5, 0).is_err());
        assert!(count(&get, "huge", 5).is_err());
        assert!(required(&get, "empty").is_err());
        assert!(required(&get, "absent").is_err());
        assert_eq!(required(&get, "n").as_deref(), Ok(" 7 "));
        assert_eq!(flag(&get, "absent", true), Ok(true));
        assert!(flag(&get, "word", true).is_err());
        assert!(valid_hostname("mx-1.example_test"));
        assert!(!valid_hostname("") && !valid_hostname("a..b") && !valid_hostname("a b"));
    }
}
