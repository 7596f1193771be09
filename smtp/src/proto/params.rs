//! ESMTP parameters of MAIL FROM and RCPT TO (RFC 5321 4.1.2 `esmtp-param`):
//! SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), RET / ENVID / NOTIFY /
//! ORCPT (RFC 3461, kept for the queue, not acted on here) and AUTH (RFC 4954).
//!
//! SECURITY: every value is checked against its grammar and length before it is kept; xtext
//! is decoded (`+XX`) and must give UTF-8. A keyword we do not know is refused with its own
//! error (555 5.5.4) rather than ignored, so a client never believes an extension is honoured.

use std::fmt;

/// RFC 3461 4.4: ENVID is at most 100 characters.
const MAX_ENVID: usize = 100;
/// RFC 3461 4.2 / RFC 4954 5: ORCPT and AUTH values are at most 500 characters.
const MAX_ADDR_PARAM: usize = 500;

/// BODY= (RFC 6152, RFC 3030).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    SevenBit,
    EightBitMime,
    /// Only over BDAT, and only when the server offers BINARYMIME.
    BinaryMime,
}

/// RET= (RFC 3461 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

/// NOTIFY= (RFC 3461 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    Never,
    On {
        success: bool,
        failure: bool,
        delay: bool,
    },
}

/// ORCPT= (RFC 3461 4.2): the address type and the decoded original recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orcpt {
    /// As sent, e.g. `rfc822` or `utf-8`.
    pub addr_type: String,
    pub addr: String,
}

/// AUTH= on MAIL FROM (RFC 4954 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailAuth {
    /// `AUTH=<>`: the submitter is not known or not trusted.
    Unknown,
    Identity(String),
}

/// The parameters of one MAIL FROM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: Option<BodyType>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    pub envid: Option<String>,
    pub auth: Option<MailAuth>,
}

impl MailParams {
    pub fn is_empty(&self) -> bool {
        *self == MailParams::default()
    }
}

/// The parameters of one RCPT TO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    pub orcpt: Option<Orcpt>,
}

/// Why a parameter list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// A keyword this server does not implement for this command (555 5.5.4).
    Unknown(String),
    /// A known keyword with a value that does not follow its grammar (501 5.5.4).
    Invalid(&'static str),
    /// The same keyword twice (501 5.5.4).
    Duplicate(String),
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Unknown(k) => write!(f, "parameter {k} not recognized"),
            ParamError::Invalid(k) => write!(f, "invalid {k} parameter"),
            ParamError::Duplicate(k) => write!(f, "duplicate {k} parameter"),
        }
    }
}

/// Splits ` KEY=value KEY2` into (keyword upper-cased, value) pairs, checking the grammar.
fn split(s: &str) -> Result<Vec<(String, Option<&str>)>, ParamError> {
    let mut out: Vec<(String, Option<&str>)> = Vec::new();
    for token in s.split(' ').filter(|t| !t.is_empty()) {
        let (key, value) = match token.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (token, None),
        };
        let key_ok = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !key_ok {
            return Err(ParamError::Invalid("parameter keyword"));
        }
        if let Some(v) = value {
            // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 under RFC 6531.
            let ok = !v.is_empty()
                && v.chars().all(|c| {
                    c != '=' && (c.is_ascii_graphic() || (!c.is_ascii() && !c.is_control()))
                });
            if !ok {
                return Err(ParamError::Invalid("parameter value"));
            }
        }
        let key = key.to_ascii_uppercase();
        if out.iter().any(|(k, _)| *k == key) {
            return Err(ParamError::Duplicate(key));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Parses the text after the reverse-path of MAIL FROM.
pub fn parse_mail_params(s: &str) -> Result<MailParams, ParamError> {
    let mut p = MailParams::default();
    for (key, value) in split(s)? {
        match (key.as_str(), value) {
            ("SIZE", Some(v)) => {
                let ok = (1..=20).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit());
                p.size = Some(
                    v.parse()
                        .ok()
                        .filter(|_| ok)
                        .ok_or(ParamError::Invalid("SIZE"))?,
                );
            }
            ("BODY", Some(v)) => {
                p.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => BodyType::SevenBit,
                    "8BITMIME" => BodyType::EightBitMime,
                    "BINARYMIME" => BodyType::BinaryMime,
                    _ => return Err(ParamError::Invalid("BODY")),
                })
            }
            ("SMTPUTF8", None) => p.smtputf8 = true,
            ("RET", Some(v)) => {
                p.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(ParamError::Invalid("RET")),
                })
            }
            ("ENVID", Some(v)) if v.len() <= MAX_ENVID => {
                p.envid = Some(xtext_decode(v).ok_or(ParamError::Invalid("ENVID"))?)
            }
            ("AUTH", Some(v)) if v.len() <= MAX_ADDR_PARAM => {
                p.auth = Some(if v == "<>" {
                    MailAuth::Unknown
                } else {
                    MailAuth::Identity(xtext_decode(v).ok_or(ParamError::Invalid("AUTH"))?)
                })
            }
            ("SIZE" | "BODY" | "SMTPUTF8" | "RET" | "ENVID" | "AUTH", _) => {
                return Err(ParamError::Invalid(static_name(&key)));
            }
            _ => return Err(ParamError::Unknown(key)),
        }
    }
    Ok(p)
}

/// Parses the text after the forward-path of RCPT TO.
pub fn parse_rcpt_params(s: &str) -> Result<RcptParams, ParamError> {
    let mut p = RcptParams::default();
    for (key, value) in split(s)? {
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) => p.notify = Some(parse_notify(v)?),
            ("ORCPT", Some(v)) if v.len() <= MAX_ADDR_PARAM => p.orcpt = Some(parse_orcpt(v)?),
            ("NOTIFY" | "ORCPT", _) => return Err(ParamError::Invalid(static_name(&key))),
            _ => return Err(ParamError::Unknown(key)),
        }
    }
    Ok(p)
}

fn static_name(key: &str) -> &'static str {
    match key {
        "SIZE" => "SIZE",
        "BODY" => "BODY",
        "SMTPUTF8" => "SMTPUTF8",
        "RET" => "RET",
        "ENVID" => "ENVID",
        "AUTH" => "AUTH",
        "NOTIFY" => "NOTIFY",
        "ORCPT" => "ORCPT",
        _ => "parameter",
    }
}

fn parse_notify(v: &str) -> Result<Notify, ParamError> {
    if v.eq_ignore_ascii_case("NEVER") {
        return Ok(Notify::Never);
    }
    let (mut success, mut failure, mut delay) = (false, false, false);
    for word in v.split(',') {
        match word.to_ascii_uppercase().as_str() {
            "SUCCESS" => success = true,
            "FAILURE" => failure = true,
            "DELAY" => delay = true,
            _ => return Err(ParamError::Invalid("NOTIFY")),
        }
    }
    Ok(Notify::On {
        success,
        failure,
        delay,
    })
}

fn parse_orcpt(v: &str) -> Result<Orcpt, ParamError> {
    let invalid = ParamError::Invalid("ORCPT");
    let (addr_type, raw) = v.split_once(';').ok_or(invalid.clone())?;
    let type_ok = !addr_type.is_empty()
        && addr_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !type_ok || raw.is_empty() {
        return Err(invalid);
    }
    let decoded = xtext_decode(raw).ok_or(invalid.clone())?;
    let addr = if addr_type.eq_ignore_ascii_case("utf-8") {
        unitext_decode(&decoded).ok_or(invalid)?
    } else {
        decoded
    };
    Ok(Orcpt {
        addr_type: addr_type.to_owned(),
        addr,
    })
}

/// Decodes RFC 3461 xtext: `+XX` is the octet XX in hexadecimal; `+` and `=` never appear raw.
/// None if malformed, if the result is not UTF-8 or has control characters. Lower-case hex
/// digits are tolerated.
pub fn xtext_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = s.get(i + 1..i + 3)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'=' => return None,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Decoded values land in envelope files and DSN text: no control characters.
    if out.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return None;
    }
    String::from_utf8(out).ok()
}

/// Decodes the `\x{HEX}` escapes of RFC 6533 utf-8-addr-xtext / unitext.
fn unitext_decode(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\x{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let end = after.find('}')?;
        let hex = &after[..end];
        if hex.is_empty() || hex.len() > 6 {
            return None;
        }
        let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
        if c.is_control() {
            return None;
        }
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_mail_params() {
        let p = parse_mail_params(
            " SIZE=1000 body=8bitmime SMTPUTF8 RET=HDRS ENVID=QQ+2Bx AUTH=bob+40example.test",
        )
        .expect("parses");
        assert_eq!(p.size, Some(1000));
        assert_eq!(p.body, Some(BodyType::EightBitMime));
        assert!(p.smtputf8);
        assert_eq!(p.ret, Some(Ret::Hdrs));
        assert_eq!(p.envid.as_deref(), Some("QQ+x"));
        assert_eq!(p.auth, Some(MailAuth::Identity("bob@example.test".into())));
        assert_eq!(
            parse_mail_params(" AUTH=<>").expect("auth").auth,
            Some(MailAuth::Unknown)
        );
        assert!(parse_mail_params("").expect("empty").is_empty());
        assert_eq!(
            parse_mail_params(" BODY=BINARYMIME").expect("bin").body,
            Some(BodyType::BinaryMime)
        );
        assert_eq!(
            parse_mail_params(" BODY=7BIT  RET=full")
                .expect("two spaces")
                .ret,
            Some(Ret::Full)
        );
    }

    #[test]
    fn bad_mail_params() {
        use ParamError::*;
        assert_eq!(parse_mail_params(" SIZE=abc"), Err(Invalid("SIZE")));
        assert_eq!(parse_mail_params(" SIZE"), Err(Invalid("SIZE")));
        assert_eq!(
            parse_mail_params(" SIZE=999999999999999999999"),
            Err(Invalid("SIZE"))
        );
        assert_eq!(parse_mail_params(" BODY=9BIT"), Err(Invalid("BODY")));
        assert_eq!(parse_mail_params(" SMTPUTF8=yes"), Err(Invalid("SMTPUTF8")));
        assert_eq!(parse_mail_params(" RET=ALL"), Err(Invalid("RET")));
        assert_eq!(parse_mail_params(" ENVID=a+2"), Err(Invalid("ENVID")));
        assert_eq!(parse_mail_params(" ENVID=+FF"), Err(Invalid("ENVID")));
        let long = format!(" ENVID={}", "a".repeat(101));
        assert_eq!(parse_mail_params(&long), Err(Invalid("ENVID")));
        assert_eq!(
            parse_mail_params(" SIZE=1 size=2"),
            Err(Duplicate("SIZE".into()))
        );
        assert_eq!(parse_mail_params(" X-FOO=1"), Err(Unknown("X-FOO".into())));
        assert_eq!(
            parse_mail_params(" NOTIFY=NEVER"),
            Err(Unknown("NOTIFY".into()))
        );
        assert_eq!(parse_mail_params(" -X"), Err(Invalid("parameter keyword")));
        assert_eq!(parse_mail_params(" A=b=c"), Err(Invalid("parameter value")));
        assert_eq!(
            parse_mail_params(" A=\u{1}"),
            Err(Invalid("parameter value"))
        );
    }

    #[test]
    fn rcpt_params() {
        let p = parse_rcpt_params(" NOTIFY=SUCCESS,delay ORCPT=rfc822;bob+40example.test")
            .expect("parses");
        assert_eq!(
            p.notify,
            Some(Notify::On {
                success: true,
                failure: false,
                delay: true
            })
        );
        assert_eq!(
            p.orcpt,
            Some(Orcpt {
                addr_type: "rfc822".into(),
                addr: "bob@example.test".into()
            })
        );
        assert_eq!(
            parse_rcpt_params(" NOTIFY=NEVER").expect("never").notify,
            Some(Notify::Never)
        );
        let p = parse_rcpt_params(" ORCPT=utf-8;caf\\x{E9}@example.test").expect("utf8");
        assert_eq!(p.orcpt.map(|o| o.addr), Some("café@example.test".into()));
        assert!(parse_rcpt_params(" NOTIFY=NEVER,SUCCESS").is_err());
        assert!(parse_rcpt_params(" ORCPT=bob@x").is_err());
        assert!(parse_rcpt_params(" ORCPT=;x").is_err());
        assert_eq!(
            parse_rcpt_params(" SIZE=1"),
            Err(ParamError::Unknown("SIZE".into()))
        );
    }

    #[test]
    fn xtext() {
        assert_eq!(xtext_decode("abc"), Some("abc".into()));
        assert_eq!(xtext_decode("a+2B+3Db"), Some("a+=b".into()));
        assert_eq!(xtext_decode("+2b"), Some("+".into()));
        assert_eq!(xtext_decode("+"), None);
        assert_eq!(xtext_decode("+G0"), None);
        assert_eq!(xtext_decode("a=b"), None);
        assert_eq!(xtext_decode("+C3+A9"), Some("é".into()));
        assert_eq!(xtext_decode("+C3"), None);
        assert_eq!(xtext_decode("a+00"), None);
        assert_eq!(xtext_decode("a+0D+0A"), None);
    }
}
