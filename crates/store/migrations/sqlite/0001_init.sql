-- easgate schema v1 (SQLite). Times are Unix seconds (UTC); serials are upper-case hex.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE cas (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    key_type    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    cert_der    BLOB NOT NULL,
    key_sealed  BLOB NOT NULL,           -- PKCS#8, AES-256-GCM under the master key
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE trusted_cas (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    subject        TEXT NOT NULL,
    cert_der       BLOB NOT NULL,
    crl_url        TEXT,
    delta_crl_url  TEXT,
    created_at     INTEGER NOT NULL
);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    upn           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email         TEXT NOT NULL,
    display_name  TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE user_groups (
    user_id   INTEGER NOT NULL REFERENCES users(id),
    group_id  INTEGER NOT NULL REFERENCES groups(id),
    PRIMARY KEY (user_id, group_id)
);

CREATE TABLE templates (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    ca_id              INTEGER NOT NULL REFERENCES cas(id),
    subject            TEXT NOT NULL,
    sans               TEXT NOT NULL,      -- JSON array of "kind:template"
    key_type           TEXT NOT NULL,
    validity_days      INTEGER NOT NULL,
    renew_before_days  INTEGER NOT NULL,
    is_default         INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL
);

CREATE TABLE devices (
    id           INTEGER PRIMARY KEY,
    uid          TEXT NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    platform     TEXT NOT NULL,
    template_id  INTEGER REFERENCES templates(id),
    state        TEXT NOT NULL,            -- pending | enrolled | retired | wiped
    device_serial TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX devices_user ON devices(user_id);

CREATE TABLE scep_challenges (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices(id),
    hash        TEXT NOT NULL UNIQUE,      -- SHA-256 of the challenge, hex
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

-- One-time tokens for downloading a device's rendered profile (GET /enroll/{token}).
CREATE TABLE profile_tokens (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices(id),
    hash        TEXT NOT NULL UNIQUE,      -- SHA-256 of the token, hex
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

CREATE TABLE certificates (
    serial             TEXT PRIMARY KEY,   -- never reused: the primary key enforces it
    ca_id              INTEGER NOT NULL REFERENCES cas(id),
    device_id          INTEGER REFERENCES devices(id),
    template_id        INTEGER REFERENCES templates(id),
    subject            TEXT NOT NULL,
    sans               TEXT NOT NULL,      -- JSON array of "kind:value"
    key_type           TEXT NOT NULL,
    not_before         INTEGER NOT NULL,
    not_after          INTEGER NOT NULL,
    der                BLOB NOT NULL,
    status             TEXT NOT NULL,      -- valid | revoked
    revoked_at         INTEGER,
    revocation_reason  TEXT,
    issued_at          INTEGER NOT NULL
);
CREATE INDEX certificates_device ON certificates(device_id);
CREATE INDEX certificates_ca_status ON certificates(ca_id, status);

CREATE TABLE audit_events (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events(at);

-- The change feed: one row per committed change, revision strictly increasing.
CREATE TABLE changes (
    revision  INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    entity    TEXT NOT NULL,
    key       TEXT NOT NULL
);
