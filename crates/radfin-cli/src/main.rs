//! `radfin`, the operator command line.

mod connect;
mod demo;
mod month_end;
mod ops;
mod samples;
mod simulate;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "radfin", version, about = "radfin operator command line", long_about = ops::LONG_ABOUT)]
struct Cli {
    #[command(flatten)]
    global: ops::Global,
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
    #[command(flatten)]
    Ops(ops::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => simulate::run(&args, &mut std::io::stdout().lock()).map_err(failed),
        Command::Demo(args) => {
            runtime().and_then(|rt| rt.block_on(demo::run(&args, &mut std::io::stdout().lock()))).map_err(failed)
        }
        Command::Migrate { database_url } => runtime()
            .and_then(|rt| Ok(rt.block_on(radfin_db::migrate(&database_url))?))
            .map(|()| println!("migrations applied"))
            .map_err(failed),
        Command::Ops(command) => runtime()
            .map_err(failed)
            .and_then(|rt| rt.block_on(ops::run(command, &cli.global, &mut std::io::stdout().lock()))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("radfin: {e}");
            ExitCode::from(e.code)
        }
    }
}

fn failed(e: anyhow::Error) -> ops::CliError {
    ops::CliError::other(format!("{e:#}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
