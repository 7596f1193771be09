//! moat-lists' view of the store, through moat-auth's list requests (docs/PROTOCOLS.md
//! "moat-auth"): moat-lists opens no database, so the store's credentials stay with moat-auth.
//! An `io::Error`, or a `Z`, means moat-auth could not answer: callers defer (temporary).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conn::{Conn, with_timeout};
use crate::wire::{Record, Status};

/// Member addresses per page of the `M` reply (moat-auth's `lists::PAGE`).
pub const PAGE: usize = 150;
/// The most addresses read from one roster (bounds memory). A bigger roster is refused
/// with [`ROSTER_TOO_LARGE`] rather than cut short.
pub const MAX_MEMBERS: usize = 100_000;
/// The `Status::Permanent` text of [`ListStore::members`] for a roster over [`MAX_MEMBERS`].
pub const ROSTER_TOO_LARGE: &str = "5.3.3 roster larger than 100000";
/// moat-auth's `D` text for a list that does not exist.
pub const NO_SUCH_LIST: &str = "no such list";

/// A list's settings, as moat-lists needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    pub members_only: bool,
    pub moderated: bool,
    pub archive: bool,
    pub digest: bool,
    pub subject_prefix: String,
    pub max_message_bytes: Option<u64>,
    /// The HMAC key for confirmation cookies.
    pub secret: [u8; 32],
    /// `list`, `poster` or `none` (the store's `ReplyTo` spelling).
    pub reply_to: String,
    /// Appended to posts; "" = none; `\n` line ends.
    pub footer: String,
    /// Where `list-owner` mail goes; `None` = to the moderators.
    pub owner: Option<String>,
    pub next_post: u64,
    pub next_digest: u64,
    /// The last post a digest carried (0 = none yet).
    pub digested_through: u64,
    pub last_digest_at: Option<u64>,
}

/// Which roster of a list (the store's `MemberKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roster {
    Member,
    Digest,
    Moderator,
}

impl Roster {
    pub fn as_str(self) -> &'static str {
        match self {
            Roster::Member => "member",
            Roster::Digest => "digest",
            Roster::Moderator => "moderator",
        }
    }
}

/// One roster entry's bounce record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BounceState {
    pub count: u64,
    pub first_bounce_at: Option<u64>,
    pub probe_sent_at: Option<u64>,
}

/// moat-auth's `D` text for a bounce request about an address not on the roster.
pub const NOT_A_MEMBER: &str = "not a member";

/// A store answer: the value, or moat-auth's refusal (`Z`/`D` with its text).
pub type Answer<T> = Result<T, Status>;

#[derive(Debug, Clone)]
pub struct ListStore {
    path: PathBuf,
    timeout: Duration,
}

impl ListStore {
    pub fn new(auth_socket: &Path) -> ListStore {
        ListStore {
            path: auth_socket.to_path_buf(),
            timeout: Duration::from_secs(60),
        }
    }

    async fn ask(&self, conn: &mut Conn, req: &Record) -> std::io::Result<Answer<Record>> {
        conn.send(req).await?;
        let record = conn.expect().await?;
        let status = Status::from_record(&record)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(match status {
            Status::Ok(_) => Ok(record),
            other => Err(other),
        })
    }

    async fn one(&self, req: Record) -> std::io::Result<Answer<Vec<String>>> {
        with_timeout(self.timeout, async {
            let mut conn = Conn::connect(&self.path).await?;
            Ok(self.ask(&mut conn, &req).await?.map(|r| texts(&r)))
        })
        .await
    }

    /// The list's settings and secret.
    pub async fn get(&self, list: &str) -> std::io::Result<Answer<ListInfo>> {
        let fields = match self.one(Record::new(b'G').field(list)).await? {
            Ok(f) => f,
            Err(s) => return Ok(Err(s)),
        };
        parse_info(&fields)
            .map(Ok)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad list info"))
    }

    /// Every address on `roster`, sorted, read page by page on one connection. Each page
    /// asks for the addresses after the last one of the previous page (keyset paging), so a
    /// subscription while the roster is read skips or repeats no one. A roster of more than
    /// [`MAX_MEMBERS`] is not read at all: `Err(Status::Permanent(..))` (see
    /// [`ROSTER_TOO_LARGE`]), never a silently truncated list.
    pub async fn members(
        &self,
        list: &str,
        roster: Roster,
    ) -> std::io::Result<Answer<Vec<String>>> {
        with_timeout(self.timeout, async {
            let mut conn = Conn::connect(&self.path).await?;
            let mut all: Vec<String> = Vec::new();
            loop {
                let after = all.last().map_or("", String::as_str);
                let req = Record::new(b'M')
                    .field(list)
                    .field(after)
                    .field(roster.as_str());
                let page = match self.ask(&mut conn, &req).await? {
                    Ok(r) => texts(&r),
                    Err(s) => return Ok(Err(s)),
                };
                let n = page.len();
                if n > PAGE {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "roster page longer than the page size",
                    ));
                }
                all.extend(page);
                if all.len() > MAX_MEMBERS {
                    return Ok(Err(Status::Permanent(ROSTER_TOO_LARGE.into())));
                }
                if n < PAGE {
                    return Ok(Ok(all));
                }
            }
        })
        .await
    }

    /// Whether `address` is on `roster`.
    pub async fn is_member(
        &self,
        list: &str,
        address: &str,
        roster: Roster,
    ) -> std::io::Result<Answer<bool>> {
        let r = self.one(entry(b'I', list, address, roster)).await?;
        Ok(r.map(|f| f.first().is_some_and(|v| v == "1")))
    }

    /// Adds `address` to `roster`; `Ok(false)` when it was there already.
    pub async fn subscribe(
        &self,
        list: &str,
        address: &str,
        roster: Roster,
    ) -> std::io::Result<Answer<bool>> {
        let r = self.one(entry(b'S', list, address, roster)).await?;
        Ok(r.map(|f| f.first().is_some_and(|v| v == "added")))
    }

    /// Removes `address` from `roster`; `Ok(false)` when it was not there.
    pub async fn unsubscribe(
        &self,
        list: &str,
        address: &str,
        roster: Roster,
    ) -> std::io::Result<Answer<bool>> {
        let r = self.one(entry(b'U', list, address, roster)).await?;
        Ok(r.map(|f| f.first().is_some_and(|v| v == "removed")))
    }

    /// The entry's bounce record; `Ok(None)` when `address` is not on `roster`.
    pub async fn bounce_state(
        &self,
        list: &str,
        address: &str,
        roster: Roster,
    ) -> std::io::Result<Answer<Option<BounceState>>> {
        let r = self.one(entry(b'W', list, address, roster)).await?;
        match r {
            Ok(f) if f.is_empty() => Ok(Ok(None)),
            Ok(f) => parse_bounce(&f).map(|b| Ok(Some(b))),
            Err(s) => Ok(Err(s)),
        }
    }

    /// Counts a bounce at `at` (Unix seconds); `Err(D "not a member")` when absent.
    pub async fn record_bounce(
        &self,
        list: &str,
        address: &str,
        at: u64,
        roster: Roster,
    ) -> std::io::Result<Answer<BounceState>> {
        let req = Record::new(b'B')
            .field(list)
            .field(address)
            .field(at.to_string())
            .field(roster.as_str());
        self.bounce_reply(req).await
    }

    /// Records that a probe went at `at`, or (`None`) that none is outstanding.
    pub async fn set_probe_sent(
        &self,
        list: &str,
        address: &str,
        at: Option<u64>,
        roster: Roster,
    ) -> std::io::Result<Answer<BounceState>> {
        let req = Record::new(b'P')
            .field(list)
            .field(address)
            .field(at.map(|n| n.to_string()).unwrap_or_default())
            .field(roster.as_str());
        self.bounce_reply(req).await
    }

    /// Forgets the entry's bounces and probe.
    pub async fn clear_bounces(
        &self,
        list: &str,
        address: &str,
        roster: Roster,
    ) -> std::io::Result<Answer<BounceState>> {
        self.bounce_reply(entry(b'C', list, address, roster)).await
    }

    async fn bounce_reply(&self, req: Record) -> std::io::Result<Answer<BounceState>> {
        match self.one(req).await? {
            Ok(f) => parse_bounce(&f).map(Ok),
            Err(s) => Ok(Err(s)),
        }
    }

    /// Records a digest carrying the posts up to `through_post`, sent at `at`; its number.
    pub async fn record_digest(
        &self,
        list: &str,
        through_post: u64,
        at: u64,
    ) -> std::io::Result<Answer<u64>> {
        let req = Record::new(b'X')
            .field(list)
            .field(through_post.to_string())
            .field(at.to_string());
        match self.one(req).await? {
            Ok(f) => f
                .first()
                .and_then(|n| n.parse().ok())
                .map(Ok)
                .ok_or_else(|| bad_reply("bad digest number")),
            Err(s) => Ok(Err(s)),
        }
    }

    /// The next post's number (1, 2, ...; never the same twice).
    pub async fn next_post(&self, list: &str) -> std::io::Result<Answer<u64>> {
        let r = self.one(Record::new(b'N').field(list)).await?;
        match r {
            Ok(f) => f
                .first()
                .and_then(|n| n.parse().ok())
                .map(Ok)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad number")),
            Err(s) => Ok(Err(s)),
        }
    }
}

/// The reply's fields after the status text, as text (invalid UTF-8 replaced).
fn texts(r: &Record) -> Vec<String> {
    r.fields
        .iter()
        .skip(1)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

fn entry(kind: u8, list: &str, address: &str, roster: Roster) -> Record {
    Record::new(kind)
        .field(list)
        .field(address)
        .field(roster.as_str())
}

fn bad_reply(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

fn parse_bounce(f: &[String]) -> std::io::Result<BounceState> {
    let when = |v: &str| -> Option<Option<u64>> {
        match v {
            "" => Some(None),
            n => n.parse().ok().map(Some),
        }
    };
    let parsed = match f {
        [count, first, probe] => (|| {
            Some(BounceState {
                count: count.parse().ok()?,
                first_bounce_at: when(first)?,
                probe_sent_at: when(probe)?,
            })
        })(),
        _ => None,
    };
    parsed.ok_or_else(|| bad_reply("bad bounce state"))
}

fn parse_info(f: &[String]) -> Option<ListInfo> {
    let [
        members_only,
        moderated,
        archive,
        digest,
        prefix,
        max,
        secret,
        reply_to,
        footer,
        owner,
        next_post,
        next_digest,
        digested_through,
        last_digest_at,
    ] = f
    else {
        return None;
    };
    let flag = |v: &str| match v {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    };
    let optional = |v: &str| -> Option<Option<u64>> {
        match v {
            "" => Some(None),
            n => n.parse().ok().map(Some),
        }
    };
    if secret.len() != 64 || !matches!(reply_to.as_str(), "list" | "poster" | "none") {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(secret.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(ListInfo {
        members_only: flag(members_only)?,
        moderated: flag(moderated)?,
        archive: flag(archive)?,
        digest: flag(digest)?,
        subject_prefix: prefix.clone(),
        max_message_bytes: optional(max)?,
        secret: key,
        reply_to: reply_to.clone(),
        footer: footer.clone(),
        owner: Some(owner.clone()).filter(|o| !o.is_empty()),
        next_post: next_post.parse().ok()?,
        next_digest: next_digest.parse().ok()?,
        digested_through: digested_through.parse().ok()?,
        last_digest_at: optional(last_digest_at)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_info_parsed_strictly() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let hex = "ab".repeat(32);
        let good = [
            "1", "0", "1", "0", "[dev] ", "", &hex, "none", "", "", "3", "1", "0", "",
        ];
        let info = parse_info(&s(&good)).expect("info");
        assert!(info.members_only && !info.moderated && info.archive && !info.digest);
        assert_eq!(info.subject_prefix, "[dev] ");
        assert_eq!(info.max_message_bytes, None);
        assert_eq!(info.secret, [0xab; 32]);
        assert_eq!((info.next_post, info.owner), (3, None));
        let with = |i: usize, v: &str| {
            let mut f = s(&good);
            f[i] = v.to_string();
            parse_info(&f)
        };
        assert!(with(5, "x").is_none());
        assert!(with(0, "2").is_none());
        assert!(with(6, "ab").is_none());
        assert!(with(7, "everyone").is_none());
        assert!(parse_info(&s(&good[..13])).is_none());
    }

    /// A moat-auth stand-in that answers `M` from `roster` (sorted) by keyset, records the
    /// `after` field of each request, and subscribes `late` once the first page is out.
    async fn serve_roster(
        listener: tokio::net::UnixListener,
        mut roster: Vec<String>,
        late: Option<String>,
        afters: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut conn = Conn::new(stream);
        while let Some(req) = conn.recv().await.expect("recv") {
            assert_eq!(req.kind, b'M');
            let after = String::from_utf8(req.fields[1].clone()).expect("utf-8");
            afters.lock().expect("lock").push(after.clone());
            let key = after.to_lowercase();
            let start = roster.partition_point(|a| a.to_lowercase() <= key);
            let page: Vec<&String> = roster[start..].iter().take(PAGE).collect();
            let reply = page
                .iter()
                .fold(Status::Ok(String::new()).to_record(), |r, a| r.field(a));
            conn.send(&reply).await.expect("send");
            if let Some(a) = late.as_ref().filter(|_| after.is_empty()) {
                roster.push(a.clone());
                roster.sort_by_key(|a| a.to_lowercase());
            }
        }
    }

    fn roster_of(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i:06}@example.test")).collect()
    }

    async fn read_roster(
        n: usize,
        late: Option<&str>,
    ) -> (Answer<Vec<String>>, Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("auth.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let afters = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let roster = roster_of(n);
        let server = tokio::spawn(serve_roster(
            listener,
            roster.clone(),
            late.map(str::to_owned),
            afters.clone(),
        ));
        let got = ListStore::new(&path)
            .members("dev@example.test", Roster::Member)
            .await
            .expect("members");
        server.await.expect("server");
        let afters = afters.lock().expect("lock").clone();
        (got, roster, afters)
    }

    #[tokio::test]
    async fn members_paged_by_key() {
        let (got, roster, afters) = read_roster(2 * PAGE + 7, None).await;
        assert_eq!(got, Ok(roster.clone()));
        assert_eq!(
            afters,
            ["", roster[PAGE - 1].as_str(), roster[2 * PAGE - 1].as_str()]
        );
        // A roster of exactly one page still asks once more, and gets an empty page.
        let (got, roster, afters) = read_roster(PAGE, None).await;
        assert_eq!(got, Ok(roster.clone()));
        assert_eq!(afters.len(), 2);
    }

    #[tokio::test]
    async fn members_subscribed_meanwhile_skip_no_one() {
        // "a..." sorts before the whole first page: by offset, the second page would have
        // started one address early and repeated m000149.
        let (got, roster, _) = read_roster(2 * PAGE, Some("aaa@example.test")).await;
        let got = got.expect("roster");
        assert_eq!(got, roster);
    }

    #[tokio::test]
    async fn members_over_the_cap_refused() {
        let (got, _, _) = read_roster(MAX_MEMBERS + 1, None).await;
        assert_eq!(got, Err(Status::Permanent(ROSTER_TOO_LARGE.into())));
        let (got, roster, _) = read_roster(MAX_MEMBERS, None).await;
        assert_eq!(got.expect("at the cap").len(), roster.len());
    }

    #[test]
    fn bounce_state_parsed() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let b = parse_bounce(&s(&["2", "100", ""])).expect("state");
        assert_eq!(
            (b.count, b.first_bounce_at, b.probe_sent_at),
            (2, Some(100), None)
        );
        assert!(parse_bounce(&s(&["x", "", ""])).is_err());
        assert!(parse_bounce(&s(&["1", ""])).is_err());
    }
}
