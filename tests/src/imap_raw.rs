//! A raw IMAP client for hostile-input tests: exact bytes out, the server's exact responses
//! back (a response's literals are read and kept inline, so a FETCH of a body is one string).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One connection.
pub struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    /// Connects and reads the greeting (which must be `* OK`).
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut r = Raw {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = r.response();
        assert!(greeting.starts_with("* OK [CAPABILITY"), "{greeting}");
        r
    }

    /// Connects and logs in with LOGIN.
    pub fn login(port: u16, user: &str, password: &str) -> Raw {
        let mut r = Raw::connect(port);
        let got = r.cmd("l", &format!("LOGIN {user} {password}"));
        assert!(got.last().is_some_and(|l| l.starts_with("l OK")), "{got:?}");
        r
    }

    pub fn set_timeout(&mut self, limit: Duration) {
        self.writer
            .set_read_timeout(Some(limit))
            .expect("read timeout");
    }

    /// One response: a line, and when it ends with a literal `{n}`, the literal and the rest
    /// of the line, up to the final CRLF (which is cut). Empty at the end of the stream.
    pub fn response(&mut self) -> String {
        let mut all = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                break;
            }
            all.extend_from_slice(&line);
            let Some(n) = literal_length(&line) else {
                break;
            };
            let mut data = vec![0; n];
            if self.reader.read_exact(&mut data).is_err() {
                break;
            }
            all.extend_from_slice(&data);
        }
        let text = String::from_utf8_lossy(&all);
        text.trim_end_matches(['\r', '\n']).to_string()
    }

    /// The client's port, to find which process holds the server's end.
    pub fn port(&self) -> u16 {
        self.writer.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// A second handle on the socket, to write from another thread.
    pub fn try_clone_writer(&self) -> TcpStream {
        self.writer.try_clone().expect("clone")
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends `<tag> <line>\r\n`; returns every response up to and including the tagged one
    /// (or up to the end of the stream).
    pub fn cmd(&mut self, tag: &str, line: &str) -> Vec<String> {
        self.send(format!("{tag} {line}\r\n").as_bytes());
        self.until(tag)
    }

    /// The responses up to and including the one tagged `tag`, or up to the end.
    pub fn until(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let prefix = format!("{tag} ");
        loop {
            let l = self.response();
            if l.is_empty() {
                return lines;
            }
            let done = l.starts_with(&prefix);
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    /// True once the server closed the connection (everything left is read and dropped).
    pub fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }
}

/// `n` when a line ends with `{n}\r\n` (or `~{n}`), the announcement of a literal.
fn literal_length(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(line.get(open + 1..)?)
        .ok()?
        .parse()
        .ok()
}

/// A field of /proc/<pid>/status in KiB (`VmHWM`, `VmRSS`), 0 if unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
