//! LIST/LSUB patterns (RFC 3501 §6.3.8): `*` matches anything, `%` anything but the hierarchy
//! separator; the reference name is joined in front of the pattern. `INBOX` matches in any
//! case, as a name and as the first level of one.
//!
//! SECURITY: matching simulates the pattern as a set of states, one pass over the name: time
//! is length(name) × length(pattern) whatever the wildcards (backtracking matchers are
//! exponential on `*a*a*a*…`), and patterns are at most `MAX_PATTERN` bytes.

use super::name::SEPARATOR;

/// The longest pattern (reference + mailbox) accepted.
pub const MAX_PATTERN: usize = 1024;

/// The pattern a LIST with `reference` and `pattern` asks for, or `None` when too long.
pub fn canonical(reference: &[u8], pattern: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(reference.len() + pattern.len() + 1);
    out.extend_from_slice(reference);
    // A reference is a prefix; a pattern starting at the root replaces it, as Dovecot does.
    if pattern.first() == Some(&(SEPARATOR as u8)) && !reference.is_empty() {
        out.clear();
    }
    out.extend_from_slice(pattern);
    (out.len() <= MAX_PATTERN).then_some(out)
}

/// How many leading bytes of `name` compare without case: 5 for `INBOX` and `INBOX/...`.
fn inbox_prefix(name: &[u8]) -> usize {
    match name.get(..5) {
        Some(p) if p == b"INBOX" && matches!(name.get(5), None | Some(b'/')) => 5,
        _ => 0,
    }
}

/// True if `name` matches `pattern`.
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    let fold = inbox_prefix(name);
    let m = pattern.len();
    let mut active = vec![false; m + 1];
    let mut next = vec![false; m + 1];
    active[0] = true;
    close(pattern, &mut active);
    for (pos, &c) in name.iter().enumerate() {
        next.fill(false);
        let mut any = false;
        for i in 0..m {
            if !active[i] {
                continue;
            }
            match pattern[i] {
                b'*' => next[i] = true,
                b'%' if c != SEPARATOR as u8 => next[i] = true,
                b'%' => {}
                p if p == c || (pos < fold && p.eq_ignore_ascii_case(&c)) => next[i + 1] = true,
                _ => {}
            }
            any = true;
        }
        if !any {
            return false;
        }
        close(pattern, &mut next);
        std::mem::swap(&mut active, &mut next);
    }
    active[m]
}

/// Wildcards also match nothing: a state before one reaches the state after it.
fn close(pattern: &[u8], states: &mut [bool]) {
    for i in 0..pattern.len() {
        if states[i] && matches!(pattern[i], b'*' | b'%') {
            states[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        matches(p.as_bytes(), n.as_bytes())
    }

    #[test]
    fn wildcards() {
        assert!(m("*", "a/b/c"));
        assert!(m("%", "a"));
        assert!(!m("%", "a/b"));
        assert!(m("a/%", "a/b"));
        assert!(!m("a/%", "a/b/c"));
        assert!(m("a/*", "a/b/c"));
        assert!(m("a*c", "abbbc"));
        assert!(m("a%c", "abc"));
        assert!(!m("a%c", "a/c"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(!m("a", "ab"));
        assert!(m("Sent", "Sent"));
        assert!(!m("sent", "Sent"), "case matters except for INBOX");
    }

    #[test]
    fn inbox_in_any_case() {
        assert!(m("inbox", "INBOX"));
        assert!(m("InBox/%", "INBOX/x"));
        assert!(m("inb*", "INBOX"));
        assert!(!m("inbox/X", "INBOX/x"), "only the INBOX level folds");
        assert!(!m("inboxes", "INBOXES"));
    }

    #[test]
    fn hostile_patterns_stay_linear() {
        let pattern = "*a".repeat(500);
        let name = "a".repeat(250) + "b";
        let start = std::time::Instant::now();
        assert!(!matches(pattern.as_bytes(), name.as_bytes()));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(canonical(b"Work/", b"%").as_deref(), Some(&b"Work/%"[..]));
        assert_eq!(canonical(b"Work/", b"/x").as_deref(), Some(&b"/x"[..]));
        assert!(canonical(&[b'x'; 600], &[b'*'; 600]).is_none());
    }
}
