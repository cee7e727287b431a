//! Waiting, in a test, until other connections of the test's database wait for a lock: the
//! observable state that says a concurrent step has reached the point the test holds it at.

use std::time::{Duration, Instant};

use diesel::prelude::*;

/// Returns once at least `waiters` backends of this database wait for a lock of `kind` (a
/// `pg_locks.locktype`, such as `transactionid` for a row another transaction holds), or of
/// any kind; panics naming `who` after 30 s.
pub fn wait_until_waiting(
    observer: &mut PgConnection,
    kind: Option<&str>,
    waiters: i64,
    who: &str,
) {
    let started = Instant::now();
    while lock_waits(observer, kind) < waiters {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{who} never waited"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Backends of this database waiting for a lock of `kind`, or of any kind.
pub fn lock_waits(connection: &mut PgConnection, kind: Option<&str>) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    diesel::sql_query(
        "SELECT count(*) AS count FROM pg_locks
         WHERE NOT granted AND ($1::text IS NULL OR locktype = $1)
           AND pid IN (SELECT pid FROM pg_stat_activity WHERE datname = current_database())",
    )
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(kind)
    .get_result::<Count>(connection)
    .unwrap()
    .count
}
