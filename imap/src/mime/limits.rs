//! Hard limits on what a message can make the parser do (docs/IMAP.md "Limits").
//!
//! Messages are hostile input: without these a 10,000-level nested message or a header of
//! 500,000 lines would cost stack, memory or quadratic time (the Dovecot CVE-2024-23184 class).
//! With them every operation is a bounded number of linear passes over the bytes.

/// Containers (multipart, message/rfc822) are opened down to this depth; a container deeper
/// than this is shown as an opaque `application/octet-stream` leaf. The root is depth 0. It is
/// also what bounds the recursion of the parser and of the BODYSTRUCTURE writer.
pub(crate) const MAX_DEPTH: usize = 50;

/// Header lines parsed per part (fields looked at for MIME, ENVELOPE, HEADER.FIELDS, SEARCH).
/// Lines past this are still part of the header's bytes (HEADER, MIME, `.NOT` pass them on),
/// they are just not parsed.
pub(crate) const MAX_HEADER_LINES: usize = 10_000;

/// MIME parts per message, as Dovecot's `max_total_mime_parts` default. Once reached, boundaries
/// are no longer recognised and the parts still open run to the end of the message, so a
/// message of a million empty parts costs one part's worth of work per part up to here.
pub(crate) const MAX_PARTS: usize = 10_000;

/// Longest boundary honoured. RFC 2046 allows 70; longer ones are treated as missing (the
/// multipart then has no parts), which keeps the per-line boundary comparison cheap.
pub(crate) const MAX_BOUNDARY: usize = 200;
