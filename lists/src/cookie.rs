//! Confirmation cookies (ezmlm's idea): `list-sc.COOKIE-user=host@domain` proves that whoever
//! confirms received the mail sent to user@host, without any state kept between the request
//! and the confirmation.
//!
//! COOKIE = 8 hex digits of the expiry (Unix seconds, UTC; good until 2106) followed by the
//! first 10 bytes (20 hex digits) of HMAC-SHA256(list secret, action ‖ 0 ‖ address ‖ 0 ‖
//! expiry digits), all lower case (the store lower-cases local parts) — 28 characters, so
//! `list-sc.<cookie>-user=host` fits a 64-octet local part for addresses up to ~27 characters
//! with a short list name. `action` is `sc` or `uc`, so a subscribe cookie never unsubscribes.
//! The address is compared lower-cased (member lookups ignore case too).
//!
//! SECURITY: 80 bits of MAC: guessing one is out of reach within the 7-day life. The check
//! recomputes the MAC and compares in constant time; the expiry is inside the MAC, so it
//! cannot be stretched.

use moat_common::client::list_store::Roster;
use ring::hmac;

/// How long a confirmation request stays good.
pub const LIFETIME_SECS: u64 = 7 * 24 * 3600;
const MAC_BYTES: usize = 10;
/// The cookie's length in characters.
pub const LEN: usize = 8 + 2 * MAC_BYTES;

/// What a cookie confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Subscribe,
    Unsubscribe,
}

impl Action {
    pub fn tag(self) -> &'static str {
        match self {
            Action::Subscribe => "sc",
            Action::Unsubscribe => "uc",
        }
    }
}

/// The MAC's first field: `sc`/`uc` for the member roster, `dsc`/`duc` for the digest roster.
fn mac_tag(action: Action, roster: Roster) -> String {
    match roster {
        Roster::Digest => format!("d{}", action.tag()),
        _ => action.tag().to_string(),
    }
}

fn mac(secret: &[u8; 32], action: Action, address: &str, expiry: &str) -> String {
    mac_for(secret, action.tag(), address, expiry)
}

fn mac_for(secret: &[u8; 32], tag: &str, address: &str, expiry: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(tag.as_bytes());
    ctx.update(&[0]);
    ctx.update(address.to_ascii_lowercase().as_bytes());
    ctx.update(&[0]);
    ctx.update(expiry.as_bytes());
    let tag = ctx.sign();
    tag.as_ref()[..MAC_BYTES]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A cookie for `address` that expires `LIFETIME_SECS` after `now`.
pub fn make(secret: &[u8; 32], action: Action, address: &str, now: u64) -> String {
    let expiry = now.saturating_add(LIFETIME_SECS).min(u64::from(u32::MAX));
    let expiry = format!("{expiry:08x}");
    let mac = mac(secret, action, address, &expiry);
    format!("{expiry}{mac}")
}

/// Why a cookie is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Forged,
    Expired,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Malformed => "malformed cookie",
            Refused::Forged => "cookie does not match",
            Refused::Expired => "cookie expired",
        })
    }
}

/// A digest-roster cookie: `d` + the cookie of `make` with the MAC over `dsc`/`duc`, so it
/// never confirms a change of the member roster, nor a member cookie one of the digest roster.
/// The confirmation address keeps its form (`list-sc.dCOOKIE-user=host@`).
pub fn make_digest(secret: &[u8; 32], action: Action, address: &str, now: u64) -> String {
    let expiry = now.saturating_add(LIFETIME_SECS).min(u64::from(u32::MAX));
    let expiry = format!("{expiry:08x}");
    let mac = mac_for(secret, &mac_tag(action, Roster::Digest), address, &expiry);
    format!("d{expiry}{mac}")
}

/// Checks a cookie of either roster (`make` or `make_digest`) and says which roster it is for.
pub fn check_roster(
    secret: &[u8; 32],
    action: Action,
    address: &str,
    cookie: &str,
    now: u64,
) -> Result<Roster, Refused> {
    match cookie.strip_prefix('d') {
        Some(rest) if cookie.len() == LEN + 1 => {
            check_tag(secret, &mac_tag(action, Roster::Digest), address, rest, now)
                .map(|()| Roster::Digest)
        }
        _ => check(secret, action, address, cookie, now).map(|()| Roster::Member),
    }
}

/// Checks `cookie` for `action` on `address` at `now`.
pub fn check(
    secret: &[u8; 32],
    action: Action,
    address: &str,
    cookie: &str,
    now: u64,
) -> Result<(), Refused> {
    check_tag(secret, action.tag(), address, cookie, now)
}

fn check_tag(
    secret: &[u8; 32],
    tag: &str,
    address: &str,
    cookie: &str,
    now: u64,
) -> Result<(), Refused> {
    if cookie.len() != LEN || !cookie.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refused::Malformed);
    }
    let (expiry, given) = cookie.split_at(8);
    let want = mac_for(secret, tag, address, expiry);
    // Constant time: every byte is looked at whatever the first difference.
    let diff = want
        .bytes()
        .zip(given.to_ascii_lowercase().bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err(Refused::Forged);
    }
    let expiry = u64::from_str_radix(expiry, 16).map_err(|_| Refused::Malformed)?;
    if now > expiry {
        return Err(Refused::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn round_trip_and_refusals() {
        let c = make(&KEY, Action::Subscribe, "Bob@far.example", 1000);
        assert_eq!(c.len(), LEN);
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
        assert_eq!(
            check(&KEY, Action::Subscribe, "bob@far.example", &c, 2000),
            Ok(())
        );
        assert_eq!(
            check(&KEY, Action::Unsubscribe, "bob@far.example", &c, 2000),
            Err(Refused::Forged)
        );
        assert_eq!(
            check(&KEY, Action::Subscribe, "eve@far.example", &c, 2000),
            Err(Refused::Forged)
        );
        assert_eq!(
            check(&[8; 32], Action::Subscribe, "bob@far.example", &c, 2000),
            Err(Refused::Forged)
        );
        assert_eq!(
            check(
                &KEY,
                Action::Subscribe,
                "bob@far.example",
                &c,
                1000 + LIFETIME_SECS + 1
            ),
            Err(Refused::Expired)
        );
        // A stretched expiry breaks the MAC.
        let stretched = format!("ffffffff{}", &c[8..]);
        assert_eq!(
            check(&KEY, Action::Subscribe, "bob@far.example", &stretched, 2000),
            Err(Refused::Forged)
        );
        assert_eq!(
            check(&KEY, Action::Subscribe, "bob@far.example", "xyz", 2000),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn digest_cookies_are_their_own() {
        let d = make_digest(&KEY, Action::Subscribe, "bob@far.example", 1000);
        assert_eq!(d.len(), LEN + 1);
        assert!(d.starts_with('d'));
        assert!(
            d.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
        let check = |c: &str, a| check_roster(&KEY, a, "bob@far.example", c, 2000);
        assert_eq!(check(&d, Action::Subscribe), Ok(Roster::Digest));
        assert_eq!(check(&d, Action::Unsubscribe), Err(Refused::Forged));
        // The same MAC without the `d`, or a member cookie with one: refused.
        assert!(super::check(&KEY, Action::Subscribe, "bob@far.example", &d[1..], 2000).is_err());
        let m = make(&KEY, Action::Subscribe, "bob@far.example", 1000);
        assert_eq!(check(&m, Action::Subscribe), Ok(Roster::Member));
        assert_eq!(
            check(&format!("d{m}"), Action::Subscribe),
            Err(Refused::Forged)
        );
    }
}
