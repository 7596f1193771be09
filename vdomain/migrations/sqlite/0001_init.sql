-- Moat user store, SQLite schema v1. Keep in step with ../postgres/0001_init.sql.
-- Times are Unix seconds (INTEGER) and flags are INTEGER 0/1 so sqlx's Any driver reads both
-- back the same way. STRICT tables refuse values of the wrong type.
-- Invariants the schema cannot express (an address is never both a user and an alias
-- source; a domain name is never both a domain and a domain alias) are checked by the
-- crate inside one serialised write transaction.

CREATE TABLE domains (
    id      INTEGER PRIMARY KEY,
    name    TEXT    NOT NULL UNIQUE CHECK (name = lower(name) AND length(name) BETWEEN 1 AND 253),
    created INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    domain_id     INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    local_part    TEXT    NOT NULL CHECK (local_part = lower(local_part) AND length(local_part) BETWEEN 1 AND 64),
    password_hash TEXT    NOT NULL,
    quota_bytes   INTEGER CHECK (quota_bytes IS NULL OR quota_bytes > 0),
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created       INTEGER NOT NULL,
    UNIQUE (domain_id, local_part)
) STRICT;

-- One row per (source, target): a source address fans out to many targets.
CREATE TABLE aliases (
    id         INTEGER PRIMARY KEY,
    domain_id  INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    local_part TEXT    NOT NULL CHECK (local_part = lower(local_part) AND length(local_part) BETWEEN 1 AND 64),
    target     TEXT    NOT NULL CHECK (length(target) BETWEEN 3 AND 320),
    created    INTEGER NOT NULL,
    UNIQUE (domain_id, local_part, target)
) STRICT;

-- "alias.example" delivers as if addressed to the target domain.
CREATE TABLE domain_aliases (
    id        INTEGER PRIMARY KEY,
    name      TEXT    NOT NULL UNIQUE CHECK (name = lower(name) AND length(name) BETWEEN 1 AND 253),
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    created   INTEGER NOT NULL
) STRICT;
CREATE INDEX domain_aliases_domain_id ON domain_aliases (domain_id);

CREATE TABLE catchalls (
    domain_id INTEGER PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    target    TEXT    NOT NULL CHECK (length(target) BETWEEN 3 AND 320)
) STRICT;
