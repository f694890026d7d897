-- easgate schema v14 (SQLite): EAS provisioning at the gateway (`--provision gateway`): the
-- device policies it hands out, the remote wipes it orders, and what each partnership last
-- acknowledged.

-- An EAS device policy (MS-ASPROV) for the users of its groups, or for everyone else when it
-- is the default (at most one is).
CREATE TABLE eas_policies (
    name        TEXT NOT NULL PRIMARY KEY,
    settings    TEXT NOT NULL,                -- JSON object: EASProvisionDoc element → value
    groups      TEXT NOT NULL DEFAULT '[]',   -- JSON array of group names
    is_default  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX eas_policies_default ON eas_policies(is_default) WHERE is_default = 1;

-- A remote wipe ordered for one EAS DeviceId; kept after the device acknowledges it (the
-- record of what happened) until the DeviceId is cleared.
CREATE TABLE eas_wipes (
    eas_device_id  TEXT PRIMARY KEY COLLATE NOCASE,
    account_only   INTEGER NOT NULL,
    state          TEXT NOT NULL,             -- pending | sent | succeeded | failed
    requested_by   TEXT NOT NULL,
    requested_at   INTEGER NOT NULL,
    sent_at        INTEGER,
    ack_at         INTEGER,
    device_uid     TEXT                       -- the enrolled device it was ordered for, if any
);

-- The policy each partnership's device last acknowledged.
ALTER TABLE eas_partnerships ADD COLUMN policy_applied TEXT;
ALTER TABLE eas_partnerships ADD COLUMN policy_key INTEGER;
ALTER TABLE eas_partnerships ADD COLUMN policy_status TEXT;
ALTER TABLE eas_partnerships ADD COLUMN policy_updated_at INTEGER;

-- A wipe's acknowledgement revokes the certificates used with its DeviceId: found by DeviceId.
CREATE INDEX certificate_bindings_device ON certificate_bindings(eas_device_id COLLATE NOCASE);
