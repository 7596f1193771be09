//! IMAP flags ↔ Maildir letters: the five system flags have fixed letters, keywords get the
//! letters `a`–`z` through the folder's `dovecot-keywords` file (docs/IMAP.md "Flags and
//! keywords"), so at most 26 keywords per folder.
//!
//! `dovecot-keywords` is Dovecot's format: one `<index> <name>` line per keyword, index 0 being
//! `a`. Reading is tolerant like Dovecot's (lines that do not parse, indexes above 25, names that
//! are not IMAP atoms and repeated names are skipped), so a damaged file costs keywords, never the
//! folder. New keywords are added under the index lock, written to a temp file and renamed over
//! the old one; a letter, once given, keeps its name (messages carry it in their file names).
//! Keyword names compare case-insensitively (RFC 3501 §2.3.2); the first spelling is kept.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use moat_maildir::{Flags, Result};

use super::disk::io_err;
use super::state::Stamp;

/// The keyword file's name (Dovecot's).
pub const KEYWORDS_FILE: &str = "dovecot-keywords";
/// Keyword letters available in a Maildir file name.
pub const MAX_KEYWORDS: usize = 26;
/// Longest keyword name accepted (Dovecot has no fixed limit; this keeps the file and FLAGS
/// responses small).
pub const MAX_KEYWORD_LEN: usize = 100;
/// The file is tiny; a larger one is not ours and is read only this far.
const MAX_FILE: u64 = 64 * 1024;

/// The IMAP system flags and their letters, in the order FLAGS responses list them.
const SYSTEM_FLAGS: [(&str, char); 5] = [
    ("\\Answered", 'R'),
    ("\\Flagged", 'F'),
    ("\\Deleted", 'T'),
    ("\\Seen", 'S'),
    ("\\Draft", 'D'),
];

/// The letter of an IMAP system flag (`\Seen` → `S`, case-insensitive). `\Recent` has none: it
/// is not stored.
pub fn system_flag_letter(name: &str) -> Option<char> {
    SYSTEM_FLAGS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, c)| c)
}

/// True for a keyword IMAP can carry: a non-empty atom (RFC 3501 `flag-keyword`) without `\`,
/// at most `MAX_KEYWORD_LEN` bytes.
pub fn valid_keyword(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEYWORD_LEN
        && name.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// The keyword names of one folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    names: [Option<String>; MAX_KEYWORDS],
    stamp: Stamp,
}

fn letter_of(index: usize) -> Option<char> {
    u8::try_from(index)
        .ok()
        .filter(|&i| usize::from(i) < MAX_KEYWORDS)
        .map(|i| char::from(b'a' + i))
}

fn index_of(letter: char) -> Option<usize> {
    letter
        .is_ascii_lowercase()
        .then(|| usize::from(letter as u8 - b'a'))
}

impl Keywords {
    /// Parses a `dovecot-keywords` file (see the module header for what is skipped).
    pub fn parse(data: &[u8]) -> Keywords {
        let mut kw = Keywords::default();
        for line in data.split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let Some((index, name)) = line.split_once(' ') else {
                continue;
            };
            let Some(index) = index
                .parse::<usize>()
                .ok()
                .filter(|&i| i < MAX_KEYWORDS && index.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if !valid_keyword(name) || kw.letter(name).is_some() {
                continue;
            }
            if let Some(slot) = kw.names.get_mut(index)
                && slot.is_none()
            {
                *slot = Some(name.to_owned());
            }
        }
        kw
    }

    /// The file contents for these keywords.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, name) in self.names.iter().enumerate() {
            if let Some(name) = name {
                out.extend_from_slice(format!("{i} {name}\n").as_bytes());
            }
        }
        out
    }

    /// The letter of a keyword (case-insensitive).
    pub fn letter(&self, name: &str) -> Option<char> {
        self.names
            .iter()
            .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(letter_of)
    }

    /// The keyword a letter stands for (`None` for unassigned letters and non-keyword letters).
    pub fn name(&self, letter: char) -> Option<&str> {
        self.names.get(index_of(letter)?)?.as_deref()
    }

    /// True when all 26 letters are taken (PERMANENTFLAGS then stops offering `\*`).
    pub fn is_full(&self) -> bool {
        self.names.iter().all(Option::is_some)
    }

    /// How many letters are still free.
    pub fn free(&self) -> usize {
        self.names.iter().filter(|n| n.is_none()).count()
    }

    /// `(letter, name)` of every keyword, in letter order.
    pub fn iter(&self) -> impl Iterator<Item = (char, &str)> {
        self.names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((letter_of(i)?, n.as_deref()?)))
    }

    /// The IMAP flags of a message: system flags (`\Answered \Flagged \Deleted \Seen \Draft`
    /// order), then its keywords in letter order. Letters without an IMAP meaning (`P`, other
    /// tools' capitals, unassigned keyword letters) are left out, as Dovecot does.
    pub fn imap_flags(&self, flags: Flags) -> Vec<&str> {
        self.imap_flags_iter(flags).collect()
    }

    /// `imap_flags` without the vector (FETCH FLAGS renders one list per message).
    pub fn imap_flags_iter(&self, flags: Flags) -> impl Iterator<Item = &str> {
        SYSTEM_FLAGS
            .iter()
            .filter(move |(_, c)| flags.has(*c))
            .map(|&(n, _)| n)
            // Keywords have the lowercase letters (`index_of`), in letter order.
            .chain(
                ('a'..='z')
                    .filter(move |&c| flags.has(c))
                    .filter_map(|c| self.name(c)),
            )
    }

    /// Reads the folder's file (empty if there is none).
    pub(crate) fn load(dir: &Path) -> Result<Keywords> {
        let path = dir.join(KEYWORDS_FILE);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Keywords::default()),
            Err(e) => return Err(io_err("stat", &path)(e)),
        };
        let mut data = Vec::new();
        match File::open(&path).and_then(|f| f.take(MAX_FILE).read_to_end(&mut data)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Keywords::default()),
            Err(e) => return Err(io_err("read", &path)(e)),
        }
        let mut kw = Keywords::parse(&data);
        kw.stamp = stamp_of(&meta);
        Ok(kw)
    }

    /// Re-reads the file if it changed since it was read (one stat otherwise). Returns true when
    /// the set of keywords changed (the session then sends a new FLAGS response).
    pub(crate) fn reload_if_changed(&mut self, dir: &Path) -> Result<bool> {
        let path = dir.join(KEYWORDS_FILE);
        let stamp = match fs::metadata(&path) {
            Ok(m) => stamp_of(&m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Stamp::default(),
            Err(e) => return Err(io_err("stat", &path)(e)),
        };
        if stamp == self.stamp {
            return Ok(false);
        }
        let fresh = Keywords::load(dir)?;
        let changed = fresh.names != self.names;
        *self = fresh;
        Ok(changed)
    }

    /// The letter for `name`, assigning the first free one if it has none. The caller holds the
    /// index lock. `None` when the name is not a valid keyword or all letters are taken.
    pub(crate) fn assign(&mut self, dir: &Path, name: &str) -> Result<Option<char>> {
        *self = Keywords::load(dir)?;
        if let Some(c) = self.letter(name) {
            return Ok(Some(c));
        }
        if !valid_keyword(name) {
            return Ok(None);
        }
        let Some(free) = self.names.iter().position(Option::is_none) else {
            return Ok(None);
        };
        if let Some(slot) = self.names.get_mut(free) {
            *slot = Some(name.to_owned());
        }
        write_file(dir, &self.to_bytes())?;
        *self = Keywords::load(dir)?;
        Ok(self.letter(name))
    }
}

fn stamp_of(m: &fs::Metadata) -> Stamp {
    Stamp {
        ino: m.ino(),
        size: m.len(),
        mtime_ns: u64::try_from(m.mtime())
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(m.mtime_nsec()).unwrap_or(0)),
    }
}

/// Dovecot writes `dovecot-keywords.tmp` under its own dotlock; ours is a different name so
/// the two never share a temp file.
fn write_file(dir: &Path, contents: &[u8]) -> Result<()> {
    moat_maildir::write_then_rename(
        dir,
        &format!("{KEYWORDS_FILE}.moat-tmp"),
        KEYWORDS_FILE,
        contents,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dovecot_format_tolerantly() {
        let kw = Keywords::parse(
            b"0 $Forwarded\n2 Work\n26 TooFar\nx Bad\n3 has space\n4 work\n5 \n1 $Junk\n\xff\xfe\n0 Dup",
        );
        assert_eq!(kw.letter("$forwarded"), Some('a'));
        assert_eq!(kw.letter("$Junk"), Some('b'));
        assert_eq!(kw.letter("WORK"), Some('c'));
        assert_eq!(kw.name('c'), Some("Work"));
        assert_eq!(kw.letter("TooFar"), None);
        assert_eq!(kw.letter("Dup"), None);
        assert_eq!(kw.name('e'), None, "case duplicate of Work skipped");
        assert_eq!(kw.name('S'), None);
        assert_eq!(
            String::from_utf8(kw.to_bytes()).expect("utf8"),
            "0 $Forwarded\n1 $Junk\n2 Work\n"
        );
    }

    #[test]
    fn imap_flags_and_system_letters() {
        let kw = Keywords::parse(b"0 $Forwarded\n");
        let flags = Flags::parse("SRPab").expect("flags");
        assert_eq!(
            kw.imap_flags(flags),
            vec!["\\Answered", "\\Seen", "$Forwarded"]
        );
        assert_eq!(system_flag_letter("\\SEEN"), Some('S'));
        assert_eq!(system_flag_letter("\\Recent"), None);
        for bad in ["", "a b", "\\Seen", "x(y", "é", "a]"] {
            assert!(!valid_keyword(bad), "{bad:?}");
        }
        assert!(valid_keyword("$MDNSent"));
    }

    #[test]
    fn assign_fills_letters_until_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut kw = Keywords::load(dir.path()).expect("load");
        assert_eq!(kw.assign(dir.path(), "One").expect("assign"), Some('a'));
        assert_eq!(kw.assign(dir.path(), "one").expect("again"), Some('a'));
        assert_eq!(kw.assign(dir.path(), "bad word").expect("invalid"), None);
        for i in 1..MAX_KEYWORDS {
            assert!(
                kw.assign(dir.path(), &format!("k{i}"))
                    .expect("assign")
                    .is_some()
            );
        }
        assert!(kw.is_full());
        assert_eq!(kw.assign(dir.path(), "overflow").expect("full"), None);
        let text = fs::read_to_string(dir.path().join(KEYWORDS_FILE)).expect("read");
        assert!(text.starts_with("0 One\n1 k1\n"));
        let mut other = Keywords::default();
        assert!(other.reload_if_changed(dir.path()).expect("reload"));
        assert_eq!(other.name('z'), Some("k25"));
        assert!(!other.reload_if_changed(dir.path()).expect("unchanged"));
    }
}
