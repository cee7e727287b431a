//! `capstats-api migrate` on a database that does not exist yet, twice: the first run creates
//! the database, our schema and the job store's; the second changes nothing.

use std::process::Command;

use diesel::{Connection, QueryableByName, RunQueryDsl};

/// Everything `migrate` creates, as sorted text: tables and columns, indexes, constraints and
/// functions of our schema and the job store's, the applied migrations of both, and the
/// seeded schedules.
const SCHEMA_SNAPSHOT: &str = "
    SELECT string_agg(item, E'\n' ORDER BY item) AS snapshot FROM (
        SELECT 'column ' || table_schema || '.' || table_name || '.' || column_name || ' '
               || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS item
        FROM information_schema.columns WHERE table_schema IN ('public', 'apalis')
        UNION ALL
        SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname IN ('public', 'apalis')
        UNION ALL
        SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' '
               || pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE connamespace IN ('public'::regnamespace, 'apalis'::regnamespace)
        UNION ALL
        SELECT 'function ' || oid::regprocedure || ' ' || md5(prosrc)
        FROM pg_proc WHERE pronamespace IN ('public'::regnamespace, 'apalis'::regnamespace)
        UNION ALL
        SELECT 'migration ' || version FROM __diesel_schema_migrations
        UNION ALL
        SELECT 'job store migration ' || version || ' ' || success FROM apalis._sqlx_migrations
        UNION ALL
        SELECT 'schedule ' || name || ' ' || cron_expression || ' ' || is_paused FROM schedules
    ) AS items";

#[derive(QueryableByName)]
struct Snapshot {
    #[diesel(sql_type = diesel::sql_types::Text)]
    snapshot: String,
}

fn snapshot(url: &str) -> String {
    let mut connection = diesel::PgConnection::establish(url).unwrap();
    diesel::sql_query(SCHEMA_SNAPSHOT)
        .get_result::<Snapshot>(&mut connection)
        .unwrap()
        .snapshot
}

#[test]
fn migrate_creates_the_database_and_is_idempotent() {
    let name = format!(
        "{}migrate_{}",
        capstats_test_support::TEST_DATABASE_PREFIX,
        std::process::id()
    );
    let url = capstats_test_support::database_url(&name);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_capstats-api"))
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .env("CAPSTATS_LOG", "warn")
            .output()
            .expect("the binary runs")
    };
    let first = run();
    let after_first = first.status.success().then(|| snapshot(&url));
    let second = run();
    let after_second = second.status.success().then(|| snapshot(&url));
    // Drop before asserting so that a failure leaves nothing behind.
    {
        use diesel::connection::SimpleConnection;
        let mut admin =
            diesel::PgConnection::establish(&capstats_test_support::database_url("postgres"))
                .unwrap();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
    }
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Every directory of migrations/ is one migration.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().is_dir())
        .count();
    assert!(
        stdout.starts_with(&format!("applied {migrations} migrations (")),
        "{stdout}"
    );
    assert!(stdout.contains("create_inventory_and_samples"), "{stdout}");
    assert!(second.status.success());
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim_end(),
        "schema is up to date; job store is ready"
    );
    let after_first = after_first.unwrap();
    for expected in [
        "column public.database_size_stats.size_mb",
        "column apalis.jobs.status",
        "migration 20261128000006",
        "schedule aggregate_capacity 0 4 * * * false",
    ] {
        assert!(after_first.contains(expected), "{expected}:\n{after_first}");
    }
    assert!(
        after_first.contains("job store migration "),
        "{after_first}"
    );
    assert_eq!(
        after_second.unwrap(),
        after_first,
        "the second run changed nothing"
    );
}
