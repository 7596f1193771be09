//! STATUS (RFC 3501 §6.3.10) and the STATUS lines of LIST-STATUS (RFC 5819): the items we can
//! answer and how the untagged response is written. HIGHESTMODSEQ (CONDSTORE, RFC 7162) and
//! SIZE (STATUS=SIZE, RFC 8438) come from the folder's index; DELETED and DELETED-STORAGE
//! (IMAP4rev2) are not offered and get BAD.

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
    HighestModSeq,
    Size,
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
            b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            b"SIZE" => StatusItem::Size,
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
            StatusDataItemName::HighestModSeq => StatusItem::HighestModSeq,
            StatusDataItemName::Size => StatusItem::Size,
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
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::Size => "SIZE",
        }
    }

    fn value(self, c: &Counts) -> u64 {
        match self {
            StatusItem::Messages => c.messages.into(),
            StatusItem::Recent => c.recent.into(),
            StatusItem::UidNext => c.uid_next.into(),
            StatusItem::UidValidity => c.uid_validity.into(),
            StatusItem::Unseen => c.unseen.into(),
            StatusItem::HighestModSeq => c.highest_modseq,
            StatusItem::Size => c.size,
        }
    }

    /// True for CONDSTORE's item: asking for it turns CONDSTORE on (RFC 7162 §3.1).
    pub fn enables_condstore(self) -> bool {
        self == StatusItem::HighestModSeq
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
            highest_modseq: 12,
        };
        let mut out = Vec::new();
        write(
            &mut out,
            "My Box",
            &[
                StatusItem::UidNext,
                StatusItem::Messages,
                StatusItem::Unseen,
                StatusItem::Size,
                StatusItem::HighestModSeq,
            ],
            &c,
        );
        assert_eq!(
            out,
            b"* STATUS \"My Box\" (UIDNEXT 7 MESSAGES 3 UNSEEN 2 SIZE 99 HIGHESTMODSEQ 12)\r\n"
        );
        assert_eq!(
            StatusItem::parse(b"uidvalidity"),
            Some(StatusItem::UidValidity)
        );
        assert_eq!(StatusItem::parse(b"size"), Some(StatusItem::Size));
        assert_eq!(StatusItem::parse(b"DELETED"), None);
    }
}
