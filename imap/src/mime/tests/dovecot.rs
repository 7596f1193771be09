//! The corpus against Dovecot's answers, values compared after re-quoting.

use super::refs::{SECTIONS, STRUCTURES};
use super::{canon, imap_string, message, show};
use crate::mime::{Parsed, Section, SectionText};

#[test]
fn structures_match_dovecot() {
    let mut failures = Vec::new();
    for (name, item, expected) in STRUCTURES {
        let raw = message(name);
        let parsed = Parsed::new(&raw);
        let ours = match *item {
            "ENVELOPE" => parsed.envelope(),
            "BODYSTRUCTURE" => parsed.bodystructure(true),
            "BODY" => parsed.bodystructure(false),
            other => panic!("unknown item {other}"),
        };
        let theirs = canon(expected.as_bytes());
        if ours != theirs {
            failures.push(format!(
                "{name} {item}\n  dovecot: {}\n  ours:    {}",
                show(&theirs),
                show(&ours)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `BODY[3.HEADER.FIELDS (A B)]` / `BINARY[2]` → (binary?, Section).
fn parse_item(item: &str) -> (bool, Section) {
    let (binary, rest) = match item.strip_prefix("BINARY[") {
        Some(rest) => (true, rest),
        None => (false, item.strip_prefix("BODY[").expect("BODY[ or BINARY[")),
    };
    let spec = rest.strip_suffix(']').expect("closing bracket");
    let mut part = Vec::new();
    let mut text = spec;
    while let Some((n, tail)) = text
        .split_once('.')
        .filter(|(n, _)| n.parse::<u32>().is_ok())
    {
        part.push(n.parse().expect("number"));
        text = tail;
    }
    if let Ok(n) = text.parse::<u32>() {
        part.push(n);
        text = "";
    }
    let names = |list: &str| -> Vec<Vec<u8>> {
        list.trim_matches(|c| c == '(' || c == ')')
            .split(' ')
            .map(|n| n.as_bytes().to_vec())
            .collect()
    };
    let text = if text.is_empty() {
        None
    } else if let Some(list) = text.strip_prefix("HEADER.FIELDS.NOT ") {
        Some(SectionText::HeaderFieldsNot(names(list)))
    } else if let Some(list) = text.strip_prefix("HEADER.FIELDS ") {
        Some(SectionText::HeaderFields(names(list)))
    } else {
        Some(match text {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" => SectionText::Mime,
            other => panic!("unknown section text {other}"),
        })
    };
    (binary, Section { part, text })
}

#[test]
fn sections_match_dovecot() {
    let mut failures = Vec::new();
    for (name, item, expected) in SECTIONS {
        let raw = message(name);
        let parsed = Parsed::new(&raw);
        let (is_binary, spec) = parse_item(item);
        let ours = if is_binary {
            parsed.binary(&spec.part).expect("decodable")
        } else {
            parsed.section(&spec).unwrap_or_default()
        };
        let (theirs, _) = imap_string(expected.as_bytes(), 0).expect("Dovecot string");
        if ours != theirs {
            failures.push(format!(
                "{name} {item}\n  dovecot: {:?}\n  ours:    {:?}",
                show(&theirs),
                show(&ours)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
