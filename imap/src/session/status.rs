//! STATUS (RFC 3501 §6.3.10) and the STATUS lines of LIST-STATUS (RFC 5819): the items we can
//! answer and how the untagged response is written.
//!
//! HIGHESTMODSEQ (CONDSTORE) and SIZE (STATUS=SIZE) come with the index (`index/`); until
//! then a client asking for them gets BAD (neither is advertised).

use imap_codec::imap_types::status::StatusDataItemName;

use crate::mailbox::status::Counts;
use crate::wire;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
}

impl StatusItem {
    /// From an atom in `RETURN (STATUS (...))`.
    pub fn parse(atom: &[u8]) -> Option<StatusItem> {
        Some(match atom.to_ascii_uppercase().as_slice() {
            b"MESSAGES" => StatusItem::Messages,
            b"RECENT" => StatusItem::Recent,
            b"UIDNEXT" => StatusItem::UidNext,
            b"UIDVALIDITY" => StatusItem::UidValidity,
            b"UNSEEN" => StatusItem::Unseen,
            _ => return None,
        })
    }

    /// From imap-codec's STATUS command; `None` for items we cannot answer yet.
    pub fn from_codec(item: &StatusDataItemName) -> Option<StatusItem> {
        Some(match item {
            StatusDataItemName::Messages => StatusItem::Messages,
            StatusDataItemName::Recent => StatusItem::Recent,
            StatusDataItemName::UidNext => StatusItem::UidNext,
            StatusDataItemName::UidValidity => StatusItem::UidValidity,
            StatusDataItemName::Unseen => StatusItem::Unseen,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::Recent => "RECENT",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
        }
    }

    fn value(self, c: &Counts) -> u64 {
        u64::from(match self {
            StatusItem::Messages => c.messages,
            StatusItem::Recent => c.recent,
            StatusItem::UidNext => c.uid_next,
            StatusItem::UidValidity => c.uid_validity,
            StatusItem::Unseen => c.unseen,
        })
    }
}

/// `* STATUS <mailbox> (<item> <n> ...)`.
pub fn write(out: &mut Vec<u8>, mailbox: &str, items: &[StatusItem], counts: &Counts) {
    out.extend_from_slice(b"* STATUS ");
    wire::astring(out, mailbox.as_bytes());
    out.extend_from_slice(b" (");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(format!("{} {}", item.name(), item.value(counts)).as_bytes());
    }
    out.extend_from_slice(b")\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_items_in_the_order_asked() {
        let c = Counts {
            messages: 3,
            recent: 1,
            unseen: 2,
            uid_next: 7,
            uid_validity: 1_700_000_000,
            size: 99,
        };
        let mut out = Vec::new();
        write(
            &mut out,
            "My Box",
            &[
                StatusItem::UidNext,
                StatusItem::Messages,
                StatusItem::Unseen,
            ],
            &c,
        );
        assert_eq!(
            out,
            b"* STATUS \"My Box\" (UIDNEXT 7 MESSAGES 3 UNSEEN 2)\r\n"
        );
        assert_eq!(
            StatusItem::parse(b"uidvalidity"),
            Some(StatusItem::UidValidity)
        );
        assert_eq!(StatusItem::parse(b"SIZE"), None);
    }
}
