//! `dead-letters`: the messages a consumer gave up on, oldest first; `dead-letters redrive SEQ`:
//! one republished to the subject it came from (role finance, audited).

use std::io::Write;

use radfin_proto::ingest::v1::{ListDeadLettersRequest, RedriveDeadLetterRequest};

use super::{CliError, Ctx, Rpc, exit};
use crate::table::{self, or_dash};

#[derive(clap::Args, Debug)]
pub struct DeadLettersArgs {
    #[command(subcommand)]
    pub command: Option<DeadLettersCommand>,
    /// Only dead letters after this seq (the last seq of the previous page).
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub after: u64,
    /// How many dead letters, oldest first (at most 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
}

#[derive(clap::Subcommand, Debug)]
pub enum DeadLettersCommand {
    /// Republish a dead letter to the subject it came from and remove it from the dead letters
    /// (role finance; audited). The consumers are idempotent: nothing is booked twice.
    Redrive(RedriveArgs),
}

#[derive(clap::Args, Debug)]
pub struct RedriveArgs {
    /// The dead letter's seq, as `radfin dead-letters` lists it.
    pub seq: u64,
    /// Why it is redriven (kept in the audit log).
    #[arg(long)]
    pub reason: String,
}

pub async fn dead_letters(ctx: &Ctx, args: &DeadLettersArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if let Some(DeadLettersCommand::Redrive(args)) = &args.command {
        return redrive(ctx, args, out).await;
    }
    let response = ctx
        .ingest()
        .await?
        .list_dead_letters(ListDeadLettersRequest { after_seq: args.after, limit: args.limit })
        .await
        .rpc(&ctx.ingest, "ListDeadLetters")?;
    ctx.emit(out, &response, |out| {
        if response.dead_letters.is_empty() {
            return writeln!(out, "no dead letters");
        }
        let mut t =
            table::with_numeric(&["Seq", "When", "Consumer", "Original subject", "Delivered", "Reason"], &[0, 4]);
        for d in &response.dead_letters {
            t.add_row(vec![
                d.seq.to_string(),
                d.dead_lettered_at.clone(),
                or_dash(&d.consumer),
                or_dash(&d.original_subject),
                d.delivered.to_string(),
                or_dash(&d.reason),
            ]);
        }
        writeln!(out, "{t}")?;
        if response.dead_letters.len() == args.limit as usize {
            writeln!(out, "more may follow: radfin dead-letters --after {}", response.next_after_seq)?;
        }
        Ok(())
    })
}

async fn redrive(ctx: &Ctx, args: &RedriveArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if args.reason.trim().is_empty() {
        return Err(CliError::invalid("--reason must say why the dead letter is redriven"));
    }
    let response = ctx
        .ingest()
        .await?
        .redrive_dead_letter(RedriveDeadLetterRequest { seq: args.seq, reason: args.reason.clone() })
        .await
        .rpc(&ctx.ingest, "RedriveDeadLetter")
        .map_err(|e| e.hint(exit::NOT_FOUND, "`radfin dead-letters` lists the dead letters"))?;
    ctx.emit(out, &response, |out| {
        writeln!(
            out,
            "dead letter {} redriven to {} (stream sequence {})",
            response.seq, response.subject, response.stream_sequence
        )
    })
}
