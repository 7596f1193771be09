//! One client connection: the driver around the sans-I/O [`Session`]. It reads bytes into the
//! session, writes its replies (batched until the session needs input, RFC 2920), answers its
//! questions through [`Policy`], streams message bodies into moat-queue through [`Message`],
//! upgrades to TLS when asked, and enforces the deadlines of [`Clock`] and the stop flag.
//!
//! Stopping: an idle session (no transaction open) gets `421 4.3.2` at once; a session inside a
//! transaction may finish it within the drain time, then it gets `421 4.3.2` too, and the
//! unfinished message is dropped (the queue keeps nothing of it).
//!
//! SECURITY: this is the only code that touches the client's socket. Bytes go straight from
//! the socket into the session (no read buffer of our own, so nothing read before STARTTLS can
//! be used after it); the session holds at most one read plus one command line; output is
//! flushed when it passes `OUT_FLUSH`. Every wait on the client has a deadline (reads, writes,
//! the TLS handshake). The user we record is moat-auth's answer, not what the client typed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use moat_common::client::queue;
use moat_common::daemon::limits::Slot;
use moat_common::daemon::stop::Stop;
use moat_common::wire::Status;
use moat_common::{info, warn};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Server;
use super::clock::Clock;
use super::listener::Service;
use super::message::{Additions, Message};
use super::policy::recipient_address;
use super::received::{Stamp, address_literal, message_id, session_id};
use super::stream::Stream;
use super::tls::TlsInfo;
use crate::proto::reply::Enhanced;
use crate::proto::{
    Domain, Envelope, Event, MessageVerdict, Phase, RcptVerdict, Reply, ReversePath, SenderVerdict,
    Session,
};
use moat_common::date::{now, rfc5322};

/// Bytes read from the client at a time.
const READ_SIZE: usize = 16 * 1024;
/// Pending replies beyond this are written out without waiting for `NeedInput`.
const OUT_FLUSH: usize = 16 * 1024;
/// How long a polite close (close_notify, FIN) may take.
const CLOSE_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a connection ended (for the disconnect log line).
enum End {
    /// The session closed it (QUIT, too many errors, a foreign protocol).
    Session,
    ClientGone,
    Timeout,
    Stopping,
    Tls(String),
    Io(String),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Session => f.write_str("closed"),
            End::ClientGone => f.write_str("client left"),
            End::Timeout => f.write_str("timeout"),
            End::Stopping => f.write_str("server stopping"),
            End::Tls(e) => write!(f, "TLS failed: {e}"),
            End::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

struct Connection {
    server: Arc<Server>,
    service: Service,
    peer: SocketAddr,
    id: String,
    session: Session,
    stream: Stream,
    clock: Clock,
    stop: Stop,
    /// When we first saw the stop flag.
    stop_seen: Option<Instant>,
    out: Vec<u8>,
    body: Vec<u8>,
    buf: Vec<u8>,
    message: Option<Message>,
    tls: Option<TlsInfo>,
    /// The authenticated user as moat-auth spells it.
    user: Option<String>,
    messages: u32,
}

/// Runs one connection to its end; `slot` holds its place in the limits until then.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    service: Service,
    server: Arc<Server>,
    slot: Slot,
) {
    let _slot = slot;
    let started = StdInstant::now();
    let _ = tcp.set_nodelay(true);
    let config = service.session_config(&server);
    let mut c = Connection {
        id: session_id(),
        session: Session::new(config, service.implicit_tls()),
        stream: Stream::Plain(tcp),
        clock: Clock::new(server.settings.timeouts),
        stop: server.stop.clone(),
        stop_seen: None,
        out: Vec::new(),
        body: Vec::new(),
        buf: vec![0; READ_SIZE],
        message: None,
        tls: None,
        user: None,
        messages: 0,
        server,
        service,
        peer,
    };
    info!(
        "connect from {} to {} session={}",
        c.client(),
        service.name(),
        c.id
    );
    let end = c.run().await;
    if let Some(m) = c.message.take() {
        m.abort();
    }
    if matches!(end, End::Session | End::Timeout | End::Stopping) {
        c.stream.close(CLOSE_TIME).await;
    }
    info!(
        "disconnect from {} session={} messages={} after {} s: {end}",
        c.client(),
        c.id,
        c.messages,
        started.elapsed().as_secs()
    );
}

impl Connection {
    fn client(&self) -> String {
        address_literal(self.peer.ip())
    }

    async fn run(&mut self) -> End {
        if self.service.implicit_tls()
            && let Err(end) = self.start_tls().await
        {
            return end;
        }
        self.session.greeting().write_to(&mut self.out);
        loop {
            let event = self.session.next_event(&mut self.body);
            if !self.body.is_empty() {
                if let Some(m) = self.message.as_mut() {
                    m.write(&self.body).await;
                }
                self.body.clear();
            }
            match event {
                Event::Reply(r) => {
                    self.clock.answered();
                    r.write_to(&mut self.out);
                    if self.out.len() > OUT_FLUSH
                        && let Err(end) = self.flush().await
                    {
                        return end;
                    }
                }
                Event::NeedInput => {
                    if let Err(end) = self.flush().await {
                        return end;
                    }
                    if let Err(end) = self.read().await {
                        return end;
                    }
                }
                Event::CheckRecipient(rcpt) => {
                    let verdict = self
                        .server
                        .policy
                        .recipient(&rcpt.path, self.user.is_some(), None)
                        .await;
                    if verdict != RcptVerdict::Accept {
                        info!(
                            "reject RCPT {} from {} session={}: {}",
                            rcpt.path,
                            self.client(),
                            self.id,
                            verdict.reply().to_string().trim_end()
                        );
                    }
                    self.session.recipient_verdict(verdict);
                }
                Event::CheckSender(from) => {
                    let verdict = self.check_sender(&from).await;
                    self.session.sender_verdict(verdict);
                }
                Event::Authenticate(creds) => {
                    let (verdict, user) = self
                        .server
                        .policy
                        .authenticate(&creds, self.peer.ip())
                        .await;
                    self.user = user;
                    self.session.auth_verdict(verdict);
                }
                Event::MessageStart => self.message_start().await,
                Event::MessageEnd(envelope) => {
                    let verdict = self.message_end(&envelope).await;
                    self.session.message_verdict(verdict);
                }
                Event::MessageAbort => {
                    if let Some(m) = self.message.take() {
                        m.abort();
                    }
                }
                Event::StartTls => {
                    if let Err(end) = self.flush().await {
                        return end;
                    }
                    if let Err(end) = self.start_tls().await {
                        return end;
                    }
                    self.session.tls_established();
                    self.user = None;
                    self.clock.answered();
                    let discarded = self.session.discarded_after_starttls();
                    if discarded > 0 {
                        warn!(
                            "{} session={} pipelined {discarded} octets after STARTTLS: thrown away",
                            self.client(),
                            self.id
                        );
                    }
                }
                Event::Close => {
                    let _ = self.flush().await;
                    return End::Session;
                }
            }
        }
    }

    /// The answer to `CheckSender`: the sender must be the login's (`policy.rs`); refusals and
    /// failures are logged.
    async fn check_sender(&self, from: &ReversePath) -> SenderVerdict {
        // The session asks only after AUTH, and only we record the user moat-auth named.
        let Some(user) = self.user.as_deref() else {
            warn!("session={}: sender check without a login", self.id);
            return SenderVerdict::TempFail;
        };
        let verdict = self.server.policy.sender(from, user).await;
        if verdict != SenderVerdict::Accept {
            info!(
                "reject MAIL FROM {from} from {} user={user} session={}: {}",
                self.client(),
                self.id,
                verdict.reply(from).to_string().trim_end()
            );
        }
        verdict
    }

    /// Writes the pending replies, within the command timeout.
    async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let limit = self.server.settings.timeouts.command;
        let written = tokio::time::timeout(limit, self.stream.write_all(&self.out)).await;
        self.out.clear();
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(End::Io(e.to_string())),
            Err(_) => Err(End::Timeout),
        }
    }

    /// Writes one last reply and ends the session.
    async fn last_word(&mut self, reply: Reply, end: End) -> End {
        reply.write_to(&mut self.out);
        let _ = self.flush().await;
        end
    }

    /// Idle: no transaction open and no command half-read, so stopping loses nothing.
    fn idle(&self) -> bool {
        self.session.phase() == Phase::Command
            && self.session.sender().is_none()
            && self.message.is_none()
    }

    /// Reads more input into the session, or ends the session (timeout, stop, EOF).
    async fn read(&mut self) -> Result<(), End> {
        self.clock.before_read(self.session.phase());
        loop {
            let stopping = self.stop_seen.is_some() || *self.stop.borrow();
            let mut deadline = self.clock.deadline();
            let mut drain_over = false;
            if stopping {
                let seen = *self.stop_seen.get_or_insert_with(Instant::now);
                if self.idle() {
                    let bye = Reply::shutting_down(&self.server.settings.hostname);
                    return Err(self.last_word(bye, End::Stopping).await);
                }
                let drain_end = seen + self.server.settings.drain;
                if drain_end <= deadline {
                    deadline = drain_end;
                    drain_over = true;
                }
            }
            tokio::select! {
                got = tokio::time::timeout_at(deadline, self.stream.read(&mut self.buf)) => {
                    return match got {
                        Ok(Ok(0)) => Err(End::ClientGone),
                        Ok(Ok(n)) => {
                            self.clock.received(self.session.phase(), n);
                            self.session.receive(&self.buf[..n]);
                            Ok(())
                        }
                        Ok(Err(e)) => Err(End::Io(e.to_string())),
                        Err(_) if drain_over => {
                            let bye = Reply::shutting_down(&self.server.settings.hostname);
                            Err(self.last_word(bye, End::Stopping).await)
                        }
                        Err(_) => {
                            let bye = Reply::timeout(&self.server.settings.hostname);
                            Err(self.last_word(bye, End::Timeout).await)
                        }
                    };
                }
                changed = self.stop.changed(), if !stopping => {
                    if changed.is_err() {
                        // The flag's owner is gone: the process is ending.
                        self.stop_seen = Some(Instant::now());
                    }
                }
            }
        }
    }

    async fn start_tls(&mut self) -> Result<(), End> {
        let Some(config) = self.server.tls.clone() else {
            return Err(End::Tls("no certificate loaded".into()));
        };
        match self
            .stream
            .start_tls(&config, self.server.settings.timeouts.tls)
            .await
        {
            Ok(info) => {
                self.tls = Some(info);
                Ok(())
            }
            Err(e) => Err(End::Tls(e.to_string())),
        }
    }

    async fn message_start(&mut self) {
        let fallback = Domain::Literal(self.peer.ip().to_canonical());
        let (helo, esmtp) = self.session.helo().unwrap_or((&fallback, false));
        let (helo, esmtp) = (helo.clone(), esmtp);
        // SMTPUTF8 is not visible before the envelope; a non-ASCII sender implies it.
        let smtputf8 = self.session.sender().is_some_and(|s| !s.is_ascii());
        let unix = now();
        let date = rfc5322(unix);
        let settings = &self.server.settings;
        let received = Stamp {
            helo: &helo,
            esmtp,
            smtputf8,
            client_ip: self.peer.ip(),
            hostname: &settings.hostname,
            session: &self.id,
            tls: self.tls.as_ref(),
            user: self.user.as_deref(),
            date: &date,
        }
        .header();
        let origin = self.service.origin();
        let additions =
            (origin == moat_common::client::queue::Origin::Submission).then(|| Additions {
                message_id: message_id(&settings.hostname, unix),
                date: date.clone(),
            });
        let mut client = format!("{} {helo}", self.client());
        if let Some(user) = &self.user {
            client.push_str(&format!(" user={user}"));
        }
        let message = Message::open(
            &settings.queue_socket,
            origin,
            &client,
            &received,
            additions,
        )
        .await;
        self.message = Some(message);
    }

    async fn message_end(&mut self, envelope: &Envelope) -> MessageVerdict {
        let Some(message) = self.message.take() else {
            warn!("session={}: message end without a message", self.id);
            return MessageVerdict::TempFail;
        };
        let hostname = &self.server.settings.hostname;
        let sender = match &envelope.from {
            ReversePath::Null => String::new(),
            ReversePath::Path(p) => p.to_string(),
        };
        let recipients: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| recipient_address(&r.path, hostname))
            .collect();
        let dsn = dsn_request(envelope);
        let smtputf8 = envelope.mail_params.smtputf8;
        match message.finish(&sender, &recipients, &dsn, smtputf8).await {
            Ok(Status::Ok(id)) => {
                self.messages += 1;
                let to: Vec<String> = recipients.iter().map(|r| format!("<{r}>")).collect();
                info!(id = &id;
                    "from=<{sender}> to={} size={} client={} helo={} auth={} tls={} session={}",
                    to.join(","),
                    envelope.size,
                    self.client(),
                    envelope.helo,
                    self.user.as_deref().unwrap_or("-"),
                    self.tls.as_ref().map_or("-", |t| t.version.as_str()),
                    self.id
                );
                MessageVerdict::Queued(id)
            }
            Ok(Status::Temporary(why)) => {
                warn!(
                    "session={}: moat-queue refused the message for now: {why}",
                    self.id
                );
                postponed(&why)
            }
            Ok(Status::Permanent(why)) => {
                warn!("session={}: moat-queue refused the message: {why}", self.id);
                MessageVerdict::Other(refused(&why))
            }
            Err(why) => {
                warn!("session={}: message not queued: {why}", self.id);
                MessageVerdict::TempFail
            }
        }
    }
}

/// The enhanced status code a queue reply text starts with (`5.3.4 message too big`).
fn leading_code(text: &str) -> Option<Enhanced> {
    let word = text.split_whitespace().next()?;
    let mut parts = word.split('.');
    let class: u8 = parts.next()?.parse().ok()?;
    let subject: u16 = parts.next()?.parse().ok()?;
    let detail: u16 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && subject < 1000 && detail < 1000).then_some((class, subject, detail))
}

/// The reply for a temporary refusal by the queue: a full disk is RFC 5321's 452
/// (insufficient system storage, RFC 3463's 4.3.1), so a client or a relay knows to wait for
/// space rather than report a fault; anything else is the generic 451.
fn postponed(why: &str) -> MessageVerdict {
    match leading_code(why) {
        Some(code @ (4, 3, 1)) => MessageVerdict::Other(Reply::new(
            452,
            Some(code),
            "Insufficient system storage, try again later",
        )),
        _ => MessageVerdict::TempFail,
    }
}

/// The reply for a permanent refusal by the queue; its own words stay in our log.
fn refused(why: &str) -> Reply {
    match leading_code(why) {
        Some((5, 3, 4)) => Reply::too_big(),
        Some(code @ (5, _, _)) => Reply::new(554, Some(code), "Message refused by the queue"),
        _ => Reply::new(554, Some((5, 3, 0)), "Message refused by the queue"),
    }
}

/// The RFC 3461 parameters of the transaction, for the queue. The parser already bounded and
/// decoded them; a value the queue would refuse (a control character) is dropped rather than
/// failing the whole message.
fn dsn_request(envelope: &Envelope) -> queue::Dsn {
    use crate::proto::params::{Notify, Ret};
    let mut dsn = queue::Dsn {
        ret: envelope.mail_params.ret.map(|r| match r {
            Ret::Full => queue::Ret::Full,
            Ret::Hdrs => queue::Ret::Hdrs,
        }),
        envid: envelope
            .mail_params
            .envid
            .clone()
            .filter(|e| queue::check_dsn_text(e, queue::MAX_ENVID).is_ok()),
        recipients: envelope
            .recipients
            .iter()
            .map(|r| {
                let notify = r.params.notify.map(|n| match n {
                    Notify::Never => queue::Notify::NEVER,
                    Notify::On {
                        success,
                        failure,
                        delay,
                    } => queue::Notify {
                        success,
                        failure,
                        delay,
                    },
                });
                let orcpt = r.params.orcpt.as_ref().map(|o| queue::Orcpt {
                    addr_type: o.addr_type.clone(),
                    addr: o.addr.clone(),
                });
                let mut one = queue::RcptDsn { notify, orcpt };
                if one.check().is_err() {
                    one.orcpt = None;
                }
                one
            })
            .collect(),
    };
    dsn.normalize();
    dsn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_refusals() {
        assert_eq!(refused("5.3.4 message too big: the limit is 5").code(), 552);
        let r = refused("5.1.3 bad recipient");
        assert_eq!((r.code(), r.enhanced()), (554, Some((5, 1, 3))));
        let r = refused("envelope is not UTF-8");
        assert_eq!((r.code(), r.enhanced()), (554, Some((5, 3, 0))));
        assert_eq!(leading_code("4.3.1 disk full"), Some((4, 3, 1)));
        let code = |v: MessageVerdict| (v.reply().code(), v.reply().enhanced());
        assert_eq!(
            code(postponed("4.3.1 the queue's disk is full, try again later")),
            (452, Some((4, 3, 1)))
        );
        assert_eq!(code(postponed("busy")), (451, Some((4, 3, 0))));
        assert_eq!(leading_code("5.3"), None);
    }
}
