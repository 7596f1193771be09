//! Failed-login throttling for moat-auth: per login and per client IP, after
//! [`Policy::max_failures`] failures within [`Policy::window`] further logins are refused with a
//! temporary failure, without checking the password, for a lock that starts at
//! [`Policy::first_lock`] and doubles with each new lock up to [`Policy::max_lock`]. A successful
//! login clears its login's record (never its IP's: one valid account must not whitewash an
//! address that is guessing at others). A record with no failure and no lock for
//! [`Policy::forget_after`] is forgotten, which also resets the doubling.
//!
//! The state is in memory only: a restart forgets it, as qmail-style daemons forget everything.
//!
//! SECURITY: memory is bounded: each table keeps at most [`Policy::max_keys`] records and evicts
//! the least recently failed one first (a flood of distinct keys costs the attacker one argon2
//! verification each, and logins and IPs have separate tables so rotating IPs cannot evict login
//! locks). Keys are normalised before use (logins like the store normalises addresses, IPv6
//! clients per /64, IPv4-mapped IPv6 as IPv4) so trivial variations do not get fresh counters.
//! Nothing here sees a password.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::address::Address;

/// The numbers of the throttle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Failures within `window` that start a lock.
    pub max_failures: usize,
    pub window: Duration,
    /// The first lock's length; each further lock doubles it.
    pub first_lock: Duration,
    pub max_lock: Duration,
    /// A record idle (no failure, no lock) this long is forgotten.
    pub forget_after: Duration,
    /// The most records per table (logins, IPs).
    pub max_keys: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_failures: 5,
            window: Duration::from_secs(5 * 60),
            first_lock: Duration::from_secs(60),
            max_lock: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(15 * 60),
            max_keys: 50_000,
        }
    }
}

/// Which counter a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Login,
    Ip,
}

/// A refusal: logins for this key are locked for `remaining`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub scope: Scope,
    pub remaining: Duration,
    /// True for the first refusal of this lock (log it once, not once per attempt).
    pub first_refusal: bool,
}

/// A lock that a failure just started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub scope: Scope,
    pub duration: Duration,
}

/// The failed-login state of moat-auth.
#[derive(Debug)]
pub struct Throttle {
    policy: Policy,
    logins: Table,
    ips: Table,
}

impl Throttle {
    pub fn new(mut policy: Policy) -> Throttle {
        // Forgetting a record must never drop a failure that still counts.
        policy.forget_after = policy.forget_after.max(policy.window);
        policy.max_failures = policy.max_failures.max(1);
        policy.max_keys = policy.max_keys.max(1);
        Throttle {
            policy,
            logins: Table::default(),
            ips: Table::default(),
        }
    }

    /// Whether a login attempt must be refused now (login checked first, then the IP).
    pub fn check(&mut self, login: &str, ip: Option<&str>, now: Instant) -> Option<Locked> {
        let login_verdict = self
            .logins
            .locked(login, now)
            .map(|(r, f)| (Scope::Login, r, f));
        let verdict = login_verdict.or_else(|| {
            ip.and_then(|ip| self.ips.locked(ip, now))
                .map(|(r, f)| (Scope::Ip, r, f))
        });
        verdict.map(|(scope, remaining, first_refusal)| Locked {
            scope,
            remaining,
            first_refusal,
        })
    }

    /// Records a failed login; returns the locks it started.
    pub fn failed(&mut self, login: &str, ip: Option<&str>, now: Instant) -> Vec<Lockout> {
        let mut started = Vec::new();
        if let Some(duration) = self.logins.fail(login, now, &self.policy) {
            started.push(Lockout {
                scope: Scope::Login,
                duration,
            });
        }
        if let Some(ip) = ip
            && let Some(duration) = self.ips.fail(ip, now, &self.policy)
        {
            started.push(Lockout {
                scope: Scope::Ip,
                duration,
            });
        }
        started
    }

    /// Records a successful login: the login's failures and lock history are cleared.
    pub fn succeeded(&mut self, login: &str) {
        self.logins.remove(login);
    }

    /// How many records are held (logins, IPs).
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        (self.logins.entries.len(), self.ips.entries.len())
    }
}

/// The throttle key of a login: the address as the store normalises it (so `Alice@EXAMPLE.test`
/// and `alice@example.test` share a counter), or the trimmed lower-cased text if it is not an
/// address.
pub fn login_key(login: &str) -> String {
    match Address::parse(login) {
        Ok(addr) => addr.to_string(),
        Err(_) => login.trim().to_lowercase(),
    }
}

/// The throttle key of a client IP: `None` for "" (no IP, e.g. a local client); IPv4 as is,
/// IPv4-mapped IPv6 as IPv4, other IPv6 by its /64 (one subscriber's usual allocation); text
/// that is not an IP is used lower-cased.
pub fn ip_key(ip: &str) -> Option<String> {
    let ip = ip.trim();
    if ip.is_empty() {
        return None;
    }
    Some(match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        Err(_) => ip.to_lowercase(),
    })
}

/// The length of the lock that follows `earlier` locks.
fn lock_duration(policy: &Policy, earlier: u32) -> Duration {
    let factor = 1u32.checked_shl(earlier.min(31)).unwrap_or(u32::MAX);
    policy
        .first_lock
        .saturating_mul(factor)
        .min(policy.max_lock)
}

#[derive(Debug)]
struct Entry {
    /// Failures inside the window, oldest first (at most `max_failures`).
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
    /// Locks so far (the next one lasts `first_lock * 2^locks`).
    locks: u32,
    /// Whether a refusal under the current lock was already reported.
    reported: bool,
    /// Position in `Table::order` (0 = not yet placed).
    stamp: u64,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            failures: VecDeque::new(),
            locked_until: None,
            locks: 0,
            reported: false,
            stamp: 0,
        }
    }

    fn remaining(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .map(|until| until.saturating_duration_since(now))
            .filter(|left| !left.is_zero())
    }

    fn forgotten(&self, now: Instant, policy: &Policy) -> bool {
        let last = match (self.failures.back(), self.locked_until) {
            (Some(&f), Some(l)) => f.max(l),
            (Some(&f), None) => f,
            (None, Some(l)) => l,
            (None, None) => return true,
        };
        now.saturating_duration_since(last) >= policy.forget_after
    }
}

/// Records keyed by text, with a least-recently-failed order for eviction.
#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Entry>,
    /// stamp → key; the smallest stamp is the least recently failed record.
    order: BTreeMap<u64, String>,
    next_stamp: u64,
}

impl Table {
    /// The lock on `key` if there is one, and whether this is its first refusal.
    fn locked(&mut self, key: &str, now: Instant) -> Option<(Duration, bool)> {
        let entry = self.entries.get_mut(key)?;
        let remaining = entry.remaining(now)?;
        let first = !entry.reported;
        entry.reported = true;
        Some((remaining, first))
    }

    /// Counts a failure for `key`; returns the length of a lock it started.
    fn fail(&mut self, key: &str, now: Instant, policy: &Policy) -> Option<Duration> {
        self.prune(now, policy);
        if !self.entries.contains_key(key) {
            while self.entries.len() >= policy.max_keys {
                let Some((_, oldest)) = self.order.pop_first() else {
                    break;
                };
                self.entries.remove(&oldest);
            }
        }
        self.next_stamp += 1;
        let stamp = self.next_stamp;
        let entry = self
            .entries
            .entry(key.to_owned())
            .or_insert_with(Entry::new);
        self.order.remove(&entry.stamp);
        entry.stamp = stamp;
        self.order.insert(stamp, key.to_owned());

        if entry.forgotten(now, policy) {
            // Quiet long enough: start over, doubling included.
            *entry = Entry {
                stamp,
                ..Entry::new()
            };
        }
        while entry
            .failures
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= policy.window)
        {
            entry.failures.pop_front();
        }
        entry.failures.push_back(now);
        while entry.failures.len() > policy.max_failures {
            entry.failures.pop_front();
        }
        if entry.remaining(now).is_some() || entry.failures.len() < policy.max_failures {
            // Already locked (a request that passed the check before the lock began), or
            // not enough failures yet.
            return None;
        }
        let duration = lock_duration(policy, entry.locks);
        entry.locked_until = Some(now + duration);
        entry.locks = entry.locks.saturating_add(1);
        entry.reported = false;
        entry.failures.clear();
        Some(duration)
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.stamp);
        }
    }

    /// Drops forgotten records from the old end of the order (amortised O(1) per call).
    fn prune(&mut self, now: Instant, policy: &Policy) {
        while let Some((&stamp, key)) = self.order.first_key_value() {
            let forgotten = self
                .entries
                .get(key)
                .is_none_or(|e| e.forgotten(now, policy));
            if !forgotten {
                break;
            }
            let key = key.clone();
            self.order.remove(&stamp);
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn fail_n(t: &mut Throttle, login: &str, ip: Option<&str>, n: usize, now: Instant) -> usize {
        (0..n).map(|_| t.failed(login, ip, now).len()).sum()
    }

    #[test]
    fn five_failures_lock_for_a_minute() {
        let mut t = Throttle::new(Policy::default());
        let now = Instant::now();
        for i in 0..4 {
            assert!(
                t.failed("a@x.test", Some("192.0.2.1"), now).is_empty(),
                "{i}"
            );
            assert_eq!(t.check("a@x.test", Some("192.0.2.1"), now), None);
        }
        let started = t.failed("a@x.test", Some("192.0.2.1"), now);
        assert_eq!(
            started,
            vec![
                Lockout {
                    scope: Scope::Login,
                    duration: MIN
                },
                Lockout {
                    scope: Scope::Ip,
                    duration: MIN
                }
            ]
        );
        let locked = t.check("a@x.test", None, now).expect("locked");
        assert_eq!(locked.scope, Scope::Login);
        assert_eq!(locked.remaining, MIN);
        assert!(locked.first_refusal);
        assert!(
            !t.check("a@x.test", None, now)
                .expect("locked")
                .first_refusal
        );
        // Another login from the same IP is refused too; the same login from elsewhere too.
        let by_ip = t.check("b@x.test", Some("192.0.2.1"), now).expect("ip");
        assert_eq!(by_ip.scope, Scope::Ip);
        assert!(t.check("a@x.test", Some("198.51.100.7"), now).is_some());
        assert_eq!(t.check("b@x.test", Some("198.51.100.7"), now), None);
        // The lock ends after a minute.
        assert_eq!(t.check("a@x.test", Some("192.0.2.1"), now + MIN), None);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut t = Throttle::new(Policy::default());
        let start = Instant::now();
        for i in 0..20u64 {
            // One failure every 80 s: never 5 within 5 minutes.
            assert_eq!(
                fail_n(
                    &mut t,
                    "a@x.test",
                    None,
                    1,
                    start + Duration::from_secs(80 * i)
                ),
                0,
                "{i}"
            );
        }
        // But 5 within the window do.
        let later = start + Duration::from_secs(10_000);
        assert_eq!(fail_n(&mut t, "a@x.test", None, 5, later), 1);
    }

    #[test]
    fn locks_double_up_to_fifteen_minutes_and_are_forgotten() {
        let mut t = Throttle::new(Policy::default());
        let mut now = Instant::now();
        let mut seen = Vec::new();
        for _ in 0..6 {
            let mut started = Vec::new();
            for _ in 0..5 {
                started.extend(t.failed("a@x.test", None, now));
            }
            let lock = started.first().expect("a lock").duration;
            seen.push(lock.as_secs() / 60);
            now += lock;
            assert_eq!(t.check("a@x.test", None, now), None);
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 15, 15]);
        // Quiet for 15 minutes after the last lock: back to one minute.
        now += Duration::from_secs(15 * 60);
        let started: Vec<_> = (0..5)
            .flat_map(|_| t.failed("a@x.test", None, now))
            .collect();
        assert_eq!(started.first().map(|l| l.duration), Some(MIN));
    }

    #[test]
    fn success_clears_the_login_but_not_the_ip() {
        let mut t = Throttle::new(Policy::default());
        let now = Instant::now();
        fail_n(&mut t, "a@x.test", Some("192.0.2.1"), 4, now);
        t.succeeded("a@x.test");
        // The login starts over: 4 more failures do not lock it...
        fail_n(&mut t, "a@x.test", Some("192.0.2.9"), 4, now);
        assert_eq!(t.check("a@x.test", None, now), None);
        // ...but the first IP still remembers its 4 failures.
        assert_eq!(fail_n(&mut t, "b@x.test", Some("192.0.2.1"), 1, now), 1);
        assert_eq!(
            t.check("c@x.test", Some("192.0.2.1"), now).map(|l| l.scope),
            Some(Scope::Ip)
        );
    }

    #[test]
    fn failures_during_a_lock_do_not_extend_it() {
        let mut t = Throttle::new(Policy::default());
        let now = Instant::now();
        assert_eq!(fail_n(&mut t, "a@x.test", None, 5, now), 1);
        // Requests that passed the check before the lock began still fail afterwards.
        assert_eq!(fail_n(&mut t, "a@x.test", None, 10, now), 0);
        assert_eq!(t.check("a@x.test", None, now + MIN), None);
    }

    #[test]
    fn memory_is_bounded() {
        let policy = Policy {
            max_keys: 3,
            ..Policy::default()
        };
        let mut t = Throttle::new(policy);
        let now = Instant::now();
        for i in 0..10 {
            t.failed(&format!("u{i}@x.test"), Some(&format!("192.0.2.{i}")), now);
        }
        assert_eq!(t.sizes(), (3, 3));
        // The most recent ones are kept.
        assert_eq!(fail_n(&mut t, "u9@x.test", None, 4, now), 1);
        // Forgotten records are dropped on the next failure.
        let later = now + Duration::from_secs(3600);
        t.failed("fresh@x.test", None, later);
        assert_eq!(t.sizes(), (1, 3));
    }

    #[test]
    fn keys_are_normalised() {
        assert_eq!(login_key(" Alice@EXAMPLE.test "), "alice@example.test");
        assert_eq!(login_key("Not An Address"), "not an address");
        assert_eq!(ip_key(""), None);
        assert_eq!(ip_key("192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(ip_key("::ffff:192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(
            ip_key("2001:db8:1:2:aaaa::1").as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(ip_key("2001:db8:1:2:bbbb::9"), ip_key("2001:db8:1:2::1"));
        assert_eq!(ip_key("Unix-Socket").as_deref(), Some("unix-socket"));
    }
}
