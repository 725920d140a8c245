-- Service roles and the append-only guard every ledger-like table uses.
--
-- Roles are cluster-wide while migrations run per database (and many test databases are migrated
-- concurrently), so each role is created only when missing, and a concurrent creation of the same
-- role (duplicate_object, or unique_violation on pg_authid while both transactions are in flight)
-- is not an error. A role that already exists with more power than a service needs is refused
-- rather than silently altered.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['radfin_ingest', 'radfin_pricing', 'radfin_ledger', 'radfin_reporting'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', r);
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN NULL;
            END;
        END IF;
        IF EXISTS (
            SELECT 1 FROM pg_roles
            WHERE rolname = r AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls)
        ) THEN
            RAISE EXCEPTION 'role % exists with superuser, createdb, createrole, replication or bypassrls', r
                USING HINT = 'a service role must not hold these attributes; fix the role, then migrate again';
        END IF;
    END LOOP;
END
$$;

-- Raises SQLSTATE RF001 ("<table> is append-only"). The first trigger argument names the table
-- (a partition reports its parent). CONSTRAINT carries a machine-readable marker because some
-- clients (diesel) do not expose the SQLSTATE of codes they do not know.
CREATE FUNCTION radfin_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tbl text := coalesce(TG_ARGV[0], TG_TABLE_NAME);
BEGIN
    RAISE EXCEPTION '% is append-only', tbl
        USING ERRCODE = 'RF001',
              DETAIL = format('%s on %s is not allowed: corrections are recorded as new rows', TG_OP, tbl),
              CONSTRAINT = 'radfin_append_only',
              SCHEMA = TG_TABLE_SCHEMA,
              TABLE = tbl;
END
$$;

-- Makes a table append-only: UPDATE and DELETE rejected per row, TRUNCATE per statement.
-- Row triggers of a partitioned table are cloned to its partitions; statement triggers are not,
-- so a partition gets only the TRUNCATE trigger (`row_trigger = false`).
CREATE FUNCTION radfin_make_append_only(tbl regclass, label text DEFAULT NULL, row_trigger boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    name text := coalesce(label, tbl::text);
BEGIN
    IF row_trigger THEN
        EXECUTE format(
            'CREATE TRIGGER radfin_append_only_row BEFORE UPDATE OR DELETE ON %s '
            'FOR EACH ROW EXECUTE FUNCTION radfin_reject_change(%L)', tbl, name);
    END IF;
    EXECUTE format(
        'CREATE TRIGGER radfin_append_only_truncate BEFORE TRUNCATE ON %s '
        'FOR EACH STATEMENT EXECUTE FUNCTION radfin_reject_change(%L)', tbl, name);
END
$$;

REVOKE ALL ON FUNCTION radfin_reject_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION radfin_make_append_only(regclass, text, boolean) FROM PUBLIC;
