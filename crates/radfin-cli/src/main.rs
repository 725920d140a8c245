//! `radfin`, the operator command line.

mod samples;
mod simulate;
mod table;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "radfin", version, about = "radfin operator command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Price a generated month offline from rule, party and FX files, and print its invoices,
    /// payouts and margins. Nothing is written anywhere.
    Simulate(simulate::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Simulate(args) => simulate::run(&args, &mut std::io::stdout().lock()),
    }
}
