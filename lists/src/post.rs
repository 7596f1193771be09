//! A post to `list@`: checked (sender, machine mail, size, membership), given the list's
//! headers (RFC 2919 List-Id, RFC 2369 List-*, `Precedence: list`, the subject prefix),
//! numbered, and injected once into the queue with every member as a recipient and the VERP
//! flag, from `list-return-N@domain`, so a bounce names post N and the member (ezmlm's
//! scheme). The queue does the fan-out.
//!
//! Dropped with a log line and `K` (as ezmlm does): the null sender, mail from the list's own
//! addresses, machine-sent mail (RFC 3834). Refused with `D` (the queue bounces it to the
//! sender): too big, a header longer than `header::MAX_HEADER`, a non-member on a
//! members-only list.
//!
//! SECURITY: the header is read bounded and rewritten at the field level; the subject prefix
//! (the admin's, checked by the store) has control characters removed again before it goes
//! in, so it cannot add a header line. The body is streamed from the descriptor in chunks,
//! never held whole. More than `BATCH` members take several injections (the queue's envelope
//! limit); a failure after the first makes the whole post `Z`, so members of the batches
//! already queued may get it twice on the retry (at least once, never lost).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use moat_common::client::list_store::{ListInfo, Roster};
use moat_common::client::queue::{CHUNK, Injection, Origin};
use moat_common::wire::Status;
use moat_common::{info, warn};

use crate::context::{self, Ctx, store_result};
use crate::header;
use crate::request::Request;

/// Recipients per injection (the queue takes at most 1000 per envelope).
pub const BATCH: usize = 1000;

/// Header fields of the poster's that the list replaces with its own.
const REPLACED: &[&str] = &[
    "Return-Path",
    "Precedence",
    "List-Id",
    "List-Help",
    "List-Subscribe",
    "List-Unsubscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
];

pub async fn distribute(ctx: &Ctx, req: &Request, file: Arc<File>) -> Status {
    let qid = req.queue_id.as_str();
    let (local, domain) = req.list_parts();
    if req.sender.is_empty() {
        info!(id = qid; "list=<{}> post from <>: dropped (mail from the null sender is not \
            distributed)", req.list);
        return Status::Ok("dropped (null sender)".into());
    }
    if own_address(&req.sender, local, domain) {
        info!(id = qid; "list=<{}> post from=<{}>: dropped (from the list's own address: a \
            loop)", req.list, req.sender);
        return Status::Ok("dropped (from the list itself)".into());
    }
    let (head, body_at) = match context::read_header(req, Arc::clone(&file)).await {
        Ok(h) => h,
        Err(verdict) => return verdict,
    };
    if let Some(why) = header::automatic(&head) {
        info!(id = qid; "list=<{}> post from=<{}>: dropped ({why})", req.list, req.sender);
        return Status::Ok(format!("dropped ({why})"));
    }
    let Some(body_at) = body_at else {
        info!(id = qid; "list=<{}> post from=<{}>: refused: header over {} bytes",
            req.list, req.sender, header::MAX_HEADER);
        return Status::Permanent("5.6.0 message header too large for the list".into());
    };
    let info: ListInfo = match ctx.list(req).await {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(max) = info.max_message_bytes
        && size > max
    {
        info!(id = qid; "list=<{}> post from=<{}>: refused: {size} bytes, the list takes {max}",
            req.list, req.sender);
        return Status::Permanent(format!(
            "5.3.4 message too big for the list (at most {max} bytes)"
        ));
    }
    if info.members_only {
        let member = store_result(
            req,
            "membership",
            ctx.store
                .is_member(&req.list, &req.sender, Roster::Member)
                .await,
        );
        match member {
            Ok(true) => {}
            Ok(false) => {
                info!(id = qid; "list=<{}> post from=<{}>: refused: not a member of a \
                    members-only list", req.list, req.sender);
                return Status::Permanent(format!("5.7.2 only members may post to {}", req.list));
            }
            Err(verdict) => return verdict,
        }
    }
    let members = match store_result(
        req,
        "members",
        ctx.store.members(&req.list, Roster::Member).await,
    ) {
        Ok(m) => m,
        Err(verdict) => return verdict,
    };
    if members.is_empty() {
        info!(id = qid; "list=<{}> post from=<{}>: no members: nothing to send", req.list,
            req.sender);
        return Status::Ok("no members".into());
    }
    let number = match store_result(req, "post number", ctx.store.next_post(&req.list).await) {
        Ok(n) => n,
        Err(verdict) => return verdict,
    };
    let new_head = rewrite(&head, &req.list, &info.subject_prefix);
    let sender = format!("{local}-return-{number}@{domain}");
    let mut ids = Vec::new();
    for batch in members.chunks(BATCH) {
        match inject(ctx, &new_head, &file, body_at, &sender, batch).await {
            Ok(Status::Ok(id)) => ids.push(id),
            Ok(Status::Permanent(why) | Status::Temporary(why)) => {
                warn!(id = qid; "list=<{}> post {number}: the queue refused it: {why}", req.list);
                return Status::Temporary("4.3.0 cannot queue the post".into());
            }
            Err(e) => {
                warn!(id = qid; "list=<{}> post {number}: the queue: {e}", req.list);
                return Status::Temporary("4.3.0 cannot queue the post".into());
            }
        }
    }
    info!(id = qid; "list=<{}> post {number} from=<{}> to {} member(s) as {}", req.list,
        req.sender, members.len(), ids.join(","));
    Status::Ok(format!("post {number} sent to {} member(s)", members.len()))
}

/// Whether `sender` is the list's address or one of its command addresses.
fn own_address(sender: &str, local: &str, domain: &str) -> bool {
    let Some((l, d)) = sender.rsplit_once('@') else {
        return false;
    };
    let l = l.to_ascii_lowercase();
    let local = local.to_ascii_lowercase();
    d.eq_ignore_ascii_case(domain) && (l == local || l.starts_with(&format!("{local}-")))
}

/// The post's new header: the list's fields first, then the poster's without the ones the list
/// replaces, the Subject prefixed (once). CRLF line ends.
pub fn rewrite(head: &[u8], list: &str, prefix: &str) -> Vec<u8> {
    let (local, domain) = list.rsplit_once('@').unwrap_or((list, ""));
    let mut out = Vec::with_capacity(head.len() + 1024);
    for line in [
        format!("Delivered-To: {list}"),
        format!("List-Id: <{local}.{domain}>"),
        format!("List-Help: <mailto:{local}-help@{domain}>"),
        format!("List-Subscribe: <mailto:{local}-subscribe@{domain}>"),
        format!("List-Unsubscribe: <mailto:{local}-unsubscribe@{domain}>"),
        format!("List-Post: <mailto:{list}>"),
        format!("List-Owner: <mailto:{local}-owner@{domain}>"),
        "Precedence: list".to_string(),
    ] {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // One line, no controls: nothing the prefix holds can start a header field.
    let prefix: String = prefix.chars().filter(|c| !c.is_control()).collect();
    let mut subject_seen = false;
    for field in header::fields(head) {
        if REPLACED.iter().any(|name| header::is_named(field, name)) {
            continue;
        }
        if header::is_named(field, "Subject") && !subject_seen {
            subject_seen = true;
            out.extend_from_slice(&prefixed(field, &prefix));
        } else {
            out.extend_from_slice(field);
        }
        if !field.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    if !subject_seen && !prefix.trim().is_empty() {
        out.extend_from_slice(format!("Subject: {}\r\n", prefix.trim_end()).as_bytes());
    }
    out
}

/// The Subject field with `prefix` after `Subject:` and its blanks, unless the subject already
/// holds the prefix (a reply: "Re: [dev] …"), compared without case and outer blanks.
fn prefixed(field: &[u8], prefix: &str) -> Vec<u8> {
    let tag = prefix.trim();
    if tag.is_empty() {
        return field.to_vec();
    }
    let text = String::from_utf8_lossy(field).to_ascii_lowercase();
    if text.contains(&tag.to_ascii_lowercase()) {
        return field.to_vec();
    }
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return field.to_vec();
    };
    let mut at = colon + 1;
    while field.get(at).is_some_and(|b| *b == b' ' || *b == b'\t') {
        at += 1;
    }
    let mut out = Vec::with_capacity(field.len() + prefix.len() + 1);
    out.extend_from_slice(b"Subject: ");
    out.extend_from_slice(prefix.as_bytes());
    if !prefix.ends_with(' ') {
        out.push(b' ');
    }
    out.extend_from_slice(&field[at..]);
    out
}

/// One queued copy: `head`, the empty line, the body streamed from `body_at`.
async fn inject(
    ctx: &Ctx,
    head: &[u8],
    file: &Arc<File>,
    body_at: u64,
    sender: &str,
    recipients: &[String],
) -> std::io::Result<Status> {
    let mut injection = Injection::open(&ctx.queue_socket, Origin::Forward, "moat-lists").await?;
    injection.set_verp();
    injection.write(head).await?;
    injection.write(b"\r\n").await?;
    let mut offset = body_at;
    loop {
        let f = Arc::clone(file);
        let chunk = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let mut buf = vec![0u8; CHUNK];
            let n = loop {
                match f.read_at(&mut buf, offset) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    other => break other?,
                }
            };
            buf.truncate(n);
            Ok(buf)
        })
        .await
        .map_err(std::io::Error::other)??;
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        injection.write(&chunk).await?;
    }
    injection.finish(sender, recipients).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_added_and_subject_prefixed_once() {
        let head = b"From: a@b.example\r\nSubject: hello\r\n world\r\nList-Id: <evil>\r\n\
                     Precedence: bulk\r\n";
        let out = String::from_utf8(rewrite(head, "dev@x.test", "[dev]")).expect("utf8");
        assert!(out.starts_with("Delivered-To: dev@x.test\r\nList-Id: <dev.x.test>\r\n"));
        assert!(out.contains("List-Unsubscribe: <mailto:dev-unsubscribe@x.test>\r\n"));
        assert!(out.contains("List-Post: <mailto:dev@x.test>\r\n"));
        assert!(out.contains("Subject: [dev] hello\r\n world\r\n"), "{out}");
        assert!(!out.contains("<evil>") && !out.contains("bulk"), "{out}");
        assert_eq!(out.matches("Precedence:").count(), 1);
        let reply = rewrite(b"Subject: Re: [DEV] hello\r\n", "dev@x.test", "[dev] ");
        assert!(String::from_utf8_lossy(&reply).contains("Subject: Re: [DEV] hello\r\n"));
        let evil = rewrite(b"Subject: x\r\n", "dev@x.test", "[a]\r\nBcc: e@vil");
        let evil = String::from_utf8_lossy(&evil).to_string();
        assert!(!evil.contains("\r\nBcc:"), "{evil}");
        let none = rewrite(b"From: a@b\r\n", "dev@x.test", "[dev]");
        assert!(String::from_utf8_lossy(&none).ends_with("From: a@b\r\nSubject: [dev]\r\n"));
    }

    #[test]
    fn own_addresses() {
        assert!(own_address("dev@x.test", "dev", "x.test"));
        assert!(own_address("DEV-return-4-a=b@X.test", "dev", "x.test"));
        assert!(!own_address("developer@x.test", "dev", "x.test"));
        assert!(!own_address("dev@y.test", "dev", "x.test"));
    }
}
