//! What collectors never send: a password in clear text (to an impostor asking for it the
//! PostgreSQL or the MySQL way), anything to a server whose certificate `verify-full` cannot
//! vouch for, or the worker's own `PG*` credentials for an instance without a password.

use std::time::Duration;

use capstats_capacity_model::{DbType, TlsMode};
use capstats_collectors::CollectorError;
use capstats_collectors::servers::{Exclusions, ServerConnection, read_database_sizes};
use capstats_collectors::tls::TlsTrust;
use capstats_test_support::fake_servers::{
    FakeServer, MysqlAuthentication, PostgresAuthentication, ca_issued_certificate, fake_mysql,
    fake_postgres, self_signed_certificate,
};

const TIMEOUT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "s3cret-never-sent";

fn server(engine: DbType, fake: &FakeServer, tls_mode: TlsMode) -> ServerConnection {
    ServerConnection {
        engine,
        host: "127.0.0.1".into(),
        port: Some(fake.port),
        user: "collector".into(),
        password: Some(PASSWORD.into()),
        database: None,
        tls_mode,
    }
}

async fn read(server: &ServerConnection, trust: &TlsTrust) -> Result<(), CollectorError> {
    read_database_sizes(server, &Exclusions::new(&[]).unwrap(), trust, TIMEOUT)
        .await
        .map(|_| ())
}

fn system_trust() -> TlsTrust {
    TlsTrust::load(None).unwrap()
}

/// Why a read of `fake` as an `engine` server with `tls_mode`, trusting the system's CAs,
/// failed; panics if it succeeded.
async fn refused(engine: DbType, fake: &FakeServer, tls_mode: TlsMode) -> CollectorError {
    read(&server(engine, fake, tls_mode), &system_trust())
        .await
        .unwrap_err()
}

/// A CA file with `pem`, removed when dropped.
struct CaFile(std::path::PathBuf);

impl CaFile {
    fn new(pem: &str) -> Self {
        let path = std::env::temp_dir().join(capstats_test_support::unique_name("ca") + ".pem");
        std::fs::write(&path, pem).unwrap();
        Self(path)
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn a_postgresql_impostor_asking_for_a_cleartext_password_gets_none() {
    let fake = fake_postgres(PostgresAuthentication::Cleartext, None).await;
    let error = refused(DbType::Postgresql, &fake, TlsMode::Disable).await;
    assert!(
        matches!(error, CollectorError::CleartextRefused { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("clear text"), "{error}");
    let recording = fake.recording();
    assert!(
        recording.contains("collector"),
        "the startup message arrived"
    );
    assert!(!recording.contains(PASSWORD), "{recording:?}");
}

#[tokio::test]
async fn md5_still_answers_with_a_hash_only() {
    let fake = fake_postgres(PostgresAuthentication::Md5, None).await;
    let _ = refused(DbType::Postgresql, &fake, TlsMode::Disable).await;
    let recording = fake.recording();
    // A password message ('p') with "md5" and 32 hex digits, not the password.
    assert!(recording.contains("md5"), "{recording:?}");
    assert!(!recording.contains(PASSWORD));
}

#[tokio::test]
async fn verify_full_refuses_a_self_signed_postgresql_server_before_sending_anything() {
    let fake = fake_postgres(
        PostgresAuthentication::Cleartext,
        Some(self_signed_certificate()),
    )
    .await;
    let error = refused(DbType::Postgresql, &fake, TlsMode::VerifyFull).await;
    assert!(
        matches!(&error, CollectorError::Server { reason, .. } if reason.contains("certificate")),
        "{error}"
    );
    let recording = fake.recording();
    assert!(!recording.tls_established);
    assert!(
        !recording.contains("collector"),
        "no startup message was sent"
    );
    assert!(!recording.contains(PASSWORD));
}

#[tokio::test]
async fn require_encrypts_without_checking_and_still_refuses_cleartext() {
    let fake = fake_postgres(
        PostgresAuthentication::Cleartext,
        Some(self_signed_certificate()),
    )
    .await;
    let error = refused(DbType::Postgresql, &fake, TlsMode::Require).await;
    assert!(
        matches!(error, CollectorError::CleartextRefused { .. }),
        "{error}"
    );
    let recording = fake.recording();
    assert!(recording.tls_established);
    assert!(recording.contains("collector"));
    assert!(!recording.contains(PASSWORD));
}

#[tokio::test]
async fn verify_full_trusts_the_configured_ca_file() {
    let certificate = ca_issued_certificate(&["127.0.0.1", "localhost"]);
    let ca_file = CaFile::new(&certificate.trust_pem);
    let trust = TlsTrust::load(Some(&ca_file.0)).unwrap();
    let fake = fake_postgres(PostgresAuthentication::Cleartext, Some(certificate.clone())).await;
    // The handshake succeeds, so the impostor gets as far as asking for a cleartext password.
    let error = read(
        &server(DbType::Postgresql, &fake, TlsMode::VerifyFull),
        &trust,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, CollectorError::CleartextRefused { .. }),
        "{error}"
    );
    assert!(fake.recording().tls_established);
    // Without the CA file the same server is refused.
    let refused = refused(DbType::Postgresql, &fake, TlsMode::VerifyFull).await;
    assert!(refused.to_string().contains("certificate"), "{refused}");
}

#[tokio::test]
async fn verify_full_checks_the_host_name() {
    // Issued by the trusted CA, but for another name than the one the instance connects to.
    let certificate = ca_issued_certificate(&["db.example.test"]);
    let ca_file = CaFile::new(&certificate.trust_pem);
    let trust = TlsTrust::load(Some(&ca_file.0)).unwrap();
    let fake = fake_postgres(PostgresAuthentication::Cleartext, Some(certificate.clone())).await;
    let error = read(
        &server(DbType::Postgresql, &fake, TlsMode::VerifyFull),
        &trust,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
    assert!(!fake.recording().tls_established);
    // `require` does not check the name.
    let error = read(&server(DbType::Postgresql, &fake, TlsMode::Require), &trust)
        .await
        .unwrap_err();
    assert!(
        matches!(error, CollectorError::CleartextRefused { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_mysql_impostor_naming_mysql_clear_password_in_its_handshake_gets_no_password() {
    let fake = fake_mysql(MysqlAuthentication::ClearPasswordInHandshake, None).await;
    let error = refused(DbType::Mysql, &fake, TlsMode::Disable).await;
    let recording = fake.recording();
    assert!(
        recording.contains("collector"),
        "the handshake response arrived"
    );
    assert!(!recording.contains(PASSWORD), "{error}: {recording:?}");
}

#[tokio::test]
async fn a_mysql_impostor_switching_to_mysql_clear_password_gets_no_password() {
    let fake = fake_mysql(MysqlAuthentication::SwitchToClearPassword, None).await;
    let error = refused(DbType::Mysql, &fake, TlsMode::Disable).await;
    assert!(
        matches!(error, CollectorError::CleartextRefused { method, .. } if method == "mysql_clear_password"),
        "{error}"
    );
    assert!(!fake.recording().contains(PASSWORD));
}

#[tokio::test]
async fn verify_full_refuses_a_self_signed_mysql_server() {
    let fake = fake_mysql(
        MysqlAuthentication::SwitchToClearPassword,
        Some(self_signed_certificate()),
    )
    .await;
    let error = refused(DbType::Mysql, &fake, TlsMode::VerifyFull).await;
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
    let recording = fake.recording();
    assert!(!recording.tls_established);
    assert!(!recording.contains("collector"));
    assert!(!recording.contains(PASSWORD));
}

#[tokio::test]
async fn mysql_verify_full_trusts_the_configured_ca_file_and_require_skips_the_check() {
    let certificate = ca_issued_certificate(&["127.0.0.1", "localhost"]);
    let ca_file = CaFile::new(&certificate.trust_pem);
    let trust = TlsTrust::load(Some(&ca_file.0)).unwrap();
    // With a password, only a verified server is connected to (below); without one, `require`
    // connects over TLS without checking the certificate.
    for (mode, trust, password) in [
        (TlsMode::VerifyFull, trust, Some(PASSWORD)),
        (TlsMode::Require, system_trust(), None),
    ] {
        let fake = fake_mysql(
            MysqlAuthentication::SwitchToClearPassword,
            Some(certificate.clone()),
        )
        .await;
        let connection = ServerConnection {
            password: password.map(Into::into),
            ..server(DbType::Mysql, &fake, mode)
        };
        let error = read(&connection, &trust).await.unwrap_err();
        assert!(
            matches!(error, CollectorError::CleartextRefused { .. }),
            "{mode}: {error}"
        );
        let recording = fake.recording();
        assert!(recording.tls_established, "{mode}");
        assert!(!recording.contains(PASSWORD), "{mode}");
    }
}

/// mysql_async answers a request for `caching_sha2_password`'s full authentication with the
/// password itself over any TLS connection, verified or not: under `require` a MySQL password
/// is not offered at all, and nothing reaches the server.
#[tokio::test]
async fn a_mysql_password_is_not_offered_to_a_server_whose_certificate_is_not_checked() {
    let certificate = ca_issued_certificate(&["127.0.0.1", "localhost"]);
    let fake = fake_mysql(
        MysqlAuthentication::SwitchToClearPassword,
        Some(certificate),
    )
    .await;
    let error = refused(DbType::Mysql, &fake, TlsMode::Require).await;
    assert!(
        matches!(error, CollectorError::UnverifiedPasswordRefused { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("verify-full"), "{error}");
    let recording = fake.recording();
    assert!(!recording.tls_established);
    assert!(!recording.contains("collector"));
    assert!(!recording.contains(PASSWORD));
}

/// Set by the parent test for the child process that runs
/// [`the_worker_environment_is_not_used_child`].
const CHILD_MARKER: &str = "CAPSTATS_TEST_WORKER_ENVIRONMENT_CHILD";

/// The worker's own PostgreSQL and MySQL variables must not reach a collector: an instance
/// without a stored password sends none, connects as its own login, to its own host. The
/// variables are set for a child process (setting them in this process would need `unsafe`
/// and race with other tests).
#[test]
fn the_worker_environment_is_not_used() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_worker_environment_is_not_used_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MARKER, "1")
        .env("PGPASSWORD", "pgpassword-from-the-environment")
        .env("PGUSER", "pguser-from-the-environment")
        .env("PGHOST", "192.0.2.1")
        .env("PGPORT", "1")
        .env("PGDATABASE", "pgdatabase-from-the-environment")
        .env("PGSSLMODE", "require")
        .env("PGOPTIONS", "-c search_path=from_the_environment")
        .env("PGAPPNAME", "pgappname-from-the-environment")
        .env("PGPASSFILE", "/nonexistent/pgpass")
        .env("MYSQL_PWD", "mysql-pwd-from-the-environment")
        .env("MYSQL_HOST", "192.0.2.1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_worker_environment_is_not_used_child() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for authentication in [
            PostgresAuthentication::Cleartext,
            PostgresAuthentication::Md5,
        ] {
            let fake = fake_postgres(authentication, None).await;
            let without_password = ServerConnection {
                password: None,
                ..server(DbType::Postgresql, &fake, TlsMode::Disable)
            };
            let error = read(&without_password, &system_trust()).await.unwrap_err();
            let recording = fake.recording();
            assert_eq!(
                recording.connections, 1,
                "connected to the instance's host and port"
            );
            assert!(
                recording.contains("collector"),
                "{authentication:?}: its own login"
            );
            assert!(recording.contains("postgres"), "its own database");
            for leaked in [
                "pgpassword-from-the-environment",
                "pguser-from-the-environment",
                "pgdatabase-from-the-environment",
                "from_the_environment",
                "pgappname-from-the-environment",
            ] {
                assert!(
                    !recording.contains(leaked),
                    "{authentication:?}: {leaked} was sent ({error})"
                );
            }
            // MD5 needs a password; none is stored, so nothing is answered at all.
            assert!(!recording.contains("md5"), "{authentication:?}: {error}");
        }
        let fake = fake_mysql(MysqlAuthentication::SwitchToClearPassword, None).await;
        let without_password = ServerConnection {
            password: None,
            ..server(DbType::Mysql, &fake, TlsMode::Disable)
        };
        let _ = read(&without_password, &system_trust()).await;
        let recording = fake.recording();
        assert_eq!(recording.connections, 1);
        assert!(!recording.contains("mysql-pwd-from-the-environment"));
    });
}
