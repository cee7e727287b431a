//! `export …`: the API's CSV files from a terminal or a cron job — the same columns, order,
//! bounds and file names (`capstats_services::export` writes both).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Subcommand};

use capstats_capacity_model::PeriodType;
use capstats_services::export;
use capstats_services::planning::{self, ForecastOptions};
use capstats_settings::Settings;
use capstats_store::PgConnection;
use capstats_store::aggregates::{self, MetricColumn, PageRequest};
use capstats_store::sessions::SessionFilter;
use capstats_sync_session::{SessionStatus, SyncCategory, SyncType};

use crate::report::{FilterArgs, GrowthArgs, instance_ids_by_name};
use capstats_services::planning::period_window;

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Every stored aggregate of the level matching the filter, newest first
    /// (`GET /capacity/{instances|databases}?format=csv`).
    Aggregates {
        #[command(flatten)]
        keys: FilterArgs,
        /// daily (default), weekly, monthly, quarterly or yearly.
        #[arg(long, value_parser = crate::parse_period_type, default_value = "daily")]
        period_type: PeriodType,
        /// Periods starting on or after this day (YYYY-MM-DD).
        #[arg(long)]
        from: NaiveDate,
        /// Periods starting on or before this day (default today).
        #[arg(long)]
        to: Option<NaiveDate>,
        #[command(flatten)]
        file: FileArgs,
    },
    /// The points of a chart: the `--top` lines with the largest latest value over the last
    /// `--periods` periods (`GET /capacity/…/series?format=csv`).
    Series {
        #[command(flatten)]
        keys: FilterArgs,
        /// What to plot: a metric of the level (as the API names it; default total_size_mb
        /// for instances, avg_size_mb for databases).
        #[arg(long)]
        metric: Option<String>,
        /// daily (default), weekly, monthly, quarterly or yearly.
        #[arg(long, value_parser = crate::parse_period_type, default_value = "daily")]
        period_type: PeriodType,
        /// Periods in the window, ending with the one containing --end-date (1–366).
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u16).range(1..=366))]
        periods: u16,
        /// A day of the window's last period (default today).
        #[arg(long)]
        end_date: Option<NaiveDate>,
        /// Lines, 1–100.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=100))]
        top: i64,
        #[command(flatten)]
        file: FileArgs,
    },
    /// The growth leaderboard with each key's forecast (`GET /capacity/…/growth?format=csv`).
    Growth {
        #[command(flatten)]
        keys: FilterArgs,
        #[command(flatten)]
        ranking: GrowthArgs,
        #[command(flatten)]
        forecast: ForecastArgs,
        #[command(flatten)]
        file: FileArgs,
    },
    /// Each key's forecast, fewest days until full first (`GET /capacity/…/forecast?format=csv`).
    Forecast {
        #[command(flatten)]
        keys: FilterArgs,
        /// The day the forecasts are made on (default today).
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// Only the keys with a capacity limit, the only ones that can fill up.
        #[arg(long)]
        with_capacity_limit: bool,
        #[command(flatten)]
        forecast: ForecastArgs,
        #[command(flatten)]
        file: FileArgs,
    },
    /// The runs (sync sessions), newest first (`GET /sync-sessions?format=csv`).
    Sessions {
        /// Only runs in this state (repeatable): pending, running, completed, failed,
        /// cancelled.
        #[arg(long)]
        status: Vec<SessionStatus>,
        /// Only this category: aggregation or capacity.
        #[arg(long)]
        category: Option<SyncCategory>,
        /// Only this type: scheduled_task, manual_task or manual_batch.
        #[arg(long = "type")]
        sync_type: Option<SyncType>,
        #[command(flatten)]
        file: FileArgs,
    },
    /// One run's per-instance records (`GET /sync-sessions/{id}?format=csv`).
    SessionRecords {
        /// The session id.
        id: i64,
        #[command(flatten)]
        file: FileArgs,
    },
    /// The daily database samples, as `import-stats` reads them back.
    Samples {
        /// First collected date (YYYY-MM-DD).
        #[arg(long)]
        from: NaiveDate,
        /// Last collected date (default today).
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Only this instance, by name (repeatable).
        #[arg(long = "instance")]
        instances: Vec<String>,
        #[command(flatten)]
        file: FileArgs,
    },
}

/// How far forecasts look, and how many keys a ranked file holds.
#[derive(Args)]
pub struct ForecastArgs {
    /// Days ahead the forecasts project to (1–3660).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=i64::from(planning::MAXIMUM_HORIZON_DAYS)))]
    horizon_days: u32,
    /// Only the first keys of the ranking (default: every key).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    limit: Option<i64>,
}

impl ForecastArgs {
    fn first(&self) -> PageRequest {
        PageRequest {
            page: 1,
            limit: self.limit.unwrap_or(i64::MAX),
        }
    }
}

/// Where the file goes.
#[derive(Args)]
pub struct FileArgs {
    /// The file to write (`-`: standard output). Default: the name the API gives the same
    /// export, in the current directory.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Runs an export command.
pub fn export(
    settings: &Settings,
    connection: &mut PgConnection,
    command: ExportCommand,
) -> anyhow::Result<()> {
    let today = settings.today();
    let maximum_rows = settings.export_maximum_rows;
    match command {
        ExportCommand::Aggregates {
            keys,
            period_type,
            from,
            to,
            file,
        } => {
            let filter = keys.filter(connection, period_type, (from, to.unwrap_or(today)))?;
            let level = keys.level();
            write(
                &file,
                &export::aggregates_file_name(level, &filter),
                |output| export::aggregates(connection, level, &filter, maximum_rows, output),
            )
        }
        ExportCommand::Series {
            keys,
            metric,
            period_type,
            periods,
            end_date,
            top,
            file,
        } => {
            let level = keys.level();
            let metric = match metric {
                None => MetricColumn::of_level(level)[0],
                Some(name) => MetricColumn::parse(level, &name).with_context(|| {
                    let known: Vec<&str> = MetricColumn::of_level(level)
                        .iter()
                        .map(|metric| metric.name())
                        .collect();
                    format!(
                        "--metric {name}: not a {level} metric; expected one of {}",
                        known.join(", ")
                    )
                })?,
            };
            let (first, last) = period_window(period_type, end_date.unwrap_or(today), periods);
            let filter = keys.filter(connection, period_type, (first.start(), last.start()))?;
            write(
                &file,
                &export::series_file_name(level, metric, &filter),
                |output| {
                    let ranked = aggregates::series(connection, level, metric, &filter, top)?;
                    export::series(ranked, metric, period_type, output)
                },
            )
        }
        ExportCommand::Growth {
            keys,
            ranking,
            forecast,
            file,
        } => {
            let (as_of, filter) = ranking.window(connection, &keys, today)?;
            let level = keys.level();
            let options = ForecastOptions::new(settings, as_of, forecast.horizon_days);
            write(&file, &export::growth_file_name(level, &filter), |output| {
                let ranked = planning::growth_leaderboard(
                    connection,
                    level,
                    &filter,
                    ranking.order(),
                    &options,
                    forecast.first(),
                )?;
                export::growth(ranked.entries, as_of, forecast.horizon_days, output)
            })
        }
        ExportCommand::Forecast {
            keys,
            as_of,
            with_capacity_limit,
            forecast,
            file,
        } => {
            let as_of = as_of.unwrap_or(today);
            let filter = keys.filter(connection, PeriodType::Daily, (as_of, as_of))?;
            let level = keys.level();
            let options = ForecastOptions::new(settings, as_of, forecast.horizon_days);
            let name = export::forecast_file_name(level, as_of, forecast.horizon_days);
            write(&file, &name, |output| {
                let found = planning::forecasts(
                    connection,
                    level,
                    &filter,
                    planning::KeySelection::of_capacity_limit(with_capacity_limit),
                    &options,
                )?;
                export::forecasts(
                    forecast.first().of(found),
                    as_of,
                    forecast.horizon_days,
                    output,
                )
            })
        }
        ExportCommand::Sessions {
            status,
            category,
            sync_type,
            file,
        } => {
            let filter = SessionFilter {
                statuses: status,
                sync_category: category,
                sync_type,
            };
            write(&file, &export::sessions_file_name(today), |output| {
                export::sessions(connection, &filter, maximum_rows, output)
            })
        }
        ExportCommand::SessionRecords { id, file } => {
            write(&file, &export::session_records_file_name(id), |output| {
                export::session_records(connection, id, output)
            })
        }
        ExportCommand::Samples {
            from,
            to,
            instances,
            file,
        } => {
            let to = to.unwrap_or(today);
            let ids = instance_ids_by_name(connection, &instances)?;
            write(&file, &export::samples_file_name(from, to), |output| {
                export::samples(connection, from, to, &ids, maximum_rows, output)
            })
        }
    }
}

/// Writes an export to `file` (default `default_name`), through a `.partial` file renamed
/// when complete, so that a failed export leaves no file that looks whole; reports the rows
/// on standard error.
fn write(
    file: &FileArgs,
    default_name: &str,
    write: impl FnOnce(&mut dyn Write) -> Result<u64, capstats_services::ServiceError>,
) -> anyhow::Result<()> {
    let path = file
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_name));
    if path == Path::new("-") {
        let stdout = std::io::stdout();
        let mut output = BufWriter::new(stdout.lock());
        let rows = write(&mut output)?;
        output.flush()?;
        eprintln!("{rows} rows written");
        return Ok(());
    }
    let mut partial = path.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let created =
        File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut output = BufWriter::new(created);
    let written = write(&mut output)
        .map_err(anyhow::Error::from)
        .and_then(|rows| {
            output.flush()?;
            Ok(rows)
        });
    drop(output);
    match written {
        Ok(rows) => {
            std::fs::rename(&partial, &path)
                .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
            eprintln!("{rows} rows written to {}", path.display());
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}
