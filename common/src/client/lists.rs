//! moat-lists' protocol (docs/PROTOCOLS.md "moat-lists"): moat-local hands it one list target
//! of a delivery as `L` [queue id, list address, extension, envelope sender] with the message
//! descriptor attached, and gets `K`/`Z`/`D` [text] back, which becomes its own answer for
//! that target (`Z` stays temporary: the queue keeps the message and retries).

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conn::{Conn, with_timeout};
use crate::wire::{Record, Status};

/// The request kind: handle one message for one list address.
pub const HANDLE: u8 = b'L';

/// How long moat-local waits for moat-lists. A post is injected into the queue once, whatever
/// the number of members, so this bounds one queue injection of one message, with room. It is
/// shorter than the queue's wait for moat-local (`conn::DEFAULT_TIMEOUT`, `LocalClient`): a
/// slow moat-lists gives the queue a clean `Z` from moat-local, not a timeout while moat-local
/// still waits (moat-lists' replay records keep a retry from sending a finished post again).
pub const TIMEOUT: Duration = Duration::from_secs(100);
const _: () = assert!(TIMEOUT.as_secs() + 10 < crate::conn::DEFAULT_TIMEOUT.as_secs());

#[derive(Debug, Clone)]
pub struct ListsClient {
    path: PathBuf,
}

impl ListsClient {
    pub fn new(path: &Path) -> ListsClient {
        ListsClient {
            path: path.to_path_buf(),
        }
    }

    /// Hands the message open at `message` (read with positioned reads from offset 0) to
    /// moat-lists for `list` (its posting address) and `extension` ("" = a post).
    pub async fn handle(
        &self,
        queue_id: &str,
        list: &str,
        extension: &str,
        sender: &str,
        message: BorrowedFd<'_>,
    ) -> std::io::Result<Status> {
        with_timeout(TIMEOUT, async {
            let mut conn = Conn::connect(&self.path).await?;
            let req = Record::new(HANDLE)
                .field(queue_id)
                .field(list)
                .field(extension)
                .field(sender);
            conn.send_with_fds(&req, &[message]).await?;
            Ok(conn.status().await?.0)
        })
        .await
    }
}
