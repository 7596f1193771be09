//! The byte formats of the three index files (docs/IMAP.md "The index" has the overview):
//! little-endian integers, CRC-32 (IEEE) checksums, every length bounded before use. Files may be
//! truncated, corrupt or written by someone hostile: decoding returns `None` (or stops at the
//! last good log record) and never panics or allocates more than the input justifies.
//!
//! ```text
//! moat-index        magic "MOATIDX1" | header | body_len u64 | body_crc u32 | header_crc u32 | body
//!                   header: generation u64, cache_id u64, uid_validity u32, uid_next u32,
//!                           highest_modseq u64, stamps, count u32
//!                   body: `count` message records, UIDs ascending
//! moat-index.log    magic "MOATLOG1" | generation u64 | crc u32 (of generation)
//!                   then records: len u32 | crc u32 (of payload) | payload (kind u8, fields)
//! moat-index.cache  magic "MOATBLB1" | cache_id u64 | uid_validity u32 | crc u32
//!                   then entries: uid u32 | len u32 | file_size u64 | size u64 | crc u32 | blob
//!                   (crc over uid..size and the blob)
//! message record    uid u32, subdir u8 (0 new/, 1 cur/), modseq u64, file_size u64, size u64,
//!                   internal_date i64, has_blob u8, blob_offset u64, blob_len u32,
//!                   name_len u16, file name (flags are read from the name, never stored twice)
//! stamps            stable u8 (bit 0: new/'s stamp is stable, bit 1: cur/'s), then
//!                   (inode u64, size u64, mtime_ns u64) for new/, cur/ and dovecot-uidlist
//! log payloads      1 add: a message record
//!                   2 name: uid u32, modseq u64 (0: flags unchanged), subdir u8, name_len u16, name
//!                   3 expunge: uid u32, modseq u64
//!                   4 blob: uid u32, offset u64, len u32, file_size u64, size u64
//!                   5 scan: uid_next u32, stamps
//! ```

use moat_maildir::{Flags, Subdir, split_info};

use super::codec::{Dec, Enc, crc32, crc32_update};
use super::state::{BlobRef, Message, Stamp, Stamps};

pub(crate) const SNAPSHOT_MAGIC: &[u8; 8] = b"MOATIDX1";
pub(crate) const LOG_MAGIC: &[u8; 8] = b"MOATLOG1";
pub(crate) const CACHE_MAGIC: &[u8; 8] = b"MOATBLB1";
/// Log header: magic, generation, crc.
pub(crate) const LOG_HEADER_LEN: u64 = 20;
/// Cache header: magic, cache_id, uid_validity, crc.
pub(crate) const CACHE_HEADER_LEN: u64 = 24;
/// Cache entry header: uid, len, file_size, size, crc.
pub(crate) const ENTRY_HEADER_LEN: u64 = 28;
/// A file name is at most 255 bytes on every file system Maildir runs on.
pub(crate) const MAX_NAME: usize = 255;
/// Largest blob accepted (ENVELOPE + BODYSTRUCTURE of a MIME tree within the parser's limits is
/// far smaller; anything larger in a file is corruption).
pub(crate) const MAX_BLOB: u32 = 16 << 20;
/// Largest log record (an add with a 255-byte name is about 320 bytes).
pub(crate) const MAX_LOG_RECORD: u32 = 4096;
/// Smallest encoded message record (a one-byte name): bounds `count` by the body length.
const MIN_RECORD: u64 = 4 + 1 + 8 + 8 + 8 + 8 + 1 + 8 + 4 + 2 + 1;

/// A file name we accept from an index file: what a Maildir listing could have produced.
pub(crate) fn valid_file_name(name: &str) -> bool {
    let base = split_info(name).0;
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !base.is_empty()
        && !name.starts_with('.')
        && !name.bytes().any(|b| matches!(b, b'/' | 0 | b'\n' | b'\r'))
}

fn subdir_byte(s: Subdir) -> u8 {
    match s {
        Subdir::New => 0,
        Subdir::Cur => 1,
    }
}

fn subdir_from(b: u8) -> Option<Subdir> {
    match b {
        0 => Some(Subdir::New),
        1 => Some(Subdir::Cur),
        _ => None,
    }
}

fn put_name(e: &mut Enc, sub: Subdir, name: &str) {
    e.u8(subdir_byte(sub));
    // Names longer than MAX_NAME never get here (checked when listed); clamp rather than panic.
    let bytes = name.as_bytes();
    let len = bytes.len().min(MAX_NAME);
    e.u16(u16::try_from(len).unwrap_or(0));
    e.bytes(bytes.get(..len).unwrap_or(&[]));
}

fn get_name(d: &mut Dec<'_>) -> Option<(Subdir, String)> {
    let sub = subdir_from(d.u8()?)?;
    let len = usize::from(d.u16()?);
    if len > MAX_NAME {
        return None;
    }
    let name = std::str::from_utf8(d.take(len)?).ok()?;
    valid_file_name(name).then(|| (sub, name.to_owned()))
}

/// The flags a file name carries (its `:2,` info).
pub(crate) fn flags_of(name: &str) -> Flags {
    split_info(name).1.map(Flags::from_info).unwrap_or_default()
}

pub(crate) fn put_message(e: &mut Enc, m: &Message) {
    e.u32(m.uid);
    e.u64(m.modseq);
    e.u64(m.file_size);
    e.u64(m.size);
    e.i64(m.internal_date);
    match m.blob {
        Some(b) => {
            e.u8(1);
            e.u64(b.offset);
            e.u32(b.len);
        }
        None => {
            e.u8(0);
            e.u64(0);
            e.u32(0);
        }
    }
    put_name(e, m.subdir, &m.file_name);
}

pub(crate) fn get_message(d: &mut Dec<'_>) -> Option<Message> {
    let uid = d.u32()?;
    let modseq = d.u64()?;
    let file_size = d.u64()?;
    let size = d.u64()?;
    let internal_date = d.i64()?;
    let has_blob = d.u8()?;
    let offset = d.u64()?;
    let len = d.u32()?;
    let (subdir, file_name) = get_name(d)?;
    if uid == 0 || uid == u32::MAX || modseq == 0 || has_blob > 1 || len > MAX_BLOB {
        return None;
    }
    Some(Message {
        uid,
        subdir,
        flags: flags_of(&file_name),
        file_name,
        modseq,
        size,
        file_size,
        internal_date,
        blob: (has_blob == 1).then_some(BlobRef { offset, len }),
    })
}

fn put_stamp(e: &mut Enc, s: &Stamp) {
    e.u64(s.ino);
    e.u64(s.size);
    e.u64(s.mtime_ns);
}

fn get_stamp(d: &mut Dec<'_>) -> Option<Stamp> {
    Some(Stamp {
        ino: d.u64()?,
        size: d.u64()?,
        mtime_ns: d.u64()?,
    })
}

fn put_stamps(e: &mut Enc, s: &Stamps) {
    e.u8(u8::from(s.new_stable) | (u8::from(s.cur_stable) << 1));
    put_stamp(e, &s.new);
    put_stamp(e, &s.cur);
    put_stamp(e, &s.uidlist);
}

fn get_stamps(d: &mut Dec<'_>) -> Option<Stamps> {
    let stable = d.u8()?;
    if stable > 3 {
        return None;
    }
    Some(Stamps {
        new_stable: stable & 1 != 0,
        cur_stable: stable & 2 != 0,
        new: get_stamp(d)?,
        cur: get_stamp(d)?,
        uidlist: get_stamp(d)?,
    })
}

/// The snapshot's fixed header (everything but the messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) generation: u64,
    pub(crate) cache_id: u64,
    pub(crate) uid_validity: u32,
    pub(crate) uid_next: u32,
    pub(crate) highest_modseq: u64,
    pub(crate) stamps: Stamps,
    pub(crate) count: u32,
}

fn put_header(e: &mut Enc, h: &Header) {
    e.u64(h.generation);
    e.u64(h.cache_id);
    e.u32(h.uid_validity);
    e.u32(h.uid_next);
    e.u64(h.highest_modseq);
    put_stamps(e, &h.stamps);
    e.u32(h.count);
}

fn get_header(d: &mut Dec<'_>) -> Option<Header> {
    Some(Header {
        generation: d.u64()?,
        cache_id: d.u64()?,
        uid_validity: d.u32()?,
        uid_next: d.u32()?,
        highest_modseq: d.u64()?,
        stamps: get_stamps(d)?,
        count: d.u32()?,
    })
}

/// Encodes a whole snapshot file.
pub(crate) fn encode_snapshot(h: &Header, messages: &[Message]) -> Vec<u8> {
    let mut body = Enc(Vec::with_capacity(messages.len() * 128));
    for m in messages {
        put_message(&mut body, m);
    }
    let mut head = Enc::default();
    put_header(&mut head, h);
    head.u64(body.0.len() as u64);
    head.u32(crc32(&body.0));
    let head_crc = crc32(&head.0);
    let mut out = Enc(Vec::with_capacity(body.0.len() + head.0.len() + 16));
    out.bytes(SNAPSHOT_MAGIC);
    out.bytes(&head.0);
    out.u32(head_crc);
    out.bytes(&body.0);
    out.0
}

/// What a snapshot file holds: the header alone survives a corrupt body (its HIGHESTMODSEQ is
/// still worth knowing when rebuilding).
pub(crate) enum Snapshot {
    Good(Header, Vec<Message>),
    HeaderOnly(Header),
    Bad,
}

/// Decodes a snapshot file.
pub(crate) fn decode_snapshot(data: &[u8]) -> Snapshot {
    let mut d = Dec::new(data);
    if d.take(8) != Some(SNAPSHOT_MAGIC.as_slice()) {
        return Snapshot::Bad;
    }
    let head_start = 8;
    let Some(header) = get_header(&mut d) else {
        return Snapshot::Bad;
    };
    let (Some(body_len), Some(body_crc)) = (d.u64(), d.u32()) else {
        return Snapshot::Bad;
    };
    let head_end = data.len() - d.rest().len();
    let Some(head_crc) = d.u32() else {
        return Snapshot::Bad;
    };
    if data.get(head_start..head_end).map(crc32) != Some(head_crc) {
        return Snapshot::Bad;
    }
    let body = d.rest();
    if body.len() as u64 != body_len
        || crc32(body) != body_crc
        || u64::from(header.count) > body_len / MIN_RECORD
    {
        return Snapshot::HeaderOnly(header);
    }
    let mut bd = Dec::new(body);
    let mut messages = Vec::with_capacity(header.count as usize);
    let mut last = 0u32;
    for _ in 0..header.count {
        match get_message(&mut bd) {
            Some(m) if m.uid > last => {
                last = m.uid;
                messages.push(m);
            }
            _ => return Snapshot::HeaderOnly(header),
        }
    }
    if !bd.is_empty() || header.uid_validity == 0 {
        return Snapshot::HeaderOnly(header);
    }
    Snapshot::Good(header, messages)
}

/// Encodes the log file's header.
pub(crate) fn encode_log_header(generation: u64) -> Vec<u8> {
    let mut e = Enc::default();
    e.bytes(LOG_MAGIC);
    e.u64(generation);
    e.u32(crc32(&generation.to_le_bytes()));
    e.0
}

/// The generation a log file belongs to.
pub(crate) fn decode_log_header(data: &[u8]) -> Option<u64> {
    let mut d = Dec::new(data);
    if d.take(8)? != LOG_MAGIC.as_slice() {
        return None;
    }
    let generation = d.u64()?;
    (d.u32()? == crc32(&generation.to_le_bytes())).then_some(generation)
}

/// One change in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogRec {
    /// A new message.
    Add(Message),
    /// The file was renamed; `modseq` is 0 when its flags stayed the same (a new/ → cur/ move).
    Name {
        uid: u32,
        modseq: u64,
        subdir: Subdir,
        file_name: String,
    },
    /// The message is gone; the expunge gets a MODSEQ so HIGHESTMODSEQ moves (QRESYNC wants it).
    Expunge { uid: u32, modseq: u64 },
    /// The message's blob was stored in the cache; the sizes are the measured ones.
    Blob {
        uid: u32,
        blob: BlobRef,
        file_size: u64,
        size: u64,
    },
    /// A rescan of the Maildir finished with these directory stamps.
    Scan { uid_next: u32, stamps: Stamps },
}

const ADD: u8 = 1;
const NAME: u8 = 2;
const EXPUNGE: u8 = 3;
const BLOB: u8 = 4;
const SCAN: u8 = 5;

fn encode_payload(r: &LogRec) -> Vec<u8> {
    let mut e = Enc::default();
    match r {
        LogRec::Add(m) => {
            e.u8(ADD);
            put_message(&mut e, m);
        }
        LogRec::Name {
            uid,
            modseq,
            subdir,
            file_name,
        } => {
            e.u8(NAME);
            e.u32(*uid);
            e.u64(*modseq);
            put_name(&mut e, *subdir, file_name);
        }
        LogRec::Expunge { uid, modseq } => {
            e.u8(EXPUNGE);
            e.u32(*uid);
            e.u64(*modseq);
        }
        LogRec::Blob {
            uid,
            blob,
            file_size,
            size,
        } => {
            e.u8(BLOB);
            e.u32(*uid);
            e.u64(blob.offset);
            e.u32(blob.len);
            e.u64(*file_size);
            e.u64(*size);
        }
        LogRec::Scan { uid_next, stamps } => {
            e.u8(SCAN);
            e.u32(*uid_next);
            put_stamps(&mut e, stamps);
        }
    }
    e.0
}

fn decode_payload(p: &[u8]) -> Option<LogRec> {
    let mut d = Dec::new(p);
    let rec = match d.u8()? {
        ADD => LogRec::Add(get_message(&mut d)?),
        NAME => {
            let uid = d.u32()?;
            let modseq = d.u64()?;
            let (subdir, file_name) = get_name(&mut d)?;
            LogRec::Name {
                uid,
                modseq,
                subdir,
                file_name,
            }
        }
        EXPUNGE => LogRec::Expunge {
            uid: d.u32()?,
            modseq: d.u64()?,
        },
        BLOB => {
            let uid = d.u32()?;
            let offset = d.u64()?;
            let len = d.u32()?;
            if len > MAX_BLOB {
                return None;
            }
            LogRec::Blob {
                uid,
                blob: BlobRef { offset, len },
                file_size: d.u64()?,
                size: d.u64()?,
            }
        }
        SCAN => LogRec::Scan {
            uid_next: d.u32()?,
            stamps: get_stamps(&mut d)?,
        },
        _ => return None,
    };
    d.is_empty().then_some(rec)
}

/// Encodes records for one append (written with a single write, so a reader sees a prefix).
pub(crate) fn encode_records(records: &[LogRec]) -> Vec<u8> {
    let mut e = Enc::default();
    for r in records {
        let payload = encode_payload(r);
        e.u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
        e.u32(crc32(&payload));
        e.bytes(&payload);
    }
    e.0
}

/// Decodes log records from `data` (the bytes after the last good record). Returns the records
/// and how many bytes they used; stops at the first incomplete or damaged record (a writer in
/// progress or one that crashed: readers retry from there, the next writer truncates it).
pub(crate) fn decode_records(data: &[u8]) -> (Vec<LogRec>, usize) {
    let mut out = Vec::new();
    let mut used = 0usize;
    let mut d = Dec::new(data);
    while let (Some(len), Some(crc)) = (d.u32(), d.u32()) {
        if len == 0 || len > MAX_LOG_RECORD {
            break;
        }
        let Some(payload) = d.take(len as usize) else {
            break;
        };
        if crc32(payload) != crc {
            break;
        }
        let Some(rec) = decode_payload(payload) else {
            break;
        };
        out.push(rec);
        used = data.len() - d.rest().len();
    }
    (out, used)
}

/// Encodes the cache file's header.
pub(crate) fn encode_cache_header(cache_id: u64, uid_validity: u32) -> Vec<u8> {
    let mut e = Enc::default();
    e.bytes(CACHE_MAGIC);
    e.u64(cache_id);
    e.u32(uid_validity);
    let crc = crc32(e.0.get(8..).unwrap_or(&[]));
    e.u32(crc);
    e.0
}

/// `(cache_id, uid_validity)` of a cache file header.
pub(crate) fn decode_cache_header(data: &[u8]) -> Option<(u64, u32)> {
    let mut d = Dec::new(data);
    if d.take(8)? != CACHE_MAGIC.as_slice() {
        return None;
    }
    let cache_id = d.u64()?;
    let uid_validity = d.u32()?;
    let crc = d.u32()?;
    (crc == crc32(data.get(8..20)?)).then_some((cache_id, uid_validity))
}

/// Encodes one cache entry.
pub(crate) fn encode_entry(uid: u32, blob: &[u8], file_size: u64, size: u64) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(blob.len() + ENTRY_HEADER_LEN as usize));
    e.u32(uid);
    e.u32(u32::try_from(blob.len()).unwrap_or(u32::MAX));
    e.u64(file_size);
    e.u64(size);
    let crc = crc32_update(crc32(&e.0), blob);
    e.u32(crc);
    e.bytes(blob);
    e.0
}

/// An entry's header fields: `(uid, len, file_size, size, crc)`.
pub(crate) fn decode_entry_header(data: &[u8]) -> Option<(u32, u32, u64, u64, u32)> {
    let mut d = Dec::new(data);
    let h = (d.u32()?, d.u32()?, d.u64()?, d.u64()?, d.u32()?);
    (h.1 <= MAX_BLOB).then_some(h)
}

/// Checks an entry's checksum given its header bytes and blob.
pub(crate) fn entry_crc_ok(header: &[u8], blob: &[u8], crc: u32) -> bool {
    header
        .get(..24)
        .is_some_and(|h| crc32_update(crc32(h), blob) == crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(uid: u32, name: &str) -> Message {
        Message {
            uid,
            subdir: Subdir::Cur,
            flags: flags_of(name),
            file_name: name.to_owned(),
            modseq: 7,
            size: 12,
            file_size: 10,
            internal_date: 1_700_000_000,
            blob: uid
                .is_multiple_of(2)
                .then_some(BlobRef { offset: 24, len: 5 }),
        }
    }

    #[test]
    fn snapshot_round_trip_and_damage() {
        let h = Header {
            generation: 9,
            cache_id: 8,
            uid_validity: 77,
            uid_next: 5,
            highest_modseq: 1234,
            stamps: Stamps {
                cur_stable: true,
                new: Stamp {
                    ino: 1,
                    size: 2,
                    mtime_ns: 3,
                },
                ..Stamps::default()
            },
            count: 2,
        };
        let ms = vec![msg(1, "1.M1P1.h,S=10:2,FS"), msg(4, "2.M1P1.h")];
        let data = encode_snapshot(&h, &ms);
        match decode_snapshot(&data) {
            Snapshot::Good(h2, ms2) => {
                assert_eq!(h2, h);
                assert_eq!(ms2, ms);
                assert_eq!(ms2[0].flags.to_string(), "FS");
            }
            _ => panic!("good snapshot not read"),
        }
        // A damaged body keeps the header; a damaged header loses everything.
        let mut bad = data.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(
            matches!(decode_snapshot(&bad), Snapshot::HeaderOnly(h2) if h2.highest_modseq == 1234)
        );
        let mut bad = data.clone();
        bad[12] ^= 1;
        assert!(matches!(decode_snapshot(&bad), Snapshot::Bad));
        for cut in 0..data.len() {
            let _ = decode_snapshot(&data[..cut]);
        }
    }

    #[test]
    fn hostile_snapshot_counts_and_names_are_refused() {
        // A huge count with a tiny body must not allocate or loop.
        let h = Header {
            uid_validity: 1,
            count: u32::MAX,
            ..Header::default()
        };
        assert!(matches!(
            decode_snapshot(&encode_snapshot(&h, &[])),
            Snapshot::HeaderOnly(_)
        ));
        for bad in ["../x", "", ".hidden", "a/b", "a\nb"] {
            let mut e = Enc::default();
            let mut m = msg(1, "x");
            m.file_name = bad.to_owned();
            put_message(&mut e, &m);
            assert!(get_message(&mut Dec::new(&e.0)).is_none(), "{bad:?}");
        }
        // UIDs must ascend.
        let h = Header {
            uid_validity: 1,
            count: 2,
            ..Header::default()
        };
        let data = encode_snapshot(&h, &[msg(3, "a"), msg(2, "b")]);
        assert!(matches!(decode_snapshot(&data), Snapshot::HeaderOnly(_)));
    }

    #[test]
    fn log_records_round_trip_and_stop_at_damage() {
        let recs = vec![
            LogRec::Add(msg(3, "3.M1P1.h")),
            LogRec::Name {
                uid: 3,
                modseq: 99,
                subdir: Subdir::Cur,
                file_name: "3.M1P1.h:2,S".to_owned(),
            },
            LogRec::Expunge {
                uid: 3,
                modseq: 100,
            },
            LogRec::Blob {
                uid: 2,
                blob: BlobRef { offset: 1, len: 2 },
                file_size: 3,
                size: 4,
            },
            LogRec::Scan {
                uid_next: 4,
                stamps: Stamps::default(),
            },
        ];
        let data = encode_records(&recs);
        let (back, used) = decode_records(&data);
        assert_eq!((back, used), (recs.clone(), data.len()));
        // A torn last record: the others are read, `used` stops before it.
        let (back, used) = decode_records(&data[..data.len() - 3]);
        assert_eq!(back.len(), recs.len() - 1);
        assert!(used < data.len() - 3);
        let mut bad = data.clone();
        bad[9] ^= 0xff;
        assert_eq!(decode_records(&bad).0.len(), 0);
        assert_eq!(decode_log_header(&encode_log_header(42)), Some(42));
        assert_eq!(decode_log_header(b"MOATLOG1garbage!!!!!"), None);
    }

    #[test]
    fn cache_entries_round_trip() {
        assert_eq!(
            decode_cache_header(&encode_cache_header(5, 6)),
            Some((5, 6))
        );
        let e = encode_entry(7, b"blob!", 10, 12);
        let (uid, len, fs, s, crc) = decode_entry_header(&e).expect("header");
        assert_eq!((uid, len, fs, s), (7, 5, 10, 12));
        assert!(entry_crc_ok(&e, &e[28..], crc));
        assert!(!entry_crc_ok(&e, b"blob?", crc));
    }
}
