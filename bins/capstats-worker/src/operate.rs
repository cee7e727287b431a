//! The operator subcommands: schedules, jobs and sessions.

use anyhow::Context;
use capstats_settings::Settings;
use clap::Subcommand;

use crate::output::{json, or_dash, table, time, zoned_time};

/// `capstats-worker schedules …`
#[derive(Subcommand)]
pub enum SchedulesCommand {
    /// Every schedule with its cron expression, state, next and last run.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop claiming ticks of a schedule (takes effect within a second).
    Pause {
        /// The schedule.
        name: String,
    },
    /// Claim ticks of a schedule again, from now on.
    Resume {
        /// The schedule.
        name: String,
    },
    /// Enqueue the schedule's job now, without the skip rule; prints the session id.
    Run {
        /// The schedule.
        name: String,
        /// Print JSON (`job_id`, `session_id`, `existing`) instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// The ticks a schedule would fire, in its zone and in UTC, computed as the scheduler does
    /// (DST days included); `--cron` and `--zone` try another expression or zone first.
    Preview {
        /// The schedule.
        name: String,
        /// An expression to preview instead of the schedule's.
        #[arg(long)]
        cron: Option<String>,
        /// An IANA time zone to read it in instead of the schedule's.
        #[arg(long)]
        zone: Option<String>,
        /// The first local day (YYYY-MM-DD).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// How many local days (1 to 366).
        #[arg(long, default_value_t = 1)]
        days: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replace a schedule's cron expression (5 fields, or 6 with seconds first).
    SetCron {
        /// The schedule.
        name: String,
        /// The expression, quoted.
        expression: String,
    },
    /// Change a schedule's cron expression, zone, misfire policy or catch-up limit (each
    /// validated; the scheduler picks the change up within a second).
    Set {
        /// The schedule.
        name: String,
        /// A cron expression, quoted.
        #[arg(long)]
        cron: Option<String>,
        /// An IANA time zone; "" for the business zone.
        #[arg(long)]
        zone: Option<String>,
        /// skip, run_once or catch_up.
        #[arg(long)]
        misfire: Option<String>,
        /// Most missed ticks catch_up runs (1 to 1000).
        #[arg(long)]
        catch_up_limit: Option<i64>,
    },
}

/// `capstats-worker jobs …`
#[derive(Subcommand)]
pub enum JobsCommand {
    /// Jobs in the job store, newest first.
    List {
        /// Only jobs with this status: pending, queued, running, done, failed or killed (the
        /// job store's words, not the sessions'; any other is refused).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
            ["pending", "queued", "running", "done", "failed", "killed"]
        ), ignore_case = true)]
        status: Option<String>,
        /// Only jobs of this queue (any other name is refused).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(capstats_queue::jobs::QUEUES))]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a finished (done, failed or killed) job again with a fresh attempt budget.
    Retry {
        /// The job id.
        id: String,
    },
    /// Stop a job from running again; a running run is asked to stop between chunks.
    Kill {
        /// The job id.
        id: String,
    },
    /// Delete finished jobs (and workers gone as long) older than a duration.
    Prune {
        /// For example 7d, 12h or 30m.
        #[arg(long)]
        older_than: String,
    },
}

/// `capstats-worker sessions …`
#[derive(Subcommand)]
pub enum SessionsCommand {
    /// The most recent runs.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One run with its per-instance records.
    Show {
        /// The session id.
        id: i64,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

struct Pools {
    store: capstats_store::ConnectionPool,
    job_store: capstats_queue::PostgresQueue,
}

async fn pools(settings: &Settings) -> anyhow::Result<Pools> {
    let store = capstats_store::build_pool(
        &settings.database_url,
        2,
        settings.database_connect_timeout(),
    )
    .context("connecting to DATABASE_URL")?;
    capstats_store::run_blocking(&store, capstats_store::migrations::ensure_current).await?;
    let job_store = capstats_queue::PostgresQueue::connect(
        &settings.database_url,
        2,
        settings.job_max_attempts,
    )
    .await?;
    Ok(Pools { store, job_store })
}

/// `aggregate --queue`: queues a backfill on the workers and says which session records it.
pub async fn queue_backfill(
    settings: &Settings,
    period_type: capstats_capacity_model::PeriodType,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    scope: capstats_services::payloads::LevelScope,
) -> anyhow::Result<()> {
    let pools = pools(settings).await?;
    let enqueued = capstats_services::control::queue_backfill(
        &pools.store,
        &pools.job_store,
        capstats_services::control::BackfillOrder {
            period_type,
            from,
            to,
            scope,
        },
        capstats_services::payloads::Trigger::manual("cli", None),
        capstats_services::maintenance::Retention::of(settings).samples_kept_from(settings.today()),
    )
    .await?;
    let session = enqueued
        .session_id
        .map_or_else(|| "-".to_owned(), |id| id.to_string());
    if enqueued.existing {
        println!(
            "an equal backfill is already queued or running: job {}, session {session}",
            enqueued.job_id
        );
    } else {
        println!(
            "backfill queued as job {}; session {session} (follow it with `sessions show {session}`)",
            enqueued.job_id
        );
    }
    Ok(())
}

/// Runs a schedules subcommand.
pub async fn schedules(settings: &Settings, command: SchedulesCommand) -> anyhow::Result<()> {
    let pools = pools(settings).await?;
    match command {
        SchedulesCommand::List { json: as_json } => {
            let views =
                capstats_services::control::list_schedules(&pools.store, settings.time_zone())
                    .await?;
            if as_json {
                return json(&views);
            }
            table(
                &[
                    "name",
                    "job",
                    "cron",
                    "zone",
                    "state",
                    "misfire",
                    "next run",
                    "last run",
                    "last session",
                ],
                views
                    .into_iter()
                    .map(|view| {
                        let zone: chrono_tz::Tz =
                            view.effective_time_zone.parse().unwrap_or(chrono_tz::UTC);
                        let local =
                            |at: Option<chrono::DateTime<chrono::Utc>>| zoned_time(at, zone);
                        vec![
                            view.schedule.name,
                            view.schedule.job_name,
                            view.schedule.cron_expression,
                            view.effective_time_zone,
                            if view.schedule.is_paused {
                                "paused"
                            } else {
                                "active"
                            }
                            .into(),
                            view.schedule.misfire_policy,
                            local(view.next_run_at),
                            local(view.last_run_at),
                            match (view.last_session_id, view.last_session_status) {
                                (Some(id), Some(status)) => format!("{id} ({status})"),
                                _ => "-".into(),
                            },
                        ]
                    })
                    .collect(),
            );
        }
        SchedulesCommand::Pause { name } => {
            capstats_services::control::set_paused(&pools.store, &name, true).await?;
            println!("schedule {name} paused");
        }
        SchedulesCommand::Resume { name } => {
            capstats_services::control::set_paused(&pools.store, &name, false).await?;
            println!("schedule {name} resumed");
        }
        SchedulesCommand::Run {
            name,
            json: as_json,
        } => {
            let enqueued = capstats_services::control::run_schedule_now(
                &pools.store,
                &pools.job_store,
                &name,
                capstats_services::payloads::Trigger::manual("cli", None),
                settings.today(),
            )
            .await?;
            if as_json {
                return json(&enqueued);
            }
            match enqueued.session_id {
                Some(session_id) => println!(
                    "schedule {name} enqueued as job {}; session {session_id}",
                    enqueued.job_id
                ),
                None => println!("schedule {name} enqueued as job {}", enqueued.job_id),
            }
        }
        SchedulesCommand::Preview {
            name,
            cron,
            zone,
            from,
            days,
            json: as_json,
        } => {
            let preview = capstats_services::control::preview_schedule(
                &pools.store,
                &name,
                cron.as_deref(),
                zone.as_deref(),
                settings.time_zone(),
                from,
                days,
            )
            .await?;
            if as_json {
                return json(&preview);
            }
            println!(
                "schedule {} `{}` in {}: {} ticks",
                preview.name,
                preview.cron_expression,
                preview.time_zone,
                preview.ticks.len()
            );
            table(
                &["local time", "UTC"],
                preview
                    .ticks
                    .into_iter()
                    .map(|tick| vec![tick.local, time(Some(tick.utc))])
                    .collect(),
            );
        }
        SchedulesCommand::SetCron { name, expression } => {
            let edit = capstats_services::control::ScheduleEdit {
                cron_expression: Some(expression),
                ..Default::default()
            };
            let schedule =
                capstats_services::control::update_schedule(&pools.store, &name, &edit).await?;
            println!("schedule {name} now runs at `{}`", schedule.cron_expression);
        }
        SchedulesCommand::Set {
            name,
            cron,
            zone,
            misfire,
            catch_up_limit,
        } => {
            let edit = capstats_services::control::ScheduleEdit {
                cron_expression: cron,
                time_zone: zone,
                misfire_policy: misfire,
                catch_up_limit,
            };
            let schedule =
                capstats_services::control::update_schedule(&pools.store, &name, &edit).await?;
            println!(
                "schedule {name}: `{}` in {}, misfire {} (catch-up limit {})",
                schedule.cron_expression,
                schedule
                    .time_zone
                    .as_deref()
                    .unwrap_or("the business time zone"),
                schedule.misfire_policy,
                schedule.catch_up_limit
            );
        }
    }
    Ok(())
}

/// Runs a jobs subcommand.
pub async fn jobs(settings: &Settings, command: JobsCommand) -> anyhow::Result<()> {
    let pools = pools(settings).await?;
    match command {
        JobsCommand::List {
            status,
            queue,
            limit,
            json: as_json,
        } => {
            let rows = capstats_queue::job_store::list_jobs(
                pools.job_store.pool(),
                queue.as_deref(),
                status.as_deref(),
                limit,
            )
            .await?;
            if as_json {
                return json(&rows);
            }
            table(
                &[
                    "id", "queue", "kind", "status", "attempts", "run at", "done at", "worker",
                    "result",
                ],
                rows.into_iter()
                    .map(|row| {
                        vec![
                            row.id,
                            row.queue,
                            or_dash(row.kind),
                            row.status,
                            format!("{}/{}", row.attempts, row.max_attempts),
                            time(Some(row.run_at)),
                            time(row.done_at),
                            or_dash(row.worker),
                            or_dash(row.last_result.map(|result| {
                                let text = result.to_string();
                                if text.len() > 60 {
                                    format!("{}…", &text[..text.floor_char_boundary(60)])
                                } else {
                                    text
                                }
                            })),
                        ]
                    })
                    .collect(),
            );
        }
        JobsCommand::Retry { id } => {
            // The run's session first, while no worker may take the job: its next attempt
            // runs in it, and equal requests meanwhile find it.
            let queued = {
                let id = id.clone();
                capstats_store::run_blocking(&pools.store, move |connection| {
                    capstats_store::sessions::queue_session_for_job(connection, &id)
                })
                .await?
            };
            if let Err(error) =
                capstats_queue::job_store::retry_job(pools.job_store.pool(), &id).await
            {
                if let Some(session) = queued {
                    let reason = format!("the job could not be retried: {error}");
                    capstats_store::run_blocking(&pools.store, move |connection| {
                        capstats_store::sessions::fail_session(connection, session, &reason)
                    })
                    .await?;
                }
                return Err(error.into());
            }
            match queued {
                Some(session) => println!("job {id} will run again, in session {session}"),
                None => println!("job {id} will run again"),
            }
        }
        JobsCommand::Kill { id } => {
            capstats_queue::job_store::kill_job(pools.job_store.pool(), &id).await?;
            let cancelled = {
                let id = id.clone();
                capstats_store::run_blocking(&pools.store, move |connection| {
                    capstats_store::sessions::cancel_sessions_of_job(connection, &id)
                })
                .await?
            };
            match cancelled.as_slice() {
                [] => println!("job {id} killed"),
                sessions => println!(
                    "job {id} killed; session {} asked to stop",
                    sessions
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        JobsCommand::Prune { older_than } => {
            let age = capstats_services::scheduling::parse_duration(&older_than)?;
            let report = capstats_queue::job_store::prune(pools.job_store.pool(), age).await?;
            println!(
                "pruned {} finished jobs and {} gone workers older than {older_than}",
                report.jobs, report.workers
            );
        }
    }
    Ok(())
}

/// Runs a sessions subcommand.
pub async fn sessions(settings: &Settings, command: SessionsCommand) -> anyhow::Result<()> {
    let pools = pools(settings).await?;
    match command {
        SessionsCommand::List {
            limit,
            json: as_json,
        } => {
            let sessions = capstats_store::run_blocking(&pools.store, move |connection| {
                capstats_store::sessions::list_sessions(connection, limit, 0)
            })
            .await?;
            if as_json {
                return json(&sessions);
            }
            table(
                &[
                    "id",
                    "category",
                    "type",
                    "status",
                    "triggered by",
                    "instances",
                    "ok/failed/cancelled",
                    "progress",
                    "started",
                    "duration",
                ],
                sessions
                    .into_iter()
                    .map(|session| {
                        let duration = match (session.started_at, session.completed_at) {
                            (Some(start), Some(end)) => {
                                format!("{:.1} s", (end - start).num_milliseconds() as f64 / 1000.0)
                            }
                            _ => "-".into(),
                        };
                        vec![
                            session.id.to_string(),
                            session.sync_category.to_string(),
                            session.sync_type.to_string(),
                            session.status.to_string(),
                            session.triggered_by,
                            session.total_instances.to_string(),
                            format!(
                                "{}/{}/{}",
                                session.successful_instances,
                                session.failed_instances,
                                session.cancelled_instances
                            ),
                            format!("{} %", session.progress_percentage),
                            time(session.started_at),
                            duration,
                        ]
                    })
                    .collect(),
            );
        }
        SessionsCommand::Show { id, json: as_json } => {
            let (session, records) =
                capstats_store::run_blocking(&pools.store, move |connection| {
                    Ok::<_, anyhow::Error>((
                        capstats_store::sessions::get_session(connection, id)?,
                        capstats_store::sessions::session_records(connection, id)?,
                    ))
                })
                .await?;
            if as_json {
                return json(&serde_json::json!({"session": session, "records": records}));
            }
            table(
                &["session", "value"],
                vec![
                    vec!["id".into(), session.id.to_string()],
                    vec!["status".into(), session.status.to_string()],
                    vec![
                        "category / type".into(),
                        format!("{} / {}", session.sync_category, session.sync_type),
                    ],
                    vec!["triggered by".into(), session.triggered_by.clone()],
                    vec!["worker".into(), or_dash(session.worker_name.clone())],
                    vec!["job".into(), or_dash(session.job_id.clone())],
                    vec![
                        "progress".into(),
                        format!("{} %", session.progress_percentage),
                    ],
                    vec!["started".into(), time(session.started_at)],
                    vec!["completed".into(), time(session.completed_at)],
                    vec!["error".into(), or_dash(session.error_message.clone())],
                    vec!["parameters".into(), session.parameters.to_string()],
                ],
            );
            table(
                &["instance", "status", "rows", "periods", "error"],
                records
                    .into_iter()
                    .map(|record| {
                        vec![
                            format!("{} ({})", record.instance_name, record.instance_id),
                            record.status.to_string(),
                            record.items_synced.to_string(),
                            record
                                .detail
                                .map_or("-".into(), |detail| detail.periods.len().to_string()),
                            or_dash(record.error_message),
                        ]
                    })
                    .collect(),
            );
        }
    }
    Ok(())
}
