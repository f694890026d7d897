-- easgate schema v9 (SQLite): a CA may refuse single-DES SCEP envelopes
-- (`ca create --scep-no-des`, `ca set-scep-des`). Existing CAs keep accepting DES, as before:
-- micromdm's scepclient and other old clients encrypt with nothing else.
ALTER TABLE cas ADD COLUMN scep_no_des INTEGER NOT NULL DEFAULT 0;
