//! The warning probe (ezmlm's `ezmlm-warn`): when a member's bounces reach the threshold, one
//! short message tells them that list mail to them was returned. It goes with the envelope
//! sender `list-return-probe-user=host@domain` (built here, not by the queue's VERP), so if it
//! bounces too the bounce names the member and `bounce.rs` removes them.
//!
//! SECURITY: every value put into the header is the list's address or a member address that
//! passed `request::check_address` (no controls, so no line breaks); the message is marked
//! `Auto-Submitted: auto-generated` (RFC 3834) so robots do not answer it.

use std::path::Path;

use moat_common::client::queue::{Injection, Origin};
use moat_common::date;
use moat_common::wire::Status;

use crate::command::encode_address;

/// One probe to send.
pub struct Probe<'a> {
    /// The list's posting address, `local@domain`.
    pub list: &'a str,
    /// The member the probe is for.
    pub member: &'a str,
    /// Bounces counted when the probe went.
    pub bounces: u64,
    /// For the Message-ID: the queue id of the bounce that triggered it.
    pub queue_id: &'a str,
    pub hostname: &'a str,
}

impl Probe<'_> {
    fn parts(&self) -> (&str, &str) {
        self.list.rsplit_once('@').unwrap_or((self.list, ""))
    }

    /// The envelope sender: `list-return-probe-user=host@domain`.
    pub fn envelope_sender(&self) -> String {
        let (local, domain) = self.parts();
        format!(
            "{local}-return-probe-{}@{domain}",
            encode_address(self.member)
        )
    }

    /// The message, CRLF line ends.
    pub fn compose(&self, now: u64) -> String {
        let (local, domain) = self.parts();
        let (list, member) = (self.list, self.member);
        let mut m = String::new();
        let mut line = |l: &str| {
            m.push_str(l);
            m.push_str("\r\n");
        };
        line(&format!("From: {local}-help@{domain}"));
        line(&format!("To: {member}"));
        line(&format!("Subject: Mail from {list} to you bounced"));
        line(&format!("Date: {}", date::rfc5322(now)));
        line(&format!(
            "Message-ID: <{now}.{}.probe@{}>",
            self.queue_id, self.hostname
        ));
        line("Auto-Submitted: auto-generated");
        line(&format!("List-Id: <{local}.{domain}>"));
        line(&format!("List-Help: <mailto:{local}-help@{domain}>"));
        line(&format!(
            "List-Unsubscribe: <mailto:{local}-unsubscribe@{domain}>"
        ));
        line("MIME-Version: 1.0");
        line("Content-Type: text/plain; charset=utf-8");
        line("Content-Transfer-Encoding: 8bit");
        line("");
        let body = format!(
            "This is the list manager for <{list}>.\n\
             \n\
             Messages from the list to your address <{member}> were returned to us\n\
             as undeliverable ({} time(s) recently).\n\
             \n\
             This message is a probe. If it is returned too, your address will be\n\
             removed from the list. If you can read it, nothing needs to be done:\n\
             your subscription continues.\n\
             \n\
             To leave the list, send an empty message to <{local}-unsubscribe@{domain}>.\n\
             For help, write to <{local}-help@{domain}>.\n",
            self.bounces
        );
        for l in body.lines() {
            line(l);
        }
        m
    }

    /// Composes the probe and commits it to the queue (`Ok(K [new queue id])` once on disk).
    pub async fn send(&self, queue_socket: &Path) -> std::io::Result<Status> {
        let message = self.compose(date::now());
        let mut injection =
            Injection::open(queue_socket, Origin::Sendmail, "moat-lists probe").await?;
        injection.write(message.as_bytes()).await?;
        injection
            .finish(&self.envelope_sender(), &[self.member.to_string()])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_with_its_own_return_address() {
        let p = Probe {
            list: "dev@example.test",
            member: "bob@far.example",
            bounces: 3,
            queue_id: "q1",
            hostname: "mx.example.test",
        };
        assert_eq!(
            p.envelope_sender(),
            "dev-return-probe-bob=far.example@example.test"
        );
        let m = p.compose(0);
        assert!(m.starts_with("From: dev-help@example.test\r\nTo: bob@far.example\r\n"));
        assert!(m.contains("\r\nAuto-Submitted: auto-generated\r\n"));
        assert!(m.contains("\r\nList-Id: <dev.example.test>\r\n"));
        assert!(m.contains("(3 time(s) recently)"));
        assert!(!m.replace("\r\n", "").contains('\n'));
    }
}
