//! One injection: `H` [origin, client] (already read), `M` [bytes]..., optional `D` [RET, ENVID,
//! per recipient NOTIFY;ORCPT] (RFC 3461, see `client::queue::Dsn`), optional `U` [] (the MAIL
//! FROM carried SMTPUTF8), optional `V` [] (VERP: one sender per recipient, `verp.rs`),
//! optional `W` [one-click attribute] (a list post's RFC 8058 URL base and key, checked by
//! `OneClick::decode`; only from moat-lists' uid (`peers_lists`) or the queue's own, see
//! `may_one_click`: anyone else is answered `D` 5.7.1),
//! optional `R` [recipients...] records, `E` [sender, recipients...] (the envelope's recipients
//! are the `R` records' in order, then `E`'s: a list post's membership needs several records),
//! answered `K` [queue id] only after the store committed the message (`store::Draft::commit`).
//!
//! SECURITY: the message size is counted while it arrives and bounded by `max_message_size`
//! (over: the file is dropped at once and the rest is read and discarded, then `D`); the envelope
//! is checked (`envelope::Envelope::check`); a peer that is not moat-smtpd, moat-local or the queue
//! itself cannot claim an origin: its mail is marked `sendmail`; origin `list` (signed as the
//! list's domain) only moat-lists' uid (`peers_lists`) may claim. A connection that ends before `E`,
//! or any error, drops the draft, which removes its file: no `K`, nothing left behind.
//! Recipients are counted as their records arrive and bounded by the peer's limit
//! (`recipient_limit`: 100,000 for the trusted local peers, 1000 for anyone else); over it, the
//! rest is read and discarded, then `D`.

use std::sync::Arc;

use moat_common::client::one_click::OneClick;
use moat_common::client::queue::{Dsn, MAX_BULK_RECIPIENTS, MAX_RECIPIENTS, Origin, RcptDsn, Ret};
use moat_common::conn::{Conn, with_timeout};
use moat_common::fdpass::Peer;
use moat_common::info;
use moat_common::wire::{Record, Status};

use super::envelope::{Envelope, MAX_CLIENT, clean};
use super::scheduler::Command;
use super::server::{IDLE, send};
use super::store::Draft;
use super::{Ctx, blocking};
use moat_common::date;

/// Message bytes gathered before they are written to the file.
const WRITE_BATCH: usize = 256 * 1024;

/// Runs the injection whose `H` record is `open` and sends the verdict.
pub async fn run(
    ctx: &Arc<Ctx>,
    conn: &mut Conn,
    peer: Peer,
    open: &Record,
) -> std::io::Result<()> {
    let verdict = receive(ctx, conn, peer, open).await?;
    send(conn, &verdict).await
}

/// A temporary failure for a storage error, in words the sender's user can act on.
pub fn storage_failure(e: &std::io::Error) -> Status {
    if e.kind() == std::io::ErrorKind::StorageFull {
        Status::Temporary("4.3.1 the queue's disk is full, try again later".into())
    } else {
        Status::Temporary(format!("4.3.0 cannot write the message to the queue: {e}"))
    }
}

fn trusted(ctx: &Ctx, uid: u32) -> bool {
    uid == ctx.own_uid
        || ctx.settings.peers_smtpd.contains(&uid)
        || ctx.settings.peers_local.contains(&uid)
}

/// Who may attach a one-click attribute (`W`): moat-lists (`peers_lists`) and the queue.
fn may_one_click(ctx: &Ctx, uid: u32) -> bool {
    uid == ctx.own_uid || ctx.settings.peers_lists.contains(&uid)
}

async fn receive(
    ctx: &Arc<Ctx>,
    conn: &mut Conn,
    peer: Peer,
    open: &Record,
) -> std::io::Result<Status> {
    // The first problem decides the answer; the rest of the message is still read so the client
    // hears it after `E`, as the protocol says.
    let mut problem: Option<Status> = None;
    let claimed = open.text(0).ok().and_then(Origin::parse);
    let origin = match claimed {
        // Signed as the list's domain: moat-lists' alone.
        Some(Origin::List) if ctx.settings.peers_lists.contains(&peer.uid) => Origin::List,
        Some(Origin::List) => Origin::Sendmail,
        Some(origin) if trusted(ctx, peer.uid) => origin,
        Some(_) => Origin::Sendmail,
        None => {
            problem = Some(Status::Permanent("unknown origin in H record".into()));
            Origin::Sendmail
        }
    };
    let client = clean(open.text(1).unwrap_or(""), MAX_CLIENT);
    let store = Arc::clone(&ctx.store);
    let mut draft: Option<Draft> = match blocking(move || store.create(date::now())).await {
        Ok(d) => Some(d),
        Err(e) => {
            problem.get_or_insert(storage_failure(&e));
            None
        }
    };
    let max = ctx.settings.max_message_size;
    let mut pending: Vec<u8> = Vec::new();
    let mut size: u64 = 0;
    let mut dsn_record: Option<Record> = None;
    let mut smtputf8 = false;
    let mut verp = false;
    let mut one_click: Option<OneClick> = None;
    // Recipients of `R` records, bounded by this peer's limit as they arrive.
    let limit = recipient_limit(ctx, peer.uid);
    let mut listed: Vec<String> = Vec::new();
    let envelope = loop {
        let record = with_timeout(IDLE, conn.recv()).await?.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the client left before the envelope: nothing queued",
            )
        })?;
        match record.kind {
            b'M' => {
                let chunk = record.fields.first().map(Vec::as_slice).unwrap_or_default();
                size += chunk.len() as u64;
                if problem.is_some() {
                    continue;
                }
                if size > max {
                    problem = Some(Status::Permanent(format!(
                        "5.3.4 message too big: the limit is {max} bytes"
                    )));
                    draft = None;
                    pending = Vec::new();
                    continue;
                }
                pending.extend_from_slice(chunk);
                if pending.len() >= WRITE_BATCH
                    && let Some(mut d) = draft.take()
                {
                    let bytes = std::mem::take(&mut pending);
                    match blocking(move || d.write(&bytes).map(|()| d)).await {
                        Ok(d) => draft = Some(d),
                        Err(e) => problem = Some(storage_failure(&e)),
                    }
                }
            }
            b'D' if dsn_record.is_none() => dsn_record = Some(record),
            b'U' if !smtputf8 && record.fields.is_empty() => smtputf8 = true,
            b'V' if !verp && record.fields.is_empty() => verp = true,
            b'W' if one_click.is_none() && record.fields.len() == 1 => {
                let parsed = record.text(0).map_err(|e| e.to_string());
                match parsed.and_then(OneClick::decode) {
                    // Per-recipient headers in mail from any other peer would let it make
                    // our delivery agents write lines of its choice: only list posts have
                    // them, so only moat-lists (and the queue itself) may send them; not
                    // moat-smtpd, whose mail comes from anyone.
                    Ok(oc) if may_one_click(ctx, peer.uid) => one_click = Some(oc),
                    Ok(_) => {
                        problem.get_or_insert(Status::Permanent(
                            "5.7.1 one-click attribute not allowed".into(),
                        ));
                    }
                    Err(e) => {
                        problem.get_or_insert(Status::Permanent(format!("5.5.4 {e}")));
                    }
                }
            }
            b'R' => {
                if problem.is_some() {
                    continue;
                }
                if listed.len() + record.fields.len() > limit {
                    problem = Some(too_many(limit));
                    listed = Vec::new();
                    continue;
                }
                for i in 0..record.fields.len() {
                    match record.text(i) {
                        Ok(r) => listed.push(r.to_string()),
                        Err(_) => {
                            problem = Some(Status::Permanent("envelope is not UTF-8".into()));
                            break;
                        }
                    }
                }
            }
            b'E' => break record,
            other => {
                let text = format!(
                    "unexpected record {:?} in an injection",
                    char::from(other).escape_default()
                );
                return Ok(Status::Permanent(text));
            }
        }
    };
    if let Some(problem) = problem {
        return Ok(problem);
    }
    let Some(mut draft) = draft else {
        return Ok(Status::Temporary("4.3.0 queue file lost".into()));
    };
    let texts: Result<Vec<&str>, _> = (0..envelope.fields.len())
        .map(|i| envelope.text(i))
        .collect();
    let Ok(texts) = texts else {
        return Ok(Status::Permanent("envelope is not UTF-8".into()));
    };
    let Some((sender, rest)) = texts.split_first() else {
        return Ok(Status::Permanent("envelope without a sender".into()));
    };
    if listed.len() + rest.len() > limit {
        return Ok(too_many(limit));
    }
    listed.extend(rest.iter().map(|r| r.to_string()));
    let recipients = listed;
    let dsn = match dsn_record.map(|r| parse_dsn(&r, recipients.len())) {
        None => Dsn::default(),
        Some(Ok(dsn)) => dsn,
        Some(Err(e)) => return Ok(Status::Permanent(format!("5.5.4 {e}"))),
    };
    let mut env = Envelope {
        arrival: date::now(),
        origin,
        uid: peer.uid,
        size,
        client,
        sender: sender.to_string(),
        recipients,
        dsn,
        smtputf8,
        verp,
        one_click,
    };
    if let Err(e) = env.check() {
        return Ok(Status::Permanent(format!("5.1.3 {e}")));
    }
    let committed = blocking(move || {
        draft.write(&pending)?;
        let id = draft.commit(&mut env)?;
        Ok((id, env))
    })
    .await;
    let (id, env) = match committed {
        Ok(done) => done,
        Err(e) => return Ok(storage_failure(&e)),
    };
    info!(id = &id;
        "from=<{}> size={} nrcpt={} origin={} client={} uid={}{}{}",
        env.sender, env.size, env.recipients.len(), env.origin.as_str(), env.client, env.uid,
        if env.verp { " verp" } else { "" },
        if env.one_click.is_some() { " one-click" } else { "" }
    );
    // If the scheduler is gone (stopping), the next start picks the message up from disk.
    let _ = ctx.scheduler.send(Command::New(id.clone()));
    Ok(Status::Ok(id))
}

/// The most recipients `uid` may put in one envelope: a whole list's membership for the queue
/// itself and the trusted local peers (moat-local's forwards, moat-lists' posts), the SMTP
/// limit for everyone else (moat-smtpd, `sendmail`).
pub fn recipient_limit(ctx: &Ctx, uid: u32) -> usize {
    if uid == ctx.own_uid || ctx.settings.peers_local.contains(&uid) {
        MAX_BULK_RECIPIENTS
    } else {
        MAX_RECIPIENTS
    }
}

fn too_many(limit: usize) -> Status {
    Status::Permanent(format!(
        "5.5.3 too many recipients: at most {limit} per message"
    ))
}

/// The `D` record: [RET ("", FULL, HDRS), ENVID ("" = none), then nothing or one field per
/// recipient (`RcptDsn::encode`)]. Checked and normalized.
fn parse_dsn(record: &Record, recipients: usize) -> Result<Dsn, String> {
    let text = |i: usize| {
        record
            .text(i)
            .map_err(|_| "DSN record is not UTF-8".to_string())
    };
    if record.fields.len() < 2 {
        return Err("DSN record too short".into());
    }
    let ret = match text(0)? {
        "" => None,
        r => Some(Ret::parse(r).ok_or("bad RET in the DSN record")?),
    };
    let envid = Some(text(1)?.to_string()).filter(|e| !e.is_empty());
    let per = record.fields.len() - 2;
    if per != 0 && per != recipients {
        return Err("DSN record does not match the recipients".into());
    }
    let rcpts: Result<Vec<RcptDsn>, String> = (2..record.fields.len())
        .map(|i| RcptDsn::decode(text(i)?))
        .collect();
    let mut dsn = Dsn {
        ret,
        envid,
        recipients: rcpts?,
    };
    dsn.normalize();
    dsn.check(recipients)?;
    Ok(dsn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> Record {
        fields.iter().fold(Record::new(b'D'), |r, f| r.field(*f))
    }

    #[test]
    fn dsn_record() {
        let dsn = parse_dsn(&record(&["FULL", "id1", "NEVER;", ";rfc822;o@x"]), 2).expect("ok");
        assert_eq!(dsn.ret, Some(Ret::Full));
        assert_eq!(dsn.envid.as_deref(), Some("id1"));
        assert!(!dsn.recipient(0).wants_failure());
        assert_eq!(dsn.recipient(1).orcpt.map(|o| o.addr), Some("o@x".into()));
        // MAIL-level only, and per-recipient fields that ask nothing, normalize the same way.
        assert_eq!(
            parse_dsn(&record(&["", "id1"]), 3).expect("ok").recipients,
            vec![]
        );
        assert_eq!(parse_dsn(&record(&["", "", "", ""]), 2), Ok(Dsn::default()));
        for bad in [
            &["FULL"][..],
            &["ALL", ""],
            &["", "a\nb"],
            &["", "", "NEVER;"],
            &["", "", "BAD;", ""],
        ] {
            assert!(parse_dsn(&record(bad), 2).is_err(), "{bad:?}");
        }
        let long = "x".repeat(101);
        assert!(parse_dsn(&record(&["", &long]), 1).is_err());
    }
}
