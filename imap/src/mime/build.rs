//! Building the part tree in one forward pass over the message.
//!
//! Boundaries are matched as RFC 2046 says (a line starting with `--boundary`) against every
//! open multipart, so a part ends at its own boundary or an ancestor's; the line break before
//! a boundary line belongs to the boundary. A part's header also ends at a boundary line. These
//! and the corner cases below (noted where they are) follow Dovecot 2.3, checked against it.
//! The cursor never moves backwards, the recursion is bounded by `MAX_DEPTH`, and the part
//! count by `MAX_PARTS`.

use std::ops::Range;

use memchr::memmem::Finder;

use super::header::MimeFields;
use super::limits::{MAX_BOUNDARY, MAX_DEPTH, MAX_PARTS};
use super::params;
use super::tree::{Kind, Part, Tree};

/// Where a part's scan stopped.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Eof,
    /// A boundary line of the open multipart at `level` starts at `line`; `next` is after its
    /// line break.
    Boundary {
        level: usize,
        line: usize,
        next: usize,
        close: bool,
    },
}

/// How a part came to be, which decides its defaults.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// The message or an encapsulated one: MIME only with MIME-Version or Content-Type.
    Message,
    /// A body part of a multipart; `digest` when the parent is multipart/digest.
    BodyPart { digest: bool },
}

pub(crate) fn build(raw: &[u8]) -> Tree {
    let mut b = Builder {
        raw,
        parts: Vec::new(),
        bounds: Vec::new(),
        exhausted: false,
        finder: Finder::new(b"\n--"),
    };
    let _ = b.entity(0, 0, Origin::Message);
    Tree { parts: b.parts }
}

struct Builder<'a> {
    raw: &'a [u8],
    parts: Vec<Part>,
    /// Boundaries of the open multiparts, outermost first.
    bounds: Vec<Vec<u8>>,
    /// `MAX_PARTS` reached: boundaries are no longer recognised.
    exhausted: bool,
    finder: Finder<'static>,
}

/// The result of reading a header.
struct HeaderScan {
    header: Range<usize>,
    blank: usize,
    /// Set when a boundary line cut the header short (the part then has an empty body).
    stop: Option<Stop>,
}

impl Builder<'_> {
    /// Parses the entity starting at `start` (header, then body) and returns its id, where it
    /// stopped, and how far its bytes reached before any line break was handed to a boundary.
    fn entity(&mut self, start: usize, depth: usize, origin: Origin) -> (usize, Stop, usize) {
        let hs = self.scan_header(start);
        let body_start = hs.header.end;
        let mut mime = MimeFields::collect(self.raw, hs.header.start..hs.header.end - hs.blank);
        let is_mime = matches!(origin, Origin::BodyPart { .. })
            || mime.mime_version
            || mime.content_type.is_some();
        if !is_mime {
            mime = mime.only_content_type();
        }
        let ctype = mime
            .content_type
            .clone()
            .map(|r| params::content_type(self.raw.get(r).unwrap_or_default()));
        let digest_default = ctype.is_none() && matches!(origin, Origin::BodyPart { digest: true });
        let id = self.parts.len();
        self.parts.push(Part {
            header: hs.header,
            blank: hs.blank,
            body: body_start..body_start,
            kind: Kind::Leaf,
            children: Vec::new(),
            mime,
            ctype,
            digest_default,
        });
        let (kind, boundary) = self.kind_of(id, depth);
        self.set_kind(id, kind);

        if let Some(stop) = hs.stop {
            // No body at all; an encapsulated message still needs its (empty) message part so
            // BODYSTRUCTURE has an envelope to show.
            if kind == Kind::Message {
                let child = self.empty_message(body_start);
                self.add_child(id, child);
            }
            return (id, stop, body_start);
        }

        let (end, stop) = match (kind, boundary) {
            (Kind::Message, _) => {
                let (child, stop, _) = self.entity(body_start, depth + 1, Origin::Message);
                self.add_child(id, child);
                let end = match (self.parts.get(child), stop) {
                    // The encapsulated header ran into a boundary: Dovecot leaves the line
                    // break before it out of that header but counts it in this part's body.
                    (Some(c), Stop::Boundary { line, .. }) if c.blank == 0 => line,
                    (Some(c), _) => c.body.end,
                    (None, _) => body_start,
                };
                (end, stop)
            }
            (Kind::Multipart, Some(boundary)) => {
                let digest = self.parts.get(id).is_some_and(|p| {
                    p.ctype
                        .as_ref()
                        .is_some_and(|c| c.sub.eq_ignore_ascii_case(b"digest"))
                });
                self.multipart(id, body_start, depth, boundary, digest)
            }
            _ => {
                let stop = self.find_boundary(body_start);
                (self.end_before(stop, body_start), stop)
            }
        };
        let reach = end.max(body_start);
        if let Some(p) = self.parts.get_mut(id) {
            p.body = body_start..end.max(body_start);
            let boundary_right_after =
                matches!(stop, Stop::Boundary { line, .. } if line == body_start);
            if kind != Kind::Message && p.body.is_empty() && p.blank > 0 && boundary_right_after {
                // No body and a boundary right after the blank line: that line break belongs
                // to the boundary, so the header ends before it (Dovecot's MIME answer).
                let end = p.header.end - p.blank;
                p.header.end = end;
                p.blank = 0;
                p.body = end..end;
            }
        }
        (id, stop, reach)
    }

    /// The body of a multipart with `boundary`: preamble, parts, epilogue.
    fn multipart(
        &mut self,
        id: usize,
        body_start: usize,
        depth: usize,
        boundary: Vec<u8>,
        digest: bool,
    ) -> (usize, Stop) {
        self.bounds.push(boundary);
        let level = self.bounds.len() - 1;
        let mut stop = self.find_boundary(body_start);
        let mut reach = body_start;
        loop {
            match stop {
                Stop::Boundary {
                    level: l,
                    next,
                    close: false,
                    ..
                } if l == level => {
                    if self.parts.len() >= MAX_PARTS {
                        self.exhausted = true;
                        stop = Stop::Eof;
                        continue;
                    }
                    let (child, s, r) = self.entity(next, depth + 1, Origin::BodyPart { digest });
                    self.add_child(id, child);
                    stop = s;
                    reach = r;
                }
                Stop::Boundary {
                    level: l,
                    next,
                    close: true,
                    ..
                } if l == level => {
                    self.bounds.pop();
                    // The epilogue runs to the next boundary of an ancestor.
                    let after = self.find_boundary(next);
                    return (self.end_before(after, next), after);
                }
                _ => {
                    // Our boundary never closed: an ancestor's boundary or the end ends us too,
                    // where our last part's bytes reached (Dovecot counts a last empty part's
                    // blank line here even though that part's MIME header gave it away).
                    self.bounds.pop();
                    return (self.end_before(stop, reach), stop);
                }
            }
        }
    }

    /// Decides the part's kind; for a multipart also its boundary (None: no usable boundary,
    /// so the multipart has no parts and its whole body is preamble, as in Dovecot).
    fn kind_of(&self, id: usize, depth: usize) -> (Kind, Option<Vec<u8>>) {
        let Some(part) = self.parts.get(id) else {
            return (Kind::Leaf, None);
        };
        let container_ok = depth < MAX_DEPTH && !self.exhausted && self.parts.len() < MAX_PARTS;
        match &part.ctype {
            Some(ct) if ct.ty.eq_ignore_ascii_case(b"multipart") => {
                if !container_ok {
                    return (Kind::Opaque, None);
                }
                // An empty boundary is honoured (every `--` line), as Dovecot does.
                let boundary = ct
                    .param("boundary")
                    .filter(|b| b.len() <= MAX_BOUNDARY)
                    .map(<[u8]>::to_vec);
                (Kind::Multipart, boundary)
            }
            Some(ct) if ct.is("message", "rfc822") => (
                if container_ok {
                    Kind::Message
                } else {
                    Kind::Opaque
                },
                None,
            ),
            None if part.digest_default => (
                if container_ok {
                    Kind::Message
                } else {
                    Kind::Opaque
                },
                None,
            ),
            _ => (Kind::Leaf, None),
        }
    }

    fn set_kind(&mut self, id: usize, kind: Kind) {
        if let Some(p) = self.parts.get_mut(id) {
            p.kind = kind;
        }
    }

    fn add_child(&mut self, id: usize, child: usize) {
        if let Some(p) = self.parts.get_mut(id) {
            p.children.push(child);
        }
    }

    /// An empty encapsulated message at `at` (its header was cut by a boundary).
    fn empty_message(&mut self, at: usize) -> usize {
        let id = self.parts.len();
        self.parts.push(Part {
            header: at..at,
            blank: 0,
            body: at..at,
            kind: Kind::Leaf,
            children: Vec::new(),
            mime: MimeFields::default(),
            ctype: None,
            digest_default: false,
        });
        id
    }

    /// Reads header lines from `start` up to the blank line, a boundary line or the end.
    fn scan_header(&self, start: usize) -> HeaderScan {
        let len = self.raw.len();
        let mut pos = start.min(len);
        loop {
            if pos >= len {
                return HeaderScan {
                    header: start.min(len)..len,
                    blank: 0,
                    stop: None,
                };
            }
            if let Some(stop) = self.boundary_at(pos) {
                let end = self.cut_newline(pos, start);
                return HeaderScan {
                    header: start..end,
                    blank: 0,
                    stop: Some(stop),
                };
            }
            let rest = self.raw.get(pos..).unwrap_or_default();
            let line_end = memchr::memchr(b'\n', rest).map_or(len, |i| pos + i + 1);
            if matches!(self.raw.get(pos..line_end), Some(b"\n" | b"\r\n")) {
                return HeaderScan {
                    header: start..line_end,
                    blank: line_end - pos,
                    stop: None,
                };
            }
            pos = line_end;
        }
    }

    /// The next boundary line at or after `from` (a line start).
    fn find_boundary(&self, from: usize) -> Stop {
        if self.exhausted || self.bounds.is_empty() {
            return Stop::Eof;
        }
        let mut pos = from;
        loop {
            if let Some(stop) = self.boundary_at(pos) {
                return stop;
            }
            let rest = self.raw.get(pos..).unwrap_or_default();
            match self.finder.find(rest) {
                Some(i) => pos += i + 1,
                None => return Stop::Eof,
            }
        }
    }

    /// Whether the line at `pos` is a boundary line of an open multipart. Like Dovecot: the
    /// longest open boundary the line starts with wins, the innermost among equals, so nested
    /// boundaries that extend each other (`a` and `ab`) work whichever is outside.
    fn boundary_at(&self, pos: usize) -> Option<Stop> {
        if self.exhausted {
            return None;
        }
        let after_dashes = self.raw.get(pos..)?.strip_prefix(b"--")?;
        let mut best: Option<(usize, usize)> = None;
        for (level, boundary) in self.bounds.iter().enumerate().rev() {
            if after_dashes.starts_with(boundary)
                && best.is_none_or(|(_, len)| boundary.len() > len)
            {
                best = Some((level, boundary.len()));
            }
        }
        let (level, len) = best?;
        let rest = after_dashes.get(len..).unwrap_or_default();
        let next = memchr::memchr(b'\n', rest)
            .map_or(self.raw.len(), |i| self.raw.len() - rest.len() + i + 1);
        Some(Stop::Boundary {
            level,
            line: pos,
            next,
            close: rest.starts_with(b"--"),
        })
    }

    /// Where the content before `stop` ends: before the boundary line's preceding line break.
    fn end_before(&self, stop: Stop, floor: usize) -> usize {
        match stop {
            Stop::Eof => self.raw.len(),
            Stop::Boundary { line, .. } => self.cut_newline(line, floor),
        }
    }

    /// `line` minus the CRLF or LF before it, never below `floor`.
    fn cut_newline(&self, line: usize, floor: usize) -> usize {
        let mut end = line;
        if end > floor && self.raw.get(end - 1) == Some(&b'\n') {
            end -= 1;
            if end > floor && self.raw.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
        }
        end
    }
}
