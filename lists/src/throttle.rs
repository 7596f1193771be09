//! Hourly allowances per (list, address): at most one confirmation request per address per
//! list per hour, so the list cannot be made to mail-bomb an address by forging subscribe
//! requests in its name; at most `archive::MAX_ANSWERS` archive answers per list and sender
//! per hour (`allow_up_to`). Kept in memory: a restart forgets it, which at worst lets one more
//! hour's allowance through per address (no store table or file needed for a limit measured in
//! an hour). A send that failed gives its use back (`undo`), so a retry by the queue is not
//! taken for a second request.
//!
//! SECURITY: bounded: at most `MAX_ENTRIES` pairs are remembered in all, and at most
//! `MAX_PER_LIST` for one list key; when a bound is reached, entries older than the window are
//! dropped, and if that frees nothing new requests are refused (no mail sent) until the window
//! passes — failing closed, as a flood is what fills it. The per-list bound keeps a flood
//! against one list from closing every other list.

use std::collections::HashMap;
use std::sync::Mutex;

/// The window: one confirmation per address and list within it.
pub const WINDOW_SECS: u64 = 3600;
/// The most (list, address) pairs remembered.
pub const MAX_ENTRIES: usize = 50_000;
/// The most addresses remembered for one list key.
pub const MAX_PER_LIST: usize = 5_000;

#[derive(Debug, Default)]
struct Table {
    /// (list, address) → (start of the window, uses in it).
    sent: HashMap<(String, String), (u64, u32)>,
    /// list → how many of `sent`'s keys name it.
    per_list: HashMap<String, usize>,
}

impl Table {
    fn expire(&mut self, now: u64) {
        self.sent
            .retain(|_, (at, _)| now.saturating_sub(*at) < WINDOW_SECS);
        self.per_list.clear();
        for (list, _) in self.sent.keys() {
            *self.per_list.entry(list.clone()).or_insert(0) += 1;
        }
    }

    fn full(&self, list: &str) -> bool {
        self.sent.len() >= MAX_ENTRIES
            || self.per_list.get(list).copied().unwrap_or(0) >= MAX_PER_LIST
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    table: Mutex<Table>,
}

impl Throttle {
    /// Whether a confirmation may go to `address` for `list` at `now`; if so, it is counted.
    pub fn allow(&self, list: &str, address: &str, now: u64) -> bool {
        self.allow_up_to(list, address, now, 1)
    }

    /// Whether one more use (of at most `max` per window) is allowed to `address` for `list`
    /// at `now`; if so, it is counted.
    pub fn allow_up_to(&self, list: &str, address: &str, now: u64, max: u32) -> bool {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let key = (list.to_ascii_lowercase(), address.to_ascii_lowercase());
        if let Some((at, uses)) = t.sent.get_mut(&key)
            && now.saturating_sub(*at) < WINDOW_SECS
        {
            if *uses >= max {
                return false;
            }
            *uses += 1;
            return true;
        }
        if !t.sent.contains_key(&key) && t.full(&key.0) {
            t.expire(now);
            if t.full(&key.0) {
                return false;
            }
        }
        if t.sent.insert(key.clone(), (now, 1)).is_none() {
            *t.per_list.entry(key.0).or_insert(0) += 1;
        }
        true
    }

    /// Gives back one use counted by `allow`/`allow_up_to` for a send that failed.
    pub fn undo(&self, list: &str, address: &str) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let key = (list.to_ascii_lowercase(), address.to_ascii_lowercase());
        let Some((_, uses)) = t.sent.get_mut(&key) else {
            return;
        };
        *uses = uses.saturating_sub(1);
        if *uses == 0 {
            t.sent.remove(&key);
            if let Some(n) = t.per_list.get_mut(&key.0) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    t.per_list.remove(&key.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_window() {
        let t = Throttle::default();
        assert!(t.allow("dev@x.test", "bob@y.test", 100));
        assert!(!t.allow("dev@x.test", "BOB@y.test", 200));
        assert!(t.allow("ops@x.test", "bob@y.test", 200));
        assert!(t.allow("dev@x.test", "bob@y.test", 100 + WINDOW_SECS));
    }

    #[test]
    fn undo_gives_the_use_back() {
        let t = Throttle::default();
        assert!(t.allow("dev@x.test", "bob@y.test", 100));
        t.undo("dev@x.test", "bob@y.test");
        assert!(t.allow("dev@x.test", "bob@y.test", 101));
        assert!(!t.allow("dev@x.test", "bob@y.test", 102));
    }

    #[test]
    fn several_per_window() {
        let t = Throttle::default();
        for i in 0..5 {
            assert!(t.allow_up_to("get dev@x.test", "eve@y.test", 100 + i, 5));
        }
        assert!(!t.allow_up_to("get dev@x.test", "eve@y.test", 200, 5));
        assert!(t.allow_up_to("get dev@x.test", "eve@y.test", 100 + WINDOW_SECS, 5));
    }

    #[test]
    fn a_flood_on_one_list_leaves_the_others_open() {
        let t = Throttle::default();
        for i in 0..MAX_PER_LIST {
            assert!(t.allow("dev@x.test", &format!("u{i}@y.test"), 100));
        }
        assert!(!t.allow("dev@x.test", "late@y.test", 100));
        assert!(t.allow("ops@x.test", "late@y.test", 100));
        // Once the window passed, the flooded list takes requests again.
        assert!(t.allow("dev@x.test", "late@y.test", 100 + WINDOW_SECS));
    }
}
