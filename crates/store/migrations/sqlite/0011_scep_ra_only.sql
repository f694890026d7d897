-- easgate schema v11 (SQLite): an EC CA may answer GetCACert with its RSA RA certificate
-- alone (`ca set-scep-cacert NAME --ra-only`), for clients such as micromdm's scepclient that
-- encrypt to every certificate of the answer and cannot use an EC one.
ALTER TABLE cas ADD COLUMN scep_ra_only INTEGER NOT NULL DEFAULT 0;
