-- SCEP registration authority per CA (an RSA decrypter for EC CAs; Apple's SCEP payload is
-- RSA-only). The key is sealed with the master key like CA keys.
CREATE TABLE scep_ras (
    ca_id       INTEGER PRIMARY KEY REFERENCES cas(id),
    cert_der    BLOB NOT NULL,
    key_sealed  BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
