-- Parties (spec §3) and pricing rules (spec §4), append-only versions.
--
-- A party version is in force from `effective_from`; of several rows with the same
-- (id, effective_from), the latest recorded one (recorded_at, then id) is the one in force.

CREATE TABLE providers (
    id               bigserial   PRIMARY KEY,
    provider_id      text        NOT NULL CHECK (provider_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    name             text        NOT NULL CHECK (name <> ''),
    grade            text        NOT NULL CHECK (grade IN ('JUNIOR', 'SENIOR', 'CONSULTANT')),
    practicing_since date        NOT NULL,
    -- Permanent Account Number; without one TDS is withheld at the higher rate.
    pan              text        NULL CHECK (pan <> ''),
    effective_from   date        NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    recorded_by      text        NOT NULL CHECK (recorded_by <> '')
);
CREATE INDEX providers_provider_id_effective_from_idx ON providers (provider_id, effective_from, recorded_at);
SELECT radfin_make_append_only('providers');

CREATE TABLE clients (
    id             bigserial   PRIMARY KEY,
    client_id      text        NOT NULL CHECK (client_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    name           text        NOT NULL CHECK (name <> ''),
    -- ISO 3166-1 alpha-2.
    country        text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    -- GST state code of a domestic client.
    state_code     text        NULL CHECK (state_code <> ''),
    gstin          text        NULL CHECK (gstin <> ''),
    currency       char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    effective_from date        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    recorded_by    text        NOT NULL CHECK (recorded_by <> '')
);
CREATE INDEX clients_client_id_effective_from_idx ON clients (client_id, effective_from, recorded_at);
SELECT radfin_make_append_only('clients');

-- Rule documents are kept as the original JSON text, never rewritten. `effective_from` is the
-- valid time, `recorded_at` the transaction time.
CREATE TABLE provider_pricing_rules (
    version        integer     PRIMARY KEY CHECK (version >= 1),
    effective_from date        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    recorded_by    text        NOT NULL CHECK (recorded_by <> ''),
    document       text        NOT NULL,
    CONSTRAINT provider_pricing_rules_document_check CHECK (jsonb_typeof(document::jsonb) = 'object')
);
SELECT radfin_make_append_only('provider_pricing_rules');

CREATE TABLE client_pricing_rules (
    client_id      text        NOT NULL CHECK (client_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    version        integer     NOT NULL CHECK (version >= 1),
    effective_from date        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    recorded_by    text        NOT NULL CHECK (recorded_by <> ''),
    document       text        NOT NULL,
    PRIMARY KEY (client_id, version),
    -- The document is a JSON object naming the client it is filed under.
    CONSTRAINT client_pricing_rules_document_check
        CHECK (jsonb_typeof(document::jsonb) = 'object' AND (document::jsonb ->> 'client_id') = client_id)
);
SELECT radfin_make_append_only('client_pricing_rules');

GRANT SELECT ON providers, clients TO radfin_ingest, radfin_ledger, radfin_reporting;
GRANT SELECT, INSERT ON providers, clients, provider_pricing_rules, client_pricing_rules TO radfin_pricing;
GRANT USAGE ON SEQUENCE providers_id_seq, clients_id_seq TO radfin_pricing;
GRANT SELECT ON provider_pricing_rules, client_pricing_rules TO radfin_reporting;
