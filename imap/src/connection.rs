//! One client connection: the driver around the [`Session`]. It reads bytes into the framing
//! (`session::input`), hands complete messages to the session, writes its output, and carries
//! out what the session cannot do itself: the STARTTLS handshake and the moat-auth login.
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
//! read buffer is one read; the framing holds at most one message (`input.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use moat_common::daemon::access::{End, Server};
use moat_common::daemon::limits::Slot;
use moat_common::daemon::stop::{Stop, stopped};
use moat_common::daemon::stream::Stream;
use moat_common::info;
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
    let config = session::Config {
        hostname: server.settings.hostname.clone(),
        mail_root: server.settings.mail_root.clone(),
        tls_available: server.tls.is_some(),
        plaintext_allowed: server.plaintext_allowed(peer),
        who: peer.to_string(),
        append_limit: crate::settings::append_limit(server.settings.max_message_size),
    };
    let mut c = Connection {
        session: Session::new(config, implicit_tls),
        stream: Stream::Plain(tcp),
        input: Input::new(),
        out: Vec::new(),
        stop: server.stop.clone(),
        buf: vec![0; READ],
        message_started: None,
        server,
        peer,
    };
    let end = c.run(implicit_tls).await;
    let user = c.session.user().unwrap_or("-");
    info!("{peer}: {user}: {end}");
}

impl Connection {
    async fn run(&mut self, implicit_tls: bool) -> End {
        if implicit_tls && let Err(end) = self.server.start_tls(&mut self.stream).await {
            return end;
        }
        self.session.greeting(&mut self.out);
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
                // Boxed: the login future is large (a record connection's buffers) and, inline,
                // would make every connection task that large for its whole life.
                let answer = Box::pin(self.server.auth.login(
                    &login,
                    &password.0,
                    &ip,
                    "imap",
                    &self.peer.to_string(),
                ))
                .await;
                drop(password);
                match self.session.login_result(&tag, answer, &mut self.out).await {
                    Flow::Continue => Ok(()),
                    // A login's answer is a status line; nothing else can follow it.
                    other => Err(End::Failed(format!(
                        "unexpected flow after login: {other:?}"
                    ))),
                }
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
