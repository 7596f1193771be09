//! LIST (RFC 3501 §6.3.8; LIST-EXTENDED, RFC 5258; SPECIAL-USE, RFC 6154; LIST-STATUS, RFC
//! 5819) and LSUB (§6.3.9).
//!
//! Attributes: `\Noselect` for a level that only exists because a folder below it does
//! (Maildir++ keeps `.a` and `.a.b` apart), `\HasChildren`/`\HasNoChildren` always (CHILDREN),
//! the special-use attribute always, `\Subscribed` when subscriptions were asked for, and
//! `\NonExistent` for a subscribed name with no mailbox. With `(SUBSCRIBED RECURSIVEMATCH)`
//! an unsubscribed mailbox with subscribed children is listed with `CHILDINFO ("SUBSCRIBED")`.
//! LSUB lists the subscribed names, and a level above one as `\Noselect` when only the level
//! matches (the `%` rule).
//!
//! SECURITY: patterns are bounded (`pattern::MAX_PATTERN`) and matched in linear time; the
//! whole listing is built on the blocking pool from one directory read and one read of the
//! subscriptions file; RETURN (STATUS) reads each listed mailbox once.

use std::collections::{BTreeMap, HashSet};

use super::list_command::ListCommand;
use super::{Flow, Session, blocking, response, status};
use crate::mailbox::name::{self, SEPARATOR};
use crate::mailbox::pattern;
use crate::mailbox::special;
use crate::mailbox::status::counts;
use crate::mailbox::store::{Store, StoreError};
use crate::mailbox::subscriptions;
use crate::wire;

/// One line of the answer.
#[derive(Default)]
struct Line {
    attributes: Vec<&'static str>,
    childinfo: bool,
    /// Selectable and existing: RETURN (STATUS) applies.
    status: bool,
}

fn write_line(out: &mut Vec<u8>, kind: &str, name: &str, line: &Line) {
    out.extend_from_slice(format!("* {kind} (").as_bytes());
    out.extend_from_slice(line.attributes.join(" ").as_bytes());
    out.extend_from_slice(b") \"/\" ");
    wire::astring(out, name.as_bytes());
    if line.childinfo {
        out.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    }
    out.extend_from_slice(b"\r\n");
}

/// The levels above a name (`a/b/c` → `a`, `a/b`).
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(SEPARATOR)
        .map(|(at, _)| name.get(..at).unwrap_or_default())
}

fn lsub(patterns: &[Vec<u8>], subscribed: &[String], out: &mut Vec<u8>) {
    let matches = |n: &str| patterns.iter().any(|p| pattern::matches(p, n.as_bytes()));
    let mut lines: BTreeMap<&str, Line> = BTreeMap::new();
    let set: HashSet<&str> = subscribed.iter().map(String::as_str).collect();
    for s in subscribed {
        if matches(s) {
            lines.entry(s).or_default();
            continue;
        }
        for a in ancestors(s) {
            if !set.contains(a) && matches(a) {
                lines.entry(a).or_default().attributes = vec!["\\Noselect"];
            }
        }
    }
    for (name, line) in &lines {
        write_line(out, "LSUB", name, line);
    }
}

/// Builds the whole answer (untagged lines) for a LIST or LSUB.
fn run(store: &Store, cmd: &ListCommand, patterns: &[Vec<u8>]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    let subscribed = subscriptions::read(store.root().path())?;
    if cmd.lsub {
        lsub(patterns, &subscribed, &mut out);
        return Ok(out);
    }
    let listed = store.list()?;
    let subs: HashSet<&str> = subscribed.iter().map(String::as_str).collect();
    let matches = |n: &str| patterns.iter().any(|p| pattern::matches(p, n.as_bytes()));
    let has_subscribed_child = |n: &str| {
        let below = format!("{n}/");
        subscribed.iter().any(|s| s.starts_with(&below))
    };
    let show_subscribed = cmd.select_subscribed || cmd.return_subscribed;
    let mut lines: BTreeMap<String, Line> = BTreeMap::new();
    for l in &listed {
        let n = l.name.imap.as_str();
        let subscribed = subs.contains(n);
        let childinfo = cmd.recursive_match && has_subscribed_child(n);
        let special = special::attribute(n).filter(|_| l.selectable);
        if !matches(n)
            || (cmd.select_subscribed && !subscribed && !childinfo)
            || (cmd.select_special_use && special.is_none())
        {
            continue;
        }
        let mut line = Line {
            childinfo,
            status: l.selectable,
            ..Line::default()
        };
        if !l.selectable {
            line.attributes.push("\\Noselect");
        }
        line.attributes.push(if l.children {
            "\\HasChildren"
        } else {
            "\\HasNoChildren"
        });
        if let Some(s) = special {
            line.attributes.push(s);
        }
        if show_subscribed && subscribed {
            line.attributes.push("\\Subscribed");
        }
        lines.insert(l.name.imap.clone(), line);
    }
    if cmd.select_subscribed {
        // Subscribed names without a mailbox (RFC 5258 §3.1).
        let existing: HashSet<&str> = listed.iter().map(|l| l.name.imap.as_str()).collect();
        for s in &subscribed {
            if !existing.contains(s.as_str()) && matches(s) {
                lines.insert(
                    s.clone(),
                    Line {
                        attributes: vec!["\\NonExistent", "\\Subscribed"],
                        childinfo: cmd.recursive_match && has_subscribed_child(s),
                        status: false,
                    },
                );
            }
        }
    }
    for (n, line) in &lines {
        write_line(&mut out, "LIST", n, line);
        if let (Some(items), true) = (&cmd.return_status, line.status) {
            let Ok(mailbox) = name::parse(n.as_bytes()) else {
                continue;
            };
            // A mailbox deleted meanwhile simply gets no STATUS line (RFC 5819 §2).
            if let Ok(c) = store.maildir(&mailbox).and_then(|md| counts(&md)) {
                status::write(&mut out, n, items, &c);
            }
        }
    }
    Ok(out)
}

impl Session {
    pub(super) async fn list(&mut self, cmd: ListCommand, out: &mut Vec<u8>) -> Flow {
        let what = if cmd.lsub { "LSUB" } else { "LIST" };
        let Some(patterns) = cmd
            .patterns
            .iter()
            .map(|p| pattern::canonical(&cmd.reference, p))
            .collect::<Option<Vec<_>>>()
        else {
            return self.bad(out, &cmd.tag, "Pattern too long.");
        };
        // RFC 3501: an empty pattern asks for the hierarchy delimiter.
        if !cmd.lsub && !cmd.extended && cmd.patterns == [Vec::<u8>::new()] {
            out.extend_from_slice(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            response::ok(out, &cmd.tag, "LIST completed.");
            return Flow::Continue;
        }
        let Some(store) = self.user_store() else {
            return Flow::Continue;
        };
        if cmd
            .return_status
            .as_ref()
            .is_some_and(|items| items.iter().any(|i| i.enables_condstore()))
        {
            self.condstore = true;
        }
        let tag = cmd.tag.clone();
        match blocking(move || run(&store, &cmd, &patterns)).await {
            Ok(lines) => {
                out.extend_from_slice(&lines);
                response::ok(out, &tag, &format!("{what} completed."));
            }
            Err(e) => self.store_error(out, &tag, e),
        }
        Flow::Continue
    }
}
