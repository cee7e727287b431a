//! Reading the sizes of every database of one monitored server.
//!
//! PostgreSQL: `pg_database_size` of every database that accepts connections (templates are
//! skipped). MySQL/MariaDB: data and index lengths of `information_schema.tables` summed per
//! schema, every schema of `information_schema.schemata` included (an empty one has size 0).
//! Sizes are whole MiB, rounded half up.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use mysql_async::prelude::Queryable;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_postgres::config::{ChannelBinding, SslMode};
use tokio_postgres::tls::{NoTls, TlsConnect};
use tokio_rustls::TlsConnector;

use capstats_capacity_model::{DbType, TlsMode};

use crate::CollectorError;
use crate::tls::TlsTrust;

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

/// The name the server's certificate must carry (`verify-full`), or be presented (SNI).
fn tls_server_name(server: &ServerConnection) -> Result<ServerName<'static>, CollectorError> {
    ServerName::try_from(server.host.clone()).map_err(|_| CollectorError::Server {
        server: server.address(),
        reason: format!(
            "`{}` is not a host name or address TLS can check",
            server.host
        ),
    })
}

const POSTGRESQL_SIZES: &str = "SELECT datname::text, pg_database_size(oid)
     FROM pg_database
     WHERE datallowconn AND NOT datistemplate";

/// PostgreSQL through tokio-postgres.
///
/// sqlx 0.9, which capstats used before, cannot be used here: `PgConnectOptions::new()` (and
/// every other constructor, URL parsing included) fills host, port, user, password, database,
/// TLS files and `options` from `PG*` variables and the password from `~/.pgpass`, with no way
/// to unset the password or the client certificate afterwards; and its start-up answers
/// `AuthenticationCleartextPassword` with the password unconditionally (no option refuses
/// it). tokio-postgres reads no environment, and `Config::connect_raw` runs over a stream
/// capstats opens. capstats wraps that stream (inside TLS, where TLS is used) in
/// [`RefuseCleartext`], which fails the read that would hand the driver a cleartext
/// request, so the driver never answers one; MD5 and SCRAM-SHA-256 (which send only proofs
/// derived from the password) work as before.
async fn read_postgresql(
    server: &ServerConnection,
    trust: &TlsTrust,
) -> Result<Vec<DatabaseSize>, CollectorError> {
    let mut config = tokio_postgres::Config::new();
    config
        .user(&server.user)
        .dbname(server.database.as_deref().unwrap_or("postgres"))
        .application_name("capstats-collector")
        // Without a way to compute the certificate's tls-server-end-point hash for every
        // signature algorithm, capstats does not offer channel binding; `verify-full` already
        // authenticates the server.
        .channel_binding(ChannelBinding::Disable);
    if let Some(password) = &server.password {
        config.password(password);
    }
    let stream = TcpStream::connect((server.host.as_str(), server.effective_port()))
        .await
        .map_err(|error| server_error(server, &error))?;
    // Small request-response messages: do not wait to fill packets.
    let _ = stream.set_nodelay(true);
    let refused = Arc::new(AtomicBool::new(false));
    let rows = match trust.client_config(server.tls_mode) {
        None => {
            config.ssl_mode(SslMode::Disable);
            let guarded = RefuseCleartext::new(stream, refused.clone());
            query_postgresql(&config, guarded, NoTls).await
        }
        Some(client_config) => {
            // `require` and `verify-full` both insist on TLS; they differ in the verifier.
            config.ssl_mode(SslMode::Require);
            let tls = PostgresTls {
                connector: TlsConnector::from(client_config),
                server_name: tls_server_name(server)?,
                refused: refused.clone(),
            };
            query_postgresql(&config, stream, tls).await
        }
    };
    if refused.load(Ordering::SeqCst) {
        return Err(CollectorError::CleartextRefused {
            server: server.address(),
            method: "AuthenticationCleartextPassword",
        });
    }
    let rows = rows.map_err(|error| server_error(server, &error))?;
    Ok(rows
        .into_iter()
        .map(|(database_name, bytes)| DatabaseSize {
            database_name,
            size_mb: mebibytes(bytes),
            data_size_mb: None,
            log_size_mb: None,
        })
        .collect())
}

/// Starts the session over `stream`, runs the size query and closes the session.
async fn query_postgresql<S, T>(
    config: &tokio_postgres::Config,
    stream: S,
    tls: T,
) -> Result<Vec<(String, i64)>, tokio_postgres::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: TlsConnect<S>,
    T::Stream: Unpin,
{
    let (client, connection) = config.connect_raw(stream, tls).await?;
    // The connection future drives the socket; it ends once the client is dropped.
    let query = async move {
        let rows = client.query(POSTGRESQL_SIZES, &[]).await;
        drop(client);
        rows
    };
    let (rows, _closed) = tokio::join!(query, connection);
    Ok(rows?
        .iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)))
        .collect())
}

/// TLS for tokio-postgres with capstats' rustls configuration; the TLS stream is wrapped in
/// [`RefuseCleartext`], so the guard reads the decrypted messages.
struct PostgresTls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    refused: Arc<AtomicBool>,
}

type PostgresTlsStream = RefuseCleartext<tokio_rustls::client::TlsStream<TcpStream>>;

impl TlsConnect<TcpStream> for PostgresTls {
    type Stream = PostgresTlsStream;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<PostgresTlsStream>> + Send>>;

    fn connect(self, stream: TcpStream) -> Self::Future {
        Box::pin(async move {
            let tls = self.connector.connect(self.server_name, stream).await?;
            Ok(RefuseCleartext::new(tls, self.refused))
        })
    }
}

impl tokio_postgres::tls::TlsStream for PostgresTlsStream {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        tokio_postgres::tls::ChannelBinding::none()
    }
}

/// The message a [`RefuseCleartext`] read fails with.
#[derive(Debug, thiserror::Error)]
#[error("the server asked for a cleartext password; refused")]
struct CleartextRequested;

/// Passes a PostgreSQL server's bytes through, following the message framing (a type byte and
/// a 4-byte big-endian length that counts itself), and fails the read that carries an
/// authentication request of code 3 (`AuthenticationCleartextPassword`) before the driver
/// sees it. Nothing is parsed beyond the frame headers and the authentication code.
struct RefuseCleartext<S> {
    inner: S,
    scanner: MessageScanner,
    refused: Arc<AtomicBool>,
}

impl<S> RefuseCleartext<S> {
    fn new(inner: S, refused: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            scanner: MessageScanner::Header {
                bytes: [0; 5],
                filled: 0,
            },
            refused,
        }
    }
}

/// Where in the server's message stream the next byte falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageScanner {
    /// Within the 5-byte header (type and length).
    Header { bytes: [u8; 5], filled: usize },
    /// Within the 4-byte code of an `R` (authentication) message; `rest` follows it.
    AuthenticationCode {
        bytes: [u8; 4],
        filled: usize,
        rest: usize,
    },
    /// Within a body that is not inspected.
    Body { remaining: usize },
}

/// `AuthenticationCleartextPassword`'s code.
const AUTHENTICATION_CLEARTEXT_PASSWORD: i32 = 3;

impl MessageScanner {
    const START: Self = Self::Header {
        bytes: [0; 5],
        filled: 0,
    };

    /// Follows `data`; fails when it completes a cleartext password request.
    fn feed(&mut self, mut data: &[u8]) -> Result<(), CleartextRequested> {
        while !data.is_empty() {
            match self {
                Self::Header { bytes, filled } => {
                    let taken = (5 - *filled).min(data.len());
                    bytes[*filled..*filled + taken].copy_from_slice(&data[..taken]);
                    *filled += taken;
                    data = &data[taken..];
                    if *filled == 5 {
                        let length = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
                        let body = (length as usize).saturating_sub(4);
                        *self = match (bytes[0], body) {
                            (b'R', 4..) => Self::AuthenticationCode {
                                bytes: [0; 4],
                                filled: 0,
                                rest: body - 4,
                            },
                            (_, 0) => Self::START,
                            (_, remaining) => Self::Body { remaining },
                        };
                    }
                }
                Self::AuthenticationCode {
                    bytes,
                    filled,
                    rest,
                } => {
                    let taken = (4 - *filled).min(data.len());
                    bytes[*filled..*filled + taken].copy_from_slice(&data[..taken]);
                    *filled += taken;
                    data = &data[taken..];
                    if *filled == 4 {
                        if i32::from_be_bytes(*bytes) == AUTHENTICATION_CLEARTEXT_PASSWORD {
                            return Err(CleartextRequested);
                        }
                        *self = match *rest {
                            0 => Self::START,
                            remaining => Self::Body { remaining },
                        };
                    }
                }
                Self::Body { remaining } => {
                    let taken = (*remaining).min(data.len());
                    *remaining -= taken;
                    data = &data[taken..];
                    if *remaining == 0 {
                        *self = Self::START;
                    }
                }
            }
        }
        Ok(())
    }
}

fn refusal() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, CleartextRequested)
}

impl<S: AsyncRead + Unpin> AsyncRead for RefuseCleartext<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.refused.load(Ordering::SeqCst) {
            return Poll::Ready(Err(refusal()));
        }
        let before = buffer.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(context, buffer))?;
        if this.scanner.feed(&buffer.filled()[before..]).is_err() {
            // Take the request back out of the buffer: the driver must not see it.
            buffer.set_filled(before);
            this.refused.store(true, Ordering::SeqCst);
            return Poll::Ready(Err(refusal()));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RefuseCleartext<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(context, data)
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(context)
    }
}

const MYSQL_SIZES: &str = "SELECT CAST(schemata.schema_name AS CHAR),
        CAST(COALESCE(SUM(tables.data_length + tables.index_length), 0) AS SIGNED),
        CAST(COALESCE(SUM(tables.data_length), 0) AS SIGNED)
 FROM information_schema.schemata AS schemata
 LEFT JOIN information_schema.tables AS tables
        ON tables.table_schema = schemata.schema_name
 GROUP BY schemata.schema_name";

/// MySQL/MariaDB through mysql_async.
///
/// sqlx-mysql 0.9 refuses `mysql_clear_password` only when the server switches to it
/// (AuthSwitchRequest); when the server names it in its first handshake, sqlx sends the
/// password in clear in its handshake response. mysql_async 0.37 never starts with that plugin
/// (its handshake response uses `mysql_native_password` unless the server names
/// `caching_sha2_password`), refuses a switch to it unless `enable_cleartext_plugin` is set
/// (it is not), and takes its whole configuration from the options built here. Its only
/// environment variables (`MYSQL_ASYNC_BUFFER_*`) size its buffer pool.
async fn read_mysql(
    server: &ServerConnection,
    trust: &TlsTrust,
) -> Result<Vec<DatabaseSize>, CollectorError> {
    // mysql_async answers `caching_sha2_password`'s request for full authentication (0x01
    // 0x04) with the password itself whenever the stream is TLS, verified or not; a server
    // can ask for it whatever plugin the login uses. Unlike PostgreSQL's, this stream is the
    // driver's own, so no guard can stop that one message: the password is not offered to a
    // server that was not verified. (Without TLS the driver encrypts it to a key the server
    // supplies, the documented limit of `disable`.)
    if server.password.is_some() && server.tls_mode == TlsMode::Require {
        return Err(CollectorError::UnverifiedPasswordRefused {
            server: server.address(),
        });
    }
    let ssl_options = trust
        .client_config(server.tls_mode)
        .map(|_| match server.tls_mode {
            TlsMode::Require => mysql_async::SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
            // verify-full: the same roots as PostgreSQL connections, not the driver's built-in
            // Mozilla list.
            _ => mysql_async::SslOpts::default()
                .with_disable_built_in_roots(true)
                .with_root_certs(
                    trust
                        .roots()
                        .iter()
                        .map(|root| root.to_vec().into())
                        .collect(),
                ),
        });
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname(server.host.clone())
        .tcp_port(server.effective_port())
        .user(Some(server.user.clone()))
        .pass(server.password.clone())
        .db_name(None::<String>)
        // By default the driver reconnects through the server's Unix socket when the host is
        // local; the collector connects exactly where the instance says.
        .prefer_socket(false)
        .enable_cleartext_plugin(false)
        .ssl_opts(ssl_options);
    let mysql_error = |error: mysql_async::Error| match error {
        mysql_async::Error::Driver(mysql_async::DriverError::CleartextPluginDisabled) => {
            CollectorError::CleartextRefused {
                server: server.address(),
                method: "mysql_clear_password",
            }
        }
        other => server_error(server, &other),
    };
    let mut connection = mysql_async::Conn::new(options).await.map_err(mysql_error)?;
    let rows: Result<Vec<(String, i64, i64)>, _> = connection.query(MYSQL_SIZES).await;
    // Closing politely is a courtesy; the sizes are already read.
    let _ = connection.disconnect().await;
    Ok(rows
        .map_err(mysql_error)?
        .into_iter()
        .map(|(database_name, total_bytes, data_bytes)| DatabaseSize {
            database_name,
            size_mb: mebibytes(total_bytes),
            data_size_mb: Some(mebibytes(data_bytes)),
            log_size_mb: None,
        })
        .collect())
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

    /// A backend message: type, length (counting itself), body.
    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn the_scanner_stops_a_cleartext_request_however_the_bytes_arrive() {
        let mut stream = message(b'S', b"server_version\x0015\x00");
        stream.extend(message(b'R', &10_i32.to_be_bytes()));
        stream.extend(message(
            b'R',
            &AUTHENTICATION_CLEARTEXT_PASSWORD.to_be_bytes(),
        ));
        for chunk in 1..=stream.len() {
            let mut scanner = MessageScanner::START;
            let refused = stream
                .chunks(chunk)
                .any(|piece| scanner.feed(piece).is_err());
            assert!(refused, "chunks of {chunk}");
        }
    }

    #[test]
    fn the_scanner_lets_other_messages_through() {
        let mut stream = message(b'R', &5_i32.to_be_bytes()); // MD5 (salt follows)
        stream.extend_from_slice(b"salt");
        stream[4] += 4;
        stream.extend(message(b'R', &0_i32.to_be_bytes()));
        // A data row whose bytes happen to look like a cleartext request.
        stream.extend(message(b'D', &message(b'R', &3_i32.to_be_bytes())));
        stream.extend(message(b'Z', b"I"));
        let mut scanner = MessageScanner::START;
        for piece in stream.chunks(3) {
            scanner.feed(piece).unwrap();
        }
        assert_eq!(scanner, MessageScanner::START);
    }
}
