//! Aggregation runs in-process against a real database: due periods and the skip rule, the
//! manual current-period run and its de-duplication, stale refresh of exactly the changed
//! instances, and partition maintenance.

use chrono::{Days, NaiveDate, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use capstats_aggregation_core::AggregationEngine;
use capstats_capacity_model::{Period, PeriodType};
use capstats_services::NoProgress;
use capstats_services::payloads::{
    AggregationJob, AggregationWork, LevelScope, PAYLOAD_VERSION, Trigger,
};
use capstats_services::runs::{RunReport, RunSettings, execute, plan_due};
use capstats_sync_session::SessionStatus;

/// A fresh database with the job store's schema: queued runs here go through the real job store.
fn database() -> capstats_test_support::TestDatabase {
    capstats_test_support::TestDatabase::with_setup("job_store", |url| {
        capstats_queue::job_store::setup_blocking(url).map_err(|error| error.chain())
    })
}

fn settings() -> RunSettings {
    RunSettings {
        chunk_size: 2,
        chunk_pause: std::time::Duration::ZERO,
        catch_up_periods: 3,
        sample_retention_months: 0,
        period_types: PeriodType::ALL.to_vec(),
        time_zone: chrono_tz::UTC,
    }
}

fn seed(connection: &mut capstats_store::PgConnection, end: NaiveDate) {
    capstats_services::seed::seed_demo(
        connection,
        &capstats_services::seed::SeedOptions {
            instances: 3,
            databases_per_instance: 3,
            days: 100,
            end_date: end,
            seed: 3,
        },
        &NoProgress,
    )
    .unwrap();
}

fn job(work: AggregationWork) -> AggregationJob {
    AggregationJob {
        version: PAYLOAD_VERSION,
        work,
        trigger: Trigger::Schedule {
            schedule_name: "aggregate_capacity".into(),
            tick_at: Utc::now(),
        },
        session_id: None,
    }
}

/// The stale refresh, as job `job_id` (empty: none).
fn refresh_stale(connection: &mut capstats_store::PgConnection, job_id: &str) -> RunReport {
    execute(
        connection,
        &job(AggregationWork::RefreshStale),
        job_id,
        "test",
        &settings(),
    )
    .unwrap()
}

/// The scheduled run of the periods due on `today`, as job `job_id` (empty: none).
fn run_due(
    connection: &mut capstats_store::PgConnection,
    today: NaiveDate,
    job_id: &str,
) -> RunReport {
    let due = job(AggregationWork::Due {
        logical_date: today,
        skip_up_to_date: true,
    });
    execute(connection, &due, job_id, "test", &settings()).unwrap()
}

/// The logical day of most tests here: 100 seeded days end the day before.
const APRIL_2: NaiveDate = NaiveDate::from_ymd_opt(2026, 4, 2).expect("a date");

/// A fresh database with 100 days of samples ending the day before `today`, and the periods
/// due on `today` computed by a scheduled run as job `job_id`.
fn aggregated_to(
    today: NaiveDate,
    job_id: &str,
) -> (
    capstats_test_support::TestDatabase,
    capstats_store::PgConnection,
) {
    let database = database();
    let mut connection = database.connection();
    seed(&mut connection, today - Days::new(1));
    run_due(&mut connection, today, job_id);
    (database, connection)
}

/// The payload of job `job_id` as the job store holds it.
async fn pushed_payload(
    job_store: &capstats_queue::PostgresQueue,
    job_id: &str,
) -> serde_json::Value {
    capstats_queue::job_store::list_jobs(job_store.pool(), None, None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|job| job.id == job_id)
        .expect("the job was pushed")
        .payload
}

/// Asks for the current month at both levels, as the API's "aggregate now" does.
async fn current_month(
    pool: &capstats_store::ConnectionPool,
    job_store: &capstats_queue::PostgresQueue,
    today: NaiveDate,
) -> capstats_services::control::Enqueued {
    capstats_services::control::aggregate_current(
        pool,
        job_store,
        PeriodType::Monthly,
        LevelScope::All,
        capstats_services::payloads::Trigger::manual("api:test", None),
        today,
    )
    .await
    .unwrap()
}

#[test]
fn scheduled_runs_compute_due_periods_once_and_run_now_recomputes() {
    let database = database();
    let mut connection = database.connection();
    let today = NaiveDate::from_ymd_opt(2026, 4, 2).unwrap();
    seed(&mut connection, today - Days::new(1));
    let scheduled = job(AggregationWork::Due {
        logical_date: today,
        skip_up_to_date: true,
    });
    let first = execute(&mut connection, &scheduled, "", "test", &settings()).unwrap();
    assert_eq!(first.status, SessionStatus::Completed);
    // Three daily, weekly and monthly periods, two quarters (data starts in late December),
    // one year — at both levels — in consecutive runs.
    assert!(first.rows_written > 0);
    let planned = plan_due(&mut connection, today, &PeriodType::ALL, 3, true, None).unwrap();
    assert!(planned.is_empty(), "everything is up to date: {planned:?}");
    let second = execute(&mut connection, &scheduled, "", "test", &settings()).unwrap();
    assert_eq!((second.items, second.rows_written), (0, 0));
    // Run now applies no skip rule: every period of the catch-up horizon is recomputed (those
    // ending before the first sample have nothing to compute).
    let forced = plan_due(&mut connection, today, &PeriodType::ALL, 3, false, None).unwrap();
    assert_eq!(forced.len(), 2 * PeriodType::ALL.len());
    for item in &forced {
        let period_type = item.periods[0].period_type();
        let horizon = match period_type {
            PeriodType::Quarterly => 2,
            PeriodType::Yearly => 1,
            _ => 3,
        };
        assert_eq!(item.periods.len(), horizon, "{item:?}");
        assert_eq!(
            item.periods.last(),
            Some(&Period::last_complete(period_type, today))
        );
    }
    // Periods starting before the retention's first month are never due: with February kept
    // on, the first quarter and 2025 are left alone, March is recomputed.
    let kept = plan_due(
        &mut connection,
        today,
        &PeriodType::ALL,
        3,
        false,
        NaiveDate::from_ymd_opt(2026, 2, 1),
    )
    .unwrap();
    let types: Vec<PeriodType> = kept
        .iter()
        .map(|item| item.periods[0].period_type())
        .collect();
    assert_eq!(
        types,
        [PeriodType::Daily, PeriodType::Weekly, PeriodType::Monthly].repeat(2)
    );
    // Only the enabled period types are planned.
    let only = plan_due(
        &mut connection,
        today,
        &[PeriodType::Monthly, PeriodType::Yearly],
        3,
        false,
        None,
    )
    .unwrap();
    let types: Vec<PeriodType> = only
        .iter()
        .map(|item| item.periods[0].period_type())
        .collect();
    assert_eq!(types, [PeriodType::Monthly, PeriodType::Yearly].repeat(2));
    // Records were finished per chunk, with every instance completed.
    let session =
        capstats_store::sessions::get_session(&mut connection, first.session_id.unwrap()).unwrap();
    assert_eq!(session.successful_instances, 3);
    assert_eq!(
        session.sync_type,
        capstats_sync_session::SyncType::ScheduledTask
    );
}

#[test]
fn a_current_period_run_is_deduplicated_while_queued() {
    let database = database();
    let mut connection = database.connection();
    let today = Utc::now().date_naive();
    seed(&mut connection, today);
    let pool = database.pool(2);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (first, second, other, payload) = runtime.block_on(async {
        let job_store = capstats_queue::PostgresQueue::connect(&database.url(), 2, 3)
            .await
            .unwrap();
        let request = |period_type, scope| {
            capstats_services::control::aggregate_current(
                &pool,
                &job_store,
                period_type,
                scope,
                capstats_services::payloads::Trigger::manual("api:test", None),
                today,
            )
        };
        let first = request(PeriodType::Monthly, LevelScope::All).await.unwrap();
        let second = request(PeriodType::Monthly, LevelScope::All).await.unwrap();
        let other = request(PeriodType::Monthly, LevelScope::Database)
            .await
            .unwrap();
        let payload = pushed_payload(&job_store, &first.job_id).await;
        (first, second, other, payload)
    });
    assert!(!first.existing);
    assert!(second.existing);
    assert_eq!(second.session_id, first.session_id);
    assert_eq!(second.job_id, first.job_id);
    assert!(!other.existing);
    assert_ne!(other.session_id, first.session_id);

    // What a worker does with the job: start the pending session and compute the month.
    let queued: AggregationJob = serde_json::from_value(payload).unwrap();
    let report = execute(&mut connection, &queued, &first.job_id, "test", &settings()).unwrap();
    assert_eq!(report.session_id, first.session_id);
    assert_eq!(report.status, SessionStatus::Completed);
    let month = Period::current(PeriodType::Monthly, today);
    let mut engine = AggregationEngine::as_of(settings().today());
    for sample in capstats_store::samples::load_database_samples(&mut connection).unwrap() {
        engine.record(sample).unwrap();
    }
    assert_eq!(
        capstats_store::aggregates::instance_aggregates_between(
            &mut connection,
            PeriodType::Monthly,
            month.start(),
            month.start()
        )
        .unwrap(),
        engine.instance_aggregates(month).unwrap()
    );
    // Done: an equal request now starts a new run.
    let again = runtime.block_on(async {
        let job_store = capstats_queue::PostgresQueue::connect(&database.url(), 2, 3)
            .await
            .unwrap();
        current_month(&pool, &job_store, today).await
    });
    assert!(!again.existing);
}

#[test]
fn while_a_failed_attempt_waits_for_its_retry_an_equal_request_finds_the_retry_session() {
    let database = database();
    let mut connection = database.connection();
    let today = Utc::now().date_naive();
    seed(&mut connection, today);
    let pool = database.pool(2);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let job_store = runtime.block_on(async {
        capstats_queue::PostgresQueue::connect(&database.url(), 2, 3)
            .await
            .unwrap()
    });
    let first = runtime.block_on(current_month(&pool, &job_store, today));
    let first_session = first.session_id.unwrap();
    // What a worker does with an attempt that fails with attempts left: its session fails
    // with the real error at once, and the retry's session is queued.
    capstats_store::sessions::start_job_session(&mut connection, first_session, "test").unwrap();
    let reason = "attempt 1 of 3 failed: connection reset; the job is retried in 10 s";
    let attempt = capstats_store::sessions::fail_attempt_sessions(
        &mut connection,
        &first.job_id,
        reason,
        true,
    )
    .unwrap();
    assert_eq!(attempt.closed, vec![first_session]);
    let queued = attempt.queued.expect("the retry's session is queued");
    let failed = capstats_store::sessions::get_session(&mut connection, first_session).unwrap();
    assert_eq!(failed.status, SessionStatus::Failed);
    assert_eq!(failed.error_message.as_deref(), Some(reason));
    let waiting = capstats_store::sessions::get_session(&mut connection, queued).unwrap();
    assert_eq!(waiting.status, SessionStatus::Pending);
    assert_eq!(waiting.parameters, failed.parameters);
    assert_eq!(waiting.job_id.as_deref(), Some(first.job_id.as_str()));
    assert_eq!(waiting.total_instances, failed.total_instances);

    // An equal request meanwhile finds that session and job: one run, not two.
    let equal = runtime.block_on(current_month(&pool, &job_store, today));
    assert!(equal.existing);
    assert_eq!(equal.session_id, Some(queued));
    assert_eq!(equal.job_id, first.job_id);

    // The retry (the same payload, naming the failed session) runs in the queued one.
    let payload = runtime.block_on(pushed_payload(&job_store, &first.job_id));
    let retry: AggregationJob = serde_json::from_value(payload).unwrap();
    let report = execute(&mut connection, &retry, &first.job_id, "test", &settings()).unwrap();
    assert_eq!(report.session_id, Some(queued));
    assert_eq!(report.status, SessionStatus::Completed);

    // An attempt with none left queues nothing.
    let last = runtime.block_on(current_month(&pool, &job_store, today));
    let last_session = last.session_id.unwrap();
    capstats_store::sessions::start_job_session(&mut connection, last_session, "test").unwrap();
    let attempt = capstats_store::sessions::fail_attempt_sessions(
        &mut connection,
        &last.job_id,
        "attempt 3 of 3 failed: connection reset; no attempts left",
        false,
    )
    .unwrap();
    assert_eq!(attempt.closed, vec![last_session]);
    assert_eq!(attempt.queued, None);
    assert!(
        !runtime
            .block_on(current_month(&pool, &job_store, today))
            .existing
    );
}

#[test]
fn a_run_cancelled_while_queued_never_runs_and_a_refresh_run_now_leaves_no_pending_session() {
    let database = database();
    let mut connection = database.connection();
    let today = Utc::now().date_naive();
    seed(&mut connection, today);
    let pool = database.pool(2);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (queued, refresh) = runtime.block_on(async {
        let job_store = capstats_queue::PostgresQueue::connect(&database.url(), 2, 3)
            .await
            .unwrap();
        let queued = current_month(&pool, &job_store, today).await;
        let refresh = capstats_services::control::run_schedule_now(
            &pool,
            &job_store,
            "refresh_stale_periods",
            capstats_services::payloads::Trigger::manual("api:test", None),
            today,
        )
        .await
        .unwrap();
        let jobs = capstats_queue::job_store::list_jobs(job_store.pool(), None, None, 10)
            .await
            .unwrap();
        let payload = |id: &str| {
            jobs.iter()
                .find(|job| job.id == id)
                .expect("the job was pushed")
                .payload
                .clone()
        };
        (
            (queued.clone(), payload(&queued.job_id)),
            (refresh.clone(), payload(&refresh.job_id)),
        )
    });

    // Cancelled before any worker took it: the worker that takes it computes nothing.
    let session_id = queued.0.session_id.unwrap();
    assert_eq!(
        capstats_store::sessions::request_cancel(&mut connection, session_id).unwrap(),
        SessionStatus::Cancelled
    );
    let job: AggregationJob = serde_json::from_value(queued.1).unwrap();
    let report = execute(&mut connection, &job, &queued.0.job_id, "test", &settings()).unwrap();
    assert_eq!(
        (report.session_id, report.status, report.rows_written),
        (Some(session_id), SessionStatus::Cancelled, 0)
    );
    let session = capstats_store::sessions::get_session(&mut connection, session_id).unwrap();
    assert_eq!(session.status, SessionStatus::Cancelled);
    assert!(
        aggregate_rows(&mut connection).is_empty(),
        "nothing was aggregated"
    );
    let sessions: i64 = diesel::sql_query("SELECT count(*) AS count FROM sync_sessions")
        .get_result::<Count>(&mut connection)
        .unwrap()
        .count;
    assert_eq!(sessions, 1, "no replacement session was opened");

    // Run now of the stale refresh: no session up front, and none when nothing is stale.
    assert_eq!(refresh.0.session_id, None);
    let job: AggregationJob = serde_json::from_value(refresh.1).unwrap();
    let report = execute(
        &mut connection,
        &job,
        &refresh.0.job_id,
        "test",
        &settings(),
    )
    .unwrap();
    assert_eq!(report.session_id, None);
    let pending: i64 = diesel::sql_query(
        "SELECT count(*) AS count FROM sync_sessions WHERE status IN ('pending', 'running')",
    )
    .get_result::<Count>(&mut connection)
    .unwrap()
    .count;
    assert_eq!(pending, 0);
}

/// A `count(*)` read with `sql_query`.
#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// A late, corrected sample for one database of the first instance, on 10 March 2026: the
/// instance and the sample written.
fn write_late_sample(
    connection: &mut capstats_store::PgConnection,
) -> (
    capstats_store::instances::Instance,
    capstats_capacity_model::DatabaseSizeSample,
) {
    let instance = capstats_store::instances::active_instances(connection).unwrap()[0].clone();
    let mut late = capstats_store::samples::load_database_samples(connection)
        .unwrap()
        .into_iter()
        .find(|sample| {
            sample.instance_id == instance.id
                && sample.collected_date == NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
        })
        .unwrap();
    late.size_mb += 1_000_000;
    late.data_size_mb = None;
    late.log_size_mb = None;
    capstats_store::samples::write_database_samples(
        connection,
        &[capstats_store::samples::NewDatabaseSample {
            sample: late.clone(),
            collected_at: Utc::now(),
        }],
    )
    .unwrap();
    (instance, late)
}

#[test]
fn a_stale_refresh_leaves_periods_starting_before_the_sample_retention_as_they_were() {
    use chrono::Datelike;
    let (_database, mut connection) = aggregated_to(APRIL_2, "nightly-job");
    // A corrected sample of 2026-03-10: its day, week, March and Q1 become stale.
    write_late_sample(&mut connection);
    // Samples kept from 2026-02-01 (the refresh judges the retention on the real today):
    // Q1 starts before, so it is left as computed from its whole quarter.
    let now = Utc::now().date_naive();
    let months = u32::try_from(now.year() - 2026).unwrap() * 12 + now.month() - 2;
    let kept_from = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
    // When Q1's rows were written, as text.
    let quarter = |connection: &mut capstats_store::PgConnection| {
        #[derive(diesel::QueryableByName)]
        struct Written {
            #[diesel(sql_type = diesel::sql_types::Text)]
            at: String,
        }
        diesel::sql_query(
            "SELECT string_agg(calculated_at::text, ',' ORDER BY instance_id, database_name) AS at
             FROM database_size_aggregations
             WHERE period_type = 'quarterly' AND period_start = '2026-01-01'",
        )
        .get_result::<Written>(connection)
        .unwrap()
        .at
    };
    let quarter_before = quarter(&mut connection);
    assert!(!quarter_before.is_empty());
    let report = execute(
        &mut connection,
        &job(AggregationWork::RefreshStale),
        "refresh-job",
        "test",
        &RunSettings {
            sample_retention_months: months,
            ..settings()
        },
    )
    .unwrap();
    assert_eq!(report.status, SessionStatus::Completed, "{report:?}");
    let left = capstats_store::ledger::stale_entries(&mut connection, 100, None).unwrap();
    assert!(
        left.iter().all(|entry| entry.period.start() < kept_from),
        "every period from the retention on was refreshed: {left:?}"
    );
    assert!(
        left.iter()
            .any(|entry| entry.period.period_type() == PeriodType::Quarterly),
        "Q1 stays stale: {left:?}"
    );
    assert_eq!(
        quarter(&mut connection),
        quarter_before,
        "Q1's rows were not rewritten"
    );
}

#[test]
fn a_retried_refresh_with_nothing_left_stale_closes_the_session_queued_for_it() {
    let (_database, mut connection) = aggregated_to(APRIL_2, "nightly-job");
    write_late_sample(&mut connection);
    let first = refresh_stale(&mut connection, "refresh-job");
    assert_eq!(first.status, SessionStatus::Completed);
    // An operator retries the job (a failed attempt queues the same way): its session waits.
    let queued = capstats_store::sessions::queue_session_for_job(&mut connection, "refresh-job")
        .unwrap()
        .expect("a session queued for the retry");
    // The retry finds nothing stale any more, and still ends the session it was queued with.
    let retry = refresh_stale(&mut connection, "refresh-job");
    assert_eq!(retry.session_id, Some(queued), "{retry:?}");
    assert_eq!(retry.status, SessionStatus::Completed);
    let session = capstats_store::sessions::get_session(&mut connection, queued).unwrap();
    assert_eq!(session.status, SessionStatus::Completed, "{session:?}");
    // Without a queued session, nothing stale opens none.
    let idle = refresh_stale(&mut connection, "another-job");
    assert_eq!(idle.session_id, None);
}

#[test]
fn a_stale_refresh_never_stands_in_for_the_nightly_run_in_the_monitoring_snapshot() {
    let database = database();
    let mut connection = database.connection();
    let today = NaiveDate::from_ymd_opt(2026, 4, 2).unwrap();
    seed(&mut connection, today - Days::new(1));
    // The scheduler's claim of the nightly tick, with the job it enqueued.
    connection
        .batch_execute(
            "INSERT INTO schedule_ticks (schedule_name, tick_at, job_id, claimed_by, claimed_at, status)
             VALUES ('aggregate_capacity', now(), 'nightly-job', 'test', now(), 'enqueued')",
        )
        .unwrap();
    let nightly = run_due(&mut connection, today, "nightly-job");
    assert_eq!(nightly.status, SessionStatus::Completed);
    write_late_sample(&mut connection);
    let refresh = refresh_stale(&mut connection, "refresh-job");
    assert_eq!(refresh.status, SessionStatus::Completed);
    let mut completed_at = |id: Option<i64>| {
        capstats_store::sessions::get_session(&mut connection, id.unwrap())
            .unwrap()
            .completed_at
            .unwrap()
            .timestamp_micros() as f64
            / 1e6
    };
    let (nightly_at, refresh_at) = (
        completed_at(nightly.session_id),
        completed_at(refresh.session_id),
    );
    assert!(refresh_at > nightly_at);
    let snapshot = capstats_store::monitoring::snapshot(&mut connection).unwrap();
    let value = |rows: &[capstats_store::monitoring::Labelled], first: &str| {
        rows.iter()
            .filter(|row| row.first == first)
            .map(|row| row.value)
            .collect::<Vec<f64>>()
    };
    // By category and type, the refresh is the last completed scheduled aggregation…
    let by_type: Vec<f64> = snapshot
        .last_completed_at
        .iter()
        .filter(|row| row.first == "aggregation" && row.second == "scheduled_task")
        .map(|row| row.value)
        .collect();
    assert_eq!(by_type.len(), 1);
    assert!(
        (by_type[0] - refresh_at).abs() < 1e-3,
        "{by_type:?} {refresh_at}"
    );
    // …by schedule, the nightly schedule's own run is, and the refresh has no tick here.
    let nightly_value = value(&snapshot.schedule_last_completed_at, "aggregate_capacity");
    assert_eq!(
        nightly_value.len(),
        1,
        "{:?}",
        snapshot.schedule_last_completed_at
    );
    assert!(
        (nightly_value[0] - nightly_at).abs() < 1e-3,
        "{nightly_value:?} {nightly_at}"
    );
    assert!(
        value(
            &snapshot.schedule_last_completed_at,
            "refresh_stale_periods"
        )
        .is_empty()
    );

    // A failed run of a later tick does not count as completed.
    connection
        .batch_execute(
            "INSERT INTO schedule_ticks (schedule_name, tick_at, job_id, claimed_by, claimed_at, status)
             VALUES ('aggregate_capacity', now() + interval '1 day', 'failed-job', 'test', now(), 'enqueued');
             UPDATE sync_sessions SET job_id = 'failed-job', status = 'failed', completed_at = now()
             WHERE id = (SELECT max(id) FROM sync_sessions);
             UPDATE schedule_ticks SET session_id = (SELECT max(id) FROM sync_sessions)
             WHERE job_id = 'failed-job'",
        )
        .unwrap();
    let snapshot = capstats_store::monitoring::snapshot(&mut connection).unwrap();
    let nightly_value = value(&snapshot.schedule_last_completed_at, "aggregate_capacity");
    assert!(
        (nightly_value[0] - nightly_at).abs() < 1e-3,
        "{nightly_value:?} {nightly_at}"
    );
}

#[test]
fn refresh_recomputes_exactly_the_instances_with_late_samples() {
    let (_database, mut connection) = aggregated_to(APRIL_2, "");
    let before = aggregate_rows(&mut connection);
    let (instance, late) = write_late_sample(&mut connection);
    let stale = capstats_store::ledger::stale_entries(&mut connection, 100, None).unwrap();
    assert!(!stale.is_empty());
    assert!(
        stale
            .iter()
            .all(|entry| entry.stale_instance_ids == vec![instance.id])
    );

    let report = refresh_stale(&mut connection, "");
    assert_eq!(report.status, SessionStatus::Completed);
    assert!(
        capstats_store::ledger::stale_entries(&mut connection, 100, None)
            .unwrap()
            .is_empty()
    );
    let after = aggregate_rows(&mut connection);

    // Only rows of that instance changed: in the periods containing 2026-03-10 (new sizes),
    // and in the periods right after them (their changes compare with the changed periods).
    // Nothing else was touched, not even calculated_at.
    assert_eq!(before.len(), after.len());
    let (mut containing, mut following) = (0, 0);
    for (key, old) in &before {
        let new = &after[key];
        let period = Period::starting_on(key.1.parse().unwrap(), key.2).unwrap();
        let ours = key.0 == instance.id.0;
        if ours && period.contains(late.collected_date) {
            assert_ne!(old.0, new.0, "{key:?} should have been recomputed");
            if key.3 == late.database_name || key.3.is_empty() {
                assert_ne!(old.1, new.1, "{key:?} should have new sizes");
            }
            containing += 1;
        } else if ours && period.previous().contains(late.collected_date) {
            assert_ne!(old.0, new.0, "{key:?} should have been recomputed");
            following += 1;
        } else {
            assert_eq!(old, new, "{key:?} must not change");
        }
    }
    // Containing: the week of 9 March, March and Q1, for the database and for the instance
    // (the day itself was never computed). Following: the week of 16 March (April and Q2 are
    // not complete, so never computed).
    assert!(
        containing >= 6,
        "{containing} rows of containing periods changed"
    );
    assert!(
        following >= 2,
        "{following} rows of following periods changed"
    );
    // And every stored row is what aggregation-core computes from all samples now.
    let mut engine = AggregationEngine::as_of(settings().today());
    for sample in capstats_store::samples::load_database_samples(&mut connection).unwrap() {
        engine.record(sample).unwrap();
    }
    let periods: std::collections::BTreeSet<(String, NaiveDate)> =
        after.keys().map(|key| (key.1.clone(), key.2)).collect();
    for (period_type, start) in periods {
        let period_type: PeriodType = period_type.parse().unwrap();
        let period = Period::starting_on(period_type, start).unwrap();
        assert_eq!(
            capstats_store::aggregates::database_aggregates_between(
                &mut connection,
                period_type,
                start,
                start
            )
            .unwrap(),
            engine.database_aggregates(period),
            "{period_type} {start}"
        );
        assert_eq!(
            capstats_store::aggregates::instance_aggregates_between(
                &mut connection,
                period_type,
                start,
                start
            )
            .unwrap(),
            engine.instance_aggregates(period).unwrap(),
            "{period_type} {start}"
        );
    }
    // With nothing stale, a refresh opens no session.
    let idle = refresh_stale(&mut connection, "");
    assert_eq!(idle.session_id, None);
}

/// A late sample a year back changes the year-over-year change of the same period a year
/// later: that period is marked stale and recomputed by the refresh, to what
/// `aggregation-core` computes.
#[test]
fn a_late_sample_a_year_back_refreshes_the_year_over_year_change_a_year_later() {
    let database = database();
    let mut connection = database.connection();
    let today = NaiveDate::from_ymd_opt(2026, 4, 2).unwrap();
    capstats_services::seed::seed_demo(
        &mut connection,
        &capstats_services::seed::SeedOptions {
            instances: 2,
            databases_per_instance: 2,
            days: 420,
            end_date: today - Days::new(1),
            seed: 5,
        },
        &NoProgress,
    )
    .unwrap();
    run_due(&mut connection, today, "");
    let march = Period::containing(
        PeriodType::Monthly,
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
    );
    let rows_of_march = |connection: &mut capstats_store::PgConnection| {
        capstats_store::aggregates::database_aggregates_between(
            connection,
            PeriodType::Monthly,
            march.start(),
            march.start(),
        )
        .unwrap()
    };
    let before = rows_of_march(&mut connection);
    let row = before
        .iter()
        .find(|row| row.yoy_change_mb.is_some())
        .expect("March 2026 has a March 2025 to compare with")
        .clone();

    let year_back = NaiveDate::from_ymd_opt(2025, 3, 10).unwrap();
    let mut late = capstats_store::samples::load_database_samples(&mut connection)
        .unwrap()
        .into_iter()
        .find(|sample| {
            sample.instance_id == row.instance_id
                && sample.database_name == row.database_name
                && sample.collected_date == year_back
        })
        .expect("the database has a sample a year back");
    late.size_mb += 5_000_000;
    capstats_store::samples::write_database_samples(
        &mut connection,
        &[capstats_store::samples::NewDatabaseSample {
            sample: late,
            collected_at: Utc::now(),
        }],
    )
    .unwrap();
    let stale = capstats_store::ledger::stale_entries(&mut connection, 100, None).unwrap();
    assert!(
        stale.iter().any(|entry| entry.period == march),
        "March 2026 is marked stale: {stale:?}"
    );
    refresh_stale(&mut connection, "");
    let after = rows_of_march(&mut connection);
    let changed = after
        .iter()
        .find(|other| {
            other.instance_id == row.instance_id && other.database_name == row.database_name
        })
        .unwrap();
    assert_ne!(
        changed.yoy_change_mb, row.yoy_change_mb,
        "the change against a year back moved"
    );
    assert_eq!(
        changed.avg_size_mb, row.avg_size_mb,
        "March itself did not change"
    );
    let mut engine = AggregationEngine::as_of(settings().today());
    for sample in capstats_store::samples::load_database_samples(&mut connection).unwrap() {
        engine.record(sample).unwrap();
    }
    assert_eq!(after, engine.database_aggregates(march));
}

/// `(instance, period type, period start, database)` of an aggregate row.
type RowKey = (i64, String, NaiveDate, String);

/// `calculated_at` and the average (database level) or total (instance level) size of every
/// aggregate row.
fn aggregate_rows(
    connection: &mut capstats_store::PgConnection,
) -> std::collections::BTreeMap<RowKey, (chrono::DateTime<Utc>, i64)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        instance_id: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        period_type: String,
        #[diesel(sql_type = diesel::sql_types::Date)]
        period_start: NaiveDate,
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        calculated_at: chrono::DateTime<Utc>,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        size: i64,
    }
    diesel::sql_query(
        "SELECT instance_id, period_type, period_start, database_name AS name, calculated_at,
                avg_size_mb AS size FROM database_size_aggregations
         UNION ALL
         SELECT instance_id, period_type, period_start, '', calculated_at, total_size_mb
         FROM instance_size_aggregations",
    )
    .load::<Row>(connection)
    .unwrap()
    .into_iter()
    .map(|row| {
        (
            (row.instance_id, row.period_type, row.period_start, row.name),
            (row.calculated_at, row.size),
        )
    })
    .collect()
}

#[test]
fn partition_maintenance_creates_ahead_and_drops_past_the_retention() {
    let database = database();
    let mut connection = database.connection();
    let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    capstats_store::partitions::ensure_partitions(
        &mut connection,
        &capstats_store::partitions::PartitionedTable::ALL,
        [
            NaiveDate::from_ymd_opt(2016, 5, 1).unwrap(),
            NaiveDate::from_ymd_opt(2023, 5, 1).unwrap(),
        ],
    )
    .unwrap();
    let retention = capstats_services::maintenance::Retention {
        sample_months: 36,
        aggregate_months: 120,
    };
    let report =
        capstats_services::maintenance::maintain_partitions(&mut connection, today, 2, retention)
            .unwrap();
    assert_eq!(report.created.len(), 3 * 4, "{report:?}");
    assert!(
        report
            .created
            .contains(&"database_size_stats_2027_01".to_owned())
    );
    // Samples of May 2023 are past their 36 months; the aggregates of that month are not past
    // their 120 and stay, while those of ten years ago go.
    assert_eq!(
        report.dropped,
        vec![
            "database_size_stats_2016_05",
            "database_size_stats_2023_05",
            "instance_size_stats_2016_05",
            "instance_size_stats_2023_05",
            "database_size_aggregations_2016_05",
            "instance_size_aggregations_2016_05",
        ]
    );
    let again =
        capstats_services::maintenance::maintain_partitions(&mut connection, today, 2, retention)
            .unwrap();
    assert!(again.created.is_empty() && again.dropped.is_empty());
}

#[test]
fn a_stale_refresh_stops_between_entries_when_cancelled() {
    use diesel::connection::SimpleConnection;
    let (database, mut connection) = aggregated_to(APRIL_2, "");
    // A late sample of one instance makes several periods stale.
    write_late_sample(&mut connection);
    let stale = capstats_store::ledger::stale_entries(&mut connection, 100, None).unwrap();
    assert!(stale.len() >= 3, "{stale:?}");

    // The refresh blocks on the first entry's period lock, is cancelled while it waits, and
    // must not go on to the next entry.
    let mut holder = database.connection();
    holder.batch_execute("BEGIN").unwrap();
    capstats_store::ledger::lock_periods(&mut holder, stale[0].level, &[stale[0].period]).unwrap();
    let url = database.url();
    let refresh = std::thread::spawn(move || {
        let mut connection = diesel::PgConnection::establish(&url).unwrap();
        refresh_stale(&mut connection, "")
    });
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let session_id = loop {
        let waiting: Option<Found> = diesel::sql_query(
            "SELECT session.id FROM sync_sessions session
             WHERE session.status = 'running'
               AND EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                           AND database = (SELECT oid FROM pg_database
                                           WHERE datname = current_database()))",
        )
        .get_result(&mut connection)
        .optional()
        .unwrap();
        if let Some(found) = waiting {
            break found.id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh never waited for the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    capstats_store::sessions::request_cancel(&mut connection, session_id).unwrap();
    holder.batch_execute("COMMIT").unwrap();
    let report = refresh.join().unwrap();
    assert_eq!(report.session_id, Some(session_id));
    assert_eq!(report.status, SessionStatus::Cancelled);
    let session = capstats_store::sessions::get_session(&mut connection, session_id).unwrap();
    assert_eq!(session.cancelled_instances, 1, "{session:?}");
    assert_eq!(
        session.progress_percentage,
        capstats_capacity_model::Decimal::ZERO
    );
    // Only the entry in progress was computed; the rest stays stale for the next refresh.
    let left = capstats_store::ledger::stale_entries(&mut connection, 100, None).unwrap();
    assert_eq!(left.len(), stale.len() - 1, "{left:?}");
    let again = refresh_stale(&mut connection, "");
    assert_eq!(again.status, SessionStatus::Completed);
    assert!(
        capstats_store::ledger::stale_entries(&mut connection, 100, None)
            .unwrap()
            .is_empty()
    );
}

/// Rows of the last complete week, computed on its third day (running: three days expected,
/// partial), in a fresh seeded database; with that week.
fn rows_judged_while_the_week_ran(connection: &mut capstats_store::PgConnection) -> Period {
    let last_week = Period::last_complete(PeriodType::Weekly, settings().today());
    seed(connection, last_week.end());
    for level in capstats_capacity_model::AggregationLevel::ALL {
        capstats_store::aggregation::aggregate_periods(
            connection,
            level,
            &[last_week],
            &capstats_store::aggregation::InstanceScope::AllActive,
            None,
            last_week.start() + Days::new(2),
        )
        .unwrap();
    }
    let stored = weekly_rows(connection, last_week);
    assert!(!stored.is_empty());
    assert!(stored.iter().all(|row| row.completeness
        == capstats_capacity_model::Completeness {
            expected_count: 3,
            is_partial: true
        }));
    last_week
}

fn weekly_rows(
    connection: &mut capstats_store::PgConnection,
    week: Period,
) -> Vec<capstats_capacity_model::DatabaseSizeAggregate> {
    capstats_store::aggregates::database_aggregates_between(
        connection,
        PeriodType::Weekly,
        week.start(),
        week.start(),
    )
    .unwrap()
}

/// A stale refresh that finds nothing stale, as the scheduler runs it every five minutes.
fn quiet_refresh(connection: &mut capstats_store::PgConnection) {
    let refresh = execute(
        connection,
        &job(AggregationWork::RefreshStale),
        "",
        "test",
        &settings(),
    )
    .unwrap();
    assert_eq!(refresh.session_id, None, "nothing was stale");
}

/// Every aggregation job first brings the stored completeness to the current business day:
/// rows computed while their periods ran (judged on an earlier day) read as the engine judges
/// them today, even from a stale refresh that finds nothing stale and opens no session.
#[test]
fn every_run_brings_the_stored_completeness_to_today() {
    let database = database();
    let mut connection = database.connection();
    let last_week = rows_judged_while_the_week_ran(&mut connection);
    quiet_refresh(&mut connection);
    let mut engine = AggregationEngine::as_of(settings().today());
    for sample in capstats_store::samples::load_database_samples(&mut connection).unwrap() {
        engine.record(sample).unwrap();
    }
    let after = weekly_rows(&mut connection, last_week);
    assert_eq!(after, engine.database_aggregates(last_week));
    // The seeded week has all its days: complete now that it has ended.
    assert!(after.iter().all(|row| !row.completeness.is_partial));
    let instances = capstats_store::aggregates::instance_aggregates_between(
        &mut connection,
        PeriodType::Weekly,
        last_week.start(),
        last_week.start(),
    )
    .unwrap();
    assert_eq!(instances, engine.instance_aggregates(last_week).unwrap());

    // A second run that finds nothing to do writes nothing the capacity reads show, so the
    // API's remembered answers stay current.
    let (snapshot, ()) = capstats_store::read_changes::consistent_read(&mut connection, |_| {
        Ok::<_, capstats_store::StoreError>(())
    })
    .unwrap();
    quiet_refresh(&mut connection);
    assert!(!capstats_store::read_changes::changed_since(&mut connection, &snapshot).unwrap());
}

/// A row another transaction holds (a run rewriting it) makes the refresh give up after its
/// lock timeout, changing nothing, and the run goes on; the next run refreshes it.
#[test]
fn a_held_row_delays_the_completeness_refresh_not_the_run() {
    let database = database();
    let mut connection = database.connection();
    let last_week = rows_judged_while_the_week_ran(&mut connection);
    let mut holder = database.connection();
    holder
        .batch_execute(&format!(
            "BEGIN;
             SELECT 1 FROM database_size_aggregations
             WHERE period_type = 'weekly' AND period_start = '{}'
             ORDER BY instance_id, database_name LIMIT 1 FOR UPDATE;",
            last_week.start()
        ))
        .unwrap();
    let started = std::time::Instant::now();
    quiet_refresh(&mut connection);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the refresh waited {:?} for the held row",
        started.elapsed()
    );
    // Nothing changed: both tables are refreshed together or not at all.
    assert!(
        weekly_rows(&mut connection, last_week)
            .iter()
            .all(|row| row.completeness.is_partial)
    );
    holder.batch_execute("ROLLBACK").unwrap();
    quiet_refresh(&mut connection);
    assert!(
        weekly_rows(&mut connection, last_week)
            .iter()
            .all(|row| !row.completeness.is_partial)
    );
}
