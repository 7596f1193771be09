//! Bounces: mail to `list-return-…@` (ezmlm's `ezmlm-return`). Posts go out with the envelope
//! sender `list-return-N@` and the VERP flag, so a member's bounce comes back to
//! `list-return-N-user=host@`; digests likewise from `list-return-dN@` (`digest.rs`), their
//! bounces counting against the digest roster; a probe goes from
//! `list-return-probe-COOKIE-user=host@` (`probe.rs`).
//!
//! - A bounce is a DSN (`multipart/report; report-type=delivery-status`) with a per-recipient
//!   `Action: failed`, or, from the null sender, a message that is no DSN (qmail and other
//!   old-style bounces) unless it is marked automatic (`Auto-Submitted` other than `no`,
//!   `Precedence: bulk/junk/list`: RFC 3834 responders may use the null sender) without looking
//!   like a bounce (qmail-send's text, `X-Failed-Recipients`, a failure Subject). A DSN that
//!   fails nobody (`delayed`, `delivered`) is no bounce, and neither is mail from a real sender
//!   that is no DSN (vacation replies go to Return-Path too).
//! - A bounce of post N (digest N) counts only when N is a post (digest) we sent: 1 up to the
//!   list's newest; others are refused (logged, `K`).
//! - A regular bounce is counted (`record_bounce`). Bounces older than the window are forgotten
//!   first, and so is an outstanding probe older than the window that never bounced (the member
//!   was reachable). At `bounce_threshold` with no probe outstanding, a probe goes.
//! - A probe's bounce removes the member only when its cookie is ours for that address, a probe
//!   is outstanding, and both went within `bounce_window_secs`: the cookie is known only to
//!   who got the probe, so forged bounces remove nobody.
//!
//! Everything is answered `K` (a `D` would bounce a bounce: a loop), except `Z` when the store
//! or the queue cannot be reached (the queue retries; a retried bounce may be counted twice,
//! which at worst sends the probe one bounce early).
//!
//! SECURITY: the message is hostile input: at most `MAX_LOOK` bytes of it are read, with
//! positioned reads; the address in the extension is checked like any envelope address.

use std::fs::File;
use std::sync::Arc;

use moat_common::client::list_store::{Answer, BounceState, Roster};
use moat_common::wire::Status;
use moat_common::{date, info, warn};

use crate::context::{Ctx, STORE_DOWN};
use crate::header;
use crate::probe::{self, Probe};
use crate::request::{Request, check_address};

/// The most of a message read to classify it.
pub const MAX_LOOK: usize = 256 * 1024;

/// What `return-REST` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rest {
    /// `N-user=host`: post N to member `user@host` bounced.
    Post { number: u64, address: String },
    /// `dN-user=host`: digest N to digest subscriber `user@host` bounced.
    Digest { number: u64, address: String },
    /// `probe-COOKIE-user=host`: the probe to `user@host` bounced (if the cookie is ours).
    Probe { cookie: String, address: String },
    /// "" (replies of ours: help, confirmations) or anything else.
    Other,
}

/// Parses what followed `return-`.
pub fn parse_rest(rest: &str) -> Rest {
    let decode = |encoded: &str| -> Option<String> {
        let (user, host) = encoded.rsplit_once('=')?;
        let address = format!("{user}@{host}");
        (!user.is_empty() && !host.is_empty() && !host.contains('@'))
            .then_some(address)
            .filter(|a| check_address(a).is_ok())
    };
    if let Some(tail) = rest.strip_prefix("probe-") {
        let cookie = tail.get(..probe::COOKIE_LEN).filter(|c| {
            c.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        });
        let encoded = tail
            .get(probe::COOKIE_LEN..)
            .and_then(|t| t.strip_prefix('-'));
        return match (cookie, encoded.and_then(decode)) {
            (Some(cookie), Some(address)) => Rest::Probe {
                cookie: cookie.to_string(),
                address,
            },
            _ => Rest::Other,
        };
    }
    let Some((n, encoded)) = rest.split_once('-') else {
        return Rest::Other;
    };
    let number = |n: &str| {
        (!n.is_empty() && n.len() <= 19 && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse::<u64>().ok())
            .flatten()
            .filter(|n| *n >= 1)
    };
    let digest = n.strip_prefix('d');
    match (digest.map_or_else(|| number(n), number), decode(encoded)) {
        (Some(number), Some(address)) if digest.is_some() => Rest::Digest { number, address },
        (Some(number), Some(address)) => Rest::Post { number, address },
        _ => Rest::Other,
    }
}

/// What a message returned to us is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// A DSN with at least one `Action: failed`.
    Failed,
    /// A DSN that fails nobody (a delay notice, a delivery report).
    NotFailed,
    /// Not a DSN.
    Plain,
}

/// Classifies the (bounded) start of a message.
pub fn classify(message: &[u8]) -> Report {
    let (head, body) = split_header(message);
    let Some(content_type) = header::values(head, "Content-Type").into_iter().next() else {
        return Report::Plain;
    };
    let (media, params) = media_type(&content_type);
    let is_report = media == "multipart/report"
        && param(&params, "report-type").is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"));
    if !is_report {
        return Report::Plain;
    }
    let Some(boundary) = param(&params, "boundary").filter(|b| !b.is_empty()) else {
        return Report::NotFailed;
    };
    for part in parts(body, boundary.as_bytes()) {
        let (part_head, part_body) = split_header(part);
        let ct = header::values(part_head, "Content-Type")
            .into_iter()
            .next()
            .unwrap_or_default();
        let (media, _) = media_type(&ct);
        if media != "message/delivery-status" && media != "message/global-delivery-status" {
            continue;
        }
        // Per-recipient fields: unfolded, any group. `Action` appears only there.
        let actions = header::values(&strip_blank_lines(part_body), "Action");
        if actions.iter().any(|a| {
            a.split([';', ' ', '('])
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("failed"))
        }) {
            return Report::Failed;
        }
    }
    Report::NotFailed
}

/// Whether a message that is no DSN, from the null sender, is a bounce: `Err(why not)` for an
/// automatic message (an RFC 3834 auto-reply) that does not look like a bounce.
pub fn plain_is_bounce(message: &[u8]) -> Result<(), String> {
    let (head, body) = split_header(message);
    if looks_like_bounce(head, body) {
        return Ok(());
    }
    match header::automatic(head) {
        Some(why) => Err(format!("an automatic message ({why}), no delivery report")),
        None => Ok(()),
    }
}

/// What old-style bounces say: qmail-send's text, Exim's `X-Failed-Recipients`, the usual
/// Subjects of MTAs' failure notices.
fn looks_like_bounce(head: &[u8], body: &[u8]) -> bool {
    const SUBJECTS: [&str; 6] = [
        "failure notice",
        "undelivered mail",
        "delivery status notification (failure)",
        "mail delivery failed",
        "undeliverable",
        "returned mail",
    ];
    let qmail = b"Hi. This is the qmail-send program";
    let body = &body[..body.len().min(4096)];
    !header::values(head, "X-Failed-Recipients").is_empty()
        || body.windows(qmail.len()).any(|w| w == qmail)
        || header::values(head, "Subject").iter().any(|s| {
            let s = s.to_ascii_lowercase();
            SUBJECTS.iter().any(|f| s.contains(f))
        })
}

/// Whether a probe's bounce removes the member: the probe (`issued`, from its cookie) and the
/// outstanding probe on record both went within `window` seconds of `now`.
pub fn probe_counts(
    state: Option<&BounceState>,
    issued: u64,
    now: u64,
    window: u64,
) -> Result<(), &'static str> {
    if now.saturating_sub(issued) > window {
        return Err("the probe is older than the bounce window");
    }
    match state.and_then(|s| s.probe_sent_at) {
        None => Err("no probe outstanding"),
        Some(sent) if now.saturating_sub(sent) > window => {
            Err("the outstanding probe is older than the bounce window")
        }
        Some(_) => Ok(()),
    }
}

/// Whether post (digest) `number` is one we sent, `next` being the list's next number.
pub fn sent_number(number: u64, next: u64) -> bool {
    number >= 1 && number < next
}

/// The header (lines up to the first empty one) and the body after it; all header when there
/// is no empty line.
fn split_header(m: &[u8]) -> (&[u8], &[u8]) {
    let mut pos = 0;
    while pos < m.len() {
        let end = m[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(m.len(), |i| pos + i + 1);
        let line = &m[pos..end];
        if line == b"\n" || line == b"\r\n" {
            return (&m[..pos], &m[end..]);
        }
        pos = end;
    }
    (m, &[])
}

/// The delivery-status body with its empty lines (group separators) removed, so the header
/// reader takes it as one block of fields.
fn strip_blank_lines(body: &[u8]) -> Vec<u8> {
    body.split_inclusive(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .flatten()
        .copied()
        .collect()
}

/// `type/subtype` (lower-case) and the parameters of a Content-Type value.
fn media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut pieces = split_params(value).into_iter();
    let media = pieces
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let params = pieces
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            Some((k.trim().to_ascii_lowercase(), v.replace("\\\"", "\"")))
        })
        .collect();
    (media, params)
}

/// Splits at `;` outside double quotes.
fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out
}

fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// The body parts of a multipart body: what lies between `--boundary` lines (the preamble and
/// what follows the closing `--boundary--` are not parts).
fn parts<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| pos + i + 1);
        let line = body[pos..end].trim_ascii_end();
        if let Some(after) = line
            .strip_prefix(b"--")
            .and_then(|l| l.strip_prefix(boundary))
        {
            if let Some(s) = start.take() {
                out.push(&body[s..pos]);
            }
            if after.starts_with(b"--") {
                return out;
            }
            start = Some(end);
        }
        pos = end;
    }
    if let Some(s) = start {
        out.push(&body[s..]);
    }
    out
}

/// Reads at most `MAX_LOOK` bytes from the start of the message.
fn read_start(file: &File) -> std::io::Result<Vec<u8>> {
    crate::header::read_at(file, 0, MAX_LOOK)
}

/// Whether a member's bounce record is stale at `now`: its first bounce, or its outstanding
/// probe, is older than `window` seconds (the probe did not bounce: the member was reachable).
pub fn stale(state: &BounceState, now: u64, window: u64) -> bool {
    match (state.probe_sent_at, state.first_bounce_at) {
        (Some(probe), _) => now.saturating_sub(probe) > window,
        (None, Some(first)) => now.saturating_sub(first) > window,
        (None, None) => false,
    }
}

/// Whether a probe should go now that the record is `state`.
pub fn wants_probe(state: &BounceState, threshold: u32) -> bool {
    state.count >= u64::from(threshold) && state.probe_sent_at.is_none()
}

/// Mail to `list-return-REST@`.
pub async fn handle(ctx: &Ctx, req: &Request, file: Arc<File>, rest: &str) -> Status {
    let qid = req.queue_id.as_str();
    let target = parse_rest(rest);
    if target == Rest::Other {
        info!(id = qid; "list=<{}> return-{rest} from=<{}>: not a bounce address of ours: ignored",
            req.list, req.sender);
        return Status::Ok("ignored".into());
    }
    let message = match tokio::task::spawn_blocking(move || read_start(&file)).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            warn!(id = qid; "list=<{}>: cannot read the message: {e}", req.list);
            return Status::Temporary("4.3.0 cannot read the message".into());
        }
        Err(e) => {
            warn!(id = qid; "list=<{}>: {e}", req.list);
            return Status::Temporary("4.3.0 internal error".into());
        }
    };
    let not_bounce = match classify(&message) {
        Report::Failed => None,
        Report::NotFailed => Some("a delivery report that fails nobody".to_string()),
        Report::Plain if req.sender.is_empty() => plain_is_bounce(&message).err(),
        Report::Plain => Some("not a delivery report, and not from the null sender".to_string()),
    };
    if let Some(why) = not_bounce {
        info!(id = qid; "list=<{}> return-{rest} from=<{}>: not a bounce ({why}): ignored",
            req.list, req.sender);
        return Status::Ok("not a bounce".into());
    }
    let info = match answer(req, "list settings", ctx.store.get(&req.list).await) {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    let numbered = match &target {
        Rest::Post { number, .. } => Some((*number, info.next_post, "post")),
        Rest::Digest { number, .. } => Some((*number, info.next_digest, "digest")),
        _ => None,
    };
    if let Some((number, next, what)) = numbered.filter(|(n, next, _)| !sent_number(*n, *next)) {
        info!(id = qid; "list=<{}> return-{rest}: refused: no {what} {number} was sent \
            (newest {})", req.list, next.saturating_sub(1));
        return Status::Ok(format!("no {what} {number}: bounce refused"));
    }
    match target {
        Rest::Post { number, address } => {
            regular(
                ctx,
                req,
                &info.secret,
                Roster::Member,
                &format!("post {number}"),
                &address,
            )
            .await
        }
        Rest::Digest { number, address } => {
            regular(
                ctx,
                req,
                &info.secret,
                Roster::Digest,
                &format!("digest {number}"),
                &address,
            )
            .await
        }
        Rest::Probe { cookie, address } => {
            let Some(issued) = probe::check_cookie(&info.secret, &address, &cookie) else {
                info!(id = qid; "list=<{}> probe bounce for <{address}>: refused: cookie \
                    does not match", req.list);
                return Status::Ok("probe cookie does not match".into());
            };
            probe_bounced(ctx, req, &address, issued).await
        }
        Rest::Other => Status::Ok("ignored".into()),
    }
}

/// A store answer, or the verdict: `Z` when moat-auth cannot answer, `K` when it refuses (a
/// bounce is never answered `D`).
fn answer<T>(req: &Request, what: &str, a: std::io::Result<Answer<T>>) -> Result<T, Status> {
    let qid = req.queue_id.as_str();
    match a {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(Status::Permanent(t))) => {
            info!(id = qid; "list=<{}> bounce: {what}: {t}: ignored", req.list);
            Err(Status::Ok(format!("bounce not used: {t}")))
        }
        Ok(Err(Status::Ok(t) | Status::Temporary(t))) => {
            warn!(id = qid; "list=<{}> bounce: {what}: moat-auth said {t}", req.list);
            Err(Status::Temporary(STORE_DOWN.into()))
        }
        Err(e) => {
            warn!(id = qid; "list=<{}> bounce: {what}: moat-auth: {e}", req.list);
            Err(Status::Temporary(STORE_DOWN.into()))
        }
    }
}

/// `address`'s bounce record on `roster`; `None` when it is not on it.
async fn state(
    ctx: &Ctx,
    req: &Request,
    roster: Roster,
    address: &str,
) -> Result<Option<BounceState>, Status> {
    answer(
        req,
        "bounce state",
        ctx.store.bounce_state(&req.list, address, roster).await,
    )
}

/// A bounce of `what` ("post N", "digest N") for `address` on `roster`.
async fn regular(
    ctx: &Ctx,
    req: &Request,
    secret: &[u8; 32],
    roster: Roster,
    what: &str,
    address: &str,
) -> Status {
    match count(ctx, req, secret, roster, what, address).await {
        Ok(s) | Err(s) => s,
    }
}

async fn count(
    ctx: &Ctx,
    req: &Request,
    secret: &[u8; 32],
    roster: Roster,
    what: &str,
    address: &str,
) -> Result<Status, Status> {
    let qid = req.queue_id.as_str();
    let list = req.list.as_str();
    let Some(state) = state(ctx, req, roster, address).await? else {
        info!(id = qid; "list=<{list}> bounce of {what} for <{address}>: not on the {} roster: \
            ignored", roster.as_str());
        return Ok(Status::Ok("not on the list".into()));
    };
    let now = date::now();
    let policy = &ctx.policy;
    if stale(&state, now, policy.bounce_window_secs) {
        info!(id = qid; "list=<{list}> <{address}>: earlier bounces ({}) forgotten", state.count);
        answer(
            req,
            "clear bounces",
            ctx.store.clear_bounces(list, address, roster).await,
        )?;
    }
    let state = answer(
        req,
        "record bounce",
        ctx.store.record_bounce(list, address, now, roster).await,
    )?;
    info!(id = qid; "list=<{list}> bounce of {what} for <{address}> ({}): {} of {}",
        roster.as_str(), state.count, policy.bounce_threshold);
    if !wants_probe(&state, policy.bounce_threshold) {
        return Ok(Status::Ok(format!("bounce {} recorded", state.count)));
    }
    let probe = Probe {
        list,
        member: address,
        secret,
        sent_at: now,
        bounces: state.count,
        queue_id: qid,
        hostname: &ctx.hostname,
    };
    let sender = probe.envelope_sender();
    if let Err(e) = check_address(&sender).and_then(|()| {
        (sender.len() <= probe::MAX_SENDER)
            .then_some(())
            .ok_or_else(|| format!("its return address would pass {} octets", probe::MAX_SENDER))
    }) {
        // Too long to be an envelope address: the member cannot be probed, so is kept.
        info!(id = qid; "list=<{list}> <{address}>: no probe ({e})");
        return Ok(Status::Ok("no probe possible".into()));
    }
    answer(
        req,
        "probe sent",
        ctx.store
            .set_probe_sent(list, address, Some(now), roster)
            .await,
    )?;
    match probe.send(&ctx.queue_socket).await {
        Ok(Status::Ok(new_id)) => {
            info!(id = qid; "list=<{list}> probe sent to=<{address}> from=<{sender}> as {new_id}");
            Ok(Status::Ok(format!("probe sent ({new_id})")))
        }
        other => {
            let why = match other {
                Ok(Status::Permanent(t) | Status::Temporary(t) | Status::Ok(t)) => t,
                Err(e) => e.to_string(),
            };
            warn!(id = qid; "list=<{list}> probe to=<{address}>: the queue: {why}");
            // Undo the mark so the retried bounce sends it; if that fails too the next
            // bounce after the window starts over.
            let _ = ctx.store.set_probe_sent(list, address, None, roster).await;
            Err(Status::Temporary("4.3.0 cannot queue the probe".into()))
        }
    }
}

/// The probe to `address`, sent at `issued` (its cookie checked), bounced: the address goes
/// from every roster where it has a probe outstanding, sent within the bounce window.
async fn probe_bounced(ctx: &Ctx, req: &Request, address: &str, issued: u64) -> Status {
    let qid = req.queue_id.as_str();
    let list = req.list.as_str();
    let now = date::now();
    let window = ctx.policy.bounce_window_secs;
    let mut removed = 0;
    let mut why_not = "no probe outstanding";
    for roster in [Roster::Member, Roster::Digest] {
        let state = match state(ctx, req, roster, address).await {
            Ok(s) => s,
            Err(verdict) => return verdict,
        };
        if let Err(why) = probe_counts(state.as_ref(), issued, now, window) {
            if state.is_some() {
                why_not = why;
            }
            continue;
        }
        match answer(
            req,
            "unsubscribe",
            ctx.store.unsubscribe(list, address, roster).await,
        ) {
            Ok(true) => {
                removed += 1;
                info!(id = qid; "list=<{list}> <{address}> ({}) removed after the probe bounced",
                    roster.as_str());
            }
            Ok(false) => {}
            Err(verdict) => return verdict,
        }
    }
    if removed == 0 {
        info!(id = qid; "list=<{list}> probe bounce for <{address}>: {why_not}: ignored");
        return Status::Ok(format!("probe bounce not used: {why_not}"));
    }
    Status::Ok("removed after the probe bounced".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_parsed() {
        assert_eq!(
            parse_rest("12-bob=far.example"),
            Rest::Post {
                number: 12,
                address: "bob@far.example".into()
            }
        );
        assert_eq!(
            parse_rest("3-a=b=h.example"),
            Rest::Post {
                number: 3,
                address: "a=b@h.example".into()
            }
        );
        assert_eq!(
            parse_rest("d4-bob=far.example"),
            Rest::Digest {
                number: 4,
                address: "bob@far.example".into()
            }
        );
        let cookie = "0123456789abcdef0123456789ab";
        assert_eq!(
            parse_rest(&format!("probe-{cookie}-bob-x=far.example")),
            Rest::Probe {
                cookie: cookie.into(),
                address: "bob-x@far.example".into()
            }
        );
        // The probe address without a cookie (the old form, guessable) is no address of ours,
        // nor one whose cookie is short, long or not lower-case alphanumeric.
        for bad in [
            "probe-bob=far.example".to_string(),
            format!("probe-{}-bob=far.example", &cookie[1..]),
            format!("probe-{cookie}0-bob=far.example"),
            format!("probe-{}-bob=far.example", cookie.to_uppercase()),
            format!("probe-{}.-bob=far.example", &cookie[1..]),
            format!("probe-{cookie}-"),
            format!("probe-{cookie}"),
        ] {
            assert_eq!(parse_rest(&bad), Rest::Other, "{bad}");
        }
        for other in [
            "",
            "x",
            "0-bob=h",
            "12",
            "12-",
            "12-bob",
            "12-=h",
            "12-bob=",
            "-bob=h",
            "1x-bob=h",
            "d-bob=h",
            "d0-bob=h",
            "dd1-bob=h",
            "d1",
            "99999999999999999999-bob=h",
            "probe-",
            "probe-bob",
            "probe-bob=h@i",
            "probe-a<b=h",
        ] {
            assert_eq!(parse_rest(other), Rest::Other, "{other}");
        }
    }

    fn dsn(action: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@mx.example\r\n\
             Content-Type: multipart/report; report-type=\"delivery-status\";\r\n\
             \tboundary=\"b;1\"\r\n\
             \r\n\
             preamble\r\n\
             --b;1\r\n\
             Content-Type: text/plain\r\n\
             \r\n\
             Action: failed (in the text part: not counted)\r\n\
             --b;1\r\n\
             Content-Type: message/delivery-status\r\n\
             \r\n\
             Reporting-MTA: dns; mx.example\r\n\
             \r\n\
             Final-Recipient: rfc822; ok@far.example\r\n\
             Action: delivered\r\n\
             Status: 2.0.0\r\n\
             \r\n\
             Final-Recipient: rfc822; bob@far.example\r\n\
             Action: {action}\r\n\
             Status: 5.1.1\r\n\
             \r\n\
             --b;1\r\n\
             Content-Type: text/rfc822-headers\r\n\
             \r\n\
             Subject: x\r\n\
             --b;1--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn dsns_classified() {
        assert_eq!(classify(&dsn("failed")), Report::Failed);
        assert_eq!(classify(&dsn("FAILED")), Report::Failed);
        assert_eq!(classify(&dsn("delayed")), Report::NotFailed);
        assert_eq!(classify(&dsn("delivered")), Report::NotFailed);
        // Only the delivery-status part counts: the text part's "Action: failed" does not.
        let text_only = String::from_utf8(dsn("delayed")).expect("utf8");
        assert!(text_only.contains("Action: failed"));
        assert_eq!(classify(text_only.as_bytes()), Report::NotFailed);
        // LF line ends, unquoted parameters.
        let lf = "Content-Type: multipart/report; boundary=zz; report-type=delivery-status\n\n\
                  --zz\nContent-Type: message/delivery-status\n\n\
                  Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b\nAction: failed\n--zz--\n";
        assert_eq!(classify(lf.as_bytes()), Report::Failed);
        // Not DSNs: plain text, another report type, other multiparts.
        assert_eq!(
            classify(b"Subject: I am on vacation\r\n\r\nback monday\r\n"),
            Report::Plain
        );
        assert_eq!(
            classify(
                b"Content-Type: multipart/report; report-type=disposition-notification; \
                  boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n\
                  Action: failed\r\n--x--\r\n"
            ),
            Report::Plain
        );
        assert_eq!(
            classify(
                b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nAction: failed\r\n"
            ),
            Report::Plain
        );
        // A DSN without a boundary, or cut before its status part: not counted.
        assert_eq!(
            classify(b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n"),
            Report::NotFailed
        );
        assert_eq!(classify(b""), Report::Plain);
    }

    #[test]
    fn null_sender_auto_replies_are_no_bounces() {
        // An old-style bounce: no DSN, no marker.
        assert_eq!(
            plain_is_bounce(b"From: MAILER-DAEMON@x\r\nSubject: oops\r\n\r\nno such user\r\n"),
            Ok(())
        );
        // RFC 3834 auto-replies (any spelling of the field name) and bulk mail: not counted.
        for head in [
            "Auto-Submitted: auto-replied\r\n",
            "auto-submitted : Auto-Replied; owner-email=x@y\r\n",
            "Precedence: junk\r\n",
        ] {
            let m = format!("From: bob@far.example\r\n{head}Subject: Away\r\n\r\nback monday\r\n");
            assert!(plain_is_bounce(m.as_bytes()).is_err(), "{head}");
        }
        assert_eq!(
            plain_is_bounce(b"Auto-Submitted: no\r\nSubject: x\r\n\r\nbody\r\n"),
            Ok(())
        );
        // Marked automatic, but a bounce by its words: counted.
        for m in [
            "Auto-Submitted: auto-replied\r\nSubject: failure notice\r\n\r\nx\r\n",
            "Auto-Submitted: auto-replied\r\nSubject: Mail delivery failed: returning message\r\n\r\n",
            "Auto-Submitted: auto-generated\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n",
            "Auto-Submitted: auto-replied\r\nX-Failed-Recipients: bob@far.example\r\n\r\n",
            "Auto-Submitted: auto-replied\r\n\r\nHi. This is the qmail-send program at x.\r\n",
        ] {
            assert_eq!(plain_is_bounce(m.as_bytes()), Ok(()), "{m}");
        }
    }

    #[test]
    fn only_sent_numbers_and_fresh_probes_count() {
        // next = 4: posts 1..=3 were sent.
        assert!(sent_number(1, 4) && sent_number(3, 4));
        assert!(!sent_number(4, 4) && !sent_number(0, 4) && !sent_number(u64::MAX, 4));
        assert!(!sent_number(1, 1), "no post sent yet");
        let s = |probe| BounceState {
            count: 5,
            first_bounce_at: Some(1),
            probe_sent_at: probe,
        };
        assert_eq!(probe_counts(Some(&s(Some(990))), 990, 1000, 100), Ok(()));
        assert!(probe_counts(Some(&s(None)), 990, 1000, 100).is_err());
        assert!(probe_counts(None, 990, 1000, 100).is_err());
        // A stale probe on record, or a cookie older than the window: ignored.
        assert!(probe_counts(Some(&s(Some(800))), 990, 1000, 100).is_err());
        assert!(probe_counts(Some(&s(Some(990))), 800, 1000, 100).is_err());
    }

    #[test]
    fn store_answers_never_bounce_a_bounce() {
        let req = Request {
            queue_id: "q1".into(),
            list: "dev@example.test".into(),
            extension: "return-1-bob=far.example".into(),
            sender: String::new(),
        };
        let refused: std::io::Result<Answer<()>> =
            Ok(Err(Status::Permanent("no such list".into())));
        assert!(matches!(answer(&req, "x", refused), Err(Status::Ok(_))));
        let busy: std::io::Result<Answer<()>> = Ok(Err(Status::Temporary("busy".into())));
        assert!(matches!(answer(&req, "x", busy), Err(Status::Temporary(_))));
        let down: std::io::Result<Answer<()>> = Err(std::io::ErrorKind::NotFound.into());
        assert!(matches!(answer(&req, "x", down), Err(Status::Temporary(_))));
        assert_eq!(answer(&req, "x", Ok(Ok(7))).ok(), Some(7));
    }

    #[test]
    fn window_and_probe_decisions() {
        let s = |count, first, probe| BounceState {
            count,
            first_bounce_at: first,
            probe_sent_at: probe,
        };
        assert!(!stale(&s(0, None, None), 1000, 10));
        assert!(!stale(&s(1, Some(995), None), 1000, 10));
        assert!(stale(&s(1, Some(989), None), 1000, 10));
        // An outstanding probe decides: fresh keeps the record, old clears it.
        assert!(!stale(&s(3, Some(1), Some(995)), 1000, 10));
        assert!(stale(&s(3, Some(999), Some(980)), 1000, 10));
        assert!(!wants_probe(&s(1, Some(1), None), 2));
        assert!(wants_probe(&s(2, Some(1), None), 2));
        assert!(wants_probe(&s(5, Some(1), None), 2));
        assert!(
            !wants_probe(&s(5, Some(1), Some(2)), 2),
            "one probe at a time"
        );
    }
}
