-- Tell every listening easgate instance that the change feed grew, on commit (PostgreSQL
-- delivers NOTIFY at commit and folds repeats within one transaction). The channel is named
-- after the schema, so instances on other schemas of the same database are not woken.
-- Listeners compute the same name (postgres/cluster.rs); polling remains the fallback.
CREATE FUNCTION easgate_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('easgate_' || left(md5(TG_TABLE_SCHEMA), 16), '');
    RETURN NULL;
END
$$;

CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION easgate_notify_changes();
