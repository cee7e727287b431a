//! The one error type of the collectors crate.

/// Why sizes could not be read or a credential not used.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The credential key is missing or malformed.
    #[error("credential key: {0}")]
    Key(String),
    /// A sealed credential cannot be opened: another key sealed it, or it was altered.
    #[error(
        "the stored password cannot be decrypted with CAPSTATS_CREDENTIAL_KEY (was it sealed with another key?)"
    )]
    Unsealable,
    /// The instance lacks what a collector needs.
    #[error("{0}")]
    Incomplete(String),
    /// An exclusion pattern is not a valid glob.
    #[error("invalid exclusion pattern `{pattern}`: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server did not answer in time.
    #[error("no answer from {server} within {seconds} s")]
    Timeout {
        /// `host:port`.
        server: String,
        /// The limit.
        seconds: u64,
    },
    /// The server refused the connection or the query.
    #[error("{server}: {reason}")]
    Server {
        /// `host:port`.
        server: String,
        /// The driver's message.
        reason: String,
    },
}
