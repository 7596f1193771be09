//! DKIM keys: what names one (domain, selector, algorithm), the file-name convention of the key
//! folder, the `dkim_keys` setting that says which descriptor holds which key, parsing a
//! private key from PEM, and the public-key DNS record. Shared by moat-remote (which signs) and
//! the `moat` CLI (which writes the files and prints the records), so both read a key file the
//! same way.
//!
//! Key folder (`[paths] dkim`, default `dkim/` beside moat.toml):
//! `<dkim>/<domain>/<selector>.<rsa|ed25519>.pem`, PKCS#8 PEM (PKCS#1 `RSA PRIVATE KEY` is
//! accepted for RSA keys made by other tools), mode 0600.
//!
//! SECURITY: key files are the admin's, opened by the supervisor; the text still gets a size
//! bound and a strict parse (ring via mail-auth), and an error never quotes the key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A PEM private key is a few KiB; anything bigger is not one.
pub const MAX_KEY_FILE: u64 = 64 * 1024;
/// The setting listing the keys; the key of entry `i` is descriptor `dkim_key_<i>`.
pub const SETTING: &str = "dkim_keys";
/// At most this many keys (each is one descriptor record of the setup, which takes 256).
pub const MAX_KEYS: usize = 128;

/// The descriptor name of entry `index` of the setting.
pub fn fd_name(index: usize) -> String {
    format!("dkim_key_{index}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// rsa-sha256 (RFC 6376), the one every verifier knows.
    Rsa,
    /// ed25519-sha256 (RFC 8463).
    Ed25519,
}

impl Algorithm {
    /// The name in file names, the setting and the record's `k=` tag.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }

    pub fn parse(text: &str) -> Option<Algorithm> {
        match text {
            "rsa" => Some(Algorithm::Rsa),
            "ed25519" => Some(Algorithm::Ed25519),
            _ => None,
        }
    }
}

/// One key's identity: `d=`, `s=` and the algorithm.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyName {
    /// Lower-case A-label.
    pub domain: String,
    pub selector: String,
    pub algorithm: Algorithm,
}

impl KeyName {
    /// `<selector>.<algorithm>.pem`, the file in `<dkim>/<domain>/`.
    pub fn file_name(&self) -> String {
        format!("{}.{}.pem", self.selector, self.algorithm.name())
    }

    /// The key named by a file in `<dkim>/<domain>/`; `None` for anything else there.
    pub fn from_file_name(domain: &str, file: &str) -> Option<KeyName> {
        let (selector, algorithm) = file.strip_suffix(".pem")?.rsplit_once('.')?;
        let name = KeyName {
            domain: domain.to_string(),
            selector: selector.to_string(),
            algorithm: Algorithm::parse(algorithm)?,
        };
        name.check().ok().map(|()| name)
    }

    /// `<domain>/<selector>/<algorithm>`, an entry of the setting.
    pub fn encode(&self) -> String {
        format!(
            "{}/{}/{}",
            self.domain,
            self.selector,
            self.algorithm.name()
        )
    }

    pub fn decode(text: &str) -> Option<KeyName> {
        let mut parts = text.split('/');
        let (domain, selector, algorithm) = (parts.next()?, parts.next()?, parts.next()?);
        let name = KeyName {
            domain: domain.to_string(),
            selector: selector.to_string(),
            algorithm: Algorithm::parse(algorithm)?,
        };
        (parts.next().is_none() && name.check().is_ok()).then_some(name)
    }

    fn check(&self) -> Result<(), String> {
        if !valid_domain(&self.domain) {
            return Err(format!("{:?} is not a lower-case domain name", self.domain));
        }
        if !valid_selector(&self.selector) {
            return Err(format!("{:?} is not a DKIM selector", self.selector));
        }
        Ok(())
    }

    /// The DNS name of the public key: `<selector>._domainkey.<domain>`.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }
}

/// LDH labels, lower case, as the store keeps domains (A-labels).
pub fn valid_domain(d: &str) -> bool {
    d.len() <= 253 && d.contains('.') && d.split('.').all(valid_label)
}

/// A selector is a sub-domain (RFC 6376 §3.1); ours are lower-case LDH labels, so a selector is
/// also a safe file name.
pub fn valid_selector(s: &str) -> bool {
    s.len() <= 200 && s.split('.').all(valid_label)
}

fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses the `dkim_keys` setting: comma-separated `<domain>/<selector>/<algorithm>`, no
/// duplicates, at most `MAX_KEYS`.
pub fn parse_setting(text: &str) -> Result<Vec<KeyName>, String> {
    let mut out: Vec<KeyName> = Vec::new();
    for entry in text.split(',').filter(|e| !e.is_empty()) {
        let name = KeyName::decode(entry)
            .ok_or_else(|| format!("setting {SETTING}: bad entry {entry:?}"))?;
        if out
            .iter()
            .any(|n| n.domain == name.domain && n.selector == name.selector)
        {
            return Err(format!("setting {SETTING}: {entry:?} is listed twice"));
        }
        out.push(name);
    }
    if out.len() > MAX_KEYS {
        return Err(format!(
            "setting {SETTING}: {} keys (at most {MAX_KEYS})",
            out.len()
        ));
    }
    Ok(out)
}

/// Parses a private key of `algorithm` from PEM (the error never quotes the key).
pub fn parse_key(pem: &[u8], algorithm: Algorithm) -> Result<DkimKey, String> {
    let der =
        PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("not a PEM private key ({e})"))?;
    match (algorithm, der) {
        (Algorithm::Rsa, der @ (PrivateKeyDer::Pkcs8(_) | PrivateKeyDer::Pkcs1(_))) => {
            RsaKey::<Sha256>::from_key_der(der)
                .map(DkimKey::Rsa)
                .map_err(|e| format!("not an RSA private key of 2048 to 4096 bits ({e})"))
        }
        (Algorithm::Ed25519, PrivateKeyDer::Pkcs8(der)) => pkcs8_ed25519(&der),
        (Algorithm::Rsa, _) => Err("not an RSA private key (PKCS#8 or PKCS#1 PEM)".into()),
        (Algorithm::Ed25519, _) => Err("not an Ed25519 private key (PKCS#8 PEM)".into()),
    }
}

fn pkcs8_ed25519(der: &PrivatePkcs8KeyDer<'_>) -> Result<DkimKey, String> {
    // "maybe unchecked": OpenSSL writes PKCS#8 v1 (no public key inside), ring v2.
    Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_pkcs8_der())
        .map(DkimKey::Ed25519)
        .map_err(|e| format!("not an Ed25519 private key ({e})"))
}

/// The TXT record to publish at `record_name()`: `v=DKIM1; k=<rsa|ed25519>; p=<base64>`.
/// RSA keys are published as SubjectPublicKeyInfo (what `openssl rsa -pubout` gives and every
/// verifier reads); Ed25519 keys as their raw 32 bytes (RFC 8463 §4.2).
pub fn dns_record(key: &DkimKey) -> String {
    let (k, public) = match key {
        DkimKey::Rsa(rsa) => ("rsa", rsa_spki(&rsa.public_key())),
        DkimKey::Ed25519(ed) => ("ed25519", ed.public_key()),
    };
    format!("v=DKIM1; k={k}; p={}", STANDARD.encode(public))
}

/// SubjectPublicKeyInfo { rsaEncryption, BIT STRING { RSAPublicKey } } around ring's PKCS#1
/// public key.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const RSA_ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x03];
    der_length(pkcs1.len() + 1, &mut bits);
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    der_length(RSA_ALGORITHM.len() + bits.len(), &mut out);
    out.extend_from_slice(RSA_ALGORITHM);
    out.extend_from_slice(&bits);
    out
}

fn der_length(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA8: &str = include_str!("testdata/rsa-pkcs8.pem");
    const RSA1: &str = include_str!("testdata/rsa-pkcs1.pem");
    const ED: &str = include_str!("testdata/ed25519.pem");

    #[test]
    fn records_match_openssl() {
        let rsa_pub = include_str!("testdata/rsa.pub.b64").trim();
        let ed_pub = include_str!("testdata/ed25519.pub.b64").trim();
        for pem in [RSA8, RSA1] {
            let key = parse_key(pem.as_bytes(), Algorithm::Rsa).expect("rsa");
            assert_eq!(dns_record(&key), format!("v=DKIM1; k=rsa; p={rsa_pub}"));
        }
        let key = parse_key(ED.as_bytes(), Algorithm::Ed25519).expect("ed25519");
        assert_eq!(dns_record(&key), format!("v=DKIM1; k=ed25519; p={ed_pub}"));
    }

    #[test]
    fn wrong_or_broken_keys_are_refused_without_quoting_them() {
        for (pem, algorithm) in [
            (ED, Algorithm::Rsa),
            (RSA8, Algorithm::Ed25519),
            (RSA1, Algorithm::Ed25519),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                Algorithm::Rsa,
            ),
            ("hello", Algorithm::Ed25519),
            ("", Algorithm::Rsa),
        ] {
            let err = match parse_key(pem.as_bytes(), algorithm) {
                Ok(_) => panic!("{algorithm:?} accepted {pem:?}"),
                Err(e) => e,
            };
            assert!(err.starts_with("not "), "{err}");
            assert!(!err.contains("MII"), "{err}");
        }
    }

    #[test]
    fn names_files_and_settings() {
        let name = KeyName::from_file_name("example.org", "moat-rsa-202611.rsa.pem").expect("ok");
        assert_eq!(name.selector, "moat-rsa-202611");
        assert_eq!(name.algorithm, Algorithm::Rsa);
        assert_eq!(name.file_name(), "moat-rsa-202611.rsa.pem");
        assert_eq!(name.record_name(), "moat-rsa-202611._domainkey.example.org");
        assert_eq!(KeyName::decode(&name.encode()), Some(name.clone()));
        let dotted = KeyName::from_file_name("example.org", "a.b.ed25519.pem").expect("ok");
        assert_eq!(
            (dotted.selector.as_str(), dotted.algorithm),
            ("a.b", Algorithm::Ed25519)
        );
        for bad in [
            "x.dsa.pem",
            "x.rsa.pem~",
            ".rsa.pem",
            "-x.rsa.pem",
            "X.rsa.pem",
            "a..b.rsa.pem",
            "a b.rsa.pem",
            "rsa.pem",
            "README",
        ] {
            assert_eq!(KeyName::from_file_name("example.org", bad), None, "{bad}");
        }
        assert_eq!(KeyName::from_file_name("Example.org", "x.rsa.pem"), None);
        assert_eq!(KeyName::from_file_name("../etc", "x.rsa.pem"), None);

        let keys =
            parse_setting("a.example/s1/rsa,a.example/s2/ed25519,b.example/s1/rsa").expect("ok");
        assert_eq!(keys.len(), 3);
        assert_eq!(parse_setting("").expect("empty"), vec![]);
        for bad in [
            "a.example/s1/rsa,a.example/s1/ed25519",
            "a.example/s1",
            "a.example/s1/rsa/x",
            "a.example/S1/rsa",
            "a.example/s1/dsa",
            "localhost/s1/rsa",
        ] {
            assert!(parse_setting(bad).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_KEYS)
            .map(|i| format!("a.example/s{i}/rsa"))
            .collect();
        assert!(parse_setting(&many.join(",")).is_err());
    }

    #[test]
    fn der_lengths() {
        let mut out = Vec::new();
        der_length(0x7f, &mut out);
        der_length(0x80, &mut out);
        der_length(0x10e, &mut out);
        assert_eq!(out, [0x7f, 0x81, 0x80, 0x82, 0x01, 0x0e]);
    }
}
