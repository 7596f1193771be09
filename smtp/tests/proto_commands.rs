//! Every command and parameter through a whole session: replies, sequencing, paths.

mod proto_harness;

use moat_smtp::proto::{
    BodyType, Domain, ForwardPath, MailAuth, Notify, RcptVerdict, Ret, ReversePath,
};
use proto_harness::{Code, Harness, ce, config};

#[test]
fn greeting_and_ehlo_extensions() {
    let mut h = Harness::new(config(), false);
    assert_eq!(
        h.session.greeting().to_string(),
        "220 mx.example.test ESMTP\r\n"
    );
    let r = h.send("EHLO client.example.test\r\n");
    assert_eq!(
        r[0].to_string(),
        "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n\
         250-SMTPUTF8\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 STARTTLS\r\n"
    );
    assert_eq!(
        h.session.helo(),
        Some((&Domain::Name("client.example.test".into()), true))
    );
}

#[test]
fn ehlo_offers_auth_only_under_tls_or_when_allowed() {
    let mut cfg = config();
    cfg.auth = true;
    let mut h = Harness::new(cfg.clone(), false);
    let ehlo = h.send("EHLO c\r\n")[0].to_string();
    assert!(!ehlo.contains("AUTH"));
    assert!(ehlo.contains("STARTTLS"));
    let mut h = Harness::new(cfg.clone(), true);
    let ehlo = h.send("EHLO c\r\n")[0].to_string();
    assert!(
        ehlo.contains("250-AUTH PLAIN LOGIN\r\n") || ehlo.ends_with("250 AUTH PLAIN LOGIN\r\n")
    );
    assert!(!ehlo.contains("STARTTLS"), "no STARTTLS once TLS is active");
    cfg.plaintext_auth = true;
    cfg.starttls = false;
    cfg.binarymime = true;
    let mut h = Harness::new(cfg, false);
    let ehlo = h.send("EHLO c\r\n")[0].to_string();
    assert!(ehlo.contains("AUTH PLAIN LOGIN") && ehlo.contains("BINARYMIME"));
    assert!(!ehlo.contains("STARTTLS"));
}

#[test]
fn helo_is_plain_smtp() {
    let mut h = Harness::new(config(), false);
    let r = h.send("HELO [192.0.2.7]\r\n");
    assert_eq!(r[0].to_string(), "250 mx.example.test\r\n");
    assert_eq!(
        h.one("MAIL FROM:<a@example.org>\r\n"),
        (250, Some((2, 1, 0)))
    );
    h.send("RSET\r\n");
    // No ESMTP parameters without EHLO.
    assert_eq!(
        h.one("MAIL FROM:<a@example.org> SIZE=10\r\n"),
        (555, Some((5, 5, 4)))
    );
    assert_eq!(h.one("EHLO\r\n"), (501, Some((5, 5, 4))));
    assert_eq!(h.one("HELO a b\r\n"), (501, Some((5, 5, 4))));
}

#[test]
fn full_transaction_with_every_parameter() {
    let mut h = Harness::ehlo();
    let codes = h.codes(
        "MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1 AUTH=<>\r\n\
         RCPT TO:<b@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40example.test\r\n\
         RCPT TO:<Postmaster> NOTIFY=NEVER\r\n\
         DATA\r\n",
    );
    assert_eq!(codes, vec![250, 250, 250, 354]);
    assert_eq!(h.codes("Subject: hi\r\n\r\nbody\r\n.\r\n"), vec![250]);
    let q = &h.queued[0];
    let p = &q.envelope.mail_params;
    assert_eq!(p.size, Some(1000));
    assert_eq!(p.body, Some(BodyType::EightBitMime));
    assert!(p.smtputf8);
    assert_eq!(p.ret, Some(Ret::Hdrs));
    assert_eq!(p.envid.as_deref(), Some("id+1"));
    assert_eq!(p.auth, Some(MailAuth::Unknown));
    let rc = &q.envelope.recipients;
    assert_eq!(rc.len(), 2);
    assert_eq!(rc[0].path.to_string(), "<b@example.test>");
    assert_eq!(
        rc[0].params.notify,
        Some(Notify::On {
            success: true,
            failure: true,
            delay: false
        })
    );
    assert_eq!(
        rc[0].params.orcpt.as_ref().map(|o| o.addr.as_str()),
        Some("b@example.test")
    );
    assert_eq!(rc[1].path, ForwardPath::Postmaster);
    assert_eq!(rc[1].params.notify, Some(Notify::Never));
    assert_eq!(q.body, b"Subject: hi\r\n\r\nbody\r\n");
    assert_eq!(q.envelope.size, 21);
    assert!(!q.envelope.chunked && !q.envelope.tls && q.envelope.esmtp);
    assert_eq!(
        h.replies.last().map(ToString::to_string).as_deref(),
        Some("250 2.0.0 OK: queued as Q1\r\n")
    );
}

#[test]
fn null_sender_and_source_routes() {
    let mut h = Harness::ehlo();
    assert_eq!(h.one("MAIL FROM:<>\r\n").0, 250);
    assert_eq!(h.session.sender(), Some(&ReversePath::Null));
    assert_eq!(
        h.one("RCPT TO:<@hop1.example,@hop2.example:u@example.test>\r\n")
            .0,
        250
    );
    assert_eq!(
        h.session.recipients()[0].path.to_string(),
        "<u@example.test>"
    );
    // The common `MAIL FROM: <x>` form.
    h.send("RSET\r\n");
    assert_eq!(h.one("mail from: <a@example.org>\r\n").0, 250);
}

#[test]
fn sequencing_errors() {
    let mut h = Harness::new(config(), false);
    assert_eq!(h.one("MAIL FROM:<a@b>\r\n"), (503, Some((5, 5, 1))));
    assert_eq!(h.one("RCPT TO:<a@b>\r\n"), (503, Some((5, 5, 1))));
    h.send("EHLO c\r\n");
    assert_eq!(h.one("RCPT TO:<a@b>\r\n"), (503, Some((5, 5, 1))));
    assert_eq!(h.one("DATA\r\n"), (503, Some((5, 5, 1))));
    assert_eq!(h.one("MAIL FROM:<a@b>\r\n").0, 250);
    assert_eq!(h.one("MAIL FROM:<a@b>\r\n"), (503, Some((5, 5, 1))));
    assert_eq!(h.one("DATA\r\n"), (554, Some((5, 5, 1))));
    assert_eq!(h.session.errors(), 6);
    assert_eq!(h.started, 0);
}

#[test]
fn rset_noop_vrfy_help_quit() {
    let mut h = Harness::ehlo();
    h.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    assert_eq!(h.session.recipients().len(), 1);
    assert_eq!(h.one("RSET\r\n"), (250, Some((2, 0, 0))));
    assert!(h.session.sender().is_none());
    assert_eq!(h.one("NOOP\r\n"), (250, Some((2, 0, 0))));
    assert_eq!(h.one("NOOP whatever\r\n").0, 250);
    assert_eq!(h.one("VRFY bob\r\n"), (252, Some((2, 5, 0))));
    assert_eq!(h.one("HELP\r\n"), (214, Some((2, 0, 0))));
    assert_eq!(h.one("EXPN staff\r\n"), (502, Some((5, 5, 1))));
    assert_eq!(h.one("FOO\r\n"), (500, Some((5, 5, 2))));
    assert!(!h.closed);
    let r = h.send("QUIT\r\nNOOP\r\n");
    assert_eq!(r.len(), 1, "nothing after QUIT is processed");
    assert_eq!(
        r[0].to_string(),
        "221 2.0.0 mx.example.test closing connection\r\n"
    );
    assert!(h.closed && h.session.is_closed());
    assert!(h.send("NOOP\r\n").is_empty());
}

#[test]
fn http_request_closes_the_connection() {
    let mut h = Harness::new(config(), false);
    let r = h.send("POST / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.len(), 1);
    assert_eq!(ce(&r[0]), (421, Some((4, 7, 0))));
    assert!(h.closed);
}

#[test]
fn recipient_policy_verdicts() {
    let mut h = Harness::ehlo();
    h.rcpt_policy = Box::new(|r| match r.path.to_string().as_str() {
        "<unknown@example.test>" => RcptVerdict::Unknown,
        "<full@example.test>" => RcptVerdict::OverQuota,
        "<tmp@example.test>" => RcptVerdict::TempFail,
        "<x@elsewhere.example>" => RcptVerdict::RelayDenied,
        _ => RcptVerdict::Accept,
    });
    h.send("MAIL FROM:<a@example.org>\r\n");
    let r = h.send(
        "RCPT TO:<unknown@example.test>\r\nRCPT TO:<full@example.test>\r\n\
         RCPT TO:<tmp@example.test>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<ok@example.test>\r\n",
    );
    let got: Vec<_> = r.iter().map(ce).collect();
    assert_eq!(
        got,
        vec![
            (550, Some((5, 1, 1))),
            (452, Some((4, 2, 2))),
            (451, Some((4, 3, 0))),
            (550, Some((5, 7, 1))),
            (250, Some((2, 1, 5))),
        ]
    );
    assert_eq!(h.session.recipients().len(), 1);
    assert_eq!(
        h.session.errors(),
        2,
        "unknown and relay-denied count as errors"
    );
}

#[test]
fn paths_through_the_session() {
    let mut h = Harness::ehlo();
    h.send("MAIL FROM:<a@example.org>\r\n");
    let cases: &[(&str, Code)] = &[
        ("RCPT TO:<../../x@example.test>", (501, Some((5, 1, 3)))),
        ("RCPT TO:<x@../../example.test>", (501, Some((5, 1, 3)))),
        ("RCPT TO:<a/b@example.test>", (250, Some((2, 1, 5)))),
        ("RCPT TO:<\"../../x\"@example.test>", (250, Some((2, 1, 5)))),
        (
            "RCPT TO:<\"john doe\"@example.test>",
            (250, Some((2, 1, 5))),
        ),
        ("RCPT TO:<x@example.test/../../etc>", (501, Some((5, 1, 3)))),
        ("RCPT TO:x@example.test", (501, Some((5, 1, 3)))),
        ("RCPT TO:<>", (501, Some((5, 1, 3)))),
    ];
    for (cmd, want) in cases {
        assert_eq!(h.one(&format!("{cmd}\r\n")), *want, "{cmd}");
    }
    let locals: Vec<_> = h
        .session
        .recipients()
        .iter()
        .map(|r| match &r.path {
            ForwardPath::Path(p) => p.local().as_str().to_owned(),
            ForwardPath::Postmaster => "postmaster".into(),
        })
        .collect();
    assert_eq!(locals, vec!["a/b", "../../x", "john doe"]);
}

#[test]
fn path_lengths_through_the_session() {
    let mut h = Harness::ehlo();
    h.send("MAIL FROM:<a@example.org>\r\n");
    // Local parts over RFC 5321's 64 octets are taken (VERP addresses), up to 255.
    let l65 = "a".repeat(65);
    let l256 = "a".repeat(256);
    assert_eq!(h.one(&format!("RCPT TO:<{l65}@example.test>\r\n")).0, 250);
    let r = h.send(&format!("RCPT TO:<{l256}@example.test>\r\n"));
    assert_eq!(ce(&r[0]), (501, Some((5, 1, 3))));
    assert!(r[0].lines()[0].contains("255"));
    let label = "d".repeat(63);
    let long = format!("RCPT TO:<a@{label}.{label}.{label}.{label}>\r\n");
    let r = h.send(&long);
    assert_eq!(ce(&r[0]), (501, Some((5, 1, 3))));
    assert!(r[0].lines()[0].contains("256"), "{:?}", r[0]);
    let r = h.send(&format!("MAIL FROM:<{l256}@example.org>\r\n"));
    assert_eq!(ce(&r[0]), (501, Some((5, 1, 7))));
}

#[test]
fn nul_and_controls_in_commands() {
    let mut h = Harness::ehlo();
    assert_eq!(
        h.one("MAIL FROM:<a\0b@example.org>\r\n"),
        (500, Some((5, 5, 2)))
    );
    assert_eq!(
        h.one("MAIL FROM:<a@example.org>\0\r\n"),
        (500, Some((5, 5, 2)))
    );
    assert_eq!(h.one("\0\r\n"), (500, Some((5, 5, 2))));
    assert_eq!(h.one("NOOP\x1b[2J\r\n"), (500, Some((5, 5, 2))));
    assert!(h.session.sender().is_none());
    // Still usable.
    assert_eq!(h.one("MAIL FROM:<a@example.org>\r\n").0, 250);
}

#[test]
fn unknown_and_malformed_parameters() {
    let mut h = Harness::ehlo();
    assert_eq!(h.one("MAIL FROM:<a@b> XYZ=1\r\n"), (555, Some((5, 5, 4))));
    assert_eq!(h.one("MAIL FROM:<a@b> SIZE=x\r\n"), (501, Some((5, 5, 4))));
    assert_eq!(
        h.one("MAIL FROM:<a@b> BODY=8BITMIME BODY=7BIT\r\n"),
        (501, Some((5, 5, 4)))
    );
    assert_eq!(
        h.one("MAIL FROM:<a@b> NOTIFY=NEVER\r\n"),
        (555, Some((5, 5, 4)))
    );
    assert_eq!(h.one("MAIL FROM:<a@b>\r\n").0, 250);
    assert_eq!(h.one("RCPT TO:<c@d> SIZE=1\r\n"), (555, Some((5, 5, 4))));
    assert_eq!(h.one("RCPT TO:<c@d> ORCPT=bad\r\n"), (501, Some((5, 5, 4))));
    assert_eq!(
        h.one("RCPT TO:<c@d> NOTIFY=MAYBE\r\n"),
        (501, Some((5, 5, 4)))
    );
}

#[test]
fn size_parameter_over_the_limit() {
    let mut h = Harness::ehlo();
    assert_eq!(
        h.one("MAIL FROM:<a@b> SIZE=26214401\r\n"),
        (552, Some((5, 3, 4)))
    );
    assert_eq!(h.one("MAIL FROM:<a@b> SIZE=26214400\r\n").0, 250);
}

#[test]
fn binarymime_needs_configuration_and_bdat() {
    let mut h = Harness::ehlo();
    assert_eq!(
        h.one("MAIL FROM:<a@b> BODY=BINARYMIME\r\n"),
        (555, Some((5, 5, 4)))
    );
    let mut cfg = config();
    cfg.binarymime = true;
    let mut h = Harness::new(cfg, false);
    h.send("EHLO c\r\n");
    h.send("MAIL FROM:<a@b> BODY=BINARYMIME\r\nRCPT TO:<c@d>\r\n");
    assert_eq!(h.one("DATA\r\n"), (503, Some((5, 5, 1))));
}

#[test]
fn smtputf8_is_required_for_utf8_addresses() {
    let mut h = Harness::ehlo();
    assert_eq!(
        h.one("MAIL FROM:<пётр@пример.испытание>\r\n"),
        (553, Some((5, 6, 7)))
    );
    assert_eq!(h.one("MAIL FROM:<a@example.org>\r\n").0, 250);
    assert_eq!(
        h.one("RCPT TO:<josé@example.test>\r\n"),
        (553, Some((5, 6, 7)))
    );
    h.send("RSET\r\n");
    assert_eq!(
        h.one("MAIL FROM:<пётр@пример.испытание> SMTPUTF8\r\n").0,
        250
    );
    assert_eq!(h.one("RCPT TO:<josé@example.test>\r\n").0, 250);
    assert_eq!(h.one("RCPT TO:<\"jo sé\"@exämple.test>\r\n").0, 250);
}

#[test]
fn second_ehlo_resets_the_transaction() {
    let mut h = Harness::ehlo();
    h.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    assert_eq!(h.codes("EHLO again.example\r\n"), vec![250]);
    assert!(h.session.sender().is_none());
    assert_eq!(h.one("RCPT TO:<c@d>\r\n"), (503, Some((5, 5, 1))));
}

#[test]
fn require_auth_on_submission() {
    let mut h = Harness::new(moat_smtp::proto::SessionConfig::submission("mx"), true);
    h.send("EHLO c\r\n");
    let r = h.send("MAIL FROM:<bob@example.test>\r\n");
    assert_eq!(ce(&r[0]), (530, Some((5, 7, 0))));
    assert_eq!(r[0].lines()[0], "Authentication required");
    let mut h = Harness::new(moat_smtp::proto::SessionConfig::submission("mx"), false);
    h.send("EHLO c\r\n");
    let r = h.send("MAIL FROM:<bob@example.test>\r\n");
    assert_eq!(ce(&r[0]), (530, Some((5, 7, 0))));
    assert_eq!(r[0].lines()[0], "Must issue a STARTTLS command first");
}
