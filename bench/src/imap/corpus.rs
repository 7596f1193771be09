//! The IMAP benchmark's folder: `count` messages written straight into a Maildir (no fsync: the
//! folder is scratch, and 50,000 synced deliveries would take a minute for nothing), each a
//! template's body under its own envelope headers (sender, recipients, subject, date over five
//! years in several time zones, Message-ID, Received chain, replies' References). Files are named
//! as moat-local and Dovecot name them (`,S=` file size, `,W=` RFC822 size: equal, the files are
//! CRLF), 99 % in cur/ with flags (older mail mostly \Seen), the newest 1 % in new/; each file's
//! mtime is its date, which both servers take as INTERNALDATE.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::templates::{Rng, SEARCH_WORD, Template, templates};

/// 2021-11-01 00:00 UTC: the folder's oldest message.
const START: u64 = 1_635_724_800;
/// Five years of mail.
const SPAN: u64 = 5 * 365 * 86_400;

/// What was written.
pub struct Corpus {
    pub count: usize,
    pub bytes: u64,
    /// Messages `SEARCH TEXT SEARCH_WORD` must find.
    pub expected_hits: usize,
}

/// Writes the folder into `maildir` (created with cur/, new/ and tmp/).
pub fn write(maildir: &Path, count: usize, template_count: usize) -> Result<Corpus> {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub))
            .with_context(|| format!("creating {}", maildir.display()))?;
    }
    let mut rng = Rng::new(0x6d6f_6174);
    let shapes = templates(template_count.max(1), &mut rng);
    let mut corpus = Corpus {
        count,
        bytes: 0,
        expected_hits: 0,
    };
    let step = SPAN / count.max(1) as u64;
    for i in 0..count {
        let template = rng.pick(&shapes);
        let date = START + i as u64 * step + rng.next() % step.max(1);
        // Now and then the word is in the subject instead (case differs: searches ignore case).
        let subject_word = rng.chance(2);
        let message = render(i, template, date, subject_word, &mut rng);
        if template.has_word || subject_word {
            corpus.expected_hits += 1;
        }
        let size = message.len();
        let newest = i >= count - count / 100;
        let (sub, info) = if newest {
            ("new", String::new())
        } else {
            ("cur", format!(":2,{}", flags(&mut rng, i < count * 9 / 10)))
        };
        let name = format!("{date}.M{i}P4242.bench,S={size},W={size}{info}");
        let path = maildir.join(sub).join(name);
        let mut file =
            File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        file.write_all(&message)?;
        file.set_modified(UNIX_EPOCH + Duration::from_secs(date))?;
        corpus.bytes += size as u64;
    }
    Ok(corpus)
}

/// Maildir flag letters, in the order the info wants them (ASCII).
fn flags(rng: &mut Rng, old: bool) -> String {
    let mut f = String::new();
    if rng.chance(3) {
        f.push('F');
    }
    if rng.chance(10) {
        f.push('R');
    }
    if rng.chance(if old { 95 } else { 50 }) {
        f.push('S');
    }
    f
}

fn render(i: usize, t: &Template, date: u64, subject_word: bool, rng: &mut Rng) -> Vec<u8> {
    let zones: [(i64, &str); 6] = [
        (0, "+0000"),
        (3600, "+0100"),
        (7200, "+0200"),
        (-18_000, "-0500"),
        (-28_800, "-0800"),
        (32_400, "+0900"),
    ];
    let (offset, zone) = *rng.pick(&zones);
    let local = date.saturating_add_signed(offset);
    let date_text = moat_common::date::rfc5322(local).replace("+0000", zone);
    let received_date = moat_common::date::rfc5322(date);
    let (name, addr) = &t.sender;
    let host = addr.rsplit('@').next().unwrap_or("example.com");
    let mut h = format!("Return-Path: <{addr}>\r\nDelivered-To: bulk@bench.test\r\n");
    h.push_str(&format!(
        "Received: from mail{}.{host} (mail{}.{host} [198.51.100.{}])\r\n\
         \tby mx.bench.test (Moat) with ESMTPS id {:016X}\r\n\
         \tfor <bulk@bench.test>; {received_date}\r\n",
        i % 5,
        i % 5,
        1 + i % 250,
        rng.next()
    ));
    for hop in 0..rng.below(3) {
        h.push_str(&format!(
            "Received: from relay{hop}.{host} (relay{hop}.{host} [203.0.113.{}])\r\n\
             \tby mail{}.{host} with ESMTP id {:08x}; {received_date}\r\n",
            1 + rng.below(250),
            i % 5,
            rng.next() as u32
        ));
    }
    h.push_str(&format!("From: \"{name}\" <{addr}>\r\n"));
    let mut to = vec!["Bench User <bulk@bench.test>".to_string()];
    for n in 0..rng.below(4) {
        to.push(format!("colleague{n}@example.com"));
    }
    h.push_str(&format!("To: {}\r\n", to.join(",\r\n\t")));
    if rng.chance(30) {
        h.push_str("Cc: \"Team list\" <team@lists.example.org>, manager@example.com\r\n");
    }
    let mut subject = t.subject.clone();
    if subject_word {
        subject.push_str(" (Zeppelin)");
    }
    if t.reply {
        subject = format!("Re: {subject}");
    }
    h.push_str(&format!(
        "Subject: {subject} {}\r\nDate: {date_text}\r\n",
        i % 1000
    ));
    h.push_str(&format!(
        "Message-ID: <{date}.{i}.{:x}@{host}>\r\n",
        rng.next()
    ));
    if t.reply {
        let parent = format!("<{}.{}@{host}>", date - 3600, i.saturating_sub(1));
        h.push_str(&format!(
            "In-Reply-To: {parent}\r\nReferences: <{}@{host}>\r\n {parent}\r\n",
            date - 7200
        ));
    }
    h.push_str(&t.headers);
    h.push_str("\r\n");
    debug_assert!(!h.contains(SEARCH_WORD));
    let mut out = h.into_bytes();
    out.extend_from_slice(&t.body);
    out
}
