//! `capstats-api`: the API server's binary. It only wires the libraries together.
#![doc = include_str!("../README.md")]

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
    /// Serve the JSON API on CAPSTATS_API_BIND until SIGTERM.
    Serve,
    /// Print the OpenAPI description (the content of openapi/openapi.json).
    Openapi,
    /// Create a user; the password is read from standard input (one line).
    CreateUser {
        /// The login name.
        #[arg(long)]
        username: String,
        /// admin (may write) or viewer (reads only).
        #[arg(long, value_parser = ["admin", "viewer"])]
        role: String,
        /// If the user exists, set its password and role instead of failing.
        #[arg(long)]
        update: bool,
    },
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
        Command::Serve => {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(api::serve(settings))?;
            Ok(())
        }
        Command::Openapi => {
            println!("{}", api::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::CreateUser {
            username,
            role,
            update,
        } => create_user(&settings, &username, &role, update),
    }
}

fn create_user(
    settings: &Settings,
    username: &str,
    role: &str,
    update: bool,
) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 8 {
        anyhow::bail!("the password must have at least 8 characters");
    }
    if username.trim().is_empty() {
        anyhow::bail!("the username must not be empty");
    }
    let hash = api::auth::hash_password(password)?;
    let mut connection = store::PgConnection::establish(&settings.database_url)
        .context("connecting to DATABASE_URL")?;
    store::migrations::ensure_current(&mut connection)?;
    let existing = store::accounts::find_user_by_name(&mut connection, username)?;
    let user = match (existing, update) {
        (Some(_), true) => store::accounts::update_user(&mut connection, username, &hash, role)?,
        (Some(_), false) => {
            anyhow::bail!("a user named `{username}` already exists (pass --update to reset it)")
        }
        (None, _) => store::accounts::create_user(&mut connection, username, &hash, role)?,
    };
    println!("user {} ({}) is ready", user.username, user.role);
    Ok(())
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
