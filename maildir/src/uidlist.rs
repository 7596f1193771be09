//! The UID list file, in Dovecot's `dovecot-uidlist` format, so that Dovecot can open a Moat Maildir
//! and keep every UID (and Moat can adopt a Dovecot Maildir the same way).
//!
//! Format version 3 (Dovecot ≥ 1.1; src/lib-storage/index/maildir/maildir-uidlist.c):
//! ```text
//! 3 V1700000000 N43 G0123456789abcdef0123456789abcdef    <- header: version, then <key><value> fields
//! 41 :1700000000.M1P2Q3R4.host,S=120,W=123              <- <uid> [<key><value> ...] :<base name>
//! 42 GABCD :1700000001.M9P2Q4R5.host,S=99,W=101
//! ```
//! * Header keys: `V` UIDVALIDITY, `N` next UID, `G` mailbox GUID (32 hex digits); Dovecot adds others
//!   (e.g. `P` POP3 UIDL format), which we keep verbatim.
//! * Record keys are upper-case letters (`S`/`W` sizes, `P` POP3 UIDL, `O` POP3 order, `G` message
//!   GUID); we keep them verbatim. Dovecot drops keys that are not A-Z, and so do we.
//! * The file name after ` :` is the base name, without the `:2,` flag suffix (Dovecot strips it when
//!   writing), so flag changes and new/ → cur/ moves keep the UID.
//! * UIDs are strictly increasing; N may lag behind the last record when Dovecot appended records, so the
//!   effective next UID is max(N, last + 1).
//! * Version 1 (Dovecot 1.0, Courier's courierimapuiddb): header `1 <uidvalidity> <nextuid>`, records
//!   `<uid> <filename>`. Read, never written.
//!
//! Dovecot appends records in place under its lock, so a lock-free reader can see a last line without
//! its newline; such a line is ignored (it is not committed yet). Anything else malformed makes the
//! whole file `Error::Corrupt`; the sync then rebuilds it with a new UIDVALIDITY, as Dovecot does.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// The UID list's file name, in each maildir (root and folders).
pub const UIDLIST_FILE: &str = "dovecot-uidlist";

/// One message's UID.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UidRecord {
    /// The UID (≥ 1).
    pub uid: u32,
    /// The message's base name.
    pub base: String,
    /// Dovecot extension fields (`<KEY><value>`), kept verbatim.
    pub extensions: Vec<String>,
}

/// A parsed UID list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidList {
    /// UIDVALIDITY (≥ 1). Fixed for the life of the list.
    pub uid_validity: u32,
    /// The UID the next new message will get.
    pub next_uid: u32,
    /// The mailbox GUID (Dovecot's `G` header).
    pub guid: [u8; 16],
    /// Header fields other than V, N, G, kept verbatim.
    pub header_extensions: Vec<String>,
    records: Vec<UidRecord>,
    /// UID of an unterminated last line, if any (only matters to a writer: that UID may be in use).
    pub(crate) partial_uid: Option<u32>,
    /// Read from an older format (v1, or v3 without a GUID): the next sync rewrites it as full v3.
    pub(crate) needs_rewrite: bool,
}

impl UidList {
    /// An empty list.
    pub fn new(uid_validity: u32, guid: [u8; 16]) -> UidList {
        UidList {
            uid_validity: uid_validity.max(1),
            next_uid: 1,
            guid,
            header_extensions: Vec::new(),
            records: Vec::new(),
            partial_uid: None,
            needs_rewrite: false,
        }
    }

    /// The records, sorted by UID.
    pub fn records(&self) -> &[UidRecord] {
        &self.records
    }

    /// Looks a record up by UID.
    pub fn get(&self, uid: u32) -> Option<&UidRecord> {
        self.records
            .binary_search_by_key(&uid, |r| r.uid)
            .ok()
            .and_then(|i| self.records.get(i))
    }

    /// The UID of a base name (linear scan; build a map for many lookups).
    pub fn uid_of(&self, base: &str) -> Option<u32> {
        self.records.iter().find(|r| r.base == base).map(|r| r.uid)
    }

    /// A base name → UID map.
    pub fn uid_map(&self) -> HashMap<&str, u32> {
        self.records
            .iter()
            .map(|r| (r.base.as_str(), r.uid))
            .collect()
    }

    /// Appends a record with the next UID. The caller guarantees `base` is not already present.
    pub(crate) fn push_new(&mut self, base: String) -> u32 {
        let uid = self.next_uid;
        self.records.push(UidRecord {
            uid,
            base,
            extensions: Vec::new(),
        });
        self.next_uid = self.next_uid.saturating_add(1);
        uid
    }

    /// Keeps only the records for which `keep` is true.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&UidRecord) -> bool) {
        self.records.retain(keep);
    }

    /// The mailbox GUID as Dovecot prints it (32 lower-case hex digits).
    pub fn guid_hex(&self) -> String {
        self.guid
            .iter()
            .fold(String::with_capacity(32), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }

    /// Serialises in version 3 format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(64 + self.records.len() * 64);
        let _ = write!(
            out,
            "3 V{} N{} G{}",
            self.uid_validity,
            self.next_uid,
            self.guid_hex()
        );
        for ext in &self.header_extensions {
            let _ = write!(out, " {ext}");
        }
        out.push('\n');
        for r in &self.records {
            let _ = write!(out, "{}", r.uid);
            for ext in &r.extensions {
                let _ = write!(out, " {ext}");
            }
            let _ = writeln!(out, " :{}", r.base);
        }
        out.into_bytes()
    }

    /// Parses a file's contents; `path` is only used in error messages.
    pub fn parse(data: &[u8], path: &Path) -> Result<UidList> {
        let corrupt = |line: usize, reason: String| Error::Corrupt {
            path: path.to_owned(),
            line,
            reason,
        };
        let text = std::str::from_utf8(data).map_err(|e| {
            let line = data
                .get(..e.valid_up_to())
                .map_or(0, |d| d.iter().filter(|&&b| b == b'\n').count() + 1);
            corrupt(line, "not UTF-8".to_owned())
        })?;
        let (complete, partial) = match text.rfind('\n') {
            Some(i) => (text.get(..i).unwrap_or(""), text.get(i + 1..).unwrap_or("")),
            None => ("", text),
        };
        let mut lines = complete.split('\n');
        let header = match lines.next() {
            Some(h) if !complete.is_empty() => h,
            _ => return Err(corrupt(1, "no complete header line".to_owned())),
        };
        let mut list = parse_header(header).map_err(|reason| corrupt(1, reason))?;
        let version = header.as_bytes().first().copied();

        let mut index: HashMap<String, usize> = HashMap::new();
        let mut last_uid = 0u32;
        for (i, line) in lines.enumerate() {
            let line_no = i + 2;
            let record = parse_record(line, version == Some(b'1'))
                .map_err(|reason| corrupt(line_no, reason))?;
            if record.uid <= last_uid {
                return Err(corrupt(
                    line_no,
                    format!("UIDs not ascending ({} after {last_uid})", record.uid),
                ));
            }
            last_uid = record.uid;
            // Dovecot keeps the later UID for a file listed twice (an expunged file moved back).
            if let Some(old) = index.insert(record.base.clone(), list.records.len())
                && let Some(r) = list.records.get_mut(old)
            {
                r.uid = 0;
            }
            list.records.push(record);
        }
        list.records.retain(|r| r.uid != 0);
        if !partial.is_empty() {
            let digits: String = partial.chars().take_while(char::is_ascii_digit).collect();
            list.partial_uid = digits.parse().ok();
        }
        if last_uid >= list.next_uid {
            list.next_uid = last_uid
                .checked_add(1)
                .ok_or_else(|| corrupt(0, "UID space exhausted".to_owned()))?;
        }
        Ok(list)
    }
}

/// Parses only the header line (used to salvage the old UIDVALIDITY from an otherwise corrupt file).
pub(crate) fn parse_header_only(data: &[u8]) -> Option<u32> {
    let first = data.split(|&b| b == b'\n').next()?;
    parse_header(std::str::from_utf8(first).ok()?)
        .ok()
        .map(|l| l.uid_validity)
}

fn parse_header(line: &str) -> std::result::Result<UidList, String> {
    let mut fields = line.split(' ').filter(|f| !f.is_empty());
    let version = fields.next().ok_or("empty header")?;
    let mut list = UidList::new(1, [0; 16]);
    let (mut validity, mut next) = (0u32, 0u32);
    match version {
        "1" => {
            validity = parse_u32(fields.next().unwrap_or("")).ok_or("bad v1 uidvalidity")?;
            next = parse_u32(fields.next().unwrap_or("")).ok_or("bad v1 next uid")?;
            list.guid = rand::random();
            list.needs_rewrite = true;
        }
        "3" => {
            let mut have_guid = false;
            for field in fields {
                let (key, value) = field.split_at(field.chars().next().map_or(0, char::len_utf8));
                match key {
                    "V" => validity = parse_u32(value).ok_or("bad V (uidvalidity)")?,
                    "N" => next = parse_u32(value).ok_or("bad N (next uid)")?,
                    "G" => {
                        list.guid = parse_guid(value).ok_or("bad G (mailbox guid)")?;
                        have_guid = true;
                    }
                    _ => list.header_extensions.push(field.to_owned()),
                }
            }
            if !have_guid {
                // Older Dovecot files lack it; Dovecot generates one, so do we.
                list.guid = rand::random();
                list.needs_rewrite = true;
            }
        }
        other => return Err(format!("unsupported version {other:?}")),
    }
    if validity == 0 || next == 0 {
        return Err(format!(
            "broken header (uidvalidity {validity}, next uid {next})"
        ));
    }
    list.uid_validity = validity;
    list.next_uid = next;
    Ok(list)
}

fn parse_record(line: &str, v1: bool) -> std::result::Result<UidRecord, String> {
    let (uid, rest) = line
        .split_once(' ')
        .ok_or_else(|| format!("invalid record {line:?}"))?;
    let uid = parse_u32(uid)
        .filter(|&u| u != 0 && u != u32::MAX)
        .ok_or_else(|| format!("invalid uid in {line:?}"))?;
    let (extensions, file_name) = if v1 {
        (Vec::new(), rest.trim_start_matches(' '))
    } else {
        let (exts, name) = rest
            .split_once(':')
            .ok_or_else(|| format!("no ':' before the file name in {line:?}"))?;
        let extensions = exts
            .split(' ')
            .filter(|e| e.as_bytes().first().is_some_and(u8::is_ascii_uppercase))
            .map(str::to_owned)
            .collect();
        (extensions, name)
    };
    // Strip a flag suffix if a writer left one; the base name is what identifies the message.
    let base = file_name.split(':').next().unwrap_or("");
    if base.is_empty() || base.contains('/') || base.contains('\r') {
        return Err(format!("broken file name in {line:?}"));
    }
    Ok(UidRecord {
        uid,
        base: base.to_owned(),
        extensions,
    })
}

fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_guid(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<UidList> {
        UidList::parse(text, Path::new("dovecot-uidlist"))
    }

    #[test]
    fn round_trip_v3_with_extensions() {
        let text = "3 V1700000000 N43 G0123456789abcdef0123456789abcdef P1\n\
                    41 :1700000000.M1P2Q3R4.host,S=120,W=123\n\
                    42 GABCD W101 :1700000001.M9P2Q4R5.host,S=99\n";
        let list = parse(text.as_bytes()).expect("parse");
        assert_eq!((list.uid_validity, list.next_uid), (1_700_000_000, 43));
        assert_eq!(list.guid_hex(), "0123456789abcdef0123456789abcdef");
        assert_eq!(list.header_extensions, vec!["P1"]);
        assert_eq!(list.records().len(), 2);
        assert_eq!(
            list.get(42).map(|r| r.extensions.clone()),
            Some(vec!["GABCD".to_owned(), "W101".to_owned()])
        );
        assert_eq!(
            list.uid_of("1700000000.M1P2Q3R4.host,S=120,W=123"),
            Some(41)
        );
        assert_eq!(String::from_utf8(list.to_bytes()).expect("utf8"), text);
    }

    #[test]
    fn next_uid_follows_appended_records_and_flags_are_stripped() {
        let list =
            parse(b"3 V5 N2 G00000000000000000000000000000000\n1 :a\n7 :b:2,S\n").expect("parse");
        assert_eq!(list.next_uid, 8);
        assert_eq!(list.get(7).map(|r| r.base.as_str()), Some("b"));
    }

    #[test]
    fn reads_version_1_and_missing_guid() {
        let list = parse(b"1 1234 10\n3 1.M1P1.host\n9 2.M2P2.host:2,S\n").expect("v1");
        assert_eq!((list.uid_validity, list.next_uid), (1234, 10));
        assert_eq!(list.uid_of("2.M2P2.host"), Some(9));
        assert!(
            String::from_utf8(list.to_bytes())
                .expect("utf8")
                .starts_with("3 V1234 N10 G")
        );
        let list = parse(b"3 V9 N1\n").expect("no guid");
        assert_eq!(list.uid_validity, 9);
    }

    #[test]
    fn unterminated_last_line_is_ignored() {
        let list = parse(b"3 V5 N3 G00000000000000000000000000000000\n1 :a\n2 :b\n30 :partial-na")
            .expect("parse");
        assert_eq!(list.records().len(), 2);
        assert_eq!(list.partial_uid, Some(30));
    }

    #[test]
    fn duplicate_file_keeps_the_later_uid() {
        let list =
            parse(b"3 V5 N1 G00000000000000000000000000000000\n1 :a\n2 :b\n3 :a\n").expect("parse");
        assert_eq!(list.uid_of("a"), Some(3));
        assert_eq!(list.records().len(), 2);
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"no newline header",
            b"\n",
            b"garbage\n",
            b"9 V1 N1\n",
            b"3 V0 N1 G00000000000000000000000000000000\n",
            b"3 V1 N0\n",
            b"3 Vx N1\n",
            b"3 V1 N1 Gzz\n",
            b"3 V1 N1 G0123\n",
            b"3 V99999999999 N1\n",
            b"3 V1 N1\n0 :a\n",
            b"3 V1 N1\n4294967295 :a\n",
            b"3 V1 N1\nx :a\n",
            b"3 V1 N1\n5 :a\n4 :b\n",
            b"3 V1 N1\n5 :a\n5 :b\n",
            b"3 V1 N1\n5 no-colon\n",
            b"3 V1 N1\n5 :\n",
            b"3 V1 N1\n5 :../../etc/passwd\n",
            b"3 V1 N1\n5\n",
            b"3 V1 N1\n\n",
            b"3 V1 N1\n5 :a\xff\n",
            b"1 5\n",
            b"3 V\xc3\xa9 N1\n",
            b"3 \xc3\xa9\n",
        ];
        for case in cases {
            let r = parse(case);
            assert!(
                matches!(r, Err(Error::Corrupt { .. })),
                "{:?} -> {r:?}",
                String::from_utf8_lossy(case)
            );
        }
    }
}
