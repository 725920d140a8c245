REVOKE SELECT ON reports, provider_pricing_rules, client_pricing_rules, fx_rates FROM radfin_ledger;
REVOKE SELECT, INSERT ON held_reports FROM radfin_ledger;
REVOKE USAGE ON SEQUENCE held_reports_id_seq FROM radfin_ledger;
REVOKE INSERT ON pricing_runs FROM radfin_ledger;
REVOKE USAGE ON SEQUENCE pricing_runs_run_id_seq FROM radfin_ledger;
REVOKE SELECT ON audit_log FROM radfin_ledger, radfin_ingest;
DROP TABLE rerun_manifests;
DROP INDEX pricing_runs_one_close_per_period;
DROP INDEX finance_credit_notes_invoice_idx;
ALTER TABLE finance_credit_notes DROP CONSTRAINT finance_credit_notes_origin_check;
ALTER TABLE finance_credit_notes DROP COLUMN request_id;
DROP INDEX finance_credit_notes_invoice_run_key;
ALTER TABLE finance_credit_notes ADD CONSTRAINT finance_credit_notes_corrects_invoice_id_run_id_key
    UNIQUE (corrects_invoice_id, run_id);
ALTER TABLE finance_credit_notes ALTER COLUMN run_id SET NOT NULL;
CREATE INDEX ledger_entries_run_id_idx ON ledger_entries (period, run_id, client_id);
