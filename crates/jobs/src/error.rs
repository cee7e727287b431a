//! The one error type of the jobs crate.

use store::StoreError;

/// Why a piece of work failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request itself cannot be carried out (an empty date range, no level).
    #[error("{0}")]
    InvalidRequest(String),
    /// An input file is malformed; nothing was written.
    #[error("{0}")]
    Import(#[from] crate::import::ImportProblems),
    /// A batch of samples has bad items; nothing was written.
    #[error(transparent)]
    Rejected(#[from] crate::ingest::RejectedBatch),
    /// Reading an input failed.
    #[error("cannot read {what}: {source}")]
    Read {
        /// What was being read.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A job, schedule or session that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The apalis job store could not be reached or set up.
    #[error("job store: {0}")]
    JobStore(String),
    /// Collector settings or credentials are unusable (a malformed key, an unreadable CA
    /// file).
    #[error(transparent)]
    Collector(#[from] collectors::CollectorError),
}
