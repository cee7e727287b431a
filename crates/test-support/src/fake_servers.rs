//! Impostor database servers on local ports, for tests of what collectors send: each speaks
//! just enough of the PostgreSQL or MySQL protocol to ask for a password, and records every
//! byte the client sends (decrypted, when the client got as far as TLS).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// How long an impostor waits for more bytes before it hangs up.
const QUIET: Duration = Duration::from_millis(1500);

/// A server certificate and the TLS configuration serving it.
#[derive(Clone)]
pub struct ServerCertificate {
    /// The server's configuration.
    pub config: Arc<ServerConfig>,
    /// The PEM of the CA to trust for this certificate (the certificate itself when it is
    /// self-signed).
    pub trust_pem: String,
}

fn server_config(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            chain,
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    Arc::new(config)
}

const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// A self-signed certificate: no trusted root vouches for it.
pub fn self_signed_certificate() -> ServerCertificate {
    let generated =
        rcgen::generate_simple_self_signed(SERVER_NAMES.map(str::to_owned).to_vec()).unwrap();
    ServerCertificate {
        config: server_config(vec![generated.cert.der().clone()], &generated.signing_key),
        trust_pem: generated.cert.pem(),
    }
}

/// A certificate for `names` issued by a CA made for the test; `trust_pem` is the CA's.
pub fn ca_issued_certificate(names: &[&str]) -> ServerCertificate {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "capstats test CA");
    let ca_certificate = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let server_certificate = CertificateParams::new(names)
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    ServerCertificate {
        config: server_config(vec![server_certificate.der().clone()], &server_key),
        trust_pem: ca_certificate.pem(),
    }
}

/// What an impostor saw.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Every byte clients sent, decrypted after a TLS handshake.
    pub received: Vec<u8>,
    /// Whether a client completed a TLS handshake.
    pub tls_established: bool,
    /// Connections accepted.
    pub connections: usize,
}

impl Recording {
    /// Whether `text` occurs in what clients sent.
    pub fn contains(&self, text: &str) -> bool {
        let needle = text.as_bytes();
        self.received
            .windows(needle.len().max(1))
            .any(|window| window == needle)
    }
}

/// A running impostor: its port and what it recorded so far.
pub struct FakeServer {
    /// The local port it listens on (host `127.0.0.1`).
    pub port: u16,
    recording: Arc<Mutex<Recording>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    /// What it recorded so far.
    pub fn recording(&self) -> Recording {
        self.recording.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<F, Fut>(handle: F) -> FakeServer
where
    F: Fn(TcpStream, Arc<Mutex<Recording>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let recording = Arc::new(Mutex::new(Recording::default()));
    let shared = recording.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            shared.lock().unwrap().connections += 1;
            tokio::spawn(handle(stream, shared.clone()));
        }
    });
    FakeServer {
        port,
        recording,
        task,
    }
}

/// Reads exactly `count` bytes (or what arrives before the client stops), recording them.
async fn read_recorded<S: AsyncRead + Unpin>(
    stream: &mut S,
    count: usize,
    recording: &Mutex<Recording>,
) -> Option<Vec<u8>> {
    let mut buffer = vec![0; count];
    let mut filled = 0;
    while filled < count {
        match tokio::time::timeout(QUIET, stream.read(&mut buffer[filled..])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                recording
                    .lock()
                    .unwrap()
                    .received
                    .extend_from_slice(&buffer[..filled]);
                return None;
            }
            Ok(Ok(read)) => filled += read,
        }
    }
    recording
        .lock()
        .unwrap()
        .received
        .extend_from_slice(&buffer);
    Some(buffer)
}

/// Records whatever else the client sends until it stops or hangs up.
async fn record_rest<S: AsyncRead + Unpin>(stream: &mut S, recording: &Mutex<Recording>) {
    let mut buffer = [0; 4096];
    while let Ok(Ok(read)) = tokio::time::timeout(QUIET, stream.read(&mut buffer)).await {
        if read == 0 {
            break;
        }
        recording
            .lock()
            .unwrap()
            .received
            .extend_from_slice(&buffer[..read]);
    }
}

/// PostgreSQL's `SSLRequest` code.
const SSL_REQUEST_CODE: u32 = 80_877_103;

/// How an impostor PostgreSQL server asks for the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostgresAuthentication {
    /// `AuthenticationCleartextPassword` (code 3).
    Cleartext,
    /// `AuthenticationMD5Password` (code 5) with a fixed salt.
    Md5,
}

/// A PostgreSQL impostor: answers `SSLRequest` with `N` (or, with `tls`, with `S` and a TLS
/// handshake), then asks for the password as `authentication` says and records the answer.
pub async fn fake_postgres(
    authentication: PostgresAuthentication,
    tls: Option<ServerCertificate>,
) -> FakeServer {
    serve(move |mut stream, recording| {
        let tls = tls.clone();
        async move {
            // The first message: SSLRequest or the startup message (length, then code).
            let Some(header) = read_recorded(&mut stream, 8, &recording).await else {
                return;
            };
            let length = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
            let code = u32::from_be_bytes(header[4..8].try_into().unwrap());
            if code != SSL_REQUEST_CODE {
                let _ = read_recorded(&mut stream, length.saturating_sub(8), &recording).await;
                ask_postgres_password(&mut stream, authentication, &recording).await;
                return;
            }
            match tls {
                None => {
                    let _ = stream.write_all(b"N").await;
                    if read_postgres_startup(&mut stream, &recording).await {
                        ask_postgres_password(&mut stream, authentication, &recording).await;
                    }
                }
                Some(certificate) => {
                    let _ = stream.write_all(b"S").await;
                    let acceptor = TlsAcceptor::from(certificate.config);
                    let Ok(mut secure) = acceptor.accept(stream).await else {
                        return;
                    };
                    recording.lock().unwrap().tls_established = true;
                    if read_postgres_startup(&mut secure, &recording).await {
                        ask_postgres_password(&mut secure, authentication, &recording).await;
                    }
                }
            }
        }
    })
    .await
}

async fn read_postgres_startup<S: AsyncRead + Unpin>(
    stream: &mut S,
    recording: &Mutex<Recording>,
) -> bool {
    let Some(length) = read_recorded(stream, 4, recording).await else {
        return false;
    };
    let length = u32::from_be_bytes(length.try_into().unwrap()) as usize;
    read_recorded(stream, length.saturating_sub(4), recording)
        .await
        .is_some()
}

async fn ask_postgres_password<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    authentication: PostgresAuthentication,
    recording: &Mutex<Recording>,
) {
    let request: Vec<u8> = match authentication {
        PostgresAuthentication::Cleartext => {
            [&b"R"[..], &8_u32.to_be_bytes(), &3_u32.to_be_bytes()].concat()
        }
        PostgresAuthentication::Md5 => [
            &b"R"[..],
            &12_u32.to_be_bytes(),
            &5_u32.to_be_bytes(),
            b"salt",
        ]
        .concat(),
    };
    if stream.write_all(&request).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    record_rest(stream, recording).await;
}

/// How an impostor MySQL server asks for the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MysqlAuthentication {
    /// Names `mysql_clear_password` in its first handshake.
    ClearPasswordInHandshake,
    /// Starts with `mysql_native_password`, then switches to `mysql_clear_password`.
    SwitchToClearPassword,
}

/// MySQL capability flags the impostor announces.
const MYSQL_CAPABILITIES: u32 = 0x0000_0001 // LONG_PASSWORD
    | 0x0000_0004 // LONG_FLAG
    | 0x0000_0008 // CONNECT_WITH_DB
    | 0x0000_0200 // PROTOCOL_41
    | 0x0000_2000 // TRANSACTIONS
    | 0x0000_8000 // SECURE_CONNECTION
    | 0x0001_0000 // MULTI_STATEMENTS
    | 0x0002_0000 // MULTI_RESULTS
    | 0x0008_0000 // PLUGIN_AUTH
    | 0x0020_0000; // PLUGIN_AUTH_LENENC_CLIENT_DATA
/// `CLIENT_SSL`.
const MYSQL_SSL: u32 = 0x0000_0800;

fn mysql_packet(sequence: u8, payload: &[u8]) -> Vec<u8> {
    let length = payload.len() as u32;
    let mut packet = length.to_le_bytes()[..3].to_vec();
    packet.push(sequence);
    packet.extend_from_slice(payload);
    packet
}

fn mysql_handshake(plugin: &str, tls: bool) -> Vec<u8> {
    let capabilities = MYSQL_CAPABILITIES | if tls { MYSQL_SSL } else { 0 };
    let mut payload = vec![10];
    payload.extend_from_slice(b"8.0.36-impostor\0");
    payload.extend_from_slice(&7_u32.to_le_bytes());
    payload.extend_from_slice(b"abcdefgh");
    payload.push(0);
    payload.extend_from_slice(&(capabilities as u16).to_le_bytes());
    payload.push(45); // utf8mb4_general_ci
    payload.extend_from_slice(&2_u16.to_le_bytes()); // SERVER_STATUS_AUTOCOMMIT
    payload.extend_from_slice(&((capabilities >> 16) as u16).to_le_bytes());
    payload.push(21);
    payload.extend_from_slice(&[0; 10]);
    payload.extend_from_slice(b"ijklmnopqrst\0");
    payload.extend_from_slice(plugin.as_bytes());
    payload.push(0);
    mysql_packet(0, &payload)
}

/// Reads one MySQL packet, recording it; returns its payload.
async fn read_mysql_packet<S: AsyncRead + Unpin>(
    stream: &mut S,
    recording: &Mutex<Recording>,
) -> Option<Vec<u8>> {
    let header = read_recorded(stream, 4, recording).await?;
    let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    read_recorded(stream, length, recording).await
}

/// A MySQL impostor: asks for the password as `authentication` says (after a TLS handshake
/// when `tls` is given) and records everything the client sends.
pub async fn fake_mysql(
    authentication: MysqlAuthentication,
    tls: Option<ServerCertificate>,
) -> FakeServer {
    serve(move |mut stream, recording| {
        let tls = tls.clone();
        async move {
            let plugin = match authentication {
                MysqlAuthentication::ClearPasswordInHandshake => "mysql_clear_password",
                MysqlAuthentication::SwitchToClearPassword => "mysql_native_password",
            };
            if stream
                .write_all(&mysql_handshake(plugin, tls.is_some()))
                .await
                .is_err()
            {
                return;
            }
            match tls {
                None => mysql_authenticate(&mut stream, authentication, 1, &recording).await,
                Some(certificate) => {
                    // The client's SSLRequest (capabilities, sizes, filler), then TLS.
                    if read_mysql_packet(&mut stream, &recording).await.is_none() {
                        return;
                    }
                    let acceptor = TlsAcceptor::from(certificate.config);
                    let Ok(mut secure) = acceptor.accept(stream).await else {
                        return;
                    };
                    recording.lock().unwrap().tls_established = true;
                    mysql_authenticate(&mut secure, authentication, 2, &recording).await;
                }
            }
        }
    })
    .await
}

async fn mysql_authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    authentication: MysqlAuthentication,
    response_sequence: u8,
    recording: &Mutex<Recording>,
) {
    // The handshake response: login, auth data.
    if read_mysql_packet(stream, recording).await.is_none() {
        return;
    }
    if authentication == MysqlAuthentication::SwitchToClearPassword {
        let mut switch = vec![0xfe];
        switch.extend_from_slice(b"mysql_clear_password\0");
        let packet = mysql_packet(response_sequence + 1, &switch);
        if stream.write_all(&packet).await.is_err() {
            return;
        }
    }
    record_rest(stream, recording).await;
}
