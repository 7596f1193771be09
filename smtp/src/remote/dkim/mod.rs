//! DKIM signing of outgoing mail (RFC 6376, with RFC 8463 Ed25519 beside RSA): the
//! `DKIM-Signature` header lines moat-remote sends in front of a message.
//!
//! A message is signed when (1) its origin is ours to vouch for: an authenticated submission, a
//! local sender (sendmail) or a bounce we wrote, never mail that arrived on port 25 (origin
//! `smtp`) or was forwarded by an alias (origin `forward`: it arrived from outside, and its
//! From: may be anyone's); (2) it has exactly one From: header with one address; and (3) that
//! address's domain, or the nearest parent domain, has keys. It is then signed once per key of
//! that domain (RSA and Ed25519 side by side; during a key rotation the old and the new ones),
//! relaxed/relaxed, over the usual headers. Any failure sends the message unsigned and logs why:
//! an unsigned message is still delivered, as it would be without DKIM.
//!
//! Header lines moat-remote itself puts in front of the message (a list post's per-recipient
//! RFC 8058 `List-Unsubscribe` fields) are passed as `prepend` and signed as part of the
//! header, so the signature covers them as RFC 8058 §4 asks.
//!
//! The message is read once with positioned reads (the descriptor's offset is the SMTP
//! client's): the header (at most `MAX_HEADER`) is kept to find the From: domain, the body is
//! hashed in 64 KiB pieces, so memory does not grow with the message.
//!
//! SECURITY: keys arrive as descriptors from the supervisor (moat-remote opens no file) and
//! stay in this process; the message is untrusted input, parsed with mail-auth's bounded
//! header parser on at most `MAX_HEADER` bytes.

pub mod keys;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;

use mail_auth::AuthenticatedMessage;
use mail_auth::common::crypto::DkimKey;
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use moat_common::child::Setup;
use moat_common::client::queue::Origin;
use moat_common::{info, warn};

use keys::{Algorithm, KeyName};

/// The header fields signed when present (RFC 6376 §5.4.1's recommendations, and RFC 8058 §4's
/// one-click fields).
pub const SIGNED_HEADERS: [&str; 14] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// The most header bytes read to find the From: domain (smtpd holds back 64 KiB of a
/// submission's header; a larger header is sent unsigned).
pub const MAX_HEADER: usize = 1024 * 1024;

const CHUNK: usize = 64 * 1024;

struct Key {
    name: KeyName,
    signer: DkimSigner<DkimKey, Done>,
}

/// Every key moat-remote signs with, by domain.
#[derive(Default)]
pub struct Signer {
    domains: BTreeMap<String, Vec<Key>>,
}

/// Origins whose From: we vouch for, and list posts (signed as the list's domain).
pub fn signs(origin: Origin) -> bool {
    match origin {
        Origin::Submission | Origin::Sendmail | Origin::Bounce | Origin::List => true,
        Origin::Smtp | Origin::Forward => false,
    }
}

impl Signer {
    /// Takes the `dkim_keys` setting and its `dkim_key_<i>` descriptors out of the setup and
    /// parses every key; a bad one is an error naming it (moat-remote then does not start).
    pub fn from_setup(setup: &mut Setup) -> Result<Signer, String> {
        let names = keys::parse_setting(setup.get_opt(keys::SETTING).unwrap_or(""))?;
        let mut loaded = Vec::with_capacity(names.len());
        for (i, name) in names.into_iter().enumerate() {
            let fd = setup
                .take_fd_opt(&keys::fd_name(i))
                .ok_or_else(|| format!("descriptor {} is missing", keys::fd_name(i)))?;
            let mut pem = Vec::new();
            File::from(fd)
                .take(keys::MAX_KEY_FILE)
                .read_to_end(&mut pem)
                .map_err(|e| format!("{}: cannot read: {e}", describe(&name)))?;
            loaded.push((name, pem));
        }
        Signer::from_keys(loaded)
    }

    /// Builds the signer from (name, PEM) pairs.
    pub fn from_keys(keys: Vec<(KeyName, Vec<u8>)>) -> Result<Signer, String> {
        let mut domains: BTreeMap<String, Vec<Key>> = BTreeMap::new();
        for (name, pem) in keys {
            let key = keys::parse_key(&pem, name.algorithm)
                .map_err(|e| format!("{} is {e}", describe(&name)))?;
            let signer = DkimSigner::from_key(key)
                .domain(name.domain.clone())
                .selector(name.selector.clone())
                .headers(SIGNED_HEADERS)
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed);
            domains
                .entry(name.domain.clone())
                .or_default()
                .push(Key { name, signer });
        }
        // RSA first: the topmost signature is the one the oldest verifiers look at.
        for list in domains.values_mut() {
            list.sort_by_key(|k| k.name.algorithm);
        }
        Ok(Signer { domains })
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// For the start-up log: `example.org (moat-rsa-202611 rsa, moat-ed-202611 ed25519)`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .domains
            .iter()
            .map(|(domain, keys)| {
                let list: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{} {}", k.name.selector, k.name.algorithm.name()))
                    .collect();
                format!("{domain} ({})", list.join(", "))
            })
            .collect();
        parts.join("; ")
    }

    /// The keys for a From: domain: its own, else the nearest parent's (relaxed DMARC
    /// alignment, so MAILER-DAEMON@mx.example.org is signed as example.org).
    fn keys_for(&self, domain: &str) -> Option<(&str, &[Key])> {
        let mut d = domain;
        loop {
            if let Some((name, list)) = self.domains.get_key_value(d) {
                return Some((name.as_str(), list.as_slice()));
            }
            d = d.split_once('.')?.1;
        }
    }

    /// The `DKIM-Signature` lines for `prepend` (header lines sent in front of the message)
    /// followed by the message at `message` (empty: send it unsigned). Runs on a blocking
    /// thread: positioned reads and the signing are synchronous.
    pub async fn headers(
        self: &Arc<Self>,
        qid: &str,
        origin: Origin,
        prepend: &[u8],
        message: &File,
    ) -> Vec<u8> {
        self.headers_for(qid, origin, "", prepend, message).await
    }

    /// `headers`, knowing the envelope sender: a list post (origin `list`, which only
    /// moat-lists may claim) is signed with the keys of the sender's domain (the list's:
    /// `list-return-…@domain`), not its From:'s (the poster's).
    pub async fn headers_for(
        self: &Arc<Self>,
        qid: &str,
        origin: Origin,
        sender: &str,
        prepend: &[u8],
        message: &File,
    ) -> Vec<u8> {
        if self.is_empty() {
            return Vec::new();
        }
        if !signs(origin) {
            info!(id = qid; "not DKIM-signed: origin {} (only submissions, local senders, bounces and list posts are)", origin.as_str());
            return Vec::new();
        }
        let file = match message.try_clone() {
            Ok(f) => f,
            Err(e) => {
                warn!(id = qid; "not DKIM-signed: cannot read the message: {e}");
                return Vec::new();
            }
        };
        let me = Arc::clone(self);
        let owned = qid.to_string();
        let prepend = prepend.to_vec();
        let list_sender = (origin == Origin::List).then(|| sender.to_string());
        let joined = tokio::task::spawn_blocking(move || {
            me.sign_with(&prepend, &file, list_sender.as_deref())
        })
        .await;
        match joined {
            Ok(Ok((domain, headers, selectors))) => {
                info!(id = &owned; "DKIM-signed as {domain} ({selectors})");
                headers
            }
            Ok(Err(why)) => {
                info!(id = &owned; "not DKIM-signed: {why}");
                Vec::new()
            }
            Err(e) => {
                warn!(id = &owned; "not DKIM-signed: the signing task failed: {e}");
                Vec::new()
            }
        }
    }

    /// Signs the message read from `file`: (domain, header lines, selectors) or why not.
    #[cfg(test)]
    fn sign(&self, file: &File) -> Result<(String, Vec<u8>, String), String> {
        self.sign_with(&[], file, None)
    }

    /// `sign`, with `prepend` (whole header lines) signed in front of the file's header; as
    /// `list_sender`'s domain when given (a list post), else as the From: domain.
    fn sign_with(
        &self,
        prepend: &[u8],
        file: &File,
        list_sender: Option<&str>,
    ) -> Result<(String, Vec<u8>, String), String> {
        let read = |buf: &mut [u8], at: u64| {
            file.read_at(buf, at)
                .map_err(|e| format!("cannot read the message: {e}"))
        };
        // `at` is the file's offset: the prepended lines are not in it.
        let mut head = prepend.to_vec();
        let mut chunk = vec![0u8; CHUNK];
        let mut at = 0u64;
        let header_end = loop {
            if let Some(end) = header_end(&head) {
                break end;
            }
            if head.len() >= MAX_HEADER {
                return Err(format!("the header is longer than {MAX_HEADER} bytes"));
            }
            let got = read(&mut chunk, at)?;
            if got == 0 {
                break head.len();
            }
            head.extend_from_slice(&chunk[..got]);
            at += got as u64;
        };
        let (from, what) = match list_sender {
            Some(sender) => (sender_domain(sender)?, "list sender's domain"),
            None => (from_domain(&head[..header_end])?, "From: domain"),
        };
        let (domain, keys) = self
            .keys_for(&from)
            .ok_or_else(|| format!("no key for the {what} {from}"))?;
        let mut streams: Vec<_> = keys.iter().map(|k| k.signer.sign_streaming()).collect();
        for s in &mut streams {
            s.write(&head);
        }
        loop {
            let got = read(&mut chunk, at)?;
            if got == 0 {
                break;
            }
            for s in &mut streams {
                s.write(&chunk[..got]);
            }
            at += got as u64;
        }
        let mut out = Vec::new();
        for (stream, key) in streams.into_iter().zip(keys) {
            let signature = stream
                .finish()
                .map_err(|e| format!("{}: {e}", describe(&key.name)))?;
            out.extend_from_slice(signature.to_header().as_bytes());
        }
        let selectors: Vec<&str> = keys.iter().map(|k| k.name.selector.as_str()).collect();
        Ok((domain.to_string(), out, selectors.join(", ")))
    }
}

/// Where the header ends: just after the CRLF that precedes the empty line.
fn header_end(bytes: &[u8]) -> Option<usize> {
    if bytes.starts_with(b"\r\n") {
        return Some(0);
    }
    memchr::memmem::find(bytes, b"\r\n\r\n").map(|i| i + 2)
}

/// The domain of the one address of the one From: header, as a lower-case A-label.
fn from_domain(header: &[u8]) -> Result<String, String> {
    let parsed = AuthenticatedMessage::parse(header).ok_or("the message has no header")?;
    let count = parsed
        .headers
        .iter()
        .filter(|(name, _)| name.trim_ascii().eq_ignore_ascii_case(b"from"))
        .count();
    if count != 1 {
        return Err(format!("{count} From: headers (one is needed)"));
    }
    let [address] = parsed.from.as_slice() else {
        return Err(format!(
            "the From: header holds {} addresses (one is needed)",
            parsed.from.len()
        ));
    };
    let domain = address
        .rsplit_once('@')
        .filter(|(local, _)| !local.is_empty())
        .map(|(_, d)| d.trim_end_matches('.'))
        .filter(|d| !d.is_empty())
        .ok_or_else(|| format!("the From: address {address:?} is not local@domain"))?;
    Ok(mail_auth::common::to_a_label(domain).to_ascii_lowercase())
}

/// The envelope sender's domain, as a lower-case A-label (a list post's: the list's).
fn sender_domain(sender: &str) -> Result<String, String> {
    sender
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.'))
        .filter(|d| !d.is_empty())
        .map(|d| mail_auth::common::to_a_label(d).to_ascii_lowercase())
        .ok_or_else(|| format!("the list sender {sender:?} has no domain"))
}

/// `example.org key moat-rsa-202611 (rsa, file moat-rsa-202611.rsa.pem)` for errors and logs.
fn describe(name: &KeyName) -> String {
    format!(
        "the DKIM key {} of {} ({}, file {}/{} in the DKIM key folder)",
        name.selector,
        name.domain,
        match name.algorithm {
            Algorithm::Rsa => "RSA",
            Algorithm::Ed25519 => "Ed25519",
        },
        name.domain,
        name.file_name()
    )
}

#[cfg(test)]
mod tests;
