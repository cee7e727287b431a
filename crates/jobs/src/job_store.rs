//! The apalis-postgres job store: its schema set-up.

use crate::JobError;

/// Creates or upgrades the `apalis` schema (jobs, workers and their functions) in the database
/// at `database_url`. Idempotent; part of `capstats-api migrate`.
pub async fn setup(database_url: &str) -> Result<(), JobError> {
    let pool = sqlx::PgPool::connect(database_url)
        .await
        .map_err(|error| JobError::JobStore(format!("cannot connect: {error}")))?;
    let result = apalis_postgres::PostgresStorage::<()>::setup(&pool)
        .await
        .map_err(|error| JobError::JobStore(format!("set-up failed: {error}")));
    pool.close().await;
    result
}
