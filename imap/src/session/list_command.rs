//! LIST and LSUB arguments, including the LIST-EXTENDED form (RFC 5258) with its selection and
//! return options, RFC 6154's SPECIAL-USE and RFC 5819's `RETURN (STATUS (...))`.
//!
//! imap-codec 2.0.0-alpha.10 parses only RFC 3501's `LIST reference pattern` (its
//! `ext_list_extended` feature has the types, not the command syntax), so a LIST it refuses is
//! parsed here, over the complete message the fragmentizer framed:
//! ```text
//! list = "LIST" [SP "(" [opt *(SP opt)] ")"] SP mailbox SP (list-mailbox /
//!        "(" list-mailbox *(SP list-mailbox) ")") [SP "RETURN" SP "(" [ret *(SP ret)] ")"]
//! ```
//! Unknown options are refused with BAD rather than ignored (no option values are parsed).
//!
//! SECURITY: a cursor over a bounded message (64 KiB); no recursion, at most `MAX_PATTERNS`
//! patterns, literal lengths checked against what is there.

use super::status::StatusItem;

/// The most patterns in one LIST.
pub const MAX_PATTERNS: usize = 32;

/// A LIST or LSUB command, ready to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListCommand {
    pub tag: String,
    pub lsub: bool,
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    /// LIST-EXTENDED syntax was used (selection or return options, or several patterns).
    pub extended: bool,
    pub select_subscribed: bool,
    pub select_special_use: bool,
    pub recursive_match: bool,
    pub return_subscribed: bool,
    pub return_children: bool,
    pub return_special_use: bool,
    pub return_status: Option<Vec<StatusItem>>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    fn keyword(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        let got = self.bytes.get(self.at..end)?;
        got.eq_ignore_ascii_case(word).then(|| self.at = end)
    }

    /// A run of bytes `ok` accepts (at least one).
    fn run(&mut self, ok: impl Fn(u8) -> bool) -> Option<&'a [u8]> {
        let start = self.at;
        while self.peek().is_some_and(&ok) {
            self.at += 1;
        }
        (self.at > start).then(|| self.bytes.get(start..self.at).unwrap_or_default())
    }

    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.at += 1;
                    let c = self.peek().filter(|c| matches!(c, b'"' | b'\\'))?;
                    out.push(c);
                    self.at += 1;
                }
                b'\r' | b'\n' | 0 => return None,
                c => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Option<Vec<u8>> {
        self.eat(b'{')?;
        let digits = self.run(|b| b.is_ascii_digit())?;
        if digits.len() > 10 {
            return None;
        }
        let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let _ = self.eat(b'+');
        self.eat(b'}')?;
        self.eat(b'\r')?;
        self.eat(b'\n')?;
        let data = self.bytes.get(self.at..self.at.checked_add(n)?)?.to_vec();
        self.at += n;
        Some(data)
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' => self.literal(),
            _ => None,
        }
    }

    /// `astring`: an atom (with `]`) or a string.
    fn astring(&mut self) -> Option<Vec<u8>> {
        match self.peek()? {
            b'"' | b'{' => self.string(),
            _ => self.run(|b| atom_char(b) || b == b']').map(<[u8]>::to_vec),
        }
    }

    /// `list-mailbox`: list-chars (atom chars, `%`, `*`, `]`) or a string.
    fn list_mailbox(&mut self) -> Option<Vec<u8>> {
        match self.peek()? {
            b'"' | b'{' => self.string(),
            _ => self
                .run(|b| atom_char(b) || matches!(b, b']' | b'%' | b'*'))
                .map(<[u8]>::to_vec),
        }
    }

    fn atom(&mut self) -> Option<&'a [u8]> {
        self.run(atom_char)
    }

    /// `"(" [item *(SP item)] ")"`, each item read by `item`.
    fn list_of(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'(')?;
        if self.eat(b')').is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            if self.eat(b')').is_some() {
                return Some(());
            }
            self.eat(b' ')?;
        }
    }
}

/// RFC 3501 `ATOM-CHAR`.
fn atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// True if the message is a LIST command (whatever its arguments), so a LIST imap-codec
/// refused is tried here.
pub fn is_list(message: &[u8]) -> bool {
    let mut c = Cursor {
        bytes: message,
        at: 0,
    };
    c.atom().is_some() && c.eat(b' ').is_some() && c.keyword(b"LIST ").is_some()
}

/// Parses a whole LIST message (tag to CRLF); `None` on any syntax error.
pub fn parse(message: &[u8]) -> Option<ListCommand> {
    let mut c = Cursor {
        bytes: message,
        at: 0,
    };
    let tag = String::from_utf8(c.run(|b| atom_char(b) && b != b'+')?.to_vec()).ok()?;
    c.eat(b' ')?;
    c.keyword(b"LIST ")?;
    let mut cmd = ListCommand {
        tag,
        ..ListCommand::default()
    };
    if c.peek() == Some(b'(') {
        cmd.extended = true;
        c.list_of(|c| {
            let opt = c.atom()?.to_ascii_uppercase();
            match opt.as_slice() {
                b"SUBSCRIBED" => cmd.select_subscribed = true,
                b"SPECIAL-USE" => cmd.select_special_use = true,
                b"RECURSIVEMATCH" => cmd.recursive_match = true,
                b"REMOTE" => {}
                _ => return None,
            }
            Some(())
        })?;
        c.eat(b' ')?;
    }
    cmd.reference = c.astring()?;
    c.eat(b' ')?;
    if c.peek() == Some(b'(') {
        cmd.extended = true;
        c.list_of(|c| {
            cmd.patterns.push(c.list_mailbox()?);
            (cmd.patterns.len() <= MAX_PATTERNS).then_some(())
        })?;
        if cmd.patterns.is_empty() {
            return None;
        }
    } else {
        cmd.patterns.push(c.list_mailbox()?);
    }
    if c.eat(b' ').is_some() {
        c.keyword(b"RETURN ")?;
        cmd.extended = true;
        c.list_of(|c| {
            let opt = c.atom()?.to_ascii_uppercase();
            match opt.as_slice() {
                b"SUBSCRIBED" => cmd.return_subscribed = true,
                b"CHILDREN" => cmd.return_children = true,
                b"SPECIAL-USE" => cmd.return_special_use = true,
                b"STATUS" => {
                    c.eat(b' ')?;
                    let mut items = Vec::new();
                    c.list_of(|c| {
                        items.push(StatusItem::parse(c.atom()?)?);
                        Some(())
                    })?;
                    if items.is_empty() {
                        return None;
                    }
                    cmd.return_status = Some(items);
                }
                _ => return None,
            }
            Some(())
        })?;
    }
    c.eat(b'\r')?;
    c.eat(b'\n')?;
    // RFC 5258 §3.1: RECURSIVEMATCH needs another selection option.
    if cmd.recursive_match && !cmd.select_subscribed && !cmd.select_special_use {
        return None;
    }
    (c.at == message.len()).then_some(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_forms() {
        let c = parse(b"a1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"*\" INBOX/%) RETURN (CHILDREN STATUS (MESSAGES UIDNEXT) SPECIAL-USE)\r\n")
            .expect("parses");
        assert_eq!(c.tag, "a1");
        assert!(c.extended && c.select_subscribed && c.recursive_match);
        assert_eq!(c.patterns, vec![b"*".to_vec(), b"INBOX/%".to_vec()]);
        assert!(c.return_children && c.return_special_use && !c.return_subscribed);
        assert_eq!(
            c.return_status,
            Some(vec![StatusItem::Messages, StatusItem::UidNext])
        );
        let c = parse(b"t LIST {2}\r\nab %\r\n").expect("literal");
        assert_eq!(c.reference, b"ab");
        assert!(!c.extended);
        let c = parse(b"t list (special-use) \"\" *\r\n").expect("special-use");
        assert!(c.select_special_use);
        assert!(is_list(b"t LIST (X) \"\" *\r\n"));
        assert!(!is_list(b"t LSUB \"\" *\r\n"));
    }

    #[test]
    fn refusals() {
        for bad in [
            &b"t LIST (RECURSIVEMATCH) \"\" *\r\n"[..],
            b"t LIST (BOGUS) \"\" *\r\n",
            b"t LIST \"\" * RETURN (STATUS ())\r\n",
            b"t LIST \"\" * RETURN (STATUS (BOGUS))\r\n",
            b"t LIST \"\" ()\r\n",
            b"t LIST \"\" *",
            b"t LIST \"\" * extra\r\n",
            b"t LIST {99}\r\nab *\r\n",
            b"t LIST \"a\r\" *\r\n",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let many = format!(
            "t LIST \"\" ({})\r\n",
            vec!["x"; MAX_PATTERNS + 1].join(" ")
        );
        assert_eq!(parse(many.as_bytes()), None);
    }
}
