//! Bad input over real TCP against a stack started with `moat up`: each case must get the right
//! reply, leave the session in step with the client, execute nothing it should not, and queue
//! and deliver nothing it should not. Raw bytes from `std::net::TcpStream` (through
//! `moat_tests::smtp_client`), and Python's ssl module where TLS is needed.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use moat_tests::smtp_client::Client;
use moat_tests::{Mode, Stack};

fn stack_with(extra: &str) -> Stack {
    let s = Stack::start_configured(Mode::Up, extra);
    s.add_domain("example.test");
    for u in ["postmaster", "alice", "bob", "carol"] {
        s.add_user(&format!("{u}@example.test"), &format!("{u}-secret"));
    }
    s
}

fn stack() -> Stack {
    stack_with("")
}

fn client(port: u16) -> Client {
    let mut c = Client::connect(port).expect("connect");
    let (code, text) = c.ehlo("client.example").expect("ehlo");
    assert_eq!(code, 250, "{text}");
    c
}

fn code_of(r: &(u16, String)) -> u16 {
    r.0
}

/// Nothing queued and nothing delivered to these users (after giving the queue a moment).
fn assert_nothing_for(s: &Stack, users: &[&str]) {
    std::thread::sleep(Duration::from_millis(300));
    for u in users {
        assert_eq!(s.messages(u).len(), 0, "{u} got mail:\n{}", s.log());
    }
    assert_eq!(s.queued(), 0, "something is queued:\n{}", s.log());
}

/// A message that must arrive, so "nothing delivered" above means something.
fn control_message(s: &Stack, c: &mut Client, to: &str, subject: &str) {
    let msg = format!("From: x@sender.example\r\nSubject: {subject}\r\n\r\nfine\r\n");
    let r = c
        .send_mail("x@sender.example", &[to], msg.as_bytes())
        .expect("control message");
    assert_eq!(r.0, 250, "{r:?}\n{}", s.log());
    let got = s.wait_messages(to, 1);
    assert!(got[0].contains(subject), "{}", got[0]);
}

#[test]
fn data_smuggling_variants_are_refused_after_the_real_end() {
    let s = stack();
    let mut c = client(s.smtp);
    for variant in ["\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r\n.\r"] {
        assert_eq!(
            code_of(&c.cmd("MAIL FROM:<mallory@sender.example>").expect("mail")),
            250
        );
        assert_eq!(
            code_of(&c.cmd("RCPT TO:<alice@example.test>").expect("rcpt")),
            250
        );
        assert_eq!(code_of(&c.cmd("DATA").expect("data")), 354);
        // A laxer server would end the message at the variant and run the rest as commands.
        let payload = format!(
            "From: mallory@sender.example\r\nSubject: outer\r\n\r\nhello{variant}\
             MAIL FROM:<mallory@sender.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n\
             Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
        );
        c.send_raw(payload.as_bytes()).expect("send");
        let r = c.reply().expect("reply after the real end");
        assert_eq!(r.0, 550, "{variant:?}: {r:?}");
        assert!(r.1.contains("5.6.0"), "{r:?}");
        // The next reply is our NOOP's: no smuggled command was run in between.
        let r = c.cmd("NOOP").expect("noop");
        assert!(r.0 == 250 && r.1.contains("2.0.0"), "{variant:?}: {r:?}");
    }
    assert_nothing_for(&s, &["alice@example.test", "bob@example.test"]);
    control_message(&s, &mut c, "carol@example.test", "after smuggling");
    assert_eq!(s.messages("alice@example.test").len(), 0);
    assert_eq!(s.messages("bob@example.test").len(), 0);
    assert!(!s.log().contains("smuggled"), "{}", s.log());
}

#[test]
fn starttls_throws_away_pipelined_commands() {
    let s = stack();
    let out = s.python(
        r#"
import base64, os, socket, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE

class Conn:
    def __init__(self, sock): self.sock, self.buf = sock, b""
    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk: return lines
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if line[3:4] != b"-": return lines

plain = base64.b64encode(b"\0alice@example.test\0alice-secret").decode()
cases = [
    (int(os.environ["SMTP_PORT"]),
     "MAIL FROM:<evil@sender.example>\r\nRCPT TO:<alice@example.test>\r\n",
     "RCPT TO:<alice@example.test>", "503"),
    (int(os.environ["SUBMISSION_PORT"]),
     "AUTH PLAIN " + plain + "\r\n",
     "MAIL FROM:<alice@example.test>", "530"),
]
for port, pipelined, probe, expected in cases:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    c = Conn(s)
    assert c.reply()[0].startswith("220 ")
    s.sendall(b"EHLO client.example\r\n")
    assert "STARTTLS" in "\n".join(c.reply())
    # STARTTLS and more commands in one packet.
    s.sendall(("STARTTLS\r\n" + pipelined).encode())
    r = c.reply()
    assert r[0].startswith("220 "), r
    assert c.buf == b"", ("bytes after the 220", c.buf)
    t = ctx.wrap_socket(s, server_hostname="localhost")
    c = Conn(t)
    t.sendall(b"EHLO client.example\r\n")
    r = c.reply()
    assert r[0].startswith("250-") or r[0].startswith("250 "), ("first reply under TLS", r)
    t.sendall((probe + "\r\n").encode())
    r = c.reply()
    assert r[-1].startswith(expected), (port, probe, r)
    t.sendall(b"QUIT\r\n")
    assert c.reply()[-1].startswith("221"), "quit"
    t.close()
print("ok")
"#,
    );
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let log = s.log();
    assert!(log.contains("after STARTTLS: thrown away"), "{log}");
    assert!(
        !log.contains("smtp login alice"),
        "the pipelined AUTH ran:\n{log}"
    );
    assert_nothing_for(&s, &["alice@example.test"]);
}

#[test]
fn a_100_kb_command_line_gets_500_and_the_session_goes_on() {
    let s = stack();
    let mut c = client(s.smtp);
    let mut line = b"NOOP ".to_vec();
    line.resize(100 * 1024, b'a');
    line.extend_from_slice(b"\r\n");
    c.send_raw(&line).expect("send");
    let r = c.reply().expect("reply");
    assert_eq!(r.0, 500, "{r:?}");
    assert!(r.1.contains("5.5.2"), "{r:?}");
    // The same for MAIL, whose limit is longer, and for a line that never ends in CRLF
    // within the limit but does later.
    let mut mail = b"MAIL FROM:<".to_vec();
    mail.resize(100 * 1024, b'b');
    mail.extend_from_slice(b"@sender.example>\r\n");
    c.send_raw(&mail).expect("send");
    assert_eq!(c.reply().expect("reply").0, 500);
    assert_eq!(code_of(&c.ehlo("client.example").expect("ehlo")), 250);
    control_message(&s, &mut c, "alice@example.test", "after a long line");
}

#[test]
fn ten_thousand_recipients_get_452_then_421_and_nothing_is_queued() {
    let s = stack();
    let stream = TcpStream::connect(("127.0.0.1", s.smtp)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let mut all = b"EHLO client.example\r\nMAIL FROM:<flood@sender.example>\r\n".to_vec();
        for _ in 0..10_000 {
            all.extend_from_slice(b"RCPT TO:<alice@example.test>\r\n");
        }
        all.extend_from_slice(b"DATA\r\nSubject: flood\r\n\r\nflood\r\n.\r\n");
        // The server hangs up part way: a failed write is expected.
        let _ = writer.write_all(&all);
    });
    let mut text = String::new();
    let mut reader = stream;
    let mut chunk = [0u8; 65536];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Err(e) => panic!("read: {e} after {} bytes", text.len()),
        }
    }
    let _ = sender.join();
    let codes: Vec<&str> = text.lines().map(|l| l.get(..3).unwrap_or("")).collect();
    // Greeting, EHLO (multi-line), MAIL.
    let accepted = codes.iter().filter(|c| **c == "250").count();
    let too_many = codes.iter().filter(|c| **c == "452").count();
    assert!(accepted >= 100, "{accepted} accepted");
    assert!(too_many >= 1000, "{too_many} times 452");
    assert_eq!(
        codes.last(),
        Some(&"421"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
    assert!(codes.len() < 2000, "{} replies: not cut off", codes.len());
    assert!(!codes.contains(&"354"), "DATA was accepted");
    assert_nothing_for(&s, &["alice@example.test"]);
}

#[test]
fn nul_bytes_in_commands_and_data_are_refused() {
    let s = stack();
    let mut c = client(s.smtp);
    for line in [
        &b"NOOP\0\r\n"[..],
        b"MAIL FROM:<a\0b@sender.example>\r\n",
        b"EHLO cli\0ent.example\r\n",
        b"\0\r\n",
    ] {
        c.send_raw(line).expect("send");
        let r = c.reply().expect("reply");
        assert!((500..=501).contains(&r.0), "{line:?}: {r:?}");
    }
    assert_eq!(code_of(&c.ehlo("client.example").expect("ehlo")), 250);
    assert_eq!(
        code_of(&c.cmd("MAIL FROM:<x@sender.example>").expect("mail")),
        250
    );
    assert_eq!(
        code_of(&c.cmd("RCPT TO:<alice@example.test>").expect("rcpt")),
        250
    );
    assert_eq!(code_of(&c.cmd("DATA").expect("data")), 354);
    c.send_raw(b"Subject: nul\r\n\r\nbefore\0after\r\n.\r\n")
        .expect("send");
    let r = c.reply().expect("reply");
    assert_eq!(r.0, 554, "{r:?}");
    assert!(r.1.contains("5.6.0"), "{r:?}");
    assert_nothing_for(&s, &["alice@example.test"]);
    control_message(&s, &mut c, "bob@example.test", "after NUL");
}

#[test]
fn path_tricks_in_rcpt_are_refused() {
    let s = stack();
    let mut c = client(s.smtp);
    assert_eq!(
        code_of(&c.cmd("MAIL FROM:<x@sender.example>").expect("mail")),
        250
    );
    for rcpt in [
        "<../../x@example.test>",
        "<\"../../x\"@example.test>",
        "<\"/etc/passwd\"@example.test>",
        "<x@../../example.test>",
        "<.x@example.test>",
        "<x@example.test/../..>",
    ] {
        let r = c.cmd(&format!("RCPT TO:{rcpt}")).expect("rcpt");
        assert!((500..600).contains(&r.0), "{rcpt}: {r:?}");
    }
    assert_eq!(code_of(&c.cmd("RSET").expect("rset")), 250);
    // Nothing was made anywhere under the data folder by those names.
    let mut seen = Vec::new();
    let mut stack_dirs = vec![s.data.clone()];
    while let Some(dir) = stack_dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if ["x", ".x", "passwd", "etc"].contains(&name.as_str()) {
                seen.push(e.path());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack_dirs.push(e.path());
            }
        }
    }
    assert!(seen.is_empty(), "{seen:?}");
    assert_nothing_for(&s, &[]);
}

#[test]
fn auth_before_starttls_on_submission_is_refused() {
    let s = stack();
    let mut c = Client::connect(s.submission).expect("connect");
    let (code, ehlo) = c.ehlo("client.example").expect("ehlo");
    assert_eq!(code, 250);
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "AUTH offered in plaintext: {ehlo}");
    // "\0alice@example.test\0alice-secret"
    let plain = "AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1zZWNyZXQ=";
    for cmd in [format!("AUTH PLAIN {plain}"), "AUTH LOGIN".to_string()] {
        let r = c.cmd(&cmd).expect("auth");
        assert_eq!(r.0, 530, "{r:?}");
        assert!(r.1.contains("5.7.0"), "{r:?}");
    }
    let r = c.cmd("MAIL FROM:<alice@example.test>").expect("mail");
    assert_eq!(r.0, 530, "{r:?}");
    assert!(!s.log().contains("smtp login"), "{}", s.log());
    // Port 25 does not do AUTH at all.
    let mut mx = client(s.smtp);
    let r = mx.cmd(&format!("AUTH PLAIN {plain}")).expect("auth");
    assert!((500..600).contains(&r.0), "{r:?}");
}

#[test]
fn bdat_chunks_are_checked_like_data() {
    let s = stack();
    let mut c = client(s.smtp);
    // A bare LF inside a chunk: the chunk is read to its last octet, then refused.
    assert_eq!(
        code_of(&c.cmd("MAIL FROM:<x@sender.example>").expect("mail")),
        250
    );
    assert_eq!(
        code_of(&c.cmd("RCPT TO:<alice@example.test>").expect("rcpt")),
        250
    );
    let chunk = b"Subject: lf\r\n\r\nhello\n.\nRSET\r\n";
    c.send_raw(format!("BDAT {} LAST\r\n", chunk.len()).as_bytes())
        .expect("bdat");
    c.send_raw(chunk).expect("chunk");
    let r = c.reply().expect("reply");
    assert_eq!(r.0, 550, "{r:?}");
    let r = c.cmd("NOOP").expect("noop");
    assert_eq!(r.0, 250, "the chunk's RSET ran as a command: {r:?}");
    // Two clean chunks arrive as one message.
    assert_eq!(
        code_of(&c.cmd("MAIL FROM:<x@sender.example>").expect("mail")),
        250
    );
    assert_eq!(
        code_of(&c.cmd("RCPT TO:<bob@example.test>").expect("rcpt")),
        250
    );
    let (a, b) = (&b"Subject: chunked\r\n"[..], &b"\r\nin two chunks\r\n"[..]);
    c.send_raw(format!("BDAT {}\r\n", a.len()).as_bytes())
        .expect("bdat");
    c.send_raw(a).expect("chunk");
    assert_eq!(c.reply().expect("reply").0, 250);
    c.send_raw(format!("BDAT {} LAST\r\n", b.len()).as_bytes())
        .expect("bdat");
    c.send_raw(b).expect("chunk");
    let r = c.reply().expect("reply");
    assert!(r.0 == 250 && r.1.contains("queued as"), "{r:?}");
    let bob = s.wait_messages("bob@example.test", 1);
    assert!(
        bob[0].contains("Subject: chunked\r\n\r\nin two chunks\r\n"),
        "{}",
        bob[0]
    );
    assert_eq!(s.messages("alice@example.test").len(), 0);
}

/// Sends `bytes` one a second on a new connection; returns what the server said first and
/// when.
fn dribble(port: u16, bytes: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).expect("greeting");
    assert!(buf[..n].starts_with(b"220 "));
    let started = Instant::now();
    for b in bytes {
        if stream.write_all(&[*b]).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                return (
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                    started.elapsed(),
                );
            }
            Err(_) => continue,
        }
    }
    (String::new(), started.elapsed())
}

#[test]
fn a_client_sending_one_byte_a_second_is_cut_off() {
    let s = stack_with("[limits]\ntimeout_command_secs = 3\ntimeout_data_secs = 3\n");
    // While a slow client dribbles, others are served as usual.
    let slow = std::thread::spawn({
        let port = s.smtp;
        move || dribble(port, b"EHLO a.very.slow.client.example\r\n")
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut c = client(s.smtp);
    control_message(
        &s,
        &mut c,
        "alice@example.test",
        "while a slow client dribbles",
    );
    let (heard, took) = slow.join().expect("slow client");
    assert!(heard.starts_with("421 4.4.2 "), "{heard:?}");
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(8),
        "{took:?}"
    );
    // The same inside DATA: a trickle of message bytes does not hold the session either.
    let mut d = client(s.smtp);
    assert_eq!(
        code_of(&d.cmd("MAIL FROM:<x@sender.example>").expect("mail")),
        250
    );
    assert_eq!(
        code_of(&d.cmd("RCPT TO:<bob@example.test>").expect("rcpt")),
        250
    );
    assert_eq!(code_of(&d.cmd("DATA").expect("data")), 354);
    let started = Instant::now();
    let mut cut = None;
    for b in b"Subject: slow\r\n\r\n".iter().cycle().take(60) {
        if d.send_raw(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1000));
        if started.elapsed() > Duration::from_secs(4) {
            cut = Some(d.reply());
            break;
        }
    }
    let r = cut.expect("stopped sending").expect("reply");
    assert_eq!(r.0, 421, "{r:?}");
    assert_nothing_for(&s, &["bob@example.test"]);
}
