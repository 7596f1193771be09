//! moat-queue's injection protocol: `H` open, `M` chunks, optional `D` DSN request, optional `U`
//! (SMTPUTF8 asked), optional `V` (VERP), optional `W` (RFC 8058 one-click attribute,
//! `one_click::OneClick::encode`), optional `R` [recipient...] records, `E` envelope [sender,
//! recipient...], then `K [queue id]`. The envelope's recipients are those of the `R` records in
//! order, then those of `E` (`envelope_records`).

use std::path::Path;
use std::time::Duration;

use crate::client::one_click::OneClick;
use crate::conn::{Conn, with_timeout};
use crate::wire::{MAX_FIELDS, MAX_FRAME, Record, Status};

/// The largest message chunk per `M` record (below `wire::MAX_FRAME`).
pub const CHUNK: usize = 60 * 1024;

/// The most recipients of one envelope injected by anyone but a trusted local peer (moat-smtpd,
/// `sendmail`): the SMTP side's limit (moat-smtpd also enforces its own, smaller, per
/// transaction).
pub const MAX_RECIPIENTS: usize = 1000;
/// The most recipients of one envelope injected by a trusted local peer (the queue's
/// `peers_local`: moat-local's forwards and moat-lists' posts): a whole list's membership
/// (`list_store::MAX_MEMBERS`) in one queued copy. They cross in `R` records before `E`
/// (`envelope_records`), since one record holds at most `MAX_FIELDS` fields and `MAX_FRAME`
/// bytes.
pub const MAX_BULK_RECIPIENTS: usize = 100_000;
/// The most recipients that can carry per-recipient DSN parameters (they all go in one `D`
/// record, after RET and ENVID).
pub const MAX_DSN_RECIPIENTS: usize = MAX_FIELDS - 2;

/// Where a message came from (the queue logs it and treats bounces and sendmail specially).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Smtp,
    Submission,
    Sendmail,
    Forward,
    Bounce,
    /// A list post from moat-lists (only its uid may claim it): DKIM-signed as the envelope
    /// sender's domain, the list's, whatever its From: says.
    List,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Smtp => "smtp",
            Origin::Submission => "submission",
            Origin::Sendmail => "sendmail",
            Origin::Forward => "forward",
            Origin::Bounce => "bounce",
            Origin::List => "list",
        }
    }

    pub fn parse(text: &str) -> Option<Origin> {
        Some(match text {
            "smtp" => Origin::Smtp,
            "submission" => Origin::Submission,
            "sendmail" => Origin::Sendmail,
            "forward" => Origin::Forward,
            "bounce" => Origin::Bounce,
            "list" => Origin::List,
            _ => return None,
        })
    }
}

/// RFC 3461 4.4: the decoded ENVID is at most 100 characters.
pub const MAX_ENVID: usize = 100;
/// RFC 3461 4.2: the decoded ORCPT address is at most 500 characters.
pub const MAX_ORCPT: usize = 500;
/// The longest ORCPT address type kept (`rfc822`, `utf-8`, ...).
pub const MAX_ADDR_TYPE: usize = 32;

/// RET= (RFC 3461 4.3): what a failure report returns of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

impl Ret {
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }

    pub fn parse(text: &str) -> Option<Ret> {
        match text {
            "FULL" => Some(Ret::Full),
            "HDRS" => Some(Ret::Hdrs),
            _ => None,
        }
    }
}

/// NOTIFY= (RFC 3461 4.1); all three false is `NEVER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };

    /// `NEVER` or the words joined by `,` (`SUCCESS,FAILURE,DELAY` order).
    pub fn to_text(self) -> String {
        let words: Vec<&str> = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ]
        .into_iter()
        .filter_map(|(on, w)| on.then_some(w))
        .collect();
        if words.is_empty() {
            "NEVER".into()
        } else {
            words.join(",")
        }
    }

    /// The inverse of `to_text` (upper case, no repeats, `NEVER` alone).
    pub fn parse(text: &str) -> Option<Notify> {
        if text == "NEVER" {
            return Some(Notify::NEVER);
        }
        let mut n = Notify::NEVER;
        for word in text.split(',') {
            let flag = match word {
                "SUCCESS" => &mut n.success,
                "FAILURE" => &mut n.failure,
                "DELAY" => &mut n.delay,
                _ => return None,
            };
            if *flag {
                return None;
            }
            *flag = true;
        }
        Some(n)
    }
}

/// ORCPT= (RFC 3461 4.2), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orcpt {
    pub addr_type: String,
    pub addr: String,
}

/// The DSN request of one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptDsn {
    pub notify: Option<Notify>,
    pub orcpt: Option<Orcpt>,
}

impl RcptDsn {
    pub fn is_empty(&self) -> bool {
        self.notify.is_none() && self.orcpt.is_none()
    }

    /// May a failure of this recipient be reported? (No NOTIFY = the default, FAILURE,DELAY.)
    pub fn wants_failure(&self) -> bool {
        self.notify.is_none_or(|n| n.failure)
    }

    /// May a delay of this recipient be reported? (No NOTIFY = the default, FAILURE,DELAY.)
    pub fn wants_delay(&self) -> bool {
        self.notify.is_none_or(|n| n.delay)
    }

    /// One injection field: `""`, or `<notify>;` then `<addr-type>;<addr>` if ORCPT is set.
    pub fn encode(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut out = self.notify.map(Notify::to_text).unwrap_or_default();
        out.push(';');
        if let Some(o) = &self.orcpt {
            out.push_str(&format!("{};{}", o.addr_type, o.addr));
        }
        out
    }

    /// The inverse of `encode`, checked (`check`).
    pub fn decode(text: &str) -> Result<RcptDsn, String> {
        if text.is_empty() {
            return Ok(RcptDsn::default());
        }
        let (notify, orcpt) = text.split_once(';').ok_or("DSN field without ';'")?;
        let notify = match notify {
            "" => None,
            n => Some(Notify::parse(n).ok_or("bad NOTIFY")?),
        };
        let orcpt = match orcpt {
            "" => None,
            o => {
                let (t, a) = o.split_once(';').ok_or("bad ORCPT")?;
                Some(Orcpt {
                    addr_type: t.to_string(),
                    addr: a.to_string(),
                })
            }
        };
        let dsn = RcptDsn { notify, orcpt };
        dsn.check()?;
        Ok(dsn)
    }

    pub fn check(&self) -> Result<(), String> {
        if let Some(o) = &self.orcpt {
            let type_ok = (1..=MAX_ADDR_TYPE).contains(&o.addr_type.len())
                && o.addr_type
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !type_ok {
                return Err("bad ORCPT address type".into());
            }
            check_dsn_text(&o.addr, MAX_ORCPT).map_err(|e| format!("bad ORCPT: {e}"))?;
        }
        Ok(())
    }
}

/// The DSN request of a message (RFC 3461): RET and ENVID from MAIL FROM, and per recipient
/// (in envelope order) NOTIFY and ORCPT. `recipients` is empty or as long as the envelope's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    pub ret: Option<Ret>,
    pub envid: Option<String>,
    pub recipients: Vec<RcptDsn>,
}

impl Dsn {
    pub fn is_empty(&self) -> bool {
        self.ret.is_none() && self.envid.is_none() && self.recipients.iter().all(RcptDsn::is_empty)
    }

    /// Empties `recipients` when none of them asked anything (one canonical form).
    pub fn normalize(&mut self) {
        if self.recipients.iter().all(RcptDsn::is_empty) {
            self.recipients.clear();
        }
    }

    /// The request for recipient `index` (the default if there is none).
    pub fn recipient(&self, index: usize) -> RcptDsn {
        self.recipients.get(index).cloned().unwrap_or_default()
    }

    /// Checks the values against their bounds; `recipients` is how many the envelope has.
    pub fn check(&self, recipients: usize) -> Result<(), String> {
        if let Some(envid) = &self.envid {
            check_dsn_text(envid, MAX_ENVID).map_err(|e| format!("bad ENVID: {e}"))?;
        }
        if !self.recipients.is_empty() && self.recipients.len() != recipients {
            return Err("DSN parameters do not match the recipients".into());
        }
        self.recipients.iter().try_for_each(RcptDsn::check)
    }
}

/// A decoded DSN value: not empty, at most `max` bytes, no control characters (CR, LF, NUL...).
pub fn check_dsn_text(text: &str, max: usize) -> Result<(), String> {
    if text.is_empty() || text.len() > max {
        return Err(format!("empty or longer than {max} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err("control character".into());
    }
    Ok(())
}

/// One message on its way into the queue.
pub struct Injection {
    conn: Conn,
    pending: Vec<u8>,
    timeout: Duration,
    smtputf8: bool,
    verp: bool,
    one_click: Option<OneClick>,
}

impl Injection {
    /// Opens a queue file. `client` is a free-text description for the logs.
    pub async fn open(socket: &Path, origin: Origin, client: &str) -> std::io::Result<Injection> {
        let timeout = crate::conn::DEFAULT_TIMEOUT;
        let conn = with_timeout(timeout, async {
            let mut conn = Conn::connect(socket).await?;
            conn.send(&Record::new(b'H').field(origin.as_str()).field(client))
                .await?;
            Ok(conn)
        })
        .await?;
        Ok(Injection {
            conn,
            pending: Vec::with_capacity(CHUNK),
            timeout,
            smtputf8: false,
            verp: false,
            one_click: None,
        })
    }

    /// Records that the sender asked for SMTPUTF8 (RFC 6531; sent as a `U` record before `E`),
    /// so remote delivery knows a non-ASCII header needs it.
    pub fn set_smtputf8(&mut self) {
        self.smtputf8 = true;
    }

    /// Asks for VERP (sent as a `V` record before `E`): each recipient gets its own envelope
    /// sender `prefix-local=domain@senderdomain` built from the sender `prefix@senderdomain`, so
    /// a list manager learns from a bounce which subscriber it was for.
    pub fn set_verp(&mut self) {
        self.verp = true;
    }

    /// Asks for per-recipient RFC 8058 headers (sent as a `W` record before `E`): the delivery
    /// agents prepend each recipient's `List-Unsubscribe` URL (`one_click`).
    pub fn set_one_click(&mut self, one_click: OneClick) {
        self.one_click = Some(one_click);
    }

    /// Adds message bytes (CRLF line endings, exactly as they will be delivered).
    pub async fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let room = CHUNK - self.pending.len();
            let take = room.min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == CHUNK {
                self.flush_chunk().await?;
            }
        }
        Ok(())
    }

    async fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let record = Record::new(b'M').field(&self.pending);
        with_timeout(self.timeout, self.conn.send(&record)).await?;
        self.pending.clear();
        Ok(())
    }

    /// Sends the envelope and waits for the queue's verdict: `Status::Ok(queue id)` means the
    /// message is safely on disk. `sender` "" is the null sender.
    pub async fn finish(self, sender: &str, recipients: &[String]) -> std::io::Result<Status> {
        self.finish_with_dsn(sender, recipients, &Dsn::default())
            .await
    }

    /// `finish`, with the message's DSN request (RFC 3461), sent as a `D` record before `E`
    /// when it asks anything: [RET or "", ENVID or "", then per recipient `RcptDsn::encode`].
    pub async fn finish_with_dsn(
        mut self,
        sender: &str,
        recipients: &[String],
        dsn: &Dsn,
    ) -> std::io::Result<Status> {
        if dsn.recipients.len() > MAX_DSN_RECIPIENTS {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "per-recipient DSN parameters for more than {MAX_DSN_RECIPIENTS} recipients"
                ),
            ));
        }
        self.flush_chunk().await?;
        if !dsn.is_empty() {
            let mut record = Record::new(b'D')
                .field(dsn.ret.map_or("", Ret::as_str))
                .field(dsn.envid.as_deref().unwrap_or(""));
            for r in &dsn.recipients {
                record = record.field(r.encode());
            }
            with_timeout(self.timeout, self.conn.send(&record)).await?;
        }
        if self.smtputf8 {
            with_timeout(self.timeout, self.conn.send(&Record::new(b'U'))).await?;
        }
        if self.verp {
            with_timeout(self.timeout, self.conn.send(&Record::new(b'V'))).await?;
        }
        if let Some(oc) = &self.one_click {
            let record = Record::new(b'W').field(oc.encode());
            with_timeout(self.timeout, self.conn.send(&record)).await?;
        }
        let (records, envelope) = envelope_records(sender, recipients);
        with_timeout(self.timeout, async {
            for record in &records {
                self.conn.send(record).await?;
            }
            self.conn.send(&envelope).await?;
            Ok(self.conn.status().await?.0)
        })
        .await
    }
}

/// The `R` records and the `E` record carrying `sender` and `recipients`, each within
/// `MAX_FIELDS` fields and `MAX_FRAME` bytes (an address too long for a frame makes a record the
/// queue refuses, as it would refuse the address). Small envelopes need no `R` record at all.
pub fn envelope_records(sender: &str, recipients: &[String]) -> (Vec<Record>, Record) {
    // A frame's payload is the kind byte and, per field, a 4-byte length and the bytes.
    let cost = |field: &str| 4 + field.len();
    let fits = |fields: usize, bytes: usize| fields <= MAX_FIELDS && bytes <= MAX_FRAME;
    let mut records = Vec::new();
    let mut current = Record::new(b'R');
    let mut bytes = 1;
    for r in recipients {
        if !current.fields.is_empty() && !fits(current.fields.len() + 1, bytes + cost(r)) {
            records.push(std::mem::replace(&mut current, Record::new(b'R')));
            bytes = 1;
        }
        bytes += cost(r);
        current = current.field(r);
    }
    // The last group goes in `E` with the sender when it fits there, else in its own `R`.
    let mut envelope = Record::new(b'E').field(sender);
    if fits(current.fields.len() + 1, bytes + cost(sender)) {
        envelope.fields.append(&mut current.fields);
    } else {
        records.push(current);
    }
    (records, envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_text() {
        for text in ["NEVER", "SUCCESS", "FAILURE,DELAY", "SUCCESS,FAILURE,DELAY"] {
            assert_eq!(
                Notify::parse(text).map(Notify::to_text).as_deref(),
                Some(text)
            );
        }
        for bad in ["", "never", "FAILURE,FAILURE", "NEVER,FAILURE", "X"] {
            assert_eq!(Notify::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rcpt_field_round_trip() {
        let samples = [
            RcptDsn::default(),
            RcptDsn {
                notify: Some(Notify::NEVER),
                orcpt: None,
            },
            RcptDsn {
                notify: None,
                orcpt: Some(Orcpt {
                    addr_type: "rfc822".into(),
                    addr: "\"a;b\"@example.test".into(),
                }),
            },
        ];
        for s in samples {
            assert_eq!(RcptDsn::decode(&s.encode()), Ok(s.clone()));
        }
        for bad in [
            "x",
            "NEVER",
            "BAD;",
            ";rfc822",
            ";rfc 822;a@b",
            ";rfc822;",
            ";rfc822;a\r\nb",
        ] {
            assert!(RcptDsn::decode(bad).is_err(), "{bad:?}");
        }
        assert!(!RcptDsn::decode("NEVER;").expect("decodes").wants_failure());
        assert!(
            !RcptDsn::decode("SUCCESS;")
                .expect("decodes")
                .wants_failure()
        );
        assert!(RcptDsn::decode("").expect("decodes").wants_failure());
    }

    #[test]
    fn big_envelopes_are_split_into_records_that_fit() {
        let few: Vec<String> = vec!["a@b.test".into(), "c@d.test".into()];
        let (records, envelope) = envelope_records("s@x.test", &few);
        assert!(records.is_empty());
        assert_eq!(envelope.fields.len(), 3);
        let many: Vec<String> = (0..5000).map(|i| format!("member{i}@list.test")).collect();
        let long: Vec<String> = (0..300)
            .map(|i| format!("{i}{}@example.test", "x".repeat(300)))
            .collect();
        for rcpts in [&many, &long] {
            let (records, envelope) = envelope_records("s@x.test", rcpts);
            assert!(!records.is_empty());
            for r in records.iter().chain(std::iter::once(&envelope)) {
                let bytes = r.encode().expect("every record fits a frame");
                assert!(bytes.len() <= MAX_FRAME + 4);
            }
            let mut back: Vec<String> = Vec::new();
            for r in &records {
                assert_eq!(r.kind, b'R');
                back.extend((0..r.fields.len()).map(|i| r.text(i).expect("utf8").to_string()));
            }
            assert_eq!(envelope.kind, b'E');
            assert_eq!(envelope.text(0).expect("sender"), "s@x.test");
            back.extend(
                (1..envelope.fields.len()).map(|i| envelope.text(i).expect("utf8").to_string()),
            );
            assert_eq!(&back, rcpts, "every recipient, in order");
        }
    }

    #[test]
    fn dsn_checks() {
        let mut d = Dsn {
            envid: Some("x".repeat(MAX_ENVID + 1)),
            ..Dsn::default()
        };
        assert!(d.check(1).is_err());
        d.envid = Some("a\0b".into());
        assert!(d.check(1).is_err());
        d.envid = Some("abc".into());
        d.recipients = vec![RcptDsn::default(); 2];
        assert!(d.check(1).is_err());
        d.normalize();
        assert_eq!(d.check(1), Ok(()));
    }
}
