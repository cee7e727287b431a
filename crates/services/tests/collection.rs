//! Collection runs against the real PostgreSQL and MariaDB servers of this machine: databases
//! the test creates are read, written as today's samples and inventory, and recorded in a
//! `capacity` session; an unreachable instance fails its own record and stops nothing.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use sqlx::{AssertSqlSafe, Connection, Executor};

use capstats_capacity_model::{DbType, InstanceId, TlsMode};
use capstats_collectors::credentials::{CredentialKey, CredentialKeys};
use capstats_collectors::servers::{Exclusions, mebibytes};
use capstats_services::collection::{CollectorSettings, run_collection};
use capstats_services::payloads::{CollectionJob, PAYLOAD_VERSION, Trigger};
use capstats_store::instances::{InstanceChanges, NewInstance};
use capstats_store::schema::database_size_stats;
use capstats_sync_session::{RecordStatus, SessionStatus, SyncCategory};

fn collector(keys: &CredentialKeys) -> CollectorSettings {
    let defaults = capstats_settings::Settings::default();
    CollectorSettings {
        keys: Some(keys.clone()),
        trust: capstats_collectors::tls::TlsTrust::load(None).unwrap(),
        postgresql_exclusions: Exclusions::new(&defaults.collector_exclude_postgresql).unwrap(),
        mysql_exclusions: Exclusions::new(&defaults.collector_exclude_mysql).unwrap(),
        timeout: Duration::from_secs(10),
        concurrency: 2,
    }
}

/// Creates an instance with collector settings (TLS `disable`: the local servers have none)
/// and returns its id; a password is sealed for the new instance with `keys`.
fn add_instance(
    connection: &mut PgConnection,
    name: &str,
    db_type: DbType,
    port: i32,
    user: &str,
    password: Option<(&CredentialKeys, &str)>,
) -> InstanceId {
    let created = capstats_store::instances::create_instance(
        connection,
        &NewInstance {
            name: name.into(),
            db_type,
            host: Some("127.0.0.1".into()),
            port: Some(port),
            description: None,
        },
    )
    .unwrap();
    capstats_store::instances::update_instance(
        connection,
        created.id,
        &InstanceChanges {
            connection_user: Some(Some(user.into())),
            connection_password: Some(
                password.map(|(keys, password)| keys.seal(created.id, password)),
            ),
            tls_mode: Some(TlsMode::Disable),
            ..InstanceChanges::default()
        },
    )
    .unwrap();
    created.id
}

fn stored_size(
    connection: &mut PgConnection,
    instance: InstanceId,
    database: &str,
    date: NaiveDate,
) -> Option<(i64, Option<i64>)> {
    use capstats_store::schema::database_size_stats as stats;
    stats::table
        .filter(stats::instance_id.eq(instance.0))
        .filter(stats::database_name.eq(database))
        .filter(stats::collected_date.eq(date))
        .select((stats::size_mb, stats::data_size_mb))
        .first(connection)
        .optional()
        .unwrap()
}

#[tokio::test]
async fn a_collection_reads_every_server_and_records_each_outcome() {
    let database = capstats_test_support::TestDatabase::new();
    let pool = database.pool(4);
    let mut connection = database.connection();
    let key = CredentialKeys::new(
        CredentialKey::from_hex(&"5a".repeat(32)).unwrap(),
        Vec::new(),
    );
    let today = Utc::now().date_naive();

    // A PostgreSQL database with about 10 MiB of data.
    let pg_name = capstats_test_support::unique_name("job");
    let server = capstats_test_support::server_url();
    let mut pg_admin = sqlx::PgConnection::connect(server.as_str()).await.unwrap();
    capstats_test_support::create_filled_database(&pg_name, 10_000);

    // A MariaDB schema readable by an account with a password.
    let my_name = capstats_test_support::unique_name("job");
    let my_user = capstats_test_support::unique_name("reader");
    let password = "reader-secret";
    let mut my_admin = sqlx::MySqlConnection::connect(&capstats_test_support::mysql_admin_url())
        .await
        .unwrap();
    for statement in [
        format!("CREATE DATABASE {my_name}"),
        format!("CREATE TABLE {my_name}.filler (id INT PRIMARY KEY, payload TEXT)"),
        format!(
            "INSERT INTO {my_name}.filler SELECT seq, REPEAT('y', 2000) FROM {my_name}.seq_1_to_3000"
        ),
        format!("ANALYZE TABLE {my_name}.filler"),
        format!("CREATE USER '{my_user}'@'%' IDENTIFIED BY '{password}'"),
        format!("GRANT SELECT ON {my_name}.* TO '{my_user}'@'%'"),
    ] {
        my_admin.execute(AssertSqlSafe(statement)).await.unwrap();
    }

    let pg_user = server.username().to_owned();
    let postgres = add_instance(
        &mut connection,
        "pg-local",
        DbType::Postgresql,
        i32::from(server.port().unwrap_or(5432)),
        &pg_user,
        None,
    );
    let mariadb = add_instance(
        &mut connection,
        "mariadb-local",
        DbType::Mysql,
        3306,
        &my_user,
        Some((&key, password)),
    );
    let unreachable = add_instance(
        &mut connection,
        "pg-gone",
        DbType::Postgresql,
        1,
        "nobody",
        None,
    );
    // Not collectable: no connection user.
    capstats_store::instances::create_instance(
        &mut connection,
        &NewInstance {
            name: "mssql".into(),
            db_type: DbType::Sqlserver,
            host: Some("10.0.0.1".into()),
            port: None,
            description: None,
        },
    )
    .unwrap();

    let job = CollectionJob {
        version: PAYLOAD_VERSION,
        instance_ids: None,
        trigger: Trigger::Manual {
            requested_by: "test".into(),
            token_id: None,
        },
        logical_date: Some(today),
        session_id: None,
    };
    let counted_before = [servers_collected("completed"), servers_collected("failed")];
    let report = run_collection(&pool, &job, None, "test-worker", &collector(&key), today)
        .await
        .unwrap();
    assert_eq!(report.instances, 3, "{report:?}");
    assert_eq!(report.failed_instances, 1, "{report:?}");
    assert_eq!(report.status, SessionStatus::Failed);
    // Counted in the worker's metrics (other tests of this process add theirs).
    assert!(servers_collected("completed") >= counted_before[0] + 2.0);
    assert!(servers_collected("failed") >= counted_before[1] + 1.0);

    let session =
        capstats_store::sessions::get_session(&mut connection, report.session_id).unwrap();
    assert_eq!(session.sync_category, SyncCategory::Capacity);
    assert_eq!(
        (session.successful_instances, session.failed_instances),
        (2, 1)
    );
    let records =
        capstats_store::sessions::session_records(&mut connection, report.session_id).unwrap();
    let record = |id: InstanceId| {
        records
            .iter()
            .find(|record| record.instance_id == id)
            .unwrap()
            .clone()
    };
    assert_eq!(record(postgres).status, RecordStatus::Completed);
    assert!(record(postgres).items_synced >= 1);
    assert_eq!(record(mariadb).status, RecordStatus::Completed);
    assert_eq!(
        record(mariadb).items_synced,
        1,
        "the account sees one schema"
    );
    let failed = record(unreachable);
    assert_eq!(failed.status, RecordStatus::Failed);
    assert!(
        failed
            .error_message
            .as_deref()
            .unwrap_or_default()
            .contains("127.0.0.1:1"),
        "{failed:?}"
    );

    // Today's samples: sizes as the servers report them, system databases left out.
    let (bytes,): (i64,) = sqlx::query_as("SELECT pg_database_size($1::text::name)")
        .bind(&pg_name)
        .fetch_one(&mut pg_admin)
        .await
        .unwrap();
    let (pg_size, pg_data) = stored_size(&mut connection, postgres, &pg_name, today).unwrap();
    assert_eq!(pg_size, mebibytes(bytes));
    assert!(pg_size >= 8, "{pg_size}");
    assert_eq!(pg_data, None);
    assert_eq!(
        stored_size(&mut connection, postgres, "postgres", today),
        None
    );
    let (total, data): (i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(data_length + index_length) AS SIGNED), CAST(SUM(data_length) AS SIGNED)
         FROM information_schema.tables WHERE table_schema = ?",
    )
    .bind(&my_name)
    .fetch_one(&mut my_admin)
    .await
    .unwrap();
    assert_eq!(
        stored_size(&mut connection, mariadb, &my_name, today),
        Some((mebibytes(total), Some(mebibytes(data))))
    );
    // The inventory and the instance's daily total follow.
    let known = capstats_store::instances::inventory(&mut connection, &[mariadb]).unwrap();
    assert!(known.iter().any(|entry| entry.database_name == my_name));

    // Collect now for one instance only.
    let only = CollectionJob {
        instance_ids: Some(vec![mariadb]),
        ..job
    };
    let again = run_collection(&pool, &only, None, "test-worker", &collector(&key), today)
        .await
        .unwrap();
    assert_eq!(
        (again.instances, again.status),
        (1, SessionStatus::Completed)
    );

    // A tick's run: the claimed tick points at the session it ran as, and a run that starts
    // after its day (a tick of yesterday run late) records the sizes for the tick's day.
    let tick_job = capstats_services::new_job_id();
    diesel::sql_query(
        "INSERT INTO schedule_ticks (schedule_name, tick_at, claimed_by, job_id)
         VALUES ('collect_capacity', now(), 'test', $1)",
    )
    .bind::<diesel::sql_types::Text, _>(&tick_job)
    .execute(&mut connection)
    .unwrap();
    let yesterday = today.pred_opt().unwrap();
    let scheduled = CollectionJob {
        trigger: Trigger::Schedule {
            schedule_name: "collect_capacity".into(),
            tick_at: chrono::Utc::now(),
        },
        logical_date: Some(yesterday),
        ..only.clone()
    };
    let ticked = run_collection(
        &pool,
        &scheduled,
        Some(&tick_job),
        "test-worker",
        &collector(&key),
        today,
    )
    .await
    .unwrap();
    let ticks = capstats_store::schedules::ticks_of(&mut connection, "collect_capacity").unwrap();
    assert_eq!(ticks[0].session_id, Some(ticked.session_id));
    assert!(ticked.samples_written >= 1, "{ticked:?}");
    let recorded_days: Vec<chrono::NaiveDate> = database_size_stats::table
        .filter(database_size_stats::collected_date.ge(yesterday))
        .select(database_size_stats::collected_date)
        .distinct()
        .order(database_size_stats::collected_date)
        .load(&mut connection)
        .unwrap();
    assert!(
        recorded_days.contains(&yesterday),
        "the late tick recorded its own day: {recorded_days:?}"
    );

    // Without the key the sealed password cannot be used: that record fails with the reason.
    let keyless = CollectorSettings {
        keys: None,
        ..collector(&key)
    };
    let without_key = run_collection(&pool, &only, None, "test-worker", &keyless, today)
        .await
        .unwrap();
    assert_eq!(without_key.status, SessionStatus::Failed);
    let reason = capstats_store::sessions::session_records(&mut connection, without_key.session_id)
        .unwrap()[0]
        .error_message
        .clone()
        .unwrap_or_default();
    assert!(reason.contains("CAPSTATS_CREDENTIAL_KEY"), "{reason}");

    pg_admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE {pg_name} WITH (FORCE)"
        )))
        .await
        .unwrap();
    for statement in [
        format!("DROP DATABASE {my_name}"),
        format!("DROP USER '{my_user}'@'%'"),
    ] {
        my_admin.execute(AssertSqlSafe(statement)).await.unwrap();
    }
}

/// `capstats_collector_servers_total{outcome}` of this process now.
fn servers_collected(outcome: &str) -> f64 {
    capstats_services::metrics::register();
    let text = capstats_services::metrics::render().unwrap();
    let series = format!("capstats_collector_servers_total{{outcome=\"{outcome}\"}}");
    capstats_test_support::metrics::sample(&text, &series).unwrap_or(0.0)
}

/// A manual collection of `instances`, written as the wire format it is.
fn collect_only(instances: &[InstanceId]) -> CollectionJob {
    serde_json::from_value(serde_json::json!({
        "version": PAYLOAD_VERSION,
        "instance_ids": instances,
        "trigger": {"by": "manual", "requested_by": "test"},
    }))
    .unwrap()
}

fn keys(byte: &str, old: &[&str]) -> CredentialKeys {
    let key = |byte: &str| CredentialKey::from_hex(&byte.repeat(32)).unwrap();
    CredentialKeys::new(key(byte), old.iter().map(|byte| key(byte)).collect())
}

fn first_record_error(connection: &mut PgConnection, session_id: i64) -> String {
    capstats_store::sessions::session_records(connection, session_id).unwrap()[0]
        .error_message
        .clone()
        .unwrap_or_default()
}

#[tokio::test]
async fn an_instance_retargeted_to_an_impostor_sends_it_no_password() {
    use capstats_test_support::fake_servers::{
        MysqlAuthentication, PostgresAuthentication, fake_mysql, fake_postgres,
    };
    let database = capstats_test_support::TestDatabase::new();
    let pool = database.pool(4);
    let mut connection = database.connection();
    let keys = keys("6b", &[]);
    let today = Utc::now().date_naive();
    let postgres = add_instance(
        &mut connection,
        "pg",
        DbType::Postgresql,
        5432,
        "collector",
        Some((&keys, "pg-secret-for-the-real-server")),
    );
    let mysql = add_instance(
        &mut connection,
        "mysql",
        DbType::Mysql,
        3306,
        "collector",
        Some((&keys, "my-secret-for-the-real-server")),
    );
    let pg_impostor = fake_postgres(PostgresAuthentication::Cleartext, None).await;
    let my_impostor = fake_mysql(MysqlAuthentication::ClearPasswordInHandshake, None).await;

    // Someone who may edit instances, but not read their passwords, points both at servers of
    // their own.
    for (instance, port) in [(postgres, pg_impostor.port), (mysql, my_impostor.port)] {
        let updated = capstats_store::instances::update_instance(
            &mut connection,
            instance,
            &InstanceChanges {
                port: Some(Some(i32::from(port))),
                ..InstanceChanges::default()
            },
        )
        .unwrap();
        assert!(updated.password_cleared);
        assert!(!updated.instance.has_password);
    }
    let targets = capstats_store::instances::collection_targets(&mut connection, None).unwrap();
    assert!(
        targets
            .iter()
            .all(|target| target.sealed_password.is_none())
    );

    let report = run_collection(
        &pool,
        &collect_only(&[postgres, mysql]),
        None,
        "test-worker",
        &collector(&keys),
        today,
    )
    .await
    .unwrap();
    assert_eq!(report.failed_instances, 2, "{report:?}");
    let pg_seen = pg_impostor.recording();
    assert!(pg_seen.contains("collector"), "the impostor was reached");
    assert!(!pg_seen.contains("pg-secret-for-the-real-server"));
    let my_seen = my_impostor.recording();
    assert!(my_seen.contains("collector"), "the impostor was reached");
    assert!(!my_seen.contains("my-secret-for-the-real-server"));
}

#[tokio::test]
async fn a_sealed_password_copied_to_another_instance_does_not_open() {
    use capstats_store::schema::instances;
    let database = capstats_test_support::TestDatabase::new();
    let pool = database.pool(4);
    let mut connection = database.connection();
    let keys = keys("6c", &[]);
    let server = capstats_test_support::server_url();
    let port = i32::from(server.port().unwrap_or(5432));
    let owner = add_instance(
        &mut connection,
        "owner",
        DbType::Postgresql,
        port,
        server.username(),
        Some((&keys, "owner-secret")),
    );
    let other = add_instance(
        &mut connection,
        "other",
        DbType::Postgresql,
        port,
        server.username(),
        None,
    );
    // Copied by someone with write access to capstats' database.
    let sealed: Option<Vec<u8>> = instances::table
        .find(owner.0)
        .select(instances::connection_password)
        .first(&mut connection)
        .unwrap();
    diesel::update(instances::table.find(other.0))
        .set(instances::connection_password.eq(sealed))
        .execute(&mut connection)
        .unwrap();
    let report = run_collection(
        &pool,
        &collect_only(&[other]),
        None,
        "test-worker",
        &collector(&keys),
        Utc::now().date_naive(),
    )
    .await
    .unwrap();
    assert_eq!(report.failed_instances, 1, "{report:?}");
    let reason = first_record_error(&mut connection, report.session_id);
    assert!(reason.contains("cannot be decrypted"), "{reason}");
}

#[tokio::test]
async fn rotation_reseals_every_password_under_the_current_key() {
    use capstats_services::credentials::rotate_key;
    let database = capstats_test_support::TestDatabase::new();
    let pool = database.pool(2);
    let mut connection = database.connection();
    let (old, new) = (keys("01", &[]), keys("02", &["01"]));
    let mut instances = Vec::new();
    for number in 0..5 {
        let sealing = if number == 4 { &new } else { &old };
        instances.push(add_instance(
            &mut connection,
            &format!("instance-{number}"),
            DbType::Postgresql,
            5432,
            "collector",
            Some((sealing, &format!("secret-{number}"))),
        ));
    }
    // A deleted instance keeps its password row; it is re-sealed too.
    capstats_store::instances::delete_instance(&mut connection, instances[3]).unwrap();
    // One sealed with a key nobody configured any more.
    let lost = add_instance(
        &mut connection,
        "lost",
        DbType::Postgresql,
        5432,
        "collector",
        Some((&keys("03", &[]), "lost")),
    );

    let report = rotate_key(&pool, &new, 2).await.unwrap();
    assert_eq!(report.examined, 6, "{report:?}");
    assert_eq!(report.resealed, 4, "{report:?}");
    assert_eq!(report.already_current, 1, "{report:?}");
    assert_eq!(report.changed_meanwhile, 0, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].0, lost);
    assert!(
        report.summary().contains("4 re-sealed"),
        "{}",
        report.summary()
    );

    // Now the new key alone opens every password, each for its own instance.
    let only_new = keys("02", &[]);
    for (number, instance) in instances.iter().enumerate() {
        let stored = capstats_store::instances::sealed_passwords_after(
            &mut connection,
            InstanceId(instance.0 - 1),
            1,
        )
        .unwrap();
        assert_eq!(
            only_new.open(*instance, &stored[0].sealed).unwrap(),
            format!("secret-{number}")
        );
    }
    let again = rotate_key(&pool, &new, 2).await.unwrap();
    assert_eq!((again.resealed, again.already_current), (0, 5), "{again:?}");
}

#[tokio::test]
async fn a_queued_collection_fails_the_records_of_instances_deactivated_since_and_still_ends() {
    let database = capstats_test_support::TestDatabase::new();
    let pool = database.pool(4);
    let mut connection = database.connection();
    let keys = keys("7c", &[]);
    let today = Utc::now().date_naive();
    // This machine's PostgreSQL, trusted without a password, twice.
    let kept = add_instance(
        &mut connection,
        "kept",
        DbType::Postgresql,
        5432,
        "postgres",
        None,
    );
    let retired = add_instance(
        &mut connection,
        "retired",
        DbType::Postgresql,
        5432,
        "postgres",
        None,
    );
    // Queued as the API queues it: a pending session with a record per instance.
    let job = collect_only(&[kept, retired]);
    let queued = capstats_store::sessions::create_session(
        &mut connection,
        &capstats_services::collection::new_session(&job, Some("collect-job")),
        &[(kept, "kept".into()), (retired, "retired".into())],
    )
    .unwrap();
    // Before a worker takes the job, one instance is deactivated.
    capstats_store::instances::update_instance(
        &mut connection,
        retired,
        &InstanceChanges {
            is_active: Some(false),
            ..InstanceChanges::default()
        },
    )
    .unwrap();
    let report = run_collection(
        &pool,
        &job,
        Some("collect-job"),
        "test-worker",
        &collector(&keys),
        today,
    )
    .await
    .unwrap();
    assert_eq!(report.session_id, queued);
    assert_eq!(report.status, SessionStatus::Failed, "{report:?}");
    let records = capstats_store::sessions::session_records(&mut connection, queued).unwrap();
    let record = |id| {
        records
            .iter()
            .find(|record| record.instance_id == id)
            .unwrap()
    };
    assert_eq!(record(kept).status, RecordStatus::Completed, "{records:?}");
    assert_eq!(record(retired).status, RecordStatus::Failed, "{records:?}");
    let reason = record(retired).error_message.clone().unwrap_or_default();
    assert!(reason.contains("deactivated"), "{reason}");
}
