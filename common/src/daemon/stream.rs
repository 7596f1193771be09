//! A client's connection to a mail-access server (moat-pop3d, moat-imapd) or its login process:
//! plain TCP, TLS over it (after STLS/STARTTLS, or from the first byte on the implicit-TLS
//! ports), or, in the mail process, the plaintext side of a login process's TLS relay
//! (`crate::handoff`). Every read and write is bounded by a deadline given by the caller.
//!
//! SECURITY: there is no read buffer here; bytes go to the protocol's own framing, which is
//! cleared at STLS/STARTTLS, so nothing sent in plaintext after that command is ever taken as
//! a command once TLS is up (RFC 2595 section 4, the "STARTTLS injection" class).

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// A TLS client whose session the login process keeps: plaintext to and from its relay.
    Relayed(UnixStream),
    /// During a handshake, or after one failed.
    Gone,
}

fn timed_out(what: &str, limit: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} took more than {} s", limit.as_secs()),
    )
}

impl Stream {
    /// Reads what is there within `limit` (0 = the client closed).
    pub async fn read(&mut self, buf: &mut [u8], limit: Duration) -> std::io::Result<usize> {
        let read = async {
            match self {
                Stream::Plain(s) => s.read(buf).await,
                Stream::Tls(s) => s.read(buf).await,
                Stream::Relayed(s) => s.read(buf).await,
                Stream::Gone => Ok(0),
            }
        };
        timeout(limit, read)
            .await
            .map_err(|_| timed_out("waiting for the client", limit))?
    }

    /// Writes everything (and flushes TLS records) within `limit`.
    pub async fn write_all(&mut self, bytes: &[u8], limit: Duration) -> std::io::Result<()> {
        let write = async {
            match self {
                Stream::Plain(s) => s.write_all(bytes).await,
                Stream::Tls(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await
                }
                Stream::Relayed(s) => s.write_all(bytes).await,
                Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
            }
        };
        timeout(limit, write)
            .await
            .map_err(|_| timed_out("writing to the client", limit))?
    }

    /// TLS close_notify and FIN, then a short wait for the client's FIN, so our last line is
    /// read instead of being destroyed by a reset.
    pub async fn close(&mut self) {
        let limit = Duration::from_secs(2);
        let _ = timeout(limit, async {
            let shut = match self {
                Stream::Plain(s) => s.shutdown().await,
                Stream::Tls(s) => s.shutdown().await,
                Stream::Relayed(s) => s.shutdown().await,
                Stream::Gone => return,
            };
            let mut scratch = [0u8; 4096];
            let mut left = 64 * 1024usize;
            while shut.is_ok() && left > 0 {
                match self.read(&mut scratch, limit).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        })
        .await;
    }

    /// The server side of a TLS handshake on the plain stream, within `limit`.
    pub async fn start_tls(
        &mut self,
        config: &Arc<ServerConfig>,
        limit: Duration,
    ) -> std::io::Result<()> {
        let Stream::Plain(tcp) = std::mem::replace(self, Stream::Gone) else {
            return Err(std::io::Error::other("TLS is already active"));
        };
        let tls = timeout(limit, TlsAcceptor::from(Arc::clone(config)).accept(tcp))
            .await
            .map_err(|_| timed_out("the TLS handshake", limit))??;
        *self = Stream::Tls(Box::new(tls));
        Ok(())
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_) | Stream::Relayed(_))
    }
}
