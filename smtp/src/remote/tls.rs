//! TLS for STARTTLS as a client: `verified` checks the chain and the host name against the
//! Mozilla roots (webpki-roots) or the configured CA file; `unverified` (policies `may` and
//! `encrypt`) accepts any certificate but still checks the handshake signatures, as Postfix's
//! opportunistic TLS does: it protects against passive listeners, not active attackers.
//!
//! SECURITY: rustls with the ring provider, TLS 1.2 and 1.3 only. The CA file comes as a
//! descriptor from the supervisor; it is public data and parsed strictly (bad PEM = no start).

use std::fs::File;
use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The two client configurations moat-remote uses.
pub struct Tls {
    pub verified: Arc<ClientConfig>,
    pub unverified: Arc<ClientConfig>,
}

impl Tls {
    /// `ca`: a PEM file of trusted roots instead of the built-in ones.
    pub fn new(ca: Option<OwnedFd>) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        match ca {
            Some(fd) => {
                let mut pem = Vec::new();
                File::from(fd)
                    .take(4 * 1024 * 1024)
                    .read_to_end(&mut pem)
                    .map_err(|e| format!("cannot read the CA file: {e}"))?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| format!("the CA file is not valid PEM: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("the CA file holds a bad certificate: {e}"))?;
                }
                if roots.is_empty() {
                    return Err("the CA file holds no certificate".into());
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let verified = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let any = AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        };
        let unverified = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(any))
            .with_no_client_auth();
        Ok(Tls {
            verified: Arc::new(verified),
            unverified: Arc::new(unverified),
        })
    }
}

/// Accepts any certificate; checks that the peer holds its key.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
