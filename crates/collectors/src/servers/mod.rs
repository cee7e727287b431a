//! Reading the sizes of every database of one monitored server.
//!
//! PostgreSQL: `pg_database_size` of every database that accepts connections (templates are
//! skipped). MySQL/MariaDB: data and index lengths of `information_schema.tables` summed per
//! schema, every schema of `information_schema.schemata` included (an empty one has size 0).
//! Sizes are whole MiB, rounded half up.

use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

use capstats_capacity_model::{DbType, TlsMode};

use crate::CollectorError;
use crate::tls::TlsTrust;

mod mysql;
mod postgresql;
mod refuse_cleartext;

use mysql::read_mysql;
use postgresql::read_postgresql;

/// Bytes in the MiB capstats counts sizes in.
const BYTES_PER_MIB: i64 = 1024 * 1024;

/// Where and as whom a collector connects.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConnection {
    /// The engine, which decides the protocol and the query.
    pub engine: DbType,
    /// Host name or address.
    pub host: String,
    /// Port; the engine's default (5432, 3306) when absent.
    pub port: Option<u16>,
    /// Login name.
    pub user: String,
    /// Password, already opened; none for servers that trust the collector's address.
    pub password: Option<String>,
    /// PostgreSQL: the database to connect to (default `postgres`); ignored for MySQL.
    pub database: Option<String>,
    /// Whether and how the connection uses TLS.
    pub tls_mode: TlsMode,
}

impl std::fmt::Debug for ServerConnection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs.
        formatter
            .debug_struct("ServerConnection")
            .field("engine", &self.engine)
            .field("server", &self.address())
            .field("user", &self.user)
            .field("database", &self.database)
            .field("tls_mode", &self.tls_mode)
            .finish_non_exhaustive()
    }
}

impl ServerConnection {
    /// The port, or the engine's default.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.engine {
            DbType::Postgresql => 5432,
            DbType::Mysql => 3306,
            DbType::Sqlserver => 1433,
            DbType::Oracle => 1521,
        })
    }

    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.effective_port())
    }
}

/// Database names a collector leaves out (system databases), as glob patterns
/// (`template*`, `rdsadmin`).
#[derive(Debug, Clone)]
pub struct Exclusions(GlobSet);

impl Exclusions {
    /// Compiles `patterns`; fails on the first invalid one.
    pub fn new(patterns: &[String]) -> Result<Self, CollectorError> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = Glob::new(pattern).map_err(|error| CollectorError::Pattern {
                pattern: pattern.clone(),
                reason: error.kind().to_string(),
            })?;
            builder.add(glob);
        }
        builder
            .build()
            .map(Self)
            .map_err(|error| CollectorError::Pattern {
                pattern: patterns.join(", "),
                reason: error.to_string(),
            })
    }

    /// Whether `database_name` is left out.
    pub fn excludes(&self, database_name: &str) -> bool {
        self.0.is_match(database_name)
    }
}

/// The size of one database as read from its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSize {
    /// The database's (schema's, for MySQL) name.
    pub database_name: String,
    /// Total size in MiB.
    pub size_mb: i64,
    /// MySQL: data without indexes, in MiB; PostgreSQL reports none.
    pub data_size_mb: Option<i64>,
    /// Size of log files in MiB; neither engine reports it per database.
    pub log_size_mb: Option<i64>,
}

/// Whole MiB of `bytes`, rounded half up (sizes are never negative).
pub fn mebibytes(bytes: i64) -> i64 {
    (bytes.max(0) + BYTES_PER_MIB / 2) / BYTES_PER_MIB
}

/// Connects to `server`, reads the size of every database not excluded, and disconnects; the
/// whole exchange must finish within `timeout`. Sorted by database name.
///
/// Everything the connection uses comes from `server` and `trust`: no `PG*` or `MYSQL_*`
/// variable and no password file of the worker is read, so an instance without a stored
/// password is never sent the worker's own.
pub async fn read_database_sizes(
    server: &ServerConnection,
    exclusions: &Exclusions,
    trust: &TlsTrust,
    timeout: Duration,
) -> Result<Vec<DatabaseSize>, CollectorError> {
    let reading = async {
        match server.engine {
            DbType::Postgresql => read_postgresql(server, trust).await,
            DbType::Mysql => read_mysql(server, trust).await,
            other => Err(CollectorError::Incomplete(format!(
                "capstats has no collector for {other} instances; send their samples through the ingest API"
            ))),
        }
    };
    let mut sizes =
        tokio::time::timeout(timeout, reading)
            .await
            .map_err(|_| CollectorError::Timeout {
                server: server.address(),
                seconds: timeout.as_secs(),
            })??;
    sizes.retain(|size| !exclusions.excludes(&size.database_name));
    sizes.sort_by(|left, right| left.database_name.cmp(&right.database_name));
    Ok(sizes)
}

/// A driver error with its causes on one line (each cause only once).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let part = current.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = current.source();
    }
    text
}

fn server_error(
    server: &ServerConnection,
    error: &(dyn std::error::Error + 'static),
) -> CollectorError {
    CollectorError::Server {
        server: server.address(),
        reason: describe(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_half_up_to_whole_mebibytes() {
        assert_eq!(mebibytes(0), 0);
        assert_eq!(mebibytes(BYTES_PER_MIB / 2 - 1), 0);
        assert_eq!(mebibytes(BYTES_PER_MIB / 2), 1);
        assert_eq!(mebibytes(3 * BYTES_PER_MIB), 3);
        assert_eq!(mebibytes(-5), 0);
    }

    #[test]
    fn exclusions_are_globs() {
        let exclusions = Exclusions::new(&["template*".into(), "mysql".into()]).unwrap();
        assert!(exclusions.excludes("template1"));
        assert!(exclusions.excludes("mysql"));
        assert!(!exclusions.excludes("mysql_app"));
        assert!(!exclusions.excludes("orders"));
        assert!(Exclusions::new(&["[".into()]).is_err());
    }
}
