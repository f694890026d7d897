-- easgate schema v1 (PostgreSQL): the schema every SQLite migration up to 0013 leaves, in one
-- step. Times are Unix seconds (UTC) in BIGINT; serials are upper-case hex; blobs are BYTEA.
--
-- SQLite compares TEXT byte-wise (BINARY) unless a column says COLLATE NOCASE; PostgreSQL
-- compares with the database's locale. Every text key here is COLLATE "C" so ordering and
-- equality are byte-wise as in SQLite, and the columns SQLite declares COLLATE NOCASE (UPNs,
-- group names, token names, EAS DeviceIds) are compared through lower() with unique indexes
-- on lower(column): the backend's queries say lower(col) = lower($1) where SQLite's rely on
-- the column's collation.

CREATE TABLE settings (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE cas (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT COLLATE "C" NOT NULL UNIQUE,
    key_type     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    cert_der     BYTEA NOT NULL,
    key_sealed   BYTEA NOT NULL,         -- PKCS#8, AES-256-GCM under the master key
    not_before   BIGINT NOT NULL,
    not_after    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    scep_no_des  BOOLEAN NOT NULL DEFAULT FALSE,
    removed_at   BIGINT,
    scep_ra_only BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE trusted_cas (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT COLLATE "C" NOT NULL UNIQUE,
    subject        TEXT NOT NULL,
    cert_der       BYTEA NOT NULL,
    crl_url        TEXT,
    delta_crl_url  TEXT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE groups (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX groups_name ON groups (lower(name));

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    upn           TEXT COLLATE "C" NOT NULL,
    email         TEXT NOT NULL,
    display_name  TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_upn ON users (lower(upn));

CREATE TABLE user_groups (
    user_id   BIGINT NOT NULL REFERENCES users(id),
    group_id  BIGINT NOT NULL REFERENCES groups(id),
    PRIMARY KEY (user_id, group_id)
);

CREATE TABLE templates (
    id                 BIGSERIAL PRIMARY KEY,
    name               TEXT COLLATE "C" NOT NULL UNIQUE,
    ca_id              BIGINT NOT NULL REFERENCES cas(id),
    subject            TEXT NOT NULL,
    sans               TEXT NOT NULL,      -- JSON array of "kind:template"
    key_type           TEXT NOT NULL,
    validity_days      BIGINT NOT NULL,
    renew_before_days  BIGINT NOT NULL,
    is_default         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         BIGINT NOT NULL
);

CREATE TABLE devices (
    id            BIGSERIAL PRIMARY KEY,
    uid           TEXT COLLATE "C" NOT NULL UNIQUE,
    user_id       BIGINT NOT NULL REFERENCES users(id),
    platform      TEXT NOT NULL,
    template_id   BIGINT REFERENCES templates(id),
    state         TEXT NOT NULL,           -- pending | enrolled | retired | wiped
    device_serial TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX devices_user ON devices(user_id);

CREATE TABLE scep_challenges (
    id          BIGSERIAL PRIMARY KEY,
    device_id   BIGINT NOT NULL REFERENCES devices(id),
    hash        TEXT COLLATE "C" NOT NULL UNIQUE,   -- SHA-256 of the challenge, hex
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- One-time tokens for downloading a device's rendered profile (GET /enroll/{token}).
CREATE TABLE profile_tokens (
    id          BIGSERIAL PRIMARY KEY,
    device_id   BIGINT NOT NULL REFERENCES devices(id),
    hash        TEXT COLLATE "C" NOT NULL UNIQUE,   -- SHA-256 of the token, hex
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE certificates (
    serial             TEXT COLLATE "C" PRIMARY KEY,  -- never reused: the primary key enforces it
    ca_id              BIGINT NOT NULL REFERENCES cas(id),
    device_id          BIGINT REFERENCES devices(id),
    template_id        BIGINT REFERENCES templates(id),
    subject            TEXT NOT NULL,
    sans               TEXT NOT NULL,      -- JSON array of "kind:value"
    key_type           TEXT NOT NULL,
    not_before         BIGINT NOT NULL,
    not_after          BIGINT NOT NULL,
    der                BYTEA NOT NULL,
    status             TEXT NOT NULL,      -- valid | revoked
    revoked_at         BIGINT,
    revocation_reason  TEXT,
    issued_at          BIGINT NOT NULL
);
CREATE INDEX certificates_device ON certificates(device_id);
CREATE INDEX certificates_ca_status ON certificates(ca_id, status);
-- Revoked certificates by CA and time, for CRL building.
CREATE INDEX certificates_revoked ON certificates(ca_id, revoked_at) WHERE status = 'revoked';

CREATE TABLE audit_events (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT COLLATE "C" NOT NULL,
    action  TEXT COLLATE "C" NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_actor ON audit_events(actor, id);
CREATE INDEX audit_events_action ON audit_events(action, id);

-- The change feed: one row per committed change, revision strictly increasing in commit
-- order. A sequence alone would let a reader see revision 7 committed before 6 and skip 6, so
-- the backend takes a transaction-scoped advisory lock before appending a change row (see
-- postgres/write.rs): changes are appended one transaction at a time.
CREATE TABLE changes (
    revision  BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    entity    TEXT NOT NULL,
    key       TEXT NOT NULL
);

-- Published CRLs (full and delta) and the CRL-number sequence each CA shares between them.
CREATE TABLE crl_numbers (
    ca_id  BIGINT PRIMARY KEY REFERENCES cas(id),
    last   BIGINT NOT NULL
);

CREATE TABLE crls (
    id           BIGSERIAL PRIMARY KEY,
    ca_id        BIGINT NOT NULL REFERENCES cas(id),
    number       BIGINT NOT NULL,
    scope        TEXT NOT NULL,          -- full | delta
    base_number  BIGINT,                 -- delta: the full CRL it extends
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL,
    entries      BIGINT NOT NULL,
    der          BYTEA NOT NULL,
    UNIQUE (ca_id, number)
);
CREATE INDEX crls_latest ON crls(ca_id, scope, number);

-- SCEP transactions answered with a certificate, so that a retried transaction (same
-- transactionID and key) gets the same certificate instead of a spent-challenge refusal.
CREATE TABLE scep_transactions (
    ca_id           BIGINT NOT NULL REFERENCES cas(id),
    transaction_id  TEXT COLLATE "C" NOT NULL,
    key_sha256      TEXT NOT NULL,
    serial          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (ca_id, transaction_id)
);

-- Ordered access rules. Condition columns hold JSON arrays of strings; empty = any.
CREATE TABLE access_rules (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT COLLATE "C" NOT NULL UNIQUE,
    priority       BIGINT NOT NULL,
    users          TEXT NOT NULL DEFAULT '[]',
    groups         TEXT NOT NULL DEFAULT '[]',
    platforms      TEXT NOT NULL DEFAULT '[]',
    clients        TEXT NOT NULL DEFAULT '[]',
    device_states  TEXT NOT NULL DEFAULT '[]',
    networks       TEXT NOT NULL DEFAULT '[]',
    action         TEXT NOT NULL,            -- allow | block | quarantine
    created_at     BIGINT NOT NULL
);
-- A new install allows managed devices; the default action (setting `policy.default`,
-- absent = block) refuses everything else.
INSERT INTO access_rules (name, priority, device_states, action, created_at)
VALUES ('allow-managed', 100, '["managed"]', 'allow', CAST(extract(epoch FROM now()) AS BIGINT));

-- Per-device admin decisions (`eas allow|block|quarantine`), evaluated before the rules.
-- The DeviceId is case-insensitive (SQLite: COLLATE NOCASE).
CREATE TABLE eas_overrides (
    eas_device_id  TEXT COLLATE "C" NOT NULL,
    action         TEXT NOT NULL,
    reason         TEXT,
    created_at     BIGINT NOT NULL,
    unmanaged      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX eas_overrides_device ON eas_overrides (lower(eas_device_id));

-- Device partnerships: every (user, EAS DeviceId, suspect) the gateway has seen, managed or
-- not; user and DeviceId case-insensitive (SQLite: COLLATE NOCASE).
CREATE TABLE eas_partnerships (
    "user"           TEXT COLLATE "C" NOT NULL,
    eas_device_id    TEXT COLLATE "C" NOT NULL,
    suspect          BOOLEAN NOT NULL DEFAULT FALSE,
    device_type      TEXT,
    model            TEXT,
    os               TEXT,
    friendly_name    TEXT,
    user_agent       TEXT,
    client           TEXT NOT NULL,
    platform         TEXT NOT NULL,
    protocol         TEXT,
    first_seen       BIGINT NOT NULL,
    last_seen        BIGINT NOT NULL,
    last_sync        BIGINT,
    last_command     TEXT,
    cert_serial      TEXT,
    device_state     TEXT NOT NULL,          -- managed | unmanaged
    access_state     TEXT NOT NULL,          -- allow | block | quarantine | refuse
    access_reason    TEXT NOT NULL,
    last_refusal_at  BIGINT,
    last_refusal     TEXT
);
CREATE UNIQUE INDEX eas_partnerships_key
    ON eas_partnerships (lower("user"), lower(eas_device_id), suspect);
CREATE INDEX eas_partnerships_device ON eas_partnerships (lower(eas_device_id));

-- A client certificate belongs to the first EAS DeviceId it was used with.
CREATE TABLE certificate_bindings (
    serial         TEXT COLLATE "C" PRIMARY KEY,
    eas_device_id  TEXT NOT NULL,
    "user"         TEXT NOT NULL,
    bound_at       BIGINT NOT NULL
);

-- A profile: the EAS account and credential delivery for devices of one platform (and, when
-- groups are given, of users in one of them). email/username are lookup-value templates.
CREATE TABLE profiles (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL UNIQUE,
    platform      TEXT NOT NULL,            -- ios | android
    template_id   BIGINT NOT NULL REFERENCES templates(id),
    eas_host      TEXT NOT NULL,
    account_name  TEXT NOT NULL,
    email         TEXT NOT NULL,
    username      TEXT NOT NULL,
    domain        TEXT,
    delivery      TEXT NOT NULL,            -- scep | pkcs12 | pkcs12-legacy
    groups        TEXT NOT NULL DEFAULT '[]',
    created_at    BIGINT NOT NULL
);

-- Certificates and sealed keys easgate uses for itself, per CA and role (`profile-signer`,
-- `scep-ra`).
CREATE TABLE service_keys (
    ca_id       BIGINT NOT NULL REFERENCES cas(id),
    role        TEXT COLLATE "C" NOT NULL,
    cert_der    BYTEA NOT NULL,
    key_sealed  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (ca_id, role)
);

-- A renewal enrollment made for a certificate inside its template's renewal window; cleared
-- when the device gets a newer certificate.
CREATE TABLE renewals (
    id          BIGSERIAL PRIMARY KEY,
    device_id   BIGINT NOT NULL REFERENCES devices(id),
    serial      TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    cleared_at  BIGINT
);
CREATE INDEX renewals_device ON renewals(device_id);

-- Admin API tokens: random, shown once, only the SHA-256 kept. A revoked token keeps its row;
-- a live token's name is unique, case-insensitively (SQLite: COLLATE NOCASE).
CREATE TABLE api_tokens (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    role        TEXT NOT NULL,              -- admin | helpdesk | auditor | enroller
    hash        TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (lower(name)) WHERE revoked_at IS NULL;

-- One-time SCEP challenges bound to no device (the NDES-compatible page).
CREATE TABLE unbound_challenges (
    id          BIGSERIAL PRIMARY KEY,
    hash        TEXT COLLATE "C" NOT NULL UNIQUE,
    ca_id       BIGINT REFERENCES cas(id),      -- NULL: any CA
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    device_id   BIGINT REFERENCES devices(id)   -- the device it enrolled, once used
);
CREATE INDEX unbound_challenges_live ON unbound_challenges(expires_at) WHERE used_at IS NULL;
