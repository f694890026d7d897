-- easgate schema v8 (SQLite): the gateway's decision order (docs/security.md).

-- An allow override admits a device without a certificate only when the admin said so
-- (`eas allow ID --unmanaged`).
ALTER TABLE eas_overrides ADD COLUMN unmanaged INTEGER NOT NULL DEFAULT 0;

-- A request that names a DeviceId bound to a certificate it does not present is recorded as a
-- partnership of its own (`suspect` = 1: a possible spoof), never over the bound device's. Each
-- partnership keeps its last refusal.
CREATE TABLE eas_partnerships_v8 (
    user             TEXT NOT NULL COLLATE NOCASE,
    eas_device_id    TEXT NOT NULL COLLATE NOCASE,
    suspect          INTEGER NOT NULL DEFAULT 0,
    device_type      TEXT,
    model            TEXT,
    os               TEXT,
    friendly_name    TEXT,
    user_agent       TEXT,
    client           TEXT NOT NULL,
    platform         TEXT NOT NULL,
    protocol         TEXT,
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    last_sync        INTEGER,
    last_command     TEXT,
    cert_serial      TEXT,
    device_state     TEXT NOT NULL,          -- managed | unmanaged
    access_state     TEXT NOT NULL,          -- allow | block | quarantine | refuse
    access_reason    TEXT NOT NULL,
    last_refusal_at  INTEGER,
    last_refusal     TEXT,
    PRIMARY KEY (user, eas_device_id, suspect)
);
INSERT INTO eas_partnerships_v8 (user, eas_device_id, suspect, device_type, model, os, friendly_name,
    user_agent, client, platform, protocol, first_seen, last_seen, last_sync, last_command, cert_serial,
    device_state, access_state, access_reason)
SELECT user, eas_device_id, 0, device_type, model, os, friendly_name, user_agent, client, platform,
    protocol, first_seen, last_seen, last_sync, last_command, cert_serial, device_state, access_state,
    access_reason
FROM eas_partnerships;
DROP TABLE eas_partnerships;
ALTER TABLE eas_partnerships_v8 RENAME TO eas_partnerships;
CREATE INDEX eas_partnerships_device ON eas_partnerships(eas_device_id);
