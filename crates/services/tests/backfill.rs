//! Backfills recorded as sessions, and seeded demo data, against a real database.

use capstats_aggregation_core::AggregationEngine;
use capstats_capacity_model::{AggregationLevel, PeriodType};
use capstats_services::NoProgress;
use capstats_services::backfill::{BackfillRequest, run_backfill};
use capstats_services::seed::{SeedOptions, seed_demo};
use capstats_sync_session::{RecordStatus, SessionStatus, SyncType};
use chrono::NaiveDate;

fn seed_options() -> SeedOptions {
    SeedOptions {
        instances: 3,
        databases_per_instance: 4,
        days: 120,
        end_date: NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
        seed: 11,
    }
}

#[test]
fn seeding_twice_writes_the_same_data() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    let first = seed_demo(&mut connection, &seed_options(), &NoProgress).unwrap();
    assert_eq!(first.instances, 3);
    assert!(first.samples > 1000, "{first:?}");
    let instances = capstats_store::instances::active_instances(&mut connection).unwrap();
    assert_eq!(instances.len(), 3);
    assert_eq!(instances[0].name, "demo-mysql-001");
    let second = seed_demo(&mut connection, &seed_options(), &NoProgress).unwrap();
    assert_eq!(first.samples, second.samples);
    assert_eq!(
        capstats_store::instances::active_instances(&mut connection)
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn a_backfill_records_a_completed_session_and_writes_what_the_engine_computes() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    seed_demo(&mut connection, &seed_options(), &NoProgress).unwrap();
    let from = NaiveDate::from_ymd_opt(2024, 12, 2).unwrap();
    let to = NaiveDate::from_ymd_opt(2025, 3, 31).unwrap();
    let pool = database.pool(3);
    let report = run_backfill(&pool, &request(PeriodType::Weekly, from, to), &NoProgress).unwrap();
    assert_eq!(report.status, SessionStatus::Completed);
    assert_eq!(report.periods, 18);
    assert!(report.rows_written > 0);

    let session =
        capstats_store::sessions::get_session(&mut connection, report.session_id).unwrap();
    assert_eq!(session.status, SessionStatus::Completed);
    assert_eq!(session.total_instances, 3);
    assert_eq!(session.successful_instances, 3);
    assert_eq!(session.progress_percentage.to_string(), "100.00");
    let records =
        capstats_store::sessions::session_records(&mut connection, report.session_id).unwrap();
    assert!(
        records
            .iter()
            .all(|record| record.status == RecordStatus::Completed)
    );
    let written: i64 = records.iter().map(|record| record.items_synced).sum();
    assert_eq!(written as u64, report.rows_written);
    let detail = records[0].detail.as_ref().unwrap();
    assert_eq!(detail.version, 1);
    // Two batches of weeks, run two at a time, for each level.
    assert_eq!(detail.periods.len(), 4, "one outcome per level and batch");

    let mut engine = AggregationEngine::as_of(chrono::Utc::now().date_naive());
    let samples = capstats_store::samples::load_database_samples(&mut connection).unwrap();
    for sample in samples {
        engine.record(sample).unwrap();
    }
    let expected = engine
        .aggregate_range(PeriodType::Weekly, from, to)
        .unwrap();
    let mut stored = capstats_store::aggregates::database_aggregates_between(
        &mut connection,
        PeriodType::Weekly,
        from,
        to,
    )
    .unwrap();
    let mut expected_databases = expected.databases;
    let key = |row: &capstats_capacity_model::DatabaseSizeAggregate| {
        (
            row.period.start(),
            row.instance_id,
            row.database_name.clone(),
        )
    };
    stored.sort_by_key(key);
    expected_databases.sort_by_key(key);
    assert_eq!(stored, expected_databases);
    assert_eq!(
        capstats_store::aggregates::instance_aggregates_between(
            &mut connection,
            PeriodType::Weekly,
            from,
            to
        )
        .unwrap(),
        expected.instances
    );

    // The ledger knows every period as computed by this session.
    let entries = capstats_store::ledger::entries_between(
        &mut connection,
        AggregationLevel::Instance,
        PeriodType::Weekly,
        from,
        to,
    )
    .unwrap();
    assert_eq!(entries.len(), 18);
    assert!(
        entries.iter().all(|entry| entry.is_up_to_date()
            && entry.computed_by_session_id == Some(report.session_id))
    );

    // Running it again changes nothing but calculated_at.
    let again = run_backfill(&pool, &request(PeriodType::Weekly, from, to), &NoProgress).unwrap();
    assert_eq!(again.rows_written, report.rows_written);
    assert_eq!(again.rows_deleted, 0);
    let mut restored = capstats_store::aggregates::database_aggregates_between(
        &mut connection,
        PeriodType::Weekly,
        from,
        to,
    )
    .unwrap();
    restored.sort_by_key(key);
    assert_eq!(restored, stored);

    // A database whose samples are gone loses its rows, and the deletions are counted in the
    // metrics (other tests of this process add theirs).
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "DELETE FROM database_size_stats
         WHERE database_name = (SELECT min(database_name) FROM database_size_stats)",
    )
    .execute(&mut connection)
    .unwrap();
    let deleted_before = aggregate_rows_counted("deleted");
    let after_deletion =
        run_backfill(&pool, &request(PeriodType::Weekly, from, to), &NoProgress).unwrap();
    assert!(after_deletion.rows_deleted > 0, "{after_deletion:?}");
    assert!(
        aggregate_rows_counted("deleted") >= deleted_before + after_deletion.rows_deleted as f64
    );
}

/// `capstats_aggregate_rows_total{operation}` of this process now.
fn aggregate_rows_counted(operation: &str) -> f64 {
    capstats_services::metrics::register();
    let text = capstats_services::metrics::render().unwrap();
    let series = format!("capstats_aggregate_rows_total{{operation=\"{operation}\"}}");
    capstats_test_support::metrics::sample(&text, &series).unwrap_or(0.0)
}

#[test]
fn a_backfill_rejects_an_empty_range() {
    let database = capstats_test_support::TestDatabase::new();
    let error = run_backfill(
        &database.pool(2),
        &request(
            PeriodType::Yearly,
            NaiveDate::from_ymd_opt(2025, 1, 2).unwrap(),
            NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
        ),
        &NoProgress,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "no yearly period starts between 2025-01-02 and 2025-12-31"
    );
}

#[test]
fn a_backfill_sends_heartbeats_while_a_batch_waits() {
    use diesel::connection::SimpleConnection;
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    seed_demo(&mut connection, &seed_options(), &NoProgress).unwrap();
    // Hold the lock of one month the backfill computes, so that its batch waits.
    let march = capstats_capacity_model::Period::containing(
        PeriodType::Monthly,
        NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
    );
    let mut holder = database.connection();
    holder.batch_execute("BEGIN").unwrap();
    capstats_store::ledger::lock_periods(&mut holder, AggregationLevel::Database, &[march])
        .unwrap();
    let pool = database.pool(2);
    let backfill = std::thread::spawn(move || {
        run_backfill(
            &pool,
            &BackfillRequest {
                levels: vec![AggregationLevel::Database],
                parallelism: 1,
                ..request(
                    PeriodType::Monthly,
                    NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
                    NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
                )
            },
            &NoProgress,
        )
    });
    // The batch waits; the session's heartbeat still moves on.
    let started = std::time::Instant::now();
    let heartbeat_moved = loop {
        let sessions = capstats_store::sessions::list_sessions(&mut connection, 1, 0).unwrap();
        let session = sessions.into_iter().next();
        if let Some(session) = session
            && let (Some(started_at), Some(heartbeat_at)) =
                (session.started_at, session.heartbeat_at)
            && heartbeat_at - started_at >= chrono::Duration::seconds(4)
        {
            break session.status == SessionStatus::Running;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no heartbeat while the batch waited"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(heartbeat_moved);
    holder.batch_execute("COMMIT").unwrap();
    let report = backfill.join().unwrap().unwrap();
    assert_eq!(report.status, SessionStatus::Completed);
}

/// A backfill of `period_type` periods from `from` to `to`, at both levels on two
/// connections, every sample kept, as of today.
fn request(period_type: PeriodType, from: NaiveDate, to: NaiveDate) -> BackfillRequest {
    BackfillRequest {
        period_type,
        from,
        to,
        levels: AggregationLevel::ALL.to_vec(),
        triggered_by: "test".into(),
        sync_type: SyncType::ManualTask,
        parallelism: 2,
        samples_kept_from: None,
        today: chrono::Utc::now().date_naive(),
    }
}

/// The newest session.
fn latest_session(connection: &mut diesel::PgConnection) -> capstats_store::sessions::Session {
    capstats_store::sessions::list_sessions(connection, 1, 0)
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
}

/// Weekly periods of four months at both levels on one connection: two batches, the database
/// level's first, then the instance level's.
fn two_batches_one_after_the_other() -> BackfillRequest {
    BackfillRequest {
        levels: vec![AggregationLevel::Database, AggregationLevel::Instance],
        parallelism: 1,
        ..request(
            PeriodType::Weekly,
            NaiveDate::from_ymd_opt(2024, 12, 2).unwrap(),
            NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
        )
    }
}

/// Reads the latest session's progress each time the backfill reports a step done.
struct SessionProgressWatcher {
    connection: std::sync::Mutex<diesel::PgConnection>,
    seen: std::sync::Mutex<Vec<(SessionStatus, String)>>,
}

impl capstats_services::Progress for SessionProgressWatcher {
    fn begin(&self, _total: u64, _message: &str) {}
    fn advance(&self, _steps: u64) {
        let session = latest_session(&mut self.connection.lock().unwrap());
        self.seen
            .lock()
            .unwrap()
            .push((session.status, session.progress_percentage.to_string()));
    }
    fn finish(&self) {}
}

#[test]
fn a_running_backfill_shows_the_share_of_its_batches_done_in_its_session() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    seed_demo(&mut connection, &seed_options(), &NoProgress).unwrap();
    let watcher = SessionProgressWatcher {
        connection: std::sync::Mutex::new(database.connection()),
        seen: std::sync::Mutex::new(Vec::new()),
    };
    let report = run_backfill(
        &database.pool(2),
        &two_batches_one_after_the_other(),
        &watcher,
    )
    .unwrap();
    assert_eq!(report.status, SessionStatus::Completed);
    // Its records only end with the run, yet the running session tells how far it is.
    assert_eq!(
        watcher.seen.into_inner().unwrap(),
        vec![
            (SessionStatus::Running, "50.00".to_owned()),
            (SessionStatus::Running, "100.00".to_owned()),
        ]
    );
    let session =
        capstats_store::sessions::get_session(&mut connection, report.session_id).unwrap();
    assert_eq!(session.progress_percentage.to_string(), "100.00");
}

/// Asks the latest session to stop once the backfill has reported `batches` batches done.
struct CancelAfterBatches {
    batches: usize,
    done: std::sync::atomic::AtomicUsize,
    connection: std::sync::Mutex<diesel::PgConnection>,
}

impl CancelAfterBatches {
    fn new(batches: usize, connection: diesel::PgConnection) -> Self {
        Self {
            batches,
            done: std::sync::atomic::AtomicUsize::new(0),
            connection: std::sync::Mutex::new(connection),
        }
    }
}

impl capstats_services::Progress for CancelAfterBatches {
    fn begin(&self, _total: u64, _message: &str) {}
    fn advance(&self, _steps: u64) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if done < self.batches {
            return;
        }
        let mut connection = self.connection.lock().unwrap();
        let session = latest_session(&mut connection);
        if session.cancel_requested_at.is_none() {
            capstats_store::sessions::request_cancel(&mut connection, session.id).unwrap();
        }
    }
    fn finish(&self) {}
}

#[test]
fn a_backfill_cancelled_while_running_stops_between_batches() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    seed_demo(&mut connection, &seed_options(), &NoProgress).unwrap();
    let canceller = CancelAfterBatches::new(1, database.connection());
    // The cancellation requested after the first batch keeps the second from running.
    let report = run_backfill(
        &database.pool(2),
        &two_batches_one_after_the_other(),
        &canceller,
    )
    .unwrap();
    assert_eq!(report.status, SessionStatus::Cancelled);
    let mut written = |table: &str| -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            count: i64,
        }
        diesel::RunQueryDsl::get_result::<Count>(
            diesel::sql_query(format!(
                "SELECT count(*) AS count FROM {table} WHERE period_type = 'weekly'"
            )),
            &mut connection,
        )
        .unwrap()
        .count
    };
    assert!(
        written("database_size_aggregations") > 0,
        "the first batch ran"
    );
    assert_eq!(
        written("instance_size_aggregations"),
        0,
        "the batch after the cancellation did not run"
    );
    let session =
        capstats_store::sessions::get_session(&mut connection, report.session_id).unwrap();
    assert_eq!(session.status, SessionStatus::Cancelled);
    assert_eq!(session.progress_percentage.to_string(), "50.00");
}

#[test]
fn a_backfill_cancelled_after_its_last_batch_ran_completes() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    seed_demo(&mut connection, &seed_options(), &NoProgress).unwrap();
    // Asked for once both batches are stored: nothing is left to stop, so the session says
    // what was done, as the ledger does.
    let canceller = CancelAfterBatches::new(2, database.connection());
    let report = run_backfill(
        &database.pool(2),
        &two_batches_one_after_the_other(),
        &canceller,
    )
    .unwrap();
    assert_eq!(report.status, SessionStatus::Completed, "{report:?}");
    let session =
        capstats_store::sessions::get_session(&mut connection, report.session_id).unwrap();
    assert!(session.cancel_requested_at.is_some());
    assert_eq!(session.status, SessionStatus::Completed);
    assert_eq!(session.cancelled_instances, 0, "{session:?}");
    assert_eq!(session.progress_percentage.to_string(), "100.00");
}

#[test]
fn a_backfill_of_periods_before_the_sample_retention_is_refused_and_changes_nothing() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    seed_demo(&mut connection, &seed_options(), &NoProgress).unwrap();
    let pool = database.pool(2);
    run_backfill(&pool, &two_batches_one_after_the_other(), &NoProgress).unwrap();
    let stored = capstats_store::aggregates::database_aggregates_between(
        &mut connection,
        PeriodType::Weekly,
        NaiveDate::from_ymd_opt(2024, 12, 2).unwrap(),
        NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
    )
    .unwrap();
    assert!(!stored.is_empty());
    // Samples kept from 2025-01-01: the weeks of December 2024 would be recomputed from part
    // of their samples, or none.
    let request = BackfillRequest {
        samples_kept_from: NaiveDate::from_ymd_opt(2025, 1, 1),
        ..two_batches_one_after_the_other()
    };
    let error = run_backfill(&pool, &request, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the weekly period starting 2024-12-02 is before the sample retention")
            && error.contains("keeps samples from 2025-01-01"),
        "{error}"
    );
    assert_eq!(
        capstats_store::aggregates::database_aggregates_between(
            &mut connection,
            PeriodType::Weekly,
            NaiveDate::from_ymd_opt(2024, 12, 2).unwrap(),
            NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
        )
        .unwrap(),
        stored
    );
}
