-- easgate schema v7 (SQLite): the SCEP RA is one of the service keys (role `scep-ra`), like the
-- profile signer; its key stays sealed under the same context (`scep-ra:{ca}`).
INSERT INTO service_keys (ca_id, role, cert_der, key_sealed, created_at)
SELECT ca_id, 'scep-ra', cert_der, key_sealed, created_at FROM scep_ras;
DROP TABLE scep_ras;
