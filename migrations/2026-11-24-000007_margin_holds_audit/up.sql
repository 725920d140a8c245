-- The margin projection (spec §7), held reports (spec §4.3, §6) and the audit log (spec §6).

-- A projection of the ledger, rebuildable from it at any time: not append-only.
-- modality and grade are NONE for client-level lines of a month without billable reports.
CREATE TABLE margin_summary (
    period      text          NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    client_id   text          NOT NULL,
    modality    text          NOT NULL CHECK (modality IN ('XRAY', 'CT', 'MRI', 'USG', 'MAMMO', 'PET_CT', 'NM', 'NONE')),
    grade       text          NOT NULL CHECK (grade IN ('JUNIOR', 'SENIOR', 'CONSULTANT', 'NONE')),
    reports     bigint        NOT NULL CHECK (reports >= 0),
    revenue_inr numeric(20,4) NOT NULL,
    cogs_inr    numeric(20,4) NOT NULL,
    margin_inr  numeric(20,4) NOT NULL,
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (period, client_id, modality, grade),
    CONSTRAINT margin_summary_margin_check CHECK (margin_inr = revenue_inr - cogs_inr)
);

-- Hold and release events. A report revision is currently held when its latest event is HELD.
CREATE TABLE held_reports (
    id          bigserial   PRIMARY KEY,
    report_id   text        NOT NULL,
    revision    bigint      NOT NULL,
    client_id   text        NOT NULL,
    provider_id text        NOT NULL,
    period      text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    status      text        NOT NULL CHECK (status IN ('UNKNOWN_PARTY', 'NO_RULE', 'NO_PRICE', 'AWAITING_FX', 'HELD_CLOSED_PERIOD')),
    reason      text        NOT NULL,
    event       text        NOT NULL CHECK (event IN ('HELD', 'RELEASED')),
    at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (report_id, revision) REFERENCES reports (report_id, revision)
);
CREATE INDEX held_reports_report_id_revision_idx ON held_reports (report_id, revision, id);
CREATE INDEX held_reports_period_idx ON held_reports (period);
SELECT radfin_make_append_only('held_reports');

-- Every privileged action, allowed or denied: who, what, when, why, outcome.
CREATE TABLE audit_log (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL CHECK (actor <> ''),
    role    text        NOT NULL,
    action  text        NOT NULL CHECK (action <> ''),
    target  text        NOT NULL,
    reason  text        NULL,
    outcome text        NOT NULL CHECK (outcome IN ('ALLOWED', 'DENIED', 'FAILED')),
    details jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
SELECT radfin_make_append_only('audit_log');

GRANT SELECT, INSERT, UPDATE, DELETE ON margin_summary TO radfin_ledger, radfin_reporting;
GRANT SELECT, INSERT ON held_reports TO radfin_pricing;
GRANT USAGE ON SEQUENCE held_reports_id_seq TO radfin_pricing;
GRANT SELECT ON held_reports TO radfin_reporting;
-- Every service audits the privileged calls it answers (allowed or denied).
GRANT SELECT, INSERT ON audit_log TO radfin_pricing;
GRANT INSERT ON audit_log TO radfin_ingest, radfin_ledger;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO radfin_ingest, radfin_pricing, radfin_ledger;
GRANT SELECT ON audit_log TO radfin_reporting;
