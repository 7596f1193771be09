//! The signer against mail-auth's own verifier (the end-to-end test checks the same with
//! dkimpy): both signatures pass, a changed body byte fails both, and the rules on origins,
//! From: headers and parent domains hold.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::io::Write as _;
use std::sync::Arc;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::common::verify::DomainKey;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};
use mail_auth::{ResolverCache, Txt};

use super::*;

const RSA: &str = include_str!("testdata/rsa-pkcs8.pem");
const ED: &str = include_str!("testdata/ed25519.pem");

fn name(domain: &str, selector: &str, algorithm: Algorithm) -> KeyName {
    KeyName {
        domain: domain.into(),
        selector: selector.into(),
        algorithm,
    }
}

fn signer() -> Signer {
    Signer::from_keys(vec![
        (
            name("example.org", "ed", Algorithm::Ed25519),
            ED.as_bytes().to_vec(),
        ),
        (
            name("example.org", "rsa", Algorithm::Rsa),
            RSA.as_bytes().to_vec(),
        ),
    ])
    .expect("keys")
}

fn file(bytes: &[u8]) -> std::fs::File {
    let mut f = tempfile::tempfile().expect("tempfile");
    f.write_all(bytes).expect("write");
    f
}

/// The published records, as a resolver cache (nothing is ever asked of a DNS server).
struct Records(HashMap<Box<str>, Txt>);

impl ResolverCache<Box<str>, Txt> for Records {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

fn records() -> Records {
    let mut map = HashMap::new();
    for (selector, algorithm, pem) in [("rsa", Algorithm::Rsa, RSA), ("ed", Algorithm::Ed25519, ED)]
    {
        let key = keys::parse_key(pem.as_bytes(), algorithm).expect("key");
        let record = keys::dns_record(&key);
        let parsed = DomainKey::parse(record.as_bytes()).expect("record parses");
        map.insert(
            format!("{selector}._domainkey.example.org.").into_boxed_str(),
            Txt::DomainKey(Arc::new(parsed)),
        );
    }
    Records(map)
}

/// mail-auth's verdict on each signature, topmost first.
async fn verify(raw: &[u8]) -> Vec<DkimResult> {
    // A resolver that could only reach the discard port: every answer comes from the cache.
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::udp_and_tcp(
        [127, 0, 0, 1].into(),
    )]);
    let auth = MessageAuthenticator::new(config, ResolverOpts::default()).expect("resolver");
    let message = AuthenticatedMessage::parse(raw).expect("message");
    let cache = records();
    auth.verify_dkim(Parameters::new(&message).with_txt_cache(&cache))
        .await
        .into_iter()
        .map(|o| o.result().clone())
        .collect()
}

/// A message whose body crosses several 64 KiB reads, with the whitespace relaxed
/// canonicalization rewrites (runs of spaces, trailing spaces, empty lines at the end).
fn message() -> Vec<u8> {
    let mut m = b"Received: from x by y; Sun, 29 Nov 2026 12:00:00 +0000\r\n\
        From: \"Alice A.\" <Alice@Example.ORG>\r\nTo: bob@far.example\r\n\
        Subject:  a   long\r\n\tfolded subject \r\nMessage-ID: <1@example.org>\r\n\
        Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n\r\n"
        .to_vec();
    for i in 0..6000 {
        m.extend_from_slice(format!("line {i}  with   spaces \t \r\n").as_bytes());
    }
    m.extend_from_slice(b"\r\n\r\n");
    m
}

#[tokio::test]
async fn both_signatures_verify_and_a_changed_body_byte_breaks_them() {
    let signer = Arc::new(signer());
    let msg = message();
    let headers = signer
        .headers("Q1", Origin::Submission, &[], &file(&msg))
        .await;
    let text = String::from_utf8(headers.clone()).expect("ascii");
    assert_eq!(text.matches("DKIM-Signature: ").count(), 2, "{text}");
    let rsa_at = text.find("a=rsa-sha256").expect("rsa");
    let ed_at = text.find("a=ed25519-sha256").expect("ed25519");
    assert!(rsa_at < ed_at, "RSA first: {text}");
    assert!(text.contains("d=example.org"), "{text}");
    assert!(text.contains("c=relaxed/relaxed"), "{text}");
    assert!(text.ends_with("\r\n"), "{text:?}");
    assert!(text.lines().all(|l| l.len() < 100), "folded: {text}");

    let mut raw = headers.clone();
    raw.extend_from_slice(&msg);
    assert_eq!(verify(&raw).await, vec![DkimResult::Pass, DkimResult::Pass]);

    let at = raw.len() - 100;
    raw[at] ^= 0x01;
    let results = verify(&raw).await;
    assert_eq!(results.len(), 2);
    // mail-auth files a body-hash mismatch as neutral; either way, not a pass.
    assert!(
        results.iter().all(|r| !matches!(r, DkimResult::Pass)),
        "{results:?}"
    );
}

/// RFC 8058 §4: the per-recipient one-click fields moat-remote prepends are covered by the
/// signature; changing the URL breaks it.
#[tokio::test]
async fn prepended_one_click_fields_are_signed() {
    let signer = Arc::new(signer());
    let msg = message();
    let oc = moat_common::client::one_click::OneClick::for_list(
        "https://lists.example.org",
        "dev@example.org",
        &[5; 32],
    )
    .expect("attribute");
    let lines = oc.headers("bob@far.example", b"\r\n").expect("lines");
    let headers = signer
        .headers("Q1", Origin::Submission, &lines, &file(&msg))
        .await;
    let mut raw = headers.clone();
    raw.extend_from_slice(&lines);
    raw.extend_from_slice(&msg);
    assert_eq!(verify(&raw).await, vec![DkimResult::Pass, DkimResult::Pass]);
    let mut other = headers;
    other.extend_from_slice(&oc.headers("eve@far.example", b"\r\n").expect("lines"));
    other.extend_from_slice(&msg);
    assert!(
        verify(&other)
            .await
            .iter()
            .all(|r| !matches!(r, DkimResult::Pass)),
        "another recipient's URL must not verify"
    );
}

#[tokio::test]
async fn only_our_own_mail_is_signed() {
    let signer = Arc::new(signer());
    let msg = message();
    for origin in [Origin::Submission, Origin::Sendmail, Origin::Bounce] {
        assert!(
            !signer
                .headers("Q", origin, &[], &file(&msg))
                .await
                .is_empty()
        );
    }
    for origin in [Origin::Smtp, Origin::Forward] {
        assert!(
            signer
                .headers("Q", origin, &[], &file(&msg))
                .await
                .is_empty()
        );
    }
}

#[test]
fn from_headers_decide_the_domain() {
    let s = signer();
    let sign = |header: &str| s.sign(&file(format!("{header}\r\n\r\nbody\r\n").as_bytes()));
    // A sub-domain is signed by its parent's keys (bounces from MAILER-DAEMON@<host>).
    for ok in [
        "From: a@example.org",
        "FROM: <a@EXAMPLE.org>",
        "From: MAILER-DAEMON@mx.example.org",
        "From: \"x@evil.example\" <a@example.org>",
        "Subject: hi\r\nfrom: =?utf-8?q?A?= <a@example.org.>",
    ] {
        let (domain, headers, _) = sign(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(domain, "example.org", "{ok}");
        assert!(!headers.is_empty());
    }
    for (bad, why) in [
        (
            "From: a@evil.example",
            "no key for the From: domain evil.example",
        ),
        ("From: a@org", "no key"),
        (
            "From: a@example.org\r\nFrom: b@example.org",
            "2 From: headers",
        ),
        ("From: a@example.org, b@example.org", "holds 2 addresses"),
        ("From: undisclosed:;", "holds 0 addresses"),
        ("Subject: no from", "0 From: headers"),
        ("From: example.org", "holds 0 addresses"),
        ("From: <@example.org>", "is not local@domain"),
    ] {
        let err = match sign(bad) {
            Ok(_) => panic!("{bad} was signed"),
            Err(e) => e,
        };
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn an_endless_header_is_not_signed() {
    let mut m = b"From: a@example.org\r\n".to_vec();
    while m.len() <= MAX_HEADER {
        m.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    m.extend_from_slice(b"\r\nbody\r\n");
    let err = signer().sign(&file(&m)).expect_err("refused");
    assert!(err.contains("longer than"), "{err}");
    // A message that is all header (no empty line) is still signed.
    assert!(signer().sign(&file(b"From: a@example.org\r\n")).is_ok());
}

#[test]
fn bad_keys_name_the_file() {
    let err = Signer::from_keys(vec![(
        name("example.org", "s1", Algorithm::Rsa),
        ED.as_bytes().to_vec(),
    )])
    .err()
    .expect("refused");
    assert!(err.contains("s1.rsa.pem"), "{err}");
    assert!(err.contains("example.org"), "{err}");
    assert!(err.contains("not an RSA private key"), "{err}");
    assert!(
        signer()
            .summary()
            .contains("example.org (rsa rsa, ed ed25519)")
    );
}

/// A list post (origin `list`) is signed as its envelope sender's domain, the list's, whatever
/// its From: says; without a key for that domain it goes unsigned.
#[tokio::test]
async fn list_posts_are_signed_as_the_list_domain() {
    let signer = Arc::new(signer());
    let msg = b"From: Poster <poster@elsewhere.example>\r\nSubject: post\r\n\r\nbody\r\n".to_vec();
    let headers = signer
        .headers_for(
            "Q",
            Origin::List,
            "dev-return-1-bob=far.example@example.org",
            &[],
            &file(&msg),
        )
        .await;
    let text = String::from_utf8_lossy(&headers).to_string();
    assert!(text.contains("d=example.org"), "{text}");
    let mut raw = headers;
    raw.extend_from_slice(&msg);
    assert_eq!(verify(&raw).await, vec![DkimResult::Pass, DkimResult::Pass]);
    let none = signer
        .headers_for(
            "Q",
            Origin::List,
            "dev-return-1@other.example",
            &[],
            &file(&msg),
        )
        .await;
    assert!(none.is_empty());
    // The same post as a forward is not signed at all.
    let fwd = signer
        .headers_for(
            "Q",
            Origin::Forward,
            "dev-return-1@example.org",
            &[],
            &file(&msg),
        )
        .await;
    assert!(fwd.is_empty());
}
