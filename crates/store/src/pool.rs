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
    let permits = Arc::new(Semaphore::new(max_size as usize));
    Ok(ConnectionPool { pool, permits })
}

/// Runs `work` with a pooled connection on tokio's blocking thread pool, so that synchronous
/// diesel calls never stall the async workers. This is the only bridge between async code and
/// the store; callers never use `block_in_place`. Callers queue for a connection in arrival
/// order (see [`ConnectionPool`]).
///
/// `work` may fail with the caller's own error type, so that a use case returns its error
/// from inside the closure instead of nesting results (`.await??`).
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
    tokio::task::spawn_blocking(move || {
        // Held until the connection is back in the pool.
        let _permit = permit;
        let mut connection = pool.get().map_err(StoreError::from)?;
        work(&mut connection)
    })
    .await
    .map_err(StoreError::from)?
}
