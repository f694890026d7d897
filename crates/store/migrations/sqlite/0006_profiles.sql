-- easgate schema v6 (SQLite): device profiles, keys easgate keeps for its own services, and
-- certificate renewals.

-- A profile: the EAS account and credential delivery for devices of one platform (and, when
-- groups are given, of users in one of them). email/username are lookup-value templates.
CREATE TABLE profiles (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    platform      TEXT NOT NULL,            -- ios | android
    template_id   INTEGER NOT NULL REFERENCES templates(id),
    eas_host      TEXT NOT NULL,
    account_name  TEXT NOT NULL,
    email         TEXT NOT NULL,
    username      TEXT NOT NULL,
    domain        TEXT,
    delivery      TEXT NOT NULL,            -- scep | pkcs12 | pkcs12-legacy
    groups        TEXT NOT NULL DEFAULT '[]',
    created_at    INTEGER NOT NULL
);

-- Certificates and sealed keys easgate uses for itself, per CA and role (`profile-signer`).
CREATE TABLE service_keys (
    ca_id       INTEGER NOT NULL REFERENCES cas(id),
    role        TEXT NOT NULL,
    cert_der    BLOB NOT NULL,
    key_sealed  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (ca_id, role)
);

-- A renewal enrollment made for a certificate inside its template's renewal window; cleared
-- when the device gets a newer certificate.
CREATE TABLE renewals (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES devices(id),
    serial      TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    cleared_at  INTEGER
);
CREATE INDEX renewals_device ON renewals(device_id);
