//! Forwarding: a target outside our domains is re-injected into the queue (origin `forward`)
//! with the original envelope sender, `Delivered-To: <alias>` in front, and the remote address
//! as the only recipient. moat-remote (issue 4) takes it from there.
//!
//! Not done yet: SRS (Sender Rewriting Scheme). The sender is kept as is, so SPF checks at the
//! receiving end may fail for forwarded mail.
//!
//! SECURITY: the message is streamed from the descriptor in queue-sized chunks (never whole in
//! memory, bounded by `message::MAX_MESSAGE`); the remote address came from moat-auth and is
//! checked again before it goes into an envelope. The `Delivered-To:` line is what stops a
//! forward that comes back to us (see `loops`).

use std::path::Path;
use std::sync::Arc;

use moat_common::client::queue::{CHUNK, Injection, Origin};
use moat_common::wire::Status;

use crate::local::message::Message;

/// Re-injects `prefix` + `message` for `to`, from `sender`. Returns the queue's verdict
/// (`Ok(new queue id)`); an I/O error means the queue could not be asked (temporary).
pub async fn forward(
    queue_socket: &Path,
    client: &str,
    message: Arc<Message>,
    prefix: Vec<u8>,
    sender: &str,
    to: &str,
) -> std::io::Result<Status> {
    let mut injection = Injection::open(queue_socket, Origin::Forward, client).await?;
    injection.write(&prefix).await?;
    let mut offset = 0u64;
    loop {
        let m = Arc::clone(&message);
        let chunk = tokio::task::spawn_blocking(move || m.chunk(offset, CHUNK))
            .await
            .map_err(std::io::Error::other)??;
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        injection.write(&chunk).await?;
    }
    injection.finish(sender, &[to.to_string()]).await
}
