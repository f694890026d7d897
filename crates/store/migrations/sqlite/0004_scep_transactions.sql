-- SCEP transactions answered with a certificate, so that a retried transaction (same
-- transactionID and key) gets the same certificate instead of a spent-challenge refusal.
CREATE TABLE scep_transactions (
    ca_id           INTEGER NOT NULL REFERENCES cas(id),
    transaction_id  TEXT NOT NULL,
    key_sha256      TEXT NOT NULL,
    serial          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (ca_id, transaction_id)
);
