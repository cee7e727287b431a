//! PostgreSQL sizes through tokio-postgres, over a stream capstats opens and guards.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_postgres::config::{ChannelBinding, SslMode};
use tokio_postgres::tls::{NoTls, TlsConnect};
use tokio_rustls::TlsConnector;

use crate::CollectorError;
use crate::tls::TlsTrust;

use super::refuse_cleartext::RefuseCleartext;
use super::{DatabaseSize, ServerConnection, mebibytes, server_error};

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
pub(super) async fn read_postgresql(
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
