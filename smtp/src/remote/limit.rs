//! At most `max_per_destination` transactions at once to one destination (the request's domain,
//! or the host of its static route, so a smarthost counts as one destination as in Postfix).
//! Receivers throttle or refuse senders that open many parallel sessions; more requests for a
//! busy destination wait for a slot instead of failing (the caller bounds the wait).
//!
//! SECURITY: the map holds only destinations with a transaction running or waiting (an entry
//! goes when its last holder or waiter does), so it is bounded by the requests in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Slots = Arc<Mutex<HashMap<String, Arc<Semaphore>>>>;

pub struct Limits {
    max: usize,
    slots: Slots,
}

/// One running transaction's place; freed on drop.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    slots: Slots,
}

fn lock(slots: &Slots) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Semaphore>>> {
    // Every change under the lock is one step, so a poisoned map is still consistent.
    slots
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Forgets destinations nobody holds or waits for (only the map's own reference is left).
fn forget_unused(map: &mut HashMap<String, Arc<Semaphore>>) {
    map.retain(|_, s| Arc::strong_count(s) > 1);
}

impl Limits {
    /// `max` of at least 1 (0 would make every request wait forever).
    pub fn new(max: usize) -> Limits {
        Limits {
            max: max.max(1),
            slots: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// True when `destination` has no free slot now (for the log).
    pub fn busy(&self, destination: &str) -> bool {
        lock(&self.slots)
            .get(destination)
            .is_some_and(|s| s.available_permits() == 0)
    }

    /// Waits for a slot for `destination`. Cancel-safe: dropping the future gives nothing up.
    pub async fn acquire(&self, destination: &str) -> Slot {
        let semaphore = {
            let mut map = lock(&self.slots);
            forget_unused(&mut map);
            Arc::clone(
                map.entry(destination.to_string())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.max))),
            )
        };
        // The semaphore is never closed, so this cannot fail; if it could, running without the
        // slot is the safe side (the total limit still holds).
        let permit = semaphore.acquire_owned().await.ok();
        Slot {
            permit,
            slots: Arc::clone(&self.slots),
        }
    }

    /// Destinations currently tracked (for tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        let mut map = lock(&self.slots);
        forget_unused(&mut map);
        map.len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        forget_unused(&mut lock(&self.slots));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_destination_gets_at_most_max_slots_and_others_are_not_held_up() {
        let limits = Limits::new(2);
        let a1 = limits.acquire("a.example").await;
        let _a2 = limits.acquire("a.example").await;
        assert!(limits.busy("a.example"));
        let third = tokio::time::timeout(Duration::from_millis(100), limits.acquire("a.example"));
        assert!(third.await.is_err(), "the third waits");
        let _b = tokio::time::timeout(Duration::from_millis(100), limits.acquire("b.example"))
            .await
            .expect("another destination has its own slots");
        let waiter = limits.acquire("a.example");
        drop(a1);
        let _a3 = tokio::time::timeout(Duration::from_millis(100), waiter)
            .await
            .expect("a freed slot goes to the waiter");
        assert_eq!(limits.tracked(), 2);
    }

    #[tokio::test]
    async fn finished_and_abandoned_destinations_are_forgotten() {
        let limits = Limits::new(1);
        let held = limits.acquire("a.example").await;
        // A waiter that gives up (its future dropped) leaves nothing behind.
        let gave_up =
            tokio::time::timeout(Duration::from_millis(50), limits.acquire("a.example")).await;
        assert!(gave_up.is_err());
        drop(held);
        assert_eq!(limits.tracked(), 0);
        assert!(!limits.busy("a.example"));
        assert_eq!(Limits::new(0).max(), 1);
    }
}
