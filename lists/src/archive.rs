//! The archive: every numbered post of a list with `archive` or `digest` on, stored as
//! distributed (the list's header + the body) in a Maildir of moat-lists' own, so an admin can
//! open it with any mail client, and the answers to `list-get.N[_M]@` and `list-index@`.
//!
//! Layout (docs/LISTS.md, "Archive"): `<data_dir>/<list@domain>/archive/{tmp,new,cur}`, post N
//! in `cur/<N, 10 digits>.post:2,S` (seen: a mail client opening it has nothing to rename), so
//! `get.N` opens it by name; a renamed file (flags changed by a client) is found by a bounded
//! look at `cur/`. `<data_dir>/<list@domain>/index` has one line per archived post: `N TAB
//! unix-time TAB from TAB subject`, appended.
//!
//! SECURITY: the post is hostile: it is copied, never parsed beyond the bounded header read;
//! index fields are cut to a bound and have every control character (tabs, line ends) replaced,
//! so one post is one line. A post is written to `tmp/`, fsynced, renamed into `cur/` and `cur/`
//! fsynced: a crash leaves the whole post or none. A list address that could leave `data_dir`
//! as a path (`/`, a leading `.`) gets no folder. Archive access on a members-only list is for
//! members (either roster) only.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use moat_common::client::list_store::{ListInfo, Roster};
use moat_common::client::queue::CHUNK;
use moat_common::wire::Status;
use moat_common::{date, info, warn};

use crate::context::{self, Ctx, store_result};
use crate::digest::{self, Bundle};
use crate::footer::Piece;
use crate::header;
use crate::reply::Reply;
use crate::request::Request;

/// Posts one `get` answers at most.
pub const MAX_GET: u64 = 20;
/// Index lines `list-index@` answers with (the newest).
pub const INDEX_LINES: usize = 100;
/// The most of the index file read for `list-index@` (its tail).
const INDEX_TAIL_BYTES: u64 = 64 * 1024;
/// Bounds of the index fields (characters).
const MAX_FROM: usize = 100;
const MAX_SUBJECT: usize = 200;
/// How many names of `cur/` are looked at for a post renamed by a mail client.
const MAX_SCAN: usize = 100_000;
/// The most directory entries one `get` looks at in all when posts are not under their
/// expected name (`open_post`'s fallback), however many numbers it asks for.
pub const SCAN_BUDGET: usize = 20_000;
/// The most archive answers (`get`, `index`, and their refusals) one sender gets from one list
/// per `throttle::WINDOW_SECS`: a forged sender cannot make the list mail an address without end.
pub const MAX_ANSWERS: u32 = 5;

/// `<data_dir>/<list>/`, or `None` for a list address that is no safe file name.
pub fn list_dir(ctx: &Ctx, list: &str) -> Option<PathBuf> {
    crate::context::list_folder(&ctx.data_dir, list).ok()
}

/// The archive Maildir of `list`.
pub fn archive_dir(ctx: &Ctx, list: &str) -> Option<PathBuf> {
    list_dir(ctx, list).map(|d| d.join("archive"))
}

/// Post `n`'s file name in `cur/`.
pub fn post_name(n: u64) -> String {
    format!("{n:010}.post:2,S")
}

/// Stores post `number` (the header `head` and the body `body` exactly as injected: the body's
/// pieces from `footer.rs`, the poster's bytes read from `file`) when the list keeps an archive
/// or digests, appends its index line, then sends a digest if
/// enough posts wait. Failures are logged: the post is already queued.
pub async fn store(
    ctx: &Ctx,
    req: &Request,
    info: &ListInfo,
    number: u64,
    head: &[u8],
    file: &Arc<File>,
    body: &[Piece],
) {
    let qid = req.queue_id.as_str();
    if !info.archive && !info.digest {
        return;
    }
    let Some(dir) = list_dir(ctx, &req.list) else {
        warn!(id = qid; "list=<{}> post {number}: not archived: the list address is no safe \
            folder name", req.list);
        return;
    };
    let line = index_line(number, date::now(), head);
    let head = head.to_vec();
    let file = Arc::clone(file);
    let body = body.to_vec();
    let stored = tokio::task::spawn_blocking(move || -> io::Result<u64> {
        let size = write_post(&dir.join("archive"), number, &head, &file, &body)?;
        append_index(&dir.join("index"), &line)?;
        Ok(size)
    })
    .await
    .map_err(io::Error::other)
    .and_then(|r| r);
    match stored {
        Ok(size) => {
            info!(id = qid; "list=<{}> post {number} archived ({size} bytes)", req.list);
        }
        Err(e) => {
            warn!(id = qid; "list=<{}> post {number}: not archived: {e}", req.list);
            return;
        }
    }
    if info.digest {
        digest::wake(&req.list, qid);
    }
}

fn mkdir_0700(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Writes the post into `archive/tmp/`, fsyncs it, renames it into `cur/` and fsyncs `cur/`.
/// Returns its size.
fn write_post(archive: &Path, n: u64, head: &[u8], file: &File, body: &[Piece]) -> io::Result<u64> {
    for sub in ["tmp", "new", "cur"] {
        mkdir_0700(&archive.join(sub))?;
    }
    let tmp = archive
        .join("tmp")
        .join(format!("{n:010}.{}.post", std::process::id()));
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        out.write_all(head)?;
        out.write_all(b"\r\n")?;
        let mut size = head.len() as u64 + 2;
        let mut buf = vec![0u8; CHUNK];
        for piece in body {
            let (mut offset, to) = match piece {
                Piece::Bytes(b) => {
                    out.write_all(b)?;
                    size += b.len() as u64;
                    continue;
                }
                Piece::File { from, to } => (*from, *to),
            };
            while offset < to {
                let want = usize::try_from(to - offset).unwrap_or(CHUNK).min(CHUNK);
                let got = match file.read_at(&mut buf[..want], offset) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => other?,
                };
                if got == 0 {
                    break;
                }
                out.write_all(&buf[..got])?;
                offset += got as u64;
                size += got as u64;
            }
        }
        out.sync_all()?;
        drop(out);
        let cur = archive.join("cur");
        fs::rename(&tmp, cur.join(post_name(n)))?;
        File::open(&cur)?.sync_all()?;
        Ok(size)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `text` with every control character replaced by a blank, trimmed, cut to `max` characters.
pub(crate) fn clean(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    cleaned.trim().to_string()
}

/// The index line for post `n` with header `head`, archived at `at`.
fn index_line(n: u64, at: u64, head: &[u8]) -> String {
    let first = |name: &str| {
        header::values(head, name)
            .into_iter()
            .next()
            .unwrap_or_default()
    };
    format!(
        "{n}\t{at}\t{}\t{}\n",
        clean(&first("From"), MAX_FROM),
        clean(&first("Subject"), MAX_SUBJECT)
    )
}

/// Appends one line (one write, `O_APPEND`: concurrent posts do not mix their lines).
fn append_index(path: &Path, line: &str) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// One parsed index line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexLine {
    pub number: u64,
    pub at: u64,
    pub from: String,
    pub subject: String,
}

fn parse_index_line(line: &str) -> Option<IndexLine> {
    let mut f = line.splitn(4, '\t');
    Some(IndexLine {
        number: f.next()?.parse().ok()?,
        at: f.next()?.parse().ok()?,
        from: clean(f.next()?, MAX_FROM),
        subject: clean(f.next()?, MAX_SUBJECT),
    })
}

/// The newest `max` lines of the index (read from its last `INDEX_TAIL_BYTES`).
fn read_index_tail(path: &Path, max: usize) -> io::Result<Vec<IndexLine>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let start = len.saturating_sub(INDEX_TAIL_BYTES);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(INDEX_TAIL_BYTES).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.split('\n').collect();
    // A partial first line (the tail started inside it) and the empty piece after the last
    // line end are not lines.
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let parsed: Vec<IndexLine> = lines.into_iter().filter_map(parse_index_line).collect();
    let skip = parsed.len().saturating_sub(max);
    Ok(parsed.into_iter().skip(skip).collect())
}

/// Opens archived post `n` of the archive at `archive`: by its name, else (a mail client changed
/// its flags) the first `cur/` or `new/` name that starts with `<n>.post:`. `None` when absent.
/// The fallback scan looks at no more than `budget` entries, and takes what it looked at from
/// it; with the budget spent a post not under its name is taken as absent.
pub fn open_post(archive: &Path, n: u64, budget: &mut usize) -> io::Result<Option<File>> {
    match File::open(archive.join("cur").join(post_name(n))) {
        Ok(f) => return Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let prefix = format!("{n:010}.post");
    for sub in ["cur", "new"] {
        let entries = match fs::read_dir(archive.join(sub)) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries.take(MAX_SCAN) {
            if *budget == 0 {
                return Ok(None);
            }
            *budget -= 1;
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let f = File::open(entry.path())?;
                if f.metadata()?.is_file() {
                    return Ok(Some(f));
                }
            }
        }
    }
    Ok(None)
}

/// Whether the sender may read the archive: anyone, unless the list is members-only; then
/// members of either roster.
async fn may_read(ctx: &Ctx, req: &Request, info: &ListInfo) -> Result<bool, Status> {
    if !info.members_only {
        return Ok(true);
    }
    for roster in [Roster::Member, Roster::Digest] {
        let answer = ctx.store.is_member(&req.list, &req.sender, roster).await;
        if store_result(req, "membership", answer)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A plain answer from `list-help@` to the sender.
async fn notice(ctx: &Ctx, req: &Request, what: &str, subject: &str, body: &str) -> Status {
    let (local, domain) = req.list_parts();
    let from = format!("{local}-help@{domain}");
    let reply = Reply {
        list: &req.list,
        from: &from,
        to: &req.sender,
        reply_to: None,
        subject,
        body,
        queue_id: &req.queue_id,
        hostname: &ctx.hostname,
    };
    context::queued(req, what, &req.sender, reply.send(&ctx.queue_socket).await)
}

/// The throttle key of archive answers for the request's list (its own, so it never uses up a
/// confirmation's hour).
fn answers_key(req: &Request) -> String {
    format!("archive {}", req.list)
}

/// An answer that was not queued gives its use of the hourly allowance back, so the queue's
/// retry is answered.
fn give_back(ctx: &Ctx, req: &Request, status: Status) -> Status {
    if !matches!(status, Status::Ok(_)) {
        ctx.throttle.undo(&answers_key(req), &req.sender);
    }
    status
}

/// The checks `get` and `index` share: the screen, the list, archive on, the reader allowed.
/// `Ok(info)` to go on; `Err(verdict)` when answered already.
async fn open_for_reading(
    ctx: &Ctx,
    req: &Request,
    file: Arc<File>,
    what: &str,
) -> Result<ListInfo, Status> {
    let qid = req.queue_id.as_str();
    context::screen(req, what, file).await?;
    let info = ctx.list(req).await?;
    if !ctx
        .throttle
        .allow_up_to(&answers_key(req), &req.sender, date::now(), MAX_ANSWERS)
    {
        info!(id = qid; "list=<{}> {what} from=<{}>: not answered ({MAX_ANSWERS} archive \
            answers already sent within the hour)", req.list, req.sender);
        return Err(Status::Ok("archive answers used up for the hour".into()));
    }
    readable(ctx, req, info, what)
        .await
        .map_err(|verdict| give_back(ctx, req, verdict))
}

/// Archive on and the reader allowed: `Ok(info)`, else the answer (a notice) already sent.
async fn readable(
    ctx: &Ctx,
    req: &Request,
    info: ListInfo,
    what: &str,
) -> Result<ListInfo, Status> {
    let qid = req.queue_id.as_str();
    let subject = format!("{what} for {}", req.list);
    if !info.archive {
        info!(id = qid; "list=<{}> {what} from=<{}>: the list keeps no archive", req.list,
            req.sender);
        let body = format!("The list <{}> keeps no archive.\n", req.list);
        return Err(notice(ctx, req, what, &subject, &body).await);
    }
    if !may_read(ctx, req, &info).await? {
        info!(id = qid; "list=<{}> {what} from=<{}>: refused: not a member of a members-only \
            list", req.list, req.sender);
        let body = format!(
            "Only members may read the archive of <{}>, and <{}> is not one.\n",
            req.list, req.sender
        );
        return Err(notice(ctx, req, what, &subject, &body).await);
    }
    Ok(info)
}

/// `list-get.N@` / `list-get.N_M@`: posts N..=M (at most `MAX_GET`, at most
/// `digest::MAX_BUNDLE_BYTES` of them) as one multipart/digest to the sender.
pub async fn get(ctx: &Ctx, req: &Request, file: Arc<File>, from: u64, to: Option<u64>) -> Status {
    let info = match open_for_reading(ctx, req, file, "get").await {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    give_back(ctx, req, get_answer(ctx, req, &info, from, to).await)
}

/// `get` once its checks passed.
async fn get_answer(
    ctx: &Ctx,
    req: &Request,
    info: &ListInfo,
    from: u64,
    to: Option<u64>,
) -> Status {
    let qid = req.queue_id.as_str();
    let Some(archive) = archive_dir(ctx, &req.list) else {
        return Status::Ok("no archive folder".into());
    };
    let asked_to = to.unwrap_or(from);
    let last = asked_to.min(from.saturating_add(MAX_GET - 1));
    // Numbers past the newest post are not looked for (no file, no look at `cur/`).
    let newest = info.next_post.saturating_sub(1);
    let upto = last.min(newest);
    let collected = {
        let archive = archive.clone();
        tokio::task::spawn_blocking(move || digest::collect(&archive, from, upto, None))
            .await
            .map_err(io::Error::other)
            .and_then(|r| r)
    };
    let collected = match collected {
        Ok(c) => c,
        Err(e) => {
            warn!(id = qid; "list=<{}> get.{from}: cannot read the archive: {e}", req.list);
            return Status::Temporary("4.3.0 cannot read the archive".into());
        }
    };
    let (local, domain) = req.list_parts();
    let mut text = if from == asked_to {
        format!("Post {from} of <{}>:\n\n", req.list)
    } else {
        format!("Posts {from} to {asked_to} of <{}>:\n\n", req.list)
    };
    text.push_str(&digest::contents(&collected, Some((local, domain))));
    if last < asked_to && last < newest {
        text.push_str(&format!(
            "\nAt most {MAX_GET} posts go in one answer: posts {} to {asked_to} were not \
             sent. Ask for them with <{local}-get.{}_{asked_to}@{domain}>.\n",
            last + 1,
            last + 1
        ));
    }
    if newest < asked_to {
        text.push_str(&format!(
            "\nThe newest post of the list is number {newest}.\n"
        ));
    }
    let subject = if from == last {
        format!("{local} archive: post {from}")
    } else {
        format!("{local} archive: posts {from} to {last}")
    };
    let from_addr = format!("{local}-help@{domain}");
    let bundle = Bundle {
        list: &req.list,
        from: &from_addr,
        to: &req.sender,
        subject: &subject,
        text: &text,
        message_id: &format!("{}.{}.get.lists@{}", date::now(), qid, ctx.hostname),
        auto_replied: true,
        list_unsubscribe: &format!("{local}-unsubscribe@{domain}"),
    };
    let result = digest::send_bundle(
        ctx,
        &bundle,
        &collected,
        &format!("{local}-return@{domain}"),
        std::slice::from_ref(&req.sender),
        false,
    )
    .await;
    let what = format!("get.{from}_{last} ({} post(s))", collected.found());
    context::queued(req, &what, &req.sender, result)
}

/// `list-index@`: the newest `INDEX_LINES` lines of the index, to the sender.
pub async fn index(ctx: &Ctx, req: &Request, file: Arc<File>) -> Status {
    if let Err(verdict) = open_for_reading(ctx, req, file, "index").await {
        return verdict;
    }
    give_back(ctx, req, index_answer(ctx, req).await)
}

/// `index` once its checks passed.
async fn index_answer(ctx: &Ctx, req: &Request) -> Status {
    let qid = req.queue_id.as_str();
    let Some(dir) = list_dir(ctx, &req.list) else {
        return Status::Ok("no archive folder".into());
    };
    let lines =
        tokio::task::spawn_blocking(move || read_index_tail(&dir.join("index"), INDEX_LINES))
            .await
            .map_err(io::Error::other)
            .and_then(|r| r);
    let lines = match lines {
        Ok(l) => l,
        Err(e) => {
            warn!(id = qid; "list=<{}> index: cannot read it: {e}", req.list);
            return Status::Temporary("4.3.0 cannot read the archive index".into());
        }
    };
    let (local, domain) = req.list_parts();
    let mut body = if lines.is_empty() {
        format!("The archive of <{}> is empty.\n", req.list)
    } else {
        format!(
            "The newest {} post(s) in the archive of <{}>:\n\n",
            lines.len(),
            req.list
        )
    };
    for l in &lines {
        body.push_str(&format!(
            "{:>6}  {}  {}\n        {}\n",
            l.number,
            date::iso_utc(l.at),
            l.from,
            l.subject
        ));
    }
    body.push_str(&format!(
        "\nGet post N with an empty message to <{local}-get.N@{domain}>, posts N to M with \
         <{local}-get.N_M@{domain}> (at most {MAX_GET} at once).\n"
    ));
    let subject = format!("{local} archive index");
    notice(ctx, req, "index", &subject, &body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lines_are_one_line_and_bounded() {
        let head = b"From: Eve <e@x>\r\nSubject: a\tb\r\n\x1b[31m c\r\n";
        let line = index_line(3, 77, head);
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert_eq!(line.matches('\t').count(), 3, "{line:?}");
        let parsed = parse_index_line(line.trim_end_matches('\n')).expect("parsed");
        assert_eq!(parsed.number, 3);
        assert_eq!(parsed.at, 77);
        assert_eq!(parsed.from, "Eve <e@x>");
        assert!(!parsed.subject.contains('\x1b'));
        let long = format!("Subject: {}\r\n", "x".repeat(5000));
        let line = index_line(4, 1, long.as_bytes());
        assert!(line.len() < MAX_SUBJECT + 40);
    }

    #[test]
    fn posts_are_stored_found_and_indexed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let msg = dir.path().join("m");
        fs::write(&msg, b"Subject: hi\r\n\r\nbody\r\n").expect("write");
        let f = File::open(&msg).expect("open");
        let archive = dir.path().join("l@x").join("archive");
        let body = [
            Piece::File { from: 15, to: 21 },
            Piece::Bytes(b"--\r\nfooter\r\n".to_vec()),
        ];
        let size = write_post(&archive, 7, b"Subject: [l] hi\r\n", &f, &body).expect("store");
        let stored = fs::read(archive.join("cur").join(post_name(7))).expect("read");
        assert_eq!(stored, b"Subject: [l] hi\r\n\r\nbody\r\n--\r\nfooter\r\n");
        assert_eq!(size, stored.len() as u64);
        assert!(archive.join("new").is_dir() && archive.join("tmp").is_dir());
        let mut budget = SCAN_BUDGET;
        assert!(open_post(&archive, 7, &mut budget).expect("open").is_some());
        // Found by its name: nothing scanned.
        assert_eq!(budget, SCAN_BUDGET);
        assert!(open_post(&archive, 8, &mut budget).expect("open").is_none());
        // A mail client marked it answered: still found.
        fs::rename(
            archive.join("cur").join(post_name(7)),
            archive.join("cur").join("0000000007.post:2,RS"),
        )
        .expect("rename");
        let mut budget = SCAN_BUDGET;
        assert!(open_post(&archive, 7, &mut budget).expect("open").is_some());
        assert!(budget < SCAN_BUDGET);
        // With the budget spent, a post not under its name is not looked for.
        let mut spent = 0;
        assert!(open_post(&archive, 7, &mut spent).expect("open").is_none());
        let index = dir.path().join("index");
        for n in 1..=150 {
            append_index(&index, &index_line(n, n, b"Subject: s\r\n")).expect("append");
        }
        let tail = read_index_tail(&index, INDEX_LINES).expect("tail");
        assert_eq!(tail.len(), INDEX_LINES);
        assert_eq!(tail.last().map(|l| l.number), Some(150));
        assert_eq!(tail.first().map(|l| l.number), Some(51));
    }
}
