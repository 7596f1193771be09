//! moat-remote's protocol: deliver one message to the recipients of one domain in one SMTP
//! transaction (`R` + message descriptor).
//!
//! Request `R` [queue id, sender, domain, flags, origin, one-click, recipient, ...] with the
//! message descriptor (flags: "" or `SMTPUTF8`, the original MAIL FROM asked for it; origin: how
//! the message reached the queue, `smtp`, `submission`, `sendmail`, `forward` or `bounce`, which
//! decides DKIM signing: only submissions, local senders and bounces are signed; one-click: ""
//! or a list post's RFC 8058 attribute, `one_click::OneClick::encode`, and then exactly one
//! recipient, whose `List-Unsubscribe` fields moat-remote prepends before signing). Reply:
//! one `K`/`Z`/`D` [text] per recipient, in the request's order, then `E` [count]. A request
//! refused as a whole (malformed, permission denied, stopping) is answered with one `Z`/`D`
//! [reason] and no `E`: it applies to every recipient.
//!
//! SECURITY: the answer is checked for shape (exactly one status per recipient, then the end
//! record with the same count); anything else is an error, which the queue treats as temporary.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::one_click::OneClick;
use crate::client::queue::Origin;
use crate::conn::{Conn, with_timeout};
use crate::wire::{Record, Status};

/// Recipients per request (RFC 5321 §4.5.3.1.8: servers must take at least 100 per transaction).
pub const MAX_RECIPIENTS: usize = 100;

/// The flag saying the original MAIL FROM carried SMTPUTF8 (RFC 6531).
pub const FLAG_SMTPUTF8: &str = "SMTPUTF8";

#[derive(Debug, Clone)]
pub struct RemoteClient {
    path: PathBuf,
    timeout: Duration,
}

fn invalid(text: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, text)
}

impl RemoteClient {
    /// `timeout` bounds the whole request, SMTP transaction included.
    pub fn new(path: &Path, timeout: Duration) -> RemoteClient {
        RemoteClient {
            path: path.to_path_buf(),
            timeout,
        }
    }

    /// Delivers the message open at `message` to `recipients` (all in `domain`); one status
    /// per recipient, in order. `smtputf8`: the message was submitted with SMTPUTF8. `origin`:
    /// the envelope's, so moat-remote knows whether it may DKIM-sign. `one_click`: a list
    /// post's RFC 8058 attribute (then `recipients` holds one address).
    #[allow(clippy::too_many_arguments)]
    pub async fn deliver(
        &self,
        queue_id: &str,
        sender: &str,
        domain: &str,
        smtputf8: bool,
        origin: Origin,
        one_click: Option<&OneClick>,
        recipients: &[String],
        message: BorrowedFd<'_>,
    ) -> std::io::Result<Vec<Status>> {
        with_timeout(self.timeout, async {
            let mut conn = Conn::connect(&self.path).await?;
            let mut req = Record::new(b'R')
                .field(queue_id)
                .field(sender)
                .field(domain)
                .field(if smtputf8 { FLAG_SMTPUTF8 } else { "" })
                .field(origin.as_str())
                .field(one_click.map(OneClick::encode).unwrap_or_default());
            for r in recipients {
                req = req.field(r);
            }
            conn.send_with_fds(&req, &[message]).await?;
            let mut out: Vec<Status> = Vec::with_capacity(recipients.len());
            loop {
                let Some(record) = conn.recv().await? else {
                    // A refusal of the whole request: one status, then the end of stream.
                    return match out.as_slice() {
                        [one] => Ok(vec![one.clone(); recipients.len()]),
                        _ => Err(invalid(format!(
                            "moat-remote ended its answer after {} of {} results",
                            out.len(),
                            recipients.len()
                        ))),
                    };
                };
                if record.kind == b'E' {
                    let count = record.text(0).ok().and_then(|c| c.parse::<usize>().ok());
                    if out.len() != recipients.len() || count != Some(out.len()) {
                        return Err(invalid(format!(
                            "moat-remote answered {} results for {} recipients",
                            out.len(),
                            recipients.len()
                        )));
                    }
                    return Ok(out);
                }
                if out.len() == recipients.len() {
                    return Err(invalid("moat-remote answered too many results".into()));
                }
                out.push(Status::from_record(&record).map_err(|e| invalid(e.to_string()))?);
            }
        })
        .await
    }
}
