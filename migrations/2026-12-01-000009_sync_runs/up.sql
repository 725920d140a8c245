-- The rolling-window sync's record (spec §6): one row per run, written once the run has ended
-- (succeeded or failed), never changed. What was read from the source, what became of it, and
-- the first rejected rows with their reasons.

CREATE TABLE sync_runs (
    id              bigserial   PRIMARY KEY,
    -- SCHEDULE (every RADFIN_SYNC_INTERVAL_SECS) or ON_DEMAND (SyncNow).
    trigger         text        NOT NULL CHECK (trigger IN ('SCHEDULE', 'ON_DEMAND')),
    -- Where the rows came from: the source database without credentials, and the table or view.
    source          text        NOT NULL CHECK (source <> ''),
    source_table    text        NOT NULL CHECK (source_table <> ''),
    -- The reports whose finalized_at is in [window_start, window_end).
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    duration_ms     bigint      NOT NULL CHECK (duration_ms >= 0),
    -- Rows read; stored for the first time (a report not stored before); a new revision of a
    -- stored report; identical to what is stored; rejected (invalid, or an existing revision
    -- with different content).
    read_count      bigint      NOT NULL CHECK (read_count >= 0),
    new_count       bigint      NOT NULL CHECK (new_count >= 0),
    changed_count   bigint      NOT NULL CHECK (changed_count >= 0),
    unchanged_count bigint      NOT NULL CHECK (unchanged_count >= 0),
    rejected_count  bigint      NOT NULL CHECK (rejected_count >= 0),
    -- The first rejected rows (at most 1000), each {"row", "report_id", "revision", "reasons"}.
    rejected        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    outcome         text        NOT NULL CHECK (outcome IN ('SUCCEEDED', 'FAILED')),
    error           text        NULL CHECK (error <> ''),
    CONSTRAINT sync_runs_window_check CHECK (window_start < window_end),
    CONSTRAINT sync_runs_finished_check CHECK (finished_at >= started_at),
    CONSTRAINT sync_runs_outcome_error_check CHECK ((outcome = 'FAILED') = (error IS NOT NULL)),
    -- A run that finished accounts for every row it read; a failed one may have stopped mid-page.
    CONSTRAINT sync_runs_counts_check CHECK (
        new_count + changed_count + unchanged_count + rejected_count <= read_count
        AND (outcome = 'FAILED' OR new_count + changed_count + unchanged_count + rejected_count = read_count)),
    CONSTRAINT sync_runs_rejected_check CHECK (
        jsonb_typeof(rejected) = 'array'
        AND jsonb_array_length(rejected) <= 1000
        AND jsonb_array_length(rejected) <= rejected_count)
);
CREATE INDEX sync_runs_started_at_idx ON sync_runs (started_at);
SELECT radfin_make_append_only('sync_runs');

GRANT SELECT, INSERT ON sync_runs TO radfin_ingest;
GRANT USAGE ON SEQUENCE sync_runs_id_seq TO radfin_ingest;
GRANT SELECT ON sync_runs TO radfin_reporting;
