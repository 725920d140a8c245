DROP TABLE period_states;
DROP TABLE payout_statement_lines;
DROP TABLE payout_statements;
DROP TABLE finance_credit_note_lines;
DROP TABLE finance_credit_notes;
DROP TABLE finance_invoice_lines;
DROP TABLE finance_invoices;
DROP TABLE document_numbers;
