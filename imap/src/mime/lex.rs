//! RFC 5322 / RFC 2045 lexical scanning over a raw header value (folding CRLFs included).
//!
//! Every method either consumes at least one byte or reports that it consumed nothing, and
//! callers rely on that for progress; nothing here recurses (comments nest by counting).

/// A cursor over one header value.
pub(crate) struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        Lexer { s, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn bump(&mut self) {
        if self.pos < self.s.len() {
            self.pos += 1;
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos.min(self.s.len());
    }

    /// Skips folding white space and comments.
    pub(crate) fn skip_cfws(&mut self) {
        self.skip_cfws_keeping(None);
    }

    /// Skips folding white space and comments; the text of the last comment goes to
    /// `comment` (an address written `john@x (John Doe)` takes its name from it).
    pub(crate) fn skip_cfws_keeping(&mut self, mut comment: Option<&mut Vec<u8>>) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.bump(),
                Some(b'(') => {
                    let text = self.comment();
                    if let Some(c) = comment.as_deref_mut() {
                        *c = text;
                    }
                }
                _ => return,
            }
        }
    }

    /// A comment starting at `(`, nested ones included; an unterminated one runs to the end.
    /// Returns its text with quoted pairs undone and folding CRLFs removed.
    fn comment(&mut self) -> Vec<u8> {
        let mut depth = 0usize;
        let mut text = Vec::new();
        while let Some(b) = self.peek() {
            self.bump();
            match b {
                b'(' => {
                    if depth > 0 {
                        text.push(b);
                    }
                    depth += 1;
                }
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                    text.push(b);
                }
                b'\\' => {
                    if let Some(next) = self.peek() {
                        self.bump();
                        text.push(next);
                    }
                }
                b'\r' | b'\n' => {}
                _ => text.push(b),
            }
        }
        text
    }

    /// An RFC 2045 `token` (8-bit bytes tolerated); empty if none is here.
    pub(crate) fn token(&mut self) -> &'a [u8] {
        self.run(is_token)
    }

    /// An RFC 5322 `atom` (atext run, 8-bit tolerated for RFC 6532); empty if none is here.
    pub(crate) fn atom(&mut self) -> &'a [u8] {
        self.run(is_atext)
    }

    fn run(&mut self, accept: fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(accept) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// A quoted string at `"`: appends its content with quoted pairs undone and folding CRLFs
    /// removed. An unterminated one runs to the end; the result says whether it was closed.
    pub(crate) fn quoted(&mut self, out: &mut Vec<u8>) -> bool {
        self.bump();
        while let Some(b) = self.peek() {
            self.bump();
            match b {
                b'"' => return true,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        self.bump();
                        out.push(next);
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        false
    }

    /// A domain literal at `[`, kept with its brackets (as Dovecot shows `[1.2.3.4]`).
    pub(crate) fn domain_literal(&mut self, out: &mut Vec<u8>) {
        while let Some(b) = self.peek() {
            self.bump();
            match b {
                b'\r' | b'\n' => {}
                b'\\' => {
                    if let Some(next) = self.peek() {
                        self.bump();
                        out.push(next);
                    }
                }
                _ => out.push(b),
            }
            if b == b']' {
                return;
            }
        }
    }

    /// Skips one unit of anything (a quoted string or comment whole, else one byte), for
    /// recovering from syntax errors without splitting inside quotes.
    pub(crate) fn skip_unit(&mut self) {
        match self.peek() {
            Some(b'"') => {
                let mut sink = Vec::new();
                let _ = self.quoted(&mut sink);
            }
            Some(b'(') => {
                self.comment();
            }
            _ => self.bump(),
        }
    }
}

/// RFC 2045 token characters: visible ASCII except tspecials, plus 8-bit (lenient).
pub(crate) fn is_token(b: u8) -> bool {
    b >= 0x80 || (b > 0x20 && b < 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

/// RFC 5322 atext, plus 8-bit (RFC 6532).
pub(crate) fn is_atext(b: u8) -> bool {
    b >= 0x80 || b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_nest_and_quotes_unescape() {
        let mut l = Lexer::new(b" (a (b) \\) c)  x");
        let mut c = Vec::new();
        l.skip_cfws_keeping(Some(&mut c));
        assert_eq!(c, b"a (b) ) c");
        assert_eq!(l.atom(), b"x");
        assert!(l.at_end());

        let mut l = Lexer::new(b"\"a \\\"q\\\"\r\n b\" rest");
        let mut q = Vec::new();
        assert!(l.quoted(&mut q));
        assert_eq!(q, b"a \"q\" b");
    }

    #[test]
    fn unterminated_constructs_end_at_the_end() {
        let mut l = Lexer::new(b"((((((");
        l.skip_cfws();
        assert!(l.at_end());
        let mut l = Lexer::new(b"\"open");
        let mut q = Vec::new();
        assert!(!l.quoted(&mut q));
        assert_eq!(q, b"open");
        assert!(l.at_end());
    }
}
