-- easgate schema v13 (SQLite): one-time SCEP challenges bound to no device.
--
-- An MDM that treats easgate as Microsoft NDES fetches one challenge per enrollment from
-- /certsrv/mscep_admin/ before it knows which certificate request will carry it; the request's
-- common name then names the (already enrolled) device. Like device challenges, only the
-- SHA-256 is kept, each is used once and expires (one hour). A challenge fetched with ?ca=NAME
-- works at that CA's SCEP URL only; without, at any of ours (as one NDES serves one CA).
-- Spent rows stay, naming the device they enrolled, for the audit trail.
CREATE TABLE unbound_challenges (
    id          INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,          -- SHA-256 of the challenge, hex
    ca_id       INTEGER REFERENCES cas(id),    -- NULL: any CA
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    device_id   INTEGER REFERENCES devices(id) -- the device it enrolled, once used
);
-- Counting the live ones (the "password cache" limit) walks only unused rows.
CREATE INDEX unbound_challenges_live ON unbound_challenges(expires_at) WHERE used_at IS NULL;
