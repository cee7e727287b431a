//! `capstats-api`: the API server's binary. It only wires the libraries together.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use settings::Settings;
use store::Connection;

/// The capstats API server and its administrative commands. Configuration comes from
/// `DATABASE_URL` and `CAPSTATS_*` variables (see docs/configuration.md).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if it is missing, apply pending migrations and set up the job
    /// store. Run once per deploy; running it again changes nothing.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("capstats-api: {}", settings::one_line_error(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_environment()?;
    settings::init_tracing(settings.log_format);
    match cli.command {
        Command::Migrate => migrate(&settings),
    }
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let url = &settings.database_url;
    if store::migrations::create_database_if_missing(url)? {
        tracing::info!("created the database named in DATABASE_URL");
    }
    let mut connection =
        store::PgConnection::establish(url).context("connecting to DATABASE_URL")?;
    let applied = store::migrations::run_pending(&mut connection)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(jobs::job_store::setup(url))?;
    if applied.is_empty() {
        println!("schema is up to date; job store is ready");
    } else {
        println!(
            "applied {} migration{} ({}); job store is ready",
            applied.len(),
            if applied.len() == 1 { "" } else { "s" },
            applied.join(", ")
        );
    }
    Ok(())
}
