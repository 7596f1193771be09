//! moat-lists' view of the store, through moat-auth's list requests (docs/PROTOCOLS.md
//! "moat-auth"): moat-lists opens no database, so the store's credentials stay with moat-auth.
//! An `io::Error`, or a `Z`, means moat-auth could not answer: callers defer (temporary).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conn::{Conn, with_timeout};
use crate::wire::{Record, Status};

/// Member addresses per page of the `M` reply (moat-auth's `lists::PAGE`).
pub const PAGE: usize = 150;
/// The most members read for one post (bounds memory; a bigger list is an open item).
pub const MAX_MEMBERS: usize = 100_000;
/// moat-auth's `D` text for a list that does not exist.
pub const NO_SUCH_LIST: &str = "no such list";

/// A list's settings, as moat-lists needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    pub members_only: bool,
    pub moderated: bool,
    pub subject_prefix: String,
    pub max_message_bytes: Option<u64>,
    /// The HMAC key for confirmation cookies.
    pub secret: [u8; 32],
}

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

    /// Every member's address, sorted, read page by page on one connection.
    pub async fn members(&self, list: &str) -> std::io::Result<Answer<Vec<String>>> {
        with_timeout(self.timeout, async {
            let mut conn = Conn::connect(&self.path).await?;
            let mut all = Vec::new();
            loop {
                let req = Record::new(b'M').field(list).field(all.len().to_string());
                let page = match self.ask(&mut conn, &req).await? {
                    Ok(r) => texts(&r),
                    Err(s) => return Ok(Err(s)),
                };
                let n = page.len();
                all.extend(page);
                if n < PAGE || all.len() >= MAX_MEMBERS {
                    return Ok(Ok(all));
                }
            }
        })
        .await
    }

    /// Whether `address` is a member.
    pub async fn is_member(&self, list: &str, address: &str) -> std::io::Result<Answer<bool>> {
        let r = self
            .one(Record::new(b'I').field(list).field(address))
            .await?;
        Ok(r.map(|f| f.first().is_some_and(|v| v == "1")))
    }

    /// Adds `address`; `Ok(false)` when it was a member already.
    pub async fn subscribe(&self, list: &str, address: &str) -> std::io::Result<Answer<bool>> {
        let r = self
            .one(Record::new(b'S').field(list).field(address))
            .await?;
        Ok(r.map(|f| f.first().is_some_and(|v| v == "added")))
    }

    /// Removes `address`; `Ok(false)` when it was not a member.
    pub async fn unsubscribe(&self, list: &str, address: &str) -> std::io::Result<Answer<bool>> {
        let r = self
            .one(Record::new(b'U').field(list).field(address))
            .await?;
        Ok(r.map(|f| f.first().is_some_and(|v| v == "removed")))
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

fn parse_info(f: &[String]) -> Option<ListInfo> {
    let [members_only, moderated, prefix, max, secret] = f else {
        return None;
    };
    let flag = |v: &str| match v {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    };
    let max_message_bytes = match max.as_str() {
        "" => None,
        n => Some(n.parse().ok()?),
    };
    if secret.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(secret.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(ListInfo {
        members_only: flag(members_only)?,
        moderated: flag(moderated)?,
        subject_prefix: prefix.clone(),
        max_message_bytes,
        secret: key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_info_parsed_strictly() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let hex = "ab".repeat(32);
        let info = parse_info(&s(&["1", "0", "[dev] ", "", &hex])).expect("info");
        assert!(info.members_only && !info.moderated);
        assert_eq!(info.subject_prefix, "[dev] ");
        assert_eq!(info.max_message_bytes, None);
        assert_eq!(info.secret, [0xab; 32]);
        assert!(parse_info(&s(&["1", "0", "", "x", &hex])).is_none());
        assert!(parse_info(&s(&["2", "0", "", "", &hex])).is_none());
        assert!(parse_info(&s(&["1", "0", "", "", "ab"])).is_none());
    }
}
