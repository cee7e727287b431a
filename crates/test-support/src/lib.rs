#![doc = include_str!("../README.md")]

pub mod fake_servers;
pub mod fault_proxy;
pub mod latest_aggregations;
pub mod lock_waits;
pub mod metrics;
pub mod month_sums;
pub mod receivers;

use std::sync::atomic::{AtomicU32, Ordering};

use capstats_store::ConnectionPool;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use url::Url;

/// The server tests use when `DATABASE_URL` is not set.
pub const DEFAULT_SERVER_URL: &str = "postgres://root@127.0.0.1:5432";

/// Prefix of every database a test creates; `make test` drops leftovers with this prefix.
pub const TEST_DATABASE_PREFIX: &str = "capstats_test_";

/// The URL of the test server (`DATABASE_URL` or [`DEFAULT_SERVER_URL`]).
pub fn server_url() -> Url {
    let text = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER_URL.into());
    Url::parse(&text).unwrap_or_else(|error| panic!("DATABASE_URL `{text}` is not a URL: {error}"))
}

/// Creates the database `name` on the test server holding a table of `rows` rows of about
/// 1 kB each, so that a size reader has something to measure; the caller drops it.
pub fn create_filled_database(name: &str, rows: u32) {
    let mut server = PgConnection::establish(server_url().as_str()).expect("the test server");
    server
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create the database");
    let mut database = PgConnection::establish(&database_url(name)).expect("the new database");
    database
        .batch_execute(&format!(
            "CREATE TABLE filler AS
             SELECT g AS id, repeat('x', 1000) AS payload FROM generate_series(1, {rows}) g"
        ))
        .expect("fill the database");
}

/// The MariaDB/MySQL account collector tests use when `CAPSTATS_TEST_MYSQL_URL` is not set.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306";

/// The URL of the MariaDB/MySQL administrator account of the collector tests
/// (`CAPSTATS_TEST_MYSQL_URL` or [`DEFAULT_MYSQL_URL`]).
pub fn mysql_admin_url() -> String {
    std::env::var("CAPSTATS_TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL_URL.into())
}

/// A fresh name for something a test creates outside its own database (a database on a
/// server, a MariaDB schema or account): `capstats_test_<what>_<unique>`, so that
/// `make test` drops what an interrupted run left behind.
pub fn unique_name(what: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Eight hex digits keep account names within MySQL's 32 characters.
    let unique = RandomState::new().hash_one((
        std::process::id(),
        std::time::SystemTime::now(),
        NEXT.fetch_add(1, Ordering::Relaxed),
    )) as u32;
    format!("{TEST_DATABASE_PREFIX}{what}_{unique:08x}")
}

/// The URL of database `name` on the test server.
pub fn database_url(name: &str) -> String {
    let mut url = server_url();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

fn connect(name: &str) -> PgConnection {
    let url = database_url(name);
    PgConnection::establish(&url)
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error} (is PostgreSQL running?)"))
}

fn execute(connection: &mut PgConnection, sql: &str) {
    connection
        .batch_execute(sql)
        .unwrap_or_else(|error| panic!("`{sql}` failed: {error}"));
}

fn database_exists(connection: &mut PgConnection, name: &str) -> bool {
    use diesel::dsl::sql;
    use diesel::sql_types::Bool;
    diesel::select(
        sql::<Bool>("EXISTS (SELECT 1 FROM pg_database WHERE datname = ")
            .bind::<diesel::sql_types::Text, _>(name)
            .sql(")"),
    )
    .get_result(connection)
    .unwrap_or_else(|error| panic!("cannot list databases: {error}"))
}

/// A set-up a test database's template gets beyond the store's migrations: the job store's
/// schema, which belongs to `capstats-queue` (a crate this one does not depend on, so that
/// tests of the lower layers do not link the job runtime).
#[derive(Debug, Clone, Copy)]
struct TemplateSetup {
    /// Names the template (with the migrations' fingerprint); short, lower case.
    name: &'static str,
    /// Runs the set-up on the database at the URL.
    run: fn(&str) -> Result<(), String>,
}

/// The name of the migrated template for this build's migrations and `setup`.
fn template_name(setup: Option<&TemplateSetup>) -> String {
    let fingerprint = capstats_store::migrations::FINGERPRINT;
    match setup {
        None => format!("capstats_template_{fingerprint}"),
        Some(setup) => format!("capstats_template_{fingerprint}_{}", setup.name),
    }
}

/// Builds the template once; other processes wait on the advisory lock and then find it.
fn ensure_template(admin: &mut PgConnection, setup: Option<&TemplateSetup>) -> String {
    let template = template_name(setup);
    execute(admin, "SELECT pg_advisory_lock(4353, 1)");
    if !database_exists(admin, &template) {
        let building = format!("{template}_building");
        execute(
            admin,
            &format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
        );
        execute(admin, &format!("CREATE DATABASE {building}"));
        {
            let mut connection = connect(&building);
            capstats_store::migrations::run_pending(&mut connection)
                .unwrap_or_else(|error| panic!("migrating the template failed: {error}"));
        }
        if let Some(setup) = setup {
            (setup.run)(&database_url(&building)).unwrap_or_else(|error| {
                panic!("the template set-up `{}` failed: {error}", setup.name)
            });
        }
        execute(
            admin,
            &format!("ALTER DATABASE {building} RENAME TO {template}"),
        );
    }
    execute(admin, "SELECT pg_advisory_unlock(4353, 1)");
    template
}

static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// A fresh, migrated database for one test, dropped with the value.
pub struct TestDatabase {
    name: String,
}

impl TestDatabase {
    /// Creates a database cloned from the template holding the store's migrations.
    ///
    /// # Panics
    ///
    /// When the server is unreachable or a step fails; the message says which.
    pub fn new() -> Self {
        Self::from_template(None)
    }

    /// Creates a database cloned from a migrated template that also got the set-up `run`
    /// (the job store's schema, with `capstats_queue::job_store::setup_blocking`), built once
    /// under the short lower-case `name`.
    ///
    /// # Panics
    ///
    /// As [`TestDatabase::new`], and when the set-up fails.
    pub fn with_setup(name: &'static str, run: fn(&str) -> Result<(), String>) -> Self {
        Self::from_template(Some(&TemplateSetup { name, run }))
    }

    fn from_template(setup: Option<&TemplateSetup>) -> Self {
        let mut admin = connect("postgres");
        let template = ensure_template(&mut admin, setup);
        let name = format!(
            "{TEST_DATABASE_PREFIX}{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
        );
        execute(
            &mut admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        execute(
            &mut admin,
            &format!("CREATE DATABASE {name} TEMPLATE {template}"),
        );
        Self { name }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its connection URL.
    pub fn url(&self) -> String {
        database_url(&self.name)
    }

    /// A new connection to it.
    pub fn connection(&self) -> PgConnection {
        connect(&self.name)
    }

    /// A connection pool for it.
    pub fn pool(&self, size: u32) -> ConnectionPool {
        capstats_store::build_pool(&self.url(), size, std::time::Duration::from_secs(10))
            .unwrap_or_else(|error| panic!("cannot open a pool to {}: {error}", self.name))
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&database_url("postgres")) {
            let _ignored = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The `count` column of the one row `sql` answers on the database at `url`.
pub fn count(url: &str, sql: &str) -> i64 {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let mut connection = PgConnection::establish(url).unwrap();
    diesel::sql_query(sql)
        .get_result::<Count>(&mut connection)
        .unwrap()
        .count
}

/// Whether `error` holds libpq's words for a connection that went away (over TLS, or not).
pub fn names_a_lost_connection(error: &str) -> bool {
    error.contains("SSL SYSCALL error") || error.to_lowercase().contains("connection")
}

/// Panics, naming `table`, `context` and up to six differing rows, unless `table` holds
/// exactly the rows `expected` (a query with the table's columns, in order) returns, as a
/// multiset.
pub fn assert_table_holds(
    connection: &mut PgConnection,
    table: &str,
    expected: &str,
    context: &str,
) {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Difference {
        #[diesel(sql_type = diesel::sql_types::Text)]
        row: String,
    }
    let differences: Vec<Difference> = diesel::sql_query(format!(
        "SELECT 'missing: ' || row_to_json(missing)::text AS row
         FROM ({expected} EXCEPT ALL SELECT * FROM {table}) missing
         UNION ALL
         SELECT 'extra: ' || row_to_json(extra)::text
         FROM (SELECT * FROM {table} EXCEPT ALL {expected}) extra
         LIMIT 6"
    ))
    .load(connection)
    .expect("the rows are compared");
    let rows: Vec<String> = differences.into_iter().map(|found| found.row).collect();
    assert!(rows.is_empty(), "{table} differs, {context}: {rows:#?}");
}
