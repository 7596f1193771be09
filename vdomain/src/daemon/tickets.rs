//! Login tickets (docs/PROTOCOLS.md, "moat-auth", `L` and `T`): after moat-imap-login or
//! moat-pop3-login checked a password (`L`), the logged-in client is handed to the mail process
//! with a ticket, which the mail process redeems (`T`) to learn whom it serves. This file is the
//! store of outstanding tickets, in memory only (a restart of moat-auth voids them, and the
//! client is told to log in again).
//!
//! SECURITY: a token is 32 bytes from the OS RNG (getrandom), so it cannot be guessed; it is
//! bound to the service it was issued for, valid [`LIFETIME`], and single use: a redeem attempt
//! removes it whatever the outcome (a token shown to the wrong service has leaked or been misused
//! and must not work afterwards). At most [`MAX_OUTSTANDING`] tickets are held; when full,
//! expired ones are dropped first and then new logins are refused (`Z`), never old tickets
//! evicted, so a flood of logins cannot void the tickets of clients being handed over.
//!
//! Tokens are looked up in a `HashMap` rather than compared in constant time. The timing of a
//! lookup could tell a forger at most that a guess fell in the same bucket as a live token (under
//! SipHash with this process's random keys, unknown to the forger) and how many leading bytes
//! matched; with 2^256 possible tokens, each living 30 s and used once, and every unknown token
//! logged as a warning, no number of guesses within a lifetime gets anywhere near one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::TryRngCore;
use rand::rngs::OsRng;

/// How long a ticket may wait to be redeemed.
pub const LIFETIME: Duration = Duration::from_secs(30);
/// The most tickets outstanding at once.
pub const MAX_OUTSTANDING: usize = 4096;
/// Random bytes in a token (shown as twice as many lower-case hex digits).
pub const TOKEN_BYTES: usize = 32;

/// What a redeemed ticket says: who logged in, and their quota (`None` = unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    pub address: String,
    pub quota: Option<i64>,
}

/// Why no ticket was issued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// [`MAX_OUTSTANDING`] unexpired tickets are waiting.
    Full,
    /// The OS RNG failed (the reason, for the log).
    Random(String),
}

#[derive(Debug)]
struct Pending {
    user: LoggedIn,
    service: String,
    expires: Instant,
}

/// The outstanding tickets.
#[derive(Debug)]
pub struct Tickets {
    pending: HashMap<String, Pending>,
    lifetime: Duration,
    max: usize,
}

impl Default for Tickets {
    fn default() -> Tickets {
        Tickets::new(LIFETIME, MAX_OUTSTANDING)
    }
}

impl Tickets {
    /// A store whose tickets live `lifetime`, holding at most `max`.
    pub fn new(lifetime: Duration, max: usize) -> Tickets {
        Tickets {
            pending: HashMap::new(),
            lifetime,
            max,
        }
    }

    /// A new ticket for `user` on `service`; returns its token.
    pub fn issue(
        &mut self,
        user: LoggedIn,
        service: &str,
        now: Instant,
    ) -> Result<String, Refused> {
        if self.pending.len() >= self.max {
            self.pending.retain(|_, p| p.expires > now);
            if self.pending.len() >= self.max {
                return Err(Refused::Full);
            }
        }
        let token = new_token().map_err(Refused::Random)?;
        self.pending.insert(
            token.clone(),
            Pending {
                user,
                service: service.to_owned(),
                expires: now + self.lifetime,
            },
        );
        Ok(token)
    }

    /// The login behind `token` if it is outstanding, unexpired and was issued for `service`.
    /// The ticket is gone afterwards in every case.
    pub fn redeem(&mut self, token: &str, service: &str, now: Instant) -> Option<LoggedIn> {
        let pending = self.pending.remove(token)?;
        (pending.expires > now && pending.service == service).then_some(pending.user)
    }

    /// How many tickets are held (expired ones not yet dropped included).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no ticket is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// [`TOKEN_BYTES`] from the OS RNG as lower-case hex.
fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("the OS random number generator failed: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> LoggedIn {
        LoggedIn {
            address: "alice@example.test".into(),
            quota: Some(1 << 20),
        }
    }

    #[test]
    fn tokens_are_random_hex() {
        let mut tickets = Tickets::default();
        let now = Instant::now();
        let a = tickets.issue(alice(), "imap", now).expect("issued");
        let b = tickets.issue(alice(), "imap", now).expect("issued");
        for token in [&a, &b] {
            assert_eq!(token.len(), 2 * TOKEN_BYTES);
            assert!(
                token
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                "{token}"
            );
        }
        assert_ne!(a, b);
        assert_eq!(tickets.len(), 2);
    }

    #[test]
    fn single_use() {
        let mut tickets = Tickets::default();
        let now = Instant::now();
        let token = tickets.issue(alice(), "imap", now).expect("issued");
        assert_eq!(tickets.redeem(&token, "imap", now), Some(alice()));
        assert_eq!(tickets.redeem(&token, "imap", now), None);
        assert!(tickets.is_empty());
        assert_eq!(tickets.redeem("", "imap", now), None);
        assert_eq!(tickets.redeem(&"0".repeat(64), "imap", now), None);
    }

    #[test]
    fn expiry() {
        let mut tickets = Tickets::new(Duration::from_secs(30), 10);
        let t0 = Instant::now();
        let early = tickets.issue(alice(), "pop3", t0).expect("issued");
        let late = tickets.issue(alice(), "pop3", t0).expect("issued");
        let just_before = t0 + Duration::from_secs(30) - Duration::from_millis(1);
        assert_eq!(tickets.redeem(&early, "pop3", just_before), Some(alice()));
        assert_eq!(
            tickets.redeem(&late, "pop3", t0 + Duration::from_secs(30)),
            None
        );
        assert!(
            tickets.is_empty(),
            "an expired ticket is dropped when shown"
        );
    }

    #[test]
    fn bound_to_the_service() {
        let mut tickets = Tickets::default();
        let now = Instant::now();
        let token = tickets.issue(alice(), "imap", now).expect("issued");
        assert_eq!(tickets.redeem(&token, "pop3", now), None);
        // Shown to the wrong service, it is spent: it does not work for the right one either.
        assert_eq!(tickets.redeem(&token, "imap", now), None);
    }

    #[test]
    fn bounded() {
        let mut tickets = Tickets::new(Duration::from_secs(30), 3);
        let t0 = Instant::now();
        let first = tickets.issue(alice(), "imap", t0).expect("issued");
        let t1 = t0 + Duration::from_secs(10);
        let kept: Vec<String> = (0..2)
            .map(|_| tickets.issue(alice(), "imap", t1).expect("issued"))
            .collect();
        // Full of unexpired tickets: refused, and none of them evicted.
        assert_eq!(tickets.issue(alice(), "imap", t1), Err(Refused::Full));
        assert_eq!(tickets.len(), 3);
        // Once the first has expired it makes room (the others stay).
        let t2 = t0 + Duration::from_secs(31);
        let new = tickets
            .issue(alice(), "imap", t2)
            .expect("room after expiry");
        assert_eq!(tickets.len(), 3);
        assert_eq!(tickets.redeem(&first, "imap", t2), None);
        for token in kept.iter().chain([&new]) {
            assert_eq!(tickets.redeem(token, "imap", t2), Some(alice()));
        }
        assert!(tickets.is_empty());
        // The default bound is the documented one.
        let mut full = Tickets::default();
        for _ in 0..MAX_OUTSTANDING {
            full.issue(alice(), "pop3", t0).expect("issued");
        }
        assert_eq!(full.issue(alice(), "pop3", t1), Err(Refused::Full));
    }
}
