//! The capacity limit of a database of the inventory, which forecasts measure against.

use actix_web::{HttpResponse, put, web};

use capstats_store::instances;

use crate::auth::Admin;
use crate::dto::{CapacityLimitInput, DatabaseOption};
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorEnvelope};
use crate::error_responses::{NotAnAdmin, NotSignedIn};
use crate::state::State;

use super::input::capacity_limit_problem;

/// Sets or removes the capacity limit of a database of the inventory: forecasts report the
/// days until its projected size reaches it.
#[utoipa::path(
    tag = "instances",
    params(("id" = i64, Path, description = "The database's id in the inventory (`GET /databases/options`)")),
    request_body = CapacityLimitInput,
    responses(
        (status = 200, description = "The database as stored now", body = Envelope<DatabaseOption>),
        (status = 400, description = "Invalid fields, each listed in `errors`", body = ErrorEnvelope),
        NotSignedIn,
        NotAnAdmin,
        (status = 404, description = "No such database", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[put("/databases/{id}/capacity-limit")]
pub async fn set_database_capacity_limit(
    state: State,
    _admin: Admin,
    path: web::Path<i64>,
    body: crate::extract::Json<CapacityLimitInput>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let limit = match body.into_inner().capacity_limit_mb {
        None => {
            return Err(ApiError::field(
                "capacity_limit_mb",
                "required",
                "is required (null removes the limit)",
            ));
        }
        Some(Some(limit)) if limit < 1 => {
            return Err(ApiError::fields(vec![capacity_limit_problem(limit)]));
        }
        Some(limit) => limit,
    };
    let database = capstats_store::run_blocking(&state.store, move |connection| {
        instances::set_database_capacity_limit(connection, id, limit)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "capacity limit updated",
        DatabaseOption::from(database),
    )))
}
