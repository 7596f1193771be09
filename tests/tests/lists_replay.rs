//! A post the queue delivers again is not sent again (issue #7): moat-local's `L` request for
//! one queue id is sent to moat-lists twice over its socket, as a queue retry after a timeout
//! would (the request and the message descriptor exactly as moat-local sends them). The first
//! numbers and sends the post; the second is answered `K` "already done" and no member gets a
//! second copy. A post held for moderation is held once per queue id the same way.

use std::time::Duration;

use moat_tests::{Mode, Stack};

const LIST: &str = "dev@example.test";

fn stack(moderated: bool) -> Stack {
    let s = Stack::start_with(Mode::Up);
    s.add_domain("example.test");
    for user in ["alice", "bob", "mod"] {
        s.add_user(&format!("{user}@example.test"), &format!("{user}-secret"));
    }
    if moderated {
        s.admin(&["list", "create", LIST, "--moderated"], "");
        s.admin(
            &["list", "add", LIST, "mod@example.test", "--moderator"],
            "",
        );
    } else {
        s.admin(&["list", "create", LIST], "");
    }
    s.admin(&["list", "add", LIST, "alice@example.test"], "");
    s.admin(&["list", "add", LIST, "bob@example.test"], "");
    s
}

/// Sends moat-lists the `L` request [qid, list, extension, sender] with a message attached,
/// `times` times, one connection each; prints each answer as `KIND text`.
fn hand_to_lists(s: &Stack, qid: &str, list: &str, sender: &str, times: usize) -> Vec<String> {
    let sock = s.data.join("run").join("lists.sock");
    let script = format!(
        r#"
import os, socket, struct, tempfile
def field(b): return struct.pack(">I", len(b)) + b
def frame(kind, fields):
    p = kind + b"".join(field(f) for f in fields)
    return struct.pack(">I", len(p)) + p
msg = tempfile.TemporaryFile()
msg.write(b"From: carol@example.test\r\nTo: {list}\r\nSubject: replayed\r\n\r\nbody\r\n")
msg.flush()
for _ in range({times}):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(60)
    c.connect({sock:?})
    req = frame(b"L", [b"{qid}", b"{list}", b"", b"{sender}"])
    c.sendmsg([req], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", msg.fileno()))])
    buf = b""
    while True:
        chunk = c.recv(65536)
        if not chunk: break
        buf += chunk
        if len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]: break
    p = buf[4:4 + struct.unpack(">I", buf[:4])[0]]
    kind, rest = p[:1], p[1:]
    text = rest[4:4 + struct.unpack(">I", rest[:4])[0]] if rest else b""
    print(kind.decode(), text.decode())
    c.close()
"#,
        sock = sock.display().to_string(),
    );
    s.python_ok(&script).lines().map(str::to_string).collect()
}

#[test]
fn a_repeated_delivery_of_a_post_is_not_sent_twice() {
    let s = stack(false);
    let answers = hand_to_lists(&s, "REPLAY1", LIST, "carol@example.test", 2);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(
        answers[0].starts_with("K post 1 sent to 2 member(s)"),
        "{answers:?}\n{}",
        s.log()
    );
    assert!(
        answers[1].starts_with("K already done (post 1)"),
        "{answers:?}\n{}",
        s.log()
    );
    s.wait_log("already distributed as post 1: not sent again");
    s.wait_messages("alice@example.test", 1);
    s.wait_messages("bob@example.test", 1);
    // Time for a second copy to arrive, were one queued.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.messages("alice@example.test").len(), 1, "{}", s.log());
    assert_eq!(s.messages("bob@example.test").len(), 1, "{}", s.log());
    // Another queue id is another post, numbered next: the first retry burned no number.
    let answers = hand_to_lists(&s, "REPLAY2", LIST, "carol@example.test", 1);
    assert!(answers[0].starts_with("K post 2 sent"), "{answers:?}");
    s.wait_messages("alice@example.test", 2);
    // The record is on disk, under the list's folder.
    let record = s.data.join("lists").join(LIST).join("done").join("REPLAY1");
    assert_eq!(
        std::fs::read_to_string(&record).expect("replay record"),
        "post 1\n"
    );
}

#[test]
fn a_repeated_delivery_of_a_held_post_is_held_once() {
    let s = stack(true);
    let answers = hand_to_lists(&s, "REPLAY3", LIST, "carol@example.test", 2);
    assert!(
        answers[0].starts_with("K held for moderation as "),
        "{answers:?}\n{}",
        s.log()
    );
    assert!(
        answers[1].starts_with("K already done (held "),
        "{answers:?}\n{}",
        s.log()
    );
    // One moderation request, one held post.
    s.wait_messages("mod@example.test", 1);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.messages("mod@example.test").len(), 1, "{}", s.log());
    let held = s.data.join("lists").join(LIST).join("held");
    let count = std::fs::read_dir(&held).expect("held dir").count();
    assert_eq!(count, 1, "{}", s.log());
}
