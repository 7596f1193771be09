//! Digests, and the MIME bundle (`multipart/digest`, RFC 2046 §5.1.5) that digests and
//! `list-get.N_M@` answers share.
//!
//! A digest of a list with `digest` on carries the archived posts `digested_through + 1 ..`:
//! after each archived post (`archive::store`) and on a timer (every `TICK`), a digest goes when
//! `[lists] digest_posts` posts wait, or when `digest_interval_secs` passed since the last
//! digest (since the oldest waiting post when there was none) and at least one post waits. It
//! is one message, `Subject: LIST digest N`, a text/plain table of contents first, then each
//! post as a `message/rfc822` part, injected once for every member of the digest roster (the
//! queue takes up to `MAX_BULK_RECIPIENTS` from moat-lists, a whole roster) with VERP from `LIST-return-dN@DOMAIN` (a
//! bounce comes back as `LIST-return-dN-user=host@DOMAIN`: digest N, digest member
//! user@host). The store records the
//! digest (`record_digest`) only once the queue took it; a list without digest members records
//! it and sends nothing. If `record_digest` fails after the queue took the digest (moat-auth
//! down, or moat-lists stopped in between), the next digest carries the same posts again: the
//! one window in which a post can reach a digest member twice.
//!
//! The check after a post runs outside the post's request (`wake`): the post's `K` never waits
//! for a digest.
//!
//! Posts numbered but missing from the archive (a post whose injection failed and was retried
//! under a new number, or still being distributed) end a digest, unless the next archived post
//! is older than `SETTLE_SECS`: then the number is skipped with a note.
//!
//! SECURITY: the posts are copied as bytes inside our MIME frame; the boundary is 96 random bits
//! (a poster cannot guess it to end a part early). Every bundle is bounded: `MAX_POSTS` posts,
//! `MAX_BUNDLE_BYTES` of them; table of contents lines are cleaned and cut
//! (`archive::clean`). Digest sending is serialised in this process (`LOCK`), and reads the
//! list's counters again under the lock, so two triggers never send the same posts twice.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use moat_common::client::list_store::{ListInfo, NO_SUCH_LIST, Roster};
use moat_common::client::queue::{CHUNK, Injection, MAX_BULK_RECIPIENTS, Origin};
use moat_common::date;
use moat_common::log::{Level, write as log};
use moat_common::wire::Status;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::{Mutex, Notify};

use crate::archive;
use crate::context::Ctx;
use crate::header;

/// Posts in one bundle at most (a digest takes the rest next time).
pub const MAX_POSTS: u64 = 100;
/// The most post bytes in one bundle.
pub const MAX_BUNDLE_BYTES: u64 = 10 * 1024 * 1024;
/// How often the timer looks at every list.
pub const TICK: Duration = Duration::from_secs(120);
/// How old the next archived post must be before a missing number is skipped.
pub const SETTLE_SECS: u64 = 600;
/// The most list folders the timer looks at.
const MAX_LISTS: usize = 100_000;

/// One digest at a time in this process.
static LOCK: Mutex<()> = Mutex::const_new(());

/// One number of a bundle's range.
#[derive(Debug)]
pub enum Entry {
    Post {
        number: u64,
        file: Arc<File>,
        size: u64,
        subject: String,
        from: String,
        mtime: u64,
    },
    /// Not in the archive.
    Missing(u64),
    /// Left out: it would make the bundle larger than `MAX_BUNDLE_BYTES`.
    TooLarge { number: u64, size: u64 },
}

/// The posts of a range, and how far the range was looked at.
#[derive(Debug, Default)]
pub struct Collected {
    pub entries: Vec<Entry>,
    /// The last number looked at (0 = none).
    pub through: u64,
    /// Whether the range was cut for the bundle's bounds.
    pub full: bool,
}

impl Collected {
    /// How many posts the bundle carries.
    pub fn found(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Post { .. }))
            .count()
    }

    fn oldest(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Post { mtime, .. } => Some(*mtime),
                _ => None,
            })
            .min()
    }
}

fn summary(file: &File) -> io::Result<(String, String)> {
    let (head, _) = header::read(file)?;
    let first = |name: &str| {
        header::values(&head, name)
            .into_iter()
            .next()
            .unwrap_or_default()
    };
    Ok((
        archive::clean(&first("Subject"), 200),
        archive::clean(&first("From"), 100),
    ))
}

fn entry(number: u64, f: File) -> io::Result<Entry> {
    let meta = f.metadata()?;
    let (subject, from) = summary(&f)?;
    Ok(Entry::Post {
        number,
        size: meta.len(),
        mtime: u64::try_from(meta.mtime()).unwrap_or(0),
        file: Arc::new(f),
        subject,
        from,
    })
}

/// For `get`: posts `from..=to` of the archive at `archive`, each found (`archive::open_post`),
/// missing, or left out for the size bound. `digest_now` is `None` here.
pub fn collect(
    archive: &Path,
    from: u64,
    to: u64,
    digest_now: Option<u64>,
) -> io::Result<Collected> {
    match digest_now {
        None => collect_get(archive, from, to),
        Some(now) => collect_digest(archive, from, to, now),
    }
}

fn collect_get(archive: &Path, from: u64, to: u64) -> io::Result<Collected> {
    let mut c = Collected::default();
    let mut bytes = 0u64;
    let mut budget = archive::SCAN_BUDGET;
    for n in from..=to.min(from.saturating_add(MAX_POSTS - 1)) {
        c.through = n;
        match archive::open_post(archive, n, &mut budget)? {
            None => c.entries.push(Entry::Missing(n)),
            Some(f) => {
                let e = entry(n, f)?;
                if let Entry::Post { size, .. } = e {
                    if bytes.saturating_add(size) > MAX_BUNDLE_BYTES {
                        c.full = true;
                        c.entries.push(Entry::TooLarge { number: n, size });
                        continue;
                    }
                    bytes += size;
                }
                c.entries.push(e);
            }
        }
    }
    Ok(c)
}

fn open_exact(archive: &Path, n: u64) -> io::Result<Option<File>> {
    match File::open(archive.join("cur").join(archive::post_name(n))) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// For a digest: from `from` on, in order, stopping at a missing number that has not settled,
/// at `MAX_POSTS`, or before the post that would pass `MAX_BUNDLE_BYTES` (a post larger than
/// that alone is listed as left out).
fn collect_digest(archive: &Path, from: u64, to: u64, now: u64) -> io::Result<Collected> {
    let mut c = Collected::default();
    let mut bytes = 0u64;
    let mut n = from;
    while n <= to {
        if c.entries.len() as u64 >= MAX_POSTS {
            c.full = true;
            break;
        }
        match open_exact(archive, n)? {
            Some(f) => {
                let e = entry(n, f)?;
                if let Entry::Post { size, .. } = e {
                    if bytes.saturating_add(size) > MAX_BUNDLE_BYTES {
                        c.full = true;
                        if bytes > 0 {
                            break;
                        }
                        c.entries.push(Entry::TooLarge { number: n, size });
                        c.through = n;
                        n += 1;
                        continue;
                    }
                    bytes += size;
                }
                c.entries.push(e);
            }
            None => {
                // Skipped only when a later post exists and is old enough that this one is not
                // merely still on its way.
                let mut settled = false;
                for later in n + 1..=to.min(n.saturating_add(MAX_POSTS)) {
                    if let Some(f) = open_exact(archive, later)? {
                        let mtime = u64::try_from(f.metadata()?.mtime()).unwrap_or(0);
                        settled = now.saturating_sub(mtime) >= SETTLE_SECS;
                        break;
                    }
                }
                if !settled {
                    break;
                }
                c.entries.push(Entry::Missing(n));
            }
        }
        c.through = n;
        n += 1;
    }
    Ok(c)
}

/// The table of contents, `\n` line ends. `get` = the list's (local part, domain) when posts
/// left out can be had with `list-get.N@`.
pub fn contents(c: &Collected, get: Option<(&str, &str)>) -> String {
    let mut t = String::new();
    for e in &c.entries {
        match e {
            Entry::Post {
                number,
                subject,
                from,
                ..
            } => t.push_str(&format!("{number:>6}  {subject}\n        {from}\n")),
            Entry::Missing(n) => t.push_str(&format!("{n:>6}  (not in the archive)\n")),
            Entry::TooLarge { number, size } => {
                t.push_str(&format!(
                    "{number:>6}  (left out: {size} bytes would make this message larger than \
                     {MAX_BUNDLE_BYTES} bytes"
                ));
                if let Some((local, domain)) = get {
                    t.push_str(&format!(
                        "; ask for it alone at <{local}-get.{number}@{domain}>"
                    ));
                }
                t.push_str(")\n");
            }
        }
    }
    t
}

/// The frame of a bundle.
pub struct Bundle<'a> {
    pub list: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    /// The text/plain first part, `\n` line ends.
    pub text: &'a str,
    /// Without the angle brackets.
    pub message_id: &'a str,
    /// An answer to a request (`Auto-Submitted: auto-replied`), or list traffic (a digest:
    /// `Precedence: list`).
    pub auto_replied: bool,
    /// The address of `List-Unsubscribe`.
    pub list_unsubscribe: &'a str,
}

impl Bundle<'_> {
    fn head(&self, boundary: &str, now: u64) -> String {
        let (local, domain) = self.list.rsplit_once('@').unwrap_or((self.list, ""));
        let mut h = String::new();
        let mut line = |l: String| {
            h.push_str(&l);
            h.push_str("\r\n");
        };
        line(format!("From: {}", self.from));
        line(format!("To: {}", self.to));
        line(format!("Subject: {}", self.subject));
        line(format!("Date: {}", date::rfc5322(now)));
        line(format!("Message-ID: <{}>", self.message_id));
        if self.auto_replied {
            line("Auto-Submitted: auto-replied".into());
        } else {
            line("Precedence: list".into());
        }
        line(format!("List-Id: <{local}.{domain}>"));
        line(format!("List-Help: <mailto:{local}-help@{domain}>"));
        line(format!(
            "List-Unsubscribe: <mailto:{}>",
            self.list_unsubscribe
        ));
        line(format!("List-Post: <mailto:{}>", self.list));
        line("MIME-Version: 1.0".into());
        line(format!(
            "Content-Type: multipart/digest; boundary=\"{boundary}\""
        ));
        line("Content-Transfer-Encoding: 8bit".into());
        line(String::new());
        h
    }
}

fn boundary() -> io::Result<String> {
    let mut bytes = [0u8; 12];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| io::Error::other("no random bytes for the MIME boundary"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("moat-digest-{hex}"))
}

/// Streams `file` into the injection.
async fn copy(injection: &mut Injection, file: &Arc<File>) -> io::Result<()> {
    let mut offset = 0u64;
    loop {
        let f = Arc::clone(file);
        let chunk = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
            let mut buf = vec![0u8; CHUNK];
            let n = loop {
                match f.read_at(&mut buf, offset) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other?,
                }
            };
            buf.truncate(n);
            Ok(buf)
        })
        .await
        .map_err(io::Error::other)??;
        if chunk.is_empty() {
            return Ok(());
        }
        offset += chunk.len() as u64;
        injection.write(&chunk).await?;
    }
}

/// Composes the bundle (the frame, the text part, each post as `message/rfc822`) and commits
/// it to the queue for `recipients` from `sender`.
pub async fn send_bundle(
    ctx: &Ctx,
    bundle: &Bundle<'_>,
    collected: &Collected,
    sender: &str,
    recipients: &[String],
    verp: bool,
) -> io::Result<Status> {
    let b = boundary()?;
    let mut injection =
        Injection::open(&ctx.queue_socket, Origin::Sendmail, "moat-lists digest").await?;
    if verp {
        injection.set_verp();
    }
    injection
        .write(bundle.head(&b, date::now()).as_bytes())
        .await?;
    let mut text = format!(
        "This is a MIME digest of {}.\r\n\r\n--{b}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n",
        bundle.list
    );
    for l in bundle.text.lines() {
        text.push_str(l);
        text.push_str("\r\n");
    }
    injection.write(text.as_bytes()).await?;
    for e in &collected.entries {
        if let Entry::Post { file, .. } = e {
            injection
                .write(format!("\r\n--{b}\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes())
                .await?;
            copy(&mut injection, file).await?;
        }
    }
    injection
        .write(format!("\r\n--{b}--\r\n").as_bytes())
        .await?;
    injection.finish(sender, recipients).await
}

/// Lists waiting for the check after a post (`wake`), each with the queue id of its last post.
static WOKEN: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
/// Tells `timer` that `WOKEN` has lists.
static WAKE: Notify = Notify::const_new();
/// The most lists waiting in `WOKEN`; past it the `TICK` check catches the rest.
const MAX_WOKEN: usize = 1_000;

/// After post `qid` was archived: `timer` checks `list` for a digest soon, outside the post's
/// request (its `K` never waits on `LOCK` or on sending a digest).
pub fn wake(list: &str, qid: &str) {
    {
        let mut woken = WOKEN.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = woken.iter_mut().find(|(l, _)| l == list) {
            entry.1 = qid.to_string();
        } else if woken.len() < MAX_WOKEN {
            woken.push((list.to_string(), qid.to_string()));
        }
    }
    WAKE.notify_one();
}

/// After post `qid` was archived: a digest, if enough posts wait.
pub async fn after_post(ctx: &Ctx, list: &str, qid: &str) {
    let _one = LOCK.lock().await;
    match ctx.store.get(list).await {
        Ok(Ok(info)) if info.digest => check(ctx, list, &info, Some(qid)).await,
        Ok(Ok(_)) => {}
        Ok(Err(s)) => {
            log(
                Level::Warn,
                Some(qid),
                format_args!("list=<{list}> digest: moat-auth said {s:?}"),
            );
        }
        Err(e) => log(
            Level::Warn,
            Some(qid),
            format_args!("list=<{list}> digest: moat-auth: {e}"),
        ),
    }
}

/// Every `TICK`: each list folder under `data_dir` whose list has digests on gets its digest
/// when one is due. Runs until the task is dropped.
pub async fn timer(ctx: &Ctx) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick of an interval is at once: the first full check waits a `TICK`.
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = WAKE.notified() => {
                let woken = std::mem::take(&mut *WOKEN.lock().unwrap_or_else(|p| p.into_inner()));
                for (list, qid) in woken {
                    after_post(ctx, &list, &qid).await;
                }
                continue;
            }
        }
        let dir = ctx.data_dir.clone();
        let lists = tokio::task::spawn_blocking(move || list_folders(&dir)).await;
        let lists = match lists {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                log(
                    Level::Warn,
                    None,
                    format_args!("digest timer: cannot read {}: {e}", ctx.data_dir.display()),
                );
                continue;
            }
            Err(e) => {
                log(Level::Warn, None, format_args!("digest timer: {e}"));
                continue;
            }
        };
        for list in lists {
            let _one = LOCK.lock().await;
            match ctx.store.get(&list).await {
                Ok(Ok(info)) if info.digest => check(ctx, &list, &info, None).await,
                Ok(Ok(_)) => {}
                Ok(Err(Status::Permanent(t))) if t == NO_SUCH_LIST => {}
                Ok(Err(s)) => log(
                    Level::Warn,
                    None,
                    format_args!("list=<{list}> digest timer: moat-auth said {s:?}"),
                ),
                Err(e) => log(
                    Level::Warn,
                    None,
                    format_args!("list=<{list}> digest timer: moat-auth: {e}"),
                ),
            }
        }
    }
}

/// The folders under `data_dir` named like a list address that hold an archive.
fn list_folders(data_dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data_dir)?.take(MAX_LISTS) {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.contains('@') && !name.starts_with('.') && entry.path().join("archive").is_dir() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Sends `list`'s digest if one is due (called under `LOCK`, with the list's settings just
/// read). `qid`: the post that triggered it, for the log.
async fn check(ctx: &Ctx, list: &str, info: &ListInfo, qid: Option<&str>) {
    let Some(archive) = archive::archive_dir(ctx, list) else {
        return;
    };
    let last = info.next_post.saturating_sub(1);
    if last <= info.digested_through {
        return;
    }
    let now = date::now();
    let from = info.digested_through + 1;
    let collected =
        tokio::task::spawn_blocking(move || collect(&archive, from, last, Some(now))).await;
    let collected = match collected.map_err(io::Error::other).and_then(|r| r) {
        Ok(c) => c,
        Err(e) => {
            log(
                Level::Warn,
                qid,
                format_args!("list=<{list}> digest: cannot read the archive: {e}"),
            );
            return;
        }
    };
    let found = collected.found() as u64;
    if found == 0 {
        return;
    }
    let since = info.last_digest_at.or(collected.oldest()).unwrap_or(now);
    let due = collected.full
        || found >= u64::from(ctx.policy.digest_posts)
        || now.saturating_sub(since) >= ctx.policy.digest_interval_secs;
    if due {
        send(ctx, list, info, &collected, now, qid).await;
    }
}

async fn send(
    ctx: &Ctx,
    list: &str,
    info: &ListInfo,
    collected: &Collected,
    now: u64,
    qid: Option<&str>,
) {
    let (local, domain) = list.rsplit_once('@').unwrap_or((list, ""));
    let number = info.next_digest;
    let through = collected.through;
    let members = match ctx.store.members(list, Roster::Digest).await {
        Ok(Ok(m)) => m,
        Ok(Err(s)) => {
            log(
                Level::Warn,
                qid,
                format_args!("list=<{list}> digest {number}: moat-auth said {s:?}"),
            );
            return;
        }
        Err(e) => {
            log(
                Level::Warn,
                qid,
                format_args!("list=<{list}> digest {number}: moat-auth: {e}"),
            );
            return;
        }
    };
    let mut ids = Vec::new();
    if !members.is_empty() {
        let first = info.digested_through + 1;
        let mut text = format!(
            "Digest {number} of <{list}>, posts {first} to {through}:\n\n{}",
            contents(collected, info.archive.then_some((local, domain)))
        );
        text.push_str(&format!(
            "\nTo post, write to <{list}>. To leave the digest, write to \
             <{local}-digest-unsubscribe@{domain}>.\n"
        ));
        let subject = format!("{local} digest {number}");
        let message_id = format!("{now}.digest{number}.{local}@{}", ctx.hostname);
        let unsubscribe = format!("{local}-digest-unsubscribe@{domain}");
        let from = format!("{local}-help@{domain}");
        let bundle = Bundle {
            list,
            from: &from,
            to: list,
            subject: &subject,
            text: &text,
            message_id: &message_id,
            auto_replied: false,
            list_unsubscribe: &unsubscribe,
        };
        let sender = format!("{local}-return-d{number}@{domain}");
        // One injection for the whole roster: queued whole or not at all, so a failure never
        // leaves part of the roster with a digest that is sent again.
        if members.len() > MAX_BULK_RECIPIENTS {
            log(
                Level::Warn,
                qid,
                format_args!(
                    "list=<{list}> digest {number}: {} digest members, one digest reaches at \
                     most {MAX_BULK_RECIPIENTS}",
                    members.len()
                ),
            );
            return;
        }
        match send_bundle(ctx, &bundle, collected, &sender, &members, true).await {
            Ok(Status::Ok(id)) => ids.push(id),
            Ok(Status::Permanent(why) | Status::Temporary(why)) => {
                log(
                    Level::Warn,
                    qid,
                    format_args!("list=<{list}> digest {number}: the queue refused it: {why}"),
                );
                return;
            }
            Err(e) => {
                log(
                    Level::Warn,
                    qid,
                    format_args!("list=<{list}> digest {number}: the queue: {e}"),
                );
                return;
            }
        }
    }
    let id = ids.first().map(String::as_str).or(qid);
    match ctx.store.record_digest(list, through, now).await {
        Ok(Ok(n)) => log(
            Level::Info,
            id,
            format_args!(
                "list=<{list}> digest {n} (posts {} to {through}, {} post(s)) sent to {} digest \
                 member(s) as {}",
                info.digested_through + 1,
                collected.found(),
                members.len(),
                if ids.is_empty() {
                    "nothing".to_string()
                } else {
                    ids.join(",")
                }
            ),
        ),
        Ok(Err(s)) => log(
            Level::Warn,
            id,
            format_args!("list=<{list}> digest {number} queued but not recorded: {s:?}"),
        ),
        Err(e) => log(
            Level::Warn,
            id,
            format_args!("list=<{list}> digest {number} queued but not recorded: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(archive: &Path, n: u64, body: &str) {
        let cur = archive.join("cur");
        std::fs::create_dir_all(&cur).expect("mkdir");
        std::fs::write(
            cur.join(archive::post_name(n)),
            format!("From: a@b\r\nSubject: post {n}\r\n\r\n{body}\r\n"),
        )
        .expect("write");
    }

    #[test]
    fn digest_range_stops_at_a_fresh_gap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path();
        store(a, 1, "one");
        store(a, 2, "two");
        store(a, 4, "four");
        let now = date::now();
        let c = collect(a, 1, 4, Some(now)).expect("collect");
        assert_eq!(c.found(), 2);
        assert_eq!(c.through, 2);
        // Long after, the gap is skipped with a note.
        let c = collect(a, 1, 4, Some(now + SETTLE_SECS + 5)).expect("collect");
        assert_eq!(c.found(), 3);
        assert_eq!(c.through, 4);
        let toc = contents(&c, Some(("dev", "x.test")));
        assert!(toc.contains("     3  (not in the archive)"), "{toc}");
        assert!(toc.contains("     4  post 4\n        a@b\n"), "{toc}");
        let g = collect(a, 2, 5, None).expect("get");
        assert_eq!(g.found(), 2);
        assert_eq!(g.through, 5);
    }

    #[test]
    fn frame_has_the_boundary_and_list_headers() {
        let b = Bundle {
            list: "dev@x.test",
            from: "dev-help@x.test",
            to: "dev@x.test",
            subject: "dev digest 1",
            text: "",
            message_id: "1.d@h",
            auto_replied: false,
            list_unsubscribe: "dev-digest-unsubscribe@x.test",
        };
        let h = b.head("BND", 0);
        assert!(h.contains("Content-Type: multipart/digest; boundary=\"BND\"\r\n"));
        assert!(h.contains("List-Unsubscribe: <mailto:dev-digest-unsubscribe@x.test>\r\n"));
        assert!(h.ends_with("\r\n\r\n"));
        let x = boundary().expect("random");
        assert_eq!(x.len(), "moat-digest-".len() + 24);
    }
}
