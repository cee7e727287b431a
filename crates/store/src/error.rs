//! The one error type of the store.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Everything that can go wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    /// A connection could not be opened.
    #[error("cannot connect to the database: {0}")]
    Connection(#[from] diesel::ConnectionError),
    /// The pool had no connection to hand out in time.
    #[error("no database connection available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// Applying or inspecting migrations failed.
    #[error("database migration failed")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database lacks migrations this build needs.
    #[error(
        "the database schema is older than this build ({pending} migrations pending, first {first}); run `capstats-api migrate`"
    )]
    SchemaOutdated {
        /// How many migrations are missing.
        pending: usize,
        /// The name of the first missing one.
        first: String,
    },
    /// The caller asked for something that cannot be done (an empty or unordered batch).
    #[error("invalid request to the store: {0}")]
    InvalidArgument(String),
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// A write conflicts with the current state (for example a session that already ended).
    #[error("{0}")]
    Conflict(String),
    /// Stored data this build cannot read (a value outside its enumerations, a number or a
    /// document it cannot decode): a fault of the database's contents, never of the request.
    #[error("{0}")]
    Corrupt(String),
    /// A run-state change the session rules do not allow.
    #[error(transparent)]
    Transition(#[from] capstats_sync_session::TransitionError),
    /// The blocking task running the query panicked or was cancelled.
    #[error("database task did not finish")]
    Task(#[from] tokio::task::JoinError),
    /// A thread doing database work panicked (a backfill's batch worker), with the panic's
    /// message.
    #[error("a database worker thread panicked: {0}")]
    ThreadPanicked(String),
}

impl StoreError {
    /// The error of a thread that panicked with `payload` (what `join` returns), keeping the
    /// panic's message where it has one.
    pub fn thread_panicked(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        StoreError::ThreadPanicked(message)
    }
}

impl StoreError {
    /// Whether the error is a unique-key violation (someone else inserted the same key).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// Whether retrying the same work later may succeed (the database was unreachable, a
    /// deadlock or serialization failure was detected).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connection(_) | StoreError::Pool(_) => true,
            StoreError::Query(DieselError::DatabaseError(kind, _)) => matches!(
                kind,
                DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection
            ),
            _ => false,
        }
    }
}

/// An error and each of its causes, joined by `: `: what the one log line reporting an error
/// shows, so that the real cause (a refused connection, a constraint) is never lost behind a
/// summary.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // `#[error(transparent)]` and "{0}" wrappers repeat their cause's text.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicked_thread_keeps_its_message() {
        let formatted = std::thread::spawn(|| panic!("batch {} broke", 7))
            .join()
            .unwrap_err();
        assert_eq!(
            StoreError::thread_panicked(formatted.as_ref()).to_string(),
            "a database worker thread panicked: batch 7 broke"
        );
        let literal = std::thread::spawn(|| panic!("plain")).join().unwrap_err();
        assert_eq!(
            StoreError::thread_panicked(literal.as_ref()).to_string(),
            "a database worker thread panicked: plain"
        );
    }
}
