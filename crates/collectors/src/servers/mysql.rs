//! MySQL/MariaDB sizes through mysql_async, per schema of `information_schema`.

use mysql_async::prelude::Queryable;

use capstats_capacity_model::TlsMode;

use crate::CollectorError;
use crate::tls::TlsTrust;

use super::{DatabaseSize, ServerConnection, mebibytes, server_error};

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
pub(super) async fn read_mysql(
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
