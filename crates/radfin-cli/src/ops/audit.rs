//! `audit`: the audit log, newest first; `audit verify`: its hash chain checked.

use std::io::Write;

use radfin_proto::ledger::v1::{ListAuditEventsRequest, VerifyAuditLogRequest};

use super::{CliError, Ctx, Rpc, exit};
use crate::table::{self, or_dash};

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// How many events, newest first (at most 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
}

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute the audit log's hash chain and name every altered, inserted or removed row;
    /// exits 7 when the chain is broken. Record the `last` it prints (outside the database) and
    /// pass it as --anchor next time to also catch a log rewritten and rehashed.
    Verify(VerifyArgs),
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// A position and hash from an earlier verification (`SEQ:HEX`), checked to be still there.
    #[arg(long, value_name = "SEQ:HEX")]
    pub anchor: Option<String>,
}

pub async fn audit(ctx: &Ctx, args: &AuditArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if let Some(AuditCommand::Verify(args)) = &args.command {
        return verify(ctx, args, out).await;
    }
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

async fn verify(ctx: &Ctx, args: &VerifyArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let response = ctx
        .ledger()
        .await?
        .verify_audit_log(VerifyAuditLogRequest { anchor: args.anchor.clone().unwrap_or_default() })
        .await
        .rpc(&ctx.ledger, "VerifyAuditLog")?;
    ctx.emit(out, &response, |out| {
        let last = if response.last.is_empty() { "-" } else { &response.last };
        writeln!(out, "rows checked: {}\nlast: {last}", response.rows_checked)?;
        if response.intact {
            return writeln!(out, "the audit log's hash chain is intact");
        }
        let mut t = table::with_numeric(&["Seq", "Id", "Problem", "What"], &[0, 1]);
        for p in &response.problems {
            let id = if p.id == 0 { "-".to_owned() } else { p.id.to_string() };
            t.add_row(vec![p.seq.to_string(), id, p.kind.clone(), p.message.clone()]);
        }
        writeln!(out, "{t}")?;
        if response.problems_omitted > 0 {
            writeln!(out, "… and {} more problems", response.problems_omitted)?;
        }
        Ok(())
    })?;
    if response.intact {
        return Ok(());
    }
    let first = response.problems.first().map_or_else(String::new, |p| format!(": {}", p.message));
    Err(CliError::new(
        exit::TAMPERED,
        format!(
            "the audit log's hash chain is broken ({} problems){first}",
            response.problems.len() as u64 + response.problems_omitted
        ),
    ))
}
