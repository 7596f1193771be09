//! One client connection: the driver around the [`Session`]. It reads bytes into the framing
//! (`session::input`), hands complete messages to the session, writes its output, and carries
//! out what the session cannot do itself: the STARTTLS handshake and the moat-auth login.
//!
//! Two processes run it (docs/IMAP.md "Processes"). moat-imap-login (`Server::handoff` set)
//! serves the TCP connections until a login succeeds: it gets a ticket from moat-auth instead
//! of a login, and hands the connection with the ticket, the login's tag and the bytes the
//! client pipelined after the login command to moat-imapd (`moat_common::handoff`). moat-imapd
//! takes it up in `resume`: the same session, built with the connection's TLS state, answers
//! the login (`login_result`, the tagged OK with the capabilities) and goes on with the
//! pipelined bytes, so the client cannot tell where the login was checked.
//!
//! Output is collected and written when the driver is about to wait for the client (or it grew
//! past `FLUSH_AT`), so pipelined commands cost one write, and a continuation request goes
//! out before we wait for the literal it asks for.
//!
//! SECURITY: the only code that touches the client's socket. Every wait has a deadline: 60 s
//! before login (or `idle_timeout_secs` if shorter), `idle_timeout_secs` after it (for reads
//! and for each write), 30 s for a TLS handshake. A message (line + literals) must also arrive
//! whole within that time of its first bytes: otherwise a client sending a byte now and then
//! (slowloris) would hold its connection and buffers forever without ever being idle.
//! At STARTTLS every byte read after the command is dropped before the handshake (the
//! STARTTLS injection class), and the session learns TLS is up only after the handshake. The
//! read buffer is one read; the framing holds at most one message (`input.rs`), so the bytes
//! handed on after a login are at most one read (4 KiB, below `MAX_PENDING`). Before a
//! hand-off our pending output is written, so the client gets the answers in order. The login
//! process never opens a mailbox: its session only ever sees failed logins. moat-imapd serves
//! only clients whose login moat-auth vouched for (the token); when their mailbox cannot be
//! opened, the NO is followed by BYE rather than a not-authenticated session there.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use moat_common::client::auth::{LoggedIn, Login, Ticket};
use moat_common::daemon::access::{End, Resumed, Server};
use moat_common::daemon::limits::Slot;
use moat_common::daemon::stop::{Stop, stopped};
use moat_common::daemon::stream::Stream;
use moat_common::handoff::{Handoff, hand_off};
use moat_common::{info, warn};
use tokio::net::TcpStream;

use crate::session::input::{Event, Input};
use crate::session::{self, Flow, Session, parse, response};
use crate::settings::PREAUTH_IDLE;

/// Bytes read from the client at a time.
const READ: usize = 4096;
/// Output is written once it is this large, even mid-pipeline.
const FLUSH_AT: usize = 64 * 1024;

struct Connection {
    server: Arc<Server>,
    peer: SocketAddr,
    session: Session,
    stream: Stream,
    input: Input,
    out: Vec<u8>,
    stop: Stop,
    buf: Vec<u8>,
    /// When the first bytes of the message being received arrived (`None`: between messages).
    message_started: Option<tokio::time::Instant>,
}

/// Runs one connection to its end; `slot` holds its place in the limits until then.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    server: Arc<Server>,
    slot: Slot,
) {
    let _slot = slot;
    let mut c = Connection::new(Stream::Plain(tcp), peer, implicit_tls, server);
    let end = c.start(implicit_tls).await;
    c.log_end(&end);
}

/// Takes up a connection moat-imap-login handed over after a successful login (moat-imapd);
/// `slot` holds its place in the limits until it ends.
pub async fn resume(
    stream: Stream,
    peer: SocketAddr,
    resumed: Resumed,
    server: Arc<Server>,
    slot: Slot,
) {
    let _slot = slot;
    let Resumed {
        user,
        tls,
        tag,
        pending,
    } = resumed;
    let mut c = Connection::new(stream, peer, tls, server);
    c.input.push(&pending);
    let end = c.resumed(&tag, user).await;
    c.log_end(&end);
}

impl Connection {
    /// `tls`: the session starts with TLS (the implicit-TLS port; a handed-over TLS client).
    fn new(stream: Stream, peer: SocketAddr, tls: bool, server: Arc<Server>) -> Connection {
        let config = session::Config {
            hostname: server.settings.hostname.clone(),
            mail_root: server.settings.mail_root.clone(),
            tls_available: server.tls.is_some(),
            plaintext_allowed: server.plaintext_allowed(peer),
            who: peer.to_string(),
            append_limit: crate::settings::append_limit(server.settings.max_message_size),
        };
        Connection {
            session: Session::new(config, tls),
            stream,
            input: Input::new(),
            out: Vec::new(),
            stop: server.stop.clone(),
            buf: vec![0; READ],
            message_started: None,
            server,
            peer,
        }
    }

    fn log_end(&self, end: &End) {
        let user = self.session.user().unwrap_or("-");
        info!("{}: {user}: {end}", self.peer);
    }

    /// A new client: TLS first on the implicit-TLS port, the greeting, then its commands.
    async fn start(&mut self, implicit_tls: bool) -> End {
        if implicit_tls && let Err(end) = self.server.start_tls(&mut self.stream).await {
            return end;
        }
        self.session.greeting(&mut self.out);
        self.run().await
    }

    /// A handed-over client: the login's answer (the mailbox is opened now), then its
    /// pipelined commands and the rest.
    async fn resumed(&mut self, tag: &str, user: LoggedIn) -> End {
        self.session
            .login_result(tag, Login::User(user), &mut self.out)
            .await;
        if !self.session.is_authenticated() {
            // The NO says why; this process serves logged-in sessions only.
            response::bye(&mut self.out, "[UNAVAILABLE] Try again later.");
            return match self.perform_once(Flow::Close).await {
                Err(end) => end,
                Ok(()) => End::Closed,
            };
        }
        self.input.authenticated();
        self.run().await
    }

    async fn run(&mut self) -> End {
        loop {
            let flow = match self.input.next_event() {
                Event::NeedMore => {
                    if let Err(end) = self.read().await {
                        return end;
                    }
                    continue;
                }
                Event::SendContinuation => {
                    self.out.extend_from_slice(b"+ OK\r\n");
                    continue;
                }
                Event::Refused { tag, text, close } => {
                    self.message_started = None;
                    self.session.refused(tag, text, close, &mut self.out)
                }
                Event::Message => {
                    self.message_started = None;
                    let parsed = if self.session.expects_sasl() {
                        parse::sasl(&self.input)
                    } else {
                        parse::command(&self.input)
                    };
                    self.session.handle(parsed, &mut self.out).await
                }
                Event::Append(head) => {
                    self.session
                        .append_begin(head, &mut self.input, &mut self.out)
                        .await
                }
                Event::LiteralData => {
                    // The literal streams to a file: it must keep moving (a chunk per idle
                    // period), not arrive whole within one.
                    if self.session.append_data(&mut self.input).await {
                        self.message_started = None;
                    }
                    continue;
                }
                Event::AppendDone => {
                    self.message_started = None;
                    self.session.append_done(&mut self.out).await
                }
            };
            if let Err(end) = self.perform(flow).await {
                return end;
            }
            if self.session.is_authenticated() {
                self.input.authenticated();
            }
            if self.out.len() >= FLUSH_AT
                && let Err(end) = self.flush().await
            {
                return end;
            }
        }
    }

    /// Carries out what the session asked for; `Err` ends the connection.
    async fn perform(&mut self, mut flow: Flow) -> Result<(), End> {
        loop {
            flow = match flow {
                // A FETCH in batches: each goes out before the next is made.
                Flow::More => {
                    self.flush().await?;
                    self.session.resume(&mut self.out).await
                }
                Flow::Idle => self.idle_loop().await?,
                other => return self.perform_once(other).await,
            };
        }
    }

    /// IDLE (RFC 2177): reports changes as the session notices them until the client's line
    /// (`DONE`) arrives; the idle timeout runs from the start of the IDLE.
    async fn idle_loop(&mut self) -> Result<Flow, End> {
        let deadline = tokio::time::Instant::now() + self.idle();
        loop {
            match self.input.next_event() {
                Event::NeedMore => {}
                Event::Message => {
                    return Ok(self.session.idle_done(self.input.message(), &mut self.out));
                }
                // Anything but a plain DONE line ends the IDLE with BAD.
                _ => {
                    let flow = self.session.idle_done(b"", &mut self.out);
                    return Ok(if flow == Flow::Close {
                        flow
                    } else {
                        response::bye(&mut self.out, "Protocol error during IDLE.");
                        Flow::Close
                    });
                }
            }
            self.flush().await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            tokio::select! {
                _ = stopped(&mut self.stop) => {
                    response::bye(&mut self.out, "[UNAVAILABLE] Server shutting down, try again later.");
                    let _ = self.flush().await;
                    self.stream.close().await;
                    return Err(End::Stopping);
                }
                read = self.stream.read(&mut self.buf, left) => match read {
                    Ok(0) => return Err(End::ClientGone),
                    Ok(n) => self.input.push(self.buf.get(..n).unwrap_or_default()),
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        response::bye(&mut self.out, "Autologout; idle for too long.");
                        let _ = self.flush().await;
                        self.stream.close().await;
                        return Err(End::Timeout);
                    }
                    Err(e) => return Err(e.into()),
                },
                _ = self.session.idle_wait() => {
                    let flow = self.session.idle_changes(&mut self.out).await;
                    if flow != Flow::Idle {
                        return Ok(flow);
                    }
                }
            }
        }
    }

    async fn perform_once(&mut self, flow: Flow) -> Result<(), End> {
        match flow {
            Flow::Continue | Flow::More | Flow::Idle => Ok(()),
            Flow::Close => {
                self.flush().await?;
                self.stream.close().await;
                Err(End::Closed)
            }
            Flow::StartTls => {
                self.flush().await?;
                let dropped = self.input.clear();
                if dropped > 0 {
                    info!("{}: dropped {dropped} bytes sent after STARTTLS", self.peer);
                }
                self.server.start_tls(&mut self.stream).await?;
                self.session.tls_started();
                Ok(())
            }
            Flow::Login {
                tag,
                login,
                password,
            } => {
                let ip = self.peer.ip().to_canonical().to_string();
                let who = self.peer.to_string();
                // Boxed: the login futures are large (a record connection's buffers) and,
                // inline, would make every connection task that large for its whole life.
                if let Some(socket) = self.server.handoff().map(Path::to_path_buf) {
                    let ticket = Box::pin(self.server.auth.login_ticket(
                        &login,
                        &password.0,
                        &ip,
                        self.server.service,
                        &who,
                    ))
                    .await;
                    drop(password);
                    return match ticket {
                        Ok(ticket) => self.hand_off(&socket, tag, ticket).await,
                        // Never a `Login::User`: that comes as a ticket.
                        Err(Login::User(_)) => self.login_answer(&tag, Login::Unavailable).await,
                        Err(refused) => self.login_answer(&tag, refused).await,
                    };
                }
                let answer = Box::pin(self.server.auth.login(
                    &login,
                    &password.0,
                    &ip,
                    self.server.service,
                    &who,
                ))
                .await;
                drop(password);
                self.login_answer(&tag, answer).await
            }
        }
    }

    /// The session answers the login.
    async fn login_answer(&mut self, tag: &str, answer: Login) -> Result<(), End> {
        match self.session.login_result(tag, answer, &mut self.out).await {
            Flow::Continue => Ok(()),
            // A login's answer is a status line; nothing else can follow it.
            other => Err(End::Failed(format!(
                "unexpected flow after login: {other:?}"
            ))),
        }
    }

    /// moat-imap-login after a successful login: the connection, the ticket, the login's tag
    /// and what the client pipelined after it go to moat-imapd, which answers the login. When
    /// that fails (moat-imapd down, the ticket refused), the client hears `NO [UNAVAILABLE]`
    /// from us and may try again.
    async fn hand_off(&mut self, socket: &Path, tag: String, ticket: Ticket) -> Result<(), End> {
        // Our answers to the commands before the login go out before moat-imapd's.
        self.flush().await?;
        let Ticket { user, token } = ticket;
        let handoff = Handoff {
            token,
            peer: self.peer,
            tls: self.stream.is_tls(),
            tag,
            pending: self.input.take_pending(),
        };
        let stream = std::mem::replace(&mut self.stream, Stream::Gone);
        match hand_off(socket, stream, &handoff, self.server.settings.idle).await {
            Ok(how) => {
                self.session.handed_off(&user);
                Err(End::HandedOff(how))
            }
            Err((stream, why)) => {
                warn!("{}: {user}: cannot hand the session over: {why}", self.peer);
                self.stream = stream;
                self.input.push(&handoff.pending);
                self.login_answer(&handoff.tag, Login::Unavailable).await
            }
        }
    }

    /// How long the client may be silent now (a site with a shorter idle timeout gets it
    /// before login too).
    fn idle(&self) -> Duration {
        if self.session.is_authenticated() {
            self.server.settings.idle
        } else {
            PREAUTH_IDLE.min(self.server.settings.idle)
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        // A client that does not read is as idle as one that does not write.
        let idle = self.idle();
        let result = self.stream.write_all(&self.out, idle).await;
        self.out.clear();
        result.map_err(End::from)
    }

    /// Flushes our output, then waits for the client's next bytes: at most the idle time, and
    /// within the idle time of the current message's first bytes.
    async fn read(&mut self) -> Result<(), End> {
        self.flush().await?;
        let idle = self.idle();
        let now = tokio::time::Instant::now();
        let (wait, slow) = match self.message_started {
            Some(start) => {
                let left = (start + idle).saturating_duration_since(now);
                (left, left < idle)
            }
            None => (idle, false),
        };
        let read = tokio::select! {
            _ = stopped(&mut self.stop) => {
                response::bye(&mut self.out, "[UNAVAILABLE] Server shutting down, try again later.");
                let _ = self.flush().await;
                self.stream.close().await;
                return Err(End::Stopping);
            }
            read = self.stream.read(&mut self.buf, wait) => read,
        };
        match read {
            Ok(0) => Err(End::ClientGone),
            Ok(n) => {
                self.message_started
                    .get_or_insert_with(tokio::time::Instant::now);
                self.input.push(self.buf.get(..n).unwrap_or_default());
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                response::bye(
                    &mut self.out,
                    if slow {
                        "Autologout; command not completed in time."
                    } else {
                        "Autologout; idle for too long."
                    },
                );
                let _ = self.flush().await;
                self.stream.close().await;
                Err(End::Timeout)
            }
            Err(e) => Err(e.into()),
        }
    }
}
