//! The session driven through the framing, as the connection drives it, without a socket:
//! moat-auth is played by the harness (password `right` logs in as alice@example.test).

use moat_common::client::auth::{LoggedIn, Login, LoginQuota};

use super::input::{Event, Input};
use super::*;

struct Harness {
    _dir: tempfile::TempDir,
    mail_root: PathBuf,
    session: Session,
    input: Input,
    closed: bool,
    /// The quota moat-auth answers a login with (unlimited unless a test sets one).
    quota: LoginQuota,
}

fn new_session(mail_root: &std::path::Path, plaintext_allowed: bool) -> Session {
    let config = Config {
        hostname: "imap.example.test".into(),
        mail_root: mail_root.to_path_buf(),
        tls_available: true,
        plaintext_allowed,
        who: "test".into(),
        append_limit: 1000,
    };
    let session = Session::new(config, false);
    let mut out = Vec::new();
    session.greeting(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("* OK [CAPABILITY IMAP4rev1 "));
    session
}

impl Harness {
    fn new(plaintext_allowed: bool) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let mail_root = dir.path().to_path_buf();
        let session = new_session(&mail_root, plaintext_allowed);
        Harness {
            _dir: dir,
            mail_root,
            session,
            input: Input::new(),
            closed: false,
            quota: LoginQuota::Store(None),
        }
    }

    /// A new connection to the same mail root, logged in with moat-auth answering `quota`.
    async fn login_again(&mut self, quota: LoginQuota) {
        self.session = new_session(&self.mail_root, true);
        self.input = Input::new();
        self.closed = false;
        self.quota = quota;
        let r = self.send(b"a LOGIN alice@example.test right\r\n").await;
        assert!(r.starts_with("a OK [CAPABILITY IMAP4rev1 "), "{r}");
    }

    /// Sends bytes; returns everything the server answered until it waits for more.
    async fn send(&mut self, bytes: &[u8]) -> String {
        let mut out = Vec::new();
        self.input.push(bytes);
        loop {
            let flow = match self.input.next_event() {
                Event::NeedMore => break,
                Event::SendContinuation => {
                    out.extend_from_slice(b"+ OK\r\n");
                    continue;
                }
                Event::Refused { tag, text, close } => {
                    self.session.refused(tag, text, close, &mut out)
                }
                Event::Message => {
                    let parsed = if self.session.expects_sasl() {
                        parse::sasl(&self.input)
                    } else {
                        parse::command(&self.input)
                    };
                    self.session.handle(parsed, &mut out).await
                }
                Event::Append(head) => {
                    self.session
                        .append_begin(head, &mut self.input, &mut out)
                        .await
                }
                Event::LiteralData => {
                    self.session.append_data(&mut self.input).await;
                    continue;
                }
                Event::AppendDone => self.session.append_done(&mut out).await,
            };
            match flow {
                Flow::Continue => {}
                Flow::More => {
                    let mut f = Flow::More;
                    while f == Flow::More {
                        f = self.session.resume(&mut out).await;
                    }
                }
                // The session tests do not IDLE.
                Flow::Idle => panic!("IDLE in session tests"),
                Flow::Close => {
                    self.closed = true;
                    break;
                }
                Flow::StartTls => {
                    self.input.clear();
                    self.session.tls_started();
                }
                Flow::Login {
                    tag,
                    login,
                    password,
                } => {
                    let answer = if password.0 == "right" && login == "alice@example.test" {
                        Login::User(LoggedIn {
                            user: login,
                            quota: self.quota,
                        })
                    } else {
                        Login::Failed
                    };
                    let flow = self.session.login_result(&tag, answer, &mut out).await;
                    assert_eq!(flow, Flow::Continue);
                }
            }
            if self.session.is_authenticated() {
                self.input.authenticated();
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn logged_in() -> Harness {
        let mut h = Harness::new(true);
        let r = h.send(b"a LOGIN alice@example.test right\r\n").await;
        assert!(r.starts_with("a OK [CAPABILITY IMAP4rev1 "), "{r}");
        h
    }

    fn maildir(&self) -> PathBuf {
        self.mail_root.join("example.test/alice/Maildir")
    }
}

#[tokio::test]
async fn plaintext_refused_until_tls() {
    let mut h = Harness::new(false);
    let r = h.send(b"1 CAPABILITY\r\n").await;
    assert!(r.contains("STARTTLS") && r.contains("LOGINDISABLED"), "{r}");
    assert!(!r.contains("AUTH="), "{r}");
    let r = h.send(b"2 LOGIN alice@example.test right\r\n").await;
    assert!(r.starts_with("2 NO [PRIVACYREQUIRED]"), "{r}");
    let r = h
        .send(b"3 AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAByaWdodA==\r\n")
        .await;
    assert!(r.starts_with("3 NO [PRIVACYREQUIRED]"), "{r}");
    // Pipelined after STARTTLS: dropped, never run.
    let r = h
        .send(b"4 STARTTLS\r\n5 LOGIN alice@example.test right\r\n")
        .await;
    assert_eq!(r, "4 OK Begin TLS negotiation now.\r\n");
    assert!(!h.session.is_authenticated());
    let r = h.send(b"6 CAPABILITY\r\n").await;
    assert!(r.contains("AUTH=PLAIN") && !r.contains("STARTTLS"), "{r}");
    let r = h.send(b"7 STARTTLS\r\n").await;
    assert!(r.starts_with("7 BAD"), "{r}");
    let r = h.send(b"8 LOGIN alice@example.test wrong\r\n").await;
    assert!(r.starts_with("8 NO [AUTHENTICATIONFAILED]"), "{r}");
    let r = h.send(b"9 LOGIN alice@example.test right\r\n").await;
    assert!(r.starts_with("9 OK [CAPABILITY"), "{r}");
}

#[tokio::test]
async fn authenticate_plain_forms() {
    let mut h = Harness::new(true);
    let r = h.send(b"a AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(r, "+ \r\n");
    let r = h.send(b"*\r\n").await;
    assert!(r.starts_with("a BAD"), "{r}");
    h.send(b"b AUTHENTICATE PLAIN\r\n").await;
    let r = h.send(b"not base64!\r\n").await;
    assert!(r.starts_with("b BAD"), "{r}");
    let r = h.send(b"c AUTHENTICATE CRAM-MD5\r\n").await;
    assert!(r.starts_with("c NO"), "{r}");
    // authzid = another user
    let r = h
        .send(b"d AUTHENTICATE PLAIN Ym9iQGV4YW1wbGUudGVzdABhbGljZUBleGFtcGxlLnRlc3QAcmlnaHQ=\r\n")
        .await;
    assert!(r.starts_with("d NO [AUTHORIZATIONFAILED]"), "{r}");
    h.send(b"e AUTHENTICATE PLAIN\r\n").await;
    let r = h.send(b"AGFsaWNlQGV4YW1wbGUudGVzdAByaWdodA==\r\n").await;
    assert!(r.starts_with("e OK [CAPABILITY"), "{r}");
    let r = h.send(b"f LOGIN x y\r\n").await;
    assert!(r.starts_with("f BAD"), "{r}");
}

#[tokio::test]
async fn first_login_makes_the_special_folders_and_mailbox_commands_work() {
    let mut h = Harness::logged_in().await;
    let r = h.send(b"l LIST \"\" *\r\n").await;
    for line in [
        "* LIST (\\HasNoChildren) \"/\" INBOX",
        "* LIST (\\HasNoChildren \\Sent) \"/\" Sent",
        "* LIST (\\HasNoChildren \\Junk) \"/\" Junk",
        "l OK LIST completed.",
    ] {
        assert!(r.contains(line), "{line} in {r}");
    }
    let r = h.send(b"s LSUB \"\" *\r\n").await;
    assert!(r.contains("* LSUB () \"/\" Trash"), "{r}");
    // mUTF-7 names, hierarchy, parents made on the way.
    let r = h
        .send(b"c1 CREATE \"Entw&APw-rfe/Projekt &- Plan\"\r\n")
        .await;
    assert_eq!(r, "c1 OK CREATE completed.\r\n");
    assert!(h.maildir().join(".Entw&APw-rfe.Projekt &- Plan").is_dir());
    let r = h.send(b"c2 CREATE a.b\r\n").await;
    assert!(r.starts_with("c2 NO [CANNOT]"), "{r}");
    let r = h.send(b"c3 CREATE caf\xc3\xa9\r\n").await;
    assert!(
        r.starts_with("c3 NO [CANNOT]") || r.starts_with("c3 BAD"),
        "{r}"
    );
    let r = h.send(b"c4 CREATE inbox\r\n").await;
    assert!(r.starts_with("c4 NO [ALREADYEXISTS]"), "{r}");
    let r = h.send(b"l2 LIST \"\" Entw&APw-rfe/%\r\n").await;
    assert!(
        r.contains("* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe/Projekt &- Plan\""),
        "{r}"
    );
    let r = h.send(b"l3 LIST \"\" %\r\n").await;
    assert!(
        r.contains("* LIST (\\HasChildren) \"/\" Entw&APw-rfe"),
        "{r}"
    );
    assert!(!r.contains("Projekt"), "{r}");
    let r = h.send(b"r1 RENAME Entw&APw-rfe Work\r\n").await;
    assert_eq!(r, "r1 OK RENAME completed.\r\n");
    let r = h.send(b"sub SUBSCRIBE \"Work/Projekt &- Plan\"\r\n").await;
    assert_eq!(r, "sub OK SUBSCRIBE completed.\r\n");
    let r = h.send(b"ls LSUB \"\" Work/*\r\n").await;
    assert!(
        r.contains("* LSUB () \"/\" \"Work/Projekt &- Plan\""),
        "{r}"
    );
    let r = h.send(b"ls2 LSUB \"\" %\r\n").await;
    assert!(r.contains("* LSUB (\\Noselect) \"/\" Work"), "{r}");
    let r = h.send(b"d1 DELETE Work\r\n").await;
    assert_eq!(r, "d1 OK DELETE completed.\r\n");
    let r = h.send(b"l4 LIST \"\" Work\r\n").await;
    assert!(
        r.contains("* LIST (\\Noselect \\HasChildren) \"/\" Work"),
        "{r}"
    );
    let r = h.send(b"d2 DELETE Work\r\n").await;
    assert!(r.starts_with("d2 NO [CANNOT]"), "{r}");
    let r = h.send(b"d3 DELETE INBOX\r\n").await;
    assert!(r.starts_with("d3 NO"), "{r}");
    let r = h.send(b"d4 DELETE Nope\r\n").await;
    assert!(r.starts_with("d4 NO [NONEXISTENT]"), "{r}");
    let r = h.send(b"u UNSUBSCRIBE \"Work/Projekt &- Plan\"\r\n").await;
    assert_eq!(r, "u OK UNSUBSCRIBE completed.\r\n");
}

#[tokio::test]
async fn list_extended_status_and_the_rest() {
    let mut h = Harness::logged_in().await;
    let md = moat_maildir::Maildir::open(h.maildir()).expect("maildir");
    md.deliver(b"Subject: 1\r\n\r\none\r\n").expect("deliver");
    let r = h
        .send(b"s STATUS INBOX (MESSAGES UIDNEXT UNSEEN RECENT)\r\n")
        .await;
    assert!(
        r.starts_with("* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UNSEEN 1 RECENT 1)\r\n"),
        "{r}"
    );
    let r = h
        .send(b"x LIST (SPECIAL-USE) \"\" * RETURN (SUBSCRIBED STATUS (MESSAGES UIDVALIDITY))\r\n")
        .await;
    assert!(
        r.contains("* LIST (\\HasNoChildren \\Drafts \\Subscribed) \"/\" Drafts\r\n* STATUS Drafts (MESSAGES 0 UIDVALIDITY "),
        "{r}"
    );
    assert!(!r.contains("INBOX"), "{r}");
    h.send(b"c CREATE Lists/rust\r\n").await;
    h.send(b"s2 SUBSCRIBE Lists/rust\r\n").await;
    h.send(b"s3 SUBSCRIBE Gone\r\n").await;
    let r = h
        .send(b"y LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\n")
        .await;
    assert!(
        r.contains("* LIST (\\HasChildren) \"/\" Lists (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
        "{r}"
    );
    assert!(
        r.contains("* LIST (\\NonExistent \\Subscribed) \"/\" Gone"),
        "{r}"
    );
    let r = h.send(b"e LIST \"\" \"\"\r\n").await;
    assert!(r.starts_with("* LIST (\\Noselect) \"/\" \"\"\r\n"), "{r}");
    let r = h.send(b"n NAMESPACE\r\n").await;
    assert!(
        r.starts_with("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"),
        "{r}"
    );
    let r = h.send(b"i ID (\"name\" \"test\")\r\n").await;
    assert!(r.starts_with("* ID (\"name\" \"Moat\")\r\n"), "{r}");
    let r = h.send(b"en ENABLE CONDSTORE\r\n").await;
    assert!(r.starts_with("* ENABLED CONDSTORE\r\nen OK"), "{r}");
    let r = h.send(b"q GETQUOTAROOT INBOX\r\n").await;
    assert!(r.starts_with("* QUOTAROOT INBOX\r\nq OK"), "{r}");
    let r = h.send(b"sel SELECT INBOX\r\n").await;
    assert!(
        r.starts_with("* FLAGS (")
            && r.contains(" EXISTS\r\n")
            && r.contains("sel OK [READ-WRITE]"),
        "{r}"
    );
    let r = h.send(b"f FETCH 99 FLAGS\r\n").await;
    assert!(r.starts_with("f BAD"), "{r}");
    let r = h.send(b"o LOGOUT\r\n").await;
    assert!(r.starts_with("* BYE") && r.contains("o OK"), "{r}");
    assert!(h.closed);
}

#[tokio::test]
async fn logins_apply_the_store_quota() {
    let mut h = Harness::new(true);
    h.quota = LoginQuota::Store(Some(10 << 20));
    let r = h.send(b"a LOGIN alice@example.test right\r\n").await;
    assert!(r.starts_with("a OK"), "{r}");
    let r = h.send(b"q GETQUOTAROOT INBOX\r\n").await;
    assert_eq!(
        r,
        "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE 0 10240)\r\nq OK GETQUOTAROOT completed.\r\n"
    );
    let md = moat_maildir::Maildir::open(h.maildir()).expect("maildir");
    md.deliver(&[b'x'; 1500]).expect("deliver");

    // The admin lowers the quota: the next login has it, GETQUOTA and APPEND use it at once.
    h.login_again(LoginQuota::Store(Some(2048))).await;
    let r = h.send(b"q GETQUOTA \"\"\r\n").await;
    assert_eq!(
        r,
        "* QUOTA \"\" (STORAGE 2 2)\r\nq OK GETQUOTA completed.\r\n"
    );
    let r = h.send(b"p APPEND INBOX {600}\r\n").await;
    assert!(r.starts_with("p NO [OVERQUOTA]"), "{r}");

    // A bad answer (moat-auth never sends one) or none at all never lifts the limit.
    h.login_again(LoginQuota::Store(Some(0))).await;
    let r = h.send(b"q GETQUOTA \"\"\r\n").await;
    assert!(r.starts_with("* QUOTA \"\" (STORAGE 2 2)"), "{r}");
    h.login_again(LoginQuota::NotSent).await;
    let r = h.send(b"p APPEND INBOX {600}\r\n").await;
    assert!(r.starts_with("p NO [OVERQUOTA]"), "{r}");

    // Unlimited: no quota root, and APPEND is not held to the old limit.
    h.login_again(LoginQuota::Store(None)).await;
    let r = h.send(b"q GETQUOTAROOT INBOX\r\n").await;
    assert_eq!(r, "* QUOTAROOT INBOX\r\nq OK GETQUOTAROOT completed.\r\n");
    let r = h.send(b"p APPEND INBOX {600}\r\n").await;
    assert_eq!(r, "+ Ready for literal data\r\n");
    let r = h.send(&[b'y'; 600]).await;
    assert_eq!(r, "");
    let r = h.send(b"\r\n").await;
    assert!(r.starts_with("p OK [APPENDUID "), "{r}");
}

#[tokio::test]
async fn unknown_keywords_take_no_letters() {
    let mut h = Harness::logged_in().await;
    let md = moat_maildir::Maildir::open(h.maildir()).expect("maildir");
    md.deliver(b"Subject: 1\r\n\r\none\r\n").expect("deliver");
    let keywords = h.maildir().join(crate::index::KEYWORDS_FILE);
    let r = h.send(b"s SELECT INBOX\r\n").await;
    assert!(r.contains("s OK [READ-WRITE]"), "{r}");
    // Removing keywords no message can carry, or searching for them: a no-op.
    let r = h.send(b"r STORE 1 -FLAGS (Never1 Never2 \\Seen)\r\n").await;
    assert!(r.ends_with("r OK STORE completed.\r\n"), "{r}");
    let r = h
        .send(b"f SEARCH OR KEYWORD Never3 UNKEYWORD Never4\r\n")
        .await;
    assert!(r.starts_with("* SEARCH 1\r\n"), "{r}");
    assert!(!keywords.exists(), "no letter was given");
    // Adding one gives it a letter; removing it with an unknown one keeps the file as it is.
    let r = h.send(b"a STORE 1 +FLAGS (Work)\r\n").await;
    assert!(
        r.contains("FLAGS (Work \\Recent)") && r.contains("a OK"),
        "{r}"
    );
    let r = h.send(b"d STORE 1 -FLAGS (work Never5)\r\n").await;
    assert!(r.contains("FLAGS (\\Recent)") && r.contains("d OK"), "{r}");
    assert_eq!(
        std::fs::read_to_string(&keywords).expect("keywords"),
        "0 Work\n"
    );
}

#[tokio::test]
async fn limits_end_sessions() {
    let mut h = Harness::new(true);
    let mut last = String::new();
    for i in 0..11 {
        last = h.send(format!("{i} NOOP\r\n").as_bytes()).await;
        if h.closed {
            break;
        }
    }
    assert!(h.closed && last.starts_with("* BYE"), "{last}");

    let mut h = Harness::logged_in().await;
    let r = h.send(b"n NO\0OP\r\n").await;
    assert_eq!(r, "n BAD NUL is not allowed in commands\r\n");
    assert!(
        h.session.is_authenticated(),
        "a refused line keeps the login"
    );
    let mut bad = 1;
    while !h.closed && bad < 100 {
        let r = h.send(b"x BOGUS\r\n").await;
        assert!(r.starts_with("x BAD"), "{r}");
        bad += 1;
    }
    assert_eq!(bad, MAX_BAD + 1);
}

fn files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn append_streams_into_cur_and_refuses_before_the_literal() {
    let mut h = Harness::logged_in().await;
    let md = h.maildir();
    // Over APPENDLIMIT (1000 here), or no such mailbox: NO, and no continuation request.
    let r = h.send(b"a APPEND INBOX {1001}\r\n").await;
    assert_eq!(
        r,
        "a NO [TOOBIG] The message is larger than APPENDLIMIT=1000.\r\n"
    );
    let r = h.send(b"b APPEND Nope {5}\r\n").await;
    assert_eq!(r, "b NO [TRYCREATE] No such mailbox.\r\n");
    let r = h.send(b"b2 APPEND INBOX {0}\r\n").await;
    assert!(r.starts_with("b2 NO [CANNOT]"), "{r}");

    let r = h
        .send(b"c APPEND INBOX (\\Seen) \"01-Jan-2020 00:00:00 +0000\" {300}\r\n")
        .await;
    assert_eq!(r, "+ Ready for literal data\r\n");
    let msg = format!("Subject: s\r\n\r\n{}\r\n", "x".repeat(284));
    assert_eq!(msg.len(), 300);
    assert_eq!(h.send(&msg.as_bytes()[..100]).await, "");
    // Mid-literal the message is a tmp/ file only.
    assert_eq!(files(&md.join("tmp")).len(), 1);
    assert!(files(&md.join("cur")).is_empty());
    assert_eq!(h.send(&msg.as_bytes()[100..]).await, "");
    let r = h.send(b"\r\n").await;
    assert!(
        r.starts_with("c OK [APPENDUID ") && r.ends_with(" 1] APPEND completed.\r\n"),
        "{r}"
    );
    let cur = files(&md.join("cur"));
    assert!(cur.len() == 1 && cur[0].ends_with(":2,S"), "{cur:?}");
    let path = md.join("cur").join(&cur[0]);
    assert_eq!(std::fs::read(&path).expect("read"), msg.as_bytes());
    let mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(
        mtime,
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_577_836_800)
    );
    assert!(files(&md.join("tmp")).is_empty());

    // A NUL in a `{n}` literal is BAD and stores nothing; in a `~{n}` literal8 it is fine.
    let r = h.send(b"d APPEND INBOX {3+}\r\na\0b\r\n").await;
    assert_eq!(r, "d BAD NUL is not allowed in commands\r\n");
    let r = h.send(b"e APPEND INBOX ~{3+}\r\na\0b\r\n").await;
    assert!(
        r.starts_with("e OK [APPENDUID ") && r.ends_with(" 2] APPEND completed.\r\n"),
        "{r}"
    );

    // An upload abandoned mid-literal (the connection dropped) leaves nothing.
    let r = h.send(b"f APPEND INBOX {50}\r\npartial").await;
    assert_eq!(r, "+ Ready for literal data\r\n");
    assert_eq!(files(&md.join("tmp")).len(), 1);
    h.session.upload = None;
    assert!(files(&md.join("tmp")).is_empty());
    assert_eq!(files(&md.join("cur")).len(), 2);
}
