//! RFC 5322 address lists as ENVELOPE shows them (RFC 3501 §7.4.2), with Dovecot's
//! conventions: display names and local parts raw (encoded words kept, quoting undone),
//! a comment serves as the name of a bare `addr (Name)`, and what is missing is filled with
//! `MISSING_MAILBOX` / `MISSING_DOMAIN` so no address is mistaken for group syntax (a NIL
//! host). Groups become a start marker `(NIL NIL "name" NIL)` and an end marker
//! `(NIL NIL NIL NIL)`; a group inside a group is flattened.
//!
//! An angle address not closed right after its addr-spec gets the host `SYNTAX_ERROR`, as in
//! Dovecot. Deviations from Dovecot, on purpose: empty list elements (`a@b, , c@d`) are
//! skipped as RFC 5322's obsolete syntax says (Dovecot shows a MISSING_MAILBOX address for
//! each), and dotted words with white space (`john . doe @ x`) are read as one address.

use super::lex::Lexer;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    Mailbox {
        name: Option<Vec<u8>>,
        route: Option<Vec<u8>>,
        mailbox: Vec<u8>,
        host: Vec<u8>,
    },
    GroupStart(Vec<u8>),
    GroupEnd,
}

const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";
const SYNTAX_ERROR: &[u8] = b"SYNTAX_ERROR";

/// Parses one header value into addresses, appending to `out`.
pub(crate) fn parse_list(value: &[u8], out: &mut Vec<Address>) {
    let mut lex = Lexer::new(value);
    let mut in_group = false;
    loop {
        lex.skip_cfws();
        match lex.peek() {
            None => break,
            Some(b',') => {
                lex.bump();
                continue;
            }
            Some(b';') => {
                lex.bump();
                if in_group {
                    out.push(Address::GroupEnd);
                    in_group = false;
                }
                continue;
            }
            Some(_) => {}
        }
        let before = lex.pos();
        let start = lex.pos();
        let words = phrase(&mut lex);
        lex.skip_cfws();
        if lex.peek() == Some(b':') && !words.is_empty() {
            lex.bump();
            if !in_group {
                out.push(Address::GroupStart(words));
                in_group = true;
            }
            continue;
        }
        if lex.peek() == Some(b'<') {
            out.push(angle_addr(&mut lex, words));
        } else {
            lex.set_pos(start);
            out.push(addr_spec(&mut lex));
        }
        skip_to_separator(&mut lex);
        if lex.pos() == before {
            // Nothing could be read here: skip it so the loop always advances.
            lex.skip_unit();
        }
    }
    if in_group {
        out.push(Address::GroupEnd);
    }
}

/// A phrase (display name or group name): quoted strings unquoted, words separated by white
/// space or comments joined by one space, adjacent ones (`J.R.R.`, `Joe Q. Public`: obsolete
/// phrase syntax allows `.`) kept together.
fn phrase(lex: &mut Lexer<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let before = lex.pos();
        lex.skip_cfws();
        let spaced = lex.pos() != before && !out.is_empty();
        match lex.peek() {
            Some(b'"') => {
                if spaced {
                    out.push(b' ');
                }
                let _ = lex.quoted(&mut out);
            }
            Some(b'.') => {
                if spaced {
                    out.push(b' ');
                }
                lex.bump();
                out.push(b'.');
            }
            _ => {
                let word = lex.atom();
                if word.is_empty() {
                    return out;
                }
                if spaced {
                    out.push(b' ');
                }
                out.extend_from_slice(word);
            }
        }
    }
}

/// `"<" [route ":"] addr-spec ">"` after a display name.
fn angle_addr(lex: &mut Lexer<'_>, name: Vec<u8>) -> Address {
    lex.bump();
    lex.skip_cfws();
    let mut route = Vec::new();
    if lex.peek() == Some(b'@') {
        // Obsolete source route `@a,@b:`; kept as written without white space.
        while let Some(b) = lex.peek() {
            if b == b':' || b == b'>' {
                break;
            }
            if !matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                route.push(b);
            }
            lex.bump();
        }
        if lex.peek() == Some(b':') {
            lex.bump();
        }
    }
    let (local, mut domain) = local_and_domain(lex, &mut None);
    lex.skip_cfws();
    if lex.peek() == Some(b'>') {
        lex.bump();
    } else {
        // `<Undisclosed Recipients>`, `<a@b`: flagged as Dovecot flags them.
        domain = Some(SYNTAX_ERROR.to_vec());
    }
    mailbox((!name.is_empty()).then_some(name), route, local, domain)
}

/// A bare `local@domain`, maybe followed by a comment naming it; a run of words without `@`
/// is a name without an address (`bad address here`), a single word a mailbox without domain.
fn addr_spec(lex: &mut Lexer<'_>) -> Address {
    let mut comment = Some(Vec::new());
    let start = lex.pos();
    let (local, domain) = local_and_domain(lex, &mut comment);
    lex.skip_cfws_keeping(comment.as_mut());
    let name = comment.filter(|c| !c.is_empty());
    if domain.is_none() && !matches!(lex.peek(), None | Some(b',' | b';')) {
        // More words follow: this was a display name without an address.
        lex.set_pos(start);
        let words = phrase(lex);
        if !words.is_empty() {
            return mailbox(Some(words), Vec::new(), None, None);
        }
    }
    mailbox(name, Vec::new(), local, domain)
}

/// `local-part ["@" domain]`; either may be missing.
fn local_and_domain(
    lex: &mut Lexer<'_>,
    comment: &mut Option<Vec<u8>>,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut local = Vec::new();
    let mut any = false;
    loop {
        lex.skip_cfws_keeping(comment.as_mut());
        match lex.peek() {
            Some(b'"') => {
                let _ = lex.quoted(&mut local);
                any = true;
            }
            Some(b'.') => {
                lex.bump();
                local.push(b'.');
            }
            _ => {
                let word = lex.atom();
                if word.is_empty() {
                    break;
                }
                local.extend_from_slice(word);
                any = true;
            }
        }
        if !dot_follows(lex, &local, comment) {
            break;
        }
    }
    let local = (any && !local.is_empty()).then_some(local);
    lex.skip_cfws_keeping(comment.as_mut());
    if lex.peek() != Some(b'@') {
        return (local, None);
    }
    lex.bump();
    let mut domain = Vec::new();
    loop {
        lex.skip_cfws_keeping(comment.as_mut());
        match lex.peek() {
            Some(b'[') => lex.domain_literal(&mut domain),
            Some(b'.') => {
                lex.bump();
                domain.push(b'.');
            }
            _ => {
                let word = lex.atom();
                if word.is_empty() {
                    break;
                }
                domain.extend_from_slice(word);
            }
        }
        if !dot_follows(lex, &domain, comment) {
            break;
        }
    }
    (local, (!domain.is_empty()).then_some(domain))
}

/// Local parts and domains are dot-separated words (CFWS allowed around the dots): go on only
/// if a dot comes next or was the last thing read, else stop before a space-separated word.
fn dot_follows(lex: &mut Lexer<'_>, so_far: &[u8], comment: &mut Option<Vec<u8>>) -> bool {
    let save = lex.pos();
    lex.skip_cfws_keeping(comment.as_mut());
    if lex.peek() == Some(b'.') || so_far.ends_with(b".") {
        return true;
    }
    lex.set_pos(save);
    false
}

fn mailbox(
    name: Option<Vec<u8>>,
    route: Vec<u8>,
    local: Option<Vec<u8>>,
    domain: Option<Vec<u8>>,
) -> Address {
    Address::Mailbox {
        name,
        route: (!route.is_empty()).then_some(route),
        mailbox: local.unwrap_or_else(|| MISSING_MAILBOX.to_vec()),
        host: domain.unwrap_or_else(|| MISSING_DOMAIN.to_vec()),
    }
}

/// After an address: skip anything up to the next `,` or `;` (or the end), without splitting
/// quoted strings or comments.
fn skip_to_separator(lex: &mut Lexer<'_>) {
    loop {
        lex.skip_cfws();
        match lex.peek() {
            None | Some(b',' | b';') => return,
            Some(_) => lex.skip_unit(),
        }
    }
}
