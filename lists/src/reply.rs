//! The manager's own messages (help, later confirmations and welcomes): composed here and
//! injected into the queue from `<list>-return@<domain>` (ezmlm's envelope sender for command
//! replies, so a bounce comes back to the list's bounce address, not to a person).
//!
//! SECURITY: every value put into a header is an address already checked by
//! `request::check_address` (no controls, so no line breaks) or text of our own; the reply is
//! marked `Auto-Submitted: auto-replied` (RFC 3834) so other robots do not answer it.

use std::path::Path;

use moat_common::client::queue::{Injection, Origin};
use moat_common::date;
use moat_common::wire::Status;

/// One reply to send.
pub struct Reply<'a> {
    /// The list's posting address.
    pub list: &'a str,
    /// The `From:` address (a command address of the list).
    pub from: &'a str,
    /// The recipient (the request's envelope sender).
    pub to: &'a str,
    /// Where a reply should go (a confirmation address), if not to `from`.
    pub reply_to: Option<&'a str>,
    pub subject: &'a str,
    /// Plain text, `\n` line ends.
    pub body: &'a str,
    /// For the Message-ID: the queue id of the message being answered.
    pub queue_id: &'a str,
    pub hostname: &'a str,
}

impl Reply<'_> {
    /// The message, CRLF line ends.
    pub fn compose(&self, now: u64) -> String {
        let (local, domain) = self.list.rsplit_once('@').unwrap_or((self.list, ""));
        let mut m = String::new();
        let mut line = |l: &str| {
            m.push_str(l);
            m.push_str("\r\n");
        };
        line(&format!("From: {}", self.from));
        line(&format!("To: {}", self.to));
        if let Some(reply_to) = self.reply_to {
            line(&format!("Reply-To: {reply_to}"));
        }
        line(&format!("Subject: {}", self.subject));
        line(&format!("Date: {}", date::rfc5322(now)));
        line(&format!(
            "Message-ID: <{now}.{}.lists@{}>",
            self.queue_id, self.hostname
        ));
        line("Auto-Submitted: auto-replied");
        line(&format!("List-Id: <{local}.{domain}>"));
        line(&format!("List-Help: <mailto:{local}-help@{domain}>"));
        line("MIME-Version: 1.0");
        line("Content-Type: text/plain; charset=utf-8");
        line("Content-Transfer-Encoding: 8bit");
        line("");
        for l in self.body.lines() {
            line(l);
        }
        m
    }

    /// The envelope sender: `<list>-return@<domain>`.
    pub fn envelope_sender(&self) -> String {
        let (local, domain) = self.list.rsplit_once('@').unwrap_or((self.list, ""));
        format!("{local}-return@{domain}")
    }

    /// Composes the reply and commits it to the queue (`Ok(K [new queue id])` once on disk).
    pub async fn send(&self, queue_socket: &Path) -> std::io::Result<Status> {
        let message = self.compose(date::now());
        let mut injection =
            Injection::open(queue_socket, Origin::Sendmail, "moat-lists reply").await?;
        injection.write(message.as_bytes()).await?;
        injection
            .finish(&self.envelope_sender(), &[self.to.to_string()])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_with_crlf_and_list_headers() {
        let r = Reply {
            list: "dev@example.test",
            from: "dev-help@example.test",
            to: "bob@far.example",
            reply_to: None,
            subject: "help for dev@example.test",
            body: "line one\nline two\n",
            queue_id: "q1",
            hostname: "mx.example.test",
        };
        let m = r.compose(0);
        assert!(m.starts_with("From: dev-help@example.test\r\nTo: bob@far.example\r\n"));
        assert!(m.contains("\r\nList-Id: <dev.example.test>\r\n"));
        assert!(m.contains("\r\nAuto-Submitted: auto-replied\r\n"));
        assert!(m.ends_with("\r\n\r\nline one\r\nline two\r\n"));
        assert!(!m.replace("\r\n", "").contains('\n'));
        assert_eq!(r.envelope_sender(), "dev-return@example.test");
    }
}
