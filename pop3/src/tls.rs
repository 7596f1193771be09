//! TLS for STLS (RFC 2595) and port 995 (RFC 8314): the rustls server configuration from the
//! PEM certificate chain and key the supervisor passed as open files.
//!
//! SECURITY: the key file is root-only on disk; only its descriptor reaches us, read once at
//! start. The supervisor hands the same open files to moat-smtpd, so they are read by
//! position (`read_at`), never through the shared file offset; the size is bounded and our
//! copy of the key's PEM text is wiped after parsing. rustls (ring provider) with its safe
//! defaults: TLS 1.2 and 1.3, no client certificates. Handshakes are bounded by the caller.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The largest PEM file we read.
const MAX_PEM: u64 = 1 << 20;

fn read_by_position(fd: OwnedFd, what: &str) -> Result<Vec<u8>, String> {
    let file = File::from(fd);
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let offset = out.len() as u64;
        if offset > MAX_PEM {
            out.fill(0);
            return Err(format!("the {what} file is larger than {MAX_PEM} bytes"));
        }
        match file.read_at(&mut chunk, offset) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read the {what} file: {e}")),
        }
    }
}

/// Builds the server configuration from the descriptors `tls_cert` and `tls_key`.
pub fn load(cert: OwnedFd, key: OwnedFd) -> Result<Arc<ServerConfig>, String> {
    let cert_pem = read_by_position(cert, "certificate")?;
    let mut key_pem = read_by_position(key, "key")?;
    let config = config_from_pem(&cert_pem, &key_pem);
    key_pem.fill(0);
    config
}

fn config_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate in the certificate file".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("bad key PEM: {e}"))?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("certificate and key do not match: {e}"))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fd(bytes: &[u8]) -> OwnedFd {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(bytes).expect("write");
        OwnedFd::from(f)
    }

    #[test]
    fn loads_by_position_and_refuses_junk() {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
        let (cert, key) = (c.cert.pem(), c.signing_key.serialize_pem());
        assert!(load(fd(cert.as_bytes()), fd(key.as_bytes())).is_ok());
        assert!(load(fd(b"junk"), fd(key.as_bytes())).is_err());
        assert!(load(fd(cert.as_bytes()), fd(cert.as_bytes())).is_err());
    }
}
