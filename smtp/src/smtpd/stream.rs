//! The client connection: plain TCP, or TLS over it after STARTTLS or on port 465.
//!
//! SECURITY: there is no read buffer here. Bytes are read straight into the session, so when
//! STARTTLS comes the only plaintext we hold is in the session, which throws it away
//! (RFC 3207 4.2); whatever the client pipelined that we have not read yet goes into the TLS
//! handshake, where it can only make the handshake fail. The handshake is bounded by a timeout.

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::tls::TlsInfo;

/// The most input read and thrown away while closing.
const LINGER_BYTES: usize = 1024 * 1024;

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Between taking the TCP stream for a handshake and getting it back.
    Gone,
}

fn gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "connection gone")
}

impl Stream {
    /// Reads what is there (0 = the client closed).
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Gone => Err(gone()),
        }
    }

    /// Writes everything and pushes it out (TLS records included).
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Stream::Gone => Err(gone()),
        }
    }

    /// Ends the connection politely (TLS close_notify, TCP FIN), then reads and throws away
    /// what the client still sends, until it closes too or `limit` passes (at most
    /// `LINGER_BYTES`). Closing a socket with unread input makes the kernel send a reset,
    /// which can destroy our last reply (a 421) before the client has read it.
    pub async fn close(&mut self, limit: Duration) {
        let done = async {
            let shut = match self {
                Stream::Plain(s) => s.shutdown().await,
                Stream::Tls(s) => s.shutdown().await,
                Stream::Gone => return,
            };
            if shut.is_err() {
                return;
            }
            let mut scratch = [0u8; 4096];
            let mut total = 0usize;
            while total < LINGER_BYTES {
                match self.read(&mut scratch).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => total += n,
                }
            }
        };
        let _ = tokio::time::timeout(limit, done).await;
    }

    /// Runs the server side of a TLS handshake on the plain stream, at most `limit`.
    pub async fn start_tls(
        &mut self,
        config: &Arc<ServerConfig>,
        limit: Duration,
    ) -> std::io::Result<TlsInfo> {
        let Stream::Plain(tcp) = std::mem::replace(self, Stream::Gone) else {
            return Err(std::io::Error::other("TLS is already active"));
        };
        let acceptor = TlsAcceptor::from(Arc::clone(config));
        let tls = match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("TLS handshake not done within {} s", limit.as_secs()),
                ));
            }
        };
        let info = TlsInfo::of(tls.get_ref().1);
        *self = Stream::Tls(Box::new(tls));
        Ok(info)
    }
}
