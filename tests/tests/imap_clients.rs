//! moat-imapd with real IMAP clients nobody here wrote: mbsync (Debian's isync) mirroring INBOX
//! both ways into a local Maildir, and curl's IMAP URLs (RFC 5092: a message by UID, a SEARCH).
//! Everything talks to 127.0.0.1 only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use moat_tests::Stack;

const ALICE: &str = "alice@example.test";
const PW: &str = "alice-secret";

/// The stack with alice and `messages` messages; the tests name them by UID, which
/// `Stack::deliver` keeps in delivery order.
fn stack_with_mail(messages: usize) -> Stack {
    let s = Stack::start_with_user("", ALICE, PW);
    for i in 1..=messages {
        s.deliver(
            "bob@remote.example",
            ALICE,
            &format!(
                "From: Bob <bob@remote.example>\r\nTo: {ALICE}\r\nSubject: hello {i}\r\n\
                 Message-ID: <m{i}@remote.example>\r\n\r\nbody of message {i}\r\n"
            ),
        );
    }
    s
}

fn check(out: &Output, what: &str, s: &Stack) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    stdout
}

/// A Maildir's messages (new/ and cur/): file name → content.
fn maildir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = format!("{sub}/{}", e.file_name().to_string_lossy());
            files.insert(name, std::fs::read(e.path()).expect("read message"));
        }
    }
    files
}

/// A message mbsync stored or uploaded, without the `X-TUID:` header line it adds (LF or
/// CRLF line ends).
fn without_tuid(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    let mut out = String::new();
    let mut in_header = true;
    for line in text.split_inclusive('\n') {
        if in_header && line.starts_with("X-TUID: ") {
            continue;
        }
        in_header &= line != "\n" && line != "\r\n";
        out.push_str(line);
    }
    out
}

/// The info part of a Maildir file name (`FS` of `...:2,FS`).
fn info(name: &str) -> &str {
    name.rsplit_once(":2,").map_or("", |(_, i)| i)
}

fn mbsync(config: &Path, s: &Stack) -> String {
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(config)
        .args(["-V", "sync"])
        .output()
        .expect("run mbsync (Debian package isync)");
    let text = check(&out, "mbsync", s);
    format!("{text}{}", String::from_utf8_lossy(&out.stderr))
}

#[test]
fn mbsync_pulls_inbox_and_pushes_flags_and_new_messages() {
    let s = stack_with_mail(2);
    let server = s.maildir(ALICE);
    let tmp = tempfile::tempdir().expect("tempdir");
    let local: PathBuf = tmp.path().join("mail");
    std::fs::create_dir_all(&local).expect("mkdir");
    let config = tmp.path().join("mbsyncrc");
    // Plaintext IMAP is allowed on loopback (`plaintext_on_loopback`, the default); mbsync
    // logs in with AUTHENTICATE PLAIN or LOGIN, whichever its SASL library offers.
    std::fs::write(
        &config,
        format!(
            "IMAPAccount moat\nHost 127.0.0.1\nPort {}\nUser {ALICE}\nPass {PW}\nSSLType None\n\
             AuthMechs PLAIN LOGIN\nTimeout 30\n\n\
             IMAPStore remote\nAccount moat\n\n\
             MaildirStore local\nPath {}/\nInbox {}/INBOX\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\n\
             Sync All\nExpunge None\nSyncState *\n",
            s.imap,
            local.display(),
            local.display()
        ),
    )
    .expect("write mbsyncrc");

    // 1. The first sync pulls INBOX: each message as delivered (mbsync stores LF line ends
    // and adds its own `X-TUID:` line at the end of the header, for its crash recovery).
    mbsync(&config, &s);
    let inbox = local.join("INBOX");
    let pulled = maildir_files(&inbox);
    let delivered = maildir_files(&server);
    assert_eq!(pulled.len(), 2, "{pulled:?}");
    let mut want: Vec<String> = delivered
        .values()
        .map(|m| String::from_utf8_lossy(m).replace("\r\n", "\n"))
        .collect();
    let mut got: Vec<String> = pulled.values().map(|m| without_tuid(m)).collect();
    want.sort();
    got.sort();
    assert_eq!(
        got, want,
        "mbsync's copies differ from the delivered messages"
    );

    // 2. A local flag change (\Seen and \Flagged on "hello 1") and a new local message.
    let (name, _) = pulled
        .iter()
        .find(|(_, m)| String::from_utf8_lossy(m).contains("Subject: hello 1"))
        .expect("hello 1 pulled");
    let from = inbox.join(name);
    let base = name.rsplit_once(":2,").map_or(name.as_str(), |(b, _)| b);
    let base = base.trim_start_matches("new/").trim_start_matches("cur/");
    std::fs::rename(&from, inbox.join("cur").join(format!("{base}:2,FS"))).expect("rename");
    let new_local = b"From: Alice <alice@example.test>\nTo: bob@remote.example\nSubject: written offline\nMessage-ID: <offline@example.test>\n\nA draft written offline.\n";
    std::fs::write(inbox.join("cur/1700000000.offline.host:2,S"), new_local).expect("write");
    mbsync(&config, &s);

    // The server's file names carry the flags, and the new message arrived (with \Seen).
    let on_server = maildir_files(&server);
    assert_eq!(on_server.len(), 3, "{:?}", on_server.keys());
    let hello1 = on_server
        .iter()
        .find(|(_, m)| String::from_utf8_lossy(m).contains("Subject: hello 1"))
        .expect("hello 1 on the server");
    assert_eq!(info(hello1.0), "FS", "{}", hello1.0);
    let hello2 = on_server
        .iter()
        .find(|(_, m)| String::from_utf8_lossy(m).contains("Subject: hello 2"))
        .expect("hello 2 on the server");
    assert_eq!(info(hello2.0), "", "{}", hello2.0);
    let pushed = on_server
        .iter()
        .find(|(_, m)| String::from_utf8_lossy(m).contains("written offline"))
        .expect("the offline message on the server");
    assert_eq!(info(pushed.0), "S", "{}", pushed.0);
    let crlf = String::from_utf8_lossy(new_local).replace('\n', "\r\n");
    assert_eq!(without_tuid(pushed.1), crlf);

    // IMAP sees the same: flags by FETCH, the pushed message's body byte for byte.
    let out = s.python(
        r#"
import imaplib, os
M = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP_PORT"]), timeout=30)
M.login("alice@example.test", "alice-secret")
M.select("INBOX", readonly=True)
typ, data = M.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
for d in data:
    if isinstance(d, tuple):
        print(d[0].decode(), d[1].decode().strip())
typ, data = M.uid("SEARCH", None, "SUBJECT", '"written offline"')
uid = data[0].decode()
typ, data = M.uid("FETCH", uid, "(BODY.PEEK[])")
print("pushed", data[0][1].hex())
M.logout()
"#,
    );
    let text = check(&out, "imaplib", &s);
    for (n, want) in [
        ("1", "FLAGS (\\Flagged \\Seen)"),
        ("2", "FLAGS ()"),
        ("3", "FLAGS (\\Seen)"),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{n} (UID {n} ")))
            .unwrap_or_else(|| panic!("message {n} missing:\n{text}"));
        assert!(line.contains(want), "{line}");
    }
    let hex: String = pushed.1.iter().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&format!("pushed {hex}")), "{text}");

    // 3. A second sync changes nothing on either side.
    let server_before = maildir_files(&server);
    let local_before = maildir_files(&inbox);
    let log = mbsync(&config, &s);
    assert_eq!(maildir_files(&server), server_before, "{log}");
    assert_eq!(maildir_files(&inbox), local_before, "{log}");
}

#[test]
fn curl_fetches_a_message_by_uid_and_searches() {
    let s = stack_with_mail(3);
    let curl = |url: &str| {
        let out = Command::new("curl")
            .args(["-k", "-s", "--max-time", "30", "-u"])
            .arg(format!("{ALICE}:{PW}"))
            .arg(format!("imaps://127.0.0.1:{}/{url}", s.imaps))
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl {url}: {out:?}\n{}", s.log());
        out.stdout
    };
    // UIDs follow delivery order; the server's files are what was delivered.
    let delivered = maildir_files(&s.maildir(ALICE));
    let second = delivered
        .values()
        .find(|m| String::from_utf8_lossy(m).contains("Subject: hello 2"))
        .expect("hello 2");
    assert_eq!(curl("INBOX;UID=2"), *second);
    assert_eq!(curl("INBOX?SUBJECT%20hello"), b"* SEARCH 1 2 3\r\n");
    assert_eq!(curl("INBOX?SUBJECT%20%22hello%202%22"), b"* SEARCH 2\r\n");
    assert_eq!(curl("INBOX?UNSEEN%20NOT%20FROM%20bob"), b"* SEARCH\r\n");
    // A section of a message: its header field (RFC 5092 `;SECTION=`).
    assert_eq!(
        curl("INBOX;UID=3;SECTION=HEADER.FIELDS%20(SUBJECT)"),
        b"Subject: hello 3\r\n\r\n"
    );
}
