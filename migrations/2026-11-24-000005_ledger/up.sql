-- The ledger (spec §5): two entries per priced report (COGS, REVENUE) per pricing run,
-- append-only, partitioned by period so close, rerun and retention touch one partition.

CREATE TABLE ledger_entries (
    id           bigserial     NOT NULL,
    period       text          NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    run_id       bigint        NOT NULL REFERENCES pricing_runs (run_id),
    report_id    text          NOT NULL,
    revision     bigint        NOT NULL,
    side         text          NOT NULL CHECK (side IN ('COGS', 'REVENUE')),
    client_id    text          NOT NULL,
    provider_id  text          NOT NULL,
    modality     text          NOT NULL CHECK (modality IN ('XRAY', 'CT', 'MRI', 'USG', 'MAMMO', 'PET_CT', 'NM')),
    grade        text          NOT NULL CHECK (grade IN ('JUNIOR', 'SENIOR', 'CONSULTANT')),
    status       text          NOT NULL CHECK (status IN ('FINAL', 'CANCELLED')),
    currency     char(3)       NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount       numeric(20,4) NOT NULL CHECK (amount >= 0),
    fx_rate      numeric(24,6) NULL CHECK (fx_rate > 0),
    fx_rate_date date          NULL,
    fx_source    text          NULL,
    amount_inr   numeric(20,4) NOT NULL CHECK (amount_inr >= 0),
    -- The rule version that priced this side (provider rules for COGS, the client's for REVENUE);
    -- none for a cancelled report, which needs no rules.
    rule_version integer       NULL,
    created_at   timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (period, id),
    -- The idempotency key: a redelivered entry is ON CONFLICT DO NOTHING.
    CONSTRAINT ledger_entries_period_report_id_revision_run_id_side_key
        UNIQUE (period, report_id, revision, run_id, side),
    FOREIGN KEY (report_id, revision) REFERENCES reports (report_id, revision),
    -- COGS is paid in INR; an amount in another currency carries the rate that converted it.
    CONSTRAINT ledger_entries_cogs_inr_check CHECK (side <> 'COGS' OR currency = 'INR'),
    CONSTRAINT ledger_entries_fx_check CHECK (
        (currency = 'INR' AND fx_rate IS NULL AND fx_rate_date IS NULL AND fx_source IS NULL AND amount_inr = amount)
        OR (currency <> 'INR' AND fx_rate IS NOT NULL AND fx_rate_date IS NOT NULL AND fx_source IS NOT NULL)
    )
) PARTITION BY LIST (period);

CREATE INDEX ledger_entries_report_id_idx ON ledger_entries (report_id, revision, run_id, side);
CREATE INDEX ledger_entries_run_id_idx ON ledger_entries (period, run_id, client_id);

-- Rows of a period without a partition of their own (radfin_ensure_ledger_partition makes one
-- before the ledger writes a period, so this stays empty in practice).
CREATE TABLE ledger_entries_default PARTITION OF ledger_entries DEFAULT;

SELECT radfin_make_append_only('ledger_entries');
SELECT radfin_make_append_only('ledger_entries_default', 'ledger_entries', false);

-- Creates ledger_entries_YYYY_MM for a period if it does not exist yet; true when it created it.
-- SECURITY DEFINER: services own nothing, so the table owner creates the partition for them.
-- Concurrent callers are serialized by an advisory lock; one that finds the partition created
-- meanwhile (CREATE fails with duplicate_table: catalog caches are not refreshed by an advisory
-- lock, so the creation itself is the reliable check) returns false. When the default partition
-- already holds rows of the period, PostgreSQL refuses the partition; those rows stay in the
-- default partition and false is returned.
CREATE FUNCTION radfin_ensure_ledger_partition(period text) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    part text;
BEGIN
    IF period IS NULL OR period !~ '^[0-9]{4}-(0[1-9]|1[0-2])$' THEN
        RAISE EXCEPTION 'invalid period %: expected YYYY-MM', quote_nullable(period)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    part := 'ledger_entries_' || replace(period, '-', '_');
    IF to_regclass(format('public.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('radfin_ensure_ledger_partition'), hashtext(period));
    BEGIN
        EXECUTE format('CREATE TABLE public.%I PARTITION OF public.ledger_entries FOR VALUES IN (%L)', part, period);
    EXCEPTION
        WHEN duplicate_table THEN
            RETURN false;
        WHEN check_violation THEN
            RAISE NOTICE 'ledger_entries_default holds rows of %, which stay there', period;
            RETURN false;
    END;
    PERFORM public.radfin_make_append_only(format('public.%I', part)::regclass, 'ledger_entries', false);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION radfin_ensure_ledger_partition(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION radfin_ensure_ledger_partition(text) TO radfin_ledger;

GRANT SELECT, INSERT ON ledger_entries TO radfin_ledger;
GRANT USAGE ON SEQUENCE ledger_entries_id_seq TO radfin_ledger;
GRANT SELECT ON ledger_entries TO radfin_reporting;
