//! SEARCH responses: RFC 3501's `* SEARCH`, RFC 4731's `* ESEARCH`, RFC 7162's MODSEQ in
//! both; and the `RETURN (...)` clause imap-codec does not parse.
//!
//! imap-codec 2.0.0-alpha.10 refuses `SEARCH RETURN (...)`, so, as `session/list_command.rs`
//! does for LIST-EXTENDED, the clause is read here from the framed message and cut out; the
//! rest is an RFC 3501 SEARCH that imap-codec parses (`CommandCodec::decode`). RFC 4731 puts
//! the clause right after the command name, before CHARSET:
//! ```text
//! search = "SEARCH" [SP "RETURN" SP "(" [opt *(SP opt)] ")"] [SP "CHARSET" SP charset] 1*(SP key)
//! ```
//! SAVE (RFC 5182, SEARCHRES) is not offered, so it is refused like any unknown option.

use crate::wire;

/// The RETURN options of an ESEARCH. `RETURN ()` means ALL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReturnOptions {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
}

/// One matching message: its number (sequence number, or UID for UID SEARCH) and MODSEQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub id: u32,
    pub modseq: u64,
}

/// Reads a framed SEARCH/UID SEARCH message (tag to CRLF, literals included). `Ok(None)`: no
/// RETURN clause (imap-codec parses the message as it is); `Ok(Some((options, message)))`:
/// the message without the clause, for imap-codec; `Err`: the text of a BAD.
pub fn parse_return_options(message: &[u8]) -> Result<Option<(ReturnOptions, Vec<u8>)>, String> {
    let mut c = Cursor {
        bytes: message,
        at: 0,
    };
    let head = (|| {
        // RFC 3501 `tag`: ASTRING-CHARs (atom chars and `]`) except `+`.
        c.run(|b| (atom_char(b) || b == b']') && b != b'+')?;
        c.eat(b' ')?;
        // UID SEARCH or SEARCH: `keyword` consumes nothing when UID is not there.
        let _ = c.keyword(b"UID ");
        c.keyword(b"SEARCH")?;
        let cut = c.at;
        c.keyword(b" RETURN ")?;
        Some(cut)
    })();
    let Some(cut) = head else {
        return Ok(None);
    };
    let bad = || "Invalid SEARCH RETURN options.".to_string();
    let mut opts = ReturnOptions::default();
    c.eat(b'(').ok_or_else(bad)?;
    let mut any = false;
    while c.eat(b')').is_none() {
        if any {
            c.eat(b' ').ok_or_else(bad)?;
        }
        let word = c.run(atom_char).ok_or_else(bad)?.to_ascii_uppercase();
        match word.as_slice() {
            b"MIN" => opts.min = true,
            b"MAX" => opts.max = true,
            b"ALL" => opts.all = true,
            b"COUNT" => opts.count = true,
            _ => {
                return Err(format!(
                    "Unknown SEARCH RETURN option {}.",
                    String::from_utf8_lossy(&word)
                ));
            }
        }
        any = true;
    }
    if !any {
        opts.all = true;
    }
    let rest = message.get(c.at..).unwrap_or_default();
    if !rest.starts_with(b" ") {
        return Err(bad());
    }
    let mut line = message.get(..cut).unwrap_or_default().to_vec();
    line.extend_from_slice(rest);
    Ok(Some((opts, line)))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.bytes.get(self.at) == Some(&b)).then(|| self.at += 1)
    }

    fn keyword(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at.checked_add(word.len())?;
        let got = self.bytes.get(self.at..end)?;
        got.eq_ignore_ascii_case(word).then(|| self.at = end)
    }

    fn run(&mut self, ok: impl Fn(u8) -> bool) -> Option<&'a [u8]> {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(|&b| ok(b)) {
            self.at += 1;
        }
        (self.at > start).then(|| self.bytes.get(start..self.at).unwrap_or_default())
    }
}

/// RFC 3501 `ATOM-CHAR`.
fn atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `* SEARCH 2 5 9\r\n`, with ` (MODSEQ n)` (the highest MODSEQ of the hits) when `modseq`
/// (`Query::uses_modseq`) and something matched (RFC 7162 §3.1.5). Hits in the order given.
pub fn render_search(out: &mut Vec<u8>, hits: &[Hit], modseq: bool) {
    out.extend_from_slice(b"* SEARCH");
    for h in hits {
        out.extend_from_slice(format!(" {}", h.id).as_bytes());
    }
    if modseq && let Some(highest) = hits.iter().map(|h| h.modseq).max() {
        out.extend_from_slice(format!(" (MODSEQ {highest})").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `* ESEARCH (TAG "a1") UID MIN 2 MAX 9 COUNT 5 ALL 2:4,7,9 MODSEQ 42\r\n` (RFC 4731 §3.1):
/// MIN, MAX and ALL only when something matched, COUNT always when asked; MODSEQ when
/// `modseq` and something matched: the highest of all hits when ALL or COUNT was asked,
/// else of the MIN/MAX messages (RFC 7162 §3.1.5, as Dovecot).
pub fn render_esearch(
    out: &mut Vec<u8>,
    tag: &str,
    uid: bool,
    hits: &[Hit],
    opts: &ReturnOptions,
    modseq: bool,
) {
    out.extend_from_slice(b"* ESEARCH (TAG ");
    wire::string(out, tag.as_bytes());
    out.push(b')');
    if uid {
        out.extend_from_slice(b" UID");
    }
    let min = hits.iter().min_by_key(|h| h.id);
    let max = hits.iter().max_by_key(|h| h.id);
    if opts.min
        && let Some(h) = min
    {
        out.extend_from_slice(format!(" MIN {}", h.id).as_bytes());
    }
    if opts.max
        && let Some(h) = max
    {
        out.extend_from_slice(format!(" MAX {}", h.id).as_bytes());
    }
    if opts.count {
        out.extend_from_slice(format!(" COUNT {}", hits.len()).as_bytes());
    }
    if opts.all && !hits.is_empty() {
        out.extend_from_slice(b" ALL ");
        let ids: Vec<u32> = hits.iter().map(|h| h.id).collect();
        compact_set(out, &ids);
    }
    if modseq {
        let highest = if opts.all || opts.count {
            hits.iter().map(|h| h.modseq).max()
        } else {
            [min.filter(|_| opts.min), max.filter(|_| opts.max)]
                .into_iter()
                .flatten()
                .map(|h| h.modseq)
                .max()
        };
        if let Some(highest) = highest {
            out.extend_from_slice(format!(" MODSEQ {highest}").as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Numbers as the shortest sequence set: sorted, duplicates dropped, runs as `a:b`
/// (`2:4,7,9`).
pub fn compact_set(out: &mut Vec<u8>, ids: &[u32]) {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut it = ids.into_iter().peekable();
    let mut first = true;
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek().is_some_and(|&n| Some(n) == end.checked_add(1)) {
            end = it.next().unwrap_or(end);
        }
        if !first {
            out.push(b',');
        }
        first = false;
        if start == end {
            out.extend_from_slice(start.to_string().as_bytes());
        } else {
            out.extend_from_slice(format!("{start}:{end}").as_bytes());
        }
    }
}
