//! The archive and digests end to end, by mail only, on a real stack with `[lists] digest_posts
//! = 5`: five posts reach the normal member one by one and the digest member as one
//! multipart/digest with the five posts in order (parsed with Python's email package);
//! `list-get.1` and `list-index` answer from the archive; `list-digest-subscribe` works with
//! its confirmation, and a forged digest cookie changes nothing.

use moat_tests::{Mode, Stack};

const LIST: &str = "dev@example.test";

fn stack() -> Stack {
    let s = Stack::start_configured(Mode::Up, "[lists]\ndigest_posts = 5\n");
    s.add_domain("example.test");
    for user in ["alice", "bob", "carol", "dave"] {
        s.add_user(&format!("{user}@example.test"), &format!("{user}-secret"));
    }
    s.admin(&["list", "create", LIST, "--archive", "--digest"], "");
    let footer = s.data.join("footer.txt");
    std::fs::write(&footer, "-- \nthe dev list footer\n").expect("footer");
    let footer = footer.display().to_string();
    s.admin(
        &[
            "list",
            "set",
            LIST,
            "--subject-prefix",
            "[dev]",
            "--footer-file",
            &footer,
        ],
        "",
    );
    s.admin(&["list", "add", LIST, "alice@example.test"], "");
    s.admin(&["list", "add", LIST, "bob@example.test", "--digest"], "");
    s
}

/// Sends a message with `headers` and a short body over SMTP (port 25).
fn send(s: &Stack, sender: &str, rcpt: &str, headers: &str) {
    s.send_smtp(sender, rcpt, &format!("{headers}\r\nbody text\r\n"));
}

/// Parses the message of `address` whose Subject contains `subject` with Python's email
/// package: prints the top content type, then one line per part (content type, and for a
/// message/rfc822 part the inner Subject).
fn mime_parts(s: &Stack, address: &str, subject: &str) -> Vec<String> {
    let md = s.maildir(address);
    let script = format!(
        r#"
import email, email.policy, os
md = {md:?}
found = None
for sub in ("new", "cur"):
    for name in sorted(os.listdir(os.path.join(md, sub))):
        with open(os.path.join(md, sub, name), "rb") as f:
            m = email.message_from_binary_file(f, policy=email.policy.default)
        if {subject:?} in str(m["Subject"]):
            found = m
assert found is not None, "no message with that subject"
print(found.get_content_type())
for part in found.iter_parts():
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()[0]
        print("message/rfc822", inner["Subject"])
    else:
        print(part.get_content_type())
"#,
        md = md.display().to_string()
    );
    s.python_ok(&script).lines().map(str::to_string).collect()
}

fn find<'a>(messages: &'a [String], needle: &str) -> Option<&'a String> {
    messages.iter().find(|m| m.contains(needle))
}

#[test]
fn archive_get_index_and_digest() {
    let s = stack();
    for i in 1..=5 {
        send(
            &s,
            "alice@example.test",
            LIST,
            &format!("From: alice@example.test\r\nSubject: topic {i}\r\n"),
        );
        // One at a time, so post numbers follow the subjects.
        s.wait_messages("alice@example.test", i);
    }
    s.wait_log("list=<dev@example.test> digest 1 (posts 1 to 5, 5 post(s))");
    let bob = s.wait_messages("bob@example.test", 1);
    let digest = &bob[0];
    assert!(digest.contains("Subject: dev digest 1"), "{digest}");
    assert!(
        digest.starts_with("Return-Path: <dev-return-d1-bob=example.test@example.test>"),
        "{digest}"
    );
    assert!(
        digest.contains("List-Unsubscribe: <mailto:dev-digest-unsubscribe@example.test>"),
        "{digest}"
    );
    let parts = mime_parts(&s, "bob@example.test", "dev digest 1");
    let mut want = vec!["multipart/digest".to_string(), "text/plain".to_string()];
    want.extend((1..=5).map(|i| format!("message/rfc822 [dev] topic {i}")));
    assert_eq!(parts, want, "{digest}");
    // The table of contents names every post.
    for i in 1..=5 {
        assert!(
            digest.contains(&format!("     {i}  [dev] topic {i}")),
            "{digest}"
        );
    }
    // The normal member got the posts one by one; nobody got anything else.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(s.messages("bob@example.test").len(), 1, "{}", s.log());
    let alice = s.messages("alice@example.test");
    assert_eq!(alice.len(), 5, "{}", s.log());
    assert!(!alice.iter().any(|m| m.contains("multipart/digest")));
    // RFC 2369: an archived list names where its archive is.
    assert!(
        alice
            .iter()
            .all(|m| m.contains("List-Archive: <mailto:dev-index@example.test>")),
        "{alice:?}"
    );

    // The archive is a Maildir named by post number.
    let archive = s.data.join("lists").join(LIST).join("archive");
    let stored = std::fs::read_to_string(archive.join("cur").join("0000000001.post:2,S"))
        .unwrap_or_else(|e| panic!("post 1 not archived: {e}\n{}", s.log()));
    assert!(stored.contains("Subject: [dev] topic 1"), "{stored}");
    assert!(stored.contains("List-Id: <dev.example.test>"), "{stored}");
    // As distributed: with the footer.
    assert!(stored.contains("the dev list footer"), "{stored}");
    assert!(archive.join("new").is_dir() && archive.join("tmp").is_dir());

    // get.1: the first post, as a digest with one message part.
    send(
        &s,
        "alice@example.test",
        "dev-get.1@example.test",
        "From: alice@example.test\r\nSubject: get\r\n",
    );
    let got = s.wait_messages("alice@example.test", 6);
    let answer = find(&got, "Subject: dev archive: post 1").unwrap_or_else(|| {
        panic!("no get answer:\n{}", s.log());
    });
    assert!(answer.contains("From: dev-help@example.test"), "{answer}");
    assert!(answer.contains("Auto-Submitted: auto-replied"), "{answer}");
    let parts = mime_parts(&s, "alice@example.test", "dev archive: post 1");
    assert_eq!(
        parts,
        vec![
            "multipart/digest",
            "text/plain",
            "message/rfc822 [dev] topic 1"
        ]
    );

    // get.4_9: posts 4 and 5, and the text says 5 is the newest.
    send(
        &s,
        "alice@example.test",
        "dev-get.4_9@example.test",
        "From: alice@example.test\r\nSubject: get\r\n",
    );
    let got = s.wait_messages("alice@example.test", 7);
    let answer = find(&got, "Subject: dev archive: posts 4 to 9").unwrap_or_else(|| {
        panic!("no get answer:\n{}", s.log());
    });
    assert!(
        answer.contains("The newest post of the list is number 5."),
        "{answer}"
    );
    let parts = mime_parts(&s, "alice@example.test", "dev archive: posts 4 to 9");
    assert_eq!(
        parts[2..],
        [
            "message/rfc822 [dev] topic 4".to_string(),
            "message/rfc822 [dev] topic 5".to_string()
        ]
    );

    // index: one line per post.
    send(
        &s,
        "alice@example.test",
        "dev-index@example.test",
        "From: alice@example.test\r\nSubject: index\r\n",
    );
    let got = s.wait_messages("alice@example.test", 8);
    let index = find(&got, "Subject: dev archive index").unwrap_or_else(|| {
        panic!("no index answer:\n{}", s.log());
    });
    for i in 1..=5 {
        assert!(index.contains(&format!("[dev] topic {i}")), "{index}");
    }
    assert!(index.contains("alice@example.test"), "{index}");

    // carol asks for the digest, confirms through the Reply-To, and is on the digest roster.
    send(
        &s,
        "carol@example.test",
        "dev-digest-subscribe@example.test",
        "From: carol@example.test\r\nSubject: digest please\r\n",
    );
    let got = s.wait_messages("carol@example.test", 1);
    let reply_to = got[0]
        .lines()
        .find_map(|l| l.strip_prefix("Reply-To: ").map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no Reply-To:\n{}", got[0]));
    assert!(
        reply_to.starts_with("dev-sc.d") && reply_to.ends_with("-carol=example.test@example.test"),
        "{reply_to}"
    );
    send(
        &s,
        "carol@example.test",
        &reply_to,
        "From: carol@example.test\r\nSubject: Re: confirm\r\n",
    );
    let got = s.wait_messages("carol@example.test", 2);
    assert!(
        find(
            &got,
            "is now subscribed to the digest of <dev@example.test>"
        )
        .is_some(),
        "{}",
        s.log()
    );
    let digest_members = s.admin(&["list", "members", LIST, "--kind", "digest"], "");
    assert!(
        digest_members.contains("carol@example.test"),
        "{digest_members}"
    );
    let members = s.admin(&["list", "members", LIST, "--kind", "member"], "");
    assert!(!members.contains("carol@example.test"), "{members}");

    // A forged digest cookie, and carol's digest cookie made into a member-roster one by
    // dropping its `d`: neither confirms anything.
    let forged = format!("dev-sc.d{}-dave=example.test@example.test", "0".repeat(28));
    send(
        &s,
        "dave@example.test",
        &forged,
        "From: dave@example.test\r\nSubject: confirm\r\n",
    );
    s.wait_log("<dave@example.test> from=<dave@example.test>: refused: cookie does not match");
    let cookie = reply_to
        .strip_prefix("dev-sc.d")
        .and_then(|r| r.split_once('-'))
        .map(|(c, _)| c.to_string())
        .expect("cookie");
    send(
        &s,
        "carol@example.test",
        &format!("dev-sc.{cookie}-carol=example.test@example.test"),
        "From: carol@example.test\r\nSubject: confirm\r\n",
    );
    s.wait_log("<carol@example.test> from=<carol@example.test>: refused: cookie does not match");
    let members = s.admin(&["list", "members", LIST], "");
    assert!(!members.contains("dave@example.test"), "{members}");
    let main = s.admin(&["list", "members", LIST, "--kind", "member"], "");
    assert!(!main.contains("carol@example.test"), "{main}");
    assert!(s.messages("dave@example.test").is_empty(), "{}", s.log());

    // On a members-only list the archive is for members: dave (on no roster) is refused,
    // carol (digest roster) gets the post.
    s.admin(&["list", "set", LIST, "--members-only", "true"], "");
    for who in ["dave", "carol"] {
        send(
            &s,
            &format!("{who}@example.test"),
            "dev-get.2@example.test",
            &format!("From: {who}@example.test\r\nSubject: get\r\n"),
        );
    }
    let dave = s.wait_messages("dave@example.test", 1);
    assert!(
        dave[0].contains("Only members may read the archive"),
        "{}",
        dave[0]
    );
    assert!(!dave[0].contains("multipart/digest"), "{}", dave[0]);
    let carol = s.wait_messages("carol@example.test", 3);
    assert!(
        find(&carol, "Subject: dev archive: post 2").is_some(),
        "{}",
        s.log()
    );

    // A list whose only reader takes the digest: posts are numbered, archived, digested.
    s.admin(&["list", "create", "solo@example.test", "--digest"], "");
    s.admin(
        &[
            "list",
            "add",
            "solo@example.test",
            "dave@example.test",
            "--digest",
        ],
        "",
    );
    for i in 1..=5 {
        send(
            &s,
            "alice@example.test",
            "solo@example.test",
            &format!("From: alice@example.test\r\nSubject: solo {i}\r\n"),
        );
        s.wait_log(&format!(
            "list=<solo@example.test> post {i} from=<alice@example.test>: no members: archived only"
        ));
    }
    s.wait_messages("dave@example.test", 2);
    let parts = mime_parts(&s, "dave@example.test", "solo digest 1");
    let mut want = vec!["multipart/digest".to_string(), "text/plain".to_string()];
    want.extend((1..=5).map(|i| format!("message/rfc822 solo {i}")));
    assert_eq!(parts, want, "{}", s.log());
}
