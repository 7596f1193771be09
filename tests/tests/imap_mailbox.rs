//! moat-imapd's selected state end to end: Python's imaplib against the real stack (SMTP
//! deliveries, SELECT, FETCH, STORE, EXPUNGE, APPEND, COPY, MOVE, CONDSTORE, IDLE, two sessions
//! on one mailbox), POP3 deleting under IMAP, and UIDs surviving a restart.

use moat_tests::Stack;

const ALICE: &str = "alice@example.test";
const PW: &str = "alice-secret";

/// The stack with alice and her messages 1 and 2, delivered through SMTP.
fn stack() -> Stack {
    let s = Stack::start_with_user("", ALICE, PW);
    for n in 1..=2 {
        s.deliver(
            "bob@remote.example",
            ALICE,
            &format!(
                "From: Bob <bob@remote.example>\r\nTo: {ALICE}\r\nSubject: hello {n}\r\n\r\nbody text {n}\r\n"
            ),
        );
    }
    s
}

/// Runs a Python script (with helpers) against the stack; it must succeed.
fn python(s: &Stack, script: &str) -> String {
    let prelude = r#"
import imaplib, os, re, socket, ssl, time, glob, smtplib
PORT = int(os.environ["IMAP_PORT"]); SMTP_PORT = int(os.environ["SMTP_PORT"])
POP3_PORT = int(os.environ["POP3_PORT"])
USER = "alice@example.test"; PW = "alice-secret"
for c in ("ENABLE", "IDLE", "UNSELECT", "MOVE"):
    imaplib.Commands.setdefault(c, ("AUTH", "SELECTED"))
def login():
    M = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
    M.login(USER, PW)
    return M
def ok(r):
    typ, data = r
    assert typ == "OK", r
    return data
def untagged(M, name):
    return [x.decode() if isinstance(x, bytes) else repr(x) for x in M.untagged_responses.pop(name, [])]
def smtp_deliver(n):
    with smtplib.SMTP("127.0.0.1", SMTP_PORT) as c:
        c.sendmail("bob@remote.example", [USER],
            "From: bob@remote.example\r\nTo: %s\r\nSubject: late %d\r\n\r\nlate %d\r\n" % (USER, n, n))
"#;
    s.python_ok(&format!("{prelude}\n{script}"))
}

#[test]
fn select_fetch_store_expunge_append_copy_move() {
    let s = stack();
    let maildir = s.maildir(ALICE);
    let text = python(
        &s,
        &format!(
            r#"
MD = {maildir:?}
M = login()
typ, data = M.select("INBOX")
assert typ == "OK" and data == [b"2"], (typ, data)
assert untagged(M, "RECENT") == ["2"]
v = int(untagged(M, "UIDVALIDITY")[0]); assert v > 0
assert untagged(M, "UIDNEXT") == ["3"]
print("caps", M.capability()[1][0].decode())
typ, data = M.fetch("1:*", "(FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (Subject)])")
assert typ == "OK", data
blob = repr(data)
assert "hello 1" in blob and "hello 2" in blob and "bob@remote.example" in blob.lower() or "remote.example" in blob, blob
assert "\\\\Recent" in blob and "\\\\Seen" not in blob, blob
# BODY[] is the file, byte for byte, and sets \Seen.
typ, data = M.fetch("1", "(BODY[])")
body = data[0][1]
files = sorted(glob.glob(MD + "/cur/*"))
on_disk = [open(f, "rb").read() for f in files]
assert body in on_disk, (body, on_disk)
assert b"\\Seen" in data[0][0] or b"\\Seen" in b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data), data
typ, data = M.search(None, "UNSEEN")
print("unseen", data)
# STORE and keywords
typ, data = M.store("2", "+FLAGS", "(\\Flagged $Work)")
assert typ == "OK" and b"$Work" in data[0] and b"\\Flagged" in data[0], data
assert any(",F" in f or "F" in f.split(":2,")[1] for f in glob.glob(MD + "/cur/*")), glob.glob(MD + "/cur/*")
# APPEND with APPENDUID, then UID FETCH it
msg = b"From: me@example.test\r\nSubject: appended\r\n\r\nappended body\r\n"
typ, data = M.append("INBOX", "(\\Seen)", imaplib.Time2Internaldate(1700000000), msg)
assert typ == "OK", data
m = re.search(rb"APPENDUID (\d+) (\d+)", data[0]); assert m and int(m.group(1)) == v, data
auid = m.group(2).decode()
typ, data = M.uid("FETCH", auid, "(BODY.PEEK[] FLAGS INTERNALDATE)")
assert data[0][1] == msg, data
meta = data[0][0] + data[1]
assert b"\\Seen" in meta and b"14-Nov-2023" in meta, data
# COPY to Archive with COPYUID, MOVE to Trash
typ, data = M.copy("1:2", "Archive")
assert typ == "OK" and b"COPYUID" in data[0], data
typ, data = M.uid("MOVE", auid, "Trash")
assert typ == "OK", data
print("move", M.untagged_responses)
typ, data = M.status("Trash", "(MESSAGES)"); assert b"MESSAGES 1" in data[0], data
typ, data = M.copy("1", "Nope"); assert typ == "NO" and b"TRYCREATE" in data[0], data
# EXPUNGE
ok(M.store("1", "+FLAGS", "(\\Deleted)"))
typ, data = M.expunge()
# The MOVE's EXPUNGE (3) came first; imaplib keeps collecting them.
assert typ == "OK" and data[-1] == b"1", data
typ, data = M.fetch("1:*", "(UID)")
assert len([d for d in data if d]) == 1, data
typ, data = M.select("Archive")
assert data == [b"2"], data
M.logout()
print("done")
"#
        ),
    );
    assert!(text.contains("done"), "{text}");
    for cap in [
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "UNSELECT",
        "CONDSTORE",
        "APPENDLIMIT=",
    ] {
        assert!(text.contains(cap), "{cap}: {text}");
    }
}

#[test]
fn condstore_two_sessions_idle_pop3_and_restart() {
    let mut s = stack();
    let text = python(
        &s,
        r#"
A = login(); B = login()
typ, data = A._simple_command("SELECT", "INBOX", "(CONDSTORE)"); assert typ == "OK"; A.state = "SELECTED"
hms = int(untagged(A, "HIGHESTMODSEQ")[0]); assert hms > 0
ok(B.select("INBOX"))
# STORE UNCHANGEDSINCE: the first succeeds, one with an old MODSEQ fails with MODIFIED
typ, data = A.fetch("1", "(MODSEQ)"); m1 = int(re.search(rb"MODSEQ \((\d+)\)", data[0]).group(1))
typ, data = A._simple_command("STORE", "1", "(UNCHANGEDSINCE %d)" % m1, "+FLAGS", "(\\Answered)")
assert typ == "OK", data
typ, data = A._simple_command("STORE", "1", "(UNCHANGEDSINCE %d)" % m1, "+FLAGS", "(\\Flagged)")
assert typ == "OK" and b"MODIFIED 1" in data[0], data
A.untagged_responses.clear()
typ, data = A._simple_command("FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE %d)" % m1)
fetched = untagged(A, "FETCH"); assert len(fetched) == 1 and "MODSEQ" in fetched[0], fetched
# B sees A's flag change at its NOOP
B.untagged_responses.clear(); ok(B.noop())
f = untagged(B, "FETCH"); assert any("\\Answered" in x for x in f), f
# B expunges; A does not hear it during FETCH but at NOOP
ok(B.store("2", "+FLAGS", "(\\Deleted)")); ok(B.expunge())
A.untagged_responses.clear()
typ, data = A.fetch("1:*", "(UID)")
assert "EXPUNGE" not in A.untagged_responses, A.untagged_responses
ok(A.noop()); assert untagged(A, "EXPUNGE") == ["2"], A.untagged_responses
# IDLE reports a delivery within a second
tag = A._new_tag().decode()
A.send(("%s IDLE\r\n" % tag).encode())
assert A.readline().startswith(b"+"), "no continuation"
start = time.time(); smtp_deliver(3)
line = A.readline()
while b"EXISTS" not in line:
    line = A.readline()
took = time.time() - start
print("idle took", took)
A.send(b"DONE\r\n")
while not A.readline().startswith(tag.encode()):
    pass
assert took < 3.0, took
B.logout(); A.logout()
print("done")
"#,
    );
    assert!(text.contains("done"), "{text}");
    // POP3 deletes the first message: IMAP reports it expunged.
    let text = python(
        &s,
        r#"
import poplib
M = login(); ok(M.select("INBOX")); v = untagged(M, "UIDVALIDITY")
typ, before = M.uid("FETCH", "1:*", "(UID)")
P = poplib.POP3("127.0.0.1", POP3_PORT); P.user(USER); P.pass_(PW); P.dele(1); P.quit()
M.untagged_responses.clear(); ok(M.noop())
assert untagged(M, "EXPUNGE") == ["1"], M.untagged_responses
typ, after = M.uid("FETCH", "1:*", "(UID)")
print("uids", v, after)
M.logout()
"#,
    );
    let uids = text
        .lines()
        .find(|l| l.starts_with("uids"))
        .expect("uids")
        .to_string();
    s.restart();
    let again = python(
        &s,
        r#"
M = login(); ok(M.select("INBOX")); v = untagged(M, "UIDVALIDITY")
typ, after = M.uid("FETCH", "1:*", "(UID)")
print("uids", v, after)
M.logout()
"#,
    );
    assert!(again.contains(&uids), "{uids} vs {again}");
}
