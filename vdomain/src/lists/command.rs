//! The ezmlm address scheme of a mailing list: `list@domain` takes posts, and
//! `list-<command>@domain` takes commands (docs/LISTS.md). This file only parses the
//! `<command>` part (the *extension*); which local parts are lists is the store's business
//! (`claims.rs`), and resolution turns a match into a [`crate::Target::List`].
//!
//! Extensions arrive lower-case: the store lower-cases every local part it resolves, so the
//! daemon must make cookies and ids that survive that (lower-case hex, digits).

use std::fmt;

/// What mail to a list address asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListCommand {
    /// `list@`: a post to the list.
    Post,
    /// `list-subscribe@`: the sender asks to join (a confirmation request is sent).
    Subscribe,
    /// `list-unsubscribe@`.
    Unsubscribe,
    /// `list-help@`.
    Help,
    /// `list-owner@`: a person responsible for the list.
    Owner,
    /// `list-index@`: the archive's index.
    Index,
    /// `list-digest-subscribe@`.
    DigestSubscribe,
    /// `list-digest-unsubscribe@`.
    DigestUnsubscribe,
    /// `list-sc.COOKIE-user=host@`: the reply confirming a subscription of `user@host`.
    SubscribeConfirm { cookie: String, address: String },
    /// `list-uc.COOKIE-user=host@`: the reply confirming an unsubscription.
    UnsubscribeConfirm { cookie: String, address: String },
    /// `list-accept-ID@`: a moderator lets held post `ID` through.
    Accept(String),
    /// `list-reject-ID@`: a moderator refuses held post `ID`.
    Reject(String),
    /// `list-return` or `list-return-ANYTHING@`: bounces. The daemon chooses what follows
    /// (`N-user=host` for VERP on post N, probes, ...) and parses it itself.
    Return(String),
    /// `list-get.N@` or `list-get.N_M@`: archived posts N (through M).
    Get { from: u64, to: Option<u64> },
}

impl ListCommand {
    /// Parses the extension after `list-` (the empty string is a post). `None` for anything
    /// that is not a command, so the address is resolved by the later rules instead.
    pub fn parse(ext: &str) -> Option<ListCommand> {
        use ListCommand as C;
        let fixed = match ext {
            "" => Some(C::Post),
            "subscribe" => Some(C::Subscribe),
            "unsubscribe" => Some(C::Unsubscribe),
            "help" => Some(C::Help),
            "owner" => Some(C::Owner),
            "index" => Some(C::Index),
            "digest-subscribe" => Some(C::DigestSubscribe),
            "digest-unsubscribe" => Some(C::DigestUnsubscribe),
            "return" => Some(C::Return(String::new())),
            _ => None,
        };
        if fixed.is_some() {
            return fixed;
        }
        if let Some(rest) = ext.strip_prefix("sc.") {
            let (cookie, address) = cookie_and_address(rest)?;
            return Some(C::SubscribeConfirm { cookie, address });
        }
        if let Some(rest) = ext.strip_prefix("uc.") {
            let (cookie, address) = cookie_and_address(rest)?;
            return Some(C::UnsubscribeConfirm { cookie, address });
        }
        if let Some(id) = ext.strip_prefix("accept-") {
            return held_id(id).then(|| C::Accept(id.to_owned()));
        }
        if let Some(id) = ext.strip_prefix("reject-") {
            return held_id(id).then(|| C::Reject(id.to_owned()));
        }
        if let Some(rest) = ext.strip_prefix("return-") {
            return Some(C::Return(rest.to_owned()));
        }
        if let Some(range) = ext.strip_prefix("get.") {
            let (from, to) = match range.split_once('_') {
                Some((a, b)) => (number(a)?, Some(number(b)?)),
                None => (number(range)?, None),
            };
            if to.is_some_and(|to| to < from) {
                return None;
            }
            return Some(C::Get { from, to });
        }
        None
    }

    /// The extension this command is addressed with (the inverse of [`ListCommand::parse`]):
    /// `""` for a post.
    pub fn extension(&self) -> String {
        use ListCommand as C;
        match self {
            C::Post => String::new(),
            C::Subscribe => "subscribe".into(),
            C::Unsubscribe => "unsubscribe".into(),
            C::Help => "help".into(),
            C::Owner => "owner".into(),
            C::Index => "index".into(),
            C::DigestSubscribe => "digest-subscribe".into(),
            C::DigestUnsubscribe => "digest-unsubscribe".into(),
            C::SubscribeConfirm { cookie, address } => {
                format!("sc.{cookie}-{}", verp_encode(address))
            }
            C::UnsubscribeConfirm { cookie, address } => {
                format!("uc.{cookie}-{}", verp_encode(address))
            }
            C::Accept(id) => format!("accept-{id}"),
            C::Reject(id) => format!("reject-{id}"),
            C::Return(rest) if rest.is_empty() => "return".into(),
            C::Return(rest) => format!("return-{rest}"),
            C::Get { from, to: None } => format!("get.{from}"),
            C::Get { from, to: Some(to) } => format!("get.{from}_{to}"),
        }
    }
}

impl fmt::Display for ListCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListCommand::Post => f.write_str("post"),
            other => f.write_str(&other.extension()),
        }
    }
}

/// `user@host` as it travels inside a local part: `user=host` (ezmlm's and qmail's VERP
/// form). The split back is at the last `=`, so a `=` in the user part survives.
pub fn verp_encode(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((user, host)) => format!("{user}={host}"),
        None => address.to_owned(),
    }
}

/// The inverse of [`verp_encode`]: `user=host` → `user@host`; `None` unless both sides are
/// non-empty.
pub fn verp_decode(encoded: &str) -> Option<String> {
    let (user, host) = encoded.rsplit_once('=')?;
    (!user.is_empty() && !host.is_empty()).then(|| format!("{user}@{host}"))
}

/// `COOKIE-user=host`: the cookie runs to the first `-` (the daemon makes cookies of hex
/// digits), the rest is a VERP-encoded address.
fn cookie_and_address(rest: &str) -> Option<(String, String)> {
    let (cookie, encoded) = rest.split_once('-')?;
    if cookie.is_empty() || !cookie.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((cookie.to_owned(), verp_decode(encoded)?))
}

/// A held post's id as moat-lists makes and parses it (lists/src/command.rs): 1 to 64 of
/// `[a-z0-9]`. Anything else is not a command address at all, so mail to it is refused at
/// RCPT instead of waiting in the queue for a command moat-lists cannot read.
fn held_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A post number as moat-lists parses it: 1 to 19 ASCII digits (no sign, no spaces), at
/// least 1.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| *n >= 1)
}

/// The ways `local` could be list `base` plus a command extension: every `(base, ext)` with
/// `local = base + "-" + ext` and both non-empty, longest base first (so list `a-b` wins
/// over list `a` for `a-b-help`). The exact local part (a post) is not included.
pub(crate) fn splits(local: &str) -> impl Iterator<Item = (&str, &str)> {
    local
        .char_indices()
        .rev()
        .filter(|&(i, c)| c == '-' && i > 0 && i + 1 < local.len())
        .map(|(i, _)| (&local[..i], &local[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ListCommand as C;

    #[test]
    fn commands_round_trip() {
        let cases = [
            ("", C::Post),
            ("subscribe", C::Subscribe),
            ("unsubscribe", C::Unsubscribe),
            ("help", C::Help),
            ("owner", C::Owner),
            ("index", C::Index),
            ("digest-subscribe", C::DigestSubscribe),
            ("digest-unsubscribe", C::DigestUnsubscribe),
            (
                "sc.0a1b2c-bob=example.org",
                C::SubscribeConfirm {
                    cookie: "0a1b2c".into(),
                    address: "bob@example.org".into(),
                },
            ),
            (
                "uc.ff-a=b=c.example",
                C::UnsubscribeConfirm {
                    cookie: "ff".into(),
                    address: "a=b@c.example".into(),
                },
            ),
            ("accept-17abc", C::Accept("17abc".into())),
            ("reject-17abc", C::Reject("17abc".into())),
            ("return", C::Return(String::new())),
            (
                "return-12-bob=example.org",
                C::Return("12-bob=example.org".into()),
            ),
            ("return-", C::Return(String::new())),
            ("get.12", C::Get { from: 12, to: None }),
            (
                "get.3_9",
                C::Get {
                    from: 3,
                    to: Some(9),
                },
            ),
        ];
        for (ext, cmd) in cases {
            assert_eq!(ListCommand::parse(ext), Some(cmd.clone()), "{ext:?}");
            if ext != "return-" {
                assert_eq!(cmd.extension(), ext);
            }
        }
    }

    #[test]
    fn held_ids_match_moat_lists() {
        let longest = "a9".repeat(32);
        assert_eq!(
            ListCommand::parse(&format!("accept-{longest}")),
            Some(C::Accept(longest.clone()))
        );
        assert_eq!(ListCommand::parse(&format!("reject-{longest}x")), None);
        assert_eq!(
            ListCommand::parse("get.9999999999999999999"),
            Some(C::Get {
                from: 9_999_999_999_999_999_999,
                to: None
            })
        );
    }

    #[test]
    fn not_commands() {
        for ext in [
            "subscribe-x",
            "sub",
            "sc.",
            "sc.abc",
            "sc.abc-bob",
            "sc.-bob=x",
            "sc.a.b-bob=x",
            "uc.abc-=x",
            "accept-",
            "reject-",
            "get.",
            "get.0",
            "get.x",
            "get.-1",
            "get.9_3",
            "get.1_",
            "get.00000000000000000001",
            "get.1_99999999999999999999",
            "accept-17.abc",
            "accept-a_b",
            "reject-x-y",
            "accept-AB",
            "digest",
            "tag",
        ] {
            assert_eq!(ListCommand::parse(ext), None, "{ext:?}");
        }
    }

    #[test]
    fn splits_longest_base_first() {
        let s: Vec<_> = splits("a-b-help").collect();
        assert_eq!(s, [("a-b", "help"), ("a", "b-help")]);
        assert_eq!(splits("-a-").count(), 0);
        assert_eq!(splits("plain").count(), 0);
    }

    #[test]
    fn verp() {
        assert_eq!(verp_encode("u@h.example"), "u=h.example");
        assert_eq!(verp_decode("u=h.example").as_deref(), Some("u@h.example"));
        assert_eq!(verp_decode("=h"), None);
        assert_eq!(verp_decode("u="), None);
    }
}
