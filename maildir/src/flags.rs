//! Message flags as stored in the `:2,<letters>` info suffix of a Maildir file name.
//!
//! The standard flags are D (draft), F (flagged), P (passed), R (replied), S (seen), T (trashed).
//! Dovecot stores IMAP keywords as lower-case letters `a`-`z` (mapped to names in `dovecot-keywords`);
//! we keep those letters as they are and leave the mapping to the IMAP layer. Other upper-case letters
//! are experimental flags of other tools; we keep them too rather than silently dropping them.
//! The Maildir spec requires the letters in ASCII order, which is exactly the bit order used here.

use std::fmt;

use crate::error::{Error, Result};

/// A set of flag letters (A-Z and a-z), stored as a 52-bit mask.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u64);

impl Flags {
    /// D: the message is a draft.
    pub const DRAFT: Flags = Flags::bit(b'D');
    /// F: flagged for urgent/special attention.
    pub const FLAGGED: Flags = Flags::bit(b'F');
    /// P: passed (resent/forwarded/bounced).
    pub const PASSED: Flags = Flags::bit(b'P');
    /// R: replied to.
    pub const REPLIED: Flags = Flags::bit(b'R');
    /// S: seen.
    pub const SEEN: Flags = Flags::bit(b'S');
    /// T: trashed (marked for deletion; IMAP's \Deleted).
    pub const TRASHED: Flags = Flags::bit(b'T');

    const fn bit(letter: u8) -> Flags {
        match letter {
            b'A'..=b'Z' => Flags(1 << (letter - b'A')),
            b'a'..=b'z' => Flags(1 << (26 + letter - b'a')),
            _ => Flags(0),
        }
    }

    /// The empty set.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// Parses letters such as `"FS"` or `"Sab"`. Rejects anything that is not A-Z/a-z; order and
    /// duplicates do not matter.
    pub fn parse(letters: &str) -> Result<Flags> {
        let mut flags = Flags::empty();
        for c in letters.chars() {
            flags.insert(c)?;
        }
        Ok(flags)
    }

    /// Reads flags from a file name's info part (the text after `:`). Only the `2,` info form carries
    /// flags; anything else (e.g. experimental `1,` info) yields no flags. Stray non-letters are skipped
    /// so a foreign file name never makes listing fail.
    pub fn from_info(info: &str) -> Flags {
        let Some(letters) = info.strip_prefix("2,") else {
            return Flags::empty();
        };
        let mut flags = Flags::empty();
        for b in letters.bytes() {
            flags.0 |= Flags::bit(b).0;
        }
        flags
    }

    /// Adds one flag letter.
    pub fn insert(&mut self, letter: char) -> Result<()> {
        let bit = u8::try_from(letter).map(Flags::bit).unwrap_or_default();
        if bit.0 == 0 {
            return Err(Error::InvalidFlag(letter));
        }
        self.0 |= bit.0;
        Ok(())
    }

    /// Removes one flag letter (no-op for letters that are not flags).
    pub fn remove(&mut self, letter: char) {
        if let Ok(b) = u8::try_from(letter) {
            self.0 &= !Flags::bit(b).0;
        }
    }

    /// True if the letter is set.
    pub fn has(&self, letter: char) -> bool {
        u8::try_from(letter).is_ok_and(|b| {
            let bit = Flags::bit(b).0;
            bit != 0 && self.0 & bit != 0
        })
    }

    /// True if every flag in `other` is set.
    pub fn contains(&self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Set union.
    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Flags in `self` but not in `other`.
    pub fn difference(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// True when no flag is set.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The letters in ASCII order (upper-case system flags first, then keyword letters).
    pub fn letters(&self) -> impl Iterator<Item = char> + '_ {
        (b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .filter(|&b| self.0 & Flags::bit(b).0 != 0)
            .map(char::from)
    }

    /// The info suffix for a file name in cur/: `2,<letters>` (without the leading `:`).
    pub fn to_info(&self) -> String {
        format!("2,{self}")
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.letters() {
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({self})")
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sorts_and_dedups() {
        let f = Flags::parse("SbFaS").expect("valid");
        assert_eq!(f.to_string(), "FSab");
        assert_eq!(f.to_info(), "2,FSab");
        assert!(f.has('S') && f.has('a') && !f.has('T'));
        assert!(f.contains(Flags::SEEN | Flags::FLAGGED));
    }

    #[test]
    fn parse_rejects_non_letters() {
        for bad in ["1", ",", ":", "é", " ", "\0"] {
            assert!(Flags::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn from_info_is_tolerant() {
        assert_eq!(Flags::from_info("2,RS").to_string(), "RS");
        assert_eq!(Flags::from_info("2,S,x=1").to_string(), "Sx");
        assert!(Flags::from_info("1,whatever").is_empty());
        assert!(Flags::from_info("").is_empty());
        assert!(Flags::from_info("2,").is_empty());
    }

    #[test]
    fn set_operations() {
        let mut f = Flags::SEEN | Flags::DRAFT;
        f.remove('D');
        assert_eq!(f, Flags::SEEN);
        f.insert('z').expect("keyword letter");
        assert_eq!(f.difference(Flags::SEEN).to_string(), "z");
        assert!(Flags::empty().is_empty());
        assert!(f.insert('7').is_err());
    }
}
