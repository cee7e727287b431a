//! What every handler shares.

use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use governor::DefaultKeyedRateLimiter;
use settings::Settings;

use crate::metrics::Metrics;

/// The application state, shared by all workers.
pub struct AppState {
    /// Diesel pool for the store.
    pub store: store::ConnectionPool,
    /// sqlx pool for the job store (enqueueing only).
    pub job_store: sqlx::PgPool,
    /// The configuration.
    pub settings: Settings,
    /// The business time zone.
    pub time_zone: Tz,
    /// Login attempts per client address.
    pub login_limiter: DefaultKeyedRateLimiter<String>,
    /// HTTP and domain metrics.
    pub metrics: Metrics,
    /// Seals collector passwords before they are stored (`CAPSTATS_CREDENTIAL_KEY`).
    pub credential_key: Option<collectors::credentials::CredentialKey>,
    /// API tokens checked recently: token hash → (scopes, user), for
    /// [`TOKEN_CACHE_SECONDS`].
    pub token_cache: moka::sync::Cache<String, (Vec<String>, store::accounts::User)>,
}

/// How long a checked API token is trusted without asking the database again: programs
/// call the API in bursts, and each check costs a pooled connection and a query. A token
/// revoked through another process, or a user deactivated, stops working within this time.
pub const TOKEN_CACHE_SECONDS: u64 = 5;

/// The cache behind [`AppState::token_cache`].
pub fn token_cache() -> moka::sync::Cache<String, (Vec<String>, store::accounts::User)> {
    moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(std::time::Duration::from_secs(TOKEN_CACHE_SECONDS))
        .build()
}

impl AppState {
    /// Today in the business time zone.
    pub fn today(&self) -> NaiveDate {
        chrono::Utc::now()
            .with_timezone(&self.time_zone)
            .date_naive()
    }
}

/// The state as handlers receive it.
pub type State = actix_web::web::Data<Arc<AppState>>;
