//! One SMTP session with one address of one host (`open`: greeting, EHLO (HELO if refused),
//! STARTTLS by policy) and the transactions run on it (`send`: SIZE checked against the
//! server's limit, SMTPUTF8 required when the message needs it, MAIL with BODY=8BITMIME and
//! SMTPUTF8 when offered and needed, every RCPT, DATA (all pipelined when the server offers
//! PIPELINING, RFC 2920), the dot-stuffed message). A session whose transaction ended cleanly is
//! handed back for reuse (`pool`); one left mid-transaction gets RSET before its next one.
//!
//! The outcome is either "try the next address" (nothing decided: no connection, a bad greeting,
//! EHLO and HELO refused, TLS required and not possible, RSET or MAIL refused temporarily) or one
//! status per recipient: a RCPT reply decides its recipient; the final reply decides every
//! accepted one. A connection lost after the message was sent leaves the accepted recipients
//! temporary (a retry may deliver twice: at least once).
//!
//! SECURITY: the server is untrusted: replies are read with hard bounds (`reply`), every wait has
//! an RFC 5321 §4.5.3.2 timeout, bytes pipelined by the server after its STARTTLS 220 end the
//! connection (no plaintext injection into the TLS session), and the message goes out
//! dot-stuffed with CRLF only (`dotstuff`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use moat_common::config::TlsPolicy;
use moat_common::wire::Status;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::auth::Credentials;
use super::auth::exchange::authenticate;
use super::auth::sasl::Offered;
use super::dotstuff::DotStuffer;
use super::mime::Needs;
use super::pool::Closable;
use super::reply::{Reply, ReplyReader};
use super::settings::Timeouts;
use super::tls::Tls;

/// What one transaction needs.
pub struct Job<'a> {
    pub helo: &'a str,
    pub sender: &'a str,
    pub recipients: &'a [String],
    /// The message, read from offset 0 (a fresh descriptor from the queue).
    pub message: &'a std::fs::File,
    /// Header lines sent in front of the message (the DKIM signatures, `dkim`); may be empty.
    pub prefix: &'a [u8],
    /// The size as sent: prefix and message.
    pub size: u64,
    /// What the message needs from the server (`mime`).
    pub needs: Needs,
}

/// How one attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing was decided; try the next address (the text says why, for the log and retry).
    Next(String),
    /// The STARTTLS handshake failed under `may`: try this address again without TLS.
    Plaintext(String),
    /// One status per recipient.
    Done(Vec<Status>),
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Closed,
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Io::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Io::Closed => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s).poll_flush(cx),
            Io::Closed => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Io::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// One connection's I/O (shared with `auth::exchange`, which runs AUTH on it).
pub(super) struct Session {
    io: Io,
    reader: ReplyReader,
    t: Timeouts,
    /// `host[addr]` for texts.
    pub(super) peer: String,
}

async fn timed<T, E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {} s", limit.as_secs())),
    }
}

impl Session {
    async fn reply(&mut self, limit: Duration, what: &str) -> Result<Reply, String> {
        let (reader, io) = (&mut self.reader, &mut self.io);
        timed(limit, what, reader.read(io))
            .await
            .map_err(|e| format!("4.4.2 {}: {e}", self.peer))
    }

    async fn send(&mut self, bytes: &[u8], limit: Duration) -> Result<(), String> {
        let io = &mut self.io;
        timed(limit, "sending", async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .map_err(|e| format!("4.4.2 {}: {e}", self.peer))
    }

    async fn command(&mut self, line: &str) -> Result<Reply, String> {
        let what = line.split(':').next().unwrap_or(line).to_string();
        self.command_named(line, &what).await
    }

    /// Sends `line`; errors name it `what` (AUTH lines carry credentials, which must not end
    /// up in an error text).
    pub(super) async fn command_named(&mut self, line: &str, what: &str) -> Result<Reply, String> {
        self.send(format!("{line}\r\n").as_bytes(), self.t.command)
            .await?;
        self.reply(self.t.command, what).await
    }

    /// Whether the session runs inside TLS.
    pub(super) fn encrypted(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    async fn quit(mut self) {
        let short = Duration::from_secs(5).min(self.t.command);
        if self.send(b"QUIT\r\n", short).await.is_ok() {
            let _ = self.reply(short, "QUIT").await;
        }
        let _ = self.io.shutdown().await;
    }
}

/// What EHLO told us.
#[derive(Default)]
struct Extensions {
    starttls: bool,
    pipelining: bool,
    /// SIZE offered (RFC 1870: only then may MAIL carry SIZE=).
    size_offered: bool,
    /// Its limit; `None` for none ("SIZE" alone or "SIZE 0").
    size: Option<u64>,
    eightbitmime: bool,
    smtputf8: bool,
    /// The SASL mechanisms offered (used only on routes with credentials).
    auth: Offered,
}

fn extensions(reply: &Reply) -> Extensions {
    let mut ext = Extensions::default();
    for line in reply.lines.iter().skip(1) {
        ext.auth.add_line(line);
        let mut words = line.split_whitespace();
        match words.next().map(str::to_ascii_uppercase).as_deref() {
            Some("STARTTLS") => ext.starttls = true,
            Some("PIPELINING") => ext.pipelining = true,
            Some("SIZE") => {
                ext.size_offered = true;
                ext.size = words.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0);
            }
            Some("8BITMIME") => ext.eightbitmime = true,
            Some("SMTPUTF8") => ext.smtputf8 = true,
            _ => {}
        }
    }
    ext
}

/// An open session between transactions: after EHLO (and STARTTLS), or after a transaction.
pub struct Connection {
    s: Session,
    ext: Extensions,
    opened: Instant,
    /// A transaction was begun and not finished (MAIL accepted, no message sent): RSET first.
    dirty: bool,
}

impl Connection {
    /// `host[addr]`, for logs.
    pub fn peer(&self) -> &str {
        &self.s.peer
    }

    /// Time since the connection was opened.
    pub fn age(&self) -> Duration {
        self.opened.elapsed()
    }

    /// Says QUIT (briefly) and closes.
    pub async fn quit(self) {
        self.s.quit().await;
    }
}

impl Closable for Connection {
    async fn close(self) {
        self.quit().await;
    }
}

/// How a transaction left the session.
enum After {
    /// Ready for another transaction.
    Clean,
    /// Reusable after RSET.
    Dirty,
    /// The server answered but should not be used again (it said 421, or MAIL was refused
    /// temporarily): QUIT.
    Quit,
    /// The connection broke (I/O error, timeout, bad reply): just close it.
    Drop,
}

/// `5.1.1 host[addr] said: 550 5.1.1 no such user` — with the server's enhanced code when it
/// sent one (of its reply's class), else `<class>.0.0`.
fn said(peer: &str, reply: &Reply) -> String {
    let first = reply
        .lines
        .first()
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("");
    let class = reply.class().to_string();
    let parts: Vec<&str> = first.split('.').collect();
    let enhanced = parts.len() == 3
        && parts[0] == class
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    let code = if enhanced {
        first.to_string()
    } else {
        format!("{class}.0.0")
    };
    format!("{code} {peer} said: {}", reply.text())
}

fn status_of(peer: &str, reply: &Reply) -> Status {
    match reply.class() {
        2 | 3 => Status::Ok(format!("{peer} said: {}", reply.text())),
        4 => Status::Temporary(said(peer, reply)),
        _ => Status::Permanent(said(peer, reply)),
    }
}

/// Opens a session with `addr` (host name `host` for TLS and texts): connect, greeting, EHLO,
/// STARTTLS by policy, then AUTH when the route has credentials. `Err` is `Outcome::Next` (an
/// AUTH refused or impossible included: another host of the route may take it) or, under `may`
/// after a failed handshake, `Outcome::Plaintext`.
pub async fn open(
    tls: &Tls,
    policy: TlsPolicy,
    t: Timeouts,
    host: &str,
    addr: SocketAddr,
    helo: &str,
    creds: Option<&Credentials>,
) -> Result<Connection, Outcome> {
    let peer = format!("{host}[{}]", addr.ip());
    let opened = Instant::now();
    let tcp = match timed(t.connect, "connect", TcpStream::connect(addr)).await {
        Ok(s) => s,
        Err(e) => return Err(Outcome::Next(format!("4.4.1 {peer}: {e}"))),
    };
    // Commands and the message are written whole; Nagle would only hold back pipelined tails.
    if let Err(e) = tcp.set_nodelay(true) {
        return Err(Outcome::Next(format!("4.4.1 {peer}: {e}")));
    }
    let mut s = Session {
        io: Io::Plain(tcp),
        reader: ReplyReader::new(),
        t,
        peer,
    };
    match s.reply(t.command, "greeting").await {
        Ok(r) if r.class() == 2 => {}
        Ok(r) => {
            let text = said(&s.peer, &r);
            s.quit().await;
            return Err(Outcome::Next(text));
        }
        Err(e) => return Err(Outcome::Next(e)),
    }
    let mut ext = hello(&mut s, helo).await.map_err(Outcome::Next)?;
    if policy != TlsPolicy::None {
        if ext.starttls {
            match starttls(&mut s, tls, policy, host).await {
                Ok(()) => {}
                Err(e) if policy == TlsPolicy::May => return Err(Outcome::Plaintext(e)),
                Err(e) => return Err(Outcome::Next(e)),
            }
            ext = hello(&mut s, helo).await.map_err(Outcome::Next)?;
        } else if policy != TlsPolicy::May {
            let text = format!(
                "4.7.4 {} does not offer STARTTLS and the TLS policy is {}",
                s.peer,
                policy.name()
            );
            s.quit().await;
            return Err(Outcome::Next(text));
        }
    }
    if let Some(creds) = creds
        && let Err(text) = authenticate(&mut s, &ext.auth, creds, addr.ip()).await
    {
        s.quit().await;
        return Err(Outcome::Next(text));
    }
    Ok(Connection {
        s,
        ext,
        opened,
        dirty: false,
    })
}

/// Runs one transaction on `conn`. The connection comes back when it can carry another one.
pub async fn send(mut conn: Connection, job: &Job<'_>) -> (Outcome, Option<Connection>) {
    let n = job.recipients.len();
    if conn.dirty {
        match conn.s.command("RSET").await {
            Ok(r) if r.class() == 2 => conn.dirty = false,
            Ok(r) => {
                let text = said(&conn.s.peer, &r);
                conn.quit().await;
                return (Outcome::Next(text), None);
            }
            Err(e) => return (Outcome::Next(e), None),
        }
    }
    if let Some(limit) = conn.ext.size
        && job.size > limit
    {
        let text = format!(
            "5.3.4 the message ({} bytes) is larger than {} accepts ({limit} bytes)",
            job.size, conn.s.peer
        );
        return (Outcome::Done(vec![Status::Permanent(text); n]), Some(conn));
    }
    if job.needs.smtputf8 && !conn.ext.smtputf8 {
        // RFC 6531 §3.2: without SMTPUTF8 on both ends the addresses or header cannot be
        // carried; another MX of the same domain runs the same software, so this decides.
        let text = format!(
            "5.6.7 {} does not support SMTPUTF8, which this message needs \
             (a non-ASCII address or header)",
            conn.s.peer
        );
        return (Outcome::Done(vec![Status::Permanent(text); n]), Some(conn));
    }
    let (outcome, after) = transaction(&mut conn.s, &conn.ext, job).await;
    match after {
        After::Clean => (outcome, Some(conn)),
        After::Dirty => {
            conn.dirty = true;
            (outcome, Some(conn))
        }
        After::Quit => {
            conn.quit().await;
            (outcome, None)
        }
        After::Drop => (outcome, None),
    }
}

async fn hello(s: &mut Session, helo: &str) -> Result<Extensions, String> {
    let r = s.command(&format!("EHLO {helo}")).await?;
    if r.class() == 2 {
        return Ok(extensions(&r));
    }
    let r = s.command(&format!("HELO {helo}")).await?;
    if r.class() == 2 {
        return Ok(Extensions::default());
    }
    Err(said(&s.peer, &r))
}

async fn starttls(s: &mut Session, tls: &Tls, policy: TlsPolicy, host: &str) -> Result<(), String> {
    let r = s.command("STARTTLS").await?;
    if r.class() != 2 {
        return Err(said(&s.peer, &r));
    }
    if s.reader.pending() > 0 {
        return Err(format!(
            "4.7.0 {} sent data after its STARTTLS reply: refused",
            s.peer
        ));
    }
    let Io::Plain(tcp) = std::mem::replace(&mut s.io, Io::Closed) else {
        return Err("4.7.0 TLS already active".into());
    };
    let config = match policy {
        TlsPolicy::Verify => Arc::clone(&tls.verified),
        _ => Arc::clone(&tls.unverified),
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("4.7.0 {host} is not a TLS server name: {e}"))?;
    let stream = timed(
        s.t.command,
        "TLS handshake",
        TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|e| format!("4.7.5 {}: {e}", s.peer))?;
    s.io = Io::Tls(Box::new(stream));
    s.reader = ReplyReader::new();
    Ok(())
}

/// An address as it may go between angle brackets: no controls, spaces or brackets (non-ASCII
/// only reaches here when SMTPUTF8 is in use: `send` refuses it otherwise).
fn plain_address(address: &str) -> bool {
    address
        .chars()
        .all(|c| !c.is_control() && !c.is_whitespace() && c != '<' && c != '>')
}

/// The MAIL FROM line: SIZE (RFC 1870) when offered, BODY=8BITMIME (RFC 6152) and SMTPUTF8
/// (RFC 6531) when offered and the message needs them.
fn mail_line(ext: &Extensions, job: &Job<'_>) -> String {
    let mut line = format!("MAIL FROM:<{}>", job.sender);
    if ext.size_offered {
        line.push_str(&format!(" SIZE={}", job.size));
    }
    if job.needs.eight_bit && ext.eightbitmime {
        line.push_str(" BODY=8BITMIME");
    }
    if job.needs.smtputf8 && ext.smtputf8 {
        line.push_str(" SMTPUTF8");
    }
    line.push_str("\r\n");
    line
}

/// The session state after an aborted transaction: RSET can clean it, unless a reply said the
/// server is closing (421).
fn aborted(replies: &[Reply]) -> After {
    if replies.iter().any(|r| r.code == 421) {
        After::Quit
    } else {
        After::Dirty
    }
}

async fn transaction(s: &mut Session, ext: &Extensions, job: &Job<'_>) -> (Outcome, After) {
    let n = job.recipients.len();
    if !plain_address(job.sender) || !job.recipients.iter().all(|r| plain_address(r)) {
        let bad = Status::Permanent("5.1.3 bad address in the envelope".into());
        return (Outcome::Done(vec![bad; n]), After::Clean);
    }
    let mail = mail_line(ext, job);
    let rcpts: Vec<String> = job
        .recipients
        .iter()
        .map(|r| format!("RCPT TO:<{r}>\r\n"))
        .collect();
    // Replies: MAIL, each RCPT, DATA.
    let mut replies: Vec<Reply> = Vec::with_capacity(n + 2);
    if ext.pipelining {
        let mut batch = mail.into_bytes();
        for r in &rcpts {
            batch.extend_from_slice(r.as_bytes());
        }
        batch.extend_from_slice(b"DATA\r\n");
        if let Err(e) = s.send(&batch, s.t.command).await {
            return (Outcome::Next(e), After::Drop);
        }
        for i in 0..n + 2 {
            match s.reply(s.t.command, "MAIL/RCPT/DATA").await {
                Ok(r) => replies.push(r),
                Err(e) if i == 0 => return (Outcome::Next(e), After::Drop),
                Err(e) => {
                    return (
                        Outcome::Done(undecided(&s.peer, &replies, n, &e)),
                        After::Drop,
                    );
                }
            }
        }
    } else {
        let mut lines = vec![mail];
        lines.extend(rcpts);
        for (i, line) in lines.iter().enumerate() {
            let r = match s.command(line.trim_end()).await {
                Ok(r) => r,
                Err(e) if i == 0 => return (Outcome::Next(e), After::Drop),
                Err(e) => {
                    return (
                        Outcome::Done(undecided(&s.peer, &replies, n, &e)),
                        After::Drop,
                    );
                }
            };
            let stop = i == 0 && r.class() != 2;
            replies.push(r);
            if stop {
                break;
            }
        }
        let any = replies.len() == n + 1 && replies[1..].iter().any(|r| r.class() == 2);
        if any {
            match s.command("DATA").await {
                Ok(r) => replies.push(r),
                Err(e) => {
                    return (
                        Outcome::Done(undecided(&s.peer, &replies, n, &e)),
                        After::Drop,
                    );
                }
            }
        }
    }
    let mail_reply = replies[0].clone();
    match mail_reply.class() {
        2 => {}
        4 => return (Outcome::Next(said(&s.peer, &mail_reply)), After::Quit),
        _ => {
            let st = status_of(&s.peer, &mail_reply);
            return (Outcome::Done(vec![st; n]), aborted(&replies));
        }
    }
    let mut results: Vec<Option<Status>> = replies[1..=n]
        .iter()
        .map(|r| (r.class() != 2).then(|| status_of(&s.peer, r)))
        .collect();
    let accepted = results.iter().filter(|r| r.is_none()).count();
    let data_ok = replies.get(n + 1).is_some_and(|r| r.code == 354);
    if accepted == 0 || !data_ok {
        let text = match replies.get(n + 1) {
            Some(r) if accepted > 0 => status_of(&s.peer, r),
            _ => Status::Temporary(format!("4.0.0 {}: no recipient accepted", s.peer)),
        };
        let statuses = results
            .into_iter()
            .map(|r| r.unwrap_or(text.clone()))
            .collect();
        return (Outcome::Done(statuses), aborted(&replies));
    }
    let (final_status, after) = match send_message(s, job.prefix, job.message).await {
        Ok(()) => match s.reply(s.t.data_end, "end of data").await {
            // Whatever the code, the reply after the dot ends the transaction (RFC 5321
            // §4.1.1.4); only 421 says the server is closing.
            Ok(r) if r.code == 421 => (status_of(&s.peer, &r), After::Quit),
            Ok(r) => (status_of(&s.peer, &r), After::Clean),
            Err(e) => (
                Status::Temporary(format!("{e} (after the message was sent)")),
                After::Drop,
            ),
        },
        Err(e) => (Status::Temporary(e), After::Drop),
    };
    for r in &mut results {
        if r.is_none() {
            *r = Some(final_status.clone());
        }
    }
    let statuses = results
        .into_iter()
        .map(|r| r.unwrap_or(final_status.clone()))
        .collect();
    (Outcome::Done(statuses), after)
}

/// Statuses when the connection failed after MAIL was accepted: decided recipients keep their
/// reply, the rest are temporary.
fn undecided(peer: &str, replies: &[Reply], n: usize, error: &str) -> Vec<Status> {
    (0..n)
        .map(|i| match replies.get(i + 1) {
            Some(r) if r.class() != 2 => status_of(peer, r),
            _ => Status::Temporary(error.to_string()),
        })
        .collect()
}

async fn send_message(
    s: &mut Session,
    prefix: &[u8],
    message: &std::fs::File,
) -> Result<(), String> {
    let file = message
        .try_clone()
        .map_err(|e| format!("4.3.0 cannot read the message: {e}"))?;
    let mut file = tokio::fs::File::from_std(file);
    file.seek(std::io::SeekFrom::Start(0))
        .await
        .map_err(|e| format!("4.3.0 cannot read the message: {e}"))?;
    let mut stuffer = DotStuffer::default();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(70 * 1024);
    // Dot-stuffed like the rest, so the prefix obeys the same CRLF and end-of-data rules.
    stuffer.push(prefix, &mut out);
    loop {
        let got = file
            .read(&mut chunk)
            .await
            .map_err(|e| format!("4.3.0 cannot read the message: {e}"))?;
        if got == 0 {
            break;
        }
        stuffer.push(&chunk[..got], &mut out);
        // The tail stays buffered so the end-of-data dot leaves in the same write as the last
        // bytes: a separate small write would wait for the peer's delayed ACK (~40 ms/message).
        if out.len() >= chunk.len() {
            s.send(&out, s.t.data_block).await?;
            out.clear();
        }
    }
    stuffer.finish(&mut out);
    s.send(&out, s.t.data_block).await
}
