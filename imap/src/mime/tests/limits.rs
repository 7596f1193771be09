//! Generated hostile messages: each must be answered in bounded time and memory.

use std::time::{Duration, Instant};

use super::show;
use crate::mime::{Parsed, Section, SectionText, limits};

/// Runs `f`, prints how long it took (the report's numbers), and fails past `limit`.
fn timed<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    eprintln!("{what}: {took:?}");
    assert!(took < limit, "{what} took {took:?}");
    out
}

/// Deepest parenthesis nesting in an answer (strings are not looked into: none hold parens
/// in these generated messages).
fn paren_depth(v: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for &b in v {
        match b {
            b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Every question the session can ask, once.
fn ask_everything(raw: &[u8]) -> Vec<u8> {
    let p = Parsed::new(raw);
    let structure = p.bodystructure(true);
    let _ = (p.envelope(), p.bodystructure(false));
    let _ = p.section(&Section {
        part: vec![1; 60],
        text: Some(SectionText::Mime),
    });
    let _ = p.section(&Section {
        part: vec![],
        text: Some(SectionText::HeaderFieldsNot(vec![b"x-1".to_vec()])),
    });
    let _ = p.binary(&[1; 60]);
    let _ = (p.body_contains("needle"), p.text_contains("needle"));
    structure
}

const GENEROUS: Duration = Duration::from_secs(20);

#[test]
fn ten_thousand_nested_multiparts() {
    for prefix_free in [true, false] {
        let mut raw = Vec::new();
        let boundary = |i: usize| {
            if prefix_free {
                format!("=_{i}_=")
            } else {
                format!("b{i}")
            }
        };
        for i in 0..10_000 {
            raw.extend_from_slice(
                format!(
                    "Content-Type: multipart/mixed; boundary=\"{}\"\r\n\r\n--{}\r\n",
                    boundary(i),
                    boundary(i)
                )
                .as_bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\nneedle\r\n");
        for i in (0..10_000).rev() {
            raw.extend_from_slice(format!("--{}--\r\n", boundary(i)).as_bytes());
        }
        let structure = timed(
            &format!(
                "10,000 nested multiparts ({} bytes, prefix_free={prefix_free})",
                raw.len()
            ),
            GENEROUS,
            || ask_everything(&raw),
        );
        assert!(
            paren_depth(&structure) <= limits::MAX_DEPTH + 2,
            "{}",
            paren_depth(&structure)
        );
        if prefix_free {
            // Depth 50 holds the opaque leaf that swallowed the rest.
            let needle = "(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\"";
            assert!(show(&structure).contains(needle));
        }
    }
}

#[test]
fn ten_thousand_nested_messages() {
    let mut raw = Vec::new();
    for _ in 0..10_000 {
        raw.extend_from_slice(b"Subject: level\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    raw.extend_from_slice(b"Subject: bottom\r\n\r\nbody\r\n");
    let p = timed("10,000 nested message/rfc822", GENEROUS, || {
        let _ = ask_everything(&raw);
        Parsed::new(&raw)
    });
    assert!(p.tree.parts.len() <= limits::MAX_DEPTH + 1);
    // Part 1.1.1... enters one message per number, down to the opaque leaf and no further.
    let deep = p.section(&Section {
        part: vec![1; limits::MAX_DEPTH + 1],
        text: None,
    });
    assert!(deep.is_some_and(|d| d.starts_with(b"Subject: level\r\n")));
    assert_eq!(
        p.section(&Section {
            part: vec![1; limits::MAX_DEPTH + 2],
            text: None
        }),
        None
    );
}

#[test]
fn half_a_million_header_lines() {
    let mut raw = Vec::with_capacity(12_000_000);
    raw.extend_from_slice(b"Subject: first\r\n");
    for i in 0..500_000 {
        raw.extend_from_slice(format!("X-{i}: =?utf-8?q?v?= =?x?\r\n").as_bytes());
    }
    raw.extend_from_slice(b"Subject: hidden past the limit\r\n\r\nbody\r\n");
    let p = timed(
        &format!("500,000 header lines ({} bytes)", raw.len()),
        GENEROUS,
        || {
            let _ = ask_everything(&raw);
            Parsed::new(&raw)
        },
    );
    assert!(show(&p.envelope()).starts_with("(NIL \"first\" "));
    assert!(!p.header_contains("subject", "hidden"));
    assert_eq!(
        p.section(&Section {
            part: vec![1],
            text: None
        })
        .as_deref(),
        Some(&b"body\r\n"[..])
    );
    let header = p
        .section(&Section {
            part: vec![],
            text: Some(SectionText::Header),
        })
        .expect("header");
    assert_eq!(header.len(), raw.len() - b"body\r\n".len());
    // .NOT passes the unparsed lines on; a field list cannot see them.
    let not = p
        .section(&Section {
            part: vec![],
            text: Some(SectionText::HeaderFieldsNot(vec![b"x-1".to_vec()])),
        })
        .expect("fields");
    assert!(not.ends_with(b"Subject: hidden past the limit\r\n\r\n"));
    let fields = p
        .section(&Section {
            part: vec![],
            text: Some(SectionText::HeaderFields(vec![b"subject".to_vec()])),
        })
        .expect("fields");
    assert_eq!(fields, b"Subject: first\r\n\r\n");
}

#[test]
fn a_hundred_thousand_parts() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=p\r\n\r\n".to_vec();
    for _ in 0..100_000 {
        raw.extend_from_slice(b"--p\r\n\r\nx\r\n");
    }
    raw.extend_from_slice(b"--p--\r\n");
    let p = timed("100,000 parts", GENEROUS, || {
        let _ = ask_everything(&raw);
        Parsed::new(&raw)
    });
    assert_eq!(p.tree.parts.len(), limits::MAX_PARTS);
}

#[test]
fn crafted_boundary_lines() {
    // Every line starts like one of the 50 open boundaries and differs at its last byte.
    let mut raw = Vec::new();
    let b = |i: usize| format!("{}{i:02}", "x".repeat(150));
    for i in 0..50 {
        raw.extend_from_slice(
            format!(
                "Content-Type: multipart/mixed; boundary=\"{}\"\r\n\r\n--{}\r\n",
                b(i),
                b(i)
            )
            .as_bytes(),
        );
    }
    raw.extend_from_slice(b"\r\n");
    let line = format!("--{}\r\n", "x".repeat(152));
    while raw.len() < 10_000_000 {
        raw.extend_from_slice(line.as_bytes());
    }
    timed(
        &format!("crafted boundary lines ({} bytes)", raw.len()),
        GENEROUS,
        || ask_everything(&raw),
    );
}
