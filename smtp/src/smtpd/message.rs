//! One message on its way from the session into moat-queue: the injection is opened at
//! `MessageStart`, our `Received:` line goes in first, then the body streams through as the
//! session hands it over, and `MessageEnd` sends the envelope and waits for the queue's word.
//!
//! On submission the header section is held back (at most `MAX_HEADER` octets) until its end
//! is seen, so that `Date:` and `Message-ID:` can be added at its end when the client left them
//! out (RFC 6409 8.2, 8.3). A header longer than that passes through unchanged. The header
//! ends at the first empty line, or at the first line that is neither a header field nor a
//! continuation; in that case, if we add a field, an empty line is added after it so that line
//! stays body text.
//!
//! SECURITY: no whole message is ever held: past the header (or from the start on port 25)
//! bytes go to the queue in chunks of at most `client::queue::CHUNK`. A failing queue
//! connection is remembered and the rest of the body is thrown away; the session still reads
//! to the real end of the data and the client gets 451 then. Dropping a `Message` drops the
//! connection before `E`, and the queue keeps nothing of it.

use std::path::Path;

use moat_common::client::queue::{Injection, Origin};
use moat_common::warn;
use moat_common::wire::Status;

/// The most header octets held back on submission.
pub const MAX_HEADER: usize = 64 * 1024;

/// Fields added on submission when missing, written at the end of the header.
#[derive(Debug, Clone)]
pub struct Additions {
    pub date: String,
    pub message_id: String,
}

enum Header {
    /// Port 25, or the header is done: bytes go straight through.
    Pass,
    /// Holding back the header: `buf` so far, `scanned` = complete lines looked at.
    Scan {
        buf: Vec<u8>,
        scanned: usize,
        has_date: bool,
        has_message_id: bool,
        additions: Additions,
    },
}

pub struct Message {
    injection: Option<Injection>,
    /// Why the message cannot be queued (logged once; the client gets 451).
    failed: Option<String>,
    header: Header,
    /// Octets sent to the queue (with our lines).
    pub size: u64,
}

/// How a header line counts.
#[derive(Debug, PartialEq, Eq)]
enum LineKind {
    Empty,
    Continuation,
    Field(Vec<u8>),
    Other,
}

fn classify(line: &[u8]) -> LineKind {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    match line.first() {
        None => return LineKind::Empty,
        Some(b' ' | b'\t') => return LineKind::Continuation,
        _ => {}
    }
    let Some(colon) = memchr::memchr(b':', line) else {
        return LineKind::Other;
    };
    // RFC 5322 field names are printable ASCII but ':'; obsolete syntax allows WSP before ':'.
    let name = line[..colon].trim_ascii_end();
    if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
        return LineKind::Other;
    }
    LineKind::Field(name.to_ascii_lowercase())
}

impl Message {
    /// Opens the injection and writes `received` (a whole header line). Never fails: a queue
    /// that cannot be reached is remembered and reported at the end.
    pub async fn open(
        queue_socket: &Path,
        origin: Origin,
        client: &str,
        received: &str,
        additions: Option<Additions>,
    ) -> Message {
        let header = match additions {
            None => Header::Pass,
            Some(additions) => Header::Scan {
                buf: Vec::new(),
                scanned: 0,
                has_date: false,
                has_message_id: false,
                additions,
            },
        };
        let mut m = Message {
            injection: None,
            failed: None,
            header,
            size: 0,
        };
        match Injection::open(queue_socket, origin, client).await {
            Ok(i) => m.injection = Some(i),
            Err(e) => m.failed = Some(format!("cannot reach moat-queue: {e}")),
        }
        m.send(received.as_bytes()).await;
        m
    }

    /// Writes to the queue, or remembers why it cannot.
    async fn send(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let Some(injection) = self.injection.as_mut() else {
            return;
        };
        match injection.write(bytes).await {
            Ok(()) => self.size += bytes.len() as u64,
            Err(e) => {
                self.failed = Some(format!("writing to moat-queue: {e}"));
                self.injection = None;
            }
        }
    }

    /// Message bytes from the session (CRLF lines, dot-unstuffed).
    pub async fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.injection.is_none() {
            return;
        }
        let Header::Scan { buf, .. } = &mut self.header else {
            return self.send(bytes).await;
        };
        buf.extend_from_slice(bytes);
        if let Some(out) = self.scan(false) {
            self.send(&out).await;
        }
    }

    /// Looks at the complete lines held back. When the header is over (or too long, or `end`
    /// of the message), returns everything to send and switches to pass-through.
    fn scan(&mut self, end: bool) -> Option<Vec<u8>> {
        let Header::Scan {
            buf,
            scanned,
            has_date,
            has_message_id,
            additions,
        } = &mut self.header
        else {
            return None;
        };
        let mut finish: Option<(usize, bool)> = None;
        while let Some(nl) = memchr::memchr(b'\n', &buf[*scanned..]) {
            let line = &buf[*scanned..*scanned + nl + 1];
            match classify(line) {
                LineKind::Empty => {
                    finish = Some((*scanned, true));
                    break;
                }
                LineKind::Other => {
                    finish = Some((*scanned, false));
                    break;
                }
                LineKind::Continuation if *scanned == 0 => {
                    finish = Some((0, false));
                    break;
                }
                LineKind::Continuation => {}
                LineKind::Field(name) => {
                    *has_date |= name == b"date";
                    *has_message_id |= name == b"message-id";
                }
            }
            *scanned += nl + 1;
        }
        if finish.is_none() && buf.len() > MAX_HEADER {
            // Too long to be a header we want to touch: pass it on unchanged.
            let out = std::mem::take(buf);
            self.header = Header::Pass;
            return Some(out);
        }
        if finish.is_none() && end {
            finish = Some((buf.len(), true));
        }
        let (at, blank) = finish?;
        let mut added = String::new();
        if !*has_date {
            added.push_str(&format!("Date: {}\r\n", additions.date));
        }
        if !*has_message_id {
            added.push_str(&format!("Message-ID: {}\r\n", additions.message_id));
        }
        if !blank && !added.is_empty() {
            added.push_str("\r\n");
        }
        let mut out = Vec::with_capacity(buf.len() + added.len());
        out.extend_from_slice(&buf[..at]);
        out.extend_from_slice(added.as_bytes());
        out.extend_from_slice(&buf[at..]);
        self.header = Header::Pass;
        Some(out)
    }

    /// Sends the envelope; the queue's verdict, or why there is none. `Err` is temporary.
    /// `dsn` is the RFC 3461 request and `smtputf8` the RFC 6531 one, passed on to the queue.
    pub async fn finish(
        mut self,
        sender: &str,
        recipients: &[String],
        dsn: &moat_common::client::queue::Dsn,
        smtputf8: bool,
    ) -> Result<Status, String> {
        if let Some(out) = self.scan(true) {
            self.send(&out).await;
        }
        if let Some(why) = self.failed {
            return Err(why);
        }
        let Some(mut injection) = self.injection else {
            return Err("no queue connection".into());
        };
        if smtputf8 {
            injection.set_smtputf8();
        }
        injection
            .finish_with_dsn(sender, recipients, dsn)
            .await
            .map_err(|e| format!("moat-queue did not answer: {e}"))
    }

    /// Throws the message away (the queue drops an injection that ends before `E`).
    pub fn abort(self) {
        if let Some(why) = &self.failed {
            warn!("message aborted after a queue error: {why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn additions() -> Additions {
        Additions {
            date: "Tue, 14 Nov 2023 22:13:20 +0000".into(),
            message_id: "<1.2@mx.test>".into(),
        }
    }

    /// Runs the header logic alone (no queue) over `pieces`; returns what would be sent.
    fn through(pieces: &[&[u8]]) -> Vec<u8> {
        let mut m = Message {
            injection: None,
            failed: None,
            header: Header::Scan {
                buf: Vec::new(),
                scanned: 0,
                has_date: false,
                has_message_id: false,
                additions: additions(),
            },
            size: 0,
        };
        let mut out = Vec::new();
        for p in pieces {
            match &mut m.header {
                Header::Scan { buf, .. } => {
                    buf.extend_from_slice(p);
                    if let Some(o) = m.scan(false) {
                        out.extend(o);
                    }
                }
                Header::Pass => out.extend_from_slice(p),
            }
        }
        if let Some(o) = m.scan(true) {
            out.extend(o);
        }
        out
    }

    fn text(pieces: &[&[u8]]) -> String {
        String::from_utf8(through(pieces)).expect("utf8")
    }

    #[test]
    fn adds_missing_fields_at_the_end_of_the_header() {
        let got = text(&[b"From: a@b\r\nSubj", b"ect: hi\r\n\r\nbody\r\n"]);
        assert_eq!(
            got,
            "From: a@b\r\nSubject: hi\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
             Message-ID: <1.2@mx.test>\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn keeps_present_fields_in_any_case() {
        let msg = "DATE : Mon, 1 Jan 2024 00:00:00 +0000\r\nmessage-id: <x@y>\r\n\r\nb\r\n";
        assert_eq!(text(&[msg.as_bytes()]), msg);
    }

    #[test]
    fn folded_fields_and_no_body() {
        let got = text(&[b"Subject: a\r\n", b" Date: not a field\r\n"]);
        assert!(
            got.starts_with("Subject: a\r\n Date: not a field\r\nDate: Tue"),
            "{got}"
        );
        assert!(got.ends_with("Message-ID: <1.2@mx.test>\r\n"), "{got}");
    }

    #[test]
    fn a_body_line_ends_the_header_and_gets_a_blank_line() {
        let got = text(&[b"Subject: x\r\nHello world\r\nDate: in the body\r\n"]);
        assert_eq!(
            got,
            "Subject: x\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1.2@mx.test>\r\n\
             \r\nHello world\r\nDate: in the body\r\n"
        );
        let empty_header = text(&[b"\r\nbody\r\n"]);
        assert!(empty_header.starts_with("Date: "), "{empty_header}");
        assert!(
            empty_header.ends_with(">\r\n\r\nbody\r\n"),
            "{empty_header}"
        );
    }

    #[test]
    fn an_endless_header_passes_unchanged() {
        let line = b"X-Filler: 0123456789012345678901234567890123456789012345678901234567\r\n";
        let mut pieces: Vec<&[u8]> = vec![line; MAX_HEADER / line.len() + 2];
        pieces.push(b"\r\nbody\r\n");
        let got = through(&pieces);
        assert!(!String::from_utf8_lossy(&got).contains("Message-ID:"));
        assert_eq!(got.len(), pieces.iter().map(|p| p.len()).sum::<usize>());
    }

    #[test]
    fn line_kinds() {
        assert_eq!(classify(b"\r\n"), LineKind::Empty);
        assert_eq!(classify(b"\tx\r\n"), LineKind::Continuation);
        assert_eq!(classify(b"Date: x\r\n"), LineKind::Field(b"date".to_vec()));
        assert_eq!(classify(b"no colon\r\n"), LineKind::Other);
        assert_eq!(classify(b"two words: x\r\n"), LineKind::Other);
        assert_eq!(classify(b": x\r\n"), LineKind::Other);
    }
}
