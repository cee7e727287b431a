//! `capstats-worker`: the worker's binary and operator commands. It only wires the libraries
//! together; the work itself lives in the `jobs` crate.
#![doc = include_str!("../README.md")]

mod alerts;
mod credentials;
mod export;
mod operate;
mod output;
mod progress;
mod report;

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use capstats_capacity_model::{AggregationLevel, PeriodType};
use capstats_settings::Settings;
use capstats_store::PgConnection;
use capstats_sync_session::{SessionStatus, SyncType};
use chrono::{Days, NaiveDate};
use clap::{Parser, Subcommand, ValueEnum};

use crate::progress::TerminalProgress;

/// The capstats worker and its operator commands. Configuration comes from `DATABASE_URL` and
/// `CAPSTATS_*` variables (see docs/configuration.md).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the workers of the job queues and (unless CAPSTATS_SCHEDULER_ENABLED=false) the
    /// scheduler, until SIGTERM or SIGINT.
    Run,
    /// Inspect and control schedules.
    #[command(subcommand)]
    Schedules(operate::SchedulesCommand),
    /// Inspect and repair the job store.
    #[command(subcommand)]
    Jobs(operate::JobsCommand),
    /// Inspect runs (sync sessions).
    #[command(subcommand)]
    Sessions(operate::SessionsCommand),
    /// Capacity planning: the growth leaderboard and forecasts of when keys fill up.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Write CSV files of the capacity views, the runs or the samples: the API's exports
    /// (`format=csv`), same columns and file names.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Maintain the sealed collector passwords and alert channels (key rotation).
    #[command(subcommand)]
    Credentials(credentials::CredentialsCommand),
    /// Manage alert rules and list their events.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// Load size history from a CSV file with the header
    /// instance_name,db_type,database_name,collected_date,size_mb,data_size_mb,log_size_mb.
    /// The whole file is checked first; a file with any problem writes nothing.
    ImportStats {
        /// The CSV file.
        file: PathBuf,
        /// Create instances the file names but capstats does not know yet.
        #[arg(long)]
        create_instances: bool,
    },
    /// Compute every period of a type whose start lies between two dates, for all active
    /// instances, recorded as a sync session.
    Aggregate {
        /// daily, weekly, monthly, quarterly or yearly.
        #[arg(long, value_parser = parse_period_type)]
        period_type: PeriodType,
        /// First date (YYYY-MM-DD).
        #[arg(long)]
        from: NaiveDate,
        /// Last date (YYYY-MM-DD).
        #[arg(long)]
        to: NaiveDate,
        /// Which aggregates to compute.
        #[arg(long, value_enum, default_value_t = LevelChoice::All)]
        level: LevelChoice,
        /// Batches computed at once, each on its own connection (default:
        /// CAPSTATS_BACKFILL_PARALLELISM, else one per CPU up to 4).
        #[arg(long)]
        parallelism: Option<usize>,
        /// Queue the backfill on the workers through the job store instead of computing it
        /// here; prints the session to follow (`sessions show`). An equal backfill already
        /// queued or running is not queued twice.
        #[arg(long, conflicts_with = "parallelism")]
        queue: bool,
    },
    /// Read today's database sizes from the monitored servers now (every active PostgreSQL and
    /// MySQL instance with a host and a connection user, or the named ones), recorded as a
    /// capacity sync session.
    Collect {
        /// Only this instance (by name; repeatable).
        #[arg(long = "instance")]
        instances: Vec<String>,
    },
    /// Generate a realistic demo dataset ending yesterday (in the business time zone).
    SeedDemo {
        /// Number of instances.
        #[arg(long, default_value_t = 20)]
        instances: u32,
        /// Databases per instance.
        #[arg(long, default_value_t = 10)]
        databases_per_instance: u32,
        /// Days of history.
        #[arg(long, default_value_t = 400)]
        days: u32,
        /// Seed of the random generator: the same seed writes the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LevelChoice {
    Database,
    Instance,
    All,
}

impl LevelChoice {
    fn scope(self) -> capstats_services::payloads::LevelScope {
        use capstats_services::payloads::LevelScope;
        match self {
            Self::Database => LevelScope::Database,
            Self::Instance => LevelScope::Instance,
            Self::All => LevelScope::All,
        }
    }

    fn levels(self) -> Vec<AggregationLevel> {
        self.scope().levels()
    }
}

fn parse_period_type(text: &str) -> Result<PeriodType, String> {
    text.parse().map_err(|error| format!("{error}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "capstats-worker: {}",
                capstats_settings::one_line_error(error.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_environment()?;
    capstats_settings::init_tracing(settings.log_format, settings.log_color);
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")
    };
    let command = match cli.command {
        Command::Run => {
            let runtime = runtime()?;
            let result = runtime.block_on(capstats_queue::worker::run(settings));
            // An aggregation still running after the shutdown timeout occupies a blocking
            // thread that cannot be interrupted; dropping the runtime would wait for it. Exit
            // instead: its transaction rolls back and another worker re-runs the job.
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            return Ok(result?);
        }
        Command::Schedules(command) => {
            return runtime()?.block_on(operate::schedules(&settings, command));
        }
        Command::Jobs(command) => return runtime()?.block_on(operate::jobs(&settings, command)),
        Command::Aggregate {
            period_type,
            from,
            to,
            level,
            queue: true,
            ..
        } => {
            return runtime()?.block_on(operate::queue_backfill(
                &settings,
                period_type,
                from,
                to,
                level.scope(),
            ));
        }
        Command::Sessions(command) => {
            return runtime()?.block_on(operate::sessions(&settings, command));
        }
        Command::Credentials(command) => {
            return runtime()?.block_on(credentials::credentials(&settings, command));
        }
        Command::Alerts(command) => {
            return runtime()?.block_on(alerts::alerts(&settings, command));
        }
        Command::Collect { instances } => {
            return runtime()?.block_on(collect(&settings, instances));
        }
        other => other,
    };
    let mut connection =
        capstats_store::connect(&settings.database_url, settings.database_connect_timeout())
            .context("connecting to DATABASE_URL")?;
    capstats_store::migrations::ensure_current(&mut connection)?;
    let progress = TerminalProgress::new();
    match command {
        Command::ImportStats {
            file,
            create_instances,
        } => import_stats(
            &settings,
            &mut connection,
            &file,
            create_instances,
            &progress,
        ),
        Command::Aggregate {
            period_type,
            from,
            to,
            level,
            parallelism,
            queue: false,
        } => {
            let parallelism = parallelism.unwrap_or_else(|| settings.backfill_parallelism());
            let pool = capstats_store::build_pool(
                &settings.database_url,
                u32::try_from(parallelism + 1).unwrap_or(u32::MAX),
                settings.database_connect_timeout(),
            )?;
            let request = capstats_services::backfill::BackfillRequest {
                period_type,
                from,
                to,
                levels: level.levels(),
                triggered_by: "cli".into(),
                sync_type: SyncType::ManualTask,
                parallelism,
                samples_kept_from: capstats_services::maintenance::Retention::of(&settings)
                    .samples_kept_from(settings.today()),
                today: settings.today(),
            };
            aggregate(&pool, &request, &progress)
        }
        Command::Report(command) => report::report(&settings, &mut connection, command),
        Command::Export(command) => export::export(&settings, &mut connection, command),
        Command::SeedDemo {
            instances,
            databases_per_instance,
            days,
            seed,
        } => {
            let options = capstats_services::seed::SeedOptions {
                instances,
                databases_per_instance,
                days,
                end_date: settings.today() - Days::new(1),
                seed,
            };
            seed_demo(&mut connection, &options, &progress)
        }
        Command::Run
        | Command::Schedules(_)
        | Command::Jobs(_)
        | Command::Sessions(_)
        | Command::Credentials(_)
        | Command::Alerts(_)
        | Command::Aggregate { queue: true, .. }
        | Command::Collect { .. } => {
            unreachable!("handled above")
        }
    }
}

fn import_stats(
    settings: &Settings,
    connection: &mut PgConnection,
    file: &PathBuf,
    create_instances: bool,
    progress: &TerminalProgress,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let reader = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let lines = capstats_services::import::parse_stats_csv(
        std::io::BufReader::new(reader),
        capstats_services::maintenance::Retention::of(settings).sample_dates(settings.today()),
        progress,
    )?;
    let report = capstats_services::import::import_stats(
        connection,
        &lines,
        create_instances,
        settings.time_zone(),
        progress,
    )?;
    let instances: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|line| line.instance_name.as_str())
        .collect();
    println!(
        "imported {} samples for {} instances ({} created), {} instance-days refreshed, {} periods marked for recomputation, in {:.1} s",
        report.lines,
        instances.len(),
        report.instances_created.len(),
        report.written.instance_days_refreshed,
        report.written.ledger_entries_marked,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn aggregate(
    pool: &capstats_store::ConnectionPool,
    request: &capstats_services::backfill::BackfillRequest,
    progress: &TerminalProgress,
) -> anyhow::Result<()> {
    let report = capstats_services::backfill::run_backfill(pool, request, progress)?;
    let levels = request.levels.len();
    println!(
        "session {} {}: {} {} periods × {} level{}, {} rows written, {} rows deleted, in {:.1} s",
        report.session_id,
        report.status,
        report.periods,
        request.period_type,
        levels,
        if levels == 1 { "" } else { "s" },
        report.rows_written,
        report.rows_deleted,
        report.duration.as_secs_f64()
    );
    if report.status != SessionStatus::Completed {
        match report.failures.first() {
            Some(failure) => bail!("session {} {}: {failure}", report.session_id, report.status),
            None => bail!("session {} ended {}", report.session_id, report.status),
        }
    }
    Ok(())
}

fn seed_demo(
    connection: &mut PgConnection,
    options: &capstats_services::seed::SeedOptions,
    progress: &TerminalProgress,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let report = capstats_services::seed::seed_demo(connection, options, progress)?;
    println!(
        "seeded {} instances × {} databases × {} days ending {}: {} samples, {} instance-days, in {:.1} s",
        report.instances,
        options.databases_per_instance,
        options.days,
        options.end_date,
        report.samples,
        report.written.instance_days_refreshed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn collect(settings: &Settings, names: Vec<String>) -> anyhow::Result<()> {
    let collector = capstats_services::collection::CollectorSettings::from_settings(settings)?;
    let pool = capstats_store::build_pool(
        &settings.database_url,
        4,
        settings.database_connect_timeout(),
    )
    .context("connecting to DATABASE_URL")?;
    capstats_store::run_blocking(&pool, capstats_store::migrations::ensure_current).await?;
    let instance_ids = if names.is_empty() {
        None
    } else {
        let wanted = names.clone();
        let found = capstats_store::run_blocking(&pool, move |connection| {
            capstats_store::instances::find_by_names(connection, &wanted)
        })
        .await?;
        if let Some(unknown) = names
            .iter()
            .find(|name| !found.iter().any(|instance| &instance.name == *name))
        {
            bail!("unknown instance `{unknown}`");
        }
        // Every named instance is collected or the command says why not, as the API's
        // collect-now does: the collection itself reads only the instances it can.
        let named: Vec<_> = found
            .iter()
            .map(|instance| (instance.id, instance.name.clone()))
            .collect();
        let ids = named.iter().map(|(id, _)| *id).collect();
        capstats_store::run_blocking(&pool, move |connection| {
            capstats_services::collection::check_collectable(connection, &named)
        })
        .await?;
        Some(ids)
    };
    let job = capstats_services::payloads::CollectionJob {
        version: capstats_services::payloads::PAYLOAD_VERSION,
        instance_ids,
        trigger: capstats_services::payloads::Trigger::Manual {
            requested_by: "cli".into(),
            token_id: None,
        },
        logical_date: Some(settings.today()),
        session_id: None,
    };
    let report = capstats_services::collection::run_collection(
        &pool,
        &job,
        None,
        &capstats_services::worker_name(),
        &collector,
        settings.today(),
    )
    .await?;
    let session_id = report.session_id;
    let records = capstats_store::run_blocking(&pool, move |connection| {
        capstats_store::sessions::session_records(connection, session_id)
    })
    .await?;
    for record in records
        .iter()
        .filter(|record| record.error_message.is_some())
    {
        eprintln!(
            "{}: {}",
            record.instance_name,
            record.error_message.as_deref().unwrap_or_default()
        );
    }
    println!("{}", report.summary());
    if report.instances == 0 {
        bail!(
            "no instance to collect: an instance needs to be active, PostgreSQL or MySQL, and have a host and a connection user"
        );
    }
    if report.status != SessionStatus::Completed {
        bail!("session {} ended {}", report.session_id, report.status);
    }
    Ok(())
}
