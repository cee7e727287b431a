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

/// Runs `statement` on the server's `postgres` database (creating and dropping databases).
fn administer(statement: &str) {
    use diesel::connection::SimpleConnection;
    diesel::PgConnection::establish(&capstats_test_support::database_url("postgres"))
        .unwrap()
        .batch_execute(statement)
        .unwrap();
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
    administer(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
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

#[test]
fn serve_and_migrate_fail_within_the_connect_timeout_with_one_line() {
    // A server that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    for command in ["serve", "migrate"] {
        let started = std::time::Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_capstats-api"))
            .arg(command)
            .env(
                "DATABASE_URL",
                format!("postgres://root:secret-password@127.0.0.1:{port}/capstats"),
            )
            .env("CAPSTATS_DATABASE_CONNECT_TIMEOUT_SECONDS", "2")
            .env("CAPSTATS_API_BIND", "127.0.0.1:0")
            .output()
            .expect("the binary runs");
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{command}: one line: {stderr}"
        );
        assert!(
            stderr.contains("connecting to DATABASE_URL")
                && stderr.contains(&format!("port {port}"))
                && stderr.contains("timeout expired")
                && !stderr.contains("secret-password"),
            "{command}: {stderr}"
        );
        assert!(
            took < std::time::Duration::from_secs(6),
            "{command} took {took:?}"
        );
    }
    drop(silent);
}

/// A running binary, killed when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status line of `GET path` on `port`, or `None` while nothing answers.
fn status_line(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.lines().next().map(str::to_owned)
}

/// Polls `check` every 100 ms until it holds, failing after 30 s with `what`.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{what} did not happen within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn an_upgrade_runs_migrate_first_and_then_the_binaries_come_up() {
    let name = format!(
        "{}upgrade_{}",
        capstats_test_support::TEST_DATABASE_PREFIX,
        std::process::id()
    );
    let url = capstats_test_support::database_url(&name);
    let api = std::path::Path::new(env!("CARGO_BIN_EXE_capstats-api"));
    let worker = api.with_file_name("capstats-worker");
    let command = |binary: &std::path::Path, argument: &str, port: u16| {
        let mut command = Command::new(binary);
        command
            .arg(argument)
            .env("DATABASE_URL", &url)
            .env("CAPSTATS_LOG", "error")
            .env("CAPSTATS_API_BIND", format!("127.0.0.1:{port}"))
            .env("CAPSTATS_SCHEDULER_ENABLED", "false");
        command
    };
    let outcome = std::panic::catch_unwind(|| {
        // The previous release's schema: every migration but the newest.
        administer(&format!("CREATE DATABASE {name}"));
        let mut connection = diesel::PgConnection::establish(&url).unwrap();
        let all = capstats_store::migrations::names().unwrap().len();
        let applied = capstats_store::migrations::run_first(&mut connection, all - 1).unwrap();
        assert_eq!(applied.len(), all - 1);

        // New binaries on the old schema refuse to start, saying what to do.
        for binary in [api, worker.as_path()] {
            let argument = if binary == api { "serve" } else { "run" };
            let output = command(binary, argument, 0).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                !output.status.success(),
                "{argument} started on the old schema"
            );
            assert!(
                stderr.contains("the database schema is older than this build")
                    && stderr.contains("capstats-api migrate"),
                "{argument}: {stderr}"
            );
        }

        // The deploy sequence: migrate, then the binaries come up.
        let output = command(api, "migrate", 0).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).starts_with("applied 1 migration ("),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let _api = Running(command(api, "serve", port).spawn().unwrap());
        wait_until("the API answering ready", || {
            status_line(port, "/api/v1/health/ready").is_some_and(|line| line.contains(" 200 "))
        });
        let _worker = Running(command(&worker, "run", 0).spawn().unwrap());
        wait_until("the worker registering on the job store", || {
            #[derive(QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                count: i64,
            }
            diesel::sql_query("SELECT count(*) AS count FROM apalis.workers")
                .get_result::<Count>(&mut connection)
                .is_ok_and(|found| found.count > 0)
        });
    });
    administer(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
