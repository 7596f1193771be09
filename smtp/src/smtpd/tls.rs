//! TLS for STARTTLS (RFC 3207) and implicit TLS (RFC 8314, port 465): the facts about a
//! finished handshake that go into logs and the Received header. The rustls server
//! configuration is built from the certificate and key descriptors by
//! `moat_common::daemon::tls`.
//!
//! SECURITY: the key file is opened by the supervisor (it is root-only on disk) and only its
//! descriptor reaches us; `moat_common::daemon::tls` reads it once at start, by position,
//! bounded in size, and wipes its copy of the PEM text after parsing. rustls with the ring
//! provider and its safe defaults: TLS 1.2 and 1.3 only, no client certificates. A handshake is
//! bounded by a timeout in the caller.

/// What a finished handshake agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// The IANA name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
}

impl TlsInfo {
    pub fn of(conn: &rustls::ServerConnection) -> TlsInfo {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => "TLS".to_string(),
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_else(|| "unknown".to_string());
        TlsInfo { version, cipher }
    }
}
