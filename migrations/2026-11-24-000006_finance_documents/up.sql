-- Finance documents (spec §4.4, §5, §6): invoices, credit notes, supplementary invoices, payout
-- statements, their numbers and the periods' states. Append-only; only radfin-ledger writes them.
--
-- Document numbers: per type (INV, CRN, SUP, PAY) and financial year, at most 16 characters of
-- [A-Za-z0-9/-], e.g. INV/25-26/000042. Money is in the document's currency unless named *_inr.

-- Every number ever assigned, per series. Assigned inside the closing transaction, never reused.
CREATE TABLE document_numbers (
    doc_type        text        NOT NULL CHECK (doc_type IN ('INV', 'CRN', 'SUP', 'PAY')),
    -- `2025-26`: the financial year (1 April – 31 March) of the document's issue date.
    financial_year  text        NOT NULL CHECK (financial_year ~ '^[0-9]{4}-[0-9]{2}$'),
    number          integer     NOT NULL CHECK (number >= 1),
    document_number text        NOT NULL UNIQUE CHECK (document_number ~ '^[A-Za-z0-9/-]{1,16}$'),
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (doc_type, financial_year, number)
);
SELECT radfin_make_append_only('document_numbers');

-- A client's invoice for a period (kind INVOICE), or a supplementary invoice for an undercharge a
-- rerun found (kind SUPPLEMENTARY, referencing the invoice it supplements).
CREATE TABLE finance_invoices (
    id                   bigserial     PRIMARY KEY,
    invoice_number       text          NOT NULL UNIQUE CHECK (invoice_number ~ '^[A-Za-z0-9/-]{1,16}$'),
    kind                 text          NOT NULL CHECK (kind IN ('INVOICE', 'SUPPLEMENTARY')),
    client_id            text          NOT NULL CHECK (client_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    period               text          NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    run_id               bigint        NOT NULL REFERENCES pricing_runs (run_id),
    issue_date           date          NOT NULL,
    financial_year       text          NOT NULL CHECK (financial_year ~ '^[0-9]{4}-[0-9]{2}$'),
    currency             char(3)       NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    client_rule_version  integer       NULL,
    billable_reports     integer       NOT NULL CHECK (billable_reports >= 0),
    taxable_value        numeric(20,4) NOT NULL CHECK (taxable_value >= 0),
    tax_treatment        text          NOT NULL CHECK (tax_treatment IN ('TAXABLE', 'EXPORT_LUT', 'EXEMPT')),
    cgst_rate_pct        numeric(7,4)  NULL,
    cgst_amount          numeric(20,4) NOT NULL DEFAULT 0 CHECK (cgst_amount >= 0),
    sgst_rate_pct        numeric(7,4)  NULL,
    sgst_amount          numeric(20,4) NOT NULL DEFAULT 0 CHECK (sgst_amount >= 0),
    igst_rate_pct        numeric(7,4)  NULL,
    igst_amount          numeric(20,4) NOT NULL DEFAULT 0 CHECK (igst_amount >= 0),
    tax_total            numeric(20,4) NOT NULL,
    total                numeric(20,4) NOT NULL,
    -- LUT endorsement of an export, or the bill-of-supply text of an exempt supply.
    endorsement          text          NULL,
    fx_rate              numeric(24,6) NULL CHECK (fx_rate > 0),
    fx_rate_date         date          NULL,
    taxable_value_inr    numeric(20,4) NOT NULL,
    client_gstin         text          NULL,
    place_of_supply      text          NULL,
    corrects_invoice_id  bigint        NULL REFERENCES finance_invoices (id),
    created_by           text          NOT NULL CHECK (created_by <> ''),
    created_at           timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT finance_invoices_tax_total_check CHECK (tax_total = cgst_amount + sgst_amount + igst_amount),
    CONSTRAINT finance_invoices_total_check CHECK (total = taxable_value + tax_total),
    CONSTRAINT finance_invoices_corrects_check CHECK ((kind = 'SUPPLEMENTARY') = (corrects_invoice_id IS NOT NULL)),
    -- Closing (or applying a rerun) again finds the documents it issued instead of issuing more.
    CONSTRAINT finance_invoices_client_id_period_run_id_kind_key UNIQUE (client_id, period, run_id, kind)
);
CREATE INDEX finance_invoices_period_idx ON finance_invoices (period, client_id);
SELECT radfin_make_append_only('finance_invoices');

CREATE TABLE finance_invoice_lines (
    invoice_id  bigint        NOT NULL REFERENCES finance_invoices (id),
    line_no     integer       NOT NULL CHECK (line_no >= 1),
    kind        text          NOT NULL CHECK (kind IN ('STUDIES', 'INCLUDED_STUDIES', 'RETAINER_FEE', 'MINIMUM_SHORTFALL', 'ADJUSTMENT')),
    description text          NOT NULL,
    modality    text          NULL CHECK (modality IN ('XRAY', 'CT', 'MRI', 'USG', 'MAMMO', 'PET_CT', 'NM')),
    tier        integer       NULL CHECK (tier >= 1),
    unit_price  numeric(20,4) NULL,
    quantity    integer       NOT NULL CHECK (quantity >= 0),
    amount      numeric(20,4) NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);
SELECT radfin_make_append_only('finance_invoice_lines');

-- A credit note for an overcharge a rerun found, referencing the invoice it corrects.
CREATE TABLE finance_credit_notes (
    id                  bigserial     PRIMARY KEY,
    credit_note_number  text          NOT NULL UNIQUE CHECK (credit_note_number ~ '^[A-Za-z0-9/-]{1,16}$'),
    client_id           text          NOT NULL CHECK (client_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    period              text          NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    run_id              bigint        NOT NULL REFERENCES pricing_runs (run_id),
    corrects_invoice_id bigint        NOT NULL REFERENCES finance_invoices (id),
    issue_date          date          NOT NULL,
    financial_year      text          NOT NULL CHECK (financial_year ~ '^[0-9]{4}-[0-9]{2}$'),
    currency            char(3)       NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Amounts credited, positive.
    taxable_value       numeric(20,4) NOT NULL CHECK (taxable_value > 0),
    tax_treatment       text          NOT NULL CHECK (tax_treatment IN ('TAXABLE', 'EXPORT_LUT', 'EXEMPT')),
    cgst_rate_pct       numeric(7,4)  NULL,
    cgst_amount         numeric(20,4) NOT NULL DEFAULT 0 CHECK (cgst_amount >= 0),
    sgst_rate_pct       numeric(7,4)  NULL,
    sgst_amount         numeric(20,4) NOT NULL DEFAULT 0 CHECK (sgst_amount >= 0),
    igst_rate_pct       numeric(7,4)  NULL,
    igst_amount         numeric(20,4) NOT NULL DEFAULT 0 CHECK (igst_amount >= 0),
    tax_total           numeric(20,4) NOT NULL,
    total               numeric(20,4) NOT NULL,
    fx_rate             numeric(24,6) NULL CHECK (fx_rate > 0),
    fx_rate_date        date          NULL,
    taxable_value_inr   numeric(20,4) NOT NULL,
    reason              text          NOT NULL CHECK (reason <> ''),
    created_by          text          NOT NULL CHECK (created_by <> ''),
    created_at          timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT finance_credit_notes_tax_total_check CHECK (tax_total = cgst_amount + sgst_amount + igst_amount),
    CONSTRAINT finance_credit_notes_total_check CHECK (total = taxable_value + tax_total),
    CONSTRAINT finance_credit_notes_corrects_invoice_id_run_id_key UNIQUE (corrects_invoice_id, run_id)
);
CREATE INDEX finance_credit_notes_period_idx ON finance_credit_notes (period, client_id);
SELECT radfin_make_append_only('finance_credit_notes');

CREATE TABLE finance_credit_note_lines (
    credit_note_id bigint        NOT NULL REFERENCES finance_credit_notes (id),
    line_no        integer       NOT NULL CHECK (line_no >= 1),
    description    text          NOT NULL,
    modality       text          NULL CHECK (modality IN ('XRAY', 'CT', 'MRI', 'USG', 'MAMMO', 'PET_CT', 'NM')),
    quantity       integer       NOT NULL CHECK (quantity >= 0),
    amount         numeric(20,4) NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (credit_note_id, line_no)
);
SELECT radfin_make_append_only('finance_credit_note_lines');

-- What a provider is paid for a period (kind STATEMENT), or a rerun's correction of it (kind
-- ADJUSTMENT, signed, referencing the statement it corrects). INR. TDS under section 194J.
CREATE TABLE payout_statements (
    id                      bigserial     PRIMARY KEY,
    statement_number        text          NOT NULL UNIQUE CHECK (statement_number ~ '^[A-Za-z0-9/-]{1,16}$'),
    kind                    text          NOT NULL CHECK (kind IN ('STATEMENT', 'ADJUSTMENT')),
    provider_id             text          NOT NULL CHECK (provider_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    period                  text          NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    run_id                  bigint        NOT NULL REFERENCES pricing_runs (run_id),
    issue_date              date          NOT NULL,
    financial_year          text          NOT NULL CHECK (financial_year ~ '^[0-9]{4}-[0-9]{2}$'),
    currency                char(3)       NOT NULL DEFAULT 'INR' CHECK (currency = 'INR'),
    reports                 integer       NOT NULL,
    gross                   numeric(20,4) NOT NULL,
    -- The provider's fees earlier in the financial year, which decide whether TDS applies.
    fees_earlier_in_year    numeric(20,4) NOT NULL,
    pan_present             boolean       NOT NULL,
    tds_section             text          NOT NULL DEFAULT '194J',
    tds_rate_pct            numeric(7,4)  NOT NULL CHECK (tds_rate_pct >= 0),
    tds_base                numeric(20,4) NOT NULL,
    tds_amount              numeric(20,4) NOT NULL,
    net_payable             numeric(20,4) NOT NULL,
    corrects_statement_id   bigint        NULL REFERENCES payout_statements (id),
    created_by              text          NOT NULL CHECK (created_by <> ''),
    created_at              timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT payout_statements_net_check CHECK (net_payable = gross - tds_amount),
    CONSTRAINT payout_statements_sign_check CHECK (kind = 'ADJUSTMENT' OR (gross >= 0 AND tds_amount >= 0 AND reports >= 0)),
    CONSTRAINT payout_statements_corrects_check CHECK ((kind = 'ADJUSTMENT') = (corrects_statement_id IS NOT NULL)),
    CONSTRAINT payout_statements_provider_id_period_run_id_kind_key UNIQUE (provider_id, period, run_id, kind)
);
CREATE INDEX payout_statements_period_idx ON payout_statements (period, provider_id);
SELECT radfin_make_append_only('payout_statements');

CREATE TABLE payout_statement_lines (
    statement_id bigint        NOT NULL REFERENCES payout_statements (id),
    line_no      integer       NOT NULL CHECK (line_no >= 1),
    description  text          NOT NULL,
    modality     text          NULL CHECK (modality IN ('XRAY', 'CT', 'MRI', 'USG', 'MAMMO', 'PET_CT', 'NM')),
    quantity     integer       NOT NULL,
    amount       numeric(20,4) NOT NULL,
    PRIMARY KEY (statement_id, line_no)
);
SELECT radfin_make_append_only('payout_statement_lines');

-- Period state changes: the latest event of a period is its state (no row: OPEN).
CREATE TABLE period_states (
    id         bigserial   PRIMARY KEY,
    period     text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    state      text        NOT NULL CHECK (state IN ('OPEN', 'CLOSED')),
    run_id     bigint      NULL REFERENCES pricing_runs (run_id),
    actor      text        NOT NULL CHECK (actor <> ''),
    reason     text        NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX period_states_period_idx ON period_states (period, id);
SELECT radfin_make_append_only('period_states');

GRANT SELECT, INSERT ON document_numbers, finance_invoices, finance_invoice_lines, finance_credit_notes,
    finance_credit_note_lines, payout_statements, payout_statement_lines, period_states TO radfin_ledger;
GRANT USAGE ON SEQUENCE finance_invoices_id_seq, finance_credit_notes_id_seq, payout_statements_id_seq,
    period_states_id_seq TO radfin_ledger;
GRANT SELECT ON period_states TO radfin_pricing;
GRANT SELECT ON document_numbers, finance_invoices, finance_invoice_lines, finance_credit_notes,
    finance_credit_note_lines, payout_statements, payout_statement_lines, period_states TO radfin_reporting;
