DROP TABLE live_books;
DROP TABLE ledger_facts;
DROP INDEX ledger_entries_period_run_client_idx;
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_book_key,
    DROP CONSTRAINT ledger_entries_kind_check,
    DROP CONSTRAINT ledger_entries_study_line_check,
    DROP CONSTRAINT ledger_entries_grade_check,
    DROP CONSTRAINT ledger_entries_modality_check,
    DROP COLUMN line_no,
    DROP COLUMN book_version,
    DROP COLUMN reason,
    DROP COLUMN adjusts_id,
    DROP COLUMN entry_kind,
    DROP COLUMN line,
    ALTER COLUMN report_id SET NOT NULL,
    ALTER COLUMN revision SET NOT NULL,
    ALTER COLUMN provider_id SET NOT NULL,
    ALTER COLUMN status SET NOT NULL,
    ADD CONSTRAINT ledger_entries_modality_check
        CHECK (modality IN ('XRAY', 'CT', 'MRI', 'USG', 'MAMMO', 'PET_CT', 'NM')),
    ADD CONSTRAINT ledger_entries_grade_check CHECK (grade IN ('JUNIOR', 'SENIOR', 'CONSULTANT')),
    ADD CONSTRAINT ledger_entries_amount_check CHECK (amount >= 0),
    ADD CONSTRAINT ledger_entries_amount_inr_check CHECK (amount_inr >= 0),
    ADD CONSTRAINT ledger_entries_period_report_id_revision_run_id_side_key
        UNIQUE (period, report_id, revision, run_id, side);
