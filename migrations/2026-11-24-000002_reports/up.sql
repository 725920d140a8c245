-- Every report revision as ingested (spec §2), append-only, and the outbox of revisions not yet
-- published to the bus (transactional outbox: a report is committed here before it is acknowledged).

CREATE TABLE reports (
    seq          bigserial   PRIMARY KEY,
    report_id    text        NOT NULL CHECK (report_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    -- u32 in the domain: bigint holds every value the domain accepts.
    revision     bigint      NOT NULL CHECK (revision BETWEEN 1 AND 4294967295),
    client_id    text        NOT NULL CHECK (client_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    provider_id  text        NOT NULL CHECK (provider_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    modality     text        NOT NULL CHECK (modality IN ('XRAY', 'CT', 'MRI', 'USG', 'MAMMO', 'PET_CT', 'NM')),
    body_regions smallint    NOT NULL CHECK (body_regions BETWEEN 1 AND 10),
    priority     text        NOT NULL CHECK (priority IN ('ROUTINE', 'URGENT', 'STAT')),
    finalized_at timestamptz NOT NULL,
    status       text        NOT NULL CHECK (status IN ('FINAL', 'CANCELLED')),
    period       text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    received_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reports_report_id_revision_key UNIQUE (report_id, revision)
);
CREATE INDEX reports_client_id_period_idx ON reports (client_id, period);
CREATE INDEX reports_period_idx ON reports (period);
SELECT radfin_make_append_only('reports');

-- Rows are deleted once published: the one table services may DELETE from.
CREATE TABLE report_outbox (
    seq        bigint      PRIMARY KEY REFERENCES reports (seq),
    created_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT ON reports TO radfin_ingest;
GRANT USAGE ON SEQUENCE reports_seq_seq TO radfin_ingest;
GRANT SELECT, INSERT, DELETE ON report_outbox TO radfin_ingest;
GRANT SELECT ON reports TO radfin_pricing, radfin_reporting;
GRANT SELECT ON report_outbox TO radfin_reporting;
