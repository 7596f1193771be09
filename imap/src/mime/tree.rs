//! The MIME structure of one message: a flat list of parts with byte ranges into the raw
//! message, so every section is an exact slice of the stored bytes.

use std::ops::Range;

use super::header::MimeFields;
use super::params::ContentType;

/// What a part is, for navigation and BODYSTRUCTURE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A leaf (text, image, ...), also message/global and anything unknown.
    Leaf,
    /// multipart/*: `children` are its body parts (possibly none).
    Multipart,
    /// message/rfc822: `children` holds exactly the encapsulated message.
    Message,
    /// A container past `MAX_DEPTH`/`MAX_PARTS`: shown as application/octet-stream.
    Opaque,
}

#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// The header including its terminating blank line.
    pub header: Range<usize>,
    /// Length of that blank line (0 when the header ran into a boundary or the end).
    pub blank: usize,
    /// The body, without the line break that belongs to the next boundary.
    pub body: Range<usize>,
    pub kind: Kind,
    pub children: Vec<usize>,
    /// The MIME fields honoured for this part.
    pub mime: MimeFields,
    /// The parsed Content-Type, None if absent.
    pub ctype: Option<ContentType>,
    /// No Content-Type inside multipart/digest: message/rfc822 by default (RFC 2046 §5.1.5).
    pub digest_default: bool,
}

impl Part {
    /// The header fields' bytes (the header without its blank line).
    pub(crate) fn fields_range(&self) -> Range<usize> {
        self.header.start
            ..self
                .header
                .end
                .saturating_sub(self.blank)
                .max(self.header.start)
    }

    /// Whether BODYSTRUCTURE shows it as text/* (with a line count).
    pub(crate) fn is_text(&self) -> bool {
        match (&self.ctype, self.kind) {
            (_, Kind::Opaque | Kind::Multipart | Kind::Message) => false,
            (Some(ct), _) => ct.ty.eq_ignore_ascii_case(b"text"),
            (None, _) => !self.digest_default,
        }
    }
}

/// The parsed structure; `parts[0]` is the message itself.
#[derive(Debug)]
pub(crate) struct Tree {
    pub parts: Vec<Part>,
}

impl Tree {
    pub(crate) fn part(&self, id: usize) -> Option<&Part> {
        self.parts.get(id)
    }

    /// Resolves an IMAP part number (`1.2.3`) the way Dovecot does: a multipart's Nth child is
    /// taken; any other part answers once to `1`, as itself (so part 1 of a single-part
    /// message is its body, `2.1` is part 2 when that is a leaf, `1.1` of a single-part
    /// message does not exist); a message/rfc822 part reached before the last number is
    /// entered (its encapsulated message is what the next number applies to).
    /// Empty path: the message itself.
    pub(crate) fn resolve(&self, path: &[u32]) -> Option<usize> {
        let mut id = 0usize;
        let mut stayed = false;
        for (i, &n) in path.iter().enumerate() {
            let index = usize::try_from(n).ok()?.checked_sub(1)?;
            let part = self.part(id)?;
            if part.kind == Kind::Multipart {
                id = *part.children.get(index)?;
                stayed = false;
            } else if index != 0 || stayed {
                return None;
            } else {
                stayed = true;
            }
            let part = self.part(id)?;
            if part.kind == Kind::Message && i + 1 < path.len() {
                id = *part.children.first()?;
                stayed = false;
            }
        }
        Some(id)
    }

    /// The encapsulated message a HEADER/TEXT section refers to: the message itself for an
    /// empty path, else the resolved part must be message/rfc822.
    pub(crate) fn message_at(&self, path: &[u32]) -> Option<usize> {
        if path.is_empty() {
            return Some(0);
        }
        let part = self.part(self.resolve(path)?)?;
        match part.kind {
            Kind::Message => part.children.first().copied(),
            _ => None,
        }
    }
}
