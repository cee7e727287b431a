//! `capstats-api`: the API server's binary. It only wires the libraries together.
#![doc = include_str!("../README.md")]

use std::process::ExitCode;

use anyhow::Context;
use capstats_settings::Settings;
use clap::{Parser, Subcommand};

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
        /// If the user exists, set its password and role instead of failing (a password
        /// reset: every sign-in session of the user ends).
        #[arg(long)]
        update: bool,
    },
    /// End every sign-in session of a user (their cookies stop working at once).
    EndSessions {
        /// The login name.
        #[arg(long)]
        username: String,
    },
    /// Read the audit trail, newest first: sign-ins, token changes, every write through the
    /// API.
    Audit {
        /// Actions starting with this text (`auth.`, `instances.update`).
        #[arg(long)]
        action: Option<String>,
        /// Events of this user name (or the name a failed sign-in tried).
        #[arg(long)]
        username: Option<String>,
        /// success, failure or denied.
        #[arg(long, value_parser = ["success", "failure", "denied"])]
        outcome: Option<String>,
        /// Events at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// How many events to print.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "capstats-api: {}",
                capstats_settings::one_line_error(error.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

/// Serves the API, queueing runs on the job store.
async fn serve(settings: Settings) -> anyhow::Result<()> {
    // One direct connection first: the job store's pool only reports that it timed out, this
    // says which host and port failed and why, within the connect timeout.
    let (url, timeout) = (
        settings.database_url.clone(),
        settings.database_connect_timeout(),
    );
    tokio::task::spawn_blocking(move || capstats_store::connect(&url, timeout))
        .await?
        .context("connecting to DATABASE_URL")?;
    let queue = capstats_queue::PostgresQueue::connect(
        &settings.database_url,
        settings.job_store_pool_size,
        settings.job_max_attempts,
    )
    .await
    .context("connecting to the job store")?;
    capstats_http_api::serve(settings, std::sync::Arc::new(queue)).await?;
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_environment()?;
    capstats_settings::init_tracing(settings.log_format, settings.log_color);
    match cli.command {
        Command::Migrate => migrate(&settings),
        Command::Serve => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve(settings)),
        Command::Openapi => {
            println!("{}", capstats_http_api::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::CreateUser {
            username,
            role,
            update,
        } => create_user(&settings, &username, &role, update),
        Command::EndSessions { username } => {
            let mut connection = connect(&settings)?;
            let user = capstats_store::accounts::find_user_by_name(&mut connection, &username)?
                .ok_or_else(|| anyhow::anyhow!("no user named `{username}`"))?;
            let ended = capstats_store::accounts::end_user_sessions(
                &mut connection,
                user.id,
                "ended from the command line",
            )?;
            println!("{ended} sign-in sessions of {username} ended");
            Ok(())
        }
        Command::Audit {
            action,
            username,
            outcome,
            since,
            limit,
            json,
        } => {
            let mut connection = connect(&settings)?;
            let filter = capstats_store::audit::AuditFilter {
                action_prefix: action,
                username,
                outcome,
                since,
                until: None,
            };
            let (events, total) =
                capstats_store::audit::list(&mut connection, &filter, 0, limit.clamp(1, 10_000))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&events)?);
            } else {
                print_audit(&events, total);
            }
            Ok(())
        }
    }
}

fn connect(settings: &Settings) -> anyhow::Result<capstats_store::PgConnection> {
    let mut connection =
        capstats_store::connect(&settings.database_url, settings.database_connect_timeout())
            .context("connecting to DATABASE_URL")?;
    capstats_store::migrations::ensure_current(&mut connection)?;
    Ok(connection)
}

fn print_audit(events: &[capstats_store::audit::AuditEvent], total: i64) {
    let dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(vec![
            "time (UTC)",
            "action",
            "outcome",
            "user",
            "token",
            "address",
            "status",
            "target",
        ]);
    for recorded in events {
        let event = &recorded.event;
        table.add_row(vec![
            recorded.occurred_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            event.action.clone(),
            event.outcome.clone(),
            dash(event.username.clone()),
            dash(event.token_id.map(|id| id.to_string())),
            dash(event.client_address.clone()),
            dash(event.http_status.map(|status| status.to_string())),
            dash(event.target.clone()),
        ]);
    }
    println!("{table}");
    println!("{} of {total} matching events", events.len());
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
    let hash = capstats_http_api::auth::hash_password(password)?;
    let mut connection = connect(settings)?;
    let existing = capstats_store::accounts::find_user_by_name(&mut connection, username)?;
    let user = match (existing, update) {
        (Some(_), true) => {
            capstats_store::accounts::update_user(&mut connection, username, &hash, role)?
        }
        (Some(_), false) => {
            anyhow::bail!("a user named `{username}` already exists (pass --update to reset it)")
        }
        (None, _) => capstats_store::accounts::create_user(&mut connection, username, &hash, role)?,
    };
    println!("user {} ({}) is ready", user.username, user.role);
    Ok(())
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let url = &settings.database_url;
    let timeout = settings.database_connect_timeout();
    if capstats_store::migrations::create_database_if_missing(url, timeout)
        .context("connecting to DATABASE_URL")?
    {
        tracing::info!("created the database named in DATABASE_URL");
    }
    let mut connection =
        capstats_store::connect(url, timeout).context("connecting to DATABASE_URL")?;
    let applied = capstats_store::migrations::run_pending(&mut connection)?;
    capstats_queue::job_store::setup_blocking(url)?;
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
