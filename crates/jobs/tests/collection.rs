//! Collection runs against the real PostgreSQL and MariaDB servers of this machine: databases
//! the test creates are read, written as today's samples and inventory, and recorded in a
//! `capacity` session; an unreachable instance fails its own record and stops nothing.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use sqlx::{AssertSqlSafe, Connection, Executor};

use capacity_model::{DbType, InstanceId};
use collectors::credentials::CredentialKey;
use collectors::servers::{Exclusions, mebibytes};
use jobs::collection::{CollectorSettings, run_collection};
use jobs::payloads::{CollectionJob, PAYLOAD_VERSION, Trigger};
use store::instances::{InstanceChanges, NewInstance};
use sync_session::{RecordStatus, SessionStatus, SyncCategory};

fn collector(key: &CredentialKey) -> CollectorSettings {
    let defaults = settings::Settings::default();
    CollectorSettings {
        key: Some(key.clone()),
        postgresql_exclusions: Exclusions::new(&defaults.collector_exclude_postgresql).unwrap(),
        mysql_exclusions: Exclusions::new(&defaults.collector_exclude_mysql).unwrap(),
        timeout: Duration::from_secs(10),
        concurrency: 2,
    }
}

/// Creates an instance with collector settings and returns its id.
fn add_instance(
    connection: &mut PgConnection,
    name: &str,
    db_type: DbType,
    port: i32,
    user: &str,
    sealed_password: Option<Vec<u8>>,
) -> InstanceId {
    let created = store::instances::create_instance(
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
    store::instances::update_instance(
        connection,
        created.id,
        &InstanceChanges {
            connection_user: Some(Some(user.into())),
            connection_password: Some(sealed_password),
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
    use store::schema::database_size_stats as stats;
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
    let database = test_support::TestDatabase::new();
    let pool = database.pool(4);
    let mut connection = database.connection();
    let key = CredentialKey::from_hex(&"5a".repeat(32)).unwrap();
    let today = Utc::now().date_naive();

    // A PostgreSQL database with about 10 MiB of data.
    let pg_name = test_support::unique_name("job");
    let server = test_support::server_url();
    let mut pg_admin = sqlx::PgConnection::connect(server.as_str()).await.unwrap();
    test_support::create_filled_database(&pg_name, 10_000);

    // A MariaDB schema readable by an account with a password.
    let my_name = test_support::unique_name("job");
    let my_user = test_support::unique_name("reader");
    let password = "reader-secret";
    let mut my_admin = sqlx::MySqlConnection::connect(&test_support::mysql_admin_url())
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
        Some(key.seal(password)),
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
    store::instances::create_instance(
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
        },
        session_id: None,
    };
    let report = run_collection(&pool, &job, None, "test-worker", &collector(&key), today)
        .await
        .unwrap();
    assert_eq!(report.instances, 3, "{report:?}");
    assert_eq!(report.failed_instances, 1, "{report:?}");
    assert_eq!(report.status, SessionStatus::Failed);

    let session = store::sessions::get_session(&mut connection, report.session_id).unwrap();
    assert_eq!(session.sync_category, SyncCategory::Capacity);
    assert_eq!(
        (session.successful_instances, session.failed_instances),
        (2, 1)
    );
    let records = store::sessions::session_records(&mut connection, report.session_id).unwrap();
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
    let known = store::instances::inventory(&mut connection, &[mariadb]).unwrap();
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

    // A tick's run: the claimed tick points at the session it ran as.
    let tick_job = jobs::job_store::new_job_id();
    diesel::sql_query(
        "INSERT INTO schedule_ticks (schedule_name, tick_at, claimed_by, job_id)
         VALUES ('collect_capacity', now(), 'test', $1)",
    )
    .bind::<diesel::sql_types::Text, _>(&tick_job)
    .execute(&mut connection)
    .unwrap();
    let scheduled = CollectionJob {
        trigger: Trigger::Schedule {
            schedule_name: "collect_capacity".into(),
            tick_at: chrono::Utc::now(),
        },
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
    let ticks = store::schedules::ticks_of(&mut connection, "collect_capacity").unwrap();
    assert_eq!(ticks[0].session_id, Some(ticked.session_id));

    // Without the key the sealed password cannot be used: that record fails with the reason.
    let keyless = CollectorSettings {
        key: None,
        ..collector(&key)
    };
    let without_key = run_collection(&pool, &only, None, "test-worker", &keyless, today)
        .await
        .unwrap();
    assert_eq!(without_key.status, SessionStatus::Failed);
    let reason = store::sessions::session_records(&mut connection, without_key.session_id).unwrap()
        [0]
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
