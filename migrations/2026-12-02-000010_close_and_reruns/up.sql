-- Close, credit notes and reruns (spec §4.4, §5, §6): the ledger closes a period itself (a final
-- pricing pass in a run of its own, then the documents, in one transaction), so it reads what
-- pricing reads and records the runs and holds it makes.

-- A credit note is either a rerun's correction (run_id set, one per invoice and run) or issued by
-- hand by finance against an invoice (run_id NULL), made idempotent by the caller's request id.
ALTER TABLE finance_credit_notes ALTER COLUMN run_id DROP NOT NULL;
ALTER TABLE finance_credit_notes DROP CONSTRAINT finance_credit_notes_corrects_invoice_id_run_id_key;
CREATE UNIQUE INDEX finance_credit_notes_invoice_run_key
    ON finance_credit_notes (corrects_invoice_id, run_id) WHERE run_id IS NOT NULL;
ALTER TABLE finance_credit_notes ADD COLUMN request_id text NULL UNIQUE
    CHECK (request_id ~ '^[A-Za-z0-9._:-]{1,64}$');
ALTER TABLE finance_credit_notes ADD CONSTRAINT finance_credit_notes_origin_check
    CHECK ((run_id IS NULL) = (request_id IS NOT NULL));
CREATE INDEX finance_credit_notes_invoice_idx ON finance_credit_notes (corrects_invoice_id);

-- (period, run_id, client_id) is a prefix of ledger_entries_period_run_client_idx: one index
-- fewer to maintain per entry (a close writes two per report).
DROP INDEX ledger_entries_run_id_idx;

-- One close per period; a closed period's later views are reruns.
CREATE UNIQUE INDEX pricing_runs_one_close_per_period ON pricing_runs (period) WHERE kind = 'CLOSE';

-- The manifest of a rerun, kept so that a preview can be applied later exactly as shown and the
-- same result reproduced: rules as of, rule versions, FX rates used, the report set's hash.
CREATE TABLE rerun_manifests (
    run_id           bigint      PRIMARY KEY REFERENCES pricing_runs (run_id),
    period           text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    -- The run the rerun was compared with (the period's current view when it was priced).
    compared_run_id  bigint      NOT NULL REFERENCES pricing_runs (run_id),
    report_set_hash  text        NOT NULL CHECK (report_set_hash ~ '^[0-9a-f]{64}$'),
    manifest         jsonb       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
SELECT radfin_make_append_only('rerun_manifests');

GRANT SELECT ON reports, provider_pricing_rules, client_pricing_rules, fx_rates TO radfin_ledger;
GRANT SELECT, INSERT ON held_reports TO radfin_ledger;
GRANT USAGE ON SEQUENCE held_reports_id_seq TO radfin_ledger;
GRANT INSERT ON pricing_runs TO radfin_ledger;
GRANT USAGE ON SEQUENCE pricing_runs_run_id_seq TO radfin_ledger;
-- Audit rows are appended with RETURNING id, which needs SELECT.
GRANT SELECT ON audit_log TO radfin_ledger, radfin_ingest;
GRANT SELECT, INSERT ON rerun_manifests TO radfin_ledger;
GRANT SELECT ON rerun_manifests TO radfin_reporting;
