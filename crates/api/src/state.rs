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
