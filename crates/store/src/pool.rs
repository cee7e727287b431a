//! The connection pool and the bridge from async code to synchronous diesel.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{Connection, PgConnection};
use tokio::sync::Semaphore;

use crate::StoreError;

/// A pool of diesel connections, and a first-come-first-served queue for async callers.
///
/// r2d2 hands a returned connection to whichever waiting thread wakes first, so under load
/// some requests wait far longer than others (with 32 concurrent requests on a pool of 8 the
/// 99th percentile latency of a list page was eight times its median). [`run_blocking`]
/// therefore takes a permit from a fair semaphore with one permit per connection before it
/// asks r2d2: callers wait in arrival order, and r2d2 has a free connection for each permit
/// holder. Synchronous callers (the worker's threads) use the r2d2 pool directly through
/// `Deref`.
#[derive(Clone)]
pub struct ConnectionPool {
    pool: Pool<ConnectionManager<PgConnection>>,
    permits: Arc<Semaphore>,
}

impl Deref for ConnectionPool {
    type Target = Pool<ConnectionManager<PgConnection>>;

    fn deref(&self) -> &Self::Target {
        &self.pool
    }
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ConnectionPool")
            .field("max_size", &self.pool.max_size())
            .field("free_permits", &self.permits.available_permits())
            .finish()
    }
}

/// Builds a pool of at most `max_size` connections to `database_url`. The first connection is
/// opened at once, so that an unreachable database fails here within `connect_timeout`, with
/// libpq's reason (which names the host and port, never the password).
pub fn build_pool(
    database_url: &str,
    max_size: u32,
    connect_timeout: Duration,
) -> Result<ConnectionPool, StoreError> {
    drop(connect(database_url, connect_timeout)?);
    let database_url = with_connect_timeout(database_url, connect_timeout);
    let pool = Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .connection_timeout(connect_timeout)
        .test_on_check_out(true)
        .error_handler(Box::new(QuietErrorHandler))
        .build_unchecked(ConnectionManager::new(database_url));
    let permits = Arc::new(Semaphore::new(max_size as usize));
    Ok(ConnectionPool { pool, permits })
}

/// Opens one connection to `database_url`, giving up after `connect_timeout`.
pub fn connect(database_url: &str, connect_timeout: Duration) -> Result<PgConnection, StoreError> {
    Ok(PgConnection::establish(&with_connect_timeout(
        database_url,
        connect_timeout,
    ))?)
}

/// `database_url` with libpq's `connect_timeout` (whole seconds, at least 2, as libpq counts
/// them) unless it sets one: without it a connection to an address that does not answer waits
/// for the operating system's TCP timeout, minutes. Both URL and key-value forms are
/// understood.
pub fn with_connect_timeout(database_url: &str, connect_timeout: Duration) -> String {
    if database_url.contains("connect_timeout=") {
        return database_url.to_owned();
    }
    let seconds = connect_timeout.as_secs().max(2);
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        let separator = if database_url.contains('?') { '&' } else { '?' };
        format!("{database_url}{separator}connect_timeout={seconds}")
    } else {
        format!("{database_url} connect_timeout={seconds}")
    }
}

/// r2d2 logs every failed connection attempt at error level, several per wait, before the
/// caller gets its one error; the caller reports (and logs once) what failed, so these go to
/// the debug level.
#[derive(Debug, Clone, Copy)]
struct QuietErrorHandler;

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for QuietErrorHandler {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::debug!(error = %error, "a pooled database connection could not be opened");
    }
}

/// Runs `work` with a pooled connection on tokio's blocking thread pool, so that synchronous
/// diesel calls never stall the async workers. This is the only bridge between async code and
/// the store; callers never use `block_in_place`. Callers queue for a connection in arrival
/// order (see [`ConnectionPool`]).
///
/// `work` may fail with the caller's own error type, so that a use case returns its error
/// from inside the closure instead of nesting results (`.await??`). It runs in the caller's
/// tracing span, so that what it logs carries the request's or the job's id.
pub async fn run_blocking<T, E, F>(pool: &ConnectionPool, work: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
{
    let permit = pool
        .permits
        .clone()
        .acquire_owned()
        .await
        .expect("the pool's semaphore is never closed");
    let pool = pool.pool.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _span = span.enter();
        // Held until the connection is back in the pool.
        let _permit = permit;
        let mut connection = pool.get().map_err(StoreError::from)?;
        work(&mut connection)
    })
    .await
    .map_err(StoreError::from)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_timeout_is_added_unless_the_url_has_one() {
        let five = Duration::from_secs(5);
        assert_eq!(
            with_connect_timeout("postgres://root@127.0.0.1:5432/capstats", five),
            "postgres://root@127.0.0.1:5432/capstats?connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("postgresql://h/capstats?sslmode=require", five),
            "postgresql://h/capstats?sslmode=require&connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("host=h dbname=capstats", Duration::from_secs(1)),
            "host=h dbname=capstats connect_timeout=2"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/capstats?connect_timeout=30", five),
            "postgres://h/capstats?connect_timeout=30"
        );
    }
}
