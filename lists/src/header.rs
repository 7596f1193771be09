//! The few header fields moat-lists reads from a message: whether it was sent by a machine
//! (RFC 3834 `Auto-Submitted`, `Precedence`), which must never be answered (mail loops between
//! two auto-responders are how lists melt down).
//!
//! SECURITY: the message is hostile input. At most `MAX_HEADER` bytes are read, with positioned
//! reads (the descriptor's offset is left alone); lines are split on LF, folded lines joined,
//! and nothing is allocated beyond that bound.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// The most header read: a header that does not end within it is judged on what was read.
pub const MAX_HEADER: usize = 64 * 1024;

/// Up to `len` bytes of `file` at `offset` (fewer only at its end), with positioned reads: the
/// descriptor is shared, its offset never moves. Every bounded read of moat-lists goes here.
pub fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// The header section of `file` (up to the first empty line, not included), at most
/// `MAX_HEADER` bytes, and where the body starts: `None` when the header does not end within
/// `MAX_HEADER` (a message that is all header ends at its end).
pub fn read(file: &File) -> std::io::Result<(Vec<u8>, Option<u64>)> {
    let mut head = read_at(file, 0, MAX_HEADER)?;
    let got = head.len();
    match end_of_header(&head) {
        Some((end, body)) => {
            head.truncate(end);
            Ok((head, Some(body as u64)))
        }
        None if got < MAX_HEADER => Ok((head, Some(got as u64))),
        None => Ok((head, None)),
    }
}

/// Where the header ends (after its last line's end) and where the body starts.
fn end_of_header(head: &[u8]) -> Option<(usize, usize)> {
    if head.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    if head.starts_with(b"\n") {
        return Some((0, 1));
    }
    let lf = head
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i + 1, i + 2));
    let crlf = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i + 2, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The header's fields, each as its raw bytes with its folded lines and line ends.
pub fn fields(header: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    while pos < header.len() {
        let end = header[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |i| pos + i + 1);
        let folded = header.get(end).is_some_and(|b| *b == b' ' || *b == b'\t');
        if !folded {
            out.push(&header[start..end]);
            start = end;
        }
        pos = end;
    }
    out
}

/// Whether raw field `field` is named `name` (case-insensitive).
pub fn is_named(field: &[u8], name: &str) -> bool {
    field.iter().position(|&b| b == b':').is_some_and(|colon| {
        field[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(name.as_bytes())
    })
}

/// The (unfolded, trimmed) values of every field named `name` (case-insensitive).
pub fn values(header: &[u8], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if let Some(v) = current.as_mut() {
                v.push(' ');
                v.push_str(String::from_utf8_lossy(line).trim());
            }
            continue;
        }
        if let Some(v) = current.take() {
            out.push(v);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        // Trimmed as in `is_named`: the obsolete syntax allows blanks before the colon.
        if line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(name.as_bytes())
        {
            current = Some(
                String::from_utf8_lossy(&line[colon + 1..])
                    .trim()
                    .to_string(),
            );
        }
    }
    out.extend(current);
    out
}

/// Why a message counts as sent by a machine (`Auto-Submitted` other than `no`, `Precedence`
/// bulk, junk or list), or `None`.
pub fn automatic(header: &[u8]) -> Option<String> {
    for v in values(header, "Auto-Submitted") {
        let word = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if word != "no" {
            return Some(format!(
                "Auto-Submitted: {}",
                word.chars().take(40).collect::<String>()
            ));
        }
    }
    for v in values(header, "Precedence") {
        let word = v.trim().to_ascii_lowercase();
        if matches!(word.as_str(), "bulk" | "junk" | "list") {
            return Some(format!("Precedence: {word}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m");
        std::fs::write(&path, b"A: 1\r\nB: 2\r\n\r\nC: body\r\n").expect("write");
        let file = File::open(&path).expect("open");
        let (head, body) = read(&file).expect("read");
        assert_eq!(head, b"A: 1\r\nB: 2\r\n");
        assert_eq!(body, Some(14));
        std::fs::write(&path, b"A: 1\r\n").expect("write");
        let file = File::open(&path).expect("open");
        assert_eq!(read(&file).expect("read"), (b"A: 1\r\n".to_vec(), Some(6)));
        std::fs::write(&path, vec![b'a'; MAX_HEADER + 10]).expect("write");
        let file = File::open(&path).expect("open");
        assert_eq!(read(&file).expect("read").1, None);
    }

    #[test]
    fn split_into_fields() {
        let h = b"A: 1\r\nSubject: x\r\n y\r\nB: 2\r\n";
        let f = fields(h);
        assert_eq!(
            f,
            vec![&b"A: 1\r\n"[..], b"Subject: x\r\n y\r\n", b"B: 2\r\n"]
        );
        assert!(is_named(f[1], "subject") && !is_named(f[0], "subject"));
    }

    #[test]
    fn machine_mail() {
        assert_eq!(automatic(b"Subject: hi\r\nAuto-Submitted: no\r\n"), None);
        assert_eq!(
            automatic(b"Auto-Submitted:\r\n auto-replied\r\n").as_deref(),
            Some("Auto-Submitted: auto-replied")
        );
        assert_eq!(
            automatic(b"precedence: BULK\n").as_deref(),
            Some("Precedence: bulk")
        );
        assert_eq!(automatic(b"Precedence: first-class\n"), None);
        // Obsolete syntax (RFC 5322 §4.5): blanks between the field name and the colon.
        assert_eq!(
            automatic(b"Subject: hi\r\nAuto-Submitted : auto-replied\r\n").as_deref(),
            Some("Auto-Submitted: auto-replied")
        );
        assert_eq!(
            automatic(b"Precedence\t: bulk\r\n").as_deref(),
            Some("Precedence: bulk")
        );
        assert_eq!(values(b"X : a\r\n", "X"), vec!["a"]);
        assert_eq!(values(b"X: a\r\nx: b\r\n c\r\n", "X"), vec!["a", "b c"]);
    }
}
