//! One SMTP command line (without its CRLF) parsed into a typed [`Command`]
//! (RFC 5321 4.1.1, RFC 3030 BDAT, RFC 3207 STARTTLS, RFC 4954 AUTH).
//!
//! SECURITY:
//! - The line must be UTF-8 and hold no control character (NUL, CR, LF, DEL, ...): a command
//!   is refused as a whole rather than cleaned, so what we act on is exactly what was sent.
//! - Verbs and keywords are matched case-insensitively; arguments are parsed by their grammar
//!   (paths in `path.rs`, parameters in `params.rs`); trailing spaces are tolerated, nothing else.
//! - Every error maps to one reply ([`ParseError::reply`]); the session counts it.

use super::params::{self, MailParams, ParamError, RcptParams};
use super::path::{self, Domain, ForwardPath, PathError, ReversePath, strip_prefix_ignore_case};
use super::reply::Reply;

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(Domain),
    Ehlo(Domain),
    Mail {
        from: ReversePath,
        params: MailParams,
    },
    Rcpt {
        to: ForwardPath,
        params: RcptParams,
    },
    Data,
    /// `BDAT size [LAST]` (RFC 3030); `size` octets follow the CRLF.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy(String),
    Help,
    StartTls,
    /// `AUTH mechanism [initial-response]`; the mechanism as sent, the response undecoded.
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
}

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Unknown verb: 500 5.5.2.
    Unrecognized,
    /// A known SMTP verb we do not implement (EXPN, ETRN, TURN, ...): 502 5.5.1.
    NotImplemented,
    /// An HTTP request or similar sent to the SMTP port: the session closes (421).
    ForeignProtocol,
    /// NUL or another control character in the line: 500 5.5.2.
    ControlCharacter,
    /// Not UTF-8: 500 5.5.2.
    NotUtf8,
    /// Wrong arguments; the text says what the syntax is: 501 5.5.4.
    Syntax(&'static str),
    /// Bad MAIL FROM path: 501 5.1.7 (RFC 5321 4.5.3.1.10: "501 Path too long").
    BadSender(PathError),
    /// Bad RCPT TO path: 501 5.1.3.
    BadRecipient(PathError),
    /// Parameter problem: 555 5.5.4 for an unknown keyword, 501 5.5.4 otherwise.
    Param(ParamError),
    /// `BDAT size` followed by something other than `LAST`: 501 5.5.4, answered after the
    /// session has skipped the `size` octets of the chunk.
    BadChunkSyntax(u64),
    /// `BDAT` whose size cannot be read: we cannot tell where the chunk ends, so the
    /// session must close the connection (421) rather than read the chunk as commands.
    BadChunkSize,
}

impl ParseError {
    pub fn reply(&self) -> Reply {
        match self {
            ParseError::Unrecognized => Reply::unrecognized(),
            ParseError::NotImplemented => Reply::not_implemented(),
            ParseError::ForeignProtocol => Reply::new(
                421,
                Some((4, 7, 0)),
                "This is an SMTP server, closing connection",
            ),
            ParseError::ControlCharacter => Reply::new(
                500,
                Some((5, 5, 2)),
                "Control characters not allowed in commands",
            ),
            ParseError::NotUtf8 => Reply::new(500, Some((5, 5, 2)), "Command is not valid UTF-8"),
            ParseError::Syntax(usage) => Reply::syntax(&format!("Syntax: {usage}")),
            ParseError::BadSender(e) => Reply::new(
                501,
                Some((5, 1, 7)),
                &format!("Bad sender address: {}", e.describe()),
            ),
            ParseError::BadRecipient(e) => Reply::new(
                501,
                Some((5, 1, 3)),
                &format!("Bad recipient address: {}", e.describe()),
            ),
            ParseError::Param(e @ ParamError::Unknown(_)) => {
                Reply::new(555, Some((5, 5, 4)), &e.to_string())
            }
            ParseError::Param(e) => Reply::syntax(&e.to_string()),
            ParseError::BadChunkSyntax(_) => Reply::syntax("Syntax: BDAT size [LAST]"),
            ParseError::BadChunkSize => Reply::new(
                421,
                Some((4, 7, 0)),
                "Unreadable BDAT chunk size, closing connection",
            ),
        }
    }
}

/// Parses one command line (CRLF already removed).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(ParseError::ControlCharacter);
    }
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    let line = line.trim_end_matches(' ');
    let (verb, args) = match line.split_once(' ') {
        Some((v, a)) => (v, Some(a)),
        None => (line, None),
    };
    let verb = verb.to_ascii_uppercase();
    let no_args = |cmd: Command, usage: &'static str| match args {
        None => Ok(cmd),
        Some(_) => Err(ParseError::Syntax(usage)),
    };
    match verb.as_str() {
        "HELO" => hello(args, "HELO hostname").map(Command::Helo),
        "EHLO" => hello(args, "EHLO hostname").map(Command::Ehlo),
        "MAIL" => mail(args.unwrap_or("")),
        "RCPT" => rcpt(args.unwrap_or("")),
        "DATA" => no_args(Command::Data, "DATA"),
        "BDAT" => bdat(args),
        "RSET" => no_args(Command::Rset, "RSET"),
        "QUIT" => no_args(Command::Quit, "QUIT"),
        "STARTTLS" => no_args(Command::StartTls, "STARTTLS"),
        // NOOP and HELP may carry a string, which is ignored (RFC 5321 4.1.1.9, 4.1.1.8).
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => match args.map(str::trim) {
            Some(a) if !a.is_empty() => Ok(Command::Vrfy(a.to_owned())),
            _ => Err(ParseError::Syntax("VRFY address")),
        },
        "AUTH" => auth(args),
        "EXPN" | "ETRN" | "TURN" | "ATRN" | "BURL" | "SEND" | "SOML" | "SAML" | "VERB" => {
            Err(ParseError::NotImplemented)
        }
        "GET" | "POST" | "HEAD" | "PUT" | "CONNECT" | "OPTIONS" | "USER" => {
            Err(ParseError::ForeignProtocol)
        }
        v if v.ends_with(':') => Err(ParseError::ForeignProtocol), // "Host:", "User-Agent:"
        _ => Err(ParseError::Unrecognized),
    }
}

fn hello(args: Option<&str>, usage: &'static str) -> Result<Domain, ParseError> {
    let arg = args.map(str::trim_start).unwrap_or("");
    if arg.is_empty() || arg.contains(' ') {
        return Err(ParseError::Syntax(usage));
    }
    Domain::parse_helo(arg).map_err(|_| ParseError::Syntax(usage))
}

/// `FROM:<path> params`, tolerating spaces after the colon.
fn mail(args: &str) -> Result<Command, ParseError> {
    const USAGE: &str = "MAIL FROM:<address> [parameters]";
    let rest = strip_prefix_ignore_case(args, "FROM:").ok_or(ParseError::Syntax(USAGE))?;
    let rest = rest.trim_start_matches(' ');
    let (from, rest) = path::parse_reverse_path(rest).map_err(ParseError::BadSender)?;
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(ParseError::BadSender(PathError::Syntax));
    }
    let params = params::parse_mail_params(rest).map_err(ParseError::Param)?;
    Ok(Command::Mail { from, params })
}

fn rcpt(args: &str) -> Result<Command, ParseError> {
    const USAGE: &str = "RCPT TO:<address> [parameters]";
    let rest = strip_prefix_ignore_case(args, "TO:").ok_or(ParseError::Syntax(USAGE))?;
    let rest = rest.trim_start_matches(' ');
    let (to, rest) = path::parse_forward_path(rest).map_err(ParseError::BadRecipient)?;
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(ParseError::BadRecipient(PathError::Syntax));
    }
    let params = params::parse_rcpt_params(rest).map_err(ParseError::Param)?;
    Ok(Command::Rcpt { to, params })
}

fn bdat(args: Option<&str>) -> Result<Command, ParseError> {
    let mut words = args.unwrap_or("").split(' ');
    let size = words.next().unwrap_or("");
    if size.is_empty() || size.len() > 20 || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadChunkSize);
    }
    let size: u64 = size.parse().map_err(|_| ParseError::BadChunkSize)?;
    match (words.next(), words.next()) {
        (None, _) => Ok(Command::Bdat { size, last: false }),
        (Some(w), None) if w.eq_ignore_ascii_case("LAST") => Ok(Command::Bdat { size, last: true }),
        // The size is known, so the session can still skip the chunk and stay in sync.
        _ => Err(ParseError::BadChunkSyntax(size)),
    }
}

fn auth(args: Option<&str>) -> Result<Command, ParseError> {
    const USAGE: &str = "AUTH mechanism [initial-response]";
    let mut words = args.unwrap_or("").split(' ');
    let mechanism = words.next().unwrap_or("");
    let ok = (1..=20).contains(&mechanism.len())
        && mechanism
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(ParseError::Syntax(USAGE));
    }
    let initial = words.next().map(str::to_owned);
    if words.next().is_some() || initial.as_deref() == Some("") {
        return Err(ParseError::Syntax(USAGE));
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_owned(),
        initial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::params::{BodyType, Notify};
    use crate::proto::path::Path;

    fn p(s: &str) -> Result<Command, ParseError> {
        parse(s.as_bytes())
    }

    fn mailbox(cmd: &Command) -> Path {
        match cmd {
            Command::Mail {
                from: ReversePath::Path(p),
                ..
            }
            | Command::Rcpt {
                to: ForwardPath::Path(p),
                ..
            } => p.clone(),
            other => panic!("no mailbox in {other:?}"),
        }
    }

    #[test]
    fn simple_verbs_any_case() {
        assert_eq!(p("DATA"), Ok(Command::Data));
        assert_eq!(p("data"), Ok(Command::Data));
        assert_eq!(p("RsEt"), Ok(Command::Rset));
        assert_eq!(p("QUIT "), Ok(Command::Quit));
        assert_eq!(p("NOOP"), Ok(Command::Noop));
        assert_eq!(p("NOOP anything"), Ok(Command::Noop));
        assert_eq!(p("HELP"), Ok(Command::Help));
        assert_eq!(p("HELP MAIL"), Ok(Command::Help));
        assert_eq!(p("STARTTLS"), Ok(Command::StartTls));
        assert_eq!(p("DATA x"), Err(ParseError::Syntax("DATA")));
        assert_eq!(p("QUIT now"), Err(ParseError::Syntax("QUIT")));
        assert_eq!(p("STARTTLS x"), Err(ParseError::Syntax("STARTTLS")));
        assert_eq!(p("VRFY bob"), Ok(Command::Vrfy("bob".into())));
        assert_eq!(p("VRFY"), Err(ParseError::Syntax("VRFY address")));
    }

    #[test]
    fn unknown_and_unimplemented() {
        assert_eq!(p("FOO"), Err(ParseError::Unrecognized));
        assert_eq!(p(""), Err(ParseError::Unrecognized));
        assert_eq!(p("EXPN list"), Err(ParseError::NotImplemented));
        assert_eq!(p("GET / HTTP/1.1"), Err(ParseError::ForeignProtocol));
        assert_eq!(p("Host: x"), Err(ParseError::ForeignProtocol));
    }

    #[test]
    fn hello_variants() {
        assert_eq!(
            p("EHLO client.example"),
            Ok(Command::Ehlo(Domain::Name("client.example".into())))
        );
        assert_eq!(
            p("helo [192.0.2.1]"),
            Ok(Command::Helo(Domain::Literal(
                "192.0.2.1".parse().expect("ip")
            )))
        );
        assert_eq!(p("EHLO"), Err(ParseError::Syntax("EHLO hostname")));
        assert_eq!(p("EHLO a b"), Err(ParseError::Syntax("EHLO hostname")));
        assert_eq!(p("EHLO -bad"), Err(ParseError::Syntax("EHLO hostname")));
    }

    #[test]
    fn mail_from_forms() {
        let c = p("MAIL FROM:<a@b.example>").expect("mail");
        assert_eq!(mailbox(&c).to_string(), "a@b.example");
        let c = p("mail from: <a@b.example>").expect("space after colon");
        assert_eq!(mailbox(&c).to_string(), "a@b.example");
        assert_eq!(
            p("MAIL FROM:<>"),
            Ok(Command::Mail {
                from: ReversePath::Null,
                params: MailParams::default()
            })
        );
        let c = p("MAIL FROM:<@relay.example:a@b.example> SIZE=10 BODY=8BITMIME").expect("route");
        assert_eq!(mailbox(&c).to_string(), "a@b.example");
        let Command::Mail { params, .. } = c else {
            panic!("not MAIL")
        };
        assert_eq!(params.size, Some(10));
        assert_eq!(params.body, Some(BodyType::EightBitMime));
        assert_eq!(
            p("MAIL FROM:a@b"),
            Err(ParseError::BadSender(PathError::Syntax))
        );
        assert_eq!(
            p("MAIL TO:<a@b>"),
            Err(ParseError::Syntax("MAIL FROM:<address> [parameters]"))
        );
        assert_eq!(p("MAIL"), p("MAIL FROM"));
        assert_eq!(
            p("MAIL FROM:<a@b>SIZE=1"),
            Err(ParseError::BadSender(PathError::Syntax))
        );
        assert_eq!(
            p("MAIL FROM:<a@b> FOO=1"),
            Err(ParseError::Param(ParamError::Unknown("FOO".into())))
        );
        assert_eq!(
            p("MAIL FROM:<a@b> FOO=1").map_err(|e| e.reply().code()),
            Err(555)
        );
    }

    #[test]
    fn rcpt_to_forms() {
        let c = p("RCPT TO:<x@example.test> NOTIFY=FAILURE ORCPT=rfc822;x+40example.test")
            .expect("rcpt");
        let Command::Rcpt { params, .. } = &c else {
            panic!("not RCPT")
        };
        assert_eq!(
            params.notify,
            Some(Notify::On {
                success: false,
                failure: true,
                delay: false
            })
        );
        assert_eq!(
            p("RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt {
                to: ForwardPath::Postmaster,
                params: RcptParams::default()
            })
        );
        assert_eq!(
            p("RCPT TO:<>"),
            Err(ParseError::BadRecipient(PathError::NullNotAllowed))
        );
        assert_eq!(
            p("RCPT TO:<../../x@example.test>"),
            Err(ParseError::BadRecipient(PathError::Syntax))
        );
        let e = p("RCPT TO:<../../x@example.test>").expect_err("bad");
        assert_eq!(
            (e.reply().code(), e.reply().enhanced()),
            (501, Some((5, 1, 3)))
        );
    }

    #[test]
    fn control_characters_and_bad_utf8() {
        assert_eq!(p("NOOP\0"), Err(ParseError::ControlCharacter));
        assert_eq!(
            p("RCPT TO:<a\0b@example.test>"),
            Err(ParseError::ControlCharacter)
        );
        assert_eq!(p("NOOP \u{7f}"), Err(ParseError::ControlCharacter));
        assert_eq!(parse(b"NOOP \xff"), Err(ParseError::NotUtf8));
    }

    #[test]
    fn bdat_forms() {
        assert_eq!(
            p("BDAT 100"),
            Ok(Command::Bdat {
                size: 100,
                last: false
            })
        );
        assert_eq!(
            p("bdat 0 last"),
            Ok(Command::Bdat {
                size: 0,
                last: true
            })
        );
        assert_eq!(p("BDAT"), Err(ParseError::BadChunkSize));
        assert_eq!(p("BDAT x"), Err(ParseError::BadChunkSize));
        assert_eq!(p("BDAT -1"), Err(ParseError::BadChunkSize));
        assert_eq!(
            p("BDAT 99999999999999999999999"),
            Err(ParseError::BadChunkSize)
        );
        assert_eq!(p("BDAT 5 FIRST"), Err(ParseError::BadChunkSyntax(5)));
        assert_eq!(p("BDAT 5 LAST x"), Err(ParseError::BadChunkSyntax(5)));
    }

    #[test]
    fn auth_forms() {
        assert_eq!(
            p("AUTH PLAIN"),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: None
            })
        );
        assert_eq!(
            p("auth login dXNlcg=="),
            Ok(Command::Auth {
                mechanism: "login".into(),
                initial: Some("dXNlcg==".into())
            })
        );
        assert!(p("AUTH").is_err());
        assert!(p("AUTH PLAIN a b").is_err());
        assert!(p("AUTH PL@IN").is_err());
    }
}
