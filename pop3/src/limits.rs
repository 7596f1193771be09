//! Connection limits: in total and per client (the IPv4 address, or the IPv6 /64). A
//! connection over a limit gets one `-ERR [SYS/TEMP]` line (plaintext port only) and is closed
//! before any session exists.
//!
//! SECURITY: a slot is given back by `Drop`, so no way out of a connection task (error,
//! panic, timeout) leaks a count; the map holds only clients with open connections.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct Limits {
    max_total: u32,
    max_per_client: u32,
    open: Mutex<(u32, HashMap<IpAddr, u32>)>,
}

/// An admitted connection.
pub struct Slot {
    limits: Arc<Limits>,
    key: IpAddr,
}

fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl Limits {
    pub fn new(max_total: u32, max_per_client: u32) -> Arc<Limits> {
        Arc::new(Limits {
            max_total,
            max_per_client,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    fn lock(&self) -> MutexGuard<'_, (u32, HashMap<IpAddr, u32>)> {
        // Updates finish before anything can panic: a poisoned lock holds consistent counts.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a connection from `ip`, or says which limit it hit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let key = key(ip);
        let mut open = self.lock();
        if open.0 >= self.max_total {
            return Err("too many connections");
        }
        let per = open.1.entry(key).or_insert(0);
        if *per >= self.max_per_client {
            return Err("too many connections from your address");
        }
        *per += 1;
        open.0 += 1;
        Ok(Slot {
            limits: Arc::clone(self),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        self.lock().0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn total_per_client_and_release() {
        let l = Limits::new(3, 2);
        let a = l.admit(ip("192.0.2.1")).expect("a");
        let _b = l.admit(ip("192.0.2.1")).expect("b");
        assert!(l.admit(ip("192.0.2.1")).is_err());
        let _c = l.admit(ip("2001:db8::1")).expect("c");
        assert!(l.admit(ip("2001:db8::2")).is_err(), "total");
        drop(a);
        assert_eq!(l.open(), 2);
        let _d = l
            .admit(ip("::ffff:192.0.2.1"))
            .expect("mapped v4 counts as v4");
        assert!(l.admit(ip("192.0.2.1")).is_err());
    }
}
