//! Collecting an instance's database sizes now, on a worker.

use actix_web::{HttpResponse, post, web};

use capstats_capacity_model::InstanceId;

use crate::auth::Operator;
use crate::dto::RunStarted;
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorEnvelope};
use crate::error_responses::{NotAnAdmin, NotSignedIn};
use crate::state::State;

/// Reads the instance's database sizes now (a collector connects to the server), on a worker.
/// Answers at once with the `capacity` session to poll. The instance must be active, be
/// PostgreSQL or MySQL/MariaDB, and have a host and a connection user.
#[utoipa::path(
    tag = "instances",
    params(("id" = i64, Path, description = "The instance's id")),
    responses(
        (status = 202, description = "Queued; poll the session in the Location header", body = Envelope<RunStarted>,
         headers(("Location" = String, description = "The session's URL"))),
        (status = 400, description = "The instance cannot be collected (inactive, no connection settings, engine without collector)", body = ErrorEnvelope),
        NotSignedIn,
        NotAnAdmin,
        (status = 404, description = "No such instance", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[post("/instances/{id}/actions/collect")]
pub async fn collect_instance(
    state: State,
    Operator(caller): Operator,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let started = capstats_services::control::collect_now(
        &state.store,
        state.queue.as_ref(),
        InstanceId(path.into_inner()),
        caller.trigger(),
        state.today(),
    )
    .await?;
    let session_id = started.session_id.unwrap_or_default();
    Ok(HttpResponse::Accepted()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/sync-sessions/{session_id}"),
        ))
        .json(Envelope::new(
            "collection queued",
            RunStarted::from(started),
        )))
}
