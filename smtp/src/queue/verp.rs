//! VERP (variable envelope return paths, as qmail and ezmlm use them): a message injected with
//! the `V` record is sent to each recipient with its own envelope sender, so a bounce names the
//! subscriber it is for. The stored sender `prefix@senderdomain` and the recipient
//! `local@domain` give `prefix-local=domain@senderdomain` (qmail's delimiters, `-` then `=`;
//! `=` is not escaped, the list manager splits at the last one since a domain has none).
//!
//! Where no such address can be made the stored sender is used as it is, for that recipient
//! only: the null sender (never VERP: nothing may bounce to it), a sender without `@` or with an
//! empty local part, a result whose local part is not a dot-atom (a quoted local part, an
//! address-literal domain: quoting would be needed, and moat-remote refuses spaces), and a
//! result over `MAX_ADDRESS` (moat-remote would refuse the whole request). A local part over
//! RFC 5321's 64 octets is still used: that limit binds what a server must accept, and Postfix
//! and qmail send such VERP senders too. Addresses are used as they are: UTF-8 stays UTF-8
//! (moat-remote asks for SMTPUTF8 when a sender is not ASCII), nothing is case-folded.

use std::borrow::Cow;

use super::envelope::{Envelope, MAX_ADDRESS};

/// The VERP form of `sender` for `rcpt`, or `None` when there is none (see the module).
pub fn address(sender: &str, rcpt: &str) -> Option<String> {
    let (prefix, sender_domain) = sender.rsplit_once('@')?;
    let (local, domain) = rcpt.rsplit_once('@')?;
    if prefix.is_empty() || sender_domain.is_empty() || local.is_empty() || domain.is_empty() {
        return None;
    }
    let verp_local = format!("{prefix}-{local}={domain}");
    let out = format!("{verp_local}@{sender_domain}");
    (is_dot_atom(&verp_local) && out.len() <= MAX_ADDRESS).then_some(out)
}

/// The envelope sender for recipient `rcpt` of `env`: its VERP address when the message asked
/// for VERP and one can be made, else the stored sender.
pub fn sender_for<'a>(env: &'a Envelope, rcpt: &str) -> Cow<'a, str> {
    match env.verp.then(|| address(&env.sender, rcpt)).flatten() {
        Some(verp) => Cow::Owned(verp),
        None => Cow::Borrowed(&env.sender),
    }
}

/// RFC 5322 dot-atom with RFC 6531's UTF-8 atext: atoms of atext joined by single dots.
fn is_dot_atom(text: &str) -> bool {
    let atext = |c: char| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+-/=?^_`{|}~".contains(c)
            || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
    };
    text.split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_common::client::queue::Origin;

    #[test]
    fn prefix_then_recipient_local_and_domain() {
        assert_eq!(
            address("list-return-42@lists.example", "bob@far.example").as_deref(),
            Some("list-return-42-bob=far.example@lists.example")
        );
        // `=` and `+` are atext: kept, not escaped (the domain part is after the last `=`).
        assert_eq!(
            address("list@lists.example", "bob+tag=x@far.example").as_deref(),
            Some("list-bob+tag=x=far.example@lists.example")
        );
        // UTF-8 addresses are used as they are (no IDNA, no case folding).
        assert_eq!(
            address("liste@bücher.example", "Jürgen@münchen.example").as_deref(),
            Some("liste-Jürgen=münchen.example@bücher.example")
        );
    }

    #[test]
    fn no_verp_address_when_none_can_be_made() {
        for (sender, rcpt) in [
            ("", "bob@far.example"),
            ("list", "bob@far.example"),
            ("@lists.example", "bob@far.example"),
            ("list@", "bob@far.example"),
            ("list@lists.example", "\"b o\"@far.example"),
            ("list@lists.example", "bob@[192.0.2.1]"),
            ("list@lists.example", "no-at-sign"),
            ("\"a list\"@lists.example", "bob@far.example"),
        ] {
            assert_eq!(address(sender, rcpt), None, "{sender:?} {rcpt:?}");
        }
        let long = format!("{}@far.example", "b".repeat(300));
        assert_eq!(address("list@lists.example", &long), None, "over 320 bytes");
        // Over 64 octets of local part, under 320 in all: still used (see the module).
        let rcpt = format!("{}@far.example", "b".repeat(60));
        let verp = address("list@lists.example", &rcpt).expect("long local part kept");
        assert!(verp.split('@').next().is_some_and(|l| l.len() > 64));
    }

    #[test]
    fn only_verp_messages_change_their_sender() {
        let mut env = Envelope {
            arrival: 1,
            origin: Origin::Submission,
            uid: 1,
            size: 1,
            client: "test".into(),
            sender: "list@lists.example".into(),
            recipients: vec!["bob@far.example".into()],
            dsn: Default::default(),
            smtputf8: false,
            verp: false,
            one_click: None,
        };
        assert_eq!(sender_for(&env, "bob@far.example"), "list@lists.example");
        env.verp = true;
        assert_eq!(
            sender_for(&env, "bob@far.example"),
            "list-bob=far.example@lists.example"
        );
        assert_eq!(sender_for(&env, "bob@[192.0.2.1]"), "list@lists.example");
        env.sender = String::new();
        assert_eq!(sender_for(&env, "bob@far.example"), "", "null stays null");
    }
}
