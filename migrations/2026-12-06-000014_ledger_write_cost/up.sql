-- What a month-scale write of the ledger costs (a close or rerun books two entries per report).
--
-- 1. The references of an entry (its report revision, its pricing run) are checked once per
--    statement, set-wise, instead of by a foreign key per row. A foreign key takes a FOR KEY SHARE
--    lock on the referenced row for every entry (a write to the reports heap per entry), which
--    guards against a concurrent DELETE or key UPDATE of the referenced row; `reports` and
--    `pricing_runs` are append-only (triggers, and no role may UPDATE or DELETE them), so there is
--    nothing to guard against, and existence when the entry is written is the whole guarantee.
--    Measured on a million-report month: the two foreign keys were 24 of the 48 s its bookings took.
-- 2. The book key numbers the writes of the live view's client-month books, where concurrent
--    writers meet. A close or rerun run is written whole, once, under the period's lock: its
--    entries carry no book position, and the unique index covers only the entries that do.

ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_report_id_revision_fkey,
    DROP CONSTRAINT ledger_entries_run_id_fkey,
    DROP CONSTRAINT ledger_entries_book_key,
    ADD CONSTRAINT ledger_entries_book_slot_check CHECK ((book_version IS NULL) = (line_no IS NULL));

CREATE UNIQUE INDEX ledger_entries_book_key ON ledger_entries (period, run_id, client_id, book_version, line_no)
    WHERE book_version IS NOT NULL;

-- The foreign keys' check, for a whole INSERT statement: raises foreign_key_violation naming the
-- first entry whose report revision or run is not stored. SECURITY DEFINER: the writing role needs
-- no privilege on what it references, as with a foreign key.
CREATE FUNCTION radfin_ledger_entries_references() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    missing text;
BEGIN
    SELECT format('report %s revision %s', n.report_id, n.revision) INTO missing
    FROM radfin_new_entries n
    WHERE n.report_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.report_id = n.report_id AND r.revision = n.revision)
    LIMIT 1;
    IF missing IS NULL THEN
        SELECT format('pricing run %s', n.run_id) INTO missing
        FROM (SELECT DISTINCT run_id FROM radfin_new_entries) n
        WHERE NOT EXISTS (SELECT 1 FROM pricing_runs r WHERE r.run_id = n.run_id)
        LIMIT 1;
    END IF;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'a ledger entry references % which is not stored', missing
            USING ERRCODE = 'foreign_key_violation',
                  CONSTRAINT = 'ledger_entries_references',
                  SCHEMA = TG_TABLE_SCHEMA,
                  TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION radfin_ledger_entries_references() FROM PUBLIC;

CREATE TRIGGER radfin_ledger_entries_references AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS radfin_new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION radfin_ledger_entries_references();
