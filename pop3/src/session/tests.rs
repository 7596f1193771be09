//! The session's rules, without sockets or files.

use super::*;
use crate::maildrop::Message;

fn config(plaintext_allowed: bool) -> Config {
    Config {
        hostname: "pop.example.test".into(),
        tls_available: true,
        plaintext_allowed,
    }
}

fn line(s: &mut Session, text: &str) -> Step {
    s.line(Line::Complete(text.as_bytes().to_vec()))
}

fn reply(step: Step) -> String {
    match step {
        Step::Reply(r) | Step::Close(r) | Step::StartTls(r) => r,
        other => panic!("not a reply: {other:?}"),
    }
}

fn drop_of(n: u32) -> Maildrop {
    Maildrop {
        uid_validity: 0x5F00_0001,
        messages: (1..=n)
            .map(|uid| Message {
                base: format!("{uid}.M1P1.host,S=10,W=12"),
                uid,
                octets: 12,
                deleted: false,
                retrieved: false,
                seen: uid == 1,
            })
            .collect(),
    }
}

/// A session logged in with a maildrop of `n` messages.
fn logged_in(n: u32) -> Session {
    let mut s = Session::new(config(true), false);
    assert_eq!(reply(line(&mut s, "USER a@x.test")), "+OK send PASS\r\n");
    assert!(matches!(line(&mut s, "PASS pw"), Step::Authenticate { .. }));
    let r = reply(s.auth_result(AuthOutcome::LoggedIn(drop_of(n))));
    assert!(r.starts_with("+OK logged in"), "{r}");
    s
}

#[test]
fn user_pass_then_transaction() {
    let mut s = Session::new(config(true), false);
    assert!(s.greeting().starts_with("+OK pop.example.test"));
    assert_eq!(reply(line(&mut s, "STAT")), "-ERR log in first\r\n");
    assert_eq!(reply(line(&mut s, "PASS x")), "-ERR USER first\r\n");
    assert_eq!(reply(line(&mut s, "USER a@x.test")), "+OK send PASS\r\n");
    match line(&mut s, "PASS secret words") {
        Step::Authenticate { login, password } => {
            assert_eq!(login, "a@x.test");
            assert_eq!(password.0, "secret words");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        reply(s.auth_result(AuthOutcome::Failed)),
        "-ERR [AUTH] authentication failed\r\n"
    );
    assert!(!s.is_authenticated());
}

#[test]
fn response_codes_for_each_outcome() {
    for (outcome, code) in [
        (AuthOutcome::Throttled, "[LOGIN-DELAY]"),
        (AuthOutcome::Unavailable, "[SYS/TEMP]"),
        (AuthOutcome::InUse, "[IN-USE]"),
    ] {
        let mut s = Session::new(config(true), false);
        line(&mut s, "USER a");
        line(&mut s, "PASS b");
        assert!(reply(s.auth_result(outcome)).starts_with(&format!("-ERR {code}")));
    }
}

#[test]
fn plaintext_needs_tls_unless_allowed() {
    let mut s = Session::new(config(false), false);
    let caps = reply(line(&mut s, "CAPA"));
    assert!(caps.contains("STLS\r\n") && !caps.contains("USER") && !caps.contains("SASL"));
    assert!(reply(line(&mut s, "USER a")).starts_with("-ERR [AUTH]"));
    assert!(reply(line(&mut s, "AUTH PLAIN AGEAYg==")).starts_with("-ERR [AUTH]"));
    assert_eq!(
        line(&mut s, "STLS"),
        Step::StartTls("+OK begin TLS negotiation\r\n".into())
    );
    s.tls_started();
    let caps = reply(line(&mut s, "CAPA"));
    assert!(caps.contains("USER\r\nSASL PLAIN\r\n") && !caps.contains("STLS"));
    assert!(reply(line(&mut s, "STLS")).starts_with("-ERR"));
    assert_eq!(reply(line(&mut s, "USER a")), "+OK send PASS\r\n");
}

#[test]
fn auth_plain_initial_and_continuation() {
    let mut s = Session::new(config(false), true);
    // "\0a@x.test\0pw"
    let b64 = BASE64.encode(b"\0a@x.test\0pw");
    match line(&mut s, &format!("AUTH PLAIN {b64}")) {
        Step::Authenticate { login, password } => {
            assert_eq!((login.as_str(), password.0.as_str()), ("a@x.test", "pw"));
        }
        other => panic!("{other:?}"),
    }
    s.auth_result(AuthOutcome::Failed);
    assert_eq!(reply(line(&mut s, "AUTH PLAIN")), "+ \r\n");
    assert_eq!(s.line_limit(), SASL_LINE);
    assert!(matches!(
        line(&mut s, &BASE64.encode(b"a@x.test\0a@x.test\0pw")),
        Step::Authenticate { .. }
    ));
    s.auth_result(AuthOutcome::Failed);
    assert!(
        reply(line(
            &mut s,
            &format!("AUTH PLAIN {}", BASE64.encode(b"b\0a\0pw"))
        ))
        .starts_with("-ERR [AUTH]")
    );
    assert!(reply(line(&mut s, "AUTH PLAIN !!!")).starts_with("-ERR [AUTH]"));
    assert!(reply(line(&mut s, "AUTH CRAM-MD5")).starts_with("-ERR [AUTH]"));
    line(&mut s, "AUTH PLAIN");
    assert_eq!(
        reply(line(&mut s, "*")),
        "-ERR authentication cancelled\r\n"
    );
    assert!(reply(line(&mut s, "APOP a 0123")).starts_with("-ERR APOP is not supported"));
}

#[test]
fn stat_list_uidl_dele_rset() {
    let mut s = logged_in(3);
    assert_eq!(reply(line(&mut s, "STAT")), "+OK 3 36\r\n");
    assert_eq!(
        reply(line(&mut s, "LIST")),
        "+OK 3 messages (36 octets)\r\n1 12\r\n2 12\r\n3 12\r\n.\r\n"
    );
    assert_eq!(reply(line(&mut s, "UIDL 2")), "+OK 2 000000025F000001\r\n");
    assert_eq!(reply(line(&mut s, "DELE 2")), "+OK message 2 deleted\r\n");
    assert_eq!(
        reply(line(&mut s, "DELE 2")),
        "-ERR message 2 already deleted\r\n"
    );
    for bad in [
        "DELE 4",
        "DELE 0",
        "DELE -1",
        "DELE 99999999999",
        "RETR 2",
        "LIST 2",
    ] {
        assert!(reply(line(&mut s, bad)).starts_with("-ERR"), "{bad}");
    }
    assert_eq!(
        reply(line(&mut s, "UIDL")),
        "+OK 2 messages (24 octets)\r\n1 000000015F000001\r\n3 000000035F000001\r\n.\r\n"
    );
    assert_eq!(
        reply(line(&mut s, "RSET")),
        "+OK maildrop has 3 messages (36 octets)\r\n"
    );
    assert_eq!(reply(line(&mut s, "LIST 2")), "+OK 2 12\r\n");
}

#[test]
fn retr_top_and_the_update_state() {
    let mut s = logged_in(3);
    assert_eq!(
        line(&mut s, "RETR 2"),
        Step::Retrieve {
            number: 2,
            base: "2.M1P1.host,S=10,W=12".into(),
            octets: 12,
            top: None
        }
    );
    s.sent(2, false);
    assert!(matches!(
        line(&mut s, "TOP 3 5"),
        Step::Retrieve { top: Some(5), .. }
    ));
    s.sent(3, true);
    // Message 1 was already seen: retrieving it changes nothing.
    s.sent(1, false);
    line(&mut s, "DELE 1");
    assert_eq!(
        line(&mut s, "QUIT"),
        Step::Update(vec![
            Change::Expunge("1.M1P1.host,S=10,W=12".into()),
            Change::MarkSeen("2.M1P1.host,S=10,W=12".into()),
        ])
    );
    assert_eq!(
        s.updated(0),
        Step::Close("+OK pop.example.test signing off\r\n".into())
    );
}

#[test]
fn quit_before_login_updates_nothing() {
    let mut s = Session::new(config(true), false);
    assert!(matches!(line(&mut s, "QUIT"), Step::Close(r) if r.starts_with("+OK")));
}

#[test]
fn bounds_before_login_and_on_errors() {
    let mut s = Session::new(config(true), false);
    assert_eq!(reply(s.line(Line::TooLong)), "-ERR line too long\r\n");
    for _ in 1..MAX_UNAUTHENTICATED {
        assert!(matches!(line(&mut s, "CAPA"), Step::Reply(_)));
    }
    assert!(matches!(line(&mut s, "CAPA"), Step::Close(_)));

    let mut s = logged_in(1);
    for _ in 1..MAX_ERRORS {
        assert!(matches!(line(&mut s, "DELE 9"), Step::Reply(_)));
    }
    assert!(matches!(line(&mut s, "DELE 9"), Step::Close(_)));
}

#[test]
fn a_message_expunged_elsewhere_is_an_error_not_the_end() {
    let mut s = logged_in(2);
    assert!(matches!(line(&mut s, "RETR 1"), Step::Retrieve { .. }));
    assert_eq!(
        reply(s.vanished(1)),
        "-ERR message 1 was deleted by another session\r\n"
    );
    assert!(matches!(line(&mut s, "RETR 2"), Step::Retrieve { .. }));
    assert!(matches!(line(&mut s, "QUIT"), Step::Update(_)));
}

#[test]
fn a_resumed_session_answers_as_one_process_would() {
    // moat-pop3d after the hand-over: the same +OK, then TRANSACTION and the same CAPA.
    let mut s = Session::resumed(config(false), true);
    assert!(!s.is_authenticated());
    let mut one = logged_in(2);
    let r = reply(s.auth_result(AuthOutcome::LoggedIn(drop_of(2))));
    assert_eq!(r, "+OK logged in, maildrop has 2 messages (24 octets)\r\n");
    assert_eq!(reply(line(&mut s, "STAT")), "+OK 2 24\r\n");
    assert_eq!(reply(line(&mut s, "CAPA")), reply(line(&mut one, "CAPA")));
    assert_eq!(reply(line(&mut s, "DELE 1")), "+OK message 1 deleted\r\n");
    assert!(matches!(line(&mut s, "QUIT"), Step::Update(_)));
}

#[test]
fn a_resumed_session_closes_when_the_maildrop_cannot_be_had() {
    // The same -ERR as in one process, then the connection ends (RFC 1939 section 4): moat-pop3d
    // parses no command of a client that is not logged in.
    let mut s = Session::resumed(config(true), false);
    assert_eq!(
        s.auth_result(AuthOutcome::InUse),
        Step::Close("-ERR [IN-USE] the maildrop is in use by another POP3 session\r\n".into())
    );
    let mut s = Session::resumed(config(true), false);
    assert_eq!(
        s.auth_result(AuthOutcome::Unavailable),
        Step::Close("-ERR [SYS/TEMP] temporary failure, try again later\r\n".into())
    );
    // In one process (and in moat-pop3-login) the session goes on after such an answer.
    let mut s = Session::new(config(true), false);
    line(&mut s, "USER a@x.test");
    line(&mut s, "PASS pw");
    assert!(matches!(s.auth_result(AuthOutcome::InUse), Step::Reply(_)));
    assert_eq!(reply(line(&mut s, "USER a@x.test")), "+OK send PASS\r\n");
}
