//! Liveness and readiness.

use actix_web::{HttpResponse, get};

use crate::dto::HealthStatus;
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::State;

/// The process is up.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "The process answers", body = Envelope<HealthStatus>)),
)]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Envelope::new(
        "alive",
        HealthStatus {
            status: "ok".into(),
            database: None,
        },
    ))
}

/// The database is reachable and its schema is current.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Envelope<HealthStatus>),
        (status = 503, description = "The database is unreachable or its schema outdated", body = ErrorEnvelope),
    ),
)]
#[get("/health/ready")]
pub async fn ready(state: State) -> Result<HttpResponse, ApiError> {
    capstats_store::run_blocking(&state.store, capstats_store::migrations::ensure_current)
        .await
        .map_err(|error| ApiError::Unavailable(error.into()))?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "ready",
        HealthStatus {
            status: "ok".into(),
            database: Some("ok".into()),
        },
    )))
}
