// @generated-style: written to match what `diesel print-schema` emits for the migrations in the
// repository's root `migrations/` (see `diesel.toml`); the integration test
// `schema_matches_the_database` compares it with the migrated database column by column.

diesel::table! {
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        actor -> Text,
        role -> Text,
        action -> Text,
        target -> Text,
        reason -> Nullable<Text>,
        outcome -> Text,
        details -> Jsonb,
        seq -> Int8,
        prev_hash -> Bytea,
        hash -> Bytea,
    }
}

diesel::table! {
    reference_clock (singleton) {
        singleton -> Bool,
        at -> Timestamptz,
    }
}

diesel::table! {
    audit_chain_head (singleton) {
        singleton -> Bool,
        seq -> Int8,
        hash -> Bytea,
    }
}

diesel::table! {
    client_pricing_rules (client_id, version) {
        client_id -> Text,
        version -> Int4,
        effective_from -> Date,
        recorded_at -> Timestamptz,
        recorded_by -> Text,
        document -> Text,
    }
}

diesel::table! {
    clients (id) {
        id -> Int8,
        client_id -> Text,
        name -> Text,
        country -> Text,
        state_code -> Nullable<Text>,
        gstin -> Nullable<Text>,
        #[max_length = 3]
        currency -> Bpchar,
        effective_from -> Date,
        recorded_at -> Timestamptz,
        recorded_by -> Text,
    }
}

diesel::table! {
    document_numbers (doc_type, financial_year, number) {
        doc_type -> Text,
        financial_year -> Text,
        number -> Int4,
        document_number -> Text,
        assigned_at -> Timestamptz,
    }
}

diesel::table! {
    finance_credit_note_lines (credit_note_id, line_no) {
        credit_note_id -> Int8,
        line_no -> Int4,
        description -> Text,
        modality -> Nullable<Text>,
        quantity -> Int4,
        amount -> Numeric,
    }
}

diesel::table! {
    finance_credit_notes (id) {
        id -> Int8,
        credit_note_number -> Text,
        client_id -> Text,
        period -> Text,
        run_id -> Nullable<Int8>,
        corrects_invoice_id -> Int8,
        issue_date -> Date,
        financial_year -> Text,
        #[max_length = 3]
        currency -> Bpchar,
        taxable_value -> Numeric,
        tax_treatment -> Text,
        cgst_rate_pct -> Nullable<Numeric>,
        cgst_amount -> Numeric,
        sgst_rate_pct -> Nullable<Numeric>,
        sgst_amount -> Numeric,
        igst_rate_pct -> Nullable<Numeric>,
        igst_amount -> Numeric,
        tax_total -> Numeric,
        total -> Numeric,
        fx_rate -> Nullable<Numeric>,
        fx_rate_date -> Nullable<Date>,
        taxable_value_inr -> Numeric,
        reason -> Text,
        created_by -> Text,
        created_at -> Timestamptz,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    finance_invoice_lines (invoice_id, line_no) {
        invoice_id -> Int8,
        line_no -> Int4,
        kind -> Text,
        description -> Text,
        modality -> Nullable<Text>,
        tier -> Nullable<Int4>,
        unit_price -> Nullable<Numeric>,
        quantity -> Int4,
        amount -> Numeric,
    }
}

diesel::table! {
    finance_invoices (id) {
        id -> Int8,
        invoice_number -> Text,
        kind -> Text,
        client_id -> Text,
        period -> Text,
        run_id -> Int8,
        issue_date -> Date,
        financial_year -> Text,
        #[max_length = 3]
        currency -> Bpchar,
        client_rule_version -> Nullable<Int4>,
        billable_reports -> Int4,
        taxable_value -> Numeric,
        tax_treatment -> Text,
        cgst_rate_pct -> Nullable<Numeric>,
        cgst_amount -> Numeric,
        sgst_rate_pct -> Nullable<Numeric>,
        sgst_amount -> Numeric,
        igst_rate_pct -> Nullable<Numeric>,
        igst_amount -> Numeric,
        tax_total -> Numeric,
        total -> Numeric,
        endorsement -> Nullable<Text>,
        fx_rate -> Nullable<Numeric>,
        fx_rate_date -> Nullable<Date>,
        taxable_value_inr -> Numeric,
        client_gstin -> Nullable<Text>,
        place_of_supply -> Nullable<Text>,
        corrects_invoice_id -> Nullable<Int8>,
        created_by -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    fx_rates (id) {
        id -> Int8,
        rate_date -> Date,
        #[max_length = 3]
        currency -> Bpchar,
        inr_per_unit -> Numeric,
        source -> Text,
        fetched_at -> Timestamptz,
    }
}

diesel::table! {
    held_reports (id) {
        id -> Int8,
        report_id -> Text,
        revision -> Int8,
        client_id -> Text,
        provider_id -> Text,
        period -> Text,
        status -> Text,
        reason -> Text,
        event -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    /// Partitioned by LIST (period); reached through the parent only.
    ledger_entries (period, id) {
        id -> Int8,
        period -> Text,
        run_id -> Int8,
        report_id -> Nullable<Text>,
        revision -> Nullable<Int8>,
        side -> Text,
        client_id -> Text,
        provider_id -> Nullable<Text>,
        modality -> Text,
        grade -> Text,
        status -> Nullable<Text>,
        #[max_length = 3]
        currency -> Bpchar,
        amount -> Numeric,
        fx_rate -> Nullable<Numeric>,
        fx_rate_date -> Nullable<Date>,
        fx_source -> Nullable<Text>,
        amount_inr -> Numeric,
        rule_version -> Nullable<Int4>,
        created_at -> Timestamptz,
        line -> Text,
        entry_kind -> Text,
        adjusts_id -> Nullable<Int8>,
        reason -> Nullable<Text>,
        book_version -> Nullable<Int8>,
        line_no -> Nullable<Int4>,
    }
}

diesel::table! {
    ledger_facts (id) {
        id -> Int8,
        period -> Text,
        client_id -> Text,
        run_id -> Int8,
        report_id -> Nullable<Text>,
        revision -> Nullable<Int8>,
        outcome -> Text,
        book_version -> Int8,
        priced_at -> Timestamptz,
        fact -> Bytea,
        applied_at -> Timestamptz,
    }
}

diesel::table! {
    live_books (period, client_id, run_id) {
        period -> Text,
        client_id -> Text,
        run_id -> Int8,
        version -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    margin_summary (period, client_id, modality, grade) {
        period -> Text,
        client_id -> Text,
        modality -> Text,
        grade -> Text,
        reports -> Int8,
        revenue_inr -> Numeric,
        cogs_inr -> Numeric,
        margin_inr -> Numeric,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    payout_statement_lines (statement_id, line_no) {
        statement_id -> Int8,
        line_no -> Int4,
        description -> Text,
        modality -> Nullable<Text>,
        quantity -> Int4,
        amount -> Numeric,
    }
}

diesel::table! {
    payout_statements (id) {
        id -> Int8,
        statement_number -> Text,
        kind -> Text,
        provider_id -> Text,
        period -> Text,
        run_id -> Int8,
        issue_date -> Date,
        financial_year -> Text,
        #[max_length = 3]
        currency -> Bpchar,
        reports -> Int4,
        gross -> Numeric,
        fees_earlier_in_year -> Numeric,
        pan_present -> Bool,
        tds_section -> Text,
        tds_rate_pct -> Numeric,
        tds_base -> Numeric,
        tds_amount -> Numeric,
        net_payable -> Numeric,
        corrects_statement_id -> Nullable<Int8>,
        created_by -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    period_states (id) {
        id -> Int8,
        period -> Text,
        state -> Text,
        run_id -> Nullable<Int8>,
        actor -> Text,
        reason -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::table! {
    pricing_runs (run_id) {
        run_id -> Int8,
        period -> Text,
        kind -> Text,
        rules_as_of -> Nullable<Timestamptz>,
        reason -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    provider_pricing_rules (version) {
        version -> Int4,
        effective_from -> Date,
        recorded_at -> Timestamptz,
        recorded_by -> Text,
        document -> Text,
    }
}

diesel::table! {
    providers (id) {
        id -> Int8,
        provider_id -> Text,
        name -> Text,
        grade -> Text,
        practicing_since -> Date,
        pan -> Nullable<Text>,
        effective_from -> Date,
        recorded_at -> Timestamptz,
        recorded_by -> Text,
    }
}

diesel::table! {
    report_outbox (seq) {
        seq -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    reports (seq) {
        seq -> Int8,
        report_id -> Text,
        revision -> Int8,
        client_id -> Text,
        provider_id -> Text,
        modality -> Text,
        body_regions -> Int2,
        priority -> Text,
        finalized_at -> Timestamptz,
        status -> Text,
        period -> Text,
        received_at -> Timestamptz,
    }
}

diesel::joinable!(finance_credit_note_lines -> finance_credit_notes (credit_note_id));
diesel::joinable!(finance_credit_notes -> finance_invoices (corrects_invoice_id));
diesel::joinable!(finance_credit_notes -> pricing_runs (run_id));
diesel::joinable!(finance_invoice_lines -> finance_invoices (invoice_id));
diesel::joinable!(finance_invoices -> pricing_runs (run_id));
diesel::joinable!(ledger_entries -> pricing_runs (run_id));
diesel::joinable!(ledger_facts -> pricing_runs (run_id));
diesel::joinable!(live_books -> pricing_runs (run_id));
diesel::joinable!(payout_statement_lines -> payout_statements (statement_id));
diesel::joinable!(payout_statements -> pricing_runs (run_id));
diesel::joinable!(period_states -> pricing_runs (run_id));
diesel::joinable!(report_outbox -> reports (seq));

diesel::allow_tables_to_appear_in_same_query!(
    audit_chain_head,
    reference_clock,
    audit_log,
    client_pricing_rules,
    clients,
    document_numbers,
    finance_credit_note_lines,
    finance_credit_notes,
    finance_invoice_lines,
    finance_invoices,
    fx_rates,
    held_reports,
    ledger_entries,
    ledger_facts,
    live_books,
    margin_summary,
    payout_statement_lines,
    payout_statements,
    period_states,
    pricing_runs,
    provider_pricing_rules,
    providers,
    report_outbox,
    reports,
    rerun_manifests,
    sync_runs,
);

diesel::table! {
    rerun_manifests (run_id) {
        run_id -> Int8,
        period -> Text,
        compared_run_id -> Int8,
        report_set_hash -> Text,
        manifest -> Jsonb,
        created_at -> Timestamptz,
        comparison -> Nullable<Jsonb>,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> Int8,
        trigger -> Text,
        source -> Text,
        source_table -> Text,
        window_start -> Timestamptz,
        window_end -> Timestamptz,
        started_at -> Timestamptz,
        finished_at -> Timestamptz,
        duration_ms -> Int8,
        read_count -> Int8,
        new_count -> Int8,
        changed_count -> Int8,
        unchanged_count -> Int8,
        rejected_count -> Int8,
        rejected -> Jsonb,
        outcome -> Text,
        error -> Nullable<Text>,
    }
}
