//! moat-imapd under hostile input after login (issue #5): crafted messages (10,000 nested
//! multiparts, 10,000 nested message/rfc822, 500,000 header lines) dropped into the Maildir by
//! hand as another MDA would, hostile commands in the selected state, slow and idle clients.
//! Each answer is bounded in time and memory, exact (BAD/NO with its code, BYE), and another
//! client is served meanwhile. Slow clients before login are moat-imap-login's and cut there,
//! never reaching moat-imapd; the other pre-login cases are in imap_session.rs.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use moat_tests::imap_raw::{Raw, status_kib};
use moat_tests::{Mode, Stack, served};

const ALICE: &str = "alice@example.test";
const PW: &str = "alice-secret";
/// What any one command may take here (debug build, loaded machine).
const QUICK: Duration = Duration::from_secs(5);

fn stack(extra: &str) -> Stack {
    let s = Stack::start_configured(Mode::Up, extra);
    s.add_domain("example.test");
    s.add_user(ALICE, PW);
    // The first login makes the Maildir.
    let mut r = Raw::login(s.imap, ALICE, PW);
    r.cmd("z", "LOGOUT");
    assert!(s.maildir(ALICE).join("new").is_dir());
    s
}

/// Puts a message into `new/` as another MDA would (tmp/, then a rename), owned by the
/// Maildir's owner.
fn drop_in(md: &Path, name: &str, bytes: &[u8]) {
    let owner = std::fs::metadata(md).expect("maildir");
    let tmp = md.join("tmp").join(name);
    std::fs::write(&tmp, bytes).expect("write message");
    std::os::unix::fs::chown(&tmp, Some(owner.uid()), Some(owner.gid())).expect("chown");
    std::fs::rename(&tmp, md.join("new").join(name)).expect("rename into new/");
}

/// Runs `f`, asserting it takes less than `QUICK`.
fn quick<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let t = f();
    let took = start.elapsed();
    assert!(took < QUICK, "{what} took {took:?}");
    t
}

fn imapd_pid(s: &Stack) -> u32 {
    s.pid_of("moat-imapd").expect("moat-imapd running")
}

/// Asserts that the server end of `r`'s connection is held by moat-imap-login (`pre_login`)
/// or by moat-imapd, and not by the other one (as root; see `served::served_by`).
fn served_by(s: &Stack, r: &Raw, pre_login: bool) {
    let (owner, other) = if pre_login {
        ("moat-imap-login", "moat-imapd")
    } else {
        ("moat-imapd", "moat-imap-login")
    };
    served::served_by(s, s.imap, r.port(), owner, other);
}

/// A normal client, Python's imaplib: LOGIN, SELECT, FETCH.
fn normal_client_is_served(s: &Stack) {
    let out = s.python(&format!(
        r#"
import imaplib, os
M = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP_PORT"]), timeout=30)
M.login("{ALICE}", "{PW}")
print("select", M.select("INBOX"))
typ, data = M.fetch("1", "(FLAGS RFC822.SIZE)")
print("fetch", typ, data[0][:8])
M.logout()
"#
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {:?}", out);
    assert!(text.contains("select ('OK'"), "{text}");
    assert!(text.contains("fetch OK b'1 (FLAGS"), "{text}");
}

fn nested_multipart(depth: usize) -> Vec<u8> {
    let mut m = String::from(
        "From: Deep <deep@remote.example>\r\nSubject: deep multipart\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n",
    );
    for i in 1..depth {
        m += &format!(
            "--b{}\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n",
            i - 1
        );
    }
    m += &format!(
        "--b{}\r\nContent-Type: text/plain\r\n\r\ninnermost needle\r\n",
        depth - 1
    );
    for i in (0..depth).rev() {
        m += &format!("--b{i}--\r\n");
    }
    m.into_bytes()
}

fn nested_rfc822(depth: usize) -> Vec<u8> {
    let mut m = String::from(
        "From: Deep <deep@remote.example>\r\nSubject: deep rfc822\r\nMIME-Version: 1.0\r\n\
         Content-Type: message/rfc822\r\n\r\n",
    );
    for i in 1..depth {
        m += &format!("Subject: level {i}\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    m += "Subject: innermost\r\n\r\ninnermost needle\r\n";
    m.into_bytes()
}

fn header_bomb(lines: usize) -> Vec<u8> {
    let mut m = String::from("From: Bomb <bomb@remote.example>\r\nSubject: header bomb\r\n");
    for i in 0..lines {
        m += &format!("X-Bomb: {i}\r\n");
    }
    m += "\r\nbody of the bomb\r\n";
    m.into_bytes()
}

/// A client's NOOPs, timed, until `stop`: the slowest answer.
fn noop_loop(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Duration)> {
    let mut b = Raw::login(port, ALICE, PW);
    let got = b.cmd("s", "SELECT INBOX");
    assert!(got.last().is_some_and(|l| l.starts_with("s OK")), "{got:?}");
    std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let start = Instant::now();
            let got = b.cmd(&format!("n{n}"), "NOOP");
            worst = worst.max(start.elapsed());
            assert!(
                got.last()
                    .is_some_and(|l| l.ends_with("OK NOOP completed.")),
                "{got:?}"
            );
            n += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        (n, worst)
    })
}

#[test]
fn crafted_messages_are_bounded_and_others_are_served() {
    let s = stack("");
    let md = s.maildir(ALICE);
    // Names as moat-local writes them (with and without sizes) and as procmail does.
    drop_in(
        &md,
        "1700000001.M1P1Q1R01.mda.example",
        &nested_multipart(10_000),
    );
    drop_in(
        &md,
        "1700000002.M2P1Q1R02.mda.example,S=1",
        &nested_rfc822(10_000),
    );
    drop_in(&md, "1700000003.4242_1.mda.example", &header_bomb(500_000));
    drop_in(
        &md,
        "1700000004.M4P1Q1R04.mda.example",
        b"From: a@remote.example\r\nSubject: plain\r\n\r\na plain needle\r\n",
    );
    let pid = imapd_pid(&s);

    let mut a = Raw::login(s.imap, ALICE, PW);
    let got = quick("SELECT", || a.cmd("s", "SELECT INBOX"));
    assert!(got.contains(&"* 4 EXISTS".to_string()), "{got:?}");
    let got = a.cmd("u", "FETCH 1:* (UID RFC822.SIZE)");
    assert_eq!(got.len(), 5, "{got:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let other = noop_loop(s.imap, Arc::clone(&stop));

    let got = quick("FETCH BODYSTRUCTURE ENVELOPE", || {
        a.cmd("f1", "FETCH 1:* (BODYSTRUCTURE ENVELOPE)")
    });
    assert_eq!(
        got.last().map(String::as_str),
        Some("f1 OK FETCH completed.")
    );
    assert_eq!(
        got.len(),
        5,
        "{:?}",
        got.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    // The multipart is opened down to depth 50; below that it is an opaque leaf.
    let deep = got.first().map(String::as_str).unwrap_or_default();
    assert!(
        deep.starts_with("* 1 FETCH (BODYSTRUCTURE (((((("),
        "{deep:.200}"
    );
    assert!(
        deep.contains("\"application\" \"octet-stream\""),
        "{deep:.200}"
    );
    assert!(deep.contains("\"deep multipart\""), "{deep:.200}");
    let chain = got.get(1).map(String::as_str).unwrap_or_default();
    assert!(chain.contains("\"deep rfc822\""), "{chain:.200}");
    let bomb = got.get(2).map(String::as_str).unwrap_or_default();
    assert!(bomb.contains("\"header bomb\""), "{bomb:.200}");

    let part = |n: usize| vec!["1"; n].join(".");
    let got = quick("deep section", || {
        a.cmd("f2", &format!("FETCH 1,2 BODY.PEEK[{}]", part(60)))
    });
    assert_eq!(
        got,
        [
            format!("* 1 FETCH (BODY[{}] \"\")", part(60)),
            format!("* 2 FETCH (BODY[{}] \"\")", part(60)),
            "f2 OK FETCH completed.".to_string()
        ]
    );
    let got = quick("deepest opened section", || {
        a.cmd("f3", &format!("FETCH 1 BODY.PEEK[{}.MIME]", part(49)))
    });
    assert_eq!(
        got,
        [
            format!(
                "* 1 FETCH (BODY[{}.MIME] {{49}}\r\nContent-Type: multipart/mixed; boundary=\"b49\"\r\n\r\n)",
                part(49)
            ),
            "f3 OK FETCH completed.".to_string()
        ]
    );
    let got = quick("header fields of the bomb", || {
        a.cmd("f4", "FETCH 3 (BODY.PEEK[HEADER.FIELDS (Subject)])")
    });
    assert_eq!(
        got,
        [
            "* 3 FETCH (BODY[HEADER.FIELDS (Subject)] {24}\r\nSubject: header bomb\r\n\r\n)",
            "f4 OK FETCH completed."
        ]
    );

    let got = quick("SEARCH TEXT", || a.cmd("t1", "SEARCH TEXT needle"));
    assert_eq!(got, ["* SEARCH 4", "t1 OK SEARCH completed."]);
    let got = quick("SEARCH HEADER", || a.cmd("t2", "SEARCH HEADER X-Bomb 5000"));
    assert_eq!(got, ["* SEARCH 3", "t2 OK SEARCH completed."]);
    // Past the 10,000 header lines parsed, a field is not looked at.
    let got = quick("SEARCH HEADER late", || {
        a.cmd("t3", "SEARCH HEADER X-Bomb 499999")
    });
    assert_eq!(got, ["* SEARCH", "t3 OK SEARCH completed."]);
    let got = quick("SEARCH SUBJECT", || {
        a.cmd("t4", "SEARCH OR SUBJECT level BODY bomb")
    });
    assert_eq!(got, ["* SEARCH 3", "t4 OK SEARCH completed."]);

    // The same 7 MB message asked for 2,000 times in one line (distinct partials): refused
    // once the line would pass the message's size + 32 MiB, before it is all in memory.
    let items: Vec<String> = (0..2000)
        .map(|i| format!("BODY.PEEK[]<{i}.99999999>"))
        .collect();
    let got = quick("amplified FETCH", || {
        a.cmd("f5", &format!("FETCH 3 ({})", items.join(" ")))
    });
    assert_eq!(
        got,
        ["f5 NO [LIMIT] FETCH response too large; ask for fewer items."]
    );

    stop.store(true, Ordering::Relaxed);
    let (noops, worst) = other.join().expect("other client");
    assert!(noops > 5, "{noops} NOOPs");
    assert!(
        worst < Duration::from_secs(1),
        "the other client waited {worst:?} for a NOOP"
    );
    let hwm = status_kib(pid, "VmHWM");
    assert!(
        hwm > 0 && hwm < 160 * 1024,
        "moat-imapd's peak memory: {hwm} KiB"
    );
    assert_eq!(a.cmd("n", "NOOP"), ["n OK NOOP completed."]);
    normal_client_is_served(&s);
}

/// Every entry below `dir`, for "nothing was created outside the Maildir".
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A line past 64 KiB ends the connection, in any state.
fn too_long_ends_the_session(s: &Stack, line: &str) {
    assert!(line.len() > 64 * 1024);
    let mut c = Raw::login(s.imap, ALICE, PW);
    c.cmd("s", "SELECT INBOX");
    c.send(format!("{line}\r\n").as_bytes());
    let got = c.until("never");
    assert_eq!(
        got,
        [
            "x BAD [TOOBIG] command line too long",
            "* BYE [TOOBIG] command line too long"
        ]
    );
    assert!(c.closed());
}

#[test]
fn hostile_commands_in_the_selected_state() {
    let s = stack("");
    let md = s.maildir(ALICE);
    for i in 0..300 {
        let body = format!("From: a@remote.example\r\nSubject: m{i}\r\n\r\nbody {i}\r\n");
        drop_in(
            &md,
            &format!("17000{i:05}.M{i}P1Q1R{i:x}.mda.example"),
            body.as_bytes(),
        );
    }
    let pid = imapd_pid(&s);
    let mail_root = s.data.join("mail");
    let before = tree(&mail_root);

    let mut a = Raw::login(s.imap, ALICE, PW);
    let got = a.cmd("s", "SELECT INBOX");
    assert!(got.contains(&"* 300 EXISTS".to_string()), "{got:?}");

    // 4 GiB literals: refused before a byte of them is asked for; the session goes on.
    a.send(b"a1 SEARCH TEXT {4294967295}\r\n");
    assert_eq!(a.response(), "a1 BAD [TOOBIG] literal too large");
    a.send(b"a2 APPEND INBOX {4294967295}\r\n");
    assert_eq!(
        a.response(),
        "a2 NO [TOOBIG] The message is larger than APPENDLIMIT=36700160."
    );
    assert_eq!(a.cmd("a3", "NOOP"), ["a3 OK NOOP completed."]);

    // 12,000 items that fit in a line: each answered once.
    let many = vec!["FLAGS UID"; 6000].join(" ");
    let got = quick("FETCH 12,000 items", || {
        a.cmd("b1", &format!("FETCH 1 ({many})"))
    });
    assert_eq!(
        got,
        [
            "* 1 FETCH (FLAGS (\\Recent) UID 1)",
            "b1 OK FETCH completed."
        ]
    );
    // 10,000 levels of parentheses, 10,000 nested NOT, 8,000 nested OR: BAD, no recursion.
    let parens = format!("{}FLAGS{}", "(".repeat(10_000), ")".repeat(10_000));
    let got = quick("nested parentheses", || {
        a.cmd("b2", &format!("FETCH 1 {parens}"))
    });
    assert_eq!(got, ["b2 BAD Unknown command or invalid arguments."]);
    let got = quick("nested NOT", || {
        a.cmd("b3", &format!("SEARCH {}ALL", "NOT ".repeat(10_000)))
    });
    assert_eq!(got, ["b3 BAD Unknown command or invalid arguments."]);
    let got = quick("nested OR", || {
        a.cmd(
            "b4",
            &format!("SEARCH {}ALL{}", "OR ".repeat(8000), " ALL".repeat(8000)),
        )
    });
    assert_eq!(got, ["b4 BAD Unknown command or invalid arguments."]);
    let got = quick("wide SEARCH", || {
        a.cmd("b5", &format!("SEARCH{}", " ALL".repeat(15_000)))
    });
    assert_eq!(got, ["b5 NO [LIMIT] Search too complex."]);
    let got = quick("SEARCH in parentheses", || {
        a.cmd("b6", &format!("SEARCH {parens}"))
    });
    assert_eq!(got, ["b6 BAD Unknown command or invalid arguments."]);

    // A sequence set of 15,000 ranges, resolved without expanding them.
    let set = vec!["2:1"; 15_000].join(",");
    let got = quick("15,000 ranges", || a.cmd("c1", &format!("FETCH {set} UID")));
    assert_eq!(
        got,
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 2)",
            "c1 OK FETCH completed."
        ]
    );
    let got = quick("UID FETCH 1:4294967295", || {
        a.cmd("c2", "UID FETCH 1:4294967295 (UID)")
    });
    assert_eq!(got.len(), 301, "{:?}", got.last());
    assert_eq!(got[299], "* 300 FETCH (UID 300)");
    assert_eq!(got[300], "c2 OK FETCH completed.");
    let got = a.cmd("c3", "FETCH 301 UID");
    assert_eq!(got, ["c3 BAD Invalid message sequence number."]);

    // 10,000 keywords where 26 fit: refused whole, no letter used up by them.
    let keywords: Vec<String> = (0..10_000).map(|i| format!("k{i}")).collect();
    let got = quick("STORE 10,000 keywords", || {
        a.cmd("d1", &format!("STORE 1 +FLAGS ({})", keywords.join(" ")))
    });
    assert_eq!(got.len(), 1, "{:.200}", got.join("\n"));
    assert!(
        got[0].starts_with("d1 NO [CANNOT] These flags cannot be stored here: k0 k1 k2 "),
        "{:.200}",
        got[0]
    );
    assert_eq!(
        std::fs::read_to_string(md.join("dovecot-keywords")).unwrap_or_default(),
        ""
    );
    let got = a.cmd("d2", "STORE 1 +FLAGS (Work)");
    assert_eq!(
        got[0],
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft Work)"
    );
    assert_eq!(
        got.last().map(String::as_str),
        Some("d2 OK STORE completed.")
    );
    assert!(
        got.contains(&"* 1 FETCH (UID 1 FLAGS (Work \\Recent))".to_string()),
        "{got:?}"
    );

    // Mailbox names that are too long or try to leave the Maildir.
    let long = "x".repeat(10_000);
    assert_eq!(
        a.cmd("e1", &format!("CREATE {long}")),
        ["e1 NO [CANNOT] mailbox name too long."]
    );
    // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
    assert_eq!(
        a.cmd("e2", &format!("SELECT {long}")),
        [
            "* OK [CLOSED] Previous mailbox closed.",
            "e2 NO [CANNOT] mailbox name too long."
        ]
    );
    let got = a.cmd("e3", "SELECT INBOX");
    assert!(got.contains(&"* 300 EXISTS".to_string()), "{got:?}");
    let dot = "e NO [CANNOT] '.' is not allowed in a mailbox name here (Maildir++ uses it as the \
               hierarchy separator): use '/' for levels.";
    let empty = "e NO [CANNOT] empty hierarchy level in mailbox name (leading, trailing or \
                 doubled '/').";
    for (name, answer) in [
        ("\"../evil\"", dot),
        ("..", dot),
        ("\"a/../../evil\"", dot),
        ("\"/\"", empty),
        ("\"/etc/evil\"", empty),
        ("\"a//b\"", empty),
        ("\"~/../evil\"", dot),
    ] {
        assert_eq!(a.cmd("e", &format!("CREATE {name}")), [answer], "{name}");
        assert_eq!(
            a.cmd("e", &format!("RENAME Trash {name}")),
            [answer],
            "{name}"
        );
        assert_eq!(
            a.cmd("e", &format!("RENAME INBOX {name}")),
            [answer],
            "{name}"
        );
    }
    assert_eq!(
        a.cmd("f1", "RENAME INBOX INBOX"),
        ["f1 NO [ALREADYEXISTS] Mailbox already exists."]
    );
    assert_eq!(
        a.cmd("f2", "RENAME Trash inbox"),
        ["f2 NO [ALREADYEXISTS] Mailbox already exists."]
    );
    assert_eq!(
        a.cmd("f3", "RENAME Trash Trash/x"),
        ["f3 NO [CANNOT] a mailbox cannot be moved into itself."]
    );
    let after = tree(&mail_root);
    let outside: Vec<&String> = after
        .iter()
        .filter(|p| !before.contains(p) && !p.starts_with("example.test/alice/Maildir/"))
        .collect();
    assert!(
        outside.is_empty(),
        "created outside the Maildir: {outside:?}"
    );
    assert!(!s.data.join("evil").exists() && !Path::new("/etc/evil").exists());

    // Lines past 64 KiB (100,000 FETCH items, 100,000 ranges) end the session.
    too_long_ends_the_session(
        &s,
        &format!("x FETCH 1 ({})", vec!["UID"; 100_000].join(" ")),
    );
    too_long_ends_the_session(
        &s,
        &format!("x FETCH {} UID", vec!["1:2"; 100_000].join(",")),
    );

    assert_eq!(a.cmd("z", "NOOP"), ["z OK NOOP completed."]);
    let hwm = status_kib(pid, "VmHWM");
    assert!(
        hwm > 0 && hwm < 64 * 1024,
        "moat-imapd's peak memory: {hwm} KiB"
    );
    normal_client_is_served(&s);
}

#[test]
fn slow_and_idle_clients_are_cut_at_the_timeouts() {
    // 2 s after login, and before it (the 60 s pre-login timeout yields to a shorter one).
    let s = stack("[imap]\nidle_timeout_secs = 2\n");
    drop_in(
        &s.maildir(ALICE),
        "1700000001.M1P1Q1R01.mda.example",
        b"From: a@remote.example\r\nSubject: one\r\n\r\none\r\n",
    );
    let cut = |r: &mut Raw, bye: &str| {
        let start = Instant::now();
        r.set_timeout(Duration::from_secs(10));
        let got = r.until("never");
        let took = start.elapsed();
        assert_eq!(got.last().map(String::as_str), Some(bye), "{got:?}");
        assert!(r.closed());
        took
    };
    let idle = "* BYE Autologout; idle for too long.";
    let slow = "* BYE Autologout; command not completed in time.";

    let mut quiet = Raw::connect(s.imap);
    served_by(&s, &quiet, true);
    let took = cut(&mut quiet, idle);
    assert!(
        took > Duration::from_millis(1500) && took < QUICK,
        "{took:?}"
    );

    let mut quiet = Raw::login(s.imap, ALICE, PW);
    quiet.cmd("s", "SELECT INBOX");
    served_by(&s, &quiet, false);
    let took = cut(&mut quiet, idle);
    assert!(
        took > Duration::from_millis(1500) && took < QUICK,
        "{took:?}"
    );

    let mut idling = Raw::login(s.imap, ALICE, PW);
    idling.cmd("s", "SELECT INBOX");
    idling.send(b"i IDLE\r\n");
    assert_eq!(idling.response(), "+ idling");
    let took = cut(&mut idling, idle);
    assert!(
        took > Duration::from_millis(1500) && took < QUICK,
        "{took:?}"
    );

    // One byte a second: never idle for 2 s, but the command is not whole within 2 s.
    for login in [false, true] {
        let mut r = if login {
            Raw::login(s.imap, ALICE, PW)
        } else {
            Raw::connect(s.imap)
        };
        served_by(&s, &r, !login);
        let mut w = r.try_clone_writer();
        let trickle = std::thread::spawn(move || {
            for b in b"a NOOP\r\n" {
                if w.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        let took = cut(&mut r, slow);
        assert!(
            took > Duration::from_millis(1500) && took < QUICK,
            "{took:?}"
        );
        trickle.join().expect("trickle");
    }

    // A client that keeps up is served all along.
    let mut busy = Raw::login(s.imap, ALICE, PW);
    for i in 0..4 {
        std::thread::sleep(Duration::from_millis(900));
        let tag = format!("n{i}");
        assert_eq!(
            busy.cmd(&tag, "NOOP"),
            [format!("{tag} OK NOOP completed.")]
        );
    }
    normal_client_is_served(&s);
}
