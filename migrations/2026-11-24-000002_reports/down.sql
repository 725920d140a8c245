DROP TABLE report_outbox;
DROP TABLE reports;
