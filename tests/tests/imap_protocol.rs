//! Every command and extension moat-imapd advertises, with Python's imaplib, checked response by
//! response: `tests/peers/imap_protocol.py` (greeting, CAPABILITY, ID, STARTTLS, LOGIN,
//! AUTHENTICATE with SASL-IR, ENABLE, NAMESPACE, LIST variants, STATUS with every item,
//! quotas, APPEND, SELECT/EXAMINE, FETCH of every item of a multipart message with a
//! forwarded message/rfc822, SEARCH and ESEARCH, STORE, COPY/MOVE, EXPUNGE, CLOSE/UNSELECT,
//! CONDSTORE, IDLE, LOGOUT).

use std::path::Path;

use moat_tests::Stack;

const ALICE: &str = "alice@example.test";

/// Delivers message `n` to alice through SMTP and waits for it.
fn deliver(s: &Stack, n: usize) {
    s.deliver(
        "bob@remote.example",
        ALICE,
        &format!(
            "From: Bob <bob@remote.example>\r\nTo: {ALICE}\r\nSubject: hello {n}\r\n\r\nbody text {n}\r\n"
        ),
    );
}

#[test]
fn every_advertised_command_answers_exactly() {
    let s = Stack::start_with_user("", ALICE, "alice-secret");
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
