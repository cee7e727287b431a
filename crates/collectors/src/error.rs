//! The one error type of the collectors crate.

/// Why sizes could not be read or a credential not used.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The credential key is missing or malformed.
    #[error("credential key: {0}")]
    Key(String),
    /// A sealed credential cannot be opened: it was sealed for another instance or altered, or
    /// (first format) with a key that is not configured.
    #[error(
        "the stored password cannot be decrypted with CAPSTATS_CREDENTIAL_KEY or \
         CAPSTATS_CREDENTIAL_OLD_KEYS (sealed with another key or for another instance, or \
         altered); set the password again"
    )]
    Unsealable,
    /// A sealed credential names a key that is not configured.
    #[error(
        "the stored password was sealed with key {key_id}, which is neither \
         CAPSTATS_CREDENTIAL_KEY nor one of CAPSTATS_CREDENTIAL_OLD_KEYS"
    )]
    UnknownKey {
        /// The id the sealed value carries.
        key_id: String,
    },
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
    /// The trusted certificates for `verify-full` cannot be loaded.
    #[error("{what}: {reason}")]
    Trust {
        /// The file or store.
        what: String,
        /// What went wrong.
        reason: String,
        /// The cause, when there is one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The server asked for the password in a form capstats never sends (PostgreSQL
    /// cleartext password authentication, MySQL `mysql_clear_password`).
    #[error(
        "{server}: the server asked for the password in clear text ({method}); capstats \
         refuses to send it. Configure scram-sha-256 (PostgreSQL) or a hashing \
         authentication plugin (MySQL/MariaDB) for this login"
    )]
    CleartextRefused {
        /// `host:port`.
        server: String,
        /// What the server asked for.
        method: &'static str,
    },
    /// A MySQL/MariaDB password under `tls_mode` `require`: the server's certificate is not
    /// checked, and `caching_sha2_password`'s full authentication (which any server may ask
    /// for, by switching plugins) makes the driver send the password itself over the TLS
    /// connection, to whoever answers.
    #[error(
        "{server}: capstats sends a MySQL/MariaDB password only to a server whose certificate it \
         verified (or, with tls_mode disable, on a network you declared trusted): under \
         `require` an impostor could ask for the password itself (caching_sha2_password full \
         authentication). Set tls_mode to verify-full for this instance"
    )]
    UnverifiedPasswordRefused {
        /// `host:port`.
        server: String,
    },
    /// The server did not answer in time.
    #[error("no answer from {server} within {seconds} s")]
    Timeout {
        /// `host:port`.
        server: String,
        /// The limit.
        seconds: u64,
    },
    /// The server refused the connection or the query, or TLS failed.
    #[error("{server}: {reason}")]
    Server {
        /// `host:port`.
        server: String,
        /// The driver's message, with its causes.
        reason: String,
    },
}
