//! The records of mailing lists the store hands out, and the values their settings take.
//! Plain data (Serialize for `--json`); the cookie secret is never part of them (read it
//! with [`crate::Store::list_secret`]).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What a list does with `Reply-To:` on the posts it sends out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReplyTo {
    /// `Reply-To: list@domain`: replies go to the list.
    List,
    /// `Reply-To: <the poster>`: replies go to the author only.
    Poster,
    /// Leave the poster's headers as they are (the default).
    #[default]
    None,
}

impl ReplyTo {
    /// The stored (and command-line) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyTo::List => "list",
            ReplyTo::Poster => "poster",
            ReplyTo::None => "none",
        }
    }
}

impl FromStr for ReplyTo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "list" => Ok(ReplyTo::List),
            "poster" => Ok(ReplyTo::Poster),
            "none" => Ok(ReplyTo::None),
            other => Err(format!(
                "reply-to policy {other:?} is not one of list, poster, none"
            )),
        }
    }
}

impl fmt::Display for ReplyTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which roster of a list an address is on. One address may be on several (a moderator who
/// also reads the list is `moderator` and `member`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MemberKind {
    /// Gets every post as it is sent.
    #[default]
    Member,
    /// Gets the posts bundled in digests.
    Digest,
    /// Approves held posts (moderated lists) and gets `list-owner` mail when the list has
    /// no owner address.
    Moderator,
}

impl MemberKind {
    pub const ALL: [MemberKind; 3] = [
        MemberKind::Member,
        MemberKind::Digest,
        MemberKind::Moderator,
    ];

    /// The stored (and command-line) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::Member => "member",
            MemberKind::Digest => "digest",
            MemberKind::Moderator => "moderator",
        }
    }
}

impl FromStr for MemberKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member" => Ok(MemberKind::Member),
            "digest" => Ok(MemberKind::Digest),
            "moderator" => Ok(MemberKind::Moderator),
            other => Err(format!(
                "member kind {other:?} is not one of member, digest, moderator"
            )),
        }
    }
}

impl fmt::Display for MemberKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The switches a list is created with (all off by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListFlags {
    /// Posts wait for a moderator's `accept`.
    pub moderated: bool,
    /// Only members (any kind) may post; others are refused (or held when moderated).
    pub members_only: bool,
    /// Posts are kept for `list-get.N` and `list-index`.
    pub archive: bool,
    /// Digest subscriptions are offered and digests sent.
    pub digest: bool,
}

/// A mailing list and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct List {
    /// `local@domain`, the posting address.
    pub address: String,
    pub local: String,
    pub domain: String,
    pub moderated: bool,
    pub members_only: bool,
    pub archive: bool,
    pub digest: bool,
    /// Put in front of the Subject of each post (`""` = none), e.g. `[dev]`.
    pub subject_prefix: String,
    /// Posts larger than this are refused; `None` = only the server's own limit.
    pub max_message_bytes: Option<i64>,
    pub reply_to: ReplyTo,
    /// Text appended to every post (`""` = none); lines end in `\n`.
    pub footer: String,
    /// Where `list-owner` mail goes; `None` = to the moderators.
    pub owner: Option<String>,
    /// Unix seconds.
    pub created: i64,
    /// The number the next post will get (see [`crate::Store::next_post_number`]).
    pub next_post: i64,
    /// The number the next digest will get.
    pub next_digest: i64,
    /// The last post number already sent in a digest (0 = none yet).
    pub digested_through: i64,
    /// Unix seconds of the last digest, if any.
    pub last_digest_at: Option<i64>,
    /// How many addresses are on each roster.
    pub members: i64,
    pub digest_members: i64,
    pub moderators: i64,
}

/// A change to a list's settings: `None` fields are left as they are. For the optional
/// settings the inner `None` clears them (`max_message_bytes: Some(None)` = no limit).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListChanges {
    pub moderated: Option<bool>,
    pub members_only: Option<bool>,
    pub archive: Option<bool>,
    pub digest: Option<bool>,
    pub subject_prefix: Option<String>,
    pub max_message_bytes: Option<Option<i64>>,
    pub reply_to: Option<ReplyTo>,
    pub footer: Option<String>,
    pub owner: Option<Option<String>>,
}

impl ListChanges {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == ListChanges::default()
    }
}

/// An address on one roster of a list, with the bounce bookkeeping of ezmlm-style
/// bounce handling (count, first bounce, probe) for the list manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The list's address.
    pub list: String,
    /// The member's address: local part as given, domain lower-case A-label.
    pub address: String,
    pub kind: MemberKind,
    /// Unix seconds.
    pub added_at: i64,
    /// Bounces counted since the last [`crate::Store::clear_bounces`].
    pub bounce_count: i64,
    /// Unix seconds of the first of those bounces.
    pub first_bounce_at: Option<i64>,
    /// Unix seconds a probe (warning) was sent, if one is outstanding.
    pub probe_sent_at: Option<i64>,
}
