-- easgate schema v5 (SQLite): what the EAS gateway decides with and what it has seen.

-- Ordered access rules. Condition columns hold JSON arrays of strings; empty = any.
CREATE TABLE access_rules (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    priority       INTEGER NOT NULL,
    users          TEXT NOT NULL DEFAULT '[]',
    groups         TEXT NOT NULL DEFAULT '[]',
    platforms      TEXT NOT NULL DEFAULT '[]',
    clients        TEXT NOT NULL DEFAULT '[]',
    device_states  TEXT NOT NULL DEFAULT '[]',
    networks       TEXT NOT NULL DEFAULT '[]',
    action         TEXT NOT NULL,            -- allow | block | quarantine
    created_at     INTEGER NOT NULL
);
-- A new install allows managed devices; the default action (setting `policy.default`,
-- absent = block) refuses everything else.
INSERT INTO access_rules (name, priority, device_states, action, created_at)
VALUES ('allow-managed', 100, '["managed"]', 'allow', CAST(strftime('%s', 'now') AS INTEGER));

-- Per-device admin decisions (`eas allow|block|quarantine`), evaluated before the rules.
CREATE TABLE eas_overrides (
    eas_device_id  TEXT PRIMARY KEY COLLATE NOCASE,
    action         TEXT NOT NULL,
    reason         TEXT,
    created_at     INTEGER NOT NULL
);

-- Device partnerships: every (user, EAS DeviceId) the gateway has seen, managed or not.
CREATE TABLE eas_partnerships (
    user            TEXT NOT NULL COLLATE NOCASE,
    eas_device_id   TEXT NOT NULL COLLATE NOCASE,
    device_type     TEXT,
    model           TEXT,
    os              TEXT,
    friendly_name   TEXT,
    user_agent      TEXT,
    client          TEXT NOT NULL,
    platform        TEXT NOT NULL,
    protocol        TEXT,
    first_seen      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    last_sync       INTEGER,
    last_command    TEXT,
    cert_serial     TEXT,
    device_state    TEXT NOT NULL,           -- managed | unmanaged
    access_state    TEXT NOT NULL,           -- allow | block | quarantine
    access_reason   TEXT NOT NULL,
    PRIMARY KEY (user, eas_device_id)
);
CREATE INDEX eas_partnerships_device ON eas_partnerships(eas_device_id);

-- A client certificate belongs to the first EAS DeviceId it was used with.
CREATE TABLE certificate_bindings (
    serial         TEXT PRIMARY KEY,
    eas_device_id  TEXT NOT NULL,
    user           TEXT NOT NULL,
    bound_at       INTEGER NOT NULL
);
