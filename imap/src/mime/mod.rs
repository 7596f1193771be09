//! Raw message bytes → what IMAP shows of them: ENVELOPE, BODY/BODYSTRUCTURE, BODY[section],
//! BINARY[part], and the text SEARCH looks at.
//!
//! # API (the session calls exactly these)
//!
//! ```text
//! pub struct Parsed<'a>                       parse once, ask many times:
//!   Parsed::new(raw: &'a [u8]) -> Parsed<'a>
//!   .envelope(&self) -> Vec<u8>                               ENVELOPE value, wire bytes
//!   .bodystructure(&self, extended: bool) -> Vec<u8>          BODYSTRUCTURE (true) / BODY (false)
//!   .section(&self, spec: &Section) -> Option<Vec<u8>>        BODY[section]; None = no such section
//!                                                             (NUL sent as 0x80, as Dovecot does)
//!   .binary(&self, part: &[u32]) -> Result<Vec<u8>, BinaryError>   BINARY[part], decoded
//!   .binary_size(&self, part: &[u32]) -> Result<usize, BinaryError> BINARY.SIZE[part]
//!   .header_values(&self, name: &str) -> Vec<String>          decoded values, message header
//!   .body_texts(&self) -> Vec<String>                         decoded text/* bodies
//!   .header_contains(&self, name: &str, needle: &str) -> bool SEARCH HEADER/FROM/TO/SUBJECT/...
//!   .body_contains(&self, needle: &str) -> bool               SEARCH BODY
//!   .text_contains(&self, needle: &str) -> bool               SEARCH TEXT
//! and the same as free functions taking `raw: &[u8]` first (envelope, bodystructure, section,
//! binary, binary_size, header_values, body_texts, header_contains, body_contains,
//! text_contains), plus:
//! pub fn partial(data: &[u8], origin: u32, count: u32) -> &[u8]   <origin.count>, for BODY and BINARY
//! pub fn to_crlf(raw: &[u8]) -> Cow<'_, [u8]>                     bare LF → CRLF
//! pub struct Section { pub part: Vec<u32>, pub text: Option<SectionText> }
//! pub enum SectionText { Header, HeaderFields(Vec<Vec<u8>>), HeaderFieldsNot(Vec<Vec<u8>>), Text, Mime }
//! pub enum BinaryError { NoSuchPart, UnknownCte }               UnknownCte → NO [UNKNOWN-CTE]
//! ```
//!
//! The bytes given are the message as the client sees it: CRLF line ends. Moat stores CRLF; a
//! Maildir written by another MDA with bare LFs goes through `to_crlf` first, so sizes,
//! line counts and sections agree with RFC822.SIZE (the `,W=` size).
//!
//! Search needles are compared with Unicode simple case folding; an empty needle matches
//! (HEADER with an empty needle: any message that has the field).
//!
//! # Design
//!
//! The MIME structure is parsed here (`build.rs`) into byte ranges of the raw message, so
//! every section is an exact slice of the stored bytes, and the header syntax (addresses,
//! parameters) is parsed here too, because ENVELOPE and BODYSTRUCTURE show raw values that a
//! decoding parser no longer has. mail-parser supplies the charset tables for SEARCH only:
//! its own tree overflows the stack dropping a deeply nested message/rfc822 chain (its Drop
//! recurses) and its header decoder is quadratic on crafted values. The output follows what
//! Dovecot 2.3 answers for the same bytes (the tests hold Dovecot's answers), so a cache
//! built by either looks the same to clients. The limits are in `limits.rs`.
//!
//! Where we differ from Dovecot 2.3.19 on purpose: BINARY of a multipart or message part is
//! its body as stored (Dovecot re-encodes the parts inside to binary), and base64 /
//! quoted-printable are decoded leniently as RFC 2045 advises (Dovecot answers `NO [PARSE]`);
//! empty elements of address lists and Content-Language are skipped (Dovecot invents a
//! MISSING_MAILBOX address or stops); `name*` alone after other RFC 2231 continuations keeps
//! its name (Dovecot mislabels it); HEADER.FIELDS always ends with the blank line; BODY keeps
//! the case of `Text/Plain` (Dovecot's cache lower-cases that one case).

mod address;
mod binary;
mod bodystructure;
mod build;
mod emit;
mod envelope;
mod header;
mod lex;
mod limits;
mod params;
mod search;
mod section;
mod tree;
mod words;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use binary::BinaryError;
pub use section::{Section, SectionText, partial};

/// A message parsed once for several questions (a FETCH asking ENVELOPE, BODYSTRUCTURE and
/// sections of the same message).
pub struct Parsed<'a> {
    raw: &'a [u8],
    tree: tree::Tree,
}

impl<'a> Parsed<'a> {
    /// Parses the MIME structure; linear in the message size, bounded by `limits.rs`.
    pub fn new(raw: &'a [u8]) -> Self {
        Parsed {
            raw,
            tree: build::build(raw),
        }
    }

    /// The ENVELOPE value (`(date subject from ...)`), as wire bytes.
    pub fn envelope(&self) -> Vec<u8> {
        let mut out = Vec::new();
        envelope::write(&mut out, self.raw, &self.tree, 0);
        out
    }

    /// BODYSTRUCTURE (`extended`) or BODY, as wire bytes.
    pub fn bodystructure(&self, extended: bool) -> Vec<u8> {
        let mut out = Vec::new();
        bodystructure::write(&mut out, self.raw, &self.tree, 0, extended);
        out
    }

    /// The bytes of BODY[section] (apply `<partial>` with `partial`); None if the message
    /// has no such section.
    pub fn section(&self, spec: &Section) -> Option<Vec<u8>> {
        section::extract(self.raw, &self.tree, spec)
    }

    /// BINARY[part]: the part's body with its transfer encoding removed. An empty `part` is
    /// the whole message as stored; a multipart's body is sent as it is.
    pub fn binary(&self, part: &[u32]) -> Result<Vec<u8>, BinaryError> {
        if part.is_empty() {
            return Ok(self.raw.to_vec());
        }
        let id = self.tree.resolve(part).ok_or(BinaryError::NoSuchPart)?;
        let p = self.tree.part(id).ok_or(BinaryError::NoSuchPart)?;
        binary::decode_part(self.raw, p)
    }

    /// BINARY.SIZE[part]: the length `binary` would answer.
    pub fn binary_size(&self, part: &[u32]) -> Result<usize, BinaryError> {
        self.binary(part).map(|b| b.len())
    }

    /// The decoded (RFC 2047, UTF-8) values of the message's header fields called `name`.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        search::header_values(self.raw, &self.tree, name)
    }

    /// The decoded UTF-8 text of every text/* part, in message order.
    pub fn body_texts(&self) -> Vec<String> {
        search::body_texts(self.raw, &self.tree)
    }

    /// SEARCH HEADER `name` `needle` (FROM, TO, CC, BCC, SUBJECT are this with their name).
    pub fn header_contains(&self, name: &str, needle: &str) -> bool {
        search::header_contains(self.raw, &self.tree, name, needle)
    }

    /// SEARCH BODY `needle`.
    pub fn body_contains(&self, needle: &str) -> bool {
        search::body_contains(self.raw, &self.tree, needle)
    }

    /// SEARCH TEXT `needle` (every header block and the bodies).
    pub fn text_contains(&self, needle: &str) -> bool {
        search::text_contains(self.raw, &self.tree, needle)
    }
}

pub fn envelope(raw: &[u8]) -> Vec<u8> {
    Parsed::new(raw).envelope()
}

pub fn bodystructure(raw: &[u8], extended: bool) -> Vec<u8> {
    Parsed::new(raw).bodystructure(extended)
}

pub fn section(raw: &[u8], spec: &Section) -> Option<Vec<u8>> {
    Parsed::new(raw).section(spec)
}

pub fn binary(raw: &[u8], part: &[u32]) -> Result<Vec<u8>, BinaryError> {
    Parsed::new(raw).binary(part)
}

pub fn binary_size(raw: &[u8], part: &[u32]) -> Result<usize, BinaryError> {
    Parsed::new(raw).binary_size(part)
}

pub fn header_values(raw: &[u8], name: &str) -> Vec<String> {
    Parsed::new(raw).header_values(name)
}

pub fn body_texts(raw: &[u8]) -> Vec<String> {
    Parsed::new(raw).body_texts()
}

pub fn header_contains(raw: &[u8], name: &str, needle: &str) -> bool {
    Parsed::new(raw).header_contains(name, needle)
}

pub fn body_contains(raw: &[u8], needle: &str) -> bool {
    Parsed::new(raw).body_contains(needle)
}

pub fn text_contains(raw: &[u8], needle: &str) -> bool {
    Parsed::new(raw).text_contains(needle)
}

/// The message with every bare LF made CRLF (borrowed when there is none), for Maildirs
/// written with Unix line ends.
pub fn to_crlf(raw: &[u8]) -> Cow<'_, [u8]> {
    let bare = memchr::memchr_iter(b'\n', raw).any(|i| i == 0 || raw.get(i - 1) != Some(&b'\r'));
    if !bare {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    Cow::Owned(out)
}
