//! What every handler shares.

use std::sync::Arc;

use capstats_settings::Settings;
use chrono::NaiveDate;

use crate::metrics::Metrics;
use crate::throttle::LoginThrottle;

/// The application state, shared by all workers.
pub struct AppState {
    /// Diesel pool for the store.
    pub store: capstats_store::ConnectionPool,
    /// Where runs asked for through the API are queued (the binary gives it the job store).
    pub queue: Arc<dyn capstats_services::JobQueue>,
    /// The configuration.
    pub settings: Settings,
    /// Sign-in limits per address and account, and the password-hashing slots.
    pub login_throttle: LoginThrottle,
    /// Peers whose `X-Forwarded-For` is believed (`CAPSTATS_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// HTTP and domain metrics.
    pub metrics: Metrics,
    /// Seals collector passwords before they are stored (`CAPSTATS_CREDENTIAL_KEY`).
    pub credential_key: Option<capstats_collectors::credentials::CredentialKey>,
    /// Exports running at once (`crate::export`): each holds a pooled connection while its
    /// client reads, so they may take half the pool at most.
    pub exports: Arc<tokio::sync::Semaphore>,
    /// API tokens checked recently, by hash, for [`TOKEN_CACHE_SECONDS`].
    pub token_cache: moka::sync::Cache<String, CachedToken>,
    /// Capacity answers remembered between requests (`crate::remembered`).
    pub remembered: crate::remembered::RememberedReads,
}

/// A token as remembered between requests.
#[derive(Debug, Clone)]
pub struct CachedToken {
    /// The token's id.
    pub id: i64,
    /// Its scopes as stored.
    pub scopes: Vec<String>,
    /// Its user.
    pub user: capstats_store::accounts::User,
}

/// How long a checked API token is trusted without asking the database again: programs
/// call the API in bursts, and each check costs a pooled connection and a query. A token
/// revoked through another process, or a user deactivated, stops working within this time.
pub const TOKEN_CACHE_SECONDS: u64 = 5;

/// The cache behind [`AppState::token_cache`].
pub fn token_cache() -> moka::sync::Cache<String, CachedToken> {
    moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(std::time::Duration::from_secs(TOKEN_CACHE_SECONDS))
        .build()
}

impl AppState {
    /// Today in the business time zone.
    pub fn today(&self) -> NaiveDate {
        self.settings.today()
    }

    /// The client's address of `request` (see [`crate::throttle::client_address`]).
    pub fn client_address(&self, request: &actix_web::HttpRequest) -> std::net::IpAddr {
        crate::throttle::client_address(request, &self.trusted_proxies)
    }
}

/// The state as handlers receive it.
pub type State = actix_web::web::Data<Arc<AppState>>;
