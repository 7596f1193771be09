//! At most one confirmation request per address per list per hour, so the list cannot be made
//! to mail-bomb an address by forging subscribe requests in its name. Kept in memory: a restart
//! forgets it, which at worst lets one more confirmation through per address (no store table
//! or file needed for a limit measured in an hour).
//!
//! SECURITY: bounded: at most `MAX_ENTRIES` pairs are remembered; when full, entries older than
//! the window are dropped, and if that frees nothing new requests are refused (no mail sent)
//! until the window passes — failing closed, as a flood is what fills it.

use std::collections::HashMap;
use std::sync::Mutex;

/// The window: one confirmation per address and list within it.
pub const WINDOW_SECS: u64 = 3600;
/// The most (list, address) pairs remembered.
pub const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Default)]
pub struct Throttle {
    sent: Mutex<HashMap<(String, String), u64>>,
}

impl Throttle {
    /// Whether a confirmation may go to `address` for `list` at `now`; if so, it is counted.
    pub fn allow(&self, list: &str, address: &str, now: u64) -> bool {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let key = (list.to_ascii_lowercase(), address.to_ascii_lowercase());
        if let Some(at) = sent.get(&key)
            && now.saturating_sub(*at) < WINDOW_SECS
        {
            return false;
        }
        if sent.len() >= MAX_ENTRIES {
            sent.retain(|_, at| now.saturating_sub(*at) < WINDOW_SECS);
            if sent.len() >= MAX_ENTRIES {
                return false;
            }
        }
        sent.insert(key, now);
        true
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
}
