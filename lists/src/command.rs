//! What the extension of a list address asks for. moat-auth already parsed it (docs/LISTS.md),
//! but it crossed a socket, so it is parsed again here; an extension that is no command is
//! `Later` (answered `Z`: the queue keeps it, and a later moat-lists may know it).
//!
//! The full grammar (`ListCommand` in moat-vdomain) is not linked here: that crate carries the
//! SQL store, which moat-lists must not hold (docs/ARCHITECTURE.md, "moat-lists").

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `list@`: a post.
    Post,
    /// `list-help@`.
    Help,
    /// `list-subscribe@`, `list-unsubscribe@`: for the envelope sender.
    Subscribe,
    Unsubscribe,
    /// `list-sc.COOKIE-user=host@`, `list-uc.COOKIE-user=host@`.
    SubscribeConfirm {
        cookie: String,
        address: String,
    },
    UnsubscribeConfirm {
        cookie: String,
        address: String,
    },
    /// `list-owner@`: for the owner (or the moderators).
    Owner,
    /// `list-digest-subscribe@`, `list-digest-unsubscribe@`: for the envelope sender.
    DigestSubscribe,
    DigestUnsubscribe,
    /// `list-accept-ID@`, `list-reject-ID@`: a moderator's verdict on held post `ID`
    /// (lower-case letters and digits, non-empty).
    Accept(String),
    Reject(String),
    /// `list-return@` (""), `list-return-ANYTHING@`: bounces; the bounce handler parses the
    /// rest (`N-user=host` for VERP on post N, probes).
    Return(String),
    /// `list-get.N@`, `list-get.N_M@`: archived posts N (through M), N ≥ 1, M ≥ N.
    Get {
        from: u64,
        to: Option<u64>,
    },
    /// `list-index@`: the archive's index.
    Index,
    /// Anything else, by its extension: not a command moat-lists knows.
    Later(String),
}

impl Command {
    pub fn parse(extension: &str) -> Command {
        let confirm = |rest: &str| -> Option<(String, String)> {
            let (cookie, encoded) = rest.split_once('-')?;
            let (user, host) = encoded.rsplit_once('=')?;
            let ok = !cookie.is_empty()
                && cookie.bytes().all(|b| b.is_ascii_alphanumeric())
                && !user.is_empty()
                && !host.is_empty();
            ok.then(|| (cookie.to_string(), format!("{user}@{host}")))
        };
        let id = |rest: &str| {
            (!rest.is_empty()
                && rest.len() <= 64
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
            .then(|| rest.to_string())
        };
        let number = |t: &str| {
            (!t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u64>().ok())
                .flatten()
                .filter(|n| *n >= 1)
        };
        let range = |r: &str| -> Option<(u64, Option<u64>)> {
            match r.split_once('_') {
                Some((a, b)) => {
                    let (from, to) = (number(a)?, number(b)?);
                    (to >= from).then_some((from, Some(to)))
                }
                None => Some((number(r)?, None)),
            }
        };
        match extension {
            "" => Command::Post,
            "help" => Command::Help,
            "subscribe" => Command::Subscribe,
            "unsubscribe" => Command::Unsubscribe,
            "owner" => Command::Owner,
            "index" => Command::Index,
            "digest-subscribe" => Command::DigestSubscribe,
            "digest-unsubscribe" => Command::DigestUnsubscribe,
            "return" => Command::Return(String::new()),
            other => {
                if let Some((cookie, address)) = other.strip_prefix("sc.").and_then(confirm) {
                    Command::SubscribeConfirm { cookie, address }
                } else if let Some((cookie, address)) = other.strip_prefix("uc.").and_then(confirm)
                {
                    Command::UnsubscribeConfirm { cookie, address }
                } else if let Some(i) = other.strip_prefix("accept-").and_then(id) {
                    Command::Accept(i)
                } else if let Some(i) = other.strip_prefix("reject-").and_then(id) {
                    Command::Reject(i)
                } else if let Some(rest) = other.strip_prefix("return-") {
                    Command::Return(rest.to_string())
                } else if let Some((from, to)) = other.strip_prefix("get.").and_then(range) {
                    Command::Get { from, to }
                } else {
                    Command::Later(other.to_string())
                }
            }
        }
    }
}

/// `user@host` as it goes into a command address: `user=host` (ezmlm's VERP form; the domain
/// is after the last `=` when decoding).
pub fn encode_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((user, host)) => format!("{user}={host}"),
        None => address.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classified() {
        assert_eq!(Command::parse(""), Command::Post);
        assert_eq!(Command::parse("help"), Command::Help);
        assert_eq!(Command::parse("subscribe"), Command::Subscribe);
        assert_eq!(
            Command::parse("sc.abc1-u.v=h.example"),
            Command::SubscribeConfirm {
                cookie: "abc1".into(),
                address: "u.v@h.example".into()
            }
        );
        assert_eq!(
            Command::parse("uc.abc-a=b=h"),
            Command::UnsubscribeConfirm {
                cookie: "abc".into(),
                address: "a=b@h".into()
            }
        );
        assert_eq!(Command::parse("owner"), Command::Owner);
        assert_eq!(
            Command::parse("accept-7f3a"),
            Command::Accept("7f3a".into())
        );
        assert_eq!(Command::parse("reject-12"), Command::Reject("12".into()));
        assert_eq!(Command::parse("return"), Command::Return(String::new()));
        assert_eq!(
            Command::parse("return-1-u=h"),
            Command::Return("1-u=h".into())
        );
        assert_eq!(Command::parse("get.3"), Command::Get { from: 3, to: None });
        assert_eq!(
            Command::parse("get.3_5"),
            Command::Get {
                from: 3,
                to: Some(5)
            }
        );
        assert_eq!(Command::parse("index"), Command::Index);
        assert_eq!(Command::parse("digest-subscribe"), Command::DigestSubscribe);
        for later in [
            "sc.abc",
            "sc.-u=h",
            "sc.abc-uh",
            "uc.a-=h",
            "accept-",
            "accept-../x",
            "reject-A",
            "get.0",
            "get.5_3",
            "get.x",
            "get.99999999999999999999",
            "xyz",
        ] {
            assert_eq!(
                Command::parse(later),
                Command::Later(later.into()),
                "{later}"
            );
        }
        assert_eq!(encode_address("bob@far.example"), "bob=far.example");
    }
}
