//! A framed message → what the session acts on: a command (imap-codec's `CommandCodec`), a
//! LIST/LSUB (`list_command.rs`, which also reads LIST-EXTENDED), or a SASL response
//! (`AuthenticateDataCodec`), or the BAD to answer.

use imap_codec::decode::Decoder;
use imap_codec::fragmentizer::DecodeMessageError;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::AuthenticateData;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::{AuthenticateDataCodec, CommandCodec};

use super::input::Input;
use super::list_command::{self, ListCommand};

/// What the session gets.
#[derive(Debug)]
pub enum Parsed {
    Command(Command<'static>),
    /// A SEARCH with ESEARCH's `RETURN (...)` (RFC 4731), which imap-codec does not parse.
    Esearch(Command<'static>, crate::search::ReturnOptions),
    List(ListCommand),
    /// A SASL response, decoded from base64; `None`: the client cancelled (`*`).
    Sasl(Option<Vec<u8>>),
    Bad {
        tag: Option<String>,
        text: String,
    },
}

/// An APPEND whose message literal was just announced: its arguments, decoded by imap-codec
/// (`append_head`); the literal itself is streamed (`input.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendHead {
    pub tag: String,
    pub mailbox: Mailbox<'static>,
    pub flags: Vec<Flag<'static>>,
    pub date: Option<DateTime>,
    /// The literal's announced length.
    pub length: u32,
    /// A `~{n}` literal8 (RFC 3516): the message may hold NUL.
    pub binary: bool,
}

/// If `line` (a message so far, ending with a literal announcement) is an APPEND whose next
/// literal is the message, its arguments. A one-byte stand-in literal replaces the announced
/// one, so imap-codec checks the whole command without the message: an announcement that is
/// not the message (a mailbox sent as a literal) leaves an incomplete APPEND and `None`.
pub fn append_head(line: &[u8], length: u32, binary: bool) -> Option<AppendHead> {
    let brace = memchr::memrchr(b'{', line)?;
    let mut probe = line.get(..brace)?.to_vec();
    probe.extend_from_slice(b"{1}\r\nX\r\n");
    let (rest, command) = CommandCodec::default().decode(&probe).ok()?;
    if !rest.is_empty() {
        return None;
    }
    match command.body {
        CommandBody::Append {
            mailbox,
            flags,
            date,
            ..
        } => Some(AppendHead {
            tag: command.tag.as_ref().to_string(),
            mailbox: mailbox.into_static(),
            flags: flags.into_static(),
            date,
            length,
            binary,
        }),
        _ => None,
    }
}

/// The bytes of a mailbox argument as sent (INBOX in any case reads as `INBOX`).
pub fn mailbox_bytes<'a>(mailbox: &'a Mailbox<'_>) -> &'a [u8] {
    match mailbox {
        Mailbox::Inbox => b"INBOX",
        Mailbox::Other(other) => other.inner().as_ref(),
    }
}

fn list_mailbox_bytes<'a>(pattern: &'a ListMailbox<'_>) -> &'a [u8] {
    match pattern {
        ListMailbox::Token(t) => t.as_ref(),
        ListMailbox::String(s) => s.as_ref(),
    }
}

/// The complete message in `input` as a command.
pub fn command(input: &Input) -> Parsed {
    let frag = input.fragmentizer();
    let tag = || frag.decode_tag().map(|t| t.as_ref().to_string());
    match frag.decode_message(&CommandCodec::default()) {
        Ok(command) => {
            let tag = command.tag.as_ref().to_string();
            match command.body {
                CommandBody::List {
                    reference,
                    mailbox_wildcard,
                } => Parsed::List(ListCommand {
                    tag,
                    reference: mailbox_bytes(&reference).to_vec(),
                    patterns: vec![list_mailbox_bytes(&mailbox_wildcard).to_vec()],
                    ..ListCommand::default()
                }),
                CommandBody::Lsub {
                    reference,
                    mailbox_wildcard,
                } => Parsed::List(ListCommand {
                    tag,
                    lsub: true,
                    reference: mailbox_bytes(&reference).to_vec(),
                    patterns: vec![list_mailbox_bytes(&mailbox_wildcard).to_vec()],
                    ..ListCommand::default()
                }),
                body => Parsed::Command(
                    Command {
                        tag: command.tag,
                        body,
                    }
                    .into_static(),
                ),
            }
        }
        Err(DecodeMessageError::MessageTooLong { .. }) => Parsed::Bad {
            tag: tag(),
            text: "[TOOBIG] Command line too long.".into(),
        },
        Err(_) if list_command::is_list(input.message()) => list_or_bad(input, tag()),
        Err(_) => match crate::search::parse_return_options(input.message()) {
            Ok(Some((options, message))) => match CommandCodec::default().decode(&message) {
                Ok((_, command)) => Parsed::Esearch(command.into_static(), options),
                Err(_) => Parsed::Bad {
                    tag: tag(),
                    text: "Invalid SEARCH arguments.".into(),
                },
            },
            Ok(None) => Parsed::Bad {
                tag: tag(),
                text: "Unknown command or invalid arguments.".into(),
            },
            Err(text) => Parsed::Bad { tag: tag(), text },
        },
    }
}

/// A LIST imap-codec refused: LIST-EXTENDED (`list_command.rs`) or BAD.
fn list_or_bad(input: &Input, tag: Option<String>) -> Parsed {
    {
        {
            match list_command::parse(input.message()) {
                Some(list) => Parsed::List(list),
                None => Parsed::Bad {
                    tag,
                    text: "Invalid LIST arguments.".into(),
                },
            }
        }
    }
}

/// The complete message in `input` as the response to an AUTHENTICATE challenge.
pub fn sasl(input: &Input) -> Parsed {
    match input
        .fragmentizer()
        .decode_message(&AuthenticateDataCodec::default())
    {
        Ok(AuthenticateData::Continue(data)) => Parsed::Sasl(Some(data.declassify().to_vec())),
        Ok(AuthenticateData::Cancel) => Parsed::Sasl(None),
        Err(_) => Parsed::Bad {
            tag: None,
            text: "Invalid SASL response.".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::input::Event;

    fn parse(bytes: &[u8]) -> Parsed {
        let mut input = Input::new();
        input.authenticated();
        input.push(bytes);
        loop {
            match input.next_event() {
                Event::Message => return command(&input),
                Event::SendContinuation => {}
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn commands_lists_and_errors() {
        assert!(matches!(parse(b"a NOOP\r\n"), Parsed::Command(c) if c.tag.as_ref() == "a"));
        assert!(matches!(
            parse(b"b LIST \"\" *\r\n"),
            Parsed::List(l) if l.tag == "b" && l.patterns == vec![b"*".to_vec()] && !l.extended
        ));
        assert!(matches!(
            parse(b"c LSUB inbox %\r\n"),
            Parsed::List(l) if l.lsub && l.reference == b"INBOX"
        ));
        assert!(matches!(
            parse(b"d LIST (SPECIAL-USE) \"\" *\r\n"),
            Parsed::List(l) if l.select_special_use
        ));
        assert!(matches!(
            parse(b"e LIST (NOPE) \"\" *\r\n"),
            Parsed::Bad { tag: Some(t), .. } if t == "e"
        ));
        assert!(matches!(
            parse(b"f XYZZY\r\n"),
            Parsed::Bad { tag: Some(t), .. } if t == "f"
        ));
        assert!(matches!(
            parse(b"g LOGIN {5}\r\nalice {3}\r\npw!\r\n"),
            Parsed::Command(c) if c.name() == "LOGIN"
        ));
    }
}
