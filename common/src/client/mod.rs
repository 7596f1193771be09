//! Clients of the internal protocols (docs/PROTOCOLS.md), and the record shapes the servers share
//! with them, so each shape is written down in code exactly once.
//!
//! Every call opens its own connection: Unix sockets are cheap, and a fresh connection per
//! request means no state to lose when a server restarts. An `io::Error` from any call means the
//! peer could not be asked: callers treat it as a temporary failure.

pub mod auth;
pub mod list_store;
pub mod lists;
pub mod local;
pub mod one_click;
pub mod queue;
pub mod remote;

/// Longest queue id a server accepts in a request.
pub const MAX_QUEUE_ID: usize = 64;

/// Checks the queue id field of a request to moat-local, moat-remote or moat-lists: it names log
/// lines only, so any short alphanumeric token is accepted (moat-queue's own ids are stricter).
pub fn check_queue_id(id: &str) -> Result<(), String> {
    if !id.is_empty() && id.len() <= MAX_QUEUE_ID && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!("bad queue id {id:?}"))
    }
}
