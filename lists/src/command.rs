//! What the extension of a list address asks for. moat-auth already parsed it (docs/LISTS.md),
//! but it crossed a socket, so it is parsed again here; what this slice does not handle yet is
//! `Later` (answered `Z`: the queue keeps it).
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
    /// Anything else, by its extension: not handled by this slice.
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
        match extension {
            "" => Command::Post,
            "help" => Command::Help,
            "subscribe" => Command::Subscribe,
            "unsubscribe" => Command::Unsubscribe,
            other => {
                if let Some((cookie, address)) = other.strip_prefix("sc.").and_then(confirm) {
                    Command::SubscribeConfirm { cookie, address }
                } else if let Some((cookie, address)) = other.strip_prefix("uc.").and_then(confirm)
                {
                    Command::UnsubscribeConfirm { cookie, address }
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
        for later in [
            "sc.abc",
            "sc.-u=h",
            "sc.abc-uh",
            "uc.a-=h",
            "return-1-u=h",
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
