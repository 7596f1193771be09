//! A synchronous driver for `moat_smtp::proto::Session`, as `moat-smtpd` will drive it but
//! without sockets: bytes in, replies and queued messages out, with simple policies.
#![allow(dead_code)]

use moat_smtp::proto::{
    AuthVerdict, Credentials, Envelope, Event, MessageVerdict, RcptVerdict, Recipient, Reply,
    SenderVerdict, Session, SessionConfig,
};

pub type RcptPolicy = Box<dyn FnMut(&Recipient) -> RcptVerdict>;
pub type AuthPolicy = Box<dyn FnMut(&Credentials) -> AuthVerdict>;

/// A message the harness "queued".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub envelope: Envelope,
    pub body: Vec<u8>,
}

pub struct Harness {
    pub session: Session,
    pub rcpt_policy: RcptPolicy,
    pub auth_policy: AuthPolicy,
    /// What the next MessageEnd is answered with (None: queued as Q<n>).
    pub message_verdict: Option<MessageVerdict>,
    /// Every reply, in order.
    pub replies: Vec<Reply>,
    /// Every reply's wire bytes, in order.
    pub wire: Vec<u8>,
    pub queued: Vec<Queued>,
    pub aborted: usize,
    pub started: usize,
    pub starttls: usize,
    pub closed: bool,
    /// Verdict requests seen (CheckRecipient, Authenticate, MessageEnd).
    pub rcpt_checks: usize,
    pub auth_checks: Vec<Credentials>,
    /// Largest number of unprocessed octets the session held after a drain.
    pub max_buffered: usize,
    open: bool,
    body: Vec<u8>,
    sink: Vec<u8>,
}

/// The port-25 defaults for `mx.example.test`.
pub fn config() -> SessionConfig {
    SessionConfig::new("mx.example.test")
}

impl Harness {
    /// Every recipient accepted, every login refused.
    pub fn new(cfg: SessionConfig, tls: bool) -> Harness {
        Harness {
            session: Session::new(cfg, tls),
            rcpt_policy: Box::new(|_| RcptVerdict::Accept),
            auth_policy: Box::new(|c| {
                if c.username == "bob@example.test" && c.password.expose() == "s3cret" {
                    AuthVerdict::Ok
                } else {
                    AuthVerdict::Invalid
                }
            }),
            message_verdict: None,
            replies: Vec::new(),
            wire: Vec::new(),
            queued: Vec::new(),
            aborted: 0,
            started: 0,
            starttls: 0,
            closed: false,
            rcpt_checks: 0,
            auth_checks: Vec::new(),
            max_buffered: 0,
            open: false,
            body: Vec::new(),
            sink: Vec::new(),
        }
    }

    /// A port-25 session greeted with EHLO.
    pub fn ehlo() -> Harness {
        let mut h = Harness::new(config(), false);
        h.send("EHLO client.example.test\r\n");
        h.replies.clear();
        h
    }

    /// Feeds bytes and processes events until the session needs input (or closes).
    /// Returns the replies produced by this call.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Reply> {
        let first = self.replies.len();
        self.session.receive(bytes);
        self.drain();
        self.replies[first..].to_vec()
    }

    pub fn send(&mut self, s: &str) -> Vec<Reply> {
        self.feed(s.as_bytes())
    }

    /// Codes of the replies to `s`.
    pub fn codes(&mut self, s: &str) -> Vec<u16> {
        self.send(s).iter().map(Reply::code).collect()
    }

    /// The single reply to `s`, as (code, enhanced).
    pub fn one(&mut self, s: &str) -> Code {
        let r = self.send(s);
        assert_eq!(r.len(), 1, "one reply expected to {s:?}, got {r:?}");
        (r[0].code(), r[0].enhanced())
    }

    /// Feeds `bytes` in pieces of the given sizes (cycled).
    pub fn feed_split(&mut self, bytes: &[u8], sizes: &[usize]) -> Vec<Reply> {
        let first = self.replies.len();
        let mut i = 0;
        let mut k = 0;
        while i < bytes.len() {
            let n = sizes[k % sizes.len()].max(1).min(bytes.len() - i);
            self.feed(&bytes[i..i + n]);
            i += n;
            k += 1;
        }
        self.replies[first..].to_vec()
    }

    /// Completes a pending STARTTLS handshake.
    pub fn handshake(&mut self) {
        self.session.tls_established();
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            let event = self.session.next_event(&mut self.sink);
            if !self.sink.is_empty() {
                assert!(self.open, "body bytes outside a message: {event:?}");
                self.body.append(&mut self.sink);
            }
            match event {
                Event::Reply(r) => {
                    r.write_to(&mut self.wire);
                    self.replies.push(r);
                }
                Event::NeedInput => break,
                Event::CheckRecipient(r) => {
                    self.rcpt_checks += 1;
                    let v = (self.rcpt_policy)(&r);
                    self.session.recipient_verdict(v);
                }
                // SessionConfig::check_sender is off in these tests: never asked.
                Event::CheckSender(_) => self.session.sender_verdict(SenderVerdict::Accept),
                Event::Authenticate(c) => {
                    let v = (self.auth_policy)(&c);
                    self.auth_checks.push(c);
                    self.session.auth_verdict(v);
                }
                Event::MessageStart => {
                    assert!(!self.open, "MessageStart twice");
                    self.open = true;
                    self.started += 1;
                }
                Event::MessageEnd(envelope) => {
                    assert!(self.open, "MessageEnd without MessageStart");
                    self.open = false;
                    let body = std::mem::take(&mut self.body);
                    let v = self.message_verdict.take().unwrap_or_else(|| {
                        MessageVerdict::Queued(format!("Q{}", self.queued.len() + 1))
                    });
                    if matches!(v, MessageVerdict::Queued(_)) {
                        self.queued.push(Queued { envelope, body });
                    }
                    self.session.message_verdict(v);
                }
                Event::MessageAbort => {
                    assert!(self.open, "MessageAbort without MessageStart");
                    self.open = false;
                    self.body.clear();
                    self.aborted += 1;
                }
                Event::StartTls => {
                    self.starttls += 1;
                    break;
                }
                Event::Close => {
                    self.closed = true;
                    break;
                }
            }
        }
        self.max_buffered = self.max_buffered.max(self.session.buffered_len());
    }
}

/// A reply's code and enhanced code.
pub type Code = (u16, Option<(u8, u16, u16)>);

/// (code, enhanced) of a reply.
pub fn ce(r: &Reply) -> Code {
    (r.code(), r.enhanced())
}
