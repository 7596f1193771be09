//! The load generator: `sessions` SMTP sessions in parallel (one thread each, blocking std TCP),
//! each sending its share of the messages as sequential transactions on one connection
//! (MAIL / RCPT / DATA per message, QUIT at the end; no RSET, no PIPELINING). Sessions are
//! opened (greeting, EHLO, STARTTLS and AUTH when asked for) before the clock starts, so the
//! measurement is the mail, not the handshakes or the password hash.
//! A message counts as accepted when its `250` after the final dot arrives.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rustls::ClientConfig;

use super::session::Session;

/// What to send.
#[derive(Clone)]
pub struct Load {
    pub port: u16,
    pub sessions: usize,
    pub messages: usize,
    /// Bytes of message content (headers and body, CRLF line ends), before dot-stuffing.
    pub size: usize,
    pub sender: String,
    pub recipient: String,
    /// Goes into Subject and Message-ID so that every message of a run is unique.
    pub tag: String,
    /// STARTTLS with this configuration before the load.
    pub tls: Option<Arc<ClientConfig>>,
    /// AUTH PLAIN as (user, password) before the load (after STARTTLS).
    pub login: Option<(String, String)>,
}

/// A running load: the session threads, and counters the caller can watch.
pub struct Running {
    /// When the sessions were released (all threads started and waiting at a barrier).
    pub start: Instant,
    accepted: Arc<AtomicUsize>,
    failed: Arc<AtomicBool>,
    handles: Vec<thread::JoinHandle<Result<Sent>>>,
}

/// What one session sent.
struct Sent {
    /// When its last `250` after DATA came.
    last_accept: Instant,
    /// When each message's MAIL FROM was sent, by index.
    started: Vec<Instant>,
}

/// A finished load.
pub struct Finished {
    /// The latest `250` after DATA over all sessions.
    pub last_accept: Instant,
    pub accepted: usize,
    /// When each message's transaction began (MAIL FROM sent), by session and index: the
    /// start of its end-to-end latency.
    pub started: Vec<Vec<Instant>>,
}

impl Running {
    /// Messages accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// True once some session failed (the others go on until they finish or fail).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Waits for every session; the first error wins.
    pub fn finish(self) -> Result<Finished> {
        let mut last_accept = self.start;
        let mut started = Vec::with_capacity(self.handles.len());
        let mut first_error = None;
        for h in self.handles {
            match h.join() {
                Ok(Ok(sent)) => {
                    last_accept = last_accept.max(sent.last_accept);
                    started.push(sent.started);
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(anyhow::anyhow!("an SMTP session thread panicked"));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(Finished {
            last_accept,
            accepted: self.accepted.load(Ordering::Relaxed),
            started,
        })
    }
}

/// Opens the sessions, starts the load and returns at once; the clock starts when every
/// session is open (or failed to open).
pub fn start(load: &Load) -> Result<Running> {
    if load.sessions == 0 {
        bail!("at least one session is needed");
    }
    let barrier = Arc::new(Barrier::new(load.sessions + 1));
    let accepted = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(load.sessions);
    for session in 0..load.sessions {
        let share =
            load.messages / load.sessions + usize::from(session < load.messages % load.sessions);
        let load = load.clone();
        let barrier = Arc::clone(&barrier);
        let accepted = Arc::clone(&accepted);
        let failed = Arc::clone(&failed);
        let handle = thread::Builder::new()
            .name(format!("smtp-session-{session}"))
            .spawn(move || {
                let opened = Session::open(load.port, load.tls.as_ref(), load.login.as_ref());
                // Every thread reaches the barrier, or the others would wait for ever.
                barrier.wait();
                let result = opened
                    .and_then(|smtp| run_session(smtp, &load, session, share, &accepted))
                    .with_context(|| format!("SMTP session {session} to 127.0.0.1:{}", load.port));
                if result.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                result
            })
            .context("spawning an SMTP session thread")?;
        handles.push(handle);
    }
    barrier.wait();
    Ok(Running {
        start: Instant::now(),
        accepted,
        failed,
        handles,
    })
}

/// One session's transactions, then QUIT.
fn run_session(
    mut smtp: Session,
    load: &Load,
    session: usize,
    count: usize,
    accepted: &AtomicUsize,
) -> Result<Sent> {
    let mut last_accept = Instant::now();
    let mut started = Vec::with_capacity(count);
    let mail = format!("MAIL FROM:<{}>\r\n", load.sender);
    let rcpt = format!("RCPT TO:<{}>\r\n", load.recipient);
    for index in 0..count {
        started.push(Instant::now());
        smtp.command(Some(mail.as_bytes()), 250, "MAIL FROM")?;
        smtp.command(Some(rcpt.as_bytes()), 250, "RCPT TO")?;
        smtp.command(Some(b"DATA\r\n"), 354, "DATA")?;
        let mut data = message(load, session, index);
        data.extend_from_slice(b".\r\n");
        smtp.command(Some(&data), 250, "the end of DATA")?;
        last_accept = Instant::now();
        accepted.fetch_add(1, Ordering::Relaxed);
    }
    smtp.command(Some(b"QUIT\r\n"), 221, "QUIT")?;
    Ok(Sent {
        last_accept,
        started,
    })
}

/// A plausible message of exactly `load.size` bytes (CRLF line ends, no line starting with a dot,
/// so it needs no dot-stuffing), unique per session and index.
pub fn message(load: &Load, session: usize, index: usize) -> Vec<u8> {
    let mut m = format!(
        "From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: moat-bench smtp {tag} {session}/{index}\r\n\
         Message-ID: <{tag}.{session}.{index}@client.bench.test>\r\n\
         Date: Sun, 29 Nov 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        sender = load.sender,
        rcpt = load.recipient,
        tag = load.tag,
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTUV\r\n";
    while m.len() + line.len() + 2 <= load.size {
        m.extend_from_slice(line);
    }
    // The last line takes what is left (at least its CRLF), so the size is exact.
    let rest = load.size.saturating_sub(m.len() + 2);
    m.resize(m.len() + rest, b'x');
    m.extend_from_slice(b"\r\n");
    m
}

/// The (tag, session, index) that `message` put into a `Message-ID:` header line, so that a
/// receiving end can tell which message arrived.
pub fn parse_message_id(line: &str) -> Option<(&str, usize, usize)> {
    let (name, value) = line.split_once(':')?;
    if !name.eq_ignore_ascii_case("message-id") {
        return None;
    }
    let id = value.trim().strip_prefix('<')?.split_once('@')?.0;
    let (rest, index) = id.rsplit_once('.')?;
    let (tag, session) = rest.rsplit_once('.')?;
    Some((tag, session.parse().ok()?, index.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_exact_size_and_clean_lines() {
        for size in [512, 1000, 4095, 4096, 4097, 10_000] {
            let load = Load {
                port: 0,
                sessions: 1,
                messages: 1,
                size,
                sender: "sender@bench.test".into(),
                recipient: "bench@bench.test".into(),
                tag: "t".into(),
                tls: None,
                login: None,
            };
            let m = message(&load, 3, 7);
            assert_eq!(m.len(), size, "size {size}");
            let text = String::from_utf8_lossy(&m);
            let ids: Vec<_> = text.lines().filter_map(parse_message_id).collect();
            assert_eq!(ids, [("t", 3, 7)]);
            assert!(m.ends_with(b"\r\n"));
            let text = String::from_utf8(m).expect("ascii");
            for line in text.split("\r\n") {
                assert!(!line.starts_with('.'), "dot line in {size}");
                assert!(!line.contains('\r') && !line.contains('\n'));
                assert!(line.len() < 998);
            }
        }
    }
}
