-- Published CRLs (full and delta) and the CRL-number sequence each CA shares between them.

CREATE TABLE crl_numbers (
    ca_id  INTEGER PRIMARY KEY REFERENCES cas(id),
    last   INTEGER NOT NULL
);

CREATE TABLE crls (
    id           INTEGER PRIMARY KEY,
    ca_id        INTEGER NOT NULL REFERENCES cas(id),
    number       INTEGER NOT NULL,
    scope        TEXT NOT NULL,          -- full | delta
    base_number  INTEGER,                -- delta: the full CRL it extends
    this_update  INTEGER NOT NULL,
    next_update  INTEGER NOT NULL,
    entries      INTEGER NOT NULL,
    der          BLOB NOT NULL,
    UNIQUE (ca_id, number)
);
CREATE INDEX crls_latest ON crls(ca_id, scope, number);

-- Revoked certificates by CA and time, for CRL building.
CREATE INDEX certificates_revoked ON certificates(ca_id, revoked_at) WHERE status = 'revoked';
