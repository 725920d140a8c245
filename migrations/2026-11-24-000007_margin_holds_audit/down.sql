DROP TABLE audit_log;
DROP TABLE held_reports;
DROP TABLE margin_summary;
