-- FX reference rates (spec §4.3) and pricing runs (spec §4, §6).

-- INR per one unit of `currency` on `rate_date`, as published by `source`. Re-fetching the same
-- rate is a no-op (the unique key); a corrected rate is a new row, and the latest fetched wins.
CREATE TABLE fx_rates (
    id           bigserial     PRIMARY KEY,
    rate_date    date          NOT NULL,
    currency     char(3)       NOT NULL CHECK (currency ~ '^[A-Z]{3}$' AND currency <> 'INR'),
    inr_per_unit numeric(24,6) NOT NULL CHECK (inr_per_unit > 0),
    source       text          NOT NULL CHECK (source <> ''),
    fetched_at   timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT fx_rates_rate_date_currency_source_inr_per_unit_key UNIQUE (rate_date, currency, source, inr_per_unit)
);
CREATE INDEX fx_rates_currency_rate_date_idx ON fx_rates (currency, rate_date);
SELECT radfin_make_append_only('fx_rates');

-- A pricing pass over a period. LIVE (one per period, always priced with the rules as of now),
-- CLOSE (the final pass of a close) and RERUN (an operator's reprice with a reason).
CREATE TABLE pricing_runs (
    run_id      bigserial   PRIMARY KEY,
    period      text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    kind        text        NOT NULL CHECK (kind IN ('LIVE', 'CLOSE', 'RERUN')),
    rules_as_of timestamptz NULL,
    reason      text        NULL CHECK (reason <> ''),
    created_by  text        NOT NULL CHECK (created_by <> ''),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pricing_runs_rules_as_of_check CHECK ((kind = 'LIVE') = (rules_as_of IS NULL)),
    CONSTRAINT pricing_runs_rerun_reason_check CHECK (kind <> 'RERUN' OR reason IS NOT NULL)
);
CREATE UNIQUE INDEX pricing_runs_one_live_per_period ON pricing_runs (period) WHERE kind = 'LIVE';
CREATE INDEX pricing_runs_period_idx ON pricing_runs (period, run_id);
SELECT radfin_make_append_only('pricing_runs');

GRANT SELECT, INSERT ON fx_rates, pricing_runs TO radfin_pricing;
GRANT USAGE ON SEQUENCE fx_rates_id_seq, pricing_runs_run_id_seq TO radfin_pricing;
GRANT SELECT ON pricing_runs TO radfin_ledger;
GRANT SELECT ON fx_rates, pricing_runs TO radfin_reporting;
