-- easgate schema v3 (PostgreSQL), as SQLite's 0014: EAS provisioning at the gateway
-- (`--provision gateway`): the device policies it hands out, the remote wipes it orders, and
-- what each partnership last acknowledged.

-- An EAS device policy (MS-ASPROV) for the users of its groups, or for everyone else when it
-- is the default (at most one is).
CREATE TABLE eas_policies (
    name        TEXT COLLATE "C" PRIMARY KEY,
    settings    TEXT NOT NULL,                -- JSON object: EASProvisionDoc element → value
    groups      TEXT NOT NULL DEFAULT '[]',   -- JSON array of group names
    is_default  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX eas_policies_default ON eas_policies (is_default) WHERE is_default;

-- A remote wipe ordered for one EAS DeviceId; kept after the device acknowledges it (the
-- record of what happened) until the DeviceId is cleared. The DeviceId is case-insensitive
-- (SQLite: COLLATE NOCASE).
CREATE TABLE eas_wipes (
    eas_device_id  TEXT COLLATE "C" NOT NULL,
    account_only   BOOLEAN NOT NULL,
    state          TEXT NOT NULL,             -- pending | sent | succeeded | failed
    requested_by   TEXT NOT NULL,
    requested_at   BIGINT NOT NULL,
    sent_at        BIGINT,
    ack_at         BIGINT,
    device_uid     TEXT                       -- the enrolled device it was ordered for, if any
);
CREATE UNIQUE INDEX eas_wipes_device ON eas_wipes (lower(eas_device_id));

-- The policy each partnership's device last acknowledged.
ALTER TABLE eas_partnerships
    ADD COLUMN policy_applied    TEXT,
    ADD COLUMN policy_key        BIGINT,
    ADD COLUMN policy_status     TEXT,
    ADD COLUMN policy_updated_at BIGINT;

-- A wipe's acknowledgement revokes the certificates used with its DeviceId: found by DeviceId.
CREATE INDEX certificate_bindings_device ON certificate_bindings (lower(eas_device_id));
