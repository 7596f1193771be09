//! Who may ask moat-local what: `L` (deliver) only the queue, `C` (check) only smtpd; our own
//! uid and root may ask both (quickstart runs everything under one uid; root is the admin).
//!
//! SECURITY: the uid comes from the kernel (SO_PEERCRED), never from anything the peer said.
//! `L` is the powerful one (it writes into any mailbox), so smtpd, which talks to the internet,
//! may not use it; and `C` tells whether an address exists, so arbitrary local users may not
//! probe the user list with it. Unknown request kinds are refused whoever asks.

use moat_common::conn::parse_uids;

/// The request kinds moat-local serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `L`: deliver a message.
    Deliver,
    /// `C`: check a recipient.
    Check,
}

impl Kind {
    pub fn of(kind: u8) -> Option<Kind> {
        match kind {
            b'L' => Some(Kind::Deliver),
            b'C' => Some(Kind::Check),
            _ => None,
        }
    }
}

/// The allowed peer uids per request kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers {
    queue: Vec<u32>,
    smtpd: Vec<u32>,
    own: u32,
}

impl Peers {
    pub fn new(queue: Vec<u32>, smtpd: Vec<u32>, own: u32) -> Peers {
        Peers { queue, smtpd, own }
    }

    /// From the `peers_queue` and `peers_smtpd` settings ("1000,1001"); garbage is an error.
    pub fn from_settings(queue: &str, smtpd: &str, own: u32) -> Result<Peers, String> {
        Ok(Peers::new(
            parse_uids(queue).map_err(|e| format!("peers_queue: {e}"))?,
            parse_uids(smtpd).map_err(|e| format!("peers_smtpd: {e}"))?,
            own,
        ))
    }

    /// Whether a peer with `uid` may make a request of `kind`.
    pub fn allows(&self, kind: Kind, uid: u32) -> bool {
        if uid == 0 || uid == self.own {
            return true;
        }
        match kind {
            Kind::Deliver => self.queue.contains(&uid),
            Kind::Check => self.smtpd.contains(&uid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_peers() {
        let p = Peers::from_settings("998", " 997, 996 ", 990).expect("parse");
        assert!(p.allows(Kind::Deliver, 998));
        assert!(!p.allows(Kind::Check, 998), "the queue does not check");
        assert!(p.allows(Kind::Check, 997) && p.allows(Kind::Check, 996));
        assert!(!p.allows(Kind::Deliver, 997), "smtpd may not deliver");
        for kind in [Kind::Deliver, Kind::Check] {
            assert!(p.allows(kind, 0), "root");
            assert!(p.allows(kind, 990), "our own uid");
            assert!(!p.allows(kind, 1000), "a stranger");
        }
    }

    #[test]
    fn empty_lists_leave_only_root_and_self() {
        let p = Peers::from_settings("", "", 990).expect("parse");
        assert!(!p.allows(Kind::Deliver, 998));
        assert!(p.allows(Kind::Deliver, 990) && p.allows(Kind::Check, 0));
    }

    #[test]
    fn garbage_is_an_error_not_nobody() {
        assert!(Peers::from_settings("moat-queue", "", 1).is_err());
        assert!(Peers::from_settings("", "12x", 1).is_err());
    }

    #[test]
    fn kinds() {
        assert_eq!(Kind::of(b'L'), Some(Kind::Deliver));
        assert_eq!(Kind::of(b'C'), Some(Kind::Check));
        assert_eq!(Kind::of(b'A'), None);
    }
}
