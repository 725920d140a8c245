DROP TRIGGER radfin_ledger_entries_references ON ledger_entries;
DROP FUNCTION radfin_ledger_entries_references();
DROP INDEX ledger_entries_book_key;
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_book_slot_check,
    ADD CONSTRAINT ledger_entries_book_key UNIQUE (period, run_id, client_id, book_version, line_no),
    ADD FOREIGN KEY (run_id) REFERENCES pricing_runs (run_id),
    ADD FOREIGN KEY (report_id, revision) REFERENCES reports (report_id, revision);
