-- The reporting service audits the rebuilds of the margin summary it runs (RebuildSummary).
GRANT INSERT ON audit_log TO radfin_reporting;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO radfin_reporting;
