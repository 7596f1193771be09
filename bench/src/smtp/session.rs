//! One client SMTP connection: the greeting, EHLO, optionally STARTTLS (then EHLO again) and
//! AUTH PLAIN, then commands one reply at a time. Blocking std TCP, one thread per session, so
//! the load generator costs the same whichever server it drives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::tls::SERVER_NAME;

/// How long one reply may take before the session gives up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// The connection, before or after STARTTLS (also the POP3 client's, plain or implicit TLS).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

pub struct Session {
    reader: BufReader<Stream>,
}

impl Session {
    /// Connects to 127.0.0.1:`port`, reads the greeting and says EHLO; with `tls`, STARTTLS and
    /// EHLO again; with `login` (user, password), AUTH PLAIN.
    pub fn open(
        port: u16,
        tls: Option<&Arc<ClientConfig>>,
        login: Option<&(String, String)>,
    ) -> Result<Session> {
        let stream = TcpStream::connect(("127.0.0.1", port)).context("connect")?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
        let mut session = Session {
            reader: BufReader::new(Stream::Plain(stream)),
        };
        session.command(None, 220, "the greeting")?;
        session.command(Some(b"EHLO client.bench.test\r\n"), 250, "EHLO")?;
        if let Some(config) = tls {
            session.command(Some(b"STARTTLS\r\n"), 220, "STARTTLS")?;
            session = session.start_tls(config)?;
            session.command(
                Some(b"EHLO client.bench.test\r\n"),
                250,
                "EHLO after STARTTLS",
            )?;
        }
        if let Some((user, password)) = login {
            let plain =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            session.command(
                Some(format!("AUTH PLAIN {plain}\r\n").as_bytes()),
                235,
                "AUTH PLAIN",
            )?;
        }
        Ok(session)
    }

    fn start_tls(self, config: &Arc<ClientConfig>) -> Result<Session> {
        // Anything the server sent after its 220 would be injected into the TLS session.
        if !self.reader.buffer().is_empty() {
            bail!("the server sent data after its STARTTLS reply");
        }
        let Stream::Plain(tcp) = self.reader.into_inner() else {
            bail!("STARTTLS on a TLS connection");
        };
        let name = ServerName::try_from(SERVER_NAME)?;
        let tls = ClientConnection::new(Arc::clone(config), name).context("TLS client")?;
        Ok(Session {
            reader: BufReader::new(Stream::Tls(Box::new(StreamOwned::new(tls, tcp)))),
        })
    }

    /// Sends `bytes` (if any) and insists on the reply code `expect`.
    pub fn command(&mut self, bytes: Option<&[u8]>, expect: u16, what: &str) -> Result<()> {
        if let Some(bytes) = bytes {
            let stream = self.reader.get_mut();
            stream.write_all(bytes)?;
            // rustls only queues what it cannot send at once; flush pushes it out.
            stream.flush()?;
        }
        let (code, text) =
            read_reply(&mut self.reader).with_context(|| format!("reading the reply to {what}"))?;
        if code != expect {
            bail!("{what}: expected {expect}, got {code} {}", text.trim_end());
        }
        Ok(())
    }
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
