//! TLS for the servers (STARTTLS and port 465 in moat-smtpd, STLS and port 995 in moat-pop3d):
//! the rustls server configuration built from the certificate chain and key the supervisor
//! passed as open files.
//!
//! SECURITY: the key file is opened by the supervisor (it is root-only on disk) and only its
//! descriptor reaches us; we read it once at start. The supervisor hands the same open files to
//! more than one daemon, so they are read by position (`read_at`), never through the shared
//! file offset (a descriptor shared with another reader cannot make us read half a file); the
//! size is bounded and our copy of the key's PEM text is wiped after parsing. rustls with the
//! ring provider and its safe defaults: TLS 1.2 and 1.3 only, no client certificates.
//! Handshakes are bounded by a timeout in the caller.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::child::Setup;
use crate::{error, warn};

/// The largest PEM file we read (a long chain is a few KiB).
const MAX_PEM: usize = 1024 * 1024;

/// Reads a whole file from offset 0 through its descriptor, at most about `MAX_PEM` bytes.
fn read_all(fd: OwnedFd, what: &str) -> Result<Vec<u8>, String> {
    let file = File::from(fd);
    let mut buf = vec![0u8; 8192];
    let mut len = 0usize;
    loop {
        if len == buf.len() {
            if buf.len() > MAX_PEM {
                buf.fill(0);
                return Err(format!("the {what} file is larger than {MAX_PEM} bytes"));
            }
            buf.resize(buf.len() * 2, 0);
        }
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read the {what} file: {e}")),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Builds the server configuration from the PEM certificate chain and private key.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate file is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the key file holds no usable private key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not make a TLS setup: {e}"))?;
    Ok(Arc::new(config))
}

/// Loads the configuration from the descriptors `tls_cert` and `tls_key`.
pub fn load(cert: OwnedFd, key: OwnedFd) -> Result<Arc<ServerConfig>, String> {
    let cert_pem = read_all(cert, "certificate")?;
    let mut key_pem = read_all(key, "key")?;
    let config = server_config(&cert_pem, &key_pem);
    key_pem.fill(0);
    config
}

/// Takes `tls_cert` and `tls_key` out of the setup and loads them. A broken pair is logged and
/// the daemon runs without TLS (serving port 25 without STARTTLS beats not serving it, and no
/// password is taken in plaintext without TLS); so does a missing pair. `without` names what
/// is then off, for the log. Only one of the two passed is an error.
pub fn from_setup(setup: &mut Setup, without: &str) -> Result<Option<Arc<ServerConfig>>, String> {
    match (setup.take_fd_opt("tls_cert"), setup.take_fd_opt("tls_key")) {
        (Some(cert), Some(key)) => match load(cert, key) {
            Ok(config) => Ok(Some(config)),
            Err(e) => {
                error!("{e}: running without TLS ({without})");
                Ok(None)
            }
        },
        (None, None) => {
            warn!("no TLS certificate: running without TLS ({without})");
            Ok(None)
        }
        _ => Err("only one of tls_cert and tls_key was passed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A self-signed certificate and key for `localhost`, as PEM (cert, key).
    fn self_signed() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    fn fd_of(bytes: &[u8]) -> OwnedFd {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(bytes).expect("write");
        // Leave the offset at the end: `load` must read by position anyway.
        OwnedFd::from(f)
    }

    #[test]
    fn loads_a_pair_from_descriptors() {
        let (cert, key) = self_signed();
        assert!(load(fd_of(cert.as_bytes()), fd_of(key.as_bytes())).is_ok());
    }

    #[test]
    fn refuses_junk() {
        let (cert, key) = self_signed();
        assert!(load(fd_of(b"junk"), fd_of(key.as_bytes())).is_err());
        assert!(load(fd_of(cert.as_bytes()), fd_of(b"")).is_err());
        assert!(load(fd_of(key.as_bytes()), fd_of(cert.as_bytes())).is_err());
        assert!(load(fd_of(cert.as_bytes()), fd_of(cert.as_bytes())).is_err());
    }
}
