//! radfin-pricing's integration tests: one binary, one module per area.

mod fx_feed;
mod supervision;
