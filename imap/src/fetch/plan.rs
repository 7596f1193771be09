//! A FETCH request's data items (imap-codec's `MacroOrMessageDataItemNames`) turned into what
//! to write per message, once per command.

use std::num::NonZeroU32;

use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItemName, Part, Section,
};

use crate::mime::{self, SectionText};
use crate::wire;

/// One item of the response, in the order asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Flags,
    Uid,
    InternalDate,
    Size,
    Envelope,
    /// `BODY` (the non-extensible BODYSTRUCTURE).
    Body,
    BodyStructure,
    ModSeq,
    /// `BODY[...]`, `BODY.PEEK[...]`, RFC822, RFC822.HEADER, RFC822.TEXT.
    Section {
        /// What the response calls it: `BODY[1.HEADER.FIELDS (From)]`, `RFC822.TEXT`.
        label: Vec<u8>,
        spec: mime::Section,
        /// `<origin.count>`; the response label then ends with `<origin>`.
        partial: Option<(u32, u32)>,
    },
    /// `BINARY[part]` / `BINARY.PEEK[part]`.
    Binary {
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize {
        part: Vec<u32>,
    },
}

/// What to send for each message of one FETCH (see the module API in `mod.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub(crate) items: Vec<Item>,
    sets_seen: bool,
    enables_condstore: bool,
    condstore: bool,
    changed_since: Option<u64>,
}

/// Builds the plan of a FETCH or UID FETCH. `condstore`: CONDSTORE is enabled in this session
/// (RFC 7162 §3.1: FETCH responses carrying FLAGS then carry MODSEQ too). The error (none
/// today: imap-codec already refused what cannot be served) is the text of a BAD.
pub fn plan(
    items: &MacroOrMessageDataItemNames<'_>,
    uid_command: bool,
    condstore: bool,
) -> Result<Plan, String> {
    let names: Vec<MessageDataItemName<'_>> = match items {
        MacroOrMessageDataItemNames::Macro(m) => m.expand(),
        MacroOrMessageDataItemNames::MessageDataItemNames(names) => names.clone(),
    };
    let mut plan = Plan {
        items: Vec::with_capacity(names.len() + 2),
        sets_seen: false,
        enables_condstore: false,
        condstore,
        changed_since: None,
    };
    for name in &names {
        let item = plan.item(name);
        plan.push(item);
    }
    // RFC 3501 §6.4.8: UID FETCH responses always carry the UID; first, as Dovecot sends it.
    if uid_command && !plan.items.contains(&Item::Uid) {
        plan.items.insert(0, Item::Uid);
    }
    plan.add_modseq_if_due();
    Ok(plan)
}

impl Plan {
    fn item(&mut self, name: &MessageDataItemName<'_>) -> Item {
        use MessageDataItemName as N;
        match name {
            N::Flags => Item::Flags,
            N::Uid => Item::Uid,
            N::InternalDate => Item::InternalDate,
            N::Rfc822Size => Item::Size,
            N::Envelope => Item::Envelope,
            N::Body => Item::Body,
            N::BodyStructure => Item::BodyStructure,
            N::ModSeq => {
                self.enables_condstore = true;
                Item::ModSeq
            }
            N::Rfc822 => {
                self.sets_seen = true;
                whole(b"RFC822", mime::Section::default())
            }
            N::Rfc822Header => whole(
                b"RFC822.HEADER",
                mime::Section {
                    part: Vec::new(),
                    text: Some(SectionText::Header),
                },
            ),
            N::Rfc822Text => {
                self.sets_seen = true;
                whole(
                    b"RFC822.TEXT",
                    mime::Section {
                        part: Vec::new(),
                        text: Some(SectionText::Text),
                    },
                )
            }
            N::BodyExt {
                section,
                partial,
                peek,
            } => {
                self.sets_seen |= !peek;
                let (spec, label) = section_of(section.as_ref());
                Item::Section {
                    label,
                    spec,
                    partial: partial.map(|(o, c)| (o, c.get())),
                }
            }
            N::Binary {
                section,
                partial,
                peek,
            } => {
                self.sets_seen |= !peek;
                Item::Binary {
                    part: numbers(section),
                    partial: partial.map(|(o, c)| (o, c.get())),
                }
            }
            N::BinarySize { section } => Item::BinarySize {
                part: numbers(section),
            },
        }
    }

    /// Adds an item unless the same one is already there (a client asking FLAGS twice gets it
    /// once).
    fn push(&mut self, item: Item) {
        if !self.items.contains(&item) {
            self.items.push(item);
        }
    }

    /// MODSEQ goes out when asked, with CHANGEDSINCE, or with FLAGS once CONDSTORE is on.
    fn add_modseq_if_due(&mut self) {
        let due = self.enables_condstore
            || self.changed_since.is_some()
            || (self.condstore && self.items.contains(&Item::Flags));
        if due {
            self.push(Item::ModSeq);
        }
    }

    /// Applies the FETCH modifiers (RFC 7162): CHANGEDSINCE; VANISHED needs QRESYNC, which is
    /// not offered, so it is an error (the text of a BAD).
    pub fn with_modifiers(mut self, modifiers: &[FetchModifier]) -> Result<Plan, String> {
        for m in modifiers {
            match m {
                FetchModifier::ChangedSince(since) => self.changed_since = Some(since.get()),
                FetchModifier::Vanished => {
                    return Err("VANISHED needs QRESYNC, which is not enabled.".into());
                }
            }
        }
        self.add_modseq_if_due();
        Ok(self)
    }

    /// The plan with FLAGS added (at the end) if it is not there: for a FETCH that set
    /// `\Seen` (RFC 3501 §6.4.5: the changed flags are sent). With CONDSTORE, MODSEQ too.
    pub fn with_flags_added(&self) -> Plan {
        let mut plan = self.clone();
        plan.push(Item::Flags);
        plan.add_modseq_if_due();
        plan
    }

    /// Some item needs the message's bytes (a section, RFC822*, BINARY*).
    pub fn needs_raw(&self) -> bool {
        self.items.iter().any(|i| {
            matches!(
                i,
                Item::Section { .. } | Item::Binary { .. } | Item::BinarySize { .. }
            )
        })
    }

    /// Some item needs the cached blob (ENVELOPE, BODY, BODYSTRUCTURE).
    pub fn needs_blob(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i, Item::Envelope | Item::Body | Item::BodyStructure))
    }

    /// The FETCH sets `\Seen` (BODY[...] or BINARY[...] without PEEK, RFC822, RFC822.TEXT):
    /// the session stores it before rendering (EXAMINE excepted) and renders with
    /// `with_flags_added` for messages whose flags changed.
    pub fn sets_seen(&self) -> bool {
        self.sets_seen
    }

    /// The responses carry MODSEQ.
    pub fn includes_modseq(&self) -> bool {
        self.items.contains(&Item::ModSeq)
    }

    /// The command is CONDSTORE-enabling (RFC 7162 §3.1: MODSEQ asked, or CHANGEDSINCE): the
    /// session turns CONDSTORE on (and owes a HIGHESTMODSEQ if it was off).
    pub fn enables_condstore(&self) -> bool {
        self.enables_condstore || self.changed_since.is_some()
    }

    /// The CHANGEDSINCE value, if given.
    pub fn changed_since(&self) -> Option<u64> {
        self.changed_since
    }

    /// False for a message CHANGEDSINCE excludes (its MODSEQ is not above the value).
    pub fn wants(&self, modseq: u64) -> bool {
        self.changed_since.is_none_or(|since| modseq > since)
    }
}

fn whole(label: &[u8], spec: mime::Section) -> Item {
    Item::Section {
        label: label.to_vec(),
        spec,
        partial: None,
    }
}

fn numbers(parts: &[NonZeroU32]) -> Vec<u32> {
    parts.iter().map(|n| n.get()).collect()
}

fn part_numbers(part: Option<&Part>) -> Vec<u32> {
    part.map(|p| numbers(p.0.as_ref())).unwrap_or_default()
}

/// The mime section for an imap-codec one, and its response label `BODY[...]`, echoing the
/// field names as the client spelled them.
fn section_of(section: Option<&Section<'_>>) -> (mime::Section, Vec<u8>) {
    let (part, text) = match section {
        None => (Vec::new(), None),
        Some(Section::Part(p)) => (part_numbers(Some(p)), None),
        Some(Section::Header(p)) => (part_numbers(p.as_ref()), Some(SectionText::Header)),
        Some(Section::Text(p)) => (part_numbers(p.as_ref()), Some(SectionText::Text)),
        Some(Section::Mime(p)) => (part_numbers(Some(p)), Some(SectionText::Mime)),
        Some(Section::HeaderFields(p, names)) => (
            part_numbers(p.as_ref()),
            Some(SectionText::HeaderFields(field_names(names.as_ref()))),
        ),
        Some(Section::HeaderFieldsNot(p, names)) => (
            part_numbers(p.as_ref()),
            Some(SectionText::HeaderFieldsNot(field_names(names.as_ref()))),
        ),
    };
    let mut label = b"BODY[".to_vec();
    let dotted: Vec<String> = part.iter().map(u32::to_string).collect();
    label.extend_from_slice(dotted.join(".").as_bytes());
    if let Some(text) = &text {
        if !part.is_empty() {
            label.push(b'.');
        }
        let (word, names): (&[u8], Option<&[Vec<u8>]>) = match text {
            SectionText::Header => (b"HEADER", None),
            SectionText::Text => (b"TEXT", None),
            SectionText::Mime => (b"MIME", None),
            SectionText::HeaderFields(n) => (b"HEADER.FIELDS", Some(n)),
            SectionText::HeaderFieldsNot(n) => (b"HEADER.FIELDS.NOT", Some(n)),
        };
        label.extend_from_slice(word);
        if let Some(names) = names {
            label.extend_from_slice(b" (");
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    label.push(b' ');
                }
                wire::astring(&mut label, n);
            }
            label.push(b')');
        }
    }
    label.push(b']');
    (mime::Section { part, text }, label)
}

fn field_names(names: &[imap_codec::imap_types::core::AString<'_>]) -> Vec<Vec<u8>> {
    names.iter().map(|n| n.as_ref().to_vec()).collect()
}
