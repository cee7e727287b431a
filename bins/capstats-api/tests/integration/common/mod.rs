//! What the API tests share: a server on a fresh, seeded database, signed-in clients, and a
//! worker process.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// A fresh database with the store's schema and the job store's.
pub fn database() -> capstats_test_support::TestDatabase {
    capstats_test_support::TestDatabase::with_setup("job_store", |url| {
        capstats_queue::job_store::setup_blocking(url).map_err(|error| error.chain())
    })
}

/// reqwest is built with `rustls-no-provider` (capstats-notifications picks the ring provider
/// itself); the tests' plain HTTP clients need a process default all the same.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client.
pub fn client() -> Client {
    install_crypto_provider();
    Client::new()
}

/// An HTTP client that keeps cookies.
pub fn cookie_client() -> Client {
    install_crypto_provider();
    Client::builder().cookie_store(true).build().unwrap()
}

pub const PASSWORD: &str = "correct horse battery";
/// The credential key of the test server and worker.
pub const CREDENTIAL_KEY: &str = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";

pub struct TestApp {
    pub base: String,
    pub root: String,
    pub database: capstats_test_support::TestDatabase,
    handle: ServerHandle,
}

impl TestApp {
    /// A server on a fresh database with three demo instances aggregated daily, weekly and
    /// monthly, and the users `admin` and `viewer`.
    pub async fn spawn(login_attempts_per_minute: u32) -> Self {
        Self::spawn_with(|settings| settings.login_attempts_per_minute = login_attempts_per_minute)
            .await
    }

    /// Like [`spawn`](Self::spawn), with settings changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut capstats_settings::Settings)) -> Self {
        Self::spawn_seeded(seed, configure).await
    }

    /// A server on a fresh database filled by `seeding` (given the database's URL) and with
    /// the users `admin` and `viewer`, settings changed by `configure`.
    pub async fn spawn_seeded(
        seeding: fn(&str),
        configure: impl FnOnce(&mut capstats_settings::Settings),
    ) -> Self {
        let database = database();
        let url = database.url();
        let seeded = std::thread::spawn(move || {
            seeding(&url);
            create_users(&url);
        });
        seeded.join().expect("seeding succeeds");
        let mut settings = capstats_settings::Settings {
            database_url: database.url(),
            timezone: chrono_tz::UTC,
            database_pool_size: 4,
            job_store_pool_size: 2,
            credential_key: Some(CREDENTIAL_KEY.into()),
            ..capstats_settings::Settings::default()
        };
        configure(&mut settings);
        let queue = capstats_queue::PostgresQueue::connect(
            &settings.database_url,
            settings.job_store_pool_size,
            settings.job_max_attempts,
        )
        .await
        .expect("the job store");
        let state = capstats_http_api::build_state(settings, std::sync::Arc::new(queue))
            .await
            .expect("state");
        capstats_http_api::start_background_tasks(&state);
        let key = actix_web::cookie::Key::generate();
        let document = capstats_http_api::openapi();
        let server = actix_web::HttpServer::new(move || {
            capstats_http_api::app(state.clone(), key.clone(), document.clone())
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind");
        let address = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            base: format!("http://{address}/api/v1"),
            root: format!("http://{address}"),
            database,
            handle,
        }
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }

    pub fn anonymous(&self) -> Client {
        cookie_client()
    }

    /// A signed-in client and its CSRF token.
    pub async fn login(&self, username: &str) -> (Client, String) {
        let client = self.anonymous();
        let response = client
            .post(format!("{}/auth/login", self.base))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let csrf = body["data"]["csrf_token"].as_str().unwrap().to_owned();
        (client, csrf)
    }

    pub async fn call(
        &self,
        client: &Client,
        method: Method,
        path: &str,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = client.request(method, format!("{}{path}", self.base));
        if let Some(csrf) = csrf {
            request = request.header("X-CSRFToken", csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(
            response.headers().contains_key("x-request-id"),
            "{path}: no X-Request-ID"
        );
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates an API token with `scopes` as the signed-in `admin` and returns it.
    pub async fn create_token(&self, admin: &Client, csrf: &str, scopes: Value) -> String {
        let body = json!({"name": "loader", "scopes": scopes});
        let (status, body) = self.post(admin, csrf, "/auth/tokens", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["data"]["token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, client: &Client, path: &str) -> (StatusCode, Value) {
        self.call(client, Method::GET, path, None, None).await
    }

    /// A `GET` that must answer 200: its body (otherwise the test fails naming the path).
    pub async fn get_ok(&self, client: &Client, path: &str) -> Value {
        let (status, body) = self.get(client, path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// A `POST` with the session's CSRF token.
    pub async fn post(
        &self,
        client: &Client,
        csrf: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(client, Method::POST, path, Some(csrf), body)
            .await
    }

    /// A `PUT` of `body` with the session's CSRF token.
    pub async fn put(
        &self,
        client: &Client,
        csrf: &str,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(client, Method::PUT, path, Some(csrf), Some(body))
            .await
    }

    /// A `DELETE` with the session's CSRF token.
    pub async fn delete(&self, client: &Client, csrf: &str, path: &str) -> (StatusCode, Value) {
        self.call(client, Method::DELETE, path, Some(csrf), None)
            .await
    }

    /// The value of `series` (a metric's name and labels as `/metrics` writes them) now, if
    /// `/metrics` shows it.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.root))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        capstats_test_support::metrics::sample(&text, series)
    }
}

/// The demo data of 3 instances × 3 databases × 70 days to yesterday, aggregated daily, weekly
/// and monthly.
pub fn seed(url: &str) {
    seed_fleet(url, 3, 3);
}

/// Like [`seed`], for `instances` × `databases_per_instance`.
pub fn seed_fleet(url: &str, instances: u32, databases_per_instance: u32) {
    use diesel::Connection;
    let mut connection = diesel::PgConnection::establish(url).unwrap();
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    capstats_services::seed::seed_demo(
        &mut connection,
        &capstats_services::seed::SeedOptions {
            instances,
            databases_per_instance,
            days: 70,
            end_date: yesterday,
            seed: 9,
        },
        &capstats_services::NoProgress,
    )
    .unwrap();
    let pool = capstats_store::build_pool(url, 3, Duration::from_secs(10)).unwrap();
    for period_type in [
        capstats_capacity_model::PeriodType::Daily,
        capstats_capacity_model::PeriodType::Weekly,
        capstats_capacity_model::PeriodType::Monthly,
    ] {
        capstats_services::backfill::run_backfill(
            &pool,
            &capstats_services::backfill::BackfillRequest {
                period_type,
                from: yesterday - chrono::Days::new(80),
                to: yesterday,
                levels: capstats_capacity_model::AggregationLevel::ALL.to_vec(),
                triggered_by: "test".into(),
                sync_type: capstats_sync_session::SyncType::ManualTask,
                parallelism: 1,
                samples_kept_from: None,
                today: chrono::Utc::now().date_naive(),
            },
            &capstats_services::NoProgress,
        )
        .unwrap();
    }
}

/// The users `admin` and `viewer`, both with [`PASSWORD`].
fn create_users(url: &str) {
    use diesel::Connection;
    let mut connection = diesel::PgConnection::establish(url).unwrap();
    let hash = capstats_http_api::auth::hash_password(PASSWORD).unwrap();
    capstats_store::accounts::create_user(&mut connection, "admin", &hash, "admin").unwrap();
    capstats_store::accounts::create_user(&mut connection, "viewer", &hash, "viewer").unwrap();
}

/// A worker process on the test database.
pub struct Worker(pub Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

impl Worker {
    /// `capstats-worker run` (built next to `capstats-api`) on `database_url`, without the
    /// scheduler.
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[("CAPSTATS_WORKER_POLL_INTERVAL_MS", "100")])
    }

    /// Like [`start`](Self::start), with `environment` added (or overriding).
    pub fn start_with(database_url: &str, environment: &[(&str, &str)]) -> Self {
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_capstats-api"))
            .with_file_name("capstats-worker");
        assert!(
            binary.exists(),
            "build the workspace so that {} exists",
            binary.display()
        );
        Self(
            Command::new(&binary)
                .arg("run")
                .env("DATABASE_URL", database_url)
                .env("CAPSTATS_TIMEZONE", "UTC")
                .env("CAPSTATS_CREDENTIAL_KEY", CREDENTIAL_KEY)
                .env("CAPSTATS_SCHEDULER_ENABLED", "false")
                .env("CAPSTATS_LOG", "warn")
                .envs(environment.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

/// `capstats-api serve` as its own process on `database_url`, for what must be measured on
/// the real binary (its memory) rather than inside the test process.
pub struct ApiProcess {
    pub child: Child,
    pub base: String,
}

impl ApiProcess {
    /// Starts the binary on a free loopback port and waits until `/health/live` answers.
    pub async fn start(database_url: &str, environment: &[(&str, &str)]) -> Self {
        Self::start_with_log(database_url, environment, Stdio::null()).await
    }

    /// Like [`ApiProcess::start`], its log lines (stderr) going to `log`.
    pub async fn start_with_log(
        database_url: &str,
        environment: &[(&str, &str)],
        log: impl Into<Stdio>,
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_capstats-api"));
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("CAPSTATS_API_BIND", format!("127.0.0.1:{port}"))
            .env("CAPSTATS_API_WORKERS", "1")
            .env("CAPSTATS_TIMEZONE", "UTC")
            .env("CAPSTATS_CREDENTIAL_KEY", CREDENTIAL_KEY)
            .env("CAPSTATS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log);
        for (name, value) in environment {
            command.env(name, value);
        }
        let process = Self {
            child: command.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}/api/v1"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let live = client()
                .get(format!("http://127.0.0.1:{port}/api/v1/health/live"))
                .send()
                .await;
            if live.is_ok_and(|response| response.status().is_success()) {
                return process;
            }
            assert!(
                Instant::now() < deadline,
                "capstats-api serve did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process's resident memory in MiB.
    pub fn resident_megabytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            / 1024
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Node.js test suite of the repository (`tests/<name>`), its npm packages installed.
pub fn node_suite(name: &str) -> std::path::PathBuf {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests")
        .join(name);
    assert!(
        directory.join("node_modules").exists(),
        "run `npm ci` in tests/{name} first (make test does)"
    );
    directory
}

/// Runs `npm test` in `directory` with `environment` (off the async workers, so that the
/// server under test keeps answering), prints its report, and fails unless every test
/// passed and at least one ran; returns the report.
pub async fn run_npm_tests(
    directory: std::path::PathBuf,
    environment: Vec<(&'static str, String)>,
) -> String {
    let output = actix_web::web::block(move || {
        Command::new("npm")
            .args(["test", "--silent"])
            .current_dir(directory)
            .envs(environment)
            .output()
    })
    .await
    .unwrap()
    .expect("npm runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(output.status.success(), "{report}");
    assert!(report.contains("# fail 0"), "{report}");
    assert!(!report.contains("# pass 0"), "no test ran\n{report}");
    report
}
