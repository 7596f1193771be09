//! RFC 8058 one-click unsubscribe end to end: a list with a local member (alice) and a remote
//! one (bob, behind the aiosmtpd loopback peer); a post reaches each with its own HTTPS
//! `List-Unsubscribe` URL and `List-Unsubscribe-Post`; `curl -X POST` of alice's URL over HTTPS
//! removes her and no one else; a GET only shows a form; a tampered MAC gets 404 and changes
//! nothing; an oversized header gets 431 and the endpoint keeps serving.

use std::process::Command;

use moat_tests::dkim::{parse_zone, verdicts};
use moat_tests::peer::Peer;
use moat_tests::{Mode, Stack, free_ports};

/// Runs curl (insecure: the stack's certificate is self-signed) and returns (status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("curl printed the status");
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The URL of the message's one `List-Unsubscribe` field, after checking its shape.
fn one_click_url(message: &str) -> String {
    let unfolded = message.replace("\r\n ", " ");
    let fields: Vec<&str> = unfolded
        .lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| l.to_ascii_lowercase().starts_with("list-unsubscribe:"))
        .collect();
    assert_eq!(fields.len(), 1, "one List-Unsubscribe field: {message}");
    assert!(
        fields[0].ends_with(", <mailto:dev-unsubscribe@example.test>"),
        "{message}"
    );
    assert!(
        message.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
        "{message}"
    );
    let start = fields[0].find("<https://").expect("an https URL") + 1;
    let end = fields[0][start..].find('>').expect("closing >") + start;
    fields[0][start..end].to_string()
}

fn members(s: &Stack) -> String {
    s.admin(&["list", "members", "dev@example.test"], "")
}

#[test]
fn one_click_unsubscribe_over_https() {
    let peer = Peer::start(None);
    let [web] = free_ports::<1>();
    let web_url = format!("https://localhost:{web}");
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[remote]\nnameserver = \"127.0.0.1:9\"\n\
             [remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n\
             [lists]\nweb_listen = \"127.0.0.1:{web}\"\nweb_url = \"{web_url}\"\n",
            peer.port
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.admin(&["list", "create", "dev@example.test"], "");
    s.admin(
        &["list", "add", "dev@example.test", "alice@example.test"],
        "",
    );
    s.admin(&["list", "add", "dev@example.test", "bob@far.example"], "");
    s.wait_log("one-click endpoint on 127.0.0.1:");

    s.send_smtp(
        "alice@example.test",
        "dev@example.test",
        "From: alice@example.test\r\nTo: dev@example.test\r\nSubject: hello\r\n\
         List-Unsubscribe: <https://evil.example/x>\r\n\
         List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nhi all\r\n",
    );
    let local = s.wait_messages("alice@example.test", 1).remove(0);
    let remote = peer.wait(1, &s).remove(0);
    let remote = String::from_utf8(remote.1).expect("utf8");
    assert!(!local.contains("evil.example") && !remote.contains("evil.example"));

    // Each copy carries its own URL: the member's address and a MAC of 32 hex digits.
    let alice_url = one_click_url(&local);
    let bob_url = one_click_url(&remote);
    let base = format!("{web_url}/u/dev@example.test/");
    let alice_mac = alice_url
        .strip_prefix(&format!("{base}alice=example.test/"))
        .unwrap_or_else(|| panic!("alice's URL: {alice_url}"));
    let bob_mac = bob_url
        .strip_prefix(&format!("{base}bob=far.example/"))
        .unwrap_or_else(|| panic!("bob's URL: {bob_url}"));
    for mac in [alice_mac, bob_mac] {
        assert_eq!(mac.len(), 32, "{mac}");
        assert!(mac.bytes().all(|b| b.is_ascii_hexdigit()), "{mac}");
    }
    assert_ne!(alice_mac, bob_mac);

    // A GET (a mail scanner following the link) shows a form and unsubscribes no one.
    let (code, page) = curl(&[&alice_url]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("<form method=\"post\">"), "{page}");
    assert!(page.contains("alice@example.test"), "{page}");
    assert!(members(&s).contains("alice@example.test"));

    // A tampered MAC, another member's MAC, an unknown list: 404, nothing changes.
    let mut tampered = alice_url.clone();
    let last = if tampered.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(tampered.len() - 1.., last);
    let swapped = format!("{base}alice=example.test/{bob_mac}");
    let unknown = alice_url.replace("/u/dev@", "/u/nolist@");
    for url in [&tampered, &swapped, &unknown] {
        let (code, body) = curl(&["-X", "POST", "-d", "List-Unsubscribe=One-Click", url]);
        assert_eq!(code, 404, "{url}: {body}");
    }
    let list = members(&s);
    assert!(
        list.contains("alice@example.test") && list.contains("bob@far.example"),
        "{list}"
    );

    // An oversized header: refused, and the endpoint keeps serving.
    let big = format!("X-Big: {}", "a".repeat(9000));
    let (code, _) = curl(&["-H", &big, &alice_url]);
    assert_eq!(code, 431);
    // A POST without the RFC 8058 body does nothing.
    let (code, _) = curl(&["-X", "POST", "-d", "x=y", &alice_url]);
    assert_eq!(code, 400);
    assert!(members(&s).contains("alice@example.test"));

    // The real thing: alice is removed, bob stays; doing it again is still 200.
    let (code, body) = curl(&["-X", "POST", "-d", "List-Unsubscribe=One-Click", &alice_url]);
    assert_eq!(code, 200, "{body}\n{}", s.log());
    let list = members(&s);
    assert!(!list.contains("alice@example.test"), "{list}");
    assert!(list.contains("bob@far.example"), "{list}");
    s.wait_log("one-click: list=<dev@example.test> address=<alice@example.test>");
    let (code, _) = curl(&["-X", "POST", "-F", "List-Unsubscribe=One-Click", &alice_url]);
    assert_eq!(code, 200);
    // Bob's URL works for bob, as multipart/form-data (RFC 8058 allows either encoding).
    let (code, _) = curl(&["-X", "POST", "-F", "List-Unsubscribe=One-Click", &bob_url]);
    assert_eq!(code, 200);
    assert!(!members(&s).contains("bob@far.example"));
    // Plain HTTP is not served.
    let plain = alice_url.replace("https://", "http://");
    let (code, _) = curl(&[&plain]);
    assert_ne!(code, 200);
}

/// RFC 8058 §4: the per-recipient fields are covered by the list's DKIM signatures, which
/// still verify on the copy the remote member receives.
#[test]
fn the_signed_remote_copy_covers_the_one_click_fields() {
    let peer = Peer::start(None);
    let [web] = free_ports::<1>();
    let s = Stack::start_configured(
        Mode::Up,
        &format!(
            "[remote]\nnameserver = \"127.0.0.1:9\"\n\
             [remote.routes]\n\"far.example\" = \"127.0.0.1:{}\"\n\
             [lists]\nweb_listen = \"127.0.0.1:{web}\"\nweb_url = \"https://localhost:{web}\"\n",
            peer.port
        ),
    );
    s.add_domain("example.test");
    s.add_user("alice@example.test", "alice-secret");
    s.admin(&["list", "create", "dev@example.test"], "");
    s.admin(&["list", "add", "dev@example.test", "bob@far.example"], "");
    s.admin(&["dkim", "generate", "example.test"], "");
    let (records, _) = parse_zone(&s.admin(&["domain", "dns", "example.test"], ""));
    moat_tests::signal(s.moat_pid(), rustix::process::Signal::HUP);
    s.wait_log("DKIM: signing as example.test");
    s.wait_log("the replaced moat-remote finished");

    s.send_smtp(
        "alice@example.test",
        "dev@example.test",
        "From: alice@example.test\r\nTo: dev@example.test\r\nSubject: signed\r\n\r\nhi\r\n",
    );
    let got = peer.wait(1, &s).remove(0).1;
    let text = String::from_utf8_lossy(&got).into_owned();
    one_click_url(&text);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .replace("\r\n", "");
    let signature = head
        .split("DKIM-Signature:")
        .nth(1)
        .unwrap_or_else(|| panic!("signed: {text}"))
        .to_ascii_lowercase();
    assert!(signature.contains("list-unsubscribe-post"), "{text}");
    let verdict = verdicts(&records, &got);
    assert_eq!(verdict, "rsa-sha256=True ed25519-sha256=True", "{text}");
}
