//! One client connection: the driver around the sans-I/O [`Session`]. It reads lines into the
//! session, writes its replies, and carries out its steps: the STLS handshake, the login
//! through moat-auth and the maildrop snapshot, RETR/TOP streamed from the file through the
//! dot-stuffing encoder, and the UPDATE state at QUIT.
//!
//! Two processes run it (docs/ARCHITECTURE.md "POP3"). moat-pop3-login (`Server::handoff` set)
//! serves the TCP connections up to a successful login: for PASS or AUTH PLAIN it gets a
//! ticket from moat-auth instead of a login and hands the connection, with the ticket and the
//! bytes pipelined after the command, to moat-pop3d (`moat_common::handoff`). moat-pop3d takes
//! it up in `resume`: the session, built with the connection's TLS state, locks and opens the
//! maildrop and answers the login exactly as one process would, then reads the pipelined
//! commands and the rest.
//!
//! SECURITY: the only code that touches the client's socket. Every wait on the client has a
//! deadline (`idle_timeout_secs` for each read and each write, 30 s for a handshake); a
//! message is streamed in 64 KiB pieces, never loaded whole; file work (snapshot, open,
//! commit) runs on the blocking pool. Any way out other than QUIT in TRANSACTION (timeout,
//! stop, error, the client leaving) drops the maildrop without UPDATE: nothing is deleted.
//! The user we act for is moat-auth's answer, not what the client typed. moat-pop3-login
//! never opens a maildrop (its session only sees failed logins); a hand-over that fails
//! (moat-pop3d down, the ticket refused) is answered `-ERR [SYS/TEMP]` there and the client may
//! try again. moat-pop3d serves only clients moat-auth vouched for (the token): when their
//! maildrop cannot be had, the `-ERR` is followed by the end of the connection, not by an
//! AUTHORIZATION state in the mail process. The bytes handed on are what the line splitter
//! held: at most one command line plus one read, far below `MAX_PENDING`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use moat_common::client::auth::{Login, Ticket};
use moat_common::daemon::access::{End, Resumed, Server};
use moat_common::daemon::limits::Slot;
use moat_common::daemon::stop::{Stop, stopped};
use moat_common::daemon::stream::Stream;
use moat_common::handoff::{Handoff, hand_off};
use moat_common::{error, info, warn};
use moat_maildir::Error as MaildirError;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::command::Secret;
use crate::dotstuff::Encoder;
use crate::lines::{Line, Lines};
use crate::maildrop::{self, Change, Mailbox, OpenError};
use crate::session::{self, AuthOutcome, Session, Step};

/// Message bytes read from the file, and encoded bytes written to the client, at a time.
const CHUNK: usize = 64 * 1024;

/// Fills `buf` as far as the file goes (short only at end of file).
fn read_some(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match file.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

struct Connection {
    server: Arc<Server>,
    peer: SocketAddr,
    session: Session,
    stream: Stream,
    lines: Lines,
    stop: Stop,
    buf: Vec<u8>,
    mailbox: Option<Mailbox>,
    user: Option<String>,
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
    let config = config(&server, peer);
    let session = Session::new(config, implicit_tls);
    let mut c = Connection::new(Stream::Plain(tcp), peer, session, server);
    let end = c.start(implicit_tls).await;
    c.log_end(&end);
}

/// Takes up a client moat-pop3-login handed over after moat-auth accepted its login
/// (moat-pop3d); `slot` holds its place in the limits until it ends.
pub async fn resume(
    stream: Stream,
    peer: SocketAddr,
    resumed: Resumed,
    server: Arc<Server>,
    slot: Slot,
) {
    let _slot = slot;
    let config = config(&server, peer);
    let session = Session::resumed(config, resumed.tls);
    let mut c = Connection::new(stream, peer, session, server);
    // The commands the client pipelined after its login come first, in order.
    c.lines.push(&resumed.pending);
    let outcome = c.open_maildrop(resumed.user.user).await;
    let step = c.session.auth_result(outcome);
    let end = match c.perform_all(step).await {
        Ok(()) => c.run().await,
        Err(end) => end,
    };
    c.log_end(&end);
}

fn config(server: &Server, peer: SocketAddr) -> session::Config {
    session::Config {
        hostname: server.settings.hostname.clone(),
        tls_available: server.tls.is_some(),
        plaintext_allowed: server.plaintext_allowed(peer),
    }
}

impl Connection {
    fn new(stream: Stream, peer: SocketAddr, session: Session, server: Arc<Server>) -> Connection {
        Connection {
            session,
            stream,
            lines: Lines::new(),
            stop: server.stop.clone(),
            buf: vec![0; 4096],
            mailbox: None,
            user: None,
            server,
            peer,
        }
    }

    fn log_end(&self, end: &End) {
        // Without UPDATE the snapshot and the in-use lock are simply dropped.
        let user = self.user.as_deref().unwrap_or("-");
        info!("{}: {user}: {end}", self.peer);
    }

    /// A new client: TLS first on the implicit-TLS port, the greeting, then its commands.
    async fn start(&mut self, implicit_tls: bool) -> End {
        if implicit_tls && let Err(end) = self.server.start_tls(&mut self.stream).await {
            return end;
        }
        let greeting = self.session.greeting();
        if let Err(e) = self.write(greeting.as_bytes()).await {
            return e;
        }
        self.run().await
    }

    /// Reads and answers commands until the connection ends.
    async fn run(&mut self) -> End {
        loop {
            let line = match self.next_line().await {
                Ok(line) => line,
                Err(end) => return end,
            };
            let step = self.session.line(line);
            if let Err(end) = self.perform_all(step).await {
                return end;
            }
        }
    }

    /// Carries out `step` and its follow-ups.
    async fn perform_all(&mut self, step: Step) -> Result<(), End> {
        let mut step = Some(step);
        while let Some(s) = step.take() {
            step = self.perform(s).await?;
        }
        Ok(())
    }

    /// Carries out one step; returns the follow-up step, if any. `Err` ends the connection.
    async fn perform(&mut self, step: Step) -> Result<Option<Step>, End> {
        match step {
            Step::Reply(r) => self.write(r.as_bytes()).await.map(|()| None),
            Step::Close(r) => {
                self.write(r.as_bytes()).await?;
                self.stream.close().await;
                Err(End::Closed)
            }
            Step::StartTls(r) => {
                self.write(r.as_bytes()).await?;
                let dropped = self.lines.clear();
                if dropped > 0 {
                    info!("{}: dropped {dropped} bytes sent after STLS", self.peer);
                }
                self.server.start_tls(&mut self.stream).await?;
                self.session.tls_started();
                Ok(None)
            }
            Step::Authenticate { login, password } => {
                let server = Arc::clone(&self.server);
                match server.handoff() {
                    Some(socket) => self.hand_off(socket, login, password).await.map(Some),
                    None => Ok(Some(self.authenticate(login, password).await)),
                }
            }
            Step::Retrieve {
                number,
                base,
                octets,
                top,
            } => self.retrieve(number, base, octets, top).await,
            Step::Update(changes) => Ok(Some(self.update(changes).await)),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), End> {
        let idle = self.server.settings.idle;
        self.stream.write_all(bytes, idle).await.map_err(End::from)
    }

    async fn next_line(&mut self) -> Result<Line, End> {
        let idle = self.server.settings.idle;
        loop {
            if let Some(line) = self.lines.next(self.session.line_limit()) {
                return Ok(line);
            }
            let read = tokio::select! {
                _ = stopped(&mut self.stop) => {
                    let _ = self.write(b"-ERR [SYS/TEMP] server shutting down, try again later\r\n").await;
                    self.stream.close().await;
                    return Err(End::Stopping);
                }
                read = self.stream.read(&mut self.buf, idle) => read,
            };
            match read {
                Ok(0) => return Err(End::ClientGone),
                Ok(n) => {
                    let (lines, buf) = (&mut self.lines, &self.buf);
                    lines.push(buf.get(..n).unwrap_or_default());
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    // RFC 1939 section 3: the autologout timer ends the session without UPDATE.
                    let _ = self.write(b"-ERR autologout: idle for too long\r\n").await;
                    self.stream.close().await;
                    return Err(End::Timeout);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn authenticate(&mut self, login: String, password: Secret) -> Step {
        let ip = self.peer.ip().to_canonical().to_string();
        let who = self.peer.to_string();
        let answer = self
            .server
            .auth
            .login(&login, &password.0, &ip, self.server.service, &who)
            .await;
        drop(password);
        let outcome = match answer {
            // POP3 shows no quota, so the one moat-auth sent is left to moat-imapd and
            // moat-local.
            Login::User(logged_in) => self.open_maildrop(logged_in.user).await,
            Login::Failed => AuthOutcome::Failed,
            Login::Throttled => AuthOutcome::Throttled,
            Login::Unavailable => AuthOutcome::Unavailable,
        };
        self.session.auth_result(outcome)
    }

    /// moat-pop3-login: the password goes to moat-auth for a ticket; with one, the client, the
    /// ticket and what it pipelined after the command go to moat-pop3d, which answers the
    /// login. `Err(End::HandedOff)` when it took the client; otherwise the session answers here.
    async fn hand_off(
        &mut self,
        socket: &Path,
        login: String,
        password: Secret,
    ) -> Result<Step, End> {
        let ip = self.peer.ip().to_canonical().to_string();
        let who = self.peer.to_string();
        let ticket = self
            .server
            .auth
            .login_ticket(&login, &password.0, &ip, self.server.service, &who)
            .await;
        drop(password);
        let Ticket { user, token } = match ticket {
            Ok(ticket) => ticket,
            Err(Login::Failed) => return Ok(self.session.auth_result(AuthOutcome::Failed)),
            Err(Login::Throttled) => return Ok(self.session.auth_result(AuthOutcome::Throttled)),
            // Never a `Login::User`: that comes as a ticket.
            Err(Login::Unavailable | Login::User(_)) => {
                return Ok(self.session.auth_result(AuthOutcome::Unavailable));
            }
        };
        let handoff = Handoff {
            token,
            peer: self.peer,
            tls: self.stream.is_tls(),
            tag: String::new(),
            pending: self.lines.take(),
        };
        let stream = std::mem::replace(&mut self.stream, Stream::Gone);
        match hand_off(socket, stream, &handoff, self.server.settings.idle).await {
            Ok(how) => {
                self.user = Some(user);
                Err(End::HandedOff(how))
            }
            Err((stream, why)) => {
                warn!("{}: {user}: cannot hand the session over: {why}", self.peer);
                self.stream = stream;
                self.lines.push(&handoff.pending);
                Ok(self.session.auth_result(AuthOutcome::Unavailable))
            }
        }
    }

    async fn open_maildrop(&mut self, user: String) -> AuthOutcome {
        let root = self.server.settings.mail_root.clone();
        let who = user.clone();
        let opened = tokio::task::spawn_blocking(move || maildrop::open(&root, &who)).await;
        match opened {
            Ok(Ok((mailbox, drop))) => {
                let (n, octets) = drop.stat();
                info!(
                    "{}: {user} logged in ({}), {n} messages, {octets} octets",
                    self.peer,
                    if self.stream.is_tls() {
                        "TLS"
                    } else {
                        "plaintext"
                    }
                );
                self.mailbox = Some(mailbox);
                self.user = Some(user);
                AuthOutcome::LoggedIn(drop)
            }
            Ok(Err(OpenError::InUse)) => {
                info!("{}: {user}: maildrop in use", self.peer);
                AuthOutcome::InUse
            }
            Ok(Err(OpenError::Failed(e))) => {
                error!("{}: {user}: cannot open the maildrop: {e}", self.peer);
                AuthOutcome::Unavailable
            }
            Err(e) => {
                error!("{}: {user}: maildrop task failed: {e}", self.peer);
                AuthOutcome::Unavailable
            }
        }
    }

    /// RETR or TOP: `+OK`, the encoded message, `.`.
    async fn retrieve(
        &mut self,
        number: u32,
        base: String,
        octets: u64,
        top: Option<u64>,
    ) -> Result<Option<Step>, End> {
        let Some(maildir) = self.mailbox.as_ref().and_then(|m| m.maildir.clone()) else {
            return Ok(Some(self.session.vanished(number)));
        };
        // Open and read the first piece in one trip to the blocking pool: most messages fit.
        let opened = tokio::task::spawn_blocking(move || {
            let (mut file, _) = maildir.open_message(&base)?;
            let mut first = vec![0u8; CHUNK];
            let n = read_some(&mut file, &mut first).map_err(|e| MaildirError::Io {
                op: "read",
                path: base.into(),
                source: e,
            })?;
            first.truncate(n);
            Ok::<_, MaildirError>((file, first))
        })
        .await;
        let (file, first) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(MaildirError::MessageNotFound(_))) => {
                return Ok(Some(self.session.vanished(number)));
            }
            Ok(Err(e)) => {
                error!("{}: cannot read message {number}: {e}", self.peer);
                return Ok(Some(Step::Reply(
                    "-ERR [SYS/TEMP] cannot read the message now\r\n".into(),
                )));
            }
            Err(e) => return Err(End::Failed(format!("open task failed: {e}"))),
        };
        let mut out = match top {
            None => format!("+OK {octets} octets\r\n"),
            Some(_) => "+OK top of message follows\r\n".to_string(),
        }
        .into_bytes();
        let mut encoder = Encoder::new(top);
        encoder.encode(&first, &mut out);
        if first.len() == CHUNK {
            let mut file = tokio::fs::File::from_std(file);
            let mut chunk = first;
            while !encoder.is_done() {
                let n = match file.read(&mut chunk).await {
                    Ok(n) => n,
                    // The +OK may be out already: the answer cannot be completed honestly.
                    Err(e) => return Err(End::Failed(format!("reading message {number}: {e}"))),
                };
                if n == 0 {
                    break;
                }
                encoder.encode(chunk.get(..n).unwrap_or_default(), &mut out);
                if out.len() >= CHUNK {
                    self.write(&out).await?;
                    out.clear();
                }
            }
        }
        encoder.finish(&mut out);
        self.write(&out).await?;
        self.session.sent(number, top.is_some());
        Ok(None)
    }

    /// QUIT in TRANSACTION: the UPDATE state, then the in-use lock is released.
    async fn update(&mut self, changes: Vec<Change>) -> Step {
        let mailbox = self.mailbox.take();
        let n = changes.len();
        let result = tokio::task::spawn_blocking(move || {
            let outcome = mailbox
                .as_ref()
                .map(|m| maildrop::commit(m, &changes))
                .unwrap_or_default();
            drop(mailbox);
            outcome
        })
        .await;
        let failures = match result {
            Ok((0, _)) => 0,
            Ok((failed, errors)) => {
                for e in errors {
                    error!("{}: update: {e}", self.peer);
                }
                failed
            }
            Err(e) => {
                error!("{}: update task failed: {e}", self.peer);
                n.max(1)
            }
        };
        if n > 0 {
            info!("{}: update: {n} change(s), {failures} failed", self.peer);
        }
        self.session.updated(failures)
    }
}
