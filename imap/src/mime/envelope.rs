//! ENVELOPE (RFC 3501 §7.4.2) as IMAP wire bytes.
//!
//! Values are the raw header values as Dovecot shows them: encoded words stay encoded,
//! folding line breaks are removed (the subject's white space is also collapsed), Message-ID
//! and In-Reply-To are raw strings. A repeated string field takes its last occurrence and
//! repeated address fields are joined (what Dovecot answers); Sender and Reply-To default to
//! From when absent or empty.

use super::address::{self, Address};
use super::emit::{nstring, string};
use super::header::{fields, for_humans, nolf};
use super::tree::Tree;

/// Writes the ENVELOPE of the message whose header is part `id`'s.
pub(crate) fn write(out: &mut Vec<u8>, raw: &[u8], tree: &Tree, id: usize) {
    let mut date = None;
    let mut subject = None;
    let mut message_id = None;
    let mut in_reply_to = None;
    let mut lists: [Vec<Address>; 6] = Default::default();
    const LISTS: [&str; 6] = ["From", "Sender", "Reply-To", "To", "Cc", "Bcc"];

    if let Some(part) = tree.part(id) {
        for f in fields(raw, part.fields_range()) {
            let value = raw.get(f.value.clone()).unwrap_or_default();
            if f.is(raw, "Date") {
                date = Some(nolf(value));
            } else if f.is(raw, "Subject") {
                subject = Some(for_humans(value));
            } else if f.is(raw, "Message-ID") {
                message_id = Some(nolf(value));
            } else if f.is(raw, "In-Reply-To") {
                in_reply_to = Some(nolf(value));
            } else if let Some(list) = LISTS
                .iter()
                .position(|n| f.is(raw, n))
                .and_then(|i| lists.get_mut(i))
            {
                address::parse_list(value, list);
            }
        }
    }

    let [from, sender, reply_to, to, cc, bcc] = &lists;
    out.push(b'(');
    nstring(out, date.as_deref());
    out.push(b' ');
    nstring(out, subject.as_deref());
    for list in [
        from,
        if sender.is_empty() { from } else { sender },
        if reply_to.is_empty() { from } else { reply_to },
        to,
        cc,
        bcc,
    ] {
        out.push(b' ');
        write_list(out, list);
    }
    out.push(b' ');
    nstring(out, in_reply_to.as_deref());
    out.push(b' ');
    nstring(out, message_id.as_deref());
    out.push(b')');
}

fn write_list(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        match a {
            Address::Mailbox {
                name,
                route,
                mailbox,
                host,
            } => {
                out.push(b'(');
                nstring(out, name.as_deref());
                out.push(b' ');
                nstring(out, route.as_deref());
                out.push(b' ');
                string(out, mailbox);
                out.push(b' ');
                string(out, host);
                out.push(b')');
            }
            Address::GroupStart(name) => {
                out.extend_from_slice(b"(NIL NIL ");
                string(out, name);
                out.extend_from_slice(b" NIL)");
            }
            Address::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
    out.push(b')');
}
