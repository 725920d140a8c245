//! `audit`: the audit log, newest first.

use std::io::Write;

use radfin_proto::ledger::v1::ListAuditEventsRequest;

use super::{CliError, Ctx, Rpc};
use crate::table::{self, or_dash};

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// How many events, newest first (at most 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
}

pub async fn audit(ctx: &Ctx, args: &AuditArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let response = ctx
        .ledger()
        .await?
        .list_audit_events(ListAuditEventsRequest { limit: args.limit })
        .await
        .rpc(&ctx.ledger, "ListAuditEvents")?;
    ctx.emit(out, &response, |out| {
        if response.events.is_empty() {
            return writeln!(out, "no audit events");
        }
        let mut t = table::with_numeric(&["#", "At", "Actor", "Role", "Action", "Target", "Outcome", "Reason"], &[0]);
        for e in &response.events {
            t.add_row(vec![
                e.id.to_string(),
                e.at.clone(),
                or_dash(&e.actor),
                or_dash(&e.role),
                e.action.clone(),
                or_dash(&e.target),
                e.outcome.clone(),
                or_dash(&e.reason),
            ]);
        }
        writeln!(out, "{t}")
    })
}
