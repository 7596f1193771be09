//! Mail transactions of a [`Session`]: MAIL, RCPT, DATA and BDAT, and the end of a body.
//!
//! SECURITY: sequencing is checked before anything is stored (503 for commands out of order);
//! a BDAT chunk whose command is refused is still consumed to the octet, so the client's
//! pipelined chunk data is never read as commands; a body that failed a content check is
//! aborted and never offered to the queue.

use std::io::Write;

use super::{Mode, Pending, Session, Transaction};
use crate::proto::bdat::{BdatBody, Chunk};
use crate::proto::content::{ContentChecker, ContentError, ContentMode};
use crate::proto::data::DataDecoder;
use crate::proto::event::{Envelope, Event, Recipient};
use crate::proto::params::{BodyType, MailParams, RcptParams};
use crate::proto::path::{ForwardPath, ReversePath};
use crate::proto::reply::Reply;

impl Session {
    pub(super) fn mail(&mut self, from: ReversePath, params: MailParams) {
        let Some((_, esmtp)) = self.helo else {
            return self.error(Reply::bad_sequence("Send HELO or EHLO first"));
        };
        if self.txn.is_some() {
            return self.error(Reply::bad_sequence("Nested MAIL command"));
        }
        if self.cfg.require_auth && self.user.is_none() {
            return self.error(self.auth_required());
        }
        if !esmtp && !params.is_empty() {
            return self.error(Reply::new(
                555,
                Some((5, 5, 4)),
                "MAIL parameters need EHLO",
            ));
        }
        if params.body == Some(BodyType::BinaryMime) && !self.cfg.binarymime {
            return self.error(Reply::new(
                555,
                Some((5, 5, 4)),
                "BODY=BINARYMIME not supported",
            ));
        }
        if params
            .size
            .is_some_and(|s| s > self.cfg.limits.message_size)
        {
            return self.reply(Reply::too_big());
        }
        if !from.is_ascii() && !params.smtputf8 {
            return self.error(non_ascii());
        }
        if self.cfg.check_sender && self.user.is_some() {
            self.pending = Some(Pending::Mail(from, params));
            return;
        }
        self.open_transaction(from, params);
    }

    /// MAIL accepted: the transaction opens.
    pub(super) fn open_transaction(&mut self, from: ReversePath, params: MailParams) {
        self.txn = Some(Transaction {
            from,
            params,
            rcpts: Vec::new(),
            bdat: None,
            body_open: false,
        });
        self.reply(Reply::new(250, Some((2, 1, 0)), "Sender OK"));
    }

    pub(super) fn rcpt(&mut self, to: ForwardPath, params: RcptParams) {
        let Some((_, esmtp)) = self.helo else {
            return self.error(Reply::bad_sequence("Send HELO or EHLO first"));
        };
        let Some(txn) = self.txn.as_ref() else {
            return self.error(Reply::bad_sequence("Need MAIL before RCPT"));
        };
        if txn.bdat.is_some() {
            return self.error(Reply::bad_sequence("RCPT not allowed after BDAT"));
        }
        if !esmtp && params != RcptParams::default() {
            return self.error(Reply::new(
                555,
                Some((5, 5, 4)),
                "RCPT parameters need EHLO",
            ));
        }
        if !to.is_ascii() && !txn.params.smtputf8 {
            return self.error(non_ascii());
        }
        if txn.rcpts.len() >= self.cfg.limits.recipients {
            self.excess_rcpts += 1;
            let r = Reply::new(452, Some((4, 5, 3)), "Too many recipients");
            return if self.excess_rcpts > self.cfg.limits.excess_recipients {
                self.error(r)
            } else {
                self.reply(r)
            };
        }
        self.pending = Some(Pending::Rcpt(Recipient { path: to, params }));
    }

    pub(super) fn data(&mut self) {
        let Some(txn) = self.txn.as_ref() else {
            return self.error(Reply::bad_sequence("Need MAIL command"));
        };
        if txn.bdat.is_some() {
            return self.error(Reply::bad_sequence(
                "DATA not allowed after BDAT in the same transaction",
            ));
        }
        if txn.params.body == Some(BodyType::BinaryMime) {
            return self.error(Reply::bad_sequence("BODY=BINARYMIME requires BDAT"));
        }
        if txn.rcpts.is_empty() {
            return self.error(no_recipients());
        }
        let limits = &self.cfg.limits;
        let content = ContentChecker::new(ContentMode::Text, limits.message_size, limits.text_line);
        self.mode = Mode::Data(DataDecoder::new(content));
        self.out.push_back(Event::MessageStart);
        self.reply(Reply::new(354, None, "End data with <CR><LF>.<CR><LF>"));
    }

    pub(super) fn bdat(&mut self, size: u64, last: bool) {
        let limits = &self.cfg.limits;
        let (max, text_line) = (limits.message_size, limits.text_line);
        let refusal = match self.txn.as_mut() {
            None => {
                if self.count_error() {
                    return;
                }
                Some(Reply::bad_sequence("Need MAIL command"))
            }
            Some(t) if t.rcpts.is_empty() => {
                if self.count_error() {
                    return;
                }
                Some(no_recipients())
            }
            Some(t) => {
                let body = t.bdat.get_or_insert_with(|| {
                    let mode = match t.params.body {
                        Some(BodyType::BinaryMime) => ContentMode::Binary,
                        _ => ContentMode::Text,
                    };
                    BdatBody::new(ContentChecker::new(mode, max, text_line), max)
                });
                match body.admit(size) {
                    Ok(()) => {
                        if !t.body_open {
                            t.body_open = true;
                            self.out.push_back(Event::MessageStart);
                        }
                        None
                    }
                    Err(r) => {
                        if std::mem::take(&mut t.body_open) {
                            self.out.push_back(Event::MessageAbort);
                        }
                        Some(r)
                    }
                }
            }
        };
        match refusal {
            Some(r) => self.skip_chunk(size, last, r),
            None => {
                self.mode = Mode::Chunk {
                    chunk: Chunk::new(size, last),
                    refusal: None,
                }
            }
        }
    }

    pub(super) fn skip_chunk(&mut self, size: u64, last: bool, reply: Reply) {
        self.mode = Mode::Chunk {
            chunk: Chunk::new(size, last),
            refusal: Some(reply),
        };
    }

    pub(super) fn chunk_done(&mut self, body: &mut dyn Write) {
        let Mode::Chunk { chunk, refusal } = std::mem::replace(&mut self.mode, Mode::Command)
        else {
            return;
        };
        if let Some(r) = refusal {
            if chunk.is_last() {
                self.reset_transaction();
            }
            return self.reply(r);
        }
        let Some(txn) = self.txn.as_mut() else {
            return;
        };
        let Some(b) = txn.bdat.as_mut() else {
            return;
        };
        if let Some(e) = b.content.error() {
            let r = e.reply();
            b.fail(r.clone());
            if std::mem::take(&mut txn.body_open) {
                self.out.push_back(Event::MessageAbort);
            }
            if chunk.is_last() {
                self.txn = None;
            }
            return self.reply(r);
        }
        if chunk.is_last() {
            let result = b.content.finish(true, body);
            txn.body_open = false;
            return self.end_of_body(result, true);
        }
        self.reply(Reply::new(
            250,
            Some((2, 0, 0)),
            &format!("{} octets received", chunk.size()),
        ));
    }

    /// The body of the transaction ended: ask the driver to commit it, or refuse it.
    pub(super) fn end_of_body(&mut self, result: Result<u64, ContentError>, chunked: bool) {
        let (Some(txn), Some((helo, esmtp))) = (self.txn.as_ref(), self.helo.as_ref()) else {
            self.out.push_back(Event::MessageAbort);
            self.txn = None;
            return self.reply(Reply::temp_failure("Internal error"));
        };
        match result {
            Ok(size) => {
                let envelope = Envelope {
                    helo: helo.clone(),
                    esmtp: *esmtp,
                    tls: self.tls,
                    authenticated: self.user.clone(),
                    from: txn.from.clone(),
                    mail_params: txn.params.clone(),
                    recipients: txn.rcpts.clone(),
                    chunked,
                    size,
                };
                self.pending = Some(Pending::Message(envelope));
            }
            Err(e) => {
                self.out.push_back(Event::MessageAbort);
                self.txn = None;
                self.reply(e.reply());
            }
        }
    }
}

fn non_ascii() -> Reply {
    Reply::new(
        553,
        Some((5, 6, 7)),
        "Non-ASCII address requires the SMTPUTF8 parameter",
    )
}

fn no_recipients() -> Reply {
    Reply::new(554, Some((5, 5, 1)), "No valid recipients")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{codes, events, session};
    use crate::proto::event::{AuthVerdict, Event, RcptVerdict, SenderVerdict};
    use crate::proto::path::ReversePath;
    use crate::proto::{Session, SessionConfig};

    /// A submission session with the sender check on, logged in as bob.
    fn checked_session() -> Session {
        let mut cfg = SessionConfig::submission("mx.test");
        cfg.check_sender = true;
        let mut s = Session::new(cfg, true);
        // "\0bob\0pw"
        events(&mut s, "EHLO c\r\nAUTH PLAIN AGJvYgBwdw==\r\n");
        s.auth_verdict(AuthVerdict::Ok);
        events(&mut s, "");
        s
    }

    #[test]
    fn sender_check_holds_the_transaction_until_its_verdict() {
        let mut s = checked_session();
        let ev = events(&mut s, "MAIL FROM:<bob@x.test>\r\nRCPT TO:<c@d>\r\n");
        assert!(
            matches!(ev.last(), Some(Event::CheckSender(ReversePath::Path(p))) if p.to_string() == "bob@x.test")
        );
        // Pipelined RCPT waits; no transaction is open yet.
        assert!(s.sender().is_none());
        assert!(matches!(
            s.next_event(&mut Vec::new()),
            Event::CheckSender(_)
        ));
        s.sender_verdict(SenderVerdict::Accept);
        let ev = events(&mut s, "");
        assert_eq!(codes(&ev), vec![250]);
        assert!(matches!(ev.last(), Some(Event::CheckRecipient(_))));
        assert!(s.sender().is_some());
    }

    #[test]
    fn refused_sender_is_553_and_an_error_and_opens_nothing() {
        let mut s = checked_session();
        let ev = events(&mut s, "MAIL FROM:<>\r\nRCPT TO:<c@d>\r\n");
        assert!(matches!(
            ev.last(),
            Some(Event::CheckSender(ReversePath::Null))
        ));
        s.sender_verdict(SenderVerdict::NotOwned("bob@x.test".into()));
        let ev = events(&mut s, "");
        let Some(Event::Reply(r)) = ev.first() else {
            panic!("no reply: {ev:?}");
        };
        assert_eq!(
            r.to_string(),
            "553 5.7.1 <>: sender address not owned by user bob@x.test\r\n"
        );
        assert_eq!(codes(&ev), vec![553, 503], "the pipelined RCPT has no MAIL");
        assert_eq!(s.errors(), 2);
        s.receive(b"MAIL FROM:<bob@x.test>\r\n");
        assert!(matches!(
            s.next_event(&mut Vec::new()),
            Event::CheckSender(_)
        ));
        s.sender_verdict(SenderVerdict::TempFail);
        assert_eq!(codes(&events(&mut s, "")), vec![451]);
        assert!(s.sender().is_none());
        assert_eq!(
            s.errors(),
            2,
            "a temporary failure is not the client's error"
        );
    }

    #[test]
    fn no_sender_check_without_login_or_when_off() {
        // Port 25: nobody logged in, nothing to check.
        let mut cfg = SessionConfig::new("mx.test");
        cfg.check_sender = true;
        let mut s = Session::new(cfg, false);
        assert_eq!(
            codes(&events(&mut s, "EHLO c\r\nMAIL FROM:<x@y>\r\n")),
            vec![250, 250]
        );
        // Logged in, the check off (sender_login_match = false).
        let mut s = Session::new(SessionConfig::submission("mx.test"), true);
        events(&mut s, "EHLO c\r\nAUTH PLAIN AGJvYgBwdw==\r\n");
        s.auth_verdict(AuthVerdict::Ok);
        assert_eq!(
            codes(&events(&mut s, "MAIL FROM:<x@y>\r\n")),
            vec![235, 250]
        );
    }

    #[test]
    fn size_parameter_refusal_is_not_an_error() {
        let mut s = session();
        let ev = events(&mut s, "EHLO c\r\nMAIL FROM:<a@b> SIZE=999999999999\r\n");
        assert_eq!(codes(&ev), vec![250, 552]);
        assert_eq!(s.errors(), 0);
        assert!(s.sender().is_none());
    }

    #[test]
    fn bdat_opens_once_and_data_cannot_follow() {
        let mut s = session();
        events(&mut s, "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
        s.recipient_verdict(RcptVerdict::Accept);
        let ev = events(&mut s, "BDAT 1\r\naBDAT 1\r\nbDATA\r\n");
        let starts = ev
            .iter()
            .filter(|e| matches!(e, Event::MessageStart))
            .count();
        assert_eq!(starts, 1);
        assert_eq!(codes(&ev), vec![250, 250, 250, 503]);
        let ev = events(&mut s, "RSET\r\n");
        assert!(matches!(ev[0], Event::MessageAbort));
    }
}
