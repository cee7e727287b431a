//! Reading sizes from the real PostgreSQL and MariaDB servers of this machine, with databases
//! (and, on MariaDB, an account with a password) that each test creates and drops.

use std::time::Duration;

use capstats_capacity_model::{DbType, TlsMode};
use capstats_collectors::CollectorError;
use capstats_collectors::servers::{Exclusions, ServerConnection, mebibytes, read_database_sizes};
use capstats_collectors::tls::TlsTrust;
use sqlx::{AssertSqlSafe, Connection, Executor, MySqlConnection, PgConnection};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The system's roots; the local servers have no TLS, so their instances say `disable`.
fn trust() -> TlsTrust {
    TlsTrust::load(None).unwrap()
}

fn postgres_server(user: &str) -> ServerConnection {
    let url = capstats_test_support::server_url();
    ServerConnection {
        engine: DbType::Postgresql,
        host: url.host_str().unwrap_or("127.0.0.1").to_owned(),
        port: url.port(),
        user: user.to_owned(),
        password: None,
        database: None,
        tls_mode: TlsMode::Disable,
    }
}

#[tokio::test]
async fn postgresql_sizes_are_read_with_pg_database_size() {
    let name = capstats_test_support::unique_name("srv");
    let admin_url = capstats_test_support::server_url();
    let mut admin = PgConnection::connect(admin_url.as_str()).await.unwrap();
    // About 20 MiB, so that the size is clearly more than an empty database's.
    capstats_test_support::create_filled_database(&name, 20_000);

    let user = admin_url.username().to_owned();
    let exclusions = Exclusions::new(&["postgres".into()]).unwrap();
    let sizes = read_database_sizes(&postgres_server(&user), &exclusions, &trust(), TIMEOUT)
        .await
        .unwrap();
    let (bytes,): (i64,) = sqlx::query_as("SELECT pg_database_size($1::text::name)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let ours = sizes
        .iter()
        .find(|size| size.database_name == name)
        .expect("the new database is read");
    assert_eq!(ours.size_mb, mebibytes(bytes));
    assert!(ours.size_mb >= 15, "{ours:?}");
    assert_eq!((ours.data_size_mb, ours.log_size_mb), (None, None));
    assert!(sizes.iter().all(|size| size.database_name != "postgres"));
    assert!(
        sizes
            .iter()
            .all(|size| !size.database_name.starts_with("template"))
    );
    let mut names: Vec<_> = sizes
        .iter()
        .map(|size| size.database_name.clone())
        .collect();
    names.sort();
    assert_eq!(
        names,
        sizes
            .iter()
            .map(|size| size.database_name.clone())
            .collect::<Vec<_>>()
    );

    admin
        .execute(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
        .await
        .unwrap();
}

#[tokio::test]
async fn mysql_sizes_are_read_from_information_schema_with_a_password() {
    let database = capstats_test_support::unique_name("srv");
    let user = capstats_test_support::unique_name("reader");
    let password = "collector-secret";
    let mut admin = MySqlConnection::connect(&capstats_test_support::mysql_admin_url())
        .await
        .unwrap();
    for statement in [
        format!("CREATE DATABASE {database}"),
        format!("CREATE DATABASE {database}_empty"),
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"),
        format!("GRANT SELECT ON {database}.* TO '{user}'@'%'"),
        format!("GRANT SELECT ON {database}_empty.* TO '{user}'@'%'"),
        format!(
            "CREATE TABLE {database}.filler (id INT PRIMARY KEY, payload VARCHAR(1000)) ENGINE=InnoDB"
        ),
        format!(
            "INSERT INTO {database}.filler
             SELECT seq, REPEAT('x', 1000) FROM {database}.seq_1_to_20000"
        ),
        format!("ANALYZE TABLE {database}.filler"),
    ] {
        admin.execute(AssertSqlSafe(statement)).await.unwrap();
    }

    let url = url::Url::parse(&capstats_test_support::mysql_admin_url()).unwrap();
    let server = ServerConnection {
        engine: DbType::Mysql,
        host: url.host_str().unwrap_or("127.0.0.1").to_owned(),
        port: url.port(),
        user: user.clone(),
        password: Some(password.into()),
        database: None,
        tls_mode: TlsMode::Disable,
    };
    let exclusions = Exclusions::new(&["information_schema".into()]).unwrap();
    let sizes = read_database_sizes(&server, &exclusions, &trust(), TIMEOUT)
        .await
        .unwrap();
    let (total, data): (i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(data_length + index_length) AS SIGNED), CAST(SUM(data_length) AS SIGNED)
         FROM information_schema.tables WHERE table_schema = ?",
    )
    .bind(&database)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let names: Vec<&str> = sizes
        .iter()
        .map(|size| size.database_name.as_str())
        .collect();
    assert_eq!(
        names,
        [database.as_str(), &format!("{database}_empty")],
        "the account sees only its own databases; information_schema is excluded"
    );
    assert_eq!(sizes[0].size_mb, mebibytes(total));
    assert_eq!(sizes[0].data_size_mb, Some(mebibytes(data)));
    assert!(sizes[0].size_mb >= 10, "{:?}", sizes[0]);
    assert_eq!((sizes[1].size_mb, sizes[1].data_size_mb), (0, Some(0)));

    let wrong = ServerConnection {
        password: Some("wrong".into()),
        ..server.clone()
    };
    let refused = read_database_sizes(&wrong, &exclusions, &trust(), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, CollectorError::Server { reason, .. } if reason.contains("Access denied")),
        "{refused}"
    );

    for statement in [
        format!("DROP DATABASE {database}"),
        format!("DROP DATABASE {database}_empty"),
        format!("DROP USER '{user}'@'%'"),
    ] {
        admin.execute(AssertSqlSafe(statement)).await.unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_server_fails_with_the_reason() {
    // Nothing listens on port 1.
    let server = ServerConnection {
        port: Some(1),
        ..postgres_server("nobody")
    };
    let error = read_database_sizes(&server, &Exclusions::new(&[]).unwrap(), &trust(), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CollectorError::Server { server, .. } if server.ends_with(":1")),
        "{error}"
    );
    let unsupported = ServerConnection {
        engine: DbType::Oracle,
        ..postgres_server("nobody")
    };
    let error = read_database_sizes(
        &unsupported,
        &Exclusions::new(&[]).unwrap(),
        &trust(),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, CollectorError::Incomplete(_)), "{error}");
}
