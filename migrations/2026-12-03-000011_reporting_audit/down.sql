REVOKE USAGE ON SEQUENCE audit_log_id_seq FROM radfin_reporting;
REVOKE INSERT ON audit_log FROM radfin_reporting;
