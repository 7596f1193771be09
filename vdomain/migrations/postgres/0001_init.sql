-- Moat user store, PostgreSQL schema v1. Keep in step with ../sqlite/0001_init.sql.
-- Times are Unix seconds (BIGINT) and flags SMALLINT 0/1 so sqlx's Any driver reads both
-- back the same way as on SQLite.
-- Invariants the schema cannot express (an address is never both a user and an alias
-- source; a domain name is never both a domain and a domain alias) are checked by the
-- crate inside one write transaction serialised by an advisory lock.

CREATE TABLE domains (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name    TEXT   NOT NULL UNIQUE CHECK (name = lower(name) AND length(name) BETWEEN 1 AND 253),
    created BIGINT NOT NULL
);

CREATE TABLE users (
    id            BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id     BIGINT   NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    local_part    TEXT     NOT NULL CHECK (local_part = lower(local_part) AND length(local_part) BETWEEN 1 AND 64),
    password_hash TEXT     NOT NULL,
    quota_bytes   BIGINT   CHECK (quota_bytes IS NULL OR quota_bytes > 0),
    enabled       SMALLINT NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created       BIGINT   NOT NULL,
    UNIQUE (domain_id, local_part)
);

-- One row per (source, target): a source address fans out to many targets.
CREATE TABLE aliases (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id  BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    local_part TEXT   NOT NULL CHECK (local_part = lower(local_part) AND length(local_part) BETWEEN 1 AND 64),
    target     TEXT   NOT NULL CHECK (length(target) BETWEEN 3 AND 320),
    created    BIGINT NOT NULL,
    UNIQUE (domain_id, local_part, target)
);

-- "alias.example" delivers as if addressed to the target domain.
CREATE TABLE domain_aliases (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      TEXT   NOT NULL UNIQUE CHECK (name = lower(name) AND length(name) BETWEEN 1 AND 253),
    domain_id BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    created   BIGINT NOT NULL
);
CREATE INDEX domain_aliases_domain_id ON domain_aliases (domain_id);

CREATE TABLE catchalls (
    domain_id BIGINT PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    target    TEXT   NOT NULL CHECK (length(target) BETWEEN 3 AND 320)
);
