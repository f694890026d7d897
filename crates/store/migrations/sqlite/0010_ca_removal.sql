-- easgate schema v10 (SQLite): a removed CA (`ca remove`) keeps its row, renamed
-- `NAME.removed-<unix time>`, for the certificates it issued and the audit trail; it is no
-- longer listed, served or trusted, and its name is free for a new CA.
ALTER TABLE cas ADD COLUMN removed_at INTEGER;
