//! Connection limits of a TCP service: in total (a semaphore) and per client network (a
//! counted map). A connection over either limit is refused before any session exists; the
//! caller tells the client in its protocol's words (`Refusal::text`), and closes it.
//!
//! The per-client key is the IPv4 address, or the /64 prefix of an IPv6 address (one host
//! usually owns a whole /64, so counting single IPv6 addresses would be no limit at all).
//! IPv4-mapped IPv6 addresses count as the IPv4 address.
//!
//! SECURITY: the slot is released by `Drop`, so no path out of a connection task (error, panic,
//! timeout) can leak a count. The map only holds clients with an open connection, so it is
//! bounded by the total limit.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerClient,
}

impl Refusal {
    /// For the log.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Total => "the total connection limit",
            Refusal::PerClient => "the per-client connection limit",
        }
    }

    /// What the client is told, before ", try again later".
    pub fn text(self) -> &'static str {
        match self {
            Refusal::Total => "too many connections",
            Refusal::PerClient => "too many connections from your address",
        }
    }
}

pub struct Limits {
    total: Arc<Semaphore>,
    max_total: u32,
    max_per_client: u32,
    per_client: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted connection; dropping it gives the place back.
pub struct Slot {
    limits: Arc<Limits>,
    key: IpAddr,
    _permit: OwnedSemaphorePermit,
}

/// The address a client is counted under.
pub fn client_key(ip: IpAddr) -> IpAddr {
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
            total: Arc::new(Semaphore::new(max_total as usize)),
            max_total,
            max_per_client,
            per_client: Mutex::new(HashMap::new()),
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<IpAddr, u32>> {
        // Every update is complete before anything that could panic: a poisoned map is fine.
        self.per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a connection from `ip`, or says which limit it hit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let key = client_key(ip);
        let permit = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| Refusal::Total)?;
        let mut map = self.map();
        let count = map.entry(key).or_insert(0);
        if *count >= self.max_per_client {
            return Err(Refusal::PerClient);
        }
        *count += 1;
        Ok(Slot {
            limits: Arc::clone(self),
            key,
            _permit: permit,
        })
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        (self.max_total as usize).saturating_sub(self.total.available_permits())
    }

    /// Waits until every connection has closed, at most `limit`; true if they all did.
    pub async fn all_closed(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.total.acquire_many(self.max_total))
            .await
            .is_ok_and(|permits| permits.is_ok())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.limits.map();
        if let Some(count) = map.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.key);
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
    fn per_client_and_total() {
        let limits = Limits::new(3, 2);
        let a1 = limits.admit(ip("192.0.2.1")).expect("a1");
        let _a2 = limits.admit(ip("192.0.2.1")).expect("a2");
        assert_eq!(
            limits.admit(ip("192.0.2.1")).err(),
            Some(Refusal::PerClient)
        );
        let _b = limits.admit(ip("192.0.2.2")).expect("b");
        assert_eq!(limits.admit(ip("192.0.2.3")).err(), Some(Refusal::Total));
        assert_eq!(limits.open(), 3);
        drop(a1);
        let _a3 = limits.admit(ip("192.0.2.1")).expect("a3 after a1 left");
        assert_eq!(limits.map().len(), 2);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let limits = Limits::new(10, 1);
        let _x = limits.admit(ip("2001:db8:1:2::1")).expect("x");
        assert_eq!(
            limits.admit(ip("2001:db8:1:2:ffff::9")).err(),
            Some(Refusal::PerClient)
        );
        let _y = limits.admit(ip("2001:db8:1:3::1")).expect("other /64");
        let _v4 = limits.admit(ip("198.51.100.7")).expect("v4");
        assert_eq!(
            limits.admit(ip("::ffff:198.51.100.7")).err(),
            Some(Refusal::PerClient)
        );
    }

    #[tokio::test]
    async fn all_closed_waits_for_slots() {
        let limits = Limits::new(2, 2);
        let slot = limits.admit(ip("192.0.2.1")).expect("slot");
        assert!(!limits.all_closed(Duration::from_millis(20)).await);
        drop(slot);
        assert!(limits.all_closed(Duration::from_millis(20)).await);
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
