//! The worker as real processes against the real PostgreSQL: several schedulers claiming each
//! tick once, a worker killed mid-run, every worker down across ticks, and concurrent runs of
//! the same periods. These tests take a minute or two; they run one at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use capstats_aggregation_core::AggregationEngine;
use capstats_capacity_model::{Period, PeriodType};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};

use capstats_test_support::metrics::sample;

/// The tests share a two-core machine; running them one at a time keeps their timing honest.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn log_directory() -> PathBuf {
    let directory = std::env::temp_dir().join("capstats-worker-tests");
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

/// A `capstats-worker run` process with settings tightened for tests.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(database_url: &str, label: &str, extra: &[(&str, &str)]) -> Self {
        let log = log_directory().join(format!("{label}-{}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_capstats-worker"));
        command
            .arg("run")
            .env("DATABASE_URL", database_url)
            .env("CAPSTATS_TIMEZONE", "UTC")
            .env("CAPSTATS_LOG", "info,apalis_core=warn,apalis_postgres=warn")
            .env("CAPSTATS_SCHEDULER_INTERVAL_MS", "200")
            .env("CAPSTATS_WORKER_POLL_INTERVAL_MS", "100")
            .env("CAPSTATS_WORKER_HEARTBEAT_SECONDS", "1")
            .env("CAPSTATS_WORKER_MISSED_HEARTBEATS", "2")
            .env("CAPSTATS_SESSION_TIMEOUT_SECONDS", "4")
            .env("CAPSTATS_MISFIRE_GRACE_SECONDS", "1")
            .env("CAPSTATS_JOB_RETRY_BASE_SECONDS", "1")
            .env("CAPSTATS_SHUTDOWN_TIMEOUT_SECONDS", "20")
            .stdout(Stdio::null())
            .stderr(file);
        for (name, value) in extra {
            command.env(name, value);
        }
        Self {
            child: command.spawn().expect("the worker starts"),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then wait for the process to finish its jobs and exit.
    fn stop(mut self) {
        self.signal("-TERM");
        self.wait_for_exit(Duration::from_secs(30));
    }

    /// Waits for the process to exit successfully (after a signal) and returns how long it took.
    fn wait_for_exit(&mut self, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "worker exited with {status}:\n{}",
                    self.tail()
                );
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "worker did not stop:\n{}",
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// kill -9.
    fn kill(mut self) {
        self.signal("-KILL");
        self.child.wait().unwrap();
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` every 200 ms until it holds or `timeout` passes.
fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[derive(QueryableByName, Debug, Clone)]
struct TickRow {
    #[diesel(sql_type = Timestamptz)]
    tick_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    claimed_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    claimed_by: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    job_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    job_status: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    attempts: Option<i64>,
    #[diesel(sql_type = BigInt)]
    sessions: i64,
    #[diesel(sql_type = Nullable<Text>)]
    session_status: Option<String>,
}

fn ticks(connection: &mut PgConnection, schedule: &str) -> Vec<TickRow> {
    diesel::sql_query(
        "SELECT tick.tick_at, tick.claimed_at, tick.claimed_by, tick.status, tick.job_id,
                job.status AS job_status, job.attempts::bigint AS attempts,
                (SELECT count(*) FROM sync_sessions session
                 WHERE session.job_id = tick.job_id) AS sessions,
                (SELECT status FROM sync_sessions session WHERE session.id = tick.session_id)
                    AS session_status
         FROM schedule_ticks tick
         LEFT JOIN apalis.jobs job ON job.id = tick.job_id
         WHERE tick.schedule_name = $1
         ORDER BY tick.tick_at",
    )
    .bind::<Text, _>(schedule)
    .load(connection)
    .unwrap()
}

/// A database with demo samples and only the test's own schedule active.
fn prepare(instances: u32, databases: u32, days: u32) -> capstats_test_support::TestDatabase {
    let database = crate::common::database();
    let mut connection = database.connection();
    capstats_services::seed::seed_demo(
        &mut connection,
        &capstats_services::seed::SeedOptions {
            instances,
            databases_per_instance: databases,
            days,
            end_date: Utc::now().date_naive() - chrono::Days::new(1),
            seed: 5,
        },
        &capstats_services::NoProgress,
    )
    .unwrap();
    connection
        .batch_execute("UPDATE schedules SET is_paused = true; ANALYZE;")
        .unwrap();
    database
}

fn add_schedule(connection: &mut PgConnection, name: &str, cron: &str, misfire: &str, limit: i32) {
    connection
        .batch_execute(&format!(
            "INSERT INTO schedules (name, job_name, cron_expression, misfire_policy, catch_up_limit)
             VALUES ('{name}', 'aggregate_capacity', '{cron}', '{misfire}', {limit})"
        ))
        .unwrap();
}

/// Runs an operator command (`capstats-worker ARGUMENTS…`) to success; returns its output.
fn operator_command(database_url: &str, arguments: &[&str]) -> Vec<u8> {
    let output = Command::new(env!("CARGO_BIN_EXE_capstats-worker"))
        .args(arguments)
        .env("DATABASE_URL", database_url)
        .env("CAPSTATS_TIMEZONE", "UTC")
        .env("CAPSTATS_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `capstats-worker schedules run NAME --json`; returns the session id.
fn run_now(database_url: &str, schedule: &str) -> i64 {
    let stdout = operator_command(database_url, &["schedules", "run", schedule, "--json"]);
    let enqueued: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    enqueued["session_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no session id in {enqueued}"))
}

/// Runs the run-now job undisturbed, in-process, on a database prepared like the test's
/// (`prepared`: instances, databases, days) and asserts that the test's database holds the
/// same rows, every period of them (comparing with the engine alone would not notice a
/// missing period).
fn assert_rows_of_an_undisturbed_run(connection: &mut PgConnection, prepared: (u32, u32, u32)) {
    let undisturbed = prepare(prepared.0, prepared.1, prepared.2);
    let mut control = undisturbed.connection();
    let job = capstats_services::payloads::AggregationJob {
        version: capstats_services::payloads::PAYLOAD_VERSION,
        work: capstats_services::payloads::AggregationWork::Due {
            logical_date: Utc::now().date_naive(),
            skip_up_to_date: false,
        },
        trigger: capstats_services::payloads::Trigger::Manual {
            requested_by: "test".into(),
            token_id: None,
        },
        session_id: None,
    };
    // In UTC, as the worker processes of these tests.
    let settings = capstats_services::runs::RunSettings {
        time_zone: chrono_tz::UTC,
        ..capstats_services::runs::RunSettings::from_settings(
            &capstats_settings::Settings::default(),
        )
    };
    let report =
        capstats_services::runs::execute(&mut control, &job, "", "control", &settings).unwrap();
    assert_eq!(
        report.status,
        capstats_sync_session::SessionStatus::Completed
    );
    let (databases, instances) = all_aggregates(connection);
    assert!(!databases.is_empty());
    assert_eq!(
        (databases, instances),
        all_aggregates(&mut control),
        "the re-run wrote what an undisturbed run writes"
    );
}

/// Every stored aggregate row of both levels, in key order (without `calculated_at`).
fn all_aggregates(
    connection: &mut PgConnection,
) -> (
    Vec<capstats_capacity_model::DatabaseSizeAggregate>,
    Vec<capstats_capacity_model::InstanceSizeAggregate>,
) {
    let far_past = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
    let far_future = NaiveDate::from_ymd_opt(2999, 1, 1).unwrap();
    let (mut databases, mut instances) = (Vec::new(), Vec::new());
    for period_type in PeriodType::ALL {
        databases.extend(
            capstats_store::aggregates::database_aggregates_between(
                connection,
                period_type,
                far_past,
                far_future,
            )
            .unwrap(),
        );
        instances.extend(
            capstats_store::aggregates::instance_aggregates_between(
                connection,
                period_type,
                far_past,
                far_future,
            )
            .unwrap(),
        );
    }
    databases.sort_by_key(|row| (row.period, row.instance_id, row.database_name.clone()));
    instances.sort_by_key(|row| (row.period, row.instance_id));
    (databases, instances)
}

/// Every stored aggregate equals what `aggregation-core` computes from the samples, judged on
/// today in UTC (the workers' time zone in these tests).
fn assert_aggregates_match_engine(connection: &mut PgConnection) {
    let mut engine = AggregationEngine::as_of(capstats_settings::today_in(chrono_tz::UTC));
    for sample in capstats_store::samples::load_database_samples(connection).unwrap() {
        engine.record(sample).unwrap();
    }
    let far_past = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
    let far_future = NaiveDate::from_ymd_opt(2999, 1, 1).unwrap();
    let mut compared = 0;
    for period_type in PeriodType::ALL {
        let stored = capstats_store::aggregates::database_aggregates_between(
            connection,
            period_type,
            far_past,
            far_future,
        )
        .unwrap();
        let periods: BTreeSet<Period> = stored.iter().map(|row| row.period).collect();
        let mut expected: Vec<_> = periods
            .iter()
            .flat_map(|period| engine.database_aggregates(*period))
            .collect();
        let key = |row: &capstats_capacity_model::DatabaseSizeAggregate| {
            (
                row.period.start(),
                row.instance_id,
                row.database_name.clone(),
            )
        };
        let mut stored = stored;
        stored.sort_by_key(key);
        expected.sort_by_key(key);
        assert_eq!(stored, expected, "{period_type} database aggregates");
        let stored_instances = capstats_store::aggregates::instance_aggregates_between(
            connection,
            period_type,
            far_past,
            far_future,
        )
        .unwrap();
        let mut expected_instances = Vec::new();
        for period in &periods {
            expected_instances.extend(engine.instance_aggregates(*period).unwrap());
        }
        assert_eq!(
            stored_instances, expected_instances,
            "{period_type} instance aggregates"
        );
        compared += stored.len();
    }
    assert!(compared > 0, "something was aggregated");
}

fn session_statuses(
    connection: &mut PgConnection,
) -> BTreeMap<i64, (String, Option<String>, Option<String>)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = Nullable<Text>)]
        job_id: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        error_message: Option<String>,
    }
    diesel::sql_query("SELECT id, status, job_id, error_message FROM sync_sessions ORDER BY id")
        .load::<Row>(connection)
        .unwrap()
        .into_iter()
        .map(|row| (row.id, (row.status, row.job_id, row.error_message)))
        .collect()
}

/// The sessions of job `job_id` other than its first one, `original` (its retries'), with
/// their statuses.
fn retry_sessions(
    sessions: &BTreeMap<i64, (String, Option<String>, Option<String>)>,
    original: i64,
    job_id: &str,
) -> Vec<(i64, String)> {
    sessions
        .iter()
        .filter(|(id, (_, job, _))| **id != original && job.as_deref() == Some(job_id))
        .map(|(id, (status, _, _))| (*id, status.clone()))
        .collect()
}

/// The statuses of `sessions`, in order.
fn statuses(sessions: &[(i64, String)]) -> Vec<&str> {
    sessions.iter().map(|(_, status)| status.as_str()).collect()
}

#[test]
fn three_workers_claim_and_execute_every_tick_once() {
    let _serial = serial();
    let database = prepare(2, 2, 20);
    let mut connection = database.connection();
    add_schedule(
        &mut connection,
        "every_two_seconds",
        "*/2 * * * * *",
        "run_once",
        1,
    );
    let workers: Vec<Worker> = (0..3)
        .map(|index| Worker::start(&database.url(), &format!("three-{index}"), &[]))
        .collect();
    wait_for("21 claimed ticks", Duration::from_secs(120), || {
        ticks(&mut connection, "every_two_seconds").len() >= 21
    });
    for worker in workers {
        worker.stop();
    }
    let ticks = ticks(&mut connection, "every_two_seconds");
    // Consecutive two-second ticks, none missing, each claimed once (the key forbids twice).
    for pair in ticks.windows(2) {
        assert_eq!(
            (pair[1].tick_at - pair[0].tick_at).num_seconds(),
            2,
            "{ticks:#?}"
        );
    }
    let executed: Vec<&TickRow> = ticks
        .iter()
        .filter(|tick| tick.job_status.as_deref() == Some("Done"))
        .collect();
    assert!(executed.len() >= 20, "{ticks:#?}");
    for tick in &ticks {
        assert_eq!(tick.status, "enqueued");
        assert!(tick.job_id.is_some());
        match tick.job_status.as_deref() {
            // Executed once, with one session that completed.
            Some("Done") => {
                assert_eq!(tick.attempts, Some(1), "{tick:?}");
                assert_eq!(tick.sessions, 1, "{tick:?}");
                assert_eq!(
                    tick.session_status.as_deref(),
                    Some("completed"),
                    "{tick:?}"
                );
            }
            // Claimed as the workers were stopping: never run. Pending when no worker fetched
            // it yet; Queued when a worker fetched it and stopped before starting it — it stays
            // locked to that worker until its heartbeat lapses and the job store hands it to
            // another (seen in CI once: the last tick, fetched 20 ms before the stop).
            Some("Pending" | "Queued") => {
                assert_eq!(tick.sessions, 0, "{tick:?}");
                assert_eq!(tick.attempts, Some(0), "{tick:?}");
                assert!(tick.tick_at >= ticks[ticks.len() - 3].tick_at, "{tick:?}");
            }
            other => panic!("tick job in state {other:?}: {tick:?}"),
        }
    }
    let claimers: BTreeSet<&str> = ticks.iter().map(|tick| tick.claimed_by.as_str()).collect();
    eprintln!("ticks claimed by {} different schedulers", claimers.len());
    // Nothing beside the ticks' own jobs and sessions: a scheduler that pushed a job for a
    // tick another one had claimed would leave an extra job (and, once run, a session).
    assert_eq!(
        count(
            &mut connection,
            "SELECT count(*) AS count FROM apalis.jobs WHERE job_type = 'capstats_aggregation'"
        ),
        ticks.len() as i64,
        "one job per tick"
    );
    let sessions = session_statuses(&mut connection);
    assert_eq!(
        sessions.len(),
        executed.len(),
        "one session per executed tick"
    );
    assert!(
        sessions
            .values()
            .all(|(status, _, _)| status != "running" && status != "pending")
    );
}

/// A job row's attempts and, in milliseconds since the epoch, when it was last fetched and when
/// it may run next.
#[derive(QueryableByName)]
struct RetryState {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    attempts: i64,
    #[diesel(sql_type = BigInt)]
    locked_ms: i64,
    #[diesel(sql_type = BigInt)]
    run_ms: i64,
}

/// The `count` column of a one-row query.
#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

fn count(connection: &mut PgConnection, query: &str) -> i64 {
    diesel::sql_query(query)
        .get_result::<Count>(connection)
        .unwrap()
        .count
}

/// A connection in an open transaction holding the advisory lock of yesterday's daily period
/// at the database level, which every run computing that period needs. `COMMIT` releases it.
fn hold_yesterdays_period_lock(database: &capstats_test_support::TestDatabase) -> PgConnection {
    let mut holder = database.connection();
    holder.batch_execute("BEGIN").unwrap();
    let yesterday = Period::last_complete(PeriodType::Daily, Utc::now().date_naive());
    capstats_store::ledger::lock_periods(
        &mut holder,
        capstats_capacity_model::AggregationLevel::Database,
        &[yesterday],
    )
    .unwrap();
    holder
}

/// Sessions of this database waiting for an advisory (period) lock.
fn advisory_lock_waits(connection: &mut PgConnection) -> i64 {
    count(
        connection,
        "SELECT count(*) AS count FROM pg_locks
         WHERE locktype = 'advisory' AND NOT granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
}

/// Worker settings for a run that takes a while: one instance per chunk, `pause_ms` between
/// chunks, no scheduler.
fn slow_run(pause_ms: &'static str) -> [(&'static str, &'static str); 3] {
    [
        ("CAPSTATS_AGGREGATION_CHUNK_SIZE", "1"),
        ("CAPSTATS_AGGREGATION_CHUNK_PAUSE_MS", pause_ms),
        ("CAPSTATS_SCHEDULER_ENABLED", "false"),
    ]
}

#[test]
fn a_killed_worker_s_run_is_redone_elsewhere_with_the_same_rows() {
    let _serial = serial();
    let database = prepare(6, 4, 60);
    let mut connection = database.connection();
    // Small chunks with pauses: the run takes a few seconds, long enough to kill it midway.
    let first = Worker::start(&database.url(), "killed", &slow_run("800"));
    let session_id = run_now(&database.url(), "aggregate_capacity");
    wait_for("the run to be half way", Duration::from_secs(60), || {
        let session = capstats_store::sessions::get_session(&mut connection, session_id).unwrap();
        session.successful_instances >= 2
    });
    let pid = first.pid();
    first.kill();

    // A second worker (with the scheduler, hence the sweeper) takes the orphaned job over.
    let second = Worker::start(
        &database.url(),
        "survivor",
        &[("CAPSTATS_AGGREGATION_CHUNK_PAUSE_MS", "0")],
    );
    wait_for(
        "the retried run to complete",
        Duration::from_secs(90),
        || {
            session_statuses(&mut connection)
                .values()
                .any(|(status, job, _)| status == "completed" && job.is_some())
                && session_statuses(&mut connection)
                    .get(&session_id)
                    .is_some_and(|(status, _, _)| status == "failed")
        },
    );
    second.stop();

    let sessions = session_statuses(&mut connection);
    let (status, job_id, error) = &sessions[&session_id];
    assert_eq!(status, "failed");
    let error = error.clone().unwrap_or_default();
    assert!(
        error.contains("worker lost") && error.contains(&pid.to_string()),
        "{error}"
    );
    let retried: Vec<_> = sessions
        .iter()
        .filter(|(id, (_, job, _))| **id != session_id && job == job_id)
        .collect();
    assert_eq!(retried.len(), 1, "{sessions:?}");
    assert_eq!(retried[0].1.0, "completed");
    assert!(
        sessions.values().all(|(status, _, _)| status != "running"),
        "{sessions:?}"
    );
    assert_aggregates_match_engine(&mut connection);

    assert_rows_of_an_undisturbed_run(&mut connection, (6, 4, 60));
}

/// The ticks missed while every worker was down and caught up after the restart, and how
/// many the restarted worker counted as missed in its metrics.
fn missed_ticks(policy: &str, limit: i32) -> (Vec<TickRow>, Option<f64>) {
    let database = prepare(2, 2, 10);
    let mut connection = database.connection();
    add_schedule(&mut connection, "missable", "*/2 * * * * *", policy, limit);
    let worker = Worker::start(&database.url(), &format!("missed-{policy}"), &[]);
    wait_for("two ticks", Duration::from_secs(60), || {
        ticks(&mut connection, "missable").len() >= 2
    });
    worker.stop();
    let before = ticks(&mut connection, "missable");
    // Every worker down across four ticks.
    std::thread::sleep(Duration::from_secs(9));
    let restarted_at = Utc::now();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let worker = Worker::start(
        &database.url(),
        &format!("missed-{policy}-again"),
        &[("CAPSTATS_WORKER_METRICS_BIND", bind.as_str())],
    );
    wait_for("ticks after the restart", Duration::from_secs(60), || {
        ticks(&mut connection, "missable")
            .iter()
            .any(|tick| tick.claimed_at > restarted_at + chrono::Duration::seconds(3))
    });
    let (_, metrics) = scrape(port, "/metrics", None).unwrap();
    let counted = sample(
        &metrics,
        "capstats_schedule_ticks_total{outcome=\"missed\",schedule=\"missable\"}",
    );
    worker.stop();
    let after: Vec<TickRow> = ticks(&mut connection, "missable")
        .into_iter()
        .filter(|tick| tick.tick_at > before.last().unwrap().tick_at)
        .collect();
    // The first pass after the restart: the ticks claimed together with the first one.
    let first_claim = after.iter().map(|tick| tick.claimed_at).min().unwrap();
    let first_pass: Vec<TickRow> = after
        .into_iter()
        .filter(|tick| tick.claimed_at - first_claim < chrono::Duration::milliseconds(150))
        .collect();
    // Missed: older than the grace period (1 s) when the pass ran.
    let missed = first_pass
        .into_iter()
        .filter(|tick| tick.tick_at < tick.claimed_at - chrono::Duration::seconds(1))
        .collect();
    (missed, counted)
}

#[test]
fn a_missed_tick_runs_once_after_a_restart() {
    let _serial = serial();
    let (missed, counted) = missed_ticks("run_once", 1);
    assert_eq!(missed.len(), 1, "{missed:#?}");
    assert_eq!(counted, Some(1.0));
    assert_eq!(missed[0].status, "enqueued");
    assert_eq!(missed[0].job_status.as_deref(), Some("Done"));
    // Run once: one attempt, one completed session.
    assert_eq!(missed[0].attempts, Some(1), "{missed:#?}");
    assert_eq!(missed[0].sessions, 1, "{missed:#?}");
    assert_eq!(missed[0].session_status.as_deref(), Some("completed"));
}

#[test]
fn missed_ticks_are_caught_up_to_the_bound() {
    let _serial = serial();
    let (missed, counted) = missed_ticks("catch_up", 2);
    assert_eq!(missed.len(), 2, "{missed:#?}");
    assert_eq!(counted, Some(2.0));
    assert_eq!((missed[1].tick_at - missed[0].tick_at).num_seconds(), 2);
    assert!(
        missed
            .iter()
            .all(|tick| tick.job_status.as_deref() == Some("Done")
                && tick.attempts == Some(1)
                && tick.sessions == 1
                && tick.session_status.as_deref() == Some("completed")),
        "{missed:#?}"
    );
}

#[test]
fn a_manual_and_a_scheduled_run_of_the_same_periods_serialise() {
    let _serial = serial();
    let database = prepare(4, 3, 45);
    let mut connection = database.connection();
    // Two workers, each taking one of the two jobs pushed at the same moment.
    let options = [
        ("CAPSTATS_WORKER_CONCURRENCY", "1"),
        ("CAPSTATS_SCHEDULER_ENABLED", "false"),
    ];
    let workers: Vec<Worker> = (0..2)
        .map(|index| Worker::start(&database.url(), &format!("overlap-{index}"), &options))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    // Hold yesterday's daily period lock, which both runs need: each run has to come to it
    // (or to a lock the other run holds) and wait, which shows that both are running at once
    // and that they serialise on the period locks.
    let mut holder = hold_yesterdays_period_lock(&database);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let queue = capstats_queue::PostgresQueue::connect(&database.url(), 2, 3)
            .await
            .unwrap();
        let job_store = queue.pool().clone();
        let today = Utc::now().date_naive();
        let tick = capstats_services::payloads::Job::for_tick(
            "aggregate_capacity",
            "aggregate_capacity",
            Utc::now(),
            today,
        )
        .unwrap();
        let store_pool = database.pool(2);
        let tick_job_id = capstats_services::new_job_id();
        let (manual, scheduled) = tokio::join!(
            capstats_services::control::run_schedule_now(
                &store_pool,
                &queue,
                "aggregate_capacity",
                capstats_services::payloads::Trigger::manual("test", None),
                today,
            ),
            capstats_queue::job_store::enqueue(&job_store, &tick, &tick_job_id, 3),
        );
        manual.unwrap();
        scheduled.unwrap();
    });
    wait_for(
        "both runs to wait for a period lock",
        Duration::from_secs(60),
        || advisory_lock_waits(&mut connection) == 2,
    );
    holder.batch_execute("COMMIT").unwrap();
    wait_for("both runs to finish", Duration::from_secs(90), || {
        let sessions = session_statuses(&mut connection);
        sessions.len() == 2
            && sessions
                .values()
                .all(|(status, _, _)| status == "completed")
    });
    for worker in workers {
        worker.stop();
    }
    #[derive(QueryableByName)]
    struct Window {
        #[diesel(sql_type = Nullable<Text>)]
        worker_name: Option<String>,
    }
    let windows: Vec<Window> = diesel::sql_query("SELECT worker_name FROM sync_sessions")
        .load(&mut connection)
        .unwrap();
    let names: BTreeSet<Option<String>> = windows
        .into_iter()
        .map(|window| window.worker_name)
        .collect();
    assert_eq!(names.len(), 2, "the two runs ran on two workers: {names:?}");
    assert_aggregates_match_engine(&mut connection);
}

#[test]
fn pause_resume_and_cron_edits_take_effect_within_seconds() {
    let _serial = serial();
    let database = prepare(1, 1, 5);
    let mut connection = database.connection();
    add_schedule(&mut connection, "every_second", "* * * * * *", "skip", 1);
    let worker = Worker::start(&database.url(), "control", &[]);
    wait_for("ticks", Duration::from_secs(60), || {
        ticks(&mut connection, "every_second").len() >= 2
    });
    let cli = |arguments: &[&str]| operator_command(&database.url(), arguments);
    cli(&["schedules", "pause", "every_second"]);
    let paused_at = Utc::now();
    std::thread::sleep(Duration::from_secs(4));
    let late: Vec<TickRow> = ticks(&mut connection, "every_second")
        .into_iter()
        .filter(|tick| tick.claimed_at > paused_at + chrono::Duration::milliseconds(1500))
        .collect();
    assert!(late.is_empty(), "ticks claimed after the pause: {late:#?}");

    cli(&["schedules", "set-cron", "every_second", "*/3 * * * * *"]);
    cli(&["schedules", "resume", "every_second"]);
    let resumed_at = Utc::now();
    wait_for("ticks after the resume", Duration::from_secs(10), || {
        ticks(&mut connection, "every_second")
            .iter()
            .filter(|tick| tick.tick_at > resumed_at)
            .count()
            >= 2
    });
    worker.stop();
    let resumed: Vec<TickRow> = ticks(&mut connection, "every_second")
        .into_iter()
        .filter(|tick| tick.tick_at > paused_at)
        .collect();
    // No tick of the pause was run afterwards as "missed", and the new expression applies.
    assert!(
        resumed.iter().all(|tick| tick.tick_at > resumed_at),
        "{resumed:#?}"
    );
    assert!(
        resumed.iter().all(|tick| tick.tick_at.timestamp() % 3 == 0),
        "{resumed:#?}"
    );
    assert!(resumed[0].claimed_at - resumed_at < chrono::Duration::seconds(5));
}

#[test]
fn a_worker_stops_within_its_shutdown_timeout_even_in_the_middle_of_a_run() {
    let _serial = serial();
    let database = prepare(4, 2, 20);
    let mut connection = database.connection();
    // Four chunks five seconds apart: the run lasts far longer than the two-second timeout.
    let mut settings = slow_run("5000").to_vec();
    settings.push(("CAPSTATS_SHUTDOWN_TIMEOUT_SECONDS", "2"));
    let mut worker = Worker::start(&database.url(), "timeout", &settings);
    let session_id = run_now(&database.url(), "aggregate_capacity");
    wait_for("the run to be under way", Duration::from_secs(60), || {
        capstats_store::sessions::get_session(&mut connection, session_id)
            .unwrap()
            .successful_instances
            >= 1
    });
    worker.signal("-INT");
    let took = worker.wait_for_exit(Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(8),
        "stopped after {took:?}, not within the 2 s timeout:\n{}",
        worker.tail()
    );
    assert!(
        worker.tail().contains("the shutdown timeout passed"),
        "{}",
        worker.tail()
    );
    // The abandoned run's session says so at once; the job is re-run elsewhere.
    let session = capstats_store::sessions::get_session(&mut connection, session_id).unwrap();
    assert_eq!(session.status, capstats_sync_session::SessionStatus::Failed);
    let error = session.error_message.unwrap_or_default();
    assert!(
        error.contains("shut down with this run in progress") && error.contains("2 s"),
        "{error}"
    );
}

#[test]
fn a_run_waiting_for_a_period_lock_is_not_taken_for_a_lost_worker() {
    let _serial = serial();
    let database = prepare(2, 2, 10);
    let mut connection = database.connection();
    // The scheduler (and its sweeper) runs; sessions time out after 4 s without a heartbeat.
    let worker = Worker::start(&database.url(), "waiting", &[]);
    let mut holder = hold_yesterdays_period_lock(&database);
    let session_id = run_now(&database.url(), "aggregate_capacity");
    wait_for(
        "the run to wait for the lock",
        Duration::from_secs(60),
        || advisory_lock_waits(&mut connection) == 1,
    );
    // Twice the session timeout: the run sends no heartbeat of its own while it waits.
    std::thread::sleep(Duration::from_secs(8));
    let session = capstats_store::sessions::get_session(&mut connection, session_id).unwrap();
    assert_eq!(
        session.status,
        capstats_sync_session::SessionStatus::Running,
        "{:?}",
        session.error_message
    );
    holder.batch_execute("COMMIT").unwrap();
    wait_for_session_end(
        &mut connection,
        session_id,
        "the run to complete",
        Duration::from_secs(60),
    );
    worker.stop();
    let session = capstats_store::sessions::get_session(&mut connection, session_id).unwrap();
    assert_eq!(
        session.status,
        capstats_sync_session::SessionStatus::Completed,
        "{:?}",
        session.error_message
    );
}

#[test]
fn a_failing_job_is_retried_with_growing_delays_until_its_attempts_run_out() {
    let _serial = serial();
    let database = prepare(1, 1, 3);
    let mut connection = database.connection();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let worker = Worker::start(
        &database.url(),
        "retries",
        &[
            ("CAPSTATS_WORKER_METRICS_BIND", bind.as_str()),
            ("CAPSTATS_SCHEDULER_ENABLED", "false"),
            ("CAPSTATS_JOB_RETRY_BASE_SECONDS", "1"),
            // A retry is found by polling: poll often so the gaps measure the retry delays,
            // not the poll phase.
            ("CAPSTATS_WORKER_POLL_INTERVAL_MS", "100"),
        ],
    );
    // Partitions three months after the last representable date: fails on every attempt.
    let job = capstats_services::payloads::Job::Maintenance(
        capstats_services::payloads::MaintenanceJob::MaintainPartitions {
            version: capstats_services::payloads::PAYLOAD_VERSION,
            logical_date: NaiveDate::MAX,
            trigger: capstats_services::payloads::Trigger::Manual {
                requested_by: "test".into(),
                token_id: None,
            },
        },
    );
    let job_id = capstats_services::new_job_id();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pool = runtime.block_on(async {
        let pool = capstats_queue::job_store::connect(&database.url(), 2)
            .await
            .unwrap();
        capstats_queue::job_store::enqueue(&pool, &job, &job_id, 3)
            .await
            .unwrap();
        pool
    });
    // Read from the job row, on the database's clock: `lock_at` is set when an attempt is
    // fetched, `run_at` when it fails (the time before which the row is not fetched again),
    // and `attempts` and the status `Failed` only after that, when apalis records the result.
    // So only a `Failed` row is read: in between, `run_at` is already the new attempt's and
    // `attempts` still the previous one's.
    let state = |connection: &mut PgConnection| {
        diesel::sql_query(format!(
            "SELECT status, attempts::bigint AS attempts,
                    coalesce((extract(epoch FROM lock_at) * 1000)::bigint, 0) AS locked_ms,
                    (extract(epoch FROM run_at) * 1000)::bigint AS run_ms
             FROM apalis.jobs WHERE id = '{job_id}'"
        ))
        .get_result::<RetryState>(connection)
        .unwrap()
    };
    // Per failed attempt: when it was fetched, the delay it scheduled (from its fetch to its
    // `run_at`, so its own short run included) and when the retry was due. Each failed state
    // lasts a retry delay (a second or more), so polling every 200 ms sees every one.
    let mut scheduled_delay_ms = BTreeMap::new();
    let mut due_ms = BTreeMap::new();
    let mut fetched_ms = BTreeMap::new();
    wait_for("three failed attempts", Duration::from_secs(60), || {
        let row = state(&mut connection);
        if row.status == "Failed" && row.locked_ms > 0 {
            scheduled_delay_ms.insert(row.attempts, row.run_ms - row.locked_ms);
            due_ms.insert(row.attempts, row.run_ms);
            fetched_ms.insert(row.attempts, row.locked_ms);
        }
        scheduled_delay_ms.len() == 3
    });
    assert_eq!(
        scheduled_delay_ms.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3],
        "the failed attempts seen: {scheduled_delay_ms:?}"
    );
    // base · 2^(attempt − 1): 1 s, 2 s, 4 s, each plus the attempt's own run.
    for (attempt, expected_ms) in [(1, 1000), (2, 2000), (3, 4000)] {
        let delay = scheduled_delay_ms[&attempt];
        assert!(
            (expected_ms..expected_ms + 1500).contains(&delay),
            "attempt {attempt} scheduled its retry {delay} ms after it was fetched: {scheduled_delay_ms:?}"
        );
    }
    // No retry was fetched before it was due.
    for attempt in [1, 2] {
        assert!(
            fetched_ms[&(attempt + 1)] >= due_ms[&attempt],
            "attempt {} fetched at {} ms, due at {} ms",
            attempt + 1,
            fetched_ms[&(attempt + 1)],
            due_ms[&attempt]
        );
    }
    // Out of attempts: not fetched again, a second (ten worker polls) after its last `run_at`.
    wait_for("the last run_at to pass", Duration::from_secs(30), || {
        count(
            &mut connection,
            "SELECT (extract(epoch FROM now()) * 1000)::bigint AS count",
        ) > due_ms[&3] + 1000
    });
    assert_eq!(state(&mut connection).attempts, 3);
    let rows = runtime.block_on(capstats_queue::job_store::list_jobs(&pool, None, None, 10));
    let row = rows
        .unwrap()
        .into_iter()
        .find(|row| row.id == job_id)
        .unwrap();
    assert_eq!(row.status, "Failed");
    assert!(
        row.last_result
            .as_ref()
            .is_some_and(|result| result.to_string().contains("out of range")),
        "{row:?}"
    );
    // Two attempts retried, the third failed for good, and nothing else counted.
    let (_, text) = scrape(port, "/metrics", None).unwrap();
    for (outcome, expected) in [("done", 0.0), ("retried", 2.0), ("failed", 1.0)] {
        assert_eq!(
            sample(
                &text,
                &format!(
                    "capstats_job_attempts_total{{job_type=\"maintenance\",outcome=\"{outcome}\"}}"
                )
            ),
            Some(expected),
            "{outcome}: {text}"
        );
    }
    // Each failed attempt is logged once, at error level, with the job's id (from the
    // job's span), and no error is logged without it.
    let log = std::fs::read_to_string(&worker.log).unwrap();
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" ERROR "))
        .collect();
    assert_eq!(errors.len(), 3, "{log}");
    for (attempt, line) in errors.iter().enumerate() {
        assert!(
            line.contains(&format!("job_id={job_id}"))
                && line.contains(&format!("attempt={}", attempt + 1))
                && line.contains("out of range"),
            "{line}"
        );
    }
    worker.stop();
}

/// The process id of the test database's connection that listens for pushed jobs, once there
/// is exactly one.
fn listener_pid(connection: &mut PgConnection) -> Option<i64> {
    let listeners = diesel::sql_query(
        "SELECT pid::bigint AS count FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .load::<Count>(connection)
    .unwrap();
    match listeners.as_slice() {
        [listener] => Some(listener.count),
        _ => None,
    }
}

/// Pushes a prune job and waits (at most `within`) until a worker has done it.
fn push_and_wait_until_done(
    runtime: &tokio::runtime::Runtime,
    pool: &sqlx::PgPool,
    connection: &mut PgConnection,
    within: Duration,
) {
    let job = capstats_services::payloads::Job::Maintenance(
        capstats_services::payloads::MaintenanceJob::PruneJobStore {
            version: capstats_services::payloads::PAYLOAD_VERSION,
            trigger: capstats_services::payloads::Trigger::manual("test", None),
        },
    );
    let job_id = capstats_services::new_job_id();
    runtime
        .block_on(capstats_queue::job_store::enqueue(pool, &job, &job_id, 1))
        .unwrap();
    let done = format!(
        "SELECT count(*) AS count FROM apalis.jobs WHERE id = '{job_id}' AND status = 'Done'"
    );
    wait_for("the pushed job to be done", within, || {
        count(connection, &done) == 1
    });
}

#[test]
fn a_pushed_job_wakes_an_idle_worker_at_once_without_its_poll() {
    let _serial = serial();
    let database = prepare(1, 1, 3);
    let mut connection = database.connection();
    // Polls and heartbeats far apart: only the notification of a push can start a job soon.
    let _worker = Worker::start(
        &database.url(),
        "wakeups",
        &[
            ("CAPSTATS_SCHEDULER_ENABLED", "false"),
            ("CAPSTATS_WORKER_POLL_INTERVAL_MS", "600000"),
            ("CAPSTATS_WORKER_HEARTBEAT_SECONDS", "300"),
            ("CAPSTATS_SESSION_TIMEOUT_SECONDS", "1200"),
        ],
    );
    let mut listener = None;
    wait_for("the worker to listen", Duration::from_secs(30), || {
        listener = listener_pid(&mut connection);
        listener.is_some()
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pool = runtime
        .block_on(capstats_queue::job_store::connect(&database.url(), 2))
        .unwrap();
    for _ in 0..3 {
        push_and_wait_until_done(&runtime, &pool, &mut connection, Duration::from_secs(10));
    }
    // A lost listening connection comes back, and pushes wake the worker again.
    connection
        .batch_execute(&format!(
            "SELECT pg_terminate_backend({})",
            listener.unwrap()
        ))
        .unwrap();
    wait_for(
        "the worker to listen again",
        Duration::from_secs(30),
        || listener_pid(&mut connection).is_some_and(|pid| Some(pid) != listener),
    );
    push_and_wait_until_done(&runtime, &pool, &mut connection, Duration::from_secs(10));
    runtime.block_on(pool.close());
}

/// The status of job `job_id` in the job store.
fn job_status(connection: &mut PgConnection, job_id: &str) -> String {
    #[derive(QueryableByName)]
    struct Status {
        #[diesel(sql_type = Text)]
        status: String,
    }
    diesel::sql_query("SELECT status FROM apalis.jobs WHERE id = $1")
        .bind::<Text, _>(job_id)
        .get_result::<Status>(connection)
        .unwrap()
        .status
}

/// What the API holds to queue work: a runtime, the store's pool and the job store (whose
/// jobs get `max_attempts`).
fn control_clients(
    database_url: &str,
    max_attempts: u32,
) -> (
    tokio::runtime::Runtime,
    capstats_store::ConnectionPool,
    capstats_queue::PostgresQueue,
) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = capstats_store::build_pool(database_url, 2, Duration::from_secs(10)).unwrap();
    let job_store = runtime
        .block_on(capstats_queue::PostgresQueue::connect(
            database_url,
            2,
            max_attempts,
        ))
        .unwrap();
    (runtime, store, job_store)
}

/// Queues an aggregate-now of the `period_type` period containing `today` at both levels, as
/// the API does, with `max_attempts`; returns its session.
fn aggregate_now(
    database_url: &str,
    period_type: PeriodType,
    today: NaiveDate,
    max_attempts: u32,
) -> i64 {
    let (runtime, store, job_store) = control_clients(database_url, max_attempts);
    let enqueued = runtime
        .block_on(capstats_services::control::aggregate_current(
            &store,
            &job_store,
            period_type,
            capstats_services::payloads::LevelScope::All,
            capstats_services::payloads::Trigger::manual("api:test", None),
            today,
        ))
        .unwrap();
    enqueued
        .session_id
        .expect("aggregate now queues its session")
}

#[test]
fn retrying_a_killed_run_now_job_runs_it_again_in_a_fresh_session() {
    retry_a_killed_job("retry-killed-run-now", |url| {
        run_now(url, "aggregate_capacity")
    });
}

#[test]
fn retrying_a_killed_aggregate_now_job_runs_it_again_in_a_fresh_session() {
    retry_a_killed_job("retry-killed-aggregate-now", |url| {
        aggregate_now(url, PeriodType::Monthly, Utc::now().date_naive(), 3)
    });
}

/// Kills the job `start` queues (returning its session) while it runs, retries it as the
/// runbook says, and checks that a fresh session does all the work.
fn retry_a_killed_job(label: &str, start: impl FnOnce(&str) -> i64) {
    let _serial = serial();
    let database = prepare(4, 3, 40);
    let mut connection = database.connection();
    let worker = Worker::start(&database.url(), label, &slow_run("700"));
    let killed_session = start(&database.url());
    wait_for("the run to have started", Duration::from_secs(60), || {
        capstats_store::sessions::get_session(&mut connection, killed_session)
            .unwrap()
            .successful_instances
            >= 1
    });
    let job_id = session_statuses(&mut connection)[&killed_session]
        .1
        .clone()
        .expect("a run-now session names its job");
    operator_command(&database.url(), &["jobs", "kill", &job_id]);
    // The killed attempt notices the cancellation between chunks and ends; only then is the job
    // finished for good (its worker's result no longer arrives).
    wait_for("the killed attempt to end", Duration::from_secs(30), || {
        session_statuses(&mut connection)[&killed_session].0 == "cancelled"
            && count(
                &mut connection,
                "SELECT count(*) AS count FROM sync_instance_records WHERE status = 'running'",
            ) == 0
    });
    // Its handler has returned (its result is ignored: the kill released the job).
    wait_for(
        "the killed attempt's handler to return",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&worker.log)
                .unwrap_or_default()
                .contains(&format!("session {killed_session} cancelled"))
        },
    );
    let retried = String::from_utf8(operator_command(
        &database.url(),
        &["jobs", "retry", &job_id],
    ))
    .unwrap();
    assert!(retried.contains("will run again"), "{retried}");
    wait_for(
        "the retried job to be done",
        Duration::from_secs(90),
        || {
            job_status(&mut connection, &job_id) == "Done"
                && session_statuses(&mut connection)
                    .iter()
                    .any(|(id, (status, job, _))| {
                        *id != killed_session
                            && status == "completed"
                            && job.as_deref() == Some(&job_id)
                    })
        },
    );
    worker.stop();
    let sessions = session_statuses(&mut connection);
    assert_eq!(sessions[&killed_session].0, "cancelled", "{sessions:?}");
    let fresh = retry_sessions(&sessions, killed_session, &job_id);
    assert_eq!(fresh.len(), 1, "{sessions:?}");
    let session = capstats_store::sessions::get_session(&mut connection, fresh[0].0).unwrap();
    assert_eq!(session.successful_instances, 4, "{session:?}");
    // It did the work: every period of the horizon is stored as the engine computes it.
    let result = count(
        &mut connection,
        &format!(
            "SELECT count(*) AS count FROM apalis.jobs
             WHERE id = '{job_id}' AND last_result::text LIKE '%work items%'
               AND last_result::text NOT LIKE '% 0 work items%'"
        ),
    );
    assert_eq!(result, 1, "the retry reports the work it did");
    assert_aggregates_match_engine(&mut connection);
}

/// Waits, naming `what`, for session `session_id` to reach a final status.
fn wait_for_session_end(
    connection: &mut capstats_store::PgConnection,
    session_id: i64,
    what: &str,
    timeout: Duration,
) {
    wait_for(what, timeout, || {
        capstats_store::sessions::get_session(connection, session_id)
            .unwrap()
            .status
            .is_terminal()
    });
}

/// A PostgreSQL instance on this machine's `port` (login `postgres`, no password, no TLS),
/// and the collect-now job queued for it with its pending session.
fn collect_now_of_postgres(
    database: &capstats_test_support::TestDatabase,
    connection: &mut capstats_store::PgConnection,
    port: u16,
) -> (
    capstats_store::instances::Instance,
    capstats_services::control::Enqueued,
) {
    let instance =
        crate::common::local_postgres_instance(connection, &format!("postgres-{port}"), port);
    let (runtime, store, job_store) = control_clients(&database.url(), 3);
    let enqueued = runtime
        .block_on(capstats_services::control::collect_now(
            &store,
            &job_store,
            instance.id,
            capstats_services::payloads::Trigger::manual("api:test", None),
            Utc::now().date_naive(),
        ))
        .unwrap();
    (instance, enqueued)
}

#[test]
fn retrying_a_collect_now_job_killed_while_queued_collects_in_a_fresh_session() {
    let _serial = serial();
    let database = crate::common::database();
    let mut connection = database.connection();
    // This machine's PostgreSQL, trusted without a password, read by the collector.
    let (instance, enqueued) = collect_now_of_postgres(&database, &mut connection, 5432);
    let killed_session = enqueued.session_id.expect("collect now queues its session");
    // Killed before any worker took it, then retried: no worker runs yet.
    operator_command(&database.url(), &["jobs", "kill", &enqueued.job_id]);
    let retried = String::from_utf8(operator_command(
        &database.url(),
        &["jobs", "retry", &enqueued.job_id],
    ))
    .unwrap();
    assert!(retried.contains("will run again, in session"), "{retried}");
    let worker = Worker::start(
        &database.url(),
        "retry-collect-now",
        &[("CAPSTATS_SCHEDULER_ENABLED", "false")],
    );
    wait_for(
        "the retried job to be done",
        Duration::from_secs(60),
        || job_status(&mut connection, &enqueued.job_id) == "Done",
    );
    worker.stop();
    let sessions = session_statuses(&mut connection);
    assert_eq!(sessions[&killed_session].0, "cancelled", "{sessions:?}");
    let fresh = retry_sessions(&sessions, killed_session, &enqueued.job_id);
    assert_eq!(statuses(&fresh), ["completed"], "{sessions:?}");
    // It did the work: today's sizes of the server's databases are stored.
    let samples = count(
        &mut connection,
        &format!(
            "SELECT count(*) AS count FROM database_size_stats
             WHERE instance_id = {} AND collected_date = current_date",
            instance.id
        ),
    );
    assert!(samples > 0, "the retry collected nothing");
}

#[test]
fn a_collection_waiting_on_a_server_longer_than_the_session_timeout_keeps_its_session() {
    let _serial = serial();
    let database = crate::common::database();
    let mut connection = database.connection();
    // A server that accepts connections and never answers: the collector waits for it until
    // its own timeout (10 s), longer than the session timeout (4 s).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in silent.incoming() {
            held.push(connection);
        }
    });
    let (_, enqueued) = collect_now_of_postgres(&database, &mut connection, port);
    let session_id = enqueued.session_id.expect("collect now queues its session");
    // The scheduler runs here: it is where the sweeper closes sessions without heartbeats.
    let worker = Worker::start(
        &database.url(),
        "silent-server",
        &[("CAPSTATS_COLLECTOR_TIMEOUT_SECONDS", "10")],
    );
    wait_for_session_end(
        &mut connection,
        session_id,
        "the session to end",
        Duration::from_secs(60),
    );
    worker.stop();
    let session = capstats_store::sessions::get_session(&mut connection, session_id).unwrap();
    let lasted = session.completed_at.unwrap() - session.started_at.unwrap();
    assert!(
        lasted >= chrono::Duration::seconds(8),
        "the collection waited for the server: {lasted}"
    );
    // It ended for the server's silence, not as a lost run.
    assert!(
        !session
            .error_message
            .as_deref()
            .unwrap_or_default()
            .contains("worker lost"),
        "{session:?}"
    );
    let records = capstats_store::sessions::session_records(&mut connection, session_id).unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let error = records[0].error_message.as_deref().unwrap_or_default();
    assert!(
        error.contains("no answer from") && error.contains("within 10 s"),
        "{error}"
    );
}

#[test]
fn a_job_that_panics_fails_its_session_with_the_panic_s_message_and_the_worker_goes_on() {
    let _serial = serial();
    let database = prepare(1, 1, 3);
    let mut connection = database.connection();
    // The year containing chrono's last date has no end: planning it panics (input from the
    // API or the CLI never gets near it; a job store row written by hand can).
    let session_id = aggregate_now(&database.url(), PeriodType::Yearly, NaiveDate::MAX, 1);
    let worker = Worker::start(
        &database.url(),
        "panics",
        &[("CAPSTATS_SCHEDULER_ENABLED", "false")],
    );
    wait_for_session_end(
        &mut connection,
        session_id,
        "the session to end",
        Duration::from_secs(30),
    );
    let session = capstats_store::sessions::get_session(&mut connection, session_id).unwrap();
    assert_eq!(
        session.status,
        capstats_sync_session::SessionStatus::Failed,
        "{session:?}"
    );
    let error = session.error_message.unwrap_or_default();
    assert!(
        error.starts_with("attempt 1 of 1 failed: ")
            && error.contains("calendar arithmetic stays far inside chrono's date range")
            && error.ends_with("no attempts left"),
        "{error}"
    );
    // The worker is still there: the next job runs.
    let session_id = run_now(&database.url(), "aggregate_capacity");
    wait_for("the next run to complete", Duration::from_secs(60), || {
        capstats_store::sessions::get_session(&mut connection, session_id)
            .unwrap()
            .status
            == capstats_sync_session::SessionStatus::Completed
    });
    worker.stop();
}

#[test]
fn a_run_cut_off_while_waiting_for_a_period_lock_fails_at_once_and_a_retry_of_the_failed_job_runs_it()
 {
    let _serial = serial();
    let database = prepare(2, 2, 10);
    let mut connection = database.connection();
    let proxy = capstats_test_support::fault_proxy::FaultProxy::start();
    let worker = Worker::start(
        &proxy.url_for(&database.url()),
        "cut-waiting",
        &[("CAPSTATS_SCHEDULER_ENABLED", "false")],
    );
    let mut holder = hold_yesterdays_period_lock(&database);
    let session_id = run_now(&database.url(), "aggregate_capacity");
    let job_id = session_statuses(&mut connection)[&session_id]
        .1
        .clone()
        .expect("a run-now session names its job");
    // One attempt only: this one fails for good.
    connection
        .batch_execute(&format!(
            "UPDATE apalis.jobs SET max_attempts = 1 WHERE id = '{job_id}'"
        ))
        .unwrap();
    wait_for(
        "the run to wait for the lock",
        Duration::from_secs(60),
        || advisory_lock_waits(&mut connection) == 1,
    );
    let cut_at = Instant::now();
    assert!(proxy.cut() >= 1);
    while !capstats_store::sessions::get_session(&mut connection, session_id)
        .unwrap()
        .status
        .is_terminal()
    {
        assert!(
            cut_at.elapsed() < Duration::from_secs(5),
            "the waiting session did not show the connection error within 5 s of the cut:\n{}",
            worker.tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let session = capstats_store::sessions::get_session(&mut connection, session_id).unwrap();
    assert_eq!(
        session.status,
        capstats_sync_session::SessionStatus::Failed,
        "{session:?}"
    );
    let error = session.error_message.unwrap_or_default();
    assert!(
        error.starts_with("attempt 1 of 1 failed: ")
            && capstats_test_support::names_a_lost_connection(&error)
            && error.ends_with("no attempts left"),
        "{error}"
    );
    wait_for("the job to fail for good", Duration::from_secs(30), || {
        job_status(&mut connection, &job_id) == "Failed"
    });
    // The operator repairs it: the lock is free now, and the retry does the work.
    holder.batch_execute("COMMIT").unwrap();
    let retried = String::from_utf8(operator_command(
        &database.url(),
        &["jobs", "retry", &job_id],
    ))
    .unwrap();
    assert!(retried.contains("will run again, in session"), "{retried}");
    wait_for(
        "the retried job to be done",
        Duration::from_secs(90),
        || job_status(&mut connection, &job_id) == "Done",
    );
    worker.stop();
    let sessions = session_statuses(&mut connection);
    assert_eq!(sessions[&session_id].0, "failed", "{sessions:?}");
    let fresh = retry_sessions(&sessions, session_id, &job_id);
    assert_eq!(statuses(&fresh), ["completed"], "{sessions:?}");
    assert_aggregates_match_engine(&mut connection);
}

#[test]
fn a_run_cut_off_from_its_database_says_so_at_once_and_its_retry_writes_the_same_rows() {
    let _serial = serial();
    let database = prepare(6, 4, 60);
    let mut connection = database.connection();
    // The worker reaches PostgreSQL only through the proxy; the test watches directly. No
    // scheduler, hence no sweeper: whatever closes the session is the worker's own doing.
    let proxy = capstats_test_support::fault_proxy::FaultProxy::start();
    let worker = Worker::start(&proxy.url_for(&database.url()), "cut", &slow_run("800"));
    let session_id = run_now(&database.url(), "aggregate_capacity");
    wait_for("the run to be half way", Duration::from_secs(60), || {
        capstats_store::sessions::get_session(&mut connection, session_id)
            .unwrap()
            .successful_instances
            >= 2
    });
    let cut_at = Instant::now();
    let cut = proxy.cut();
    assert!(
        cut >= 2,
        "the worker's connections went through the proxy ({cut})"
    );
    let deadline = cut_at + Duration::from_secs(5);
    while !capstats_store::sessions::get_session(&mut connection, session_id)
        .unwrap()
        .status
        .is_terminal()
    {
        assert!(
            Instant::now() < deadline,
            "the session did not show the connection error within 5 s of the cut:\n{}",
            worker.tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown_after = cut_at.elapsed();
    let session = capstats_store::sessions::get_session(&mut connection, session_id).unwrap();
    assert_eq!(
        session.status,
        capstats_sync_session::SessionStatus::Failed,
        "{session:?}"
    );
    let error = session.error_message.clone().unwrap_or_default();
    assert!(
        error.starts_with("attempt 1 of ")
            && capstats_test_support::names_a_lost_connection(&error)
            && error.ends_with("the job is retried in 1 s"),
        "{error}"
    );
    let job_id = session.job_id.clone().unwrap();
    wait_for("the retry to complete", Duration::from_secs(90), || {
        session_statuses(&mut connection)
            .iter()
            .any(|(id, (status, job, _))| {
                *id != session_id && status == "completed" && job.as_deref() == Some(&job_id)
            })
    });
    worker.stop();
    let sessions = session_statuses(&mut connection);
    assert!(
        sessions.values().all(|(status, _, _)| status != "running"),
        "{sessions:?}"
    );
    assert_eq!(sessions.len(), 2, "one session per attempt: {sessions:?}");
    assert_eq!(job_status(&mut connection, &job_id), "Done");
    assert_rows_of_an_undisturbed_run(&mut connection, (6, 4, 60));
    eprintln!("the cut showed in the session after {shown_after:?}");
}

#[test]
fn log_lines_carry_colours_only_when_asked_or_on_a_terminal() {
    let _serial = serial();
    let database = crate::common::database();
    let read_log = |worker: &Worker| std::fs::read_to_string(&worker.log).unwrap_or_default();
    // stderr is a file here: `auto` (the default) writes no escape sequences.
    for (label, color, escapes) in [
        ("color-default", None, false),
        ("color-never", Some("never"), false),
        ("color-always", Some("always"), true),
    ] {
        let mut extra = vec![("CAPSTATS_SCHEDULER_ENABLED", "false")];
        if let Some(color) = color {
            extra.push(("CAPSTATS_LOG_COLOR", color));
        }
        let worker = Worker::start(&database.url(), label, &extra);
        wait_for("the worker to start", Duration::from_secs(30), || {
            read_log(&worker).contains("worker starting")
        });
        let log = read_log(&worker);
        assert_eq!(log.contains('\u{1b}'), escapes, "{label}: {log}");
        worker.stop();
    }
}

/// A loopback port nothing listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on the worker's metrics port: the status code and the body.
fn scrape(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())?;
    Some((status, body))
}

#[test]
fn a_worker_serves_counters_of_its_runs_ticks_and_jobs_behind_the_token() {
    let _serial = serial();
    let database = prepare(2, 2, 5);
    let mut connection = database.connection();
    // A cheap job every second, for the tick counters; the aggregation runs only when asked.
    connection
        .batch_execute(
            "INSERT INTO schedules (name, job_name, cron_expression, misfire_policy, catch_up_limit)
             VALUES ('every_second', 'prune_job_store', '* * * * * *', 'skip', 1)",
        )
        .unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let worker = Worker::start(
        &database.url(),
        "metrics",
        &[
            ("CAPSTATS_WORKER_METRICS_BIND", bind.as_str()),
            ("CAPSTATS_METRICS_TOKEN", "scrape-secret"),
        ],
    );
    let token = Some("scrape-secret");
    wait_for("the metrics endpoint", Duration::from_secs(30), || {
        scrape(port, "/metrics", token).is_some_and(|(status, _)| status == 200)
    });
    // Before any run, every job's series exist at zero.
    let (_, text) = scrape(port, "/metrics", token).unwrap();
    assert_eq!(
        sample(
            &text,
            "capstats_job_attempts_total{job_type=\"aggregation\",outcome=\"failed\"}"
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(scrape(port, "/metrics", None).unwrap().0, 401);
    assert_eq!(scrape(port, "/metrics", Some("wrong")).unwrap().0, 401);
    assert_eq!(scrape(port, "/other", token).unwrap().0, 404);

    let session_id = run_now(&database.url(), "aggregate_capacity");
    wait_for_session_end(
        &mut connection,
        session_id,
        "the run to complete",
        Duration::from_secs(60),
    );
    // The counters move when the job's attempt is recorded, just after its session ends.
    let mut text = String::new();
    wait_for(
        "the attempt and a tick to be counted",
        Duration::from_secs(20),
        || {
            text = scrape(port, "/metrics", token).unwrap().1;
            sample(
                &text,
                "capstats_job_attempts_total{job_type=\"aggregation\",outcome=\"done\"}",
            ) == Some(1.0)
                && sample(
                    &text,
                    "capstats_schedule_ticks_total{outcome=\"claimed\",schedule=\"every_second\"}",
                )
                .is_some_and(|ticks| ticks >= 1.0)
        },
    );
    worker.stop();
    let value =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series}:\n{text}"));
    assert_eq!(
        value(
            "capstats_runs_total{category=\"aggregation\",outcome=\"completed\",type=\"manual_task\"}"
        ),
        1.0
    );
    assert_eq!(
        value("capstats_run_duration_seconds_count{category=\"aggregation\",type=\"manual_task\"}"),
        1.0
    );
    assert!(value("capstats_aggregate_rows_total{operation=\"written\"}") > 0.0);
    assert!(value("capstats_job_pickup_seconds_count{job_type=\"aggregation\"}") >= 1.0);
    assert!(value("capstats_job_attempts_total{job_type=\"maintenance\",outcome=\"done\"}") >= 1.0);
}
