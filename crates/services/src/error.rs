//! The one error type of the use cases.

use capstats_store::StoreError;

/// Why a use case failed. Each variant keeps its cause as the error's `source`, so that the one
/// place that logs it (the API's error mapping, the worker's job handler, a command's exit)
/// shows the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request itself cannot be carried out (an empty date range, no level, a malformed
    /// cron expression); the text says why and names the offending input.
    #[error("{0}")]
    InvalidRequest(String),
    /// An input file is malformed; nothing was written.
    #[error(transparent)]
    Import(#[from] crate::import::ImportProblems),
    /// A batch of samples has bad items; nothing was written.
    #[error(transparent)]
    Rejected(#[from] crate::ingest::RejectedBatch),
    /// A job, schedule or session that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The job queue did not take a job.
    #[error("the job queue did not take the job")]
    Queue(#[source] crate::enqueue::QueueFailure),
    /// Collector settings or credentials are unusable (a malformed key, an unreadable CA
    /// file).
    #[error(transparent)]
    Collector(#[from] capstats_collectors::CollectorError),
    /// An export would hold more rows than it may; nothing was written.
    #[error(
        "the filter matches {rows} rows; an export holds at most {maximum}: narrow the window or the keys"
    )]
    ExportTooLarge {
        /// Rows the filter matches.
        rows: i64,
        /// The most an export holds.
        maximum: i64,
    },
    /// An export could not be written to its destination (a full disk, a client that went
    /// away).
    #[error("the export could not be written")]
    Output(#[source] std::io::Error),
    /// Notifications cannot be sent (a malformed SMTP setting, no trusted certificates).
    #[error(transparent)]
    Notification(#[from] capstats_notifications::NotificationError),
    /// A task of a collection panicked or was cancelled.
    #[error("a collection task did not finish")]
    Task(#[from] tokio::task::JoinError),
}

/// A failed statement of a transaction the use case opened itself.
impl From<capstats_store::QueryError> for ServiceError {
    fn from(error: capstats_store::QueryError) -> Self {
        Self::Store(StoreError::Query(error))
    }
}
