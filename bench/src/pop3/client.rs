//! A small blocking POP3 client for the benchmark: login, RETR (counting octets), QUIT, in
//! plaintext or over implicit TLS (pop3s) with rustls.
//!
//! SECURITY: the TLS client trusts exactly one certificate (the stack's own self-signed one,
//! added as the only root) and checks the name as any client would: no "accept anything"
//! verifier, so both servers do the same handshake a real client would get.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::smtp::session::Stream;

/// The name the client asks for: `moat up` issues its certificate to the host name and localhost.
const SERVER_NAME: &str = "localhost";

/// A client configuration whose only trusted root is the PEM certificate `cert`. Session
/// resumption is off: every login pays a full handshake, as a client's first connection does,
/// whichever server caches sessions better.
pub fn tls_config(cert: &Path) -> Result<Arc<ClientConfig>> {
    let der = CertificateDer::from_pem_file(cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?;
    let mut roots = RootCertStore::empty();
    roots
        .add(der)
        .context("trusting the server's certificate")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS client setup")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

pub struct Pop {
    /// Commands are written through `get_mut`: writing leaves the read buffer alone.
    reader: BufReader<Stream>,
    line: Vec<u8>,
}

impl Pop {
    /// Connects to `port` on loopback, over implicit TLS when `tls` is given, and reads the
    /// greeting (which, over TLS, includes the handshake).
    pub fn connect(port: u16, tls: Option<&Arc<ClientConfig>>) -> Result<Pop> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).context("connect")?;
        tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
        tcp.set_nodelay(true)?;
        let stream = match tls {
            None => Stream::Plain(tcp),
            Some(config) => {
                let conn = ClientConnection::new(
                    Arc::clone(config),
                    ServerName::try_from(SERVER_NAME)?.to_owned(),
                )
                .context("TLS client session")?;
                Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
            }
        };
        let mut p = Pop {
            reader: BufReader::with_capacity(256 * 1024, stream),
            line: Vec::with_capacity(1024),
        };
        p.ok("greeting")?;
        Ok(p)
    }

    /// The negotiated protocol version and cipher suite, for a TLS session.
    pub fn tls_parameters(&self) -> Option<String> {
        let Stream::Tls(s) = self.reader.get_ref() else {
            return None;
        };
        let version = s.conn.protocol_version()?;
        let suite = s.conn.negotiated_cipher_suite()?;
        Some(format!("{version:?} {:?}", suite.suite()))
    }

    fn read_line(&mut self) -> Result<&[u8]> {
        self.line.clear();
        if self.reader.read_until(b'\n', &mut self.line)? == 0 {
            bail!("the server closed the connection");
        }
        Ok(&self.line)
    }

    fn ok(&mut self, what: &str) -> Result<String> {
        let line = String::from_utf8_lossy(self.read_line()?)
            .trim_end()
            .to_string();
        if !line.starts_with("+OK") {
            bail!("{what}: {line}");
        }
        Ok(line)
    }

    pub fn cmd(&mut self, line: &str) -> Result<String> {
        let writer = self.reader.get_mut();
        writer.write_all(format!("{line}\r\n").as_bytes())?;
        writer.flush()?;
        self.ok(line)
    }

    pub fn login(&mut self, user: &str, password: &str) -> Result<()> {
        self.cmd(&format!("USER {user}"))?;
        self.cmd(&format!("PASS {password}"))?;
        Ok(())
    }

    /// RETR n; returns the octets of the answer body.
    pub fn retr(&mut self, n: usize) -> Result<u64> {
        self.cmd(&format!("RETR {n}"))?;
        let mut octets = 0u64;
        loop {
            let line = self.read_line()?;
            if line == b".\r\n" {
                return Ok(octets);
            }
            octets += line.len() as u64;
        }
    }
}
