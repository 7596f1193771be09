//! What a session asks of its driver ([`Event`]) and what the driver answers (the verdicts),
//! plus the [`Envelope`] of a message.
//!
//! SECURITY: the session never decides about users, passwords or the queue; it asks, waits
//! for the verdict, and turns it into the reply. Each verdict maps to one fixed reply, so a
//! driver cannot answer a protocol step with a malformed or misclassified code by mistake.

use super::auth::Credentials;
use super::params::{MailParams, RcptParams};
use super::path::{Domain, ForwardPath, ReversePath};
use super::reply::Reply;

/// The next thing the driver must do. After each event the driver also drains the body sink
/// it passed to `Session::next_event` (message bytes of the current transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Send this reply. Replies may be batched until `NeedInput`, `StartTls` or `Close`
    /// (RFC 2920 pipelining).
    Reply(Reply),
    /// Flush pending replies, then read more bytes from the client and `receive` them.
    NeedInput,
    /// Is this recipient acceptable? Answer with `Session::recipient_verdict`. The sender
    /// and the authenticated user are available from the session.
    CheckRecipient(Recipient),
    /// Check these credentials. Answer with `Session::auth_verdict`.
    Authenticate(Credentials),
    /// May the authenticated user send as this MAIL FROM? Asked only when the listener's
    /// `SessionConfig::check_sender` is on and the session is authenticated. Answer with
    /// `Session::sender_verdict`; the transaction opens only on `SenderVerdict::Accept`.
    CheckSender(ReversePath),
    /// A message body starts: open a queue injection. Body bytes follow through the sink.
    MessageStart,
    /// The body is complete and valid: commit the message with this envelope, then answer
    /// with `Session::message_verdict`.
    MessageEnd(Envelope),
    /// Throw away the body written so far (refused content, RSET during BDAT, ...).
    MessageAbort,
    /// Flush the pending replies (the last is 220), start the TLS handshake, then call
    /// `Session::tls_established`. Plaintext the client pipelined after STARTTLS has already
    /// been thrown away (`Session::discarded_after_starttls`).
    StartTls,
    /// Flush the pending replies and close the connection.
    Close,
}

/// A recipient accepted for the current transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub path: ForwardPath,
    pub params: RcptParams,
}

/// Everything the queue needs besides the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The HELO/EHLO argument, and whether it was EHLO.
    pub helo: Domain,
    pub esmtp: bool,
    /// TLS was active when the message was received.
    pub tls: bool,
    /// The authenticated user, if any.
    pub authenticated: Option<String>,
    pub from: ReversePath,
    pub mail_params: MailParams,
    pub recipients: Vec<Recipient>,
    /// Received with BDAT rather than DATA.
    pub chunked: bool,
    /// Octets of the body as written to the sink (before any final CRLF added for BDAT).
    pub size: u64,
}

/// The answer to `Event::CheckRecipient`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptVerdict {
    /// 250 2.1.5
    Accept,
    /// 550 5.1.1, counts as an error (directory harvesting).
    Unknown,
    /// 550 5.7.1, counts as an error: not a local domain and the client may not relay.
    RelayDenied,
    /// 452 4.2.2
    OverQuota,
    /// 451 4.3.0 (the user store is unreachable)
    TempFail,
    /// Any other reply; a 5xx counts as an error.
    Other(Reply),
}

impl RcptVerdict {
    pub fn reply(&self) -> Reply {
        match self {
            RcptVerdict::Accept => Reply::new(250, Some((2, 1, 5)), "Recipient OK"),
            RcptVerdict::Unknown => Reply::new(
                550,
                Some((5, 1, 1)),
                "Recipient address rejected: unknown user",
            ),
            RcptVerdict::RelayDenied => Reply::new(550, Some((5, 7, 1)), "Relaying denied"),
            RcptVerdict::OverQuota => Reply::new(452, Some((4, 2, 2)), "Mailbox full"),
            RcptVerdict::TempFail => {
                Reply::temp_failure("Recipient lookup failed temporarily; try again later")
            }
            RcptVerdict::Other(r) => r.clone(),
        }
    }
}

/// The answer to `Event::CheckSender`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderVerdict {
    /// 250 2.1.0
    Accept,
    /// 553 5.7.1, counts as an error: the address is not the login's (the login as moat-auth
    /// spells it).
    NotOwned(String),
    /// 451 4.3.0 (moat-auth unreachable)
    TempFail,
}

impl SenderVerdict {
    /// The reply to `MAIL FROM:<from>`.
    pub fn reply(&self, from: &ReversePath) -> Reply {
        match self {
            SenderVerdict::Accept => Reply::new(250, Some((2, 1, 0)), "Sender OK"),
            SenderVerdict::NotOwned(login) => Reply::new(
                553,
                Some((5, 7, 1)),
                &format!("{from}: sender address not owned by user {login}"),
            ),
            SenderVerdict::TempFail => {
                Reply::temp_failure("Sender check failed temporarily; try again later")
            }
        }
    }
}

/// The answer to `Event::Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    /// 235 2.7.0
    Ok,
    /// 535 5.7.8, counts as an error.
    Invalid,
    /// 454 4.7.0 (moat-auth unreachable, or throttled)
    TempFail,
}

impl AuthVerdict {
    pub fn reply(self) -> Reply {
        match self {
            AuthVerdict::Ok => Reply::new(235, Some((2, 7, 0)), "Authentication successful"),
            AuthVerdict::Invalid => {
                Reply::new(535, Some((5, 7, 8)), "Authentication credentials invalid")
            }
            AuthVerdict::TempFail => Reply::new(
                454,
                Some((4, 7, 0)),
                "Temporary authentication failure; try again later",
            ),
        }
    }
}

/// The answer to `Event::MessageEnd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageVerdict {
    /// Committed to the queue with this id: 250 2.0.0.
    Queued(String),
    /// Not committed, try later: 451 4.3.0.
    TempFail,
    /// Any other reply (e.g. a 554 from a content filter).
    Other(Reply),
}

impl MessageVerdict {
    pub fn reply(&self) -> Reply {
        match self {
            MessageVerdict::Queued(id) => {
                Reply::new(250, Some((2, 0, 0)), &format!("OK: queued as {id}"))
            }
            MessageVerdict::TempFail => {
                Reply::temp_failure("Message not queued, local error; try again later")
            }
            MessageVerdict::Other(r) => r.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_codes() {
        let code = |r: Reply| (r.code(), r.enhanced());
        assert_eq!(code(RcptVerdict::Accept.reply()), (250, Some((2, 1, 5))));
        assert_eq!(code(RcptVerdict::Unknown.reply()), (550, Some((5, 1, 1))));
        assert_eq!(code(RcptVerdict::OverQuota.reply()), (452, Some((4, 2, 2))));
        assert_eq!(code(RcptVerdict::TempFail.reply()), (451, Some((4, 3, 0))));
        assert_eq!(
            code(RcptVerdict::RelayDenied.reply()),
            (550, Some((5, 7, 1)))
        );
        let from = ReversePath::Null;
        let refused = SenderVerdict::NotOwned("alice@x.test".into()).reply(&from);
        assert_eq!(
            refused.to_string(),
            "553 5.7.1 <>: sender address not owned by user alice@x.test\r\n"
        );
        assert_eq!(
            code(SenderVerdict::TempFail.reply(&from)),
            (451, Some((4, 3, 0)))
        );
        assert_eq!(code(AuthVerdict::Ok.reply()), (235, Some((2, 7, 0))));
        assert_eq!(code(AuthVerdict::Invalid.reply()), (535, Some((5, 7, 8))));
        assert_eq!(code(AuthVerdict::TempFail.reply()), (454, Some((4, 7, 0))));
        let q = MessageVerdict::Queued("ABC123".into()).reply();
        assert_eq!(q.to_string(), "250 2.0.0 OK: queued as ABC123\r\n");
        assert_eq!(
            code(MessageVerdict::TempFail.reply()),
            (451, Some((4, 3, 0)))
        );
    }
}
