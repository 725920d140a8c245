//! `radfin`, the operator command line.

mod demo;
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
    /// Drive a generated month through the running services over gRPC and print what the
    /// ledger holds.
    Demo(demo::Args),
    /// Apply the database migrations (what the Kubernetes migration Job runs).
    Migrate {
        /// An owner's connection: the tables belong to this user, the services' roles own nothing.
        #[arg(long, env = "RADFIN_DATABASE_URL")]
        database_url: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Simulate(args) => simulate::run(&args, &mut std::io::stdout().lock()),
        Command::Demo(args) => runtime()?.block_on(demo::run(&args, &mut std::io::stdout().lock())),
        Command::Migrate { database_url } => {
            runtime()?.block_on(radfin_db::migrate(&database_url))?;
            println!("migrations applied");
            Ok(())
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}
