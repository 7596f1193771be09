//! One self-signed certificate per benchmark run, installed in every server that offers STARTTLS,
//! and the client configuration that trusts exactly it: the load is encrypted and checked the
//! same way for both servers, and the client needs no "accept anything" verifier.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The name the client asks for and the certificate is issued to.
pub const SERVER_NAME: &str = "localhost";

pub struct Certificate {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Certificate {
    pub fn generate() -> Result<Certificate> {
        let made = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])
            .context("making a self-signed certificate")?;
        Ok(Certificate {
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
            der: made.cert.der().clone(),
        })
    }

    /// Writes the PEM files (the key readable by its owner only; servers read it as root).
    pub fn write(&self, cert: &Path, key: &Path) -> Result<()> {
        for path in [cert, key] {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
        }
        std::fs::write(cert, &self.cert_pem)
            .with_context(|| format!("writing {}", cert.display()))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(key)
            .and_then(|mut f| f.write_all(self.key_pem.as_bytes()))
            .with_context(|| format!("writing {}", key.display()))?;
        Ok(())
    }

    /// A client configuration whose only trusted root is this certificate.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.der.clone())
            .context("trusting the benchmark's certificate")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS client setup")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
