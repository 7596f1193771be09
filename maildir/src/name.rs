//! Maildir file names: generating unique names for delivery and taking names apart.
//!
//! A delivered file is named `<secs>.M<usecs>P<pid>Q<counter>R<random hex>.<host>,S=<size>,W=<vsize>`
//! and, once it has flags, `<that>:2,<flags>` in cur/. The part before `:` is the *base name*: it never
//! changes for the life of the message, which is why the UID list and every API here key on it.
//!
//! * `S=` is the file size and `W=` the size with bare LF counted as CRLF (RFC 822 size, what IMAP's
//!   RFC822.SIZE wants). Dovecot writes and reads the same fields, so neither side needs to stat or read.
//! * The host name has `/`, `:` and `,` escaped as `\057`, `\072`, `\054`: the first two would break
//!   the path or the info separator (the Maildir spec's rule) and `,` would be read as a field separator.
//! * The leading `<secs>.M<usecs>` gives the delivery-time order the UID sync uses; `P`/`Q` break ties
//!   between deliveries in the same microsecond (different processes, or one process delivering fast).

use std::cmp::Ordering;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Per-process delivery counter (the `Q` field). Starts at 1 so `Q0` never appears.
static COUNTER: AtomicU64 = AtomicU64::new(1);

/// The host name as used in file names, escaped once per process.
fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let uname = rustix::system::uname();
        let raw = uname.nodename().to_string_lossy();
        let raw = if raw.is_empty() {
            "localhost".into()
        } else {
            raw
        };
        escape_hostname(&raw)
    })
}

/// Escapes the characters that cannot appear in the host part of a Maildir name.
pub(crate) fn escape_hostname(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            ',' => out.push_str("\\054"),
            c if c.is_control() => out.push_str(&format!("\\{:03o}", u32::from(c) & 0o377)),
            c => out.push(c),
        }
    }
    out
}

/// Our host name, escaped, as it appears in the names we generate (and in dotlock files).
pub fn local_hostname() -> &'static str {
    hostname()
}

/// A fresh unique name *without* the `,S=`/`,W=` fields (those are known only once the message is
/// written). Used as the tmp/ file name; the final name appends the sizes.
pub(crate) fn unique_tmp_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let counter = COUNTER.fetch_add(1, AtomicOrdering::Relaxed);
    let random: u64 = rand::random();
    format!(
        "{}.M{}P{}Q{}R{:016x}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        counter,
        random,
        hostname()
    )
}

/// Appends the size fields to a tmp name, giving the base name.
pub(crate) fn with_sizes(tmp_name: &str, size: u64, vsize: u64) -> String {
    format!("{tmp_name},S={size},W={vsize}")
}

/// Splits a file name into its base name and the info part after the first `:` (if any).
pub fn split_info(file_name: &str) -> (&str, Option<&str>) {
    match file_name.split_once(':') {
        Some((base, info)) => (base, Some(info)),
        None => (file_name, None),
    }
}

/// Reads a `,<key>=<digits>` field from a base name (`S` for size, `W` for CRLF size).
pub fn size_field(base: &str, key: char) -> Option<u64> {
    // Fields follow the first ',' of the name; the host part itself cannot contain ',' (escaped).
    base.split(',').skip(1).find_map(|field| {
        let value = field.strip_prefix(key)?.strip_prefix('=')?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        value.parse().ok()
    })
}

/// Checks that a caller-supplied base name is a plain file name we could have listed: non-empty, no
/// `/`, no `:` (that would be an info part), no NUL or line breaks, no leading `.` (hidden/`..`).
pub(crate) fn validate_base(base: &str) -> Result<()> {
    let bad = base.is_empty()
        || base.starts_with('.')
        || base
            .bytes()
            .any(|b| matches!(b, b'/' | b':' | 0 | b'\n' | b'\r'));
    if bad {
        return Err(Error::InvalidMessageName(base.to_owned()));
    }
    Ok(())
}

/// True for directory entries that can be messages (skips `.`-files, and names with line breaks, which
/// would corrupt the line-based UID list; Dovecot skips the same).
pub(crate) fn is_message_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.bytes().any(|b| matches!(b, b'\n' | b'\r' | 0))
}

/// Delivery-time sort key parsed from a name: `(secs, usecs, pid, counter)`, missing parts as 0.
/// Names that do not start with `<digits>.` (not from a Maildir deliverer) sort after all others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeliveryKey {
    /// Seconds since the epoch (u64::MAX if unparseable).
    pub secs: u64,
    /// Microseconds within the second.
    pub usecs: u64,
    /// Delivering process id.
    pub pid: u64,
    /// Per-process counter.
    pub counter: u64,
}

impl DeliveryKey {
    /// Parses the key from a base name (or full file name).
    pub fn parse(name: &str) -> DeliveryKey {
        let unknown = DeliveryKey {
            secs: u64::MAX,
            usecs: 0,
            pid: 0,
            counter: 0,
        };
        let Some((secs, rest)) = name.split_once('.') else {
            return unknown;
        };
        let Some(secs) = parse_digits(secs) else {
            return unknown;
        };
        let mut key = DeliveryKey {
            secs,
            usecs: 0,
            pid: 0,
            counter: 0,
        };
        // The unique part runs to the next '.', e.g. "M123P45Q6R0a1b".
        let unique = rest.split('.').next().unwrap_or("");
        let bytes = unique.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let tag = bytes[i];
            if tag == b'R' {
                // Random hex follows; nothing after it is part of the key.
                break;
            }
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            let value = unique.get(start..end).and_then(parse_digits);
            match (tag, value) {
                (b'M', Some(v)) => key.usecs = v,
                (b'P', Some(v)) => key.pid = v,
                (b'Q', Some(v)) => key.counter = v,
                _ => {}
            }
            i = end.max(start);
        }
        key
    }

    /// The delivery start time as (secs, usecs), used to compare "delivered before".
    pub fn time(&self) -> (u64, u64) {
        (self.secs, self.usecs)
    }
}

fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Orders names by delivery time, then by the whole name so the order is total and stable.
pub fn delivery_order(a: &str, b: &str) -> Ordering {
    DeliveryKey::parse(a)
        .cmp(&DeliveryKey::parse(b))
        .then_with(|| a.cmp(b))
}

/// Counts the "virtual" (CRLF) size of a message streamed in chunks: every LF not preceded by CR
/// counts as two bytes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct VSizeCounter {
    size: u64,
    bare_lf: u64,
    last_was_cr: bool,
}

impl VSizeCounter {
    pub(crate) fn update(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        for &b in chunk {
            if b == b'\n' && !self.last_was_cr {
                self.bare_lf += 1;
            }
            self.last_was_cr = b == b'\r';
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn vsize(&self) -> u64 {
        self.size + self.bare_lf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_parse() {
        let a = unique_tmp_name();
        let b = unique_tmp_name();
        assert_ne!(a, b);
        let ka = DeliveryKey::parse(&a);
        let kb = DeliveryKey::parse(&b);
        assert_eq!(ka.pid, u64::from(std::process::id()));
        assert!(ka.counter < kb.counter);
        assert!(
            ka < kb || ka.time() > kb.time(),
            "counter breaks ties within one process"
        );
        assert!(!a.contains(':') && !a.contains('/') && !a.contains(','));
    }

    #[test]
    fn size_fields() {
        let base = with_sizes("1700000000.M1P2Q3R00.host", 120, 125);
        assert_eq!(size_field(&base, 'S'), Some(120));
        assert_eq!(size_field(&base, 'W'), Some(125));
        assert_eq!(size_field("1.M1P2.host", 'S'), None);
        assert_eq!(size_field("1.M1P2.host,S=", 'S'), None);
        assert_eq!(size_field("1.M1P2.host,S=12x", 'S'), None);
        assert_eq!(
            size_field("1.M1P2.host,S=99999999999999999999999", 'S'),
            None
        );
    }

    #[test]
    fn split_info_parts() {
        assert_eq!(split_info("abc:2,FS"), ("abc", Some("2,FS")));
        assert_eq!(split_info("abc"), ("abc", None));
        assert_eq!(split_info("abc:"), ("abc", Some("")));
    }

    #[test]
    fn hostname_escaping() {
        assert_eq!(escape_hostname("a/b:c,d"), "a\\057b\\072c\\054d");
        assert_eq!(escape_hostname("mx1.example"), "mx1.example");
    }

    #[test]
    fn delivery_key_parse() {
        let k = DeliveryKey::parse("1700000000.M123456P789Q12R00ff.host,S=1");
        assert_eq!(
            k,
            DeliveryKey {
                secs: 1_700_000_000,
                usecs: 123_456,
                pid: 789,
                counter: 12
            }
        );
        // Dovecot style without Q.
        let k = DeliveryKey::parse("1700000000.M5P7.host");
        assert_eq!(
            (k.secs, k.usecs, k.pid, k.counter),
            (1_700_000_000, 5, 7, 0)
        );
        // qmail style "secs.pid.host".
        let k = DeliveryKey::parse("1700000000.4242.host");
        assert_eq!(k.secs, 1_700_000_000);
        // Garbage sorts last, never panics.
        for junk in [
            "",
            ".",
            "x.y",
            "12",
            "12.",
            "12.MPQ",
            "12.M99999999999999999999999",
            "é.ü",
        ] {
            let _ = DeliveryKey::parse(junk);
        }
        assert_eq!(DeliveryKey::parse("garbage").secs, u64::MAX);
        assert_eq!(delivery_order("10.M2P1.h", "10.M10P1.h"), Ordering::Less);
        assert_eq!(delivery_order("9.M2P1.h", "10.M1P1.h"), Ordering::Less);
        assert_eq!(delivery_order("junk", "10.M1P1.h"), Ordering::Greater);
    }

    #[test]
    fn validate_base_names() {
        for bad in [
            "", ".", "..", "../x", "a/b", "a:2,S", "a\0b", "a\nb", ".hidden",
        ] {
            assert!(validate_base(bad).is_err(), "{bad:?}");
        }
        validate_base("1700000000.M1P2Q3R00.host,S=1,W=1").expect("valid");
    }

    #[test]
    fn vsize_counts_bare_lf_across_chunks() {
        let mut c = VSizeCounter::default();
        c.update(b"a\r");
        c.update(b"\nb\n");
        c.update(b"\n");
        assert_eq!(c.size(), 6);
        assert_eq!(c.vsize(), 8);
    }
}
