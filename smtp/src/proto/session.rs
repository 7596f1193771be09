//! The SMTP server session as a state machine without I/O (RFC 5321 with PIPELINING, SIZE,
//! 8BITMIME, SMTPUTF8, CHUNKING, ENHANCEDSTATUSCODES, DSN, STARTTLS, AUTH).
//!
//! The driver owns the socket. It calls [`Session::receive`] with the bytes it read and then
//! [`Session::next_event`] until it gets [`Event::NeedInput`], doing what each event says:
//! write a reply (batched), answer a policy question with a verdict method, open/commit/abort
//! a queue injection, start TLS, or close. Message bytes go to the sink passed to
//! `next_event`, a piece at a time; the session never holds a whole message.
//!
//! SECURITY:
//! - Input is processed strictly in order, one command at a time; while a verdict is pending
//!   nothing more is read, so pipelined commands can never overtake a policy decision.
//! - STARTTLS throws away every byte the client sent after the STARTTLS line and everything it
//!   learnt from the client (EHLO, AUTH, transaction), as RFC 3207 4.2 requires; the count of
//!   discarded bytes is kept for the log ([`Session::discarded_after_starttls`]).
//! - Bounded state: one command line (limits in [`Limits`]), the recipients of one message
//!   (100 by default), and no message body. Errors, excess recipients and junk commands are
//!   counted; past the limits the session answers 421 and closes.
//! - AUTH is offered and accepted only under TLS unless the listener says otherwise.
//!
//! [`Limits`]: super::config::Limits

mod secure;
mod transaction;

use std::collections::VecDeque;
use std::io::Write;

use super::auth::Credentials;
use super::bdat::{BdatBody, Chunk};
use super::command::{self, Command, ParseError};
use super::config::SessionConfig;
use super::data::DataDecoder;
use super::event::{
    AuthVerdict, Envelope, Event, MessageVerdict, RcptVerdict, Recipient, SenderVerdict,
};
use super::line::{LineEvent, LineReader};
use super::params::MailParams;
use super::path::{Domain, ReversePath};
use super::reply::Reply;

/// Where the session is, for the driver's read timeouts (RFC 5321 4.5.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a command (5 minutes).
    Command,
    /// Reading a DATA body or a BDAT chunk (3 minutes per read).
    Data,
    /// Waiting for an AUTH continuation line.
    Auth,
    /// Waiting for the driver to finish the TLS handshake.
    Tls,
    /// Closed: nothing more will be read.
    Closed,
}

#[derive(Debug)]
enum Mode {
    Command,
    Data(DataDecoder),
    /// A BDAT chunk: stored when `refusal` is None, skipped and answered with it otherwise.
    Chunk {
        chunk: Chunk,
        refusal: Option<Reply>,
    },
    AuthPlain,
    AuthLoginUser,
    AuthLoginPass(String),
    AwaitingTls,
    Closed,
}

#[derive(Debug, Clone, Copy)]
enum BadLine {
    TooLong,
    BareNewline,
}

#[derive(Debug)]
enum Pending {
    /// MAIL, waiting for `sender_verdict` before the transaction opens.
    Mail(ReversePath, MailParams),
    Rcpt(Recipient),
    Auth(Credentials),
    Message(Envelope),
}

impl Pending {
    fn event(&self) -> Event {
        match self {
            Pending::Mail(from, _) => Event::CheckSender(from.clone()),
            Pending::Rcpt(r) => Event::CheckRecipient(r.clone()),
            Pending::Auth(c) => Event::Authenticate(c.clone()),
            Pending::Message(e) => Event::MessageEnd(e.clone()),
        }
    }
}

#[derive(Debug)]
struct Transaction {
    from: ReversePath,
    params: MailParams,
    rcpts: Vec<Recipient>,
    /// Present from the first BDAT of the transaction.
    bdat: Option<BdatBody>,
    /// `MessageStart` was sent and neither `MessageEnd` nor `MessageAbort` yet.
    body_open: bool,
}

/// One SMTP server session. See the module documentation for how a driver uses it.
pub struct Session {
    cfg: SessionConfig,
    input: Vec<u8>,
    pos: usize,
    lines: LineReader,
    mode: Mode,
    out: VecDeque<Event>,
    pending: Option<Pending>,
    tls: bool,
    helo: Option<(Domain, bool)>,
    user: Option<String>,
    txn: Option<Transaction>,
    errors: u32,
    junk: u32,
    excess_rcpts: u32,
    discarded: usize,
}

impl std::fmt::Debug for Session {
    /// Leaves out the input buffer: it may hold an AUTH line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("phase", &self.phase())
            .field("buffered", &self.buffered_len())
            .field("tls", &self.tls)
            .field("helo", &self.helo)
            .field("user", &self.user)
            .field("txn", &self.txn)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

/// Input kept after compaction is at most this large in capacity once drained.
const SPARE_CAPACITY: usize = 64 * 1024;

impl Session {
    /// A session for a new connection. `tls` is true when TLS is already active (port 465).
    /// The driver first sends [`Session::greeting`].
    pub fn new(cfg: SessionConfig, tls: bool) -> Session {
        let lines = LineReader::new(cfg.limits.extended_command_line);
        Session {
            cfg,
            input: Vec::new(),
            pos: 0,
            lines,
            mode: Mode::Command,
            out: VecDeque::new(),
            pending: None,
            tls,
            helo: None,
            user: None,
            txn: None,
            errors: 0,
            junk: 0,
            excess_rcpts: 0,
            discarded: 0,
        }
    }

    /// The 220 greeting.
    pub fn greeting(&self) -> Reply {
        Reply::greeting(&self.cfg.hostname)
    }

    /// Hands the session bytes read from the client. Read again only after `next_event`
    /// returned `NeedInput`, so the buffer holds at most one read plus one partial line.
    pub fn receive(&mut self, bytes: &[u8]) {
        match self.mode {
            Mode::Closed => return,
            Mode::AwaitingTls => {
                self.discarded += bytes.len();
                return;
            }
            _ => {}
        }
        if self.pos == self.input.len() {
            self.input.clear();
            self.input.shrink_to(SPARE_CAPACITY);
            self.pos = 0;
        } else if self.pos > 0 && self.pos >= self.input.len() / 2 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The next thing to do. Message bytes, if any, are written to `body` during the call.
    /// An event that needs a verdict is returned again until the verdict is given.
    pub fn next_event(&mut self, body: &mut dyn Write) -> Event {
        loop {
            if let Some(e) = self.out.pop_front() {
                return e;
            }
            if let Some(p) = &self.pending {
                return p.event();
            }
            match self.mode {
                Mode::Closed => return Event::Close,
                Mode::AwaitingTls => return Event::StartTls,
                _ => {}
            }
            if !self.step(body) {
                return Event::NeedInput;
            }
        }
    }

    /// The answer to [`Event::CheckRecipient`].
    pub fn recipient_verdict(&mut self, verdict: RcptVerdict) {
        let Some(Pending::Rcpt(rcpt)) = self.pending.take_if(|p| matches!(p, Pending::Rcpt(_)))
        else {
            debug_assert!(false, "recipient_verdict without CheckRecipient");
            return;
        };
        let reply = verdict.reply();
        match verdict {
            RcptVerdict::Accept => {
                if let Some(t) = self.txn.as_mut() {
                    t.rcpts.push(rcpt);
                }
                self.reply(reply);
            }
            RcptVerdict::Unknown | RcptVerdict::RelayDenied => self.error(reply),
            RcptVerdict::Other(r) if r.is_permanent() => self.error(reply),
            RcptVerdict::OverQuota | RcptVerdict::TempFail | RcptVerdict::Other(_) => {
                self.reply(reply)
            }
        }
    }

    /// The answer to [`Event::CheckSender`].
    pub fn sender_verdict(&mut self, verdict: SenderVerdict) {
        let Some(Pending::Mail(from, params)) =
            self.pending.take_if(|p| matches!(p, Pending::Mail(..)))
        else {
            debug_assert!(false, "sender_verdict without CheckSender");
            return;
        };
        let reply = verdict.reply(&from);
        match verdict {
            SenderVerdict::Accept => self.open_transaction(from, params),
            SenderVerdict::NotOwned(_) => self.error(reply),
            SenderVerdict::TempFail => self.reply(reply),
        }
    }

    /// The answer to [`Event::Authenticate`].
    pub fn auth_verdict(&mut self, verdict: AuthVerdict) {
        let Some(Pending::Auth(creds)) = self.pending.take_if(|p| matches!(p, Pending::Auth(_)))
        else {
            debug_assert!(false, "auth_verdict without Authenticate");
            return;
        };
        match verdict {
            AuthVerdict::Ok => {
                self.user = Some(creds.username.clone());
                self.reply(verdict.reply());
            }
            AuthVerdict::Invalid => self.error(verdict.reply()),
            AuthVerdict::TempFail => self.reply(verdict.reply()),
        }
    }

    /// The answer to [`Event::MessageEnd`]. The transaction ends whatever the verdict.
    pub fn message_verdict(&mut self, verdict: MessageVerdict) {
        if self
            .pending
            .take_if(|p| matches!(p, Pending::Message(_)))
            .is_none()
        {
            debug_assert!(false, "message_verdict without MessageEnd");
            return;
        }
        self.txn = None;
        if matches!(verdict, MessageVerdict::Queued(_)) {
            // As Postfix does: a client that delivers mail may RSET and NOOP between messages.
            self.junk = 0;
        }
        self.reply(verdict.reply());
    }

    /// The TLS handshake after [`Event::StartTls`] succeeded: the session starts over as
    /// RFC 3207 4.2 requires (the client must EHLO again).
    pub fn tls_established(&mut self) {
        if !matches!(self.mode, Mode::AwaitingTls) {
            debug_assert!(false, "tls_established without StartTls");
            return;
        }
        self.tls = true;
        self.helo = None;
        self.user = None;
        self.txn = None;
        self.mode = Mode::Command;
        self.lines.reset();
        self.lines.set_limit(self.cfg.limits.extended_command_line);
    }

    // ---- accessors ----------------------------------------------------------------------

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    pub fn phase(&self) -> Phase {
        match self.mode {
            Mode::Command => Phase::Command,
            Mode::Data(_) | Mode::Chunk { .. } => Phase::Data,
            Mode::AuthPlain | Mode::AuthLoginUser | Mode::AuthLoginPass(_) => Phase::Auth,
            Mode::AwaitingTls => Phase::Tls,
            Mode::Closed => Phase::Closed,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.mode, Mode::Closed)
    }

    pub fn tls_active(&self) -> bool {
        self.tls
    }

    /// The user that authenticated in this session.
    pub fn authenticated(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The HELO/EHLO argument and whether it was EHLO.
    pub fn helo(&self) -> Option<(&Domain, bool)> {
        self.helo.as_ref().map(|(d, e)| (d, *e))
    }

    /// The sender of the open transaction.
    pub fn sender(&self) -> Option<&ReversePath> {
        self.txn.as_ref().map(|t| &t.from)
    }

    /// Recipients accepted so far in the open transaction.
    pub fn recipients(&self) -> &[Recipient] {
        self.txn.as_ref().map_or(&[], |t| &t.rcpts)
    }

    /// Plaintext octets the client sent after STARTTLS, thrown away (log this if non-zero).
    pub fn discarded_after_starttls(&self) -> usize {
        self.discarded
    }

    /// Octets received and not yet processed.
    pub fn buffered_len(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Errors counted so far.
    pub fn errors(&self) -> u32 {
        self.errors
    }

    // ---- input processing ---------------------------------------------------------------

    /// Processes one unit of input. False when nothing could be done without more input.
    fn step(&mut self, body: &mut dyn Write) -> bool {
        match &mut self.mode {
            Mode::Data(dec) => {
                if self.pos == self.input.len() {
                    return false;
                }
                let n = dec.feed(&self.input[self.pos..], body);
                self.pos += n;
                if dec.is_done() {
                    let result = dec.finish(body);
                    self.mode = Mode::Command;
                    self.end_of_body(result, false);
                }
                true
            }
            Mode::Chunk { chunk, refusal } => {
                let content = match (refusal.is_none(), self.txn.as_mut()) {
                    (true, Some(t)) => t.bdat.as_mut().map(|b| &mut b.content),
                    _ => None,
                };
                let n = chunk.feed(&self.input[self.pos..], content, body);
                self.pos += n;
                if chunk.is_complete() {
                    self.chunk_done(body);
                    return true;
                }
                n > 0
            }
            Mode::AwaitingTls | Mode::Closed => false,
            Mode::Command | Mode::AuthPlain | Mode::AuthLoginUser | Mode::AuthLoginPass(_) => {
                let (n, event) = self.lines.read(&self.input[self.pos..]);
                // The line is copied out (one line at most) so the buffer can move on.
                let got = match event {
                    LineEvent::Line(l) => Ok(l.to_vec()),
                    LineEvent::TooLong => Err(BadLine::TooLong),
                    LineEvent::BareNewline => Err(BadLine::BareNewline),
                    LineEvent::NeedMore => {
                        self.pos += n;
                        return n > 0;
                    }
                };
                self.pos += n;
                match got {
                    Ok(line) => self.line(&line),
                    Err(bad) => self.bad_line(bad),
                }
                true
            }
        }
    }

    fn line(&mut self, line: &[u8]) {
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::AuthPlain => self.auth_response(line, |s, text| s.auth_plain(text)),
            Mode::AuthLoginUser => self.auth_response(line, |s, text| s.login_user(text)),
            Mode::AuthLoginPass(user) => {
                self.auth_response(line, move |s, text| s.login_password(user, text))
            }
            other => {
                self.mode = other;
                self.command_line(line);
            }
        }
    }

    fn bad_line(&mut self, bad: BadLine) {
        let in_auth = matches!(
            self.mode,
            Mode::AuthPlain | Mode::AuthLoginUser | Mode::AuthLoginPass(_)
        );
        if in_auth {
            self.mode = Mode::Command;
            self.lines.set_limit(self.cfg.limits.extended_command_line);
        }
        let reply = match (bad, in_auth) {
            (BadLine::TooLong, true) => Reply::new(
                500,
                Some((5, 5, 6)),
                "Authentication exchange line is too long",
            ),
            (BadLine::TooLong, false) => Reply::line_too_long(),
            (BadLine::BareNewline, _) => Reply::new(
                500,
                Some((5, 5, 2)),
                "Bare CR or LF in command line; lines must end with CRLF",
            ),
        };
        self.error(reply);
    }

    fn command_line(&mut self, line: &[u8]) {
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(e) => return self.parse_error(e),
        };
        let extended = matches!(
            cmd,
            Command::Mail { .. } | Command::Rcpt { .. } | Command::Bdat { .. }
        );
        if !extended && line.len() + 2 > self.cfg.limits.command_line {
            return self.error(Reply::line_too_long());
        }
        match cmd {
            Command::Helo(d) => self.hello(d, false),
            Command::Ehlo(d) => self.hello(d, true),
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, params } => self.rcpt(to, params),
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => {
                self.reset_transaction();
                self.junk(Reply::ok());
            }
            Command::Noop => self.junk(Reply::ok()),
            Command::Help => self.junk(Reply::new(
                214,
                Some((2, 0, 0)),
                "See RFC 5321; commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP",
            )),
            Command::Vrfy(_) => self.junk(Reply::new(
                252,
                Some((2, 5, 0)),
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Command::Quit => self.close(Reply::bye(&self.cfg.hostname)),
            Command::StartTls => self.starttls(),
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial),
        }
    }

    fn parse_error(&mut self, e: ParseError) {
        match e {
            ParseError::ForeignProtocol | ParseError::BadChunkSize => self.close(e.reply()),
            ParseError::BadChunkSyntax(size) => {
                if !self.count_error() {
                    self.skip_chunk(size, false, e.reply());
                }
            }
            _ => self.error(e.reply()),
        }
    }

    // ---- commands -----------------------------------------------------------------------

    fn hello(&mut self, domain: Domain, esmtp: bool) {
        self.reset_transaction();
        self.helo = Some((domain, esmtp));
        let host = self.cfg.hostname.clone();
        if !esmtp {
            return self.reply(Reply::new(250, None, &host));
        }
        let mut r = Reply::new(250, None, &host)
            .with_line("PIPELINING")
            .with_line(&format!("SIZE {}", self.cfg.limits.message_size))
            .with_line("8BITMIME")
            .with_line("SMTPUTF8")
            .with_line("CHUNKING");
        if self.cfg.binarymime {
            r = r.with_line("BINARYMIME");
        }
        r = r.with_line("ENHANCEDSTATUSCODES").with_line("DSN");
        if self.cfg.starttls && !self.tls {
            r = r.with_line("STARTTLS");
        }
        if self.auth_offered() {
            r = r.with_line("AUTH PLAIN LOGIN");
        }
        self.reply(r);
    }

    fn auth_offered(&self) -> bool {
        self.cfg.auth && (self.tls || self.cfg.plaintext_auth)
    }

    /// 530 when the listener wants AUTH first, worded for the case at hand.
    fn auth_required(&self) -> Reply {
        if !self.auth_offered() && self.cfg.starttls && !self.tls {
            Reply::new(530, Some((5, 7, 0)), "Must issue a STARTTLS command first")
        } else {
            Reply::new(530, Some((5, 7, 0)), "Authentication required")
        }
    }

    // ---- helpers ------------------------------------------------------------------------

    fn reply(&mut self, reply: Reply) {
        self.out.push_back(Event::Reply(reply));
    }

    /// Replies with an error, or closes with 421 if that was one error too many.
    fn error(&mut self, reply: Reply) {
        if !self.count_error() {
            self.reply(reply);
        }
    }

    /// Counts an error; true (and the session is closing) when the limit is reached.
    fn count_error(&mut self) -> bool {
        self.errors += 1;
        if self.errors >= self.cfg.limits.errors {
            self.close(Reply::too_many_errors());
            return true;
        }
        false
    }

    /// NOOP, RSET, VRFY, HELP: free up to a limit, then each one counts as an error.
    fn junk(&mut self, reply: Reply) {
        self.junk += 1;
        if self.junk > self.cfg.limits.junk_commands {
            self.error(reply);
        } else {
            self.reply(reply);
        }
    }

    fn reset_transaction(&mut self) {
        if let Some(t) = self.txn.take()
            && t.body_open
        {
            self.out.push_back(Event::MessageAbort);
        }
    }

    fn close(&mut self, reply: Reply) {
        self.reset_transaction();
        self.pending = None;
        self.reply(reply);
        self.out.push_back(Event::Close);
        self.mode = Mode::Closed;
        self.input.clear();
        self.pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::event::RcptVerdict;

    pub(super) fn session() -> Session {
        Session::new(SessionConfig::new("mx.test"), false)
    }

    /// Feeds `input` and collects events up to NeedInput, or up to a question or the end.
    pub(super) fn events(s: &mut Session, input: &str) -> Vec<Event> {
        s.receive(input.as_bytes());
        let mut out = Vec::new();
        loop {
            match s.next_event(&mut Vec::new()) {
                Event::NeedInput => return out,
                e @ (Event::CheckRecipient(_)
                | Event::CheckSender(_)
                | Event::Authenticate(_)
                | Event::MessageEnd(_)
                | Event::Close
                | Event::StartTls) => {
                    out.push(e);
                    return out;
                }
                e => out.push(e),
            }
        }
    }

    pub(super) fn codes(events: &[Event]) -> Vec<u16> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Reply(r) => Some(r.code()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn pending_verdict_blocks_pipelined_commands() {
        let mut s = session();
        let ev = events(
            &mut s,
            "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n",
        );
        assert_eq!(codes(&ev), vec![250, 250]);
        assert!(matches!(ev.last(), Some(Event::CheckRecipient(_))));
        // Asked again until answered; nothing behind it has been processed.
        assert!(matches!(
            s.next_event(&mut Vec::new()),
            Event::CheckRecipient(_)
        ));
        assert!(s.buffered_len() > 0);
        s.recipient_verdict(RcptVerdict::Accept);
        assert!(matches!(s.next_event(&mut Vec::new()), Event::Reply(r) if r.code() == 250));
        assert!(matches!(
            s.next_event(&mut Vec::new()),
            Event::CheckRecipient(_)
        ));
        s.recipient_verdict(RcptVerdict::Unknown);
        let ev = events(&mut s, "");
        assert_eq!(codes(&ev), vec![550, 354]);
        assert_eq!(s.phase(), Phase::Data);
        assert_eq!(s.recipients().len(), 1);
    }

    #[test]
    fn input_buffer_is_compacted() {
        let mut s = session();
        events(&mut s, "EHLO c\r\n");
        for _ in 0..1000 {
            events(&mut s, "NOOP\r\nNO");
            events(&mut s, "OP\r\n");
        }
        assert_eq!(s.buffered_len(), 0);
        assert!(s.input.capacity() <= SPARE_CAPACITY);
    }

    #[test]
    fn closed_session_ignores_input() {
        let mut s = session();
        let ev = events(&mut s, "QUIT\r\nNOOP\r\n");
        assert_eq!(codes(&ev), vec![221]);
        assert!(matches!(ev.last(), Some(Event::Close)));
        s.receive(b"NOOP\r\n");
        assert_eq!(s.buffered_len(), 0);
        assert!(matches!(s.next_event(&mut Vec::new()), Event::Close));
        assert_eq!(s.phase(), Phase::Closed);
    }

    #[test]
    fn starttls_event_repeats_until_established() {
        let mut s = session();
        let ev = events(&mut s, "EHLO c\r\nSTARTTLS\r\nNOOP\r\n");
        assert_eq!(codes(&ev), vec![250, 220]);
        assert!(matches!(s.next_event(&mut Vec::new()), Event::StartTls));
        assert_eq!(s.discarded_after_starttls(), 6);
        s.tls_established();
        assert!(s.tls_active() && s.helo().is_none());
        assert_eq!(s.phase(), Phase::Command);
    }

    #[test]
    fn debug_output_leaves_out_the_input() {
        let mut s = session();
        s.receive(b"AUTH PLAIN AGJvYgBzM2NyZXQ=\r\n");
        assert!(!format!("{s:?}").contains("AGJvYgBzM2NyZXQ"));
    }
}
