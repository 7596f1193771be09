//! POP3 command lines (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH) parsed into
//! [`Command`]. A line arrives without its CRLF and already bounded in length (`lines.rs`).
//!
//! SECURITY: this is the first code that reads what the client typed. Keywords are matched
//! case-insensitively against a fixed list; message numbers are 1–10 ASCII digits that fit a
//! u32 (no signs, no spaces, no overflow); logins and passwords must be UTF-8 without NUL and
//! are never printed: [`Secret`] redacts itself in `Debug`.

use std::fmt;

/// A password (or SASL response) that prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(Secret),
    Quit,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    /// Message number and body lines.
    Top(u32, u64),
    Uidl(Option<u32>),
    Capa,
    Stls,
    /// `AUTH` alone lists mechanisms; `AUTH PLAIN [initial-response]`.
    Auth {
        mechanism: Option<String>,
        initial: Option<Secret>,
    },
    /// Refused: it needs passwords stored in plaintext (docs/ARCHITECTURE.md).
    Apop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    Unknown,
    /// The keyword is known but its arguments are wrong; the text says how.
    Syntax(&'static str),
}

impl ParseError {
    /// The `-ERR` line for it.
    pub fn reply(&self) -> &'static str {
        match self {
            ParseError::Empty => "-ERR empty command\r\n",
            ParseError::Unknown => "-ERR unknown command\r\n",
            ParseError::Syntax(s) => s,
        }
    }
}

/// A message number: 1–10 digits, fitting a u32, not zero.
fn number(arg: &str) -> Option<u32> {
    if arg.is_empty() || arg.len() > 10 || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    arg.parse().ok().filter(|n| *n > 0)
}

/// A text argument fit for moat-auth: UTF-8 (checked by the caller), no NUL or other controls.
fn clean(arg: &str) -> bool {
    !arg.is_empty() && !arg.chars().any(char::is_control)
}

pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("-ERR not UTF-8\r\n"))?;
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (line, None),
    };
    if keyword.is_empty() {
        return Err(ParseError::Empty);
    }
    let args: Vec<&str> = rest
        .map(|r| r.split(' ').filter(|a| !a.is_empty()).collect())
        .unwrap_or_default();
    let none = |c: Command| {
        if args.is_empty() {
            Ok(c)
        } else {
            Err(ParseError::Syntax(
                "-ERR this command takes no argument\r\n",
            ))
        }
    };
    let msg = |i: usize| {
        args.get(i)
            .and_then(|a| number(a))
            .ok_or(ParseError::Syntax("-ERR invalid message number\r\n"))
    };
    let optional_msg = || match args.len() {
        0 => Ok(None),
        1 => msg(0).map(Some),
        _ => Err(ParseError::Syntax("-ERR too many arguments\r\n")),
    };
    match keyword.to_ascii_uppercase().as_str() {
        "USER" => match args.as_slice() {
            [name] if clean(name) => Ok(Command::User((*name).to_string())),
            _ => Err(ParseError::Syntax("-ERR usage: USER name\r\n")),
        },
        // The password is the rest of the line: it may contain spaces (RFC 1939 section 7).
        "PASS" => match rest {
            Some(pw) if clean(pw) => Ok(Command::Pass(Secret(pw.to_string()))),
            _ => Err(ParseError::Syntax("-ERR usage: PASS password\r\n")),
        },
        "QUIT" => none(Command::Quit),
        "STAT" => none(Command::Stat),
        "NOOP" => none(Command::Noop),
        "RSET" => none(Command::Rset),
        "CAPA" => none(Command::Capa),
        "STLS" => none(Command::Stls),
        "LIST" => optional_msg().map(Command::List),
        "UIDL" => optional_msg().map(Command::Uidl),
        "RETR" if args.len() == 1 => msg(0).map(Command::Retr),
        "DELE" if args.len() == 1 => msg(0).map(Command::Dele),
        "RETR" | "DELE" => Err(ParseError::Syntax("-ERR usage: RETR|DELE msg\r\n")),
        "TOP" => {
            let lines = args
                .get(1)
                .filter(|a| !a.is_empty() && a.len() <= 19 && a.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|a| a.parse::<u64>().ok());
            match (args.len(), lines) {
                (2, Some(lines)) => Ok(Command::Top(msg(0)?, lines)),
                _ => Err(ParseError::Syntax("-ERR usage: TOP msg lines\r\n")),
            }
        }
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [mech] => Ok(Command::Auth {
                mechanism: Some(mech.to_ascii_uppercase()),
                initial: None,
            }),
            [mech, initial] => Ok(Command::Auth {
                mechanism: Some(mech.to_ascii_uppercase()),
                initial: Some(Secret((*initial).to_string())),
            }),
            _ => Err(ParseError::Syntax(
                "-ERR usage: AUTH mechanism [initial-response]\r\n",
            )),
        },
        "APOP" => Ok(Command::Apop),
        _ => Err(ParseError::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_arguments() {
        assert_eq!(
            parse(b"user alice@x.test"),
            Ok(Command::User("alice@x.test".into()))
        );
        assert_eq!(
            parse(b"PASS with spaces  inside"),
            Ok(Command::Pass(Secret("with spaces  inside".into())))
        );
        assert_eq!(parse(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse(b"list 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse(b"TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(parse(b"UIDL 4294967295"), Ok(Command::Uidl(Some(u32::MAX))));
        assert_eq!(
            parse(b"AUTH plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some(Secret("AGEAYg==".into()))
            })
        );
        assert_eq!(format!("{:?}", parse(b"PASS hunter2")), "Ok(Pass(***))");
    }

    #[test]
    fn bad_numbers_and_junk() {
        for bad in [
            &b"DELE 0"[..],
            b"DELE -1",
            b"DELE +1",
            b"DELE 4294967296",
            b"DELE 99999999999999999999",
            b"DELE x",
            b"DELE",
            b"RETR 1 2",
            b"TOP 1",
            b"TOP 1 -2",
            b"LIST 1 2",
            b"QUIT now",
            b"USER",
            b"PASS",
            b"USER a\x01b",
            b"\xff\xfe",
        ] {
            assert!(matches!(parse(bad), Err(ParseError::Syntax(_))), "{bad:?}");
        }
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"XYZZY"), Err(ParseError::Unknown));
        assert_eq!(parse(b"GET / HTTP/1.1"), Err(ParseError::Unknown));
    }
}
