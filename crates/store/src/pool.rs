//! The connection pool and the bridge from async code to synchronous diesel.

use std::time::Duration;

use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{Connection, PgConnection};

use crate::StoreError;

/// A pool of diesel connections.
pub type ConnectionPool = Pool<ConnectionManager<PgConnection>>;

/// Builds a pool of at most `max_size` connections to `database_url`. Opening the first
/// connection fails fast (within `connect_timeout`) with the reason when the database is not
/// reachable.
pub fn build_pool(
    database_url: &str,
    max_size: u32,
    connect_timeout: Duration,
) -> Result<ConnectionPool, StoreError> {
    let pool = Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .connection_timeout(connect_timeout)
        .test_on_check_out(true)
        .build_unchecked(ConnectionManager::new(database_url));
    if let Err(pool_error) = pool.get() {
        // r2d2 only reports a timeout; connect once directly to report the actual reason.
        PgConnection::establish(database_url)?;
        return Err(pool_error.into());
    }
    Ok(pool)
}

/// Runs `work` with a pooled connection on tokio's blocking thread pool, so that synchronous
/// diesel calls never stall the async workers. This is the only bridge between async code and
/// the store; callers never use `block_in_place`.
pub async fn run_blocking<T, F>(pool: &ConnectionPool, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut PgConnection) -> Result<T, StoreError> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut connection = pool.get()?;
        work(&mut connection)
    })
    .await
    .map_err(|error| StoreError::Task(error.to_string()))?
}
