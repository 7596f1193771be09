//! The hourly allowance of archive answers (issue #7): `list-index@` and `list-get.N@` answer
//! one sender of one list at most 5 times an hour, so a forged sender cannot make the list
//! mail an address without end; another sender is still answered.

use std::time::Duration;

use moat_tests::{Mode, Stack};

const LIST: &str = "dev@example.test";

/// Sends a message with `subject` and a short body over SMTP (port 25).
fn send(s: &Stack, sender: &str, rcpt: &str, subject: &str) {
    s.send_smtp(
        sender,
        rcpt,
        &format!("Subject: {subject}\r\n\r\nbody text\r\n"),
    );
}

#[test]
fn archive_answers_are_limited_per_sender_and_hour() {
    let s = Stack::start_with(Mode::Up);
    s.add_domain("example.test");
    for user in ["alice", "carol", "dave"] {
        s.add_user(&format!("{user}@example.test"), &format!("{user}-secret"));
    }
    s.admin(&["list", "create", LIST, "--archive"], "");
    s.admin(&["list", "add", LIST, "alice@example.test"], "");
    send(&s, "alice@example.test", LIST, "first post");
    s.wait_messages("alice@example.test", 1);
    for i in 0..4 {
        send(
            &s,
            "carol@example.test",
            "dev-index@example.test",
            &format!("i{i}"),
        );
    }
    for i in 0..3 {
        send(
            &s,
            "carol@example.test",
            "dev-get.1@example.test",
            &format!("g{i}"),
        );
    }
    s.wait_messages("carol@example.test", 5);
    s.wait_log("not answered (5 archive answers already sent within the hour)");
    // Time for the refused ones to arrive, were they answered.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.messages("carol@example.test").len(), 5, "{}", s.log());
    // Another sender has its own allowance.
    send(&s, "dave@example.test", "dev-index@example.test", "d");
    let got = s.wait_messages("dave@example.test", 1);
    assert!(got[0].contains("first post"), "{}", got[0]);
}
