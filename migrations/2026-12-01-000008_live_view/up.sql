-- The exact live view (spec §5, §6): signed adjustment entries, client-level entries, the facts
-- the ledger priced each client-month from, and one lock-and-version row per client-month book.

-- Ledger entries become signed postings. Per (run, report or client-level line, side) the first
-- entry is a BOOKING; every later one is an ADJUSTMENT that references it (`adjusts_id`) and says
-- why. Their sum is the line's current amount. Client-level lines (retainer fee, minimum
-- shortfall) have no report: modality and grade NONE.
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_period_report_id_revision_run_id_side_key,
    DROP CONSTRAINT ledger_entries_amount_check,
    DROP CONSTRAINT ledger_entries_amount_inr_check,
    DROP CONSTRAINT ledger_entries_modality_check,
    DROP CONSTRAINT ledger_entries_grade_check,
    ALTER COLUMN report_id DROP NOT NULL,
    ALTER COLUMN revision DROP NOT NULL,
    ALTER COLUMN provider_id DROP NOT NULL,
    ALTER COLUMN status DROP NOT NULL,
    ADD COLUMN line text NOT NULL DEFAULT 'STUDY'
        CHECK (line IN ('STUDY', 'RETAINER_FEE', 'MINIMUM_SHORTFALL')),
    ADD COLUMN entry_kind text NOT NULL DEFAULT 'BOOKING' CHECK (entry_kind IN ('BOOKING', 'ADJUSTMENT')),
    -- The BOOKING entry (same period) an ADJUSTMENT corrects.
    ADD COLUMN adjusts_id bigint NULL,
    -- Why an adjustment was made: TIER, VOLUME_TIER, REVISION, CANCELLED, MOVED, HELD, RULES,
    -- FX, RELEASED, SHORTFALL, CONTRACT.
    ADD COLUMN reason text NULL CHECK (reason <> ''),
    -- The client-month book version that wrote the entry and its position in that write: two
    -- writers can never both append version n of a book.
    ADD COLUMN book_version bigint NULL CHECK (book_version >= 1),
    ADD COLUMN line_no integer NULL CHECK (line_no >= 1),
    ADD CONSTRAINT ledger_entries_modality_check
        CHECK (modality IN ('XRAY', 'CT', 'MRI', 'USG', 'MAMMO', 'PET_CT', 'NM', 'NONE')),
    ADD CONSTRAINT ledger_entries_grade_check CHECK (grade IN ('JUNIOR', 'SENIOR', 'CONSULTANT', 'NONE')),
    ADD CONSTRAINT ledger_entries_study_line_check CHECK (
        (line = 'STUDY' AND report_id IS NOT NULL AND revision IS NOT NULL AND provider_id IS NOT NULL
             AND status IS NOT NULL AND modality <> 'NONE' AND grade <> 'NONE')
        OR (line <> 'STUDY' AND side = 'REVENUE' AND report_id IS NULL AND revision IS NULL
             AND provider_id IS NULL AND status IS NULL AND modality = 'NONE' AND grade = 'NONE')),
    ADD CONSTRAINT ledger_entries_kind_check CHECK (
        (entry_kind = 'BOOKING' AND adjusts_id IS NULL AND amount >= 0 AND amount_inr >= 0)
        OR (entry_kind = 'ADJUSTMENT' AND adjusts_id IS NOT NULL AND reason IS NOT NULL)),
    ADD CONSTRAINT ledger_entries_book_key UNIQUE (period, run_id, client_id, book_version, line_no);

CREATE INDEX ledger_entries_period_run_client_idx ON ledger_entries (period, run_id, client_id, line);

-- The priced facts each client-month book was computed from, as the ledger applied them (the
-- protobuf `radfin.pricing.v1.LiveFact`, kept verbatim): a book is rebuilt from its current facts.
-- A fact is recorded only when it changed its book. Also the reconciler's evidence that a report
-- revision reached the ledger (priced, held or superseded).
CREATE TABLE ledger_facts (
    id           bigserial   PRIMARY KEY,
    period       text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    client_id    text        NOT NULL,
    run_id       bigint      NOT NULL REFERENCES pricing_runs (run_id),
    -- NULL for a contract fact (the client-month's contract without a report).
    report_id    text        NULL,
    revision     bigint      NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('PRICED', 'HELD', 'SUPERSEDED', 'CONTRACT')),
    book_version bigint      NOT NULL CHECK (book_version >= 1),
    -- When pricing read the reference data it priced with: of two facts, the later wins.
    priced_at    timestamptz NOT NULL,
    fact         bytea       NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_facts_report_check CHECK ((outcome = 'CONTRACT') = (report_id IS NULL AND revision IS NULL))
);
CREATE INDEX ledger_facts_report_id_idx ON ledger_facts (report_id, revision, id);
CREATE INDEX ledger_facts_book_idx ON ledger_facts (period, client_id, run_id, id);
SELECT radfin_make_append_only('ledger_facts');

-- One row per client-month book of a run: the row the ledger locks (FOR UPDATE) while it appends
-- to the book, and the version a cached book is checked against. Not a record: a lock and counter.
CREATE TABLE live_books (
    period     text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    client_id  text        NOT NULL,
    run_id     bigint      NOT NULL REFERENCES pricing_runs (run_id),
    version    bigint      NOT NULL CHECK (version >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, client_id, run_id)
);

GRANT SELECT, INSERT ON ledger_facts TO radfin_ledger;
GRANT USAGE ON SEQUENCE ledger_facts_id_seq TO radfin_ledger;
GRANT SELECT, INSERT, UPDATE ON live_books TO radfin_ledger;
GRANT SELECT ON ledger_facts, live_books TO radfin_reporting, radfin_ingest;
GRANT SELECT ON held_reports TO radfin_ingest;
