//! moat-queue's injection protocol: `H` open, `M` chunks, `E` envelope, then `K [queue id]`.

use std::path::Path;
use std::time::Duration;

use crate::conn::{Conn, with_timeout};
use crate::wire::{Record, Status};

/// The largest message chunk per `M` record (below `wire::MAX_FRAME`).
pub const CHUNK: usize = 60 * 1024;

/// Where a message came from (the queue logs it and treats bounces and sendmail specially).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Smtp,
    Submission,
    Sendmail,
    Forward,
    Bounce,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Smtp => "smtp",
            Origin::Submission => "submission",
            Origin::Sendmail => "sendmail",
            Origin::Forward => "forward",
            Origin::Bounce => "bounce",
        }
    }

    pub fn parse(text: &str) -> Option<Origin> {
        Some(match text {
            "smtp" => Origin::Smtp,
            "submission" => Origin::Submission,
            "sendmail" => Origin::Sendmail,
            "forward" => Origin::Forward,
            "bounce" => Origin::Bounce,
            _ => return None,
        })
    }
}

/// One message on its way into the queue.
pub struct Injection {
    conn: Conn,
    pending: Vec<u8>,
    timeout: Duration,
}

impl Injection {
    /// Opens a queue file. `client` is a free-text description for the logs.
    pub async fn open(socket: &Path, origin: Origin, client: &str) -> std::io::Result<Injection> {
        let timeout = crate::conn::DEFAULT_TIMEOUT;
        let conn = with_timeout(timeout, async {
            let mut conn = Conn::connect(socket).await?;
            conn.send(&Record::new(b'H').field(origin.as_str()).field(client))
                .await?;
            Ok(conn)
        })
        .await?;
        Ok(Injection {
            conn,
            pending: Vec::with_capacity(CHUNK),
            timeout,
        })
    }

    /// Adds message bytes (CRLF line endings, exactly as they will be delivered).
    pub async fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let room = CHUNK - self.pending.len();
            let take = room.min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == CHUNK {
                self.flush_chunk().await?;
            }
        }
        Ok(())
    }

    async fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let record = Record::new(b'M').field(&self.pending);
        with_timeout(self.timeout, self.conn.send(&record)).await?;
        self.pending.clear();
        Ok(())
    }

    /// Sends the envelope and waits for the queue's verdict: `Status::Ok(queue id)` means the
    /// message is safely on disk. `sender` "" is the null sender.
    pub async fn finish(mut self, sender: &str, recipients: &[String]) -> std::io::Result<Status> {
        self.flush_chunk().await?;
        let mut envelope = Record::new(b'E').field(sender);
        for r in recipients {
            envelope = envelope.field(r);
        }
        with_timeout(self.timeout, async {
            self.conn.send(&envelope).await?;
            Ok(self.conn.status().await?.0)
        })
        .await
    }
}
