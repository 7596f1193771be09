//! The load generator: `sessions` SMTP sessions in parallel (one thread each, blocking std TCP),
//! each sending its share of the messages as sequential transactions on one connection
//! (EHLO once, then MAIL / RCPT / DATA per message, QUIT at the end; no RSET, no PIPELINING).
//! A message counts as accepted when its `250` after the final dot arrives.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long one reply may take before the session gives up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

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
}

/// A running load: the session threads, and counters the caller can watch.
pub struct Running {
    /// When the sessions were released (all threads started and waiting at a barrier).
    pub start: Instant,
    accepted: Arc<AtomicUsize>,
    failed: Arc<AtomicBool>,
    handles: Vec<thread::JoinHandle<Result<Instant>>>,
}

/// A finished load.
pub struct Finished {
    /// The latest `250` after DATA over all sessions.
    pub last_accept: Instant,
    pub accepted: usize,
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
        let mut first_error = None;
        for h in self.handles {
            match h.join() {
                Ok(Ok(t)) => last_accept = last_accept.max(t),
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
        })
    }
}

/// Starts the sessions and returns at once; the clock starts when all threads are ready.
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
                barrier.wait();
                let result = run_session(&load, session, share, &accepted)
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

/// One session: connect, EHLO, `count` transactions, QUIT. Returns when its last 250 came.
fn run_session(
    load: &Load,
    session: usize,
    count: usize,
    accepted: &AtomicUsize,
) -> Result<Instant> {
    let stream = TcpStream::connect(("127.0.0.1", load.port)).context("connect")?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut smtp = |command: Option<&[u8]>, expect: u16, what: &str| -> Result<()> {
        if let Some(bytes) = command {
            writer.write_all(bytes)?;
        }
        let (code, text) =
            read_reply(&mut reader).with_context(|| format!("reading the reply to {what}"))?;
        if code != expect {
            bail!("{what}: expected {expect}, got {code} {}", text.trim_end());
        }
        Ok(())
    };
    smtp(None, 220, "the greeting")?;
    smtp(Some(b"EHLO client.bench.test\r\n"), 250, "EHLO")?;
    let mut last = Instant::now();
    let mail = format!("MAIL FROM:<{}>\r\n", load.sender);
    let rcpt = format!("RCPT TO:<{}>\r\n", load.recipient);
    for index in 0..count {
        smtp(Some(mail.as_bytes()), 250, "MAIL FROM")?;
        smtp(Some(rcpt.as_bytes()), 250, "RCPT TO")?;
        smtp(Some(b"DATA\r\n"), 354, "DATA")?;
        let mut data = message(load, session, index);
        data.extend_from_slice(b".\r\n");
        smtp(Some(&data), 250, "the end of DATA")?;
        last = Instant::now();
        accepted.fetch_add(1, Ordering::Relaxed);
    }
    smtp(Some(b"QUIT\r\n"), 221, "QUIT")?;
    Ok(last)
}

/// Reads one (possibly multi-line) reply: its code and text.
fn read_reply(reader: &mut impl BufRead) -> Result<(u16, String)> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            bail!(
                "the server closed the connection (after {:?})",
                text.trim_end()
            );
        }
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .with_context(|| format!("not an SMTP reply: {:?}", line.trim_end()))?;
        let last = line.as_bytes().get(3) != Some(&b'-');
        text.push_str(&line);
        if last {
            return Ok((code, text));
        }
    }
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
            };
            let m = message(&load, 3, 7);
            assert_eq!(m.len(), size, "size {size}");
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
