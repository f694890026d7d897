-- easgate schema v12 (SQLite): admin API tokens with roles, and what paged API lists sort by.

-- A token is random and shown once; only its SHA-256 is kept. A revoked token keeps its row (the
-- audit trail names it); a live token's name is unique.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL COLLATE NOCASE,
    role        TEXT NOT NULL,              -- admin | helpdesk | auditor | enroller
    hash        TEXT NOT NULL UNIQUE,       -- SHA-256 of the token, hex
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;

-- The first-start admin token (schema v1 kept only its hash as a setting) is an admin token.
INSERT INTO api_tokens (name, role, hash, created_at)
SELECT 'admin', 'admin', value, CAST(strftime('%s', 'now') AS INTEGER)
FROM settings WHERE key = 'admin_token_sha256';

-- Paged lists walk these in key order; the audit filters look up by actor and action.
CREATE INDEX audit_events_actor ON audit_events(actor, id);
CREATE INDEX audit_events_action ON audit_events(action, id);
