//! Mail addresses as the user store sees them: a validated, normalised local part and a
//! lower-case ASCII (IDNA A-label) domain.
//!
//! Everything that reaches SQL or becomes a Maildir path (`mail/<domain>/<local>`) passes
//! through here first, so these rules are also the file-system safety rules: no `/`, no NUL,
//! no leading `.` and no `..` can ever come out of [`normalize_local_part`] or
//! [`normalize_domain`].

use std::fmt;
use std::net::IpAddr;

/// RFC 5321 §4.5.3.1.1: a local part is at most 64 octets.
pub const MAX_LOCAL_LEN: usize = 64;
/// The longest local part resolved for a mailing list's VERP and confirmation addresses
/// (`list-return-N-user=host`, `list-sc.COOKIE-user=host`, `list-uc.…`): the member's whole
/// address is in it (RFC 5321 §4.5.3.1 lets servers accept more than 64 octets).
pub const MAX_COMMAND_LOCAL_LEN: usize = 255;
/// RFC 1035 (as used by RFC 5321): at most 253 octets in presentation form without the root dot.
pub const MAX_DOMAIN_LEN: usize = 253;
/// RFC 1035 §2.3.4: a label is at most 63 octets.
pub const MAX_LABEL_LEN: usize = 63;

/// A normalised address: `local` passed [`normalize_local_part`], `domain` passed
/// [`normalize_domain`]. Construct it with [`Address::parse`] or [`Address::new`] so the
/// invariant holds; the fields are public for reading.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    pub local: String,
    pub domain: String,
}

impl Address {
    /// Parses `local@domain` (surrounding whitespace ignored). The split is at the last `@`,
    /// so an `@` inside the local part is reported as a bad local-part character rather
    /// than as a bad domain.
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(AddressError::Empty);
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(AddressError::MissingAt(trimmed.to_owned()));
        };
        Address::new(local, domain)
    }

    /// Builds an address from its two halves, normalising both.
    pub fn new(local: &str, domain: &str) -> Result<Address, AddressError> {
        Ok(Address {
            local: normalize_local_part(local)?,
            domain: normalize_domain(domain)?,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

/// Why an address, local part or domain was refused. The Display text names the offending
/// input (quoted with Rust escapes, so a NUL shows as `\0`) and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    #[error("address is empty (expected local@domain)")]
    Empty,
    #[error("{0:?} is not an address (expected local@domain)")]
    MissingAt(String),
    #[error("the local part (before @) is empty")]
    EmptyLocal,
    #[error("local part {0:?} is longer than 64 octets")]
    LocalTooLong(String),
    #[error("local part {local:?} contains {ch:?}, which is not allowed in an address")]
    LocalBadChar { local: String, ch: char },
    #[error("local part {0:?} may not start or end with '.' or contain '..'")]
    LocalDots(String),
    #[error("the domain (after @) is empty")]
    EmptyDomain,
    #[error("domain {0:?} is longer than 253 characters")]
    DomainTooLong(String),
    #[error("domain {0:?} has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel(String),
    #[error("domain {domain:?} has a label longer than 63 characters")]
    LabelTooLong { domain: String },
    #[error(
        "domain {domain:?} has an invalid label {label:?} (letters, digits and inner hyphens only)"
    )]
    BadLabel { domain: String, label: String },
    #[error("{0:?} is an IP address; only domain names are supported")]
    IpLiteral(String),
    #[error("domain {0:?} is not a valid internationalised domain name")]
    Idna(String),
}

/// Normalises a local part: ASCII lower-case, 1..=64 octets, RFC 5322 dot-atom characters only
/// minus `/` (which would escape the Maildir path), with no leading/trailing dot and no `..`.
///
/// Lower-casing follows common practice (vpopmail, Dovecot, Postfix lookups are all
/// case-insensitive for virtual users); quoted local parts and non-ASCII (SMTPUTF8) local
/// parts are refused for now.
pub fn normalize_local_part(input: &str) -> Result<String, AddressError> {
    normalize_local_part_up_to(input, MAX_LOCAL_LEN)
}

/// [`normalize_local_part`] with room for `MAX_COMMAND_LOCAL_LEN` octets: only for a local
/// part that resolution then checks to be a list's command address (docs/LISTS.md, "Length").
pub(crate) fn normalize_command_local_part(input: &str) -> Result<String, AddressError> {
    normalize_local_part_up_to(input, MAX_COMMAND_LOCAL_LEN)
}

fn normalize_local_part_up_to(input: &str, max: usize) -> Result<String, AddressError> {
    if input.is_empty() {
        return Err(AddressError::EmptyLocal);
    }
    if input.len() > max {
        return Err(AddressError::LocalTooLong(input.to_owned()));
    }
    if let Some(ch) = input.chars().find(|&c| !is_local_char(c)) {
        return Err(AddressError::LocalBadChar {
            local: input.to_owned(),
            ch,
        });
    }
    if input.starts_with('.') || input.ends_with('.') || input.contains("..") {
        return Err(AddressError::LocalDots(input.to_owned()));
    }
    Ok(input.to_ascii_lowercase())
}

/// RFC 5322 `atext` plus `.`, without `/`. Everything else (controls, NUL, whitespace, `@`,
/// quotes, brackets, non-ASCII) is refused.
fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || "!#$%&'*+-=?^_`{|}~".contains(c)
}

/// Normalises a domain to what the store keys on: trimmed, one trailing root dot dropped,
/// IDNA-mapped (UTS #46, so `Bücher.Example` becomes `xn--bcher-kva.example`), lower-case
/// ASCII, RFC 1035/1123 labels (letters, digits, inner hyphens, 1..=63), at most 253 octets.
/// IP literals (`[192.0.2.1]`, bare addresses) are refused for now.
pub fn normalize_domain(input: &str) -> Result<String, AddressError> {
    let trimmed = input.trim();
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if name.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if name.starts_with('[') || name.parse::<IpAddr>().is_ok() {
        return Err(AddressError::IpLiteral(trimmed.to_owned()));
    }
    // Check the shape first on the raw ASCII input so the admin gets a specific message
    // ("empty label") rather than IDNA's generic failure.
    if name.split('.').any(str::is_empty) {
        return Err(AddressError::EmptyLabel(trimmed.to_owned()));
    }
    let ascii = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii_strict(name).map_err(|_| AddressError::Idna(trimmed.to_owned()))?
    };
    if ascii.len() > MAX_DOMAIN_LEN {
        return Err(AddressError::DomainTooLong(trimmed.to_owned()));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(AddressError::EmptyLabel(trimmed.to_owned()));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(AddressError::LabelTooLong {
                domain: trimmed.to_owned(),
            });
        }
        let ldh = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ldh || label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::BadLabel {
                domain: trimmed.to_owned(),
                label: label.to_owned(),
            });
        }
    }
    // An ASCII name may still carry A-labels ("xn--..."); run it through IDNA too so a bogus
    // Punycode label is refused instead of stored.
    if ascii.split('.').any(|l| l.starts_with("xn--")) {
        let checked = idna::domain_to_ascii_strict(&ascii)
            .map_err(|_| AddressError::Idna(trimmed.to_owned()))?;
        if checked != ascii {
            return Err(AddressError::Idna(trimmed.to_owned()));
        }
    }
    // A name made only of digits and dots would be read as an IPv4 address by some software.
    if ascii.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(AddressError::IpLiteral(trimmed.to_owned()));
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idna_and_case() {
        assert_eq!(
            normalize_domain(" Bücher.Example ").as_deref(),
            Ok("xn--bcher-kva.example")
        );
        assert_eq!(
            normalize_domain("Example.COM.").as_deref(),
            Ok("example.com")
        );
        assert_eq!(
            normalize_domain("xn--bcher-kva.example").as_deref(),
            Ok("xn--bcher-kva.example")
        );
    }

    #[test]
    fn bad_domains() {
        for bad in [
            "",
            ".",
            "a..b",
            ".a",
            "-a.b",
            "a-.b",
            "a_b.c",
            "[1.2.3.4]",
            "1.2.3.4",
            "::1",
            "a b.c",
            "a/b.c",
            "xn--zz--.example",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_domain(&format!("{}.com", "a".repeat(64))).is_err());
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(long.len() > 253);
        assert!(normalize_domain(&long).is_err());
    }

    #[test]
    fn local_parts() {
        assert_eq!(
            normalize_local_part("John.Doe+x").as_deref(),
            Ok("john.doe+x")
        );
        for bad in [
            "", ".a", "a.", "a..b", "a/b", "../x", "a\0b", "a b", "a@b", "a\tb", "é", "\"a\"",
        ] {
            assert!(normalize_local_part(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_local_part(&"a".repeat(64)).is_ok());
        assert!(normalize_local_part(&"a".repeat(65)).is_err());
    }

    #[test]
    fn parse_and_display() {
        let a = Address::parse("Alice@Bücher.Example").expect("valid");
        assert_eq!(a.to_string(), "alice@xn--bcher-kva.example");
        assert_eq!(Address::parse(""), Err(AddressError::Empty));
        assert!(matches!(
            Address::parse("nobody"),
            Err(AddressError::MissingAt(_))
        ));
        assert!(matches!(
            Address::parse("a@b@c.d"),
            Err(AddressError::LocalBadChar { ch: '@', .. })
        ));
    }
}
