//! The relay benchmark's destination: a minimal SMTP server on a free 127.0.0.1 port that
//! accepts every command, keeps no message, and records when each message's final dot arrived,
//! keyed by the `Message-ID` the load generator wrote (so latency is per message, and a message
//! delivered twice is counted once). Postfix's smtp-sink would do the SMTP side too, but it only
//! counts; timing each message needs its identity. For the lists benchmark (one message, many
//! recipients) it also keeps every recipient of each completed transaction.
//!
//! One thread per connection, blocking std I/O: the relays open at most a few dozen at a time.
//! Replies are flushed only when no more input is buffered, so a pipelining client (both relays
//! pipeline MAIL/RCPT/DATA when offered) gets them in one segment.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::smtp::client::parse_message_id;

/// An idle connection is dropped after this long (the relays' own idle limits are shorter).
const IDLE: Duration = Duration::from_secs(300);

/// When each message of one tag first arrived, by (session, index).
pub type Arrivals = HashMap<(usize, usize), Instant>;

#[derive(Default)]
struct Shared {
    /// First arrivals by tag.
    arrivals: Mutex<HashMap<String, Arrivals>>,
    /// Messages that arrived again, and messages without a Message-ID of ours.
    duplicates: AtomicUsize,
    unknown: AtomicUsize,
    connections: AtomicUsize,
    /// Every recipient of a completed transaction (the lists benchmark: one message, many
    /// recipients), and how many transactions completed.
    recipients: Mutex<HashSet<Vec<u8>>>,
    transactions: AtomicUsize,
    /// Recipients that came again in a later transaction.
    recipient_repeats: AtomicUsize,
    /// Open connections by number, shut down when the sink stops so their threads end.
    open: Mutex<HashMap<usize, TcpStream>>,
}

pub struct Sink {
    port: u16,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl Sink {
    pub fn start() -> Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the sink")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("sink-accept".into())
                .spawn(move || accept(&listener, &shared, &stop))
                .context("spawning the sink")?
        };
        Ok(Sink {
            port,
            shared,
            stop,
            acceptor: Some(acceptor),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Distinct messages of this tag received so far.
    pub fn count(&self, tag: &str) -> usize {
        self.shared
            .arrivals
            .lock()
            .map_or(0, |a| a.get(tag).map_or(0, HashMap::len))
    }

    /// When each message of this tag first arrived.
    pub fn arrivals(&self, tag: &str) -> Arrivals {
        self.shared
            .arrivals
            .lock()
            .ok()
            .and_then(|a| a.get(tag).cloned())
            .unwrap_or_default()
    }

    /// Messages received more than once (any tag): at-least-once delivery at work.
    pub fn duplicates(&self) -> usize {
        self.shared.duplicates.load(Ordering::Relaxed)
    }

    /// Messages without a benchmark Message-ID (bounces, for instance).
    pub fn unknown(&self) -> usize {
        self.shared.unknown.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Distinct recipients of completed transactions so far (RCPT addresses, as sent).
    pub fn recipients(&self) -> usize {
        self.shared.recipients.lock().map_or(0, |r| r.len())
    }

    /// Recipients received again after a first completed transaction for them.
    pub fn recipient_repeats(&self) -> usize {
        self.shared.recipient_repeats.load(Ordering::Relaxed)
    }

    /// Transactions completed (final dot answered) so far.
    pub fn transactions(&self) -> usize {
        self.shared.transactions.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept; it sees the flag and returns its connection threads. Only
        // then are the open connections cut, so none can be accepted after the cut.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        let threads = self
            .acceptor
            .take()
            .and_then(|a| a.join().ok())
            .unwrap_or_default();
        if let Ok(open) = self.shared.open.lock() {
            for stream in open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>, stop: &AtomicBool) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::new();
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let number = shared.connections.fetch_add(1, Ordering::Relaxed);
        if let (Ok(mut open), Ok(clone)) = (shared.open.lock(), stream.try_clone()) {
            open.insert(number, clone);
        }
        let shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("sink-session".into())
            .spawn(move || {
                // A relay that hangs up early is its own business; the count tells.
                let _ = serve(stream, &shared);
                if let Ok(mut open) = shared.open.lock() {
                    open.remove(&number);
                }
            });
        // Finished threads need no join (dropping the handle releases them); Moat opens one
        // connection per message, so the list would otherwise grow with the load.
        threads.retain(|t: &JoinHandle<()>| !t.is_finished());
        if let Ok(t) = spawned {
            threads.push(t);
        }
    }
    threads
}

fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE))?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut out = BufWriter::new(stream);
    out.write_all(b"220 sink.bench.test ESMTP moat-bench sink\r\n")?;
    let mut line = Vec::with_capacity(1024);
    // The current transaction's recipients, noted when its final dot arrives.
    let mut rcpts: Vec<Vec<u8>> = Vec::new();
    loop {
        if reader.buffer().is_empty() {
            out.flush()?;
        }
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).map(<[u8]>::to_ascii_uppercase);
        let reply: &[u8] = match verb.as_deref() {
            Some(b"EHLO") => {
                b"250-sink.bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1073741824\r\n"
            }
            Some(b"HELO") => b"250 sink.bench.test\r\n",
            Some(b"MAIL") => {
                rcpts.clear();
                b"250 2.1.0 Ok\r\n"
            }
            Some(b"RCPT") => {
                rcpts.push(address(&line));
                b"250 2.1.5 Ok\r\n"
            }
            Some(b"RSET" | b"NOOP") => {
                rcpts.clear();
                b"250 2.0.0 Ok\r\n"
            }
            Some(b"DATA") => {
                out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                out.flush()?;
                receive(&mut reader, shared)?;
                shared.transactions.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut all) = shared.recipients.lock() {
                    for r in rcpts.drain(..) {
                        if !all.insert(r) {
                            shared.recipient_repeats.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                b"250 2.0.0 Ok: dropped\r\n"
            }
            Some(b"QUIT") => {
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                return out.flush();
            }
            _ => b"502 5.5.2 Command not recognized\r\n",
        };
        out.write_all(reply)?;
    }
}

/// The address of a `RCPT TO:<address> ...` line, lower-cased (what is between the brackets).
fn address(line: &[u8]) -> Vec<u8> {
    let start = line.iter().position(|&b| b == b'<').map_or(0, |p| p + 1);
    let end = line[start..]
        .iter()
        .position(|&b| b == b'>')
        .map_or(line.len(), |p| start + p);
    line[start..end].to_ascii_lowercase()
}

/// Reads a message up to its final dot and records its arrival.
fn receive(reader: &mut impl BufRead, shared: &Shared) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(1024);
    let mut id: Option<(String, usize, usize)> = None;
    let mut in_header = true;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        if in_header {
            if line == b"\r\n" || line == b"\n" {
                in_header = false;
            } else if id.is_none() {
                id = std::str::from_utf8(&line)
                    .ok()
                    .and_then(parse_message_id)
                    .map(|(tag, session, index)| (tag.to_owned(), session, index));
            }
        }
    }
    let now = Instant::now();
    let Some((tag, session, index)) = id else {
        shared.unknown.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    if let Ok(mut arrivals) = shared.arrivals.lock() {
        match arrivals.entry(tag).or_default().entry((session, index)) {
            Entry::Vacant(v) => {
                v.insert(now);
            }
            Entry::Occupied(_) => {
                shared.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::client::{Load, message};
    use crate::smtp::session::Session;

    #[test]
    fn counts_each_message_once_and_notes_duplicates() {
        let sink = Sink::start().expect("sink");
        let load = Load {
            port: sink.port(),
            sessions: 1,
            messages: 1,
            size: 1000,
            sender: "a@bench.test".into(),
            recipient: "b@relay.test".into(),
            tag: "t1".into(),
            tls: None,
            login: None,
        };
        let mut smtp = Session::open(sink.port(), None, None).expect("open");
        for index in [0, 1, 0] {
            smtp.command(Some(b"MAIL FROM:<a@bench.test>\r\n"), 250, "MAIL")
                .expect("MAIL");
            smtp.command(Some(b"RCPT TO:<b@relay.test>\r\n"), 250, "RCPT")
                .expect("RCPT");
            smtp.command(Some(b"DATA\r\n"), 354, "DATA").expect("DATA");
            let mut data = message(&load, 2, index);
            data.extend_from_slice(b".\r\n");
            smtp.command(Some(&data), 250, "dot").expect("dot");
        }
        smtp.command(Some(b"QUIT\r\n"), 221, "QUIT").expect("QUIT");
        assert_eq!(sink.count("t1"), 2);
        assert_eq!(sink.count("other"), 0);
        assert_eq!(sink.duplicates(), 1);
        assert_eq!(sink.unknown(), 0);
        assert_eq!(sink.connections(), 1);
        assert_eq!((sink.recipients(), sink.transactions()), (1, 3));
        assert_eq!(sink.recipient_repeats(), 2);
        let arrivals = sink.arrivals("t1");
        assert!(arrivals.contains_key(&(2, 0)) && arrivals.contains_key(&(2, 1)));
    }
}
