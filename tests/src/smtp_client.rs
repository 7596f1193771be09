//! A minimal blocking SMTP client for load and fault tests, where we need to know exactly which
//! messages got a 250 (the real clients in the other tests hide that behind exceptions).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// One reply: its code and its full text.
pub type Reply = (u16, String);

impl Client {
    pub fn connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let writer = stream.try_clone()?;
        let mut c = Client {
            reader: BufReader::new(stream),
            writer,
        };
        let (code, text) = c.reply()?;
        if code != 220 {
            return Err(std::io::Error::other(format!("greeting {code} {text}")));
        }
        Ok(c)
    }

    /// Reads one (possibly multi-line) reply.
    pub fn reply(&mut self) -> std::io::Result<Reply> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
            text.push_str(&line);
            let bytes = line.as_bytes();
            if bytes.len() < 4 || bytes[3] == b' ' || bytes[3] == b'\r' {
                let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                return Ok((code, text));
            }
        }
    }

    /// Sends raw bytes (no CRLF added).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Sends a command line and reads the reply.
    pub fn cmd(&mut self, line: &str) -> std::io::Result<Reply> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// One whole transaction; `Ok(reply after DATA)`.
    pub fn send_mail(&mut self, from: &str, to: &[&str], message: &[u8]) -> std::io::Result<Reply> {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"))?;
        if r.0 != 250 {
            return Ok(r);
        }
        let mut accepted = 0;
        for rcpt in to {
            if self.cmd(&format!("RCPT TO:<{rcpt}>"))?.0 == 250 {
                accepted += 1;
            }
        }
        if accepted == 0 {
            let r = self.cmd("RSET")?;
            return Ok((550, format!("no recipient accepted ({})", r.1)));
        }
        let r = self.cmd("DATA")?;
        if r.0 != 354 {
            return Ok(r);
        }
        // Dot-stuff and terminate.
        let mut body = Vec::with_capacity(message.len() + 8);
        for line in message.split_inclusive(|b| *b == b'\n') {
            if line.first() == Some(&b'.') {
                body.push(b'.');
            }
            body.extend_from_slice(line);
        }
        if !body.ends_with(b"\r\n") {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b".\r\n");
        self.writer.write_all(&body)?;
        self.reply()
    }

    pub fn ehlo(&mut self, name: &str) -> std::io::Result<Reply> {
        self.cmd(&format!("EHLO {name}"))
    }
}
