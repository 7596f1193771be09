//! Mailboxes and paths as RFC 5321 4.1.2 defines them (with RFC 6531's UTF-8 extension):
//! `<local@domain>`, the null path `<>`, `<Postmaster>`, and source routes `<@a,@b:u@d>`,
//! which are accepted and dropped (RFC 5321 4.1.1.3, appendix C).
//!
//! SECURITY:
//! - Lengths are checked as RFC 5321 4.5.3.1 sets them: domain 255, the whole path with its
//!   angle brackets 256; a local part may have 255 octets, not just RFC 5321's 64 (which it asks
//!   servers to exceed where they can): VERP senders of mailing lists and our own lists' bounce
//!   addresses (`list-return-N-user=host`) carry a whole address. The store decides which long
//!   local parts exist (only list command addresses, docs/LISTS.md "Length"). No control character, NUL or space outside a quoted
//!   local part is accepted, and no malformed UTF-8 (the input is `&str`).
//! - A local part is data, never a file name: `"../../x"@example.test` is a valid quoted local
//!   part and is returned as `../../x`. The address resolver (moat-vdomain) refuses `/` and leading
//!   dots; nothing may build a path from a local part.
//! - Non-ASCII is parsed here so the error can be precise; the session refuses it unless the
//!   transaction asked for SMTPUTF8 ([`Path::is_ascii`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RFC 5321 4.5.3.1.1 sets 64 as the least to accept; VERP addresses need more (see above).
pub const MAX_LOCAL_PART: usize = 255;
/// RFC 5321 4.5.3.1.2.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 4.5.3.1.3, counting the angle brackets.
pub const MAX_PATH: usize = 256;
const MAX_LABEL: usize = 63;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not `<...>`, or a character that the grammar does not allow.
    Syntax,
    /// Local part over 255 octets.
    LocalPartTooLong,
    /// Domain over 255 octets or a label over 63.
    DomainTooLong,
    /// Path over 256 octets.
    PathTooLong,
    /// `<>` where a recipient was expected.
    NullNotAllowed,
}

impl PathError {
    pub fn describe(self) -> &'static str {
        match self {
            PathError::Syntax => "address syntax error",
            PathError::LocalPartTooLong => "local part longer than 255 octets",
            PathError::DomainTooLong => "domain too long",
            PathError::PathTooLong => "path longer than 256 octets",
            PathError::NullNotAllowed => "null path not allowed here",
        }
    }
}

/// The part before `@`, stored decoded: `"a b"` is stored as `a b`, `"x"` as `x`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalPart(String);

impl LocalPart {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if it can be written without quotes (an RFC 5321 Dot-string).
    pub fn is_dot_string(&self) -> bool {
        is_dot_string(&self.0)
    }
}

impl fmt::Display for LocalPart {
    /// The wire form: as is when it is a Dot-string, quoted (with `\` escapes) otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_dot_string() {
            return f.write_str(&self.0);
        }
        f.write_str("\"")?;
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    }
}

/// A domain name (as sent, case preserved) or an address literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Domain {
    Name(String),
    Literal(IpAddr),
}

impl Domain {
    /// Parses a domain or address literal as in a path.
    pub fn parse(s: &str) -> Result<Domain, PathError> {
        parse_domain(s, false)
    }

    /// Parses the argument of HELO/EHLO: the same grammar, but `_` is allowed inside labels
    /// because real clients send host names such as `my_host` and refusing them gains nothing.
    pub fn parse_helo(s: &str) -> Result<Domain, PathError> {
        parse_domain(s, true)
    }

    pub fn is_ascii(&self) -> bool {
        match self {
            Domain::Name(n) => n.is_ascii(),
            Domain::Literal(_) => true,
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(n) => f.write_str(n),
            Domain::Literal(IpAddr::V4(a)) => write!(f, "[{a}]"),
            Domain::Literal(IpAddr::V6(a)) => write!(f, "[IPv6:{a}]"),
        }
    }
}

/// A mailbox `local@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    local: LocalPart,
    domain: Domain,
}

impl Path {
    pub fn local(&self) -> &LocalPart {
        &self.local
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// False if SMTPUTF8 is needed to carry this address.
    pub fn is_ascii(&self) -> bool {
        self.local.0.is_ascii() && self.domain.is_ascii()
    }
}

impl fmt::Display for Path {
    /// `local@domain`, without angle brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// The argument of MAIL FROM.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`: bounces and other notifications.
    Null,
    Path(Path),
}

impl ReversePath {
    pub fn is_ascii(&self) -> bool {
        match self {
            ReversePath::Null => true,
            ReversePath::Path(p) => p.is_ascii(),
        }
    }
}

impl fmt::Display for ReversePath {
    /// With angle brackets: `<>` or `<a@b>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Path(p) => write!(f, "<{p}>"),
        }
    }
}

/// The argument of RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardPath {
    /// `<Postmaster>` without a domain (RFC 5321 4.5.1): the postmaster of this server.
    Postmaster,
    Path(Path),
}

impl ForwardPath {
    pub fn is_ascii(&self) -> bool {
        match self {
            ForwardPath::Postmaster => true,
            ForwardPath::Path(p) => p.is_ascii(),
        }
    }
}

impl fmt::Display for ForwardPath {
    /// With angle brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Path(p) => write!(f, "<{p}>"),
        }
    }
}

/// Parses a reverse-path at the start of `s`; returns it and the rest (the parameters).
pub fn parse_reverse_path(s: &str) -> Result<(ReversePath, &str), PathError> {
    if let Some(rest) = s.strip_prefix("<>") {
        return Ok((ReversePath::Null, rest));
    }
    let (parsed, rest) = parse_path(s)?;
    match parsed {
        Parsed::Path(p) => Ok((ReversePath::Path(p), rest)),
        // `<Postmaster>` as a sender has no domain: not a valid reverse-path.
        Parsed::Postmaster => Err(PathError::Syntax),
    }
}

/// Parses a forward-path at the start of `s`; returns it and the rest (the parameters).
pub fn parse_forward_path(s: &str) -> Result<(ForwardPath, &str), PathError> {
    if s.starts_with("<>") {
        return Err(PathError::NullNotAllowed);
    }
    let (parsed, rest) = parse_path(s)?;
    match parsed {
        Parsed::Path(p) => Ok((ForwardPath::Path(p), rest)),
        Parsed::Postmaster => Ok((ForwardPath::Postmaster, rest)),
    }
}

enum Parsed {
    Path(Path),
    Postmaster,
}

fn parse_path(s: &str) -> Result<(Parsed, &str), PathError> {
    let body = s.strip_prefix('<').ok_or(PathError::Syntax)?;
    // Source route `@a,@b:` — parsed so that a malformed one is an error, then dropped.
    let body = if body.starts_with('@') {
        let colon = body.find(':').ok_or(PathError::Syntax)?;
        for hop in body[..colon].split(',') {
            let domain = hop.strip_prefix('@').ok_or(PathError::Syntax)?;
            parse_domain(domain, false)?;
        }
        &body[colon + 1..]
    } else {
        body
    };
    let (local, after_local) = parse_local_part(body)?;
    let (parsed, after) = if let Some(after) = after_local.strip_prefix('>') {
        if local.quoted || !local.value.eq_ignore_ascii_case("postmaster") {
            return Err(PathError::Syntax);
        }
        (Parsed::Postmaster, after)
    } else {
        let domain_and_rest = after_local.strip_prefix('@').ok_or(PathError::Syntax)?;
        let end = domain_end(domain_and_rest)?;
        let domain = parse_domain(&domain_and_rest[..end], false)?;
        if local.wire_len > MAX_LOCAL_PART {
            return Err(PathError::LocalPartTooLong);
        }
        let path = Path {
            local: LocalPart(local.value),
            domain,
        };
        (Parsed::Path(path), &domain_and_rest[end + 1..])
    };
    let path_len = s.len() - after.len();
    if path_len > MAX_PATH {
        return Err(PathError::PathTooLong);
    }
    Ok((parsed, after))
}

/// Index of the `>` that ends the domain (a literal may not contain `>`, a name neither).
fn domain_end(s: &str) -> Result<usize, PathError> {
    s.find('>').ok_or(PathError::Syntax)
}

struct Local {
    value: String,
    quoted: bool,
    wire_len: usize,
}

fn parse_local_part(s: &str) -> Result<(Local, &str), PathError> {
    if let Some(inner) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    let rest = &inner[i + 1..];
                    let wire_len = s.len() - rest.len();
                    let local = Local {
                        value,
                        quoted: true,
                        wire_len,
                    };
                    return Ok((local, rest));
                }
                '\\' => match chars.next() {
                    Some((_, q)) if (' '..='~').contains(&q) => value.push(q),
                    _ => return Err(PathError::Syntax),
                },
                c if is_qtext(c) => value.push(c),
                _ => return Err(PathError::Syntax),
            }
            if value.len() > MAX_LOCAL_PART {
                return Err(PathError::LocalPartTooLong);
            }
        }
        return Err(PathError::Syntax);
    }
    let end = s.find(['@', '>']).unwrap_or(s.len());
    let value = &s[..end];
    if !is_dot_string(value) {
        return Err(PathError::Syntax);
    }
    let local = Local {
        value: value.to_owned(),
        quoted: false,
        wire_len: end,
    };
    Ok((local, &s[end..]))
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || is_utf8_non_ascii(c)
}

fn is_qtext(c: char) -> bool {
    // qtextSMTP: %d32-33 / %d35-91 / %d93-126, plus UTF8-non-ascii (RFC 6531).
    matches!(c, ' '..='!' | '#'..='[' | ']'..='~') || is_utf8_non_ascii(c)
}

fn is_utf8_non_ascii(c: char) -> bool {
    !c.is_ascii() && !c.is_control()
}

fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn parse_domain(s: &str, helo: bool) -> Result<Domain, PathError> {
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(PathError::Syntax)?;
        return parse_literal(inner).map(Domain::Literal);
    }
    if s.is_empty() {
        return Err(PathError::Syntax);
    }
    if s.len() > MAX_DOMAIN {
        return Err(PathError::DomainTooLong);
    }
    for label in s.split('.') {
        if label.len() > MAX_LABEL {
            return Err(PathError::DomainTooLong);
        }
        let ok_inner = |c: char| {
            c.is_ascii_alphanumeric() || c == '-' || is_utf8_non_ascii(c) || (helo && c == '_')
        };
        let ok_edge = |c: char| c != '-' && ok_inner(c);
        let (Some(first), Some(last)) = (label.chars().next(), label.chars().last()) else {
            return Err(PathError::Syntax);
        };
        if !ok_edge(first) || !ok_edge(last) || !label.chars().all(ok_inner) {
            return Err(PathError::Syntax);
        }
    }
    Ok(Domain::Name(s.to_owned()))
}

fn parse_literal(inner: &str) -> Result<IpAddr, PathError> {
    if let Some(v6) = strip_prefix_ignore_case(inner, "IPv6:") {
        return v6
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| PathError::Syntax);
    }
    // General-address-literals (`[tag:...]`) have no registered tag in use: refused.
    inner
        .parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .map_err(|_| PathError::Syntax)
}

pub(crate) fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(s: &str) -> Result<ForwardPath, PathError> {
        parse_forward_path(s).map(|(p, rest)| {
            assert_eq!(rest, "", "rest of {s}");
            p
        })
    }

    fn path(s: &str) -> Path {
        match fwd(s) {
            Ok(ForwardPath::Path(p)) => p,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn plain_mailbox() {
        let p = path("<user.name+tag@Example.TEST>");
        assert_eq!(p.local().as_str(), "user.name+tag");
        assert_eq!(p.domain(), &Domain::Name("Example.TEST".into()));
        assert_eq!(p.to_string(), "user.name+tag@Example.TEST");
    }

    #[test]
    fn rest_is_returned() {
        let (p, rest) = parse_reverse_path("<a@b> SIZE=10").expect("parses");
        assert_eq!(p.to_string(), "<a@b>");
        assert_eq!(rest, " SIZE=10");
    }

    #[test]
    fn null_and_postmaster() {
        assert_eq!(parse_reverse_path("<>").expect("null").0, ReversePath::Null);
        assert_eq!(fwd("<>"), Err(PathError::NullNotAllowed));
        assert_eq!(fwd("<Postmaster>"), Ok(ForwardPath::Postmaster));
        assert_eq!(fwd("<POSTMASTER>"), Ok(ForwardPath::Postmaster));
        assert_eq!(fwd("<bob>"), Err(PathError::Syntax));
        assert_eq!(parse_reverse_path("<postmaster>"), Err(PathError::Syntax));
    }

    #[test]
    fn source_route_is_dropped() {
        let p = path("<@a.example,@b.example:u@d.example>");
        assert_eq!(p.to_string(), "u@d.example");
        assert_eq!(fwd("<@a..b:u@d>"), Err(PathError::Syntax));
        assert_eq!(fwd("<@a,b:u@d>"), Err(PathError::Syntax));
    }

    #[test]
    fn quoted_local_parts() {
        let p = path("<\"john doe\"@example.test>");
        assert_eq!(p.local().as_str(), "john doe");
        assert_eq!(p.to_string(), "\"john doe\"@example.test");
        let p = path("<\"a\\\"b\\\\c\"@x>");
        assert_eq!(p.local().as_str(), "a\"b\\c");
        assert_eq!(p.to_string(), "\"a\\\"b\\\\c\"@x");
        // A quoted dot-string is the same mailbox as the unquoted one.
        assert_eq!(path("<\"john\"@x>"), path("<john@x>"));
        // Quotes hide `>` and `@` from the path parser.
        assert_eq!(path("<\"a>b@c\"@x>").local().as_str(), "a>b@c");
    }

    #[test]
    fn traversal_shaped_local_parts() {
        assert_eq!(fwd("<../../x@example.test>"), Err(PathError::Syntax));
        assert_eq!(fwd("<.x@example.test>"), Err(PathError::Syntax));
        assert_eq!(fwd("<x.@example.test>"), Err(PathError::Syntax));
        assert_eq!(fwd("<a..b@example.test>"), Err(PathError::Syntax));
        // Valid RFC 5321, and returned verbatim as data.
        assert_eq!(path("<a/b@example.test>").local().as_str(), "a/b");
        assert_eq!(
            path("<\"../../x\"@example.test>").local().as_str(),
            "../../x"
        );
    }

    #[test]
    fn refuses_controls_spaces_and_nul() {
        for bad in [
            "<a b@x>",
            "<a\0b@x>",
            "<\"a\0b\"@x>",
            "<\"a\tb\"@x>",
            "<a@x\0>",
            "<a@x y>",
            "<a@>",
            "<@x>",
            "<a@x",
            "a@x",
            "<a@-x>",
            "<a@x->",
            "<a@x..y>",
            "<a@x.>",
            "<a@my_host>",
            "<\"unterminated@x>",
            "<\"bad\\\u{1}\"@x>",
        ] {
            assert!(fwd(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn lengths() {
        // Local parts over RFC 5321's 64 octets are taken (VERP), up to 255.
        let l65 = "a".repeat(65);
        assert!(fwd(&format!("<{l65}@x>")).is_ok());
        let l250 = "a".repeat(250);
        assert!(fwd(&format!("<{l250}@x>")).is_ok());
        // 255 octets pass the local part's limit, not the path's (256 with the brackets).
        let l255 = "a".repeat(255);
        assert_eq!(fwd(&format!("<{l255}@x>")), Err(PathError::PathTooLong));
        let l256 = "a".repeat(256);
        assert_eq!(
            fwd(&format!("<{l256}@x>")),
            Err(PathError::LocalPartTooLong)
        );
        assert_eq!(
            fwd(&format!("<\"{l256}\"@x>")),
            Err(PathError::LocalPartTooLong)
        );
        let label = "b".repeat(63);
        assert!(fwd(&format!("<a@{label}>")).is_ok());
        assert_eq!(fwd(&format!("<a@{label}b>")), Err(PathError::DomainTooLong));
        // 4 labels of 63 + 3 dots = 255 octets: a valid domain, but the path is 259 octets.
        let d255 = [label.as_str(); 4].join(".");
        assert_eq!(d255.len(), 255);
        assert_eq!(Domain::parse(&d255), Ok(Domain::Name(d255.clone())));
        assert_eq!(fwd(&format!("<a@{d255}>")), Err(PathError::PathTooLong));
        let d256 = format!("{d255}x");
        assert_eq!(Domain::parse(&d256), Err(PathError::DomainTooLong));
        // Exactly 256 with brackets is fine.
        let d = format!("{}.{}.{}.{}", label, label, label, "c".repeat(60));
        let p = format!("<{}@{d}>", "a".repeat(256 - 3 - d.len()));
        assert_eq!(p.len(), 256);
        assert!(fwd(&p).is_ok());
        let p = format!("<{}@{d}>", "a".repeat(257 - 3 - d.len()));
        assert_eq!(fwd(&p), Err(PathError::PathTooLong));
    }

    #[test]
    fn address_literals() {
        let p = path("<u@[192.0.2.1]>");
        assert_eq!(
            p.domain(),
            &Domain::Literal("192.0.2.1".parse().expect("ip"))
        );
        assert_eq!(p.to_string(), "u@[192.0.2.1]");
        let p = path("<u@[IPv6:2001:db8::1]>");
        assert_eq!(p.to_string(), "u@[IPv6:2001:db8::1]");
        assert!(fwd("<u@[ipv6:::1]>").is_ok());
        assert!(fwd("<u@[192.0.2.256]>").is_err());
        assert!(fwd("<u@[x-tag:foo]>").is_err());
        assert!(fwd("<u@[2001:db8::1]>").is_err());
    }

    #[test]
    fn utf8_is_parsed_and_flagged() {
        let p = path("<пользователь@пример.испытание>");
        assert!(!p.is_ascii());
        assert!(path("<a@b.example>").is_ascii());
    }

    #[test]
    fn helo_domains() {
        assert_eq!(
            Domain::parse_helo("my_host.example"),
            Ok(Domain::Name("my_host.example".into()))
        );
        assert!(Domain::parse("my_host.example").is_err());
        assert!(Domain::parse_helo("[127.0.0.1]").is_ok());
        assert!(Domain::parse_helo("a b").is_err());
        assert!(Domain::parse_helo("").is_err());
    }
}
