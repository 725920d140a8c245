//! radfin-db's integration tests: one binary, a real PostgreSQL (see `radfin_db::testing`),
//! each test in a database of its own, so they run in parallel.

mod append_only;
mod audit_chain;
mod fx;
mod fx_manual;
mod held;
mod ledger;
mod migrations;
mod parties_rules;
mod reports;
mod retry;
mod runs;
mod support;
mod sync_runs;
