//! The job store's housekeeping against a real database: pruning keeps what is unfinished,
//! recent or still referenced (and every schedule's latest tick), and the sweeper closes the
//! sessions nobody will finish.

use std::time::Duration;

use chrono::NaiveDate;
use diesel::connection::SimpleConnection;
use sqlx::Row;

use capstats_queue::job_store;
use capstats_services::payloads::{Job, LevelScope, MaintenanceJob, PAYLOAD_VERSION, Trigger};
use capstats_sync_session::SessionStatus;

fn prune_payload() -> Job {
    Job::Maintenance(MaintenanceJob::PruneJobStore {
        version: PAYLOAD_VERSION,
        trigger: Trigger::Manual {
            requested_by: "test".into(),
            token_id: None,
        },
    })
}

async fn ids(pool: &sqlx::PgPool, query: &'static str) -> Vec<String> {
    sqlx::query(query)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

/// A fresh database with the store's schema and the job store's.
fn database() -> capstats_test_support::TestDatabase {
    capstats_test_support::TestDatabase::with_setup("job_store", |url| {
        capstats_queue::job_store::setup_blocking(url).map_err(|error| error.chain())
    })
}

#[test]
fn pruning_removes_only_what_is_finished_and_old_and_keeps_each_schedule_s_latest_tick() {
    let database = database();
    let store = database.pool(2);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = job_store::connect(&database.url(), 2).await.unwrap();
        // name → (status, attempts, max attempts, finished days ago, held by)
        let jobs = [
            ("done_old", "Done", 1, 3, Some(10), None),
            ("done_recent", "Done", 1, 3, Some(1), None),
            ("killed_old", "Killed", 1, 3, Some(10), None),
            ("failed_with_attempts_left", "Failed", 1, 3, Some(10), None),
            ("failed_exhausted", "Failed", 3, 3, Some(10), None),
            ("pending", "Pending", 0, 3, None, None),
            ("running", "Running", 1, 3, None, Some("worker_old_busy")),
        ];
        for (worker, days) in [
            ("worker_old_idle", 10),
            ("worker_old_busy", 10),
            ("worker_recent", 0),
        ] {
            sqlx::query(
                "INSERT INTO apalis.workers (id, worker_type, storage_name, last_seen)
                 VALUES ($1, 'capstats_maintenance', 'test', now() - $2 * interval '1 day')",
            )
            .bind(worker)
            .bind(days)
            .execute(&pool)
            .await
            .unwrap();
        }
        // Job ids are ULIDs; the test knows them by name.
        let mut names = std::collections::BTreeMap::new();
        for (name, status, attempts, max_attempts, days, worker) in jobs {
            let id = capstats_services::new_job_id();
            names.insert(id.clone(), name);
            job_store::enqueue(&pool, &prune_payload(), &id, max_attempts)
                .await
                .unwrap();
            sqlx::query(
                "UPDATE apalis.jobs SET status = $2, attempts = $3,
                        done_at = now() - $4 * interval '1 day', lock_by = $5
                 WHERE id = $1",
            )
            .bind(&id)
            .bind(status)
            .bind(attempts)
            .bind(days)
            .bind(worker)
            .execute(&pool)
            .await
            .unwrap();
        }
        let mut connection = database.connection();
        connection
            .batch_execute(
                "INSERT INTO schedule_ticks (schedule_name, tick_at, claimed_by) VALUES
                     ('aggregate_capacity', now() - interval '20 days', 'test'),
                     ('aggregate_capacity', now() - interval '19 days', 'test'),
                     ('maintain_partitions', now() - interval '20 days', 'test'),
                     ('maintain_partitions', now() - interval '1 day', 'test')",
            )
            .unwrap();
        // Records of read changes: a day old goes, an hour old stays.
        connection
            .batch_execute(
                "INSERT INTO capacity_read_changes (transaction_id, recorded_at) VALUES
                     (1, now() - interval '25 hours'), (2, now() - interval '1 hour')",
            )
            .unwrap();

        let summary = capstats_queue::jobs::prune_job_store(
            &pool,
            &store,
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(365 * 86_400),
        )
        .await
        .unwrap();
        assert_eq!(
            (
                summary.job_store.jobs,
                summary.job_store.workers,
                summary.store.ticks,
                summary.store.read_changes
            ),
            (3, 1, 2, 1)
        );
        let mut kept: Vec<&str> = ids(&pool, "SELECT id FROM apalis.jobs")
            .await
            .iter()
            .map(|id| names[id])
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                "done_recent",
                "failed_with_attempts_left",
                "pending",
                "running"
            ]
        );
        assert_eq!(
            ids(&pool, "SELECT id FROM apalis.workers ORDER BY id").await,
            ["worker_old_busy", "worker_recent"]
        );
        // aggregate_capacity keeps its latest tick though it is old: it is the cursor.
        assert_eq!(
            ids(
                &pool,
                "SELECT schedule_name || ' ' || (now() - tick_at > interval '7 days')
                 FROM schedule_ticks ORDER BY 1"
            )
            .await,
            ["aggregate_capacity true", "maintain_partitions false"]
        );
    });
}

#[test]
fn the_sweeper_closes_sessions_whose_job_ended_unstarted_and_those_gone_silent() {
    let database = database();
    let store = database.pool(2);
    let mut connection = database.connection();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let queue = capstats_queue::PostgresQueue::connect(&database.url(), 2, 3)
            .await
            .unwrap();
        let pool = queue.pool().clone();
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        // A pending session whose job ran out of attempts before any worker started it.
        let unstarted = capstats_services::control::aggregate_current(
            &store,
            &queue,
            capstats_capacity_model::PeriodType::Monthly,
            LevelScope::All,
            capstats_services::payloads::Trigger::manual("test", None),
            today,
        )
        .await
        .unwrap();
        sqlx::query("UPDATE apalis.jobs SET status = 'Failed', attempts = 3 WHERE id = $1")
            .bind(&unstarted.job_id)
            .execute(&pool)
            .await
            .unwrap();
        // A pending session whose job is still queued: left alone.
        let queued = capstats_services::control::aggregate_current(
            &store,
            &queue,
            capstats_capacity_model::PeriodType::Weekly,
            LevelScope::All,
            capstats_services::payloads::Trigger::manual("test", None),
            today,
        )
        .await
        .unwrap();
        // Two running sessions: one silent for an hour, one with a fresh heartbeat.
        let new_session = || capstats_store::sessions::NewSession {
            sync_category: capstats_sync_session::SyncCategory::Aggregation,
            sync_type: capstats_sync_session::SyncType::ManualTask,
            triggered_by: "test".into(),
            parameters: serde_json::json!({}),
            job_id: None,
            requested_by_token_id: None,
        };
        let silent = capstats_store::sessions::create_session(&mut connection, &new_session(), &[]).unwrap();
        capstats_store::sessions::start_session(&mut connection, silent, "gone:1").unwrap();
        let alive = capstats_store::sessions::create_session(&mut connection, &new_session(), &[]).unwrap();
        capstats_store::sessions::start_session(&mut connection, alive, "here:2").unwrap();
        connection
            .batch_execute(&format!(
                "UPDATE sync_sessions SET heartbeat_at = now() - interval '1 hour' WHERE id = {silent}"
            ))
            .unwrap();

        let mut settings = capstats_settings::Settings {
            database_url: database.url(),
            ..capstats_settings::Settings::default()
        };
        settings.session_timeout_seconds = 120;
        let state = capstats_queue::worker::WorkerState {
            collector: capstats_services::collection::CollectorSettings::from_settings(&settings).unwrap(),
            alerts: capstats_services::alerts::DeliverySettings::from_settings(&settings, None).unwrap(),
            store: store.clone(),
            job_store: pool.clone(),
            name: "sweeper:3".into(),
            running_jobs: Default::default(),
            settings,
        };
        capstats_queue::scheduler::sweep(&state).await.unwrap();

        let status = |connection: &mut capstats_store::PgConnection, id| {
            let session = capstats_store::sessions::get_session(connection, id).unwrap();
            (session.status, session.error_message.unwrap_or_default())
        };
        let (unstarted_status, reason) = status(&mut connection, unstarted.session_id.unwrap());
        assert_eq!(unstarted_status, SessionStatus::Failed);
        assert!(
            reason.contains(&unstarted.job_id) && reason.contains("before the run started"),
            "{reason}"
        );
        let (silent_status, reason) = status(&mut connection, silent);
        assert_eq!(silent_status, SessionStatus::Failed);
        assert!(reason.contains("worker lost: gone:1"), "{reason}");
        assert_eq!(
            status(&mut connection, queued.session_id.unwrap()).0,
            SessionStatus::Pending
        );
        assert_eq!(status(&mut connection, alive).0, SessionStatus::Running);
    });
}
