//! moat-auth's handle on the user store: opened in the background and retried with backoff,
//! so a database that is down when moat-auth starts makes it answer "try later" (`Z`) instead of
//! exiting (which would only make the supervisor restart it in a loop).
//!
//! Once opened, the store's pool reconnects by itself; a database that goes away later shows as
//! [`crate::StoreError::Unavailable`] on the requests that need it, which the handlers turn into
//! `Z` as well.
//!
//! SECURITY: the store URL may hold a password: it is never logged (the store's errors carry a
//! redacted form) and never sent to a peer (peers get a generic "user store unavailable").

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::connect::Store;
use crate::error::StoreError;

/// The first retry delay; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The store once it is open.
#[derive(Debug)]
pub struct StoreSlot {
    store: OnceLock<Store>,
    /// Becomes true when the first connection attempt has finished (either way).
    tried: watch::Sender<bool>,
}

impl StoreSlot {
    pub fn new() -> Arc<StoreSlot> {
        Arc::new(StoreSlot {
            store: OnceLock::new(),
            tried: watch::Sender::new(false),
        })
    }

    /// The store, if it has been opened.
    pub fn get(&self) -> Option<&Store> {
        self.store.get()
    }

    /// Waits until the first connection attempt is over (so the first requests after a start
    /// wait for a store that is merely slow to open, rather than failing).
    pub async fn first_attempt(&self) {
        let mut rx = self.tried.subscribe();
        let _ = rx.wait_for(|tried| *tried).await;
    }

    /// Opens the store, retrying with backoff until it works (run as a task; abort it to stop).
    /// A URL that can never work ([`StoreError::InvalidUrl`]) is reported once and not retried:
    /// every request then gets `Z` until the configuration is fixed and moat-auth restarted.
    pub async fn keep_connecting(self: Arc<Self>, url: String) {
        let mut delay = FIRST_RETRY;
        let mut failures = 0u32;
        loop {
            match Store::connect(&url).await {
                Ok(store) => {
                    let backend = store.backend();
                    if self.store.set(store).is_err() {
                        moat_common::error!("user store opened twice");
                    }
                    if failures == 0 {
                        moat_common::info!("user store open ({backend:?})");
                    } else {
                        moat_common::info!(
                            "user store reachable again ({backend:?}) after {failures} failed attempt(s)"
                        );
                    }
                    self.tried.send_replace(true);
                    return;
                }
                Err(e @ StoreError::InvalidUrl(_)) => {
                    moat_common::error!(
                        "{e}; answering every request with a temporary failure until store_url is fixed and moat-auth restarted"
                    );
                    self.tried.send_replace(true);
                    return;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 {
                        moat_common::error!(
                            "{e}; answering requests with a temporary failure, retrying in {} s",
                            delay.as_secs()
                        );
                    } else {
                        moat_common::warn!(
                            "{e} (attempt {failures}); retrying in {} s",
                            delay.as_secs()
                        );
                    }
                    self.tried.send_replace(true);
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2).min(MAX_RETRY);
                }
            }
        }
    }

    /// Closes the store's connections, if it was opened.
    pub async fn close(&self) {
        if let Some(store) = self.store.get() {
            store.close().await;
        }
    }
}
