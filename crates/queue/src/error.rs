//! The one error type of the job runtime.

use capstats_services::ServiceError;
use capstats_store::StoreError;

/// Why the job runtime failed. Causes are kept as `source`s; the worker logs each once, with
/// its job id and the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A use case failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// capstats' own database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A query on the job store failed, or it could not be reached.
    #[error("job store query failed")]
    Database(#[from] sqlx::Error),
    /// Creating or upgrading the job store's schema failed.
    #[error("job store set-up failed")]
    Setup(#[from] apalis_postgres::Error),
    /// A job id that is no ULID.
    #[error("job id is not a ULID")]
    JobId(#[from] ulid::DecodeError),
    /// A payload could not be written as JSON.
    #[error("job payload cannot be written")]
    Payload(#[from] serde_json::Error),
    /// The workers stopped with an error.
    #[error("the workers stopped")]
    Workers(#[from] apalis::prelude::MonitorError),
    /// The configuration is unusable.
    #[error(transparent)]
    Settings(#[from] capstats_settings::SettingsError),
    /// No runtime could be started for synchronous callers of the job store.
    #[error("cannot start a runtime for the job store")]
    Runtime(#[source] std::io::Error),
    /// The metrics endpoint cannot listen on its address.
    #[error("cannot serve metrics on CAPSTATS_WORKER_METRICS_BIND={0}")]
    Metrics(String, #[source] std::io::Error),
    /// SIGTERM and SIGINT cannot be listened for.
    #[error("cannot listen for shutdown signals")]
    Signals(#[source] std::io::Error),
    /// A job that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request cannot be carried out (retrying a running job, a pool too small).
    #[error("{0}")]
    InvalidRequest(String),
}

impl QueueError {
    /// The error and each of its causes, joined by `: `, for the one log line that reports it
    /// and for the job's recorded result.
    pub fn chain(&self) -> String {
        capstats_store::error_chain(self)
    }
}
