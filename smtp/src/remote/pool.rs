//! Idle SMTP connections kept for the next request to the same destination (RFC 5321 §3.3: a
//! session may carry any number of transactions). A connection whose last transaction ended
//! cleanly waits here up to `IDLE` for the next message to the same address, port, TLS policy
//! (and host name, which `verify` checks the certificate against), EHLO name and credentials
//! (a session logged in as one route's user serves only that route); reusing it
//! saves the TCP connect, greeting, EHLO and TLS handshake, which cost more round trips than the
//! transaction itself.
//!
//! `IdleSet` is the bounded bookkeeping (no I/O, unit-tested); `Pool` wraps it for the daemon: a
//! reaper closes expired connections with QUIT every second, and `close_all` says QUIT to every
//! idle one when moat-remote stops.
//!
//! SECURITY: bounded per key (`max_per_destination`: never more idle connections to one place
//! than transactions allowed there at once) and in total (`max_deliveries`); a full pool closes
//! its oldest connection rather than grow. Closing is bounded by the connection's own QUIT
//! timeout.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_common::config::TlsPolicy;
use tokio::task::{JoinHandle, JoinSet};

/// How long a connection may wait idle. Long enough for the queue's next message to the same
/// destination (a burst to one domain is handed over within a second or two; Postfix keeps
/// 2 s), short enough that servers do not drop us first (RFC 5321 §4.5.3.2.7 asks them to wait
/// 5 minutes; some cut idle clients after 10 to 30 s) and that idle sessions do not pile up.
pub const IDLE: Duration = Duration::from_secs(10);

/// A connection older than this is not pooled again (Postfix's
/// `smtp_connection_reuse_time_limit`): servers may change their mind (certificates, limits),
/// and one long-lived session must not carry an unbounded share of the mail.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// How often the reaper looks for expired connections.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// What a pooled connection can be reused for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub addr: SocketAddr,
    /// The host name (certificates are checked against it under `verify`; texts name it).
    pub host: String,
    /// The policy the connection was opened under (under `may` it may be plaintext).
    pub policy: TlsPolicy,
    pub helo: String,
    /// Whose credentials the session logged in with (`Credentials::identity`, the route and the
    /// user); `None` for a session without AUTH. An authenticated session is the relay's
    /// permission to send as that account, so it serves no other route and no route without
    /// credentials.
    pub auth: Option<String>,
}

/// A connection that can be ended politely.
pub trait Closable: Send + 'static {
    /// Ends the session (QUIT, bounded by a short timeout) and closes it.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Idle connections by key, oldest first, with their idle-since times.
pub struct IdleSet<K, C> {
    by_key: HashMap<K, Vec<(Instant, C)>>,
    len: usize,
    per_key: usize,
    total: usize,
    idle: Duration,
}

impl<K: Hash + Eq + Clone, C> IdleSet<K, C> {
    pub fn new(per_key: usize, total: usize, idle: Duration) -> IdleSet<K, C> {
        IdleSet {
            by_key: HashMap::new(),
            len: 0,
            per_key,
            total,
            idle,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps `conn` idle from `now`. Returns what must be closed: the oldest connection of
    /// `key` when the key is full, the oldest of all when the pool is full (or `conn` itself
    /// when the bounds are zero).
    pub fn put(&mut self, key: K, conn: C, now: Instant) -> Vec<C> {
        if self.per_key == 0 || self.total == 0 {
            return vec![conn];
        }
        let mut out = Vec::new();
        let list = self.by_key.entry(key.clone()).or_default();
        if list.len() >= self.per_key {
            out.push(list.remove(0).1);
            self.len -= 1;
        }
        list.push((now, conn));
        self.len += 1;
        while self.len > self.total {
            let oldest = self
                .by_key
                .iter()
                .filter_map(|(k, l)| l.first().map(|(t, _)| (*t, k.clone())))
                .min_by_key(|(t, _)| *t)
                .map(|(_, k)| k);
            let Some(k) = oldest else { break };
            if let Some(list) = self.by_key.get_mut(&k) {
                out.push(list.remove(0).1);
                self.len -= 1;
            }
            self.forget_if_empty(&k);
        }
        out
    }

    /// The most recently used connection for `key` that has not expired (the likeliest to be
    /// still open). Expired ones stay for `expire`, which closes them.
    pub fn take(&mut self, key: &K, now: Instant) -> Option<C> {
        let list = self.by_key.get_mut(key)?;
        let fresh = list
            .last()
            .is_some_and(|(since, _)| now.saturating_duration_since(*since) < self.idle);
        let taken = if fresh {
            list.pop().map(|(_, c)| c)
        } else {
            None
        };
        if taken.is_some() {
            self.len -= 1;
        }
        self.forget_if_empty(key);
        taken
    }

    /// Removes and returns every connection idle for `idle` or longer.
    pub fn expire(&mut self, now: Instant) -> Vec<C> {
        let mut out = Vec::new();
        for list in self.by_key.values_mut() {
            let stale = list
                .iter()
                .take_while(|(since, _)| now.saturating_duration_since(*since) >= self.idle)
                .count();
            out.extend(list.drain(..stale).map(|(_, c)| c));
        }
        self.len -= out.len();
        self.by_key.retain(|_, l| !l.is_empty());
        out
    }

    /// Removes and returns everything.
    pub fn drain(&mut self) -> Vec<C> {
        self.len = 0;
        self.by_key
            .drain()
            .flat_map(|(_, l)| l.into_iter().map(|(_, c)| c))
            .collect()
    }

    fn forget_if_empty(&mut self, key: &K) {
        if self.by_key.get(key).is_some_and(Vec::is_empty) {
            self.by_key.remove(key);
        }
    }
}

/// The daemon's pool: an `IdleSet` behind a lock (held only for bookkeeping, never across an
/// await) and the reaper task.
pub struct Pool<C: Closable> {
    set: Arc<Mutex<IdleSet<Key, C>>>,
    reaper: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (every change is one step).
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn close_in_background<C: Closable>(conns: Vec<C>) {
    for c in conns {
        tokio::spawn(c.close());
    }
}

impl<C: Closable> Pool<C> {
    /// Call inside a tokio runtime: starts the reaper.
    pub fn new(per_key: usize, total: usize) -> Pool<C> {
        Pool::with_idle(per_key, total, IDLE)
    }

    pub fn with_idle(per_key: usize, total: usize, idle: Duration) -> Pool<C> {
        let set = Arc::new(Mutex::new(IdleSet::new(per_key, total, idle)));
        let weak = Arc::downgrade(&set);
        let reaper = tokio::spawn(async move {
            loop {
                tokio::time::sleep(REAP_EVERY).await;
                let Some(set) = weak.upgrade() else { return };
                let expired = lock(&set).expire(Instant::now());
                close_in_background(expired);
            }
        });
        Pool {
            set,
            reaper: Mutex::new(Some(reaper)),
        }
    }

    pub fn take(&self, key: &Key) -> Option<C> {
        lock(&self.set).take(key, Instant::now())
    }

    /// Keeps `conn` for reuse; whatever the bounds push out is closed in the background.
    pub fn put(&self, key: Key, conn: C) {
        let evicted = lock(&self.set).put(key, conn, Instant::now());
        close_in_background(evicted);
    }

    pub fn len(&self) -> usize {
        lock(&self.set).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the reaper and says QUIT to every idle connection, all at once; returns when
    /// every one is closed (each within its QUIT timeout).
    pub async fn close_all(&self) {
        if let Some(reaper) = lock(&self.reaper).take() {
            reaper.abort();
        }
        let conns = lock(&self.set).drain();
        let mut closing = JoinSet::new();
        for c in conns {
            closing.spawn(c.close());
        }
        while closing.join_next().await.is_some() {}
    }
}

impl<C: Closable> Drop for Pool<C> {
    fn drop(&mut self) {
        if let Some(reaper) = lock(&self.reaper).take() {
            reaper.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn take_returns_the_newest_unexpired_connection_of_its_key() {
        let t0 = Instant::now();
        let mut set: IdleSet<&str, u32> = IdleSet::new(3, 10, secs(10));
        assert!(set.put("a", 1, t0).is_empty());
        assert!(set.put("a", 2, t0 + secs(1)).is_empty());
        assert!(set.put("b", 3, t0 + secs(2)).is_empty());
        assert_eq!(set.len(), 3);
        assert_eq!(set.take(&"a", t0 + secs(3)), Some(2));
        assert_eq!(set.take(&"c", t0 + secs(3)), None);
        // Expired: not handed out, left for the reaper.
        assert_eq!(set.take(&"a", t0 + secs(10)), None);
        assert_eq!(set.len(), 2);
        assert_eq!(set.expire(t0 + secs(10)), vec![1]);
        assert_eq!(set.expire(t0 + secs(11)), Vec::<u32>::new());
        assert_eq!(set.expire(t0 + secs(12)), vec![3]);
        assert!(set.is_empty());
        assert!(set.by_key.is_empty(), "no empty lists are kept");
    }

    #[test]
    fn bounds_per_key_and_in_total_push_out_the_oldest() {
        let t0 = Instant::now();
        let mut set: IdleSet<&str, u32> = IdleSet::new(2, 3, secs(10));
        assert!(set.put("a", 1, t0).is_empty());
        assert!(set.put("a", 2, t0 + secs(1)).is_empty());
        assert_eq!(set.put("a", 3, t0 + secs(2)), vec![1], "per key");
        assert!(set.put("b", 4, t0 + secs(3)).is_empty());
        assert_eq!(
            set.put("c", 5, t0 + secs(4)),
            vec![2],
            "in total: the oldest"
        );
        assert_eq!(set.len(), 3);
        let mut rest = set.drain();
        rest.sort_unstable();
        assert_eq!(rest, vec![3, 4, 5]);
        assert!(set.is_empty());
        let mut none: IdleSet<&str, u32> = IdleSet::new(0, 3, secs(10));
        assert_eq!(none.put("a", 1, t0), vec![1], "a zero bound keeps nothing");
    }

    struct Fake(Arc<AtomicUsize>);

    impl Closable for Fake {
        async fn close(self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn key(port: u16) -> Key {
        Key {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            host: "mx.example".into(),
            policy: TlsPolicy::May,
            helo: "me.example".into(),
            auth: None,
        }
    }

    #[tokio::test]
    async fn the_reaper_closes_expired_connections_and_close_all_the_rest() {
        let closed = Arc::new(AtomicUsize::new(0));
        let pool: Pool<Fake> = Pool::with_idle(2, 4, Duration::from_millis(100));
        pool.put(key(25), Fake(Arc::clone(&closed)));
        assert!(pool.take(&key(26)).is_none(), "another port is another key");
        let again = pool.take(&key(25)).expect("reused");
        pool.put(key(25), again);
        tokio::time::sleep(REAP_EVERY + Duration::from_millis(500)).await;
        assert!(pool.is_empty());
        assert_eq!(closed.load(Ordering::SeqCst), 1, "QUIT once it expired");
        pool.put(key(25), Fake(Arc::clone(&closed)));
        pool.put(key(25), Fake(Arc::clone(&closed)));
        pool.put(key(25), Fake(Arc::clone(&closed)));
        pool.close_all().await;
        tokio::task::yield_now().await;
        assert_eq!(
            closed.load(Ordering::SeqCst),
            4,
            "the evicted and the idle ones"
        );
        assert!(pool.is_empty());
    }
}
