//! What today's receivers demand of list mail, end to end on a real stack, by mail only: the
//! subject prefix RFC 2047-encoded (read back with Python's `email.header`), the Reply-To
//! policies, the footer (appended to text, a part of its own in a multipart/mixed, never in a
//! multipart/signed: checked with Python's `email` package), DMARC From: rewriting against a
//! loopback DNS server, and DKIM signatures as the list's domain checked with dkimpy.

use moat_tests::dkim::{parse_zone, verdicts_with_domains};
use moat_tests::dns::DnsServer;
use moat_tests::peer::Peer;
use moat_tests::{Mode, Stack};
use serde_json::Value;

const FOOTER: &str =
    "-- \nthe dev list: https://lists.example.test/dev\nleave: dev-unsubscribe@example.test\n";

/// Python's reading of the message in `address`'s Maildir whose decoded Subject holds
/// `marker`: subject (decoded), raw subject, From, Reply-To, Cc, X-Original-From, the
/// top-level type, the leaf parts [type, text], the raw body, MIME defects.
fn inspect(s: &Stack, address: &str, marker: &str) -> Value {
    let maildir = s.maildir(address);
    for _ in 0..150 {
        let out = s.python_ok(&format!(
            r#"
import email, json, os
from email import policy
from email.header import decode_header, make_header
found = None
for sub in ("new", "cur"):
    d = os.path.join({maildir:?}, sub)
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        raw = open(os.path.join(d, name), "rb").read()
        m = email.message_from_bytes(raw, policy=policy.compat32)
        subject = str(make_header(decode_header(m.get("Subject", ""))))
        if {marker:?} in subject:
            found = (raw, m, subject)
if found is None:
    print("null")
else:
    raw, m, subject = found
    parts = []
    defects = [str(d) for d in m.defects]
    for p in m.walk():
        defects += [str(d) for d in p.defects]
        if not p.is_multipart():
            payload = p.get_payload(decode=True) or b""
            parts.append([p.get_content_type(), payload.decode(p.get_content_charset() or "utf-8", "replace")])
    body = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[1]
    print(json.dumps({{
        "subject": subject, "raw_subject": m.get("Subject"),
        "from": m.get("From"), "reply_to": m.get_all("Reply-To"), "cc": m.get("Cc"),
        "original_from": m.get("X-Original-From"), "type": m.get_content_type(),
        "parts": parts, "body": body.decode("utf-8", "replace"), "defects": defects,
    }}))
"#
        ));
        let v: Value = serde_json::from_str(out.trim()).expect("json");
        if !v.is_null() {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no message with {marker:?} for {address}:\n{}", s.log());
}

fn stack(extra: &str) -> Stack {
    let s = Stack::start_configured(Mode::Up, extra);
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.add_user("bob@example.test", "bob-secret");
    s.admin(&["list", "create", "dev@example.test"], "");
    s.admin(&["list", "add", "dev@example.test", "bob@example.test"], "");
    s
}

fn set(s: &Stack, args: &[&str]) {
    let mut all = vec!["list", "set", "dev@example.test"];
    all.extend_from_slice(args);
    s.admin(&all, "");
}

#[test]
fn prefix_reply_to_and_footer() {
    let s = stack("");
    let footer = s.data.join("footer.txt");
    std::fs::write(&footer, FOOTER).expect("footer");
    let footer_path = footer.to_string_lossy().to_string();
    set(
        &s,
        &[
            "--subject-prefix",
            "[dév]",
            "--reply-to",
            "list",
            "--footer-file",
            &footer_path,
        ],
    );

    // 1. text/plain: the prefix is encoded and decodes right; Reply-To the list; footer last.
    s.send_smtp(
        "alice@example.test",
        "dev@example.test",
        "From: Alice <alice@example.test>\r\nReply-To: elsewhere@example.test\r\n\
         Subject: plain one\r\n\r\nhello all\r\n",
    );
    let m = inspect(&s, "bob@example.test", "plain one");
    assert_eq!(m["subject"], "[dév] plain one", "{m}");
    assert!(m["raw_subject"].as_str().expect("raw").is_ascii(), "{m}");
    assert!(
        m["raw_subject"]
            .as_str()
            .expect("raw")
            .contains("=?UTF-8?B?"),
        "{m}"
    );
    assert_eq!(
        m["reply_to"],
        serde_json::json!(["<dev@example.test>"]),
        "{m}"
    );
    assert_eq!(m["from"], "Alice <alice@example.test>", "{m}");
    assert_eq!(m["type"], "text/plain");
    let text = m["parts"][0][1].as_str().expect("text");
    assert!(
        text.replace("\r\n", "\n")
            .ends_with(&format!("hello all\n{FOOTER}")),
        "{text:?}"
    );
    // A reply carrying the encoded prefix is not prefixed twice.
    let raw_subject = m["raw_subject"].as_str().expect("raw").to_string();
    s.send_smtp(
        "alice@example.test",
        "dev@example.test",
        &format!("From: alice@example.test\r\nSubject: Re: {raw_subject}\r\n\r\nme too\r\n"),
    );
    let m = inspect(&s, "bob@example.test", "Re: ");
    assert_eq!(m["subject"], "Re: [dév] plain one", "{m}");

    // 2. multipart/mixed: the footer is a part of its own before the closing boundary.
    s.send_smtp(
        "alice@example.test",
        "dev@example.test",
        "From: alice@example.test\r\nSubject: mixed one\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n--XYZ\r\n\
         Content-Type: text/plain\r\n\r\nsee attached\r\n--XYZ\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         AAECAw==\r\n--XYZ--\r\n",
    );
    let m = inspect(&s, "bob@example.test", "mixed one");
    assert_eq!(m["type"], "multipart/mixed", "{m}");
    assert_eq!(m["defects"], serde_json::json!([]), "{m}");
    let parts = m["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 3, "{m}");
    assert_eq!(parts[0][1], "see attached", "{m}");
    assert_eq!(parts[1][0], "application/octet-stream", "{m}");
    assert_eq!(parts[2][0], "text/plain", "{m}");
    assert_eq!(
        parts[2][1].as_str().expect("footer").replace("\r\n", "\n"),
        FOOTER.trim_end_matches('\n'),
        "{m}"
    );

    // 3. multipart/signed: the body arrives byte for byte as sent.
    let signed_body = "--SIG\r\nContent-Type: text/plain\r\n\r\nsigned words\r\n--SIG\r\n\
                       Content-Type: application/pgp-signature\r\n\r\n-----BEGIN PGP \
                       SIGNATURE-----\r\nAAAA\r\n-----END PGP SIGNATURE-----\r\n--SIG--\r\n";
    s.send_smtp(
        "alice@example.test",
        "dev@example.test",
        &format!(
            "From: alice@example.test\r\nSubject: signed one\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; \
             micalg=pgp-sha256; boundary=\"SIG\"\r\n\r\n{signed_body}"
        ),
    );
    let m = inspect(&s, "bob@example.test", "signed one");
    assert_eq!(m["body"], signed_body, "{m}");
    assert!(!m["body"].as_str().expect("body").contains("the dev list"));

    // 4. reply_to = poster: Reply-To is the From:, the poster's own Reply-To replaced.
    set(&s, &["--reply-to", "poster", "--no-footer"]);
    s.send_smtp(
        "alice@example.test",
        "dev@example.test",
        "From: Alice <alice@example.test>\r\nReply-To: elsewhere@example.test\r\n\
         Subject: poster one\r\n\r\nhi\r\n",
    );
    let m = inspect(&s, "bob@example.test", "poster one");
    assert_eq!(
        m["reply_to"],
        serde_json::json!(["Alice <alice@example.test>"]),
        "{m}"
    );
    assert_eq!(
        m["parts"][0][1]
            .as_str()
            .expect("text")
            .replace("\r\n", "\n"),
        "hi\n"
    );
    s.wait_log("footer appended");
    s.wait_log("footer added as a part");
}

#[test]
fn dmarc_reject_domains_are_rewritten() {
    let dns = DnsServer::start(
        "_dmarc.strict.test. 60 IN TXT \"v=DMARC1; p=reject\"\n\
         _dmarc.relaxed.test. 60 IN TXT \"v=DMARC1; p=none\"\n\
         _dmarc.parent.test. 60 IN TXT \"v=DMARC1; p=none; sp=quarantine\"\n",
    );
    let s = stack(&format!(
        "[remote]\nnameserver = \"127.0.0.1:{}\"\n",
        dns.port
    ));
    s.send_smtp(
        "ann@strict.test",
        "dev@example.test",
        "From: Ann Example <ann@strict.test>\r\nSubject: strict one\r\n\r\nhi\r\n",
    );
    let m = inspect(&s, "bob@example.test", "strict one");
    assert_eq!(
        m["from"], "\"Ann Example via dev\" <dev@example.test>",
        "{m}"
    );
    assert_eq!(
        m["reply_to"],
        serde_json::json!(["Ann Example <ann@strict.test>"]),
        "{m}"
    );
    assert_eq!(m["original_from"], "Ann Example <ann@strict.test>", "{m}");
    s.wait_log("strict.test publishes p=reject");

    s.send_smtp(
        "rob@relaxed.test",
        "dev@example.test",
        "From: Rob <rob@relaxed.test>\r\nSubject: relaxed one\r\n\r\nhi\r\n",
    );
    let m = inspect(&s, "bob@example.test", "relaxed one");
    assert_eq!(m["from"], "Rob <rob@relaxed.test>", "{m}");
    assert!(m["reply_to"].is_null(), "{m}");
    assert!(m["original_from"].is_null(), "{m}");

    // A subdomain without a record of its own: the parent's sp= applies.
    s.send_smtp(
        "sub@mail.parent.test",
        "dev@example.test",
        "From: sub@mail.parent.test\r\nSubject: sub one\r\n\r\nhi\r\n",
    );
    let m = inspect(&s, "bob@example.test", "sub one");
    assert_eq!(
        m["from"], "\"sub@mail.parent.test via dev\" <dev@example.test>",
        "{m}"
    );

    // The list's own domain is never rewritten (it aligns with the list's SPF and DKIM).
    s.send_smtp(
        "alice@example.test",
        "dev@example.test",
        "From: Alice <alice@example.test>\r\nSubject: local one\r\n\r\nhi\r\n",
    );
    let m = inspect(&s, "bob@example.test", "local one");
    assert_eq!(m["from"], "Alice <alice@example.test>", "{m}");
}

#[test]
fn list_posts_are_dkim_signed_as_the_list_domain() {
    let peer = Peer::start(None);
    let s = stack(&format!(
        "[remote]\nnameserver = \"127.0.0.1:9\"\ntimeout_connect_secs = 3\n\
         timeout_command_secs = 3\n[remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n",
        peer.port
    ));
    s.admin(&["dkim", "generate", "example.test"], "");
    let zone = s.admin(&["domain", "dns", "example.test"], "");
    let (records, _) = parse_zone(&zone);
    moat_tests::signal(s.moat_pid(), rustix::process::Signal::HUP);
    s.wait_log("DKIM: signing as example.test");
    s.wait_log("the replaced moat-remote finished");
    s.admin(
        &["list", "add", "dev@example.test", "carol@far.example"],
        "",
    );
    set(&s, &["--subject-prefix", "[dev]"]);

    s.send_smtp(
        "alice@example.test",
        "dev@example.test",
        "From: Alice <alice@example.test>\r\nTo: dev@example.test\r\nSubject: signed post\r\n\
         \r\nhello far away\r\n",
    );
    let got = peer.wait(1, &s);
    let (envelope, message) = &got[0];
    assert!(
        envelope
            .iter()
            .any(|l| l.contains("dev-return-1-carol=far.example@example.test")),
        "{envelope:?}"
    );
    let verdicts = verdicts_with_domains(&records, message);
    assert_eq!(
        verdicts,
        "example.test:rsa-sha256=True example.test:ed25519-sha256=True",
        "{}",
        String::from_utf8_lossy(message)
    );
    let text = String::from_utf8_lossy(message);
    assert!(text.contains("Subject: [dev] signed post"), "{text}");
    s.wait_log("DKIM-signed as example.test");
}
