//! moat-local's protocol: deliver (`L` + message descriptor) and check a recipient (`C`).
//!
//! `L` is [queue id, sender, recipient] or, for a list post with RFC 8058 headers, [queue id,
//! sender, recipient, one-click attribute] (`one_click::OneClick::encode`): moat-local then
//! prepends the recipient's `List-Unsubscribe` fields.
//!
//! A delivery is answered `K`/`Z`/`D` [text], or `R` [text] when the recipient's domain is not
//! one we host: the queue then hands that recipient to moat-remote (docs/PROTOCOLS.md).

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::one_click::OneClick;
use crate::conn::{Conn, with_timeout};
use crate::wire::{Record, Status};

/// The kind letter of moat-local's "not a local domain: deliver remotely" answer to `L`.
pub const REMOTE: u8 = b'R';
/// Its text.
pub const REMOTE_TEXT: &str = "not a local domain";

/// moat-local's answer to a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered, retry later, or bounce.
    Status(Status),
    /// Not a domain we host: for moat-remote.
    Remote,
}

#[derive(Debug, Clone)]
pub struct LocalClient {
    path: PathBuf,
    timeout: Duration,
}

impl LocalClient {
    pub fn new(path: &Path) -> LocalClient {
        LocalClient {
            path: path.to_path_buf(),
            timeout: crate::conn::DEFAULT_TIMEOUT,
        }
    }

    /// Delivers the message open at `message` (read from offset 0) to one recipient.
    pub async fn deliver(
        &self,
        queue_id: &str,
        sender: &str,
        recipient: &str,
        message: BorrowedFd<'_>,
    ) -> std::io::Result<Delivery> {
        self.deliver_with(queue_id, sender, recipient, None, message)
            .await
    }

    /// `deliver`, with the list post's one-click attribute when it has one.
    pub async fn deliver_with(
        &self,
        queue_id: &str,
        sender: &str,
        recipient: &str,
        one_click: Option<&OneClick>,
        message: BorrowedFd<'_>,
    ) -> std::io::Result<Delivery> {
        with_timeout(self.timeout, async {
            let mut conn = Conn::connect(&self.path).await?;
            let mut req = Record::new(b'L')
                .field(queue_id)
                .field(sender)
                .field(recipient);
            if let Some(oc) = one_click {
                req = req.field(oc.encode());
            }
            conn.send_with_fds(&req, &[message]).await?;
            let record = conn.expect().await?;
            if record.kind == REMOTE {
                return Ok(Delivery::Remote);
            }
            Status::from_record(&record)
                .map(Delivery::Status)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
        .await
    }

    /// Asks whether `recipient` exists and has room for `size` bytes (RCPT-time check).
    pub async fn check(&self, recipient: &str, size: Option<u64>) -> std::io::Result<Status> {
        with_timeout(Duration::from_secs(30), async {
            let mut conn = Conn::connect(&self.path).await?;
            let size = size.map(|s| s.to_string()).unwrap_or_default();
            conn.send(&Record::new(b'C').field(recipient).field(size))
                .await?;
            Ok(conn.status().await?.0)
        })
        .await
    }
}
