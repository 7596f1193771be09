//! Moderated lists (ezmlm's `ezmlm-store`/`ezmlm-moderate`): a post to a `moderated` list from
//! anyone not on its moderator roster is held (`held.rs`), every moderator is mailed a request
//! naming `list-accept-ID@` (its Reply-To) and `list-reject-ID@`, with the post attached, and
//! the poster gets a short "awaits moderation" note (at most one per list and hour).
//! `list-accept-ID@` from a moderator sends the held post through the normal post pipeline
//! (`post::send_post`) and removes it only once it is queued; `list-reject-ID@` removes it and
//! tells the poster.
//!
//! SECURITY: the ID is the capability (64 random bits, as ezmlm's cookie in the address), and
//! the envelope sender must be on the moderator roster as well; anything else is logged and
//! answered `K` with nothing changed. A verdict mailed by a robot (the null sender,
//! `Auto-Submitted`, `Precedence: bulk`: a moderator's vacation reply to the request's
//! Reply-To) is ignored. The subject quoted in the request has its control characters removed
//! and is cut to `MAX_SUBJECT` characters; the attached post is cut to `MAX_ATTACH` bytes. One
//! verdict per held post at a time (`Busy`): a second one waits (`Z`) and then finds the post
//! gone. A crash between queueing an accepted post and removing it leaves it held: it may be
//! accepted twice, never lost.

use std::collections::HashSet;
use std::fs::File;
use std::sync::{Arc, Mutex};

use moat_common::client::list_store::{ListInfo, Roster};
use moat_common::client::queue::{Injection, MAX_BULK_RECIPIENTS, Origin};
use moat_common::wire::Status;
use moat_common::{date, info, warn};

use crate::context::{self, Ctx, store_result};
use crate::header;
use crate::held::{self, Meta};
use crate::post;
use crate::replay;
use crate::reply::Reply;
use crate::request::Request;

/// The most of the held post attached to a moderation request.
pub const MAX_ATTACH: usize = 64 * 1024;
/// The most characters of the post's subject quoted in the request's subject.
const MAX_SUBJECT: usize = 200;

/// The held posts a verdict is being carried out for, as "list/ID".
static BUSY: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// A held post claimed for one verdict; released when dropped.
struct Busy(String);

impl Busy {
    fn take(list: &str, id: &str) -> Option<Busy> {
        let key = format!("{list}/{id}");
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        // `then`, not `then_some`: a `Busy` made and dropped here would lock `BUSY` again.
        let free = busy.get_or_insert_with(HashSet::new).insert(key.clone());
        drop(busy);
        free.then(|| Busy(key))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = busy.as_mut() {
            set.remove(&self.0);
        }
    }
}

/// The post's subject, one line, no controls, at most `MAX_SUBJECT` characters.
fn subject_of(head: &[u8]) -> String {
    let subject = header::values(head, "Subject")
        .into_iter()
        .next()
        .unwrap_or_default();
    let clean: String = subject.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.chars().count() > MAX_SUBJECT {
        let cut: String = clean.chars().take(MAX_SUBJECT).collect();
        format!("{cut}...")
    } else if clean.is_empty() {
        "(no subject)".to_string()
    } else {
        clean.to_string()
    }
}

/// Called by `post::distribute` for a moderated list once the post passed the checks: `None`
/// when the poster is a moderator (the post goes on), else the verdict after holding it.
pub async fn hold(
    ctx: &Ctx,
    req: &Request,
    info: &ListInfo,
    head: &[u8],
    file: &Arc<File>,
    body_at: u64,
) -> Option<Status> {
    let qid = req.queue_id.as_str();
    let answer = ctx
        .store
        .is_member(&req.list, &req.sender, Roster::Moderator)
        .await;
    match store_result(req, "moderators", answer) {
        Ok(true) => return None,
        Ok(false) => {}
        Err(verdict) => return Some(verdict),
    }
    let answer = ctx.store.members(&req.list, Roster::Moderator).await;
    let moderators = match store_result(req, "moderators", answer) {
        Ok(m) => m,
        Err(verdict) => return Some(verdict),
    };
    let now = date::now();
    let meta = Meta {
        sender: req.sender.clone(),
        held_at: now,
        head_len: head.len() as u64,
        body_at,
    };
    let (data_dir, list, src) = (ctx.data_dir.clone(), req.list.clone(), Arc::clone(file));
    let stored = tokio::task::spawn_blocking(move || -> std::io::Result<(String, Vec<u8>)> {
        if held::count(&data_dir, &list)? >= held::MAX_HELD {
            return Err(std::io::Error::other(format!(
                "{} posts already held: the post waits in the queue",
                held::MAX_HELD
            )));
        }
        let id = held::store(&data_dir, &list, &src, &meta)?;
        // One byte more than attached tells whether it was cut.
        let start = crate::header::read_at(&src, 0, MAX_ATTACH + 1)?;
        Ok((id, start))
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    let (id, start) = match stored {
        Ok(v) => v,
        Err(e) => {
            warn!(id = qid; "list=<{}> post from=<{}>: cannot hold it: {e}", req.list,
                req.sender);
            return Some(Status::Temporary("4.3.0 cannot hold the post".into()));
        }
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    info!(id = qid; "list=<{}> post from=<{}>: held as {id} for moderation ({} moderator(s))",
        req.list, req.sender, moderators.len());
    if moderators.is_empty() {
        warn!(id = qid; "list=<{}>: the list is moderated but has no moderators: held post \
            {id} can only expire (add one with `moat list add {} ADDRESS --moderator`)",
            req.list, req.list);
    } else {
        let request = compose_request(
            req,
            &id,
            head,
            &start,
            size,
            now,
            &ctx.hostname,
            ctx.policy.held_expiry_secs,
            info.owner.is_some(),
        );
        let (local, domain) = req.list_parts();
        let sender = format!("{local}-return@{domain}");
        // One injection for every moderator (the queue takes a whole roster from moat-lists),
        // so a failure cannot leave some moderators asked twice on the retry.
        for batch in moderators.chunks(MAX_BULK_RECIPIENTS) {
            let queued = send_raw(ctx, &request, &sender, batch).await;
            let failed = match queued {
                Ok(Status::Ok(new_id)) => {
                    info!(id = qid; "list=<{}> moderation request for {id} sent to {} \
                        moderator(s) as {new_id}", req.list, batch.len());
                    None
                }
                Ok(Status::Permanent(why) | Status::Temporary(why)) => Some(why),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = failed {
                // Without a request nobody can accept it: unhold, and let the queue retry the
                // whole post (a moderator already asked finds the ID gone).
                warn!(id = qid; "list=<{}> moderation request for {id}: the queue: {why}",
                    req.list);
                let (data_dir, list, held_id) =
                    (ctx.data_dir.clone(), req.list.clone(), id.clone());
                let _ =
                    tokio::task::spawn_blocking(move || held::remove(&data_dir, &list, &held_id))
                        .await;
                return Some(Status::Temporary("4.3.0 cannot queue the post".into()));
            }
        }
    }
    // Held once per queue id: a delivery the queue repeats finds this record (post.rs).
    post::remember(ctx, req, &req.queue_id, &format!("held {id}")).await;
    notify_poster(ctx, req, head, now).await;
    Some(Status::Ok(format!("held for moderation as {id}")))
}

/// The poster's note that the post waits, at most one per list, address and hour. A failure
/// is logged only: the post is held either way.
async fn notify_poster(ctx: &Ctx, req: &Request, head: &[u8], now: u64) {
    let qid = req.queue_id.as_str();
    // Its own throttle key, so it never uses up a subscription confirmation's hour.
    if !ctx
        .throttle
        .allow(&format!("held {}", req.list), &req.sender, now)
    {
        info!(id = qid; "list=<{}> moderation note to=<{}> not sent (one per hour already \
            sent)", req.list, req.sender);
        return;
    }
    let (local, domain) = req.list_parts();
    let from = format!("{local}-help@{domain}");
    let subject = format!("your post to {} awaits moderation", req.list);
    let days = ctx.policy.held_expiry_secs.div_ceil(86_400);
    let body = format!(
        "Your message to the moderated list <{}>\n\
         (Subject: {})\n\
         waits for a moderator to accept it. If nobody does within {days} day(s), it is\n\
         dropped. You will not hear again unless it is rejected.\n",
        req.list,
        subject_of(head)
    );
    let reply = Reply {
        list: &req.list,
        from: &from,
        to: &req.sender,
        reply_to: None,
        subject: &subject,
        body: &body,
        queue_id: qid,
        hostname: &ctx.hostname,
    };
    let _ = context::queued(
        req,
        "moderation note",
        &req.sender,
        reply.send(&ctx.queue_socket).await,
    );
}

/// The moderation request: text with the accept and reject addresses, the post attached as
/// `message/rfc822` (at most `MAX_ATTACH` bytes of it, cut at a line end). CRLF line ends in
/// our own part; the attached post is as it came.
#[allow(clippy::too_many_arguments)]
fn compose_request(
    req: &Request,
    id: &str,
    head: &[u8],
    start: &[u8],
    size: u64,
    now: u64,
    hostname: &str,
    expiry_secs: u64,
    has_owner: bool,
) -> Vec<u8> {
    let (local, domain) = req.list_parts();
    let accept = format!("{local}-accept-{id}@{domain}");
    let reject = format!("{local}-reject-{id}@{domain}");
    let subject = subject_of(head);
    let (attached, cut) = if start.len() > MAX_ATTACH {
        let within = &start[..MAX_ATTACH];
        let end = within
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(MAX_ATTACH, |i| i + 1);
        (&start[..end], true)
    } else {
        (start, false)
    };
    // A boundary that the attached bytes do not hold (IDs are random; ten tries suffice).
    let mut boundary = format!("moat-{id}");
    for _ in 0..10 {
        if !memmem(attached, boundary.as_bytes()) {
            break;
        }
        boundary = format!("moat-{}", held::new_id().unwrap_or_else(|_| id.repeat(2)));
    }
    let days = expiry_secs.div_ceil(86_400);
    let mut text = format!(
        "A post to the moderated list <{list}> waits for your decision.\n\
         \n\
         \x20 From (envelope): <{sender}>\n\
         \x20 Subject: {subject}\n\
         \n\
         To accept it, reply to this message, or send a message to:\n\
         \n\
         \x20 <{accept}>\n\
         \n\
         To reject it, send a message to:\n\
         \n\
         \x20 <{reject}>\n\
         \n\
         Unanswered, it is dropped after {days} day(s). The post is attached.\n",
        list = req.list,
        sender = req.sender,
    );
    if cut {
        text.push_str(&format!(
            "The post is {size} bytes: only its first {} KiB are attached.\n",
            MAX_ATTACH / 1024
        ));
    }
    if !has_owner {
        text.push_str(&format!(
            "\nMail to <{local}-owner@{domain}> reaches the moderators.\n"
        ));
    }
    let mut m = Vec::with_capacity(attached.len() + 4096);
    let mut line = |l: &str| {
        m.extend_from_slice(l.as_bytes());
        m.extend_from_slice(b"\r\n");
    };
    line(&format!("From: {local}-help@{domain}"));
    line(&format!("To: \"moderators of {}\":;", req.list));
    line(&format!("Reply-To: {accept}"));
    line(&format!("Subject: moderate: {subject}"));
    line(&format!("Date: {}", date::rfc5322(now)));
    line(&format!("Message-ID: <{now}.{id}.moderate@{hostname}>"));
    line("Auto-Submitted: auto-generated");
    line(&format!("List-Id: <{local}.{domain}>"));
    line("MIME-Version: 1.0");
    line(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\""
    ));
    line("");
    line("This is a MIME message: the moderation request, then the post.");
    line(&format!("--{boundary}"));
    line("Content-Type: text/plain; charset=utf-8");
    line("Content-Transfer-Encoding: 8bit");
    line("");
    for l in text.lines() {
        line(l);
    }
    line(&format!("--{boundary}"));
    line("Content-Type: message/rfc822");
    line("Content-Disposition: inline");
    line("Content-Transfer-Encoding: 8bit");
    line("");
    m.extend_from_slice(attached);
    if !attached.ends_with(b"\n") {
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    m
}

/// Whether `needle` occurs in `hay`.
fn memmem(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Queues `message` (already composed) for `to`, from `sender`.
async fn send_raw(
    ctx: &Ctx,
    message: &[u8],
    sender: &str,
    to: &[String],
) -> std::io::Result<Status> {
    let mut injection =
        Injection::open(&ctx.queue_socket, Origin::Sendmail, "moat-lists moderate").await?;
    injection.write(message).await?;
    injection.finish(sender, to).await
}

/// Whether the verdict's envelope sender is a moderator of the list; logs when not.
async fn from_moderator(ctx: &Ctx, req: &Request, what: &str, id: &str) -> Result<bool, Status> {
    let answer = ctx
        .store
        .is_member(&req.list, &req.sender, Roster::Moderator)
        .await;
    let is = store_result(req, "moderators", answer)?;
    if !is {
        info!(id = req.queue_id.as_str(); "list=<{}> {what} {id} from=<{}>: ignored: not a \
            moderator", req.list, req.sender);
    }
    Ok(is)
}

/// Opens held post `id` (off the runtime), or logs why there is none.
async fn open_held(ctx: &Ctx, req: &Request, what: &str, id: &str) -> Result<held::Held, Status> {
    let qid = req.queue_id.as_str();
    let (data_dir, list, held_id) = (ctx.data_dir.clone(), req.list.clone(), id.to_string());
    let opened = tokio::task::spawn_blocking(move || held::open(&data_dir, &list, &held_id))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    match opened {
        Ok(Some(h)) => Ok(h),
        Ok(None) => {
            info!(id = qid; "list=<{}> {what} {id} from=<{}>: no such held post (already \
                accepted, rejected or expired): ignored", req.list, req.sender);
            Err(Status::Ok("no such held post".into()))
        }
        Err(e) => {
            warn!(id = qid; "list=<{}> {what} {id}: cannot read the held post: {e}", req.list);
            Err(Status::Temporary("4.3.0 cannot read the held post".into()))
        }
    }
}

/// Removes held post `id` (off the runtime); a failure is logged.
async fn remove_held(ctx: &Ctx, req: &Request, id: &str) {
    let (data_dir, list, held_id) = (ctx.data_dir.clone(), req.list.clone(), id.to_string());
    let removed = tokio::task::spawn_blocking(move || held::remove(&data_dir, &list, &held_id))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    if let Err(e) = removed {
        warn!(id = req.queue_id.as_str(); "list=<{}> held post {id}: cannot remove it: {e}",
            req.list);
    }
}

/// The checks both verdicts share: not a robot, from a moderator, the post not busy and there.
async fn verdict_start(
    ctx: &Ctx,
    req: &Request,
    file: Arc<File>,
    what: &str,
    id: &str,
) -> Result<(Busy, held::Held), Status> {
    context::screen(req, what, file).await?;
    if !from_moderator(ctx, req, what, id).await? {
        return Err(Status::Ok("ignored (not a moderator)".into()));
    }
    let Some(busy) = Busy::take(&req.list, id) else {
        info!(id = req.queue_id.as_str(); "list=<{}> {what} {id}: another verdict on it is \
            being carried out: later", req.list);
        return Err(Status::Temporary("4.3.0 held post busy".into()));
    };
    let held = open_held(ctx, req, what, id).await?;
    Ok((busy, held))
}

/// `list-accept-ID@`: the held post goes to the list; removed once queued.
pub async fn accept(ctx: &Ctx, req: &Request, file: Arc<File>, id: &str) -> Status {
    let qid = req.queue_id.as_str();
    let (_busy, held) = match verdict_start(ctx, req, file, "accept", id).await {
        Ok(v) => v,
        Err(verdict) => return verdict,
    };
    // Sent before but not removed (a crash, a failed removal): not sent again.
    let key = replay::accept_key(id);
    match post::done(ctx, req, &key).await {
        Ok(Some(what)) => {
            remove_held(ctx, req, id).await;
            info!(id = qid; "list=<{}> held post {id}: already accepted as {what}: not sent \
                again", req.list);
            return Status::Ok(format!("already accepted ({what})"));
        }
        Ok(None) => {}
        Err(e) => {
            warn!(id = qid; "list=<{}> held post {id}: cannot read its replay record: {e}",
                req.list);
            return Status::Temporary("4.3.0 cannot check the held post".into());
        }
    }
    let info = match ctx.list(req).await {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    // The post pipeline logs under this request's queue id, with the poster as the sender.
    let post_req = Request {
        queue_id: req.queue_id.clone(),
        list: req.list.clone(),
        extension: String::new(),
        sender: held.meta.sender.clone(),
    };
    let body_at = held.body_start();
    let head = held.head;
    let file = Arc::new(held.file);
    match post::send_post(ctx, &post_req, &info, &head, &file, body_at, &key).await {
        Status::Ok(text) => {
            remove_held(ctx, req, id).await;
            info!(id = qid; "list=<{}> held post {id} from=<{}> accepted by <{}>: {text}",
                req.list, post_req.sender, req.sender);
            Status::Ok(format!("accepted: {text}"))
        }
        other => other,
    }
}

/// `list-reject-ID@`: the held post is removed and its poster told.
pub async fn reject(ctx: &Ctx, req: &Request, file: Arc<File>, id: &str) -> Status {
    let qid = req.queue_id.as_str();
    let (_busy, held) = match verdict_start(ctx, req, file, "reject", id).await {
        Ok(v) => v,
        Err(verdict) => return verdict,
    };
    let poster = held.meta.sender.clone();
    let (local, domain) = req.list_parts();
    let from = format!("{local}-owner@{domain}");
    let subject = format!("your post to {} was not accepted", req.list);
    let body = format!(
        "A moderator of the list <{}> did not accept your message\n\
         (Subject: {}).\n\
         \n\
         It was not sent to the list. To ask why, write to <{from}>.\n",
        req.list,
        subject_of(&held.head)
    );
    drop(held);
    let reply = Reply {
        list: &req.list,
        from: &from,
        to: &poster,
        reply_to: None,
        subject: &subject,
        body: &body,
        queue_id: qid,
        hostname: &ctx.hostname,
    };
    // The note first: if it cannot be queued the post stays held and the reject is retried.
    let status = context::queued(
        req,
        "rejection",
        &poster,
        reply.send(&ctx.queue_socket).await,
    );
    if !matches!(status, Status::Ok(_)) {
        return status;
    }
    remove_held(ctx, req, id).await;
    info!(id = qid; "list=<{}> held post {id} from=<{poster}> rejected by <{}>", req.list,
        req.sender);
    Status::Ok("rejected".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_clean_line() {
        assert_eq!(subject_of(b"Subject: hi\r\n there\r\n"), "hi there");
        assert_eq!(subject_of(b"From: a@b\r\n"), "(no subject)");
        assert_eq!(subject_of(b"Subject: a\x07b\r\n"), "ab");
        let long = format!("Subject: {}\r\n", "x".repeat(500));
        assert_eq!(subject_of(long.as_bytes()).len(), MAX_SUBJECT + 3);
    }

    #[test]
    fn one_verdict_at_a_time() {
        let a = Busy::take("dev@x.test", "0123456789abcdef").expect("free");
        assert!(Busy::take("dev@x.test", "0123456789abcdef").is_none());
        assert!(Busy::take("ops@x.test", "0123456789abcdef").is_some());
        drop(a);
        assert!(Busy::take("dev@x.test", "0123456789abcdef").is_some());
    }

    fn request(body: &[u8]) -> String {
        let req = Request {
            queue_id: "q1".into(),
            list: "dev@x.test".into(),
            extension: String::new(),
            sender: "carol@y.test".into(),
        };
        let head = b"Subject: hello\r\n";
        let mut start = head.to_vec();
        start.extend_from_slice(b"\r\n");
        start.extend_from_slice(body);
        let size = start.len() as u64;
        start.truncate(MAX_ATTACH + 1);
        let m = compose_request(
            &req,
            "0123456789abcdef",
            head,
            &start,
            size,
            0,
            "mx.x.test",
            5 * 86_400,
            false,
        );
        String::from_utf8(m).expect("utf8")
    }

    #[test]
    fn moderation_request() {
        let m = request(b"--moat-0123456789abcdef\r\nshort body\r\n");
        assert!(
            m.contains("\r\nReply-To: dev-accept-0123456789abcdef@x.test\r\n"),
            "{m}"
        );
        assert!(m.contains("\r\nSubject: moderate: hello\r\n"), "{m}");
        assert!(m.contains("<dev-reject-0123456789abcdef@x.test>"), "{m}");
        assert!(m.contains("dropped after 5 day(s)"), "{m}");
        assert!(
            m.contains("<dev-owner@x.test> reaches the moderators"),
            "{m}"
        );
        assert!(m.contains("Content-Type: message/rfc822\r\n"), "{m}");
        assert!(m.contains("short body\r\n"), "{m}");
        assert!(!m.contains("only its first"), "{m}");
        // The post holds the first boundary tried: another is used.
        let boundary = m
            .split("boundary=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("boundary");
        assert_ne!(boundary, "moat-0123456789abcdef");
        assert!(m.ends_with(&format!("--{boundary}--\r\n")), "{m}");

        // 200,000 bytes of 100-byte lines: cut at a line end within 64 KiB, and said so.
        let line = format!("{}\r\n", "x".repeat(98));
        let big = line.repeat(2000);
        let m = request(big.as_bytes());
        assert!(
            m.contains("The post is 200018 bytes: only its first 64 KiB"),
            "{}",
            &m[..2000]
        );
        assert!(m.len() < MAX_ATTACH + 4096, "{}", m.len());
        let attached = m
            .split("Content-Transfer-Encoding: 8bit\r\n\r\n")
            .nth(2)
            .expect("part");
        assert!(attached.starts_with("Subject: hello\r\n\r\nxxx"));
        // Cut at a line end: the last line before the closing boundary is whole.
        let (before_close, _) = attached.rsplit_once("\r\n--").expect("boundary");
        assert!(before_close.ends_with(&format!("\n{}", "x".repeat(98))));
    }

    #[test]
    fn memmem_finds() {
        assert!(memmem(b"abc--moat-1def", b"moat-1"));
        assert!(!memmem(b"abc", b"abcd"));
        assert!(!memmem(b"abc", b""));
    }
}
