-- Moat user store, SQLite schema v2: mailing lists (docs/LISTS.md). Keep in step with
-- ../postgres/0002_lists.sql. Same conventions as 0001: Unix seconds, 0/1 flags, STRICT.
-- Invariants the schema cannot express (a list's address and its command addresses
-- `list-subscribe` etc. are never a user or alias source of the same domain, and never the
-- command address of another list) are checked by the crate inside the write transaction.

CREATE TABLE lists (
    id                INTEGER PRIMARY KEY,
    domain_id         INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    local_part        TEXT    NOT NULL CHECK (local_part = lower(local_part) AND length(local_part) BETWEEN 1 AND 64),
    moderated         INTEGER NOT NULL DEFAULT 0 CHECK (moderated IN (0, 1)),
    members_only      INTEGER NOT NULL DEFAULT 0 CHECK (members_only IN (0, 1)),
    archive           INTEGER NOT NULL DEFAULT 0 CHECK (archive IN (0, 1)),
    digest            INTEGER NOT NULL DEFAULT 0 CHECK (digest IN (0, 1)),
    subject_prefix    TEXT    NOT NULL DEFAULT '',
    -- NULL: no limit of the list's own (the server's message size limit still applies).
    max_message_bytes INTEGER CHECK (max_message_bytes IS NULL OR max_message_bytes > 0),
    reply_to          TEXT    NOT NULL DEFAULT 'none' CHECK (reply_to IN ('list', 'poster', 'none')),
    footer            TEXT    NOT NULL DEFAULT '',
    -- Where list-owner@ mail goes; NULL: to the moderators.
    owner             TEXT    CHECK (owner IS NULL OR length(owner) BETWEEN 3 AND 320),
    -- 32 random bytes as 64 lower-case hex digits: the key of the daemon's cookie HMACs.
    cookie_secret     TEXT    NOT NULL CHECK (length(cookie_secret) = 64),
    -- The number the next post gets (archive file name, `list-get.N`, VERP `list-return-N-`).
    next_post         INTEGER NOT NULL DEFAULT 1 CHECK (next_post >= 1),
    -- The number of the next digest, and the last post number a digest already carried.
    next_digest       INTEGER NOT NULL DEFAULT 1 CHECK (next_digest >= 1),
    digested_through  INTEGER NOT NULL DEFAULT 0 CHECK (digested_through >= 0),
    last_digest_at    INTEGER,
    created           INTEGER NOT NULL,
    UNIQUE (domain_id, local_part)
) STRICT;

-- One row per (list, kind, address). Addresses keep the local part's case as given (it is
-- the remote site's to interpret) with the domain lower-case A-label; they are compared
-- case-insensitively, as Mailman does, hence the index on lower(address).
CREATE TABLE list_members (
    id              INTEGER PRIMARY KEY,
    list_id         INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    address         TEXT    NOT NULL CHECK (length(address) BETWEEN 3 AND 320),
    kind            TEXT    NOT NULL CHECK (kind IN ('member', 'digest', 'moderator')),
    added_at        INTEGER NOT NULL,
    bounce_count    INTEGER NOT NULL DEFAULT 0 CHECK (bounce_count >= 0),
    first_bounce_at INTEGER,
    probe_sent_at   INTEGER
) STRICT;
CREATE UNIQUE INDEX list_members_address ON list_members (list_id, kind, lower(address));
