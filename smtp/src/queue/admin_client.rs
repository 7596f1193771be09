//! The client of the queue's admin requests (`admin.rs` documents the records), for
//! `moat queue list|show|flush|delete`.
//!
//! SECURITY: the server decides who may ask (root or the queue's uid); this side only parses the
//! answers, strictly: a record of the wrong shape is an error, not a guess.

use std::path::{Path, PathBuf};
use std::time::Duration;

use moat_common::conn::{Conn, with_timeout};
use moat_common::wire::{Record, Status};

/// One line of `moat queue list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: String,
    pub arrival: u64,
    pub size: u64,
    pub sender: String,
    /// The recipients not yet done, joined by "," (cut when very long).
    pub recipients: String,
}

/// One recipient of `moat queue show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientState {
    pub index: usize,
    pub address: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub text: String,
}

/// `moat queue show ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    pub id: String,
    pub arrival: u64,
    pub size: u64,
    pub sender: String,
    pub origin: String,
    pub client: String,
    pub uid: u32,
    pub attempts: u32,
    /// Unix seconds; `None` = as soon as possible.
    pub next_try: Option<u64>,
    pub last_error: String,
    /// Each recipient gets its own VERP sender.
    pub verp: bool,
    pub recipients: Vec<RecipientState>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The queue said no (`D`/`Z` with its reason: permission denied, no such message...).
    #[error("{0}")]
    Refused(String),
    #[error("cannot talk to the queue: {0}")]
    Io(#[from] std::io::Error),
}

/// A client of the admin requests on `queue.sock`.
#[derive(Debug, Clone)]
pub struct QueueAdmin {
    path: PathBuf,
    timeout: Duration,
}

fn bad(what: &str) -> AdminError {
    AdminError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("unexpected answer from the queue: {what}"),
    ))
}

fn text(r: &Record, i: usize) -> Result<String, AdminError> {
    r.text(i)
        .map(str::to_string)
        .map_err(|_| bad("missing or non-UTF-8 field"))
}

fn number<T: std::str::FromStr>(r: &Record, i: usize) -> Result<T, AdminError> {
    text(r, i)?.parse().map_err(|_| bad("bad number"))
}

impl QueueAdmin {
    pub fn new(socket: &Path) -> QueueAdmin {
        QueueAdmin {
            path: socket.to_path_buf(),
            timeout: Duration::from_secs(60),
        }
    }

    /// Sends `request`; on `K` returns the records up to the closing `K` (exclusive) when `multi`.
    async fn ask(&self, request: Record, multi: bool) -> Result<(String, Vec<Record>), AdminError> {
        with_timeout(self.timeout, async {
            let mut conn = Conn::connect(&self.path).await?;
            conn.send(&request).await?;
            let first = conn.expect().await?;
            let status = Status::from_record(&first)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let head = match status {
                Status::Ok(t) => t,
                Status::Temporary(t) | Status::Permanent(t) => return Ok(Err(t)),
            };
            let mut records = Vec::new();
            if multi {
                loop {
                    let r = conn.expect().await?;
                    if r.kind == b'K' {
                        break;
                    }
                    records.push(r);
                }
            }
            Ok(Ok((head, records)))
        })
        .await?
        .map_err(AdminError::Refused)
    }

    /// Every queued message.
    pub async fn list(&self) -> Result<Vec<Summary>, AdminError> {
        let (_, records) = self.ask(Record::new(b'L'), true).await?;
        records
            .iter()
            .map(|r| {
                if r.kind != b'Q' {
                    return Err(bad("expected a Q record"));
                }
                Ok(Summary {
                    id: text(r, 0)?,
                    arrival: number(r, 1)?,
                    size: number(r, 2)?,
                    sender: text(r, 3)?,
                    recipients: text(r, 4)?,
                })
            })
            .collect()
    }

    /// One message in detail.
    pub async fn show(&self, id: &str) -> Result<Details, AdminError> {
        let (_, records) = self.ask(Record::new(b'S').field(id), true).await?;
        let (head, rest) = records.split_first().ok_or_else(|| bad("no Q record"))?;
        if head.kind != b'Q' {
            return Err(bad("expected a Q record"));
        }
        let next_try = text(head, 8)?;
        let recipients = rest
            .iter()
            .map(|r| {
                if r.kind != b'R' {
                    return Err(bad("expected an R record"));
                }
                Ok(RecipientState {
                    index: number(r, 0)?,
                    address: text(r, 1)?,
                    state: text(r, 2)?,
                    text: text(r, 3)?,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Details {
            id: text(head, 0)?,
            arrival: number(head, 1)?,
            size: number(head, 2)?,
            sender: text(head, 3)?,
            origin: text(head, 4)?,
            client: text(head, 5)?,
            uid: number(head, 6)?,
            attempts: number(head, 7)?,
            next_try: if next_try.is_empty() {
                None
            } else {
                Some(next_try.parse().map_err(|_| bad("bad next try"))?)
            },
            last_error: text(head, 9)?,
            // Absent from a queue older than VERP.
            verp: head.text(10).is_ok_and(|f| f == "VERP"),
            recipients,
        })
    }

    /// Asks for every message to be tried now.
    pub async fn flush(&self) -> Result<String, AdminError> {
        Ok(self.ask(Record::new(b'F'), false).await?.0)
    }

    /// Removes a message without a bounce.
    pub async fn delete(&self, id: &str) -> Result<String, AdminError> {
        Ok(self.ask(Record::new(b'X').field(id), false).await?.0)
    }
}
