//! Every command and extension moat-imapd advertises, with Python's imaplib, checked response by
//! response: `tests/peers/imap_protocol.py` (greeting, CAPABILITY, ID, STARTTLS, LOGIN,
//! AUTHENTICATE with SASL-IR, ENABLE, NAMESPACE, LIST variants, STATUS with every item,
//! quotas, APPEND, SELECT/EXAMINE, FETCH of every item of a multipart message with a
//! forwarded message/rfc822, SEARCH and ESEARCH, STORE, COPY/MOVE, EXPUNGE, CLOSE/UNSELECT,
//! CONDSTORE, IDLE, LOGOUT).

use std::path::Path;

use moat_tests::smtp_client::Client;
use moat_tests::{Mode, Stack};

const ALICE: &str = "alice@example.test";

/// Delivers message `n` to alice through SMTP and waits until `n` are stored.
fn deliver(s: &Stack, n: usize) {
    let mut c = Client::connect(s.smtp).expect("smtp");
    c.ehlo("client.example").expect("ehlo");
    let msg = format!(
        "From: Bob <bob@remote.example>\r\nTo: {ALICE}\r\nSubject: hello {n}\r\n\r\nbody text {n}\r\n"
    );
    let r = c
        .send_mail("bob@remote.example", &[ALICE], msg.as_bytes())
        .expect("send");
    assert_eq!(r.0, 250, "{r:?}");
    s.wait_messages(ALICE, n);
}

#[test]
fn every_advertised_command_answers_exactly() {
    let s = Stack::start_configured(Mode::Up, "");
    s.add_domain("example.test");
    s.add_user(ALICE, "alice-secret");
    s.admin(&["user", "quota", ALICE, "10M"], "");
    deliver(&s, 1);
    deliver(&s, 2);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/imap_protocol.py");
    let md = s.maildir(ALICE);
    let out = s.python(&format!(
        "import runpy; runpy.run_path({:?}, init_globals={{'MD': {:?}}}, run_name='__main__')",
        script.display().to_string(),
        md.display().to_string()
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "imap_protocol.py failed:\n{stdout}\n{}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    assert!(stdout.contains("all checked"), "{stdout}");
    // The IDLE timings, for whoever reads the test's output.
    eprint!("{stdout}");
}
