//! The options of the filter boxes: active instances and the inventory's databases.

use actix_web::{HttpRequest, HttpResponse, get};
use serde::Deserialize;
use utoipa::IntoParams;

use capstats_capacity_model::{DbType, InstanceId};
use capstats_store::instances::{self, InstanceFilter};

use crate::auth::Viewer;
use crate::dto::{DatabaseOption, InstanceOption};
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorEnvelope};
use crate::error_responses::NotSignedIn;
use crate::params::Parameters;
use crate::state::State;

/// Filters of the option lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct OptionsQuery {
    /// Only these engines (repeatable).
    #[param(style = Form, explode, value_type = Option<Vec<DbType>>)]
    db_type: Option<Vec<String>>,
}

/// Filters of the database options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct DatabaseOptionsQuery {
    /// Only databases of these instances (repeatable).
    #[param(style = Form, explode)]
    instance_id: Option<Vec<i64>>,
}
/// Active instances for the filter boxes, by name.
#[utoipa::path(
    tag = "instances",
    params(OptionsQuery),
    responses(
        (status = 200, description = "The options", body = Envelope<Vec<InstanceOption>>),
        (status = 400, description = "Invalid parameters", body = ErrorEnvelope),
        NotSignedIn,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/instances/options")]
pub async fn instance_options(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut parameters = Parameters::of(&request);
    let filter = InstanceFilter {
        db_types: parameters.many::<DbType>("db_type"),
        ..InstanceFilter::default()
    };
    parameters.finish()?;
    let (items, _) = capstats_store::run_blocking(&state.store, move |connection| {
        instances::list_instances(connection, &filter, 1, 10_000)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "instance options",
        items
            .into_iter()
            .map(|instance| InstanceOption {
                id: instance.id.0,
                name: instance.name,
                db_type: instance.db_type,
            })
            .collect::<Vec<_>>(),
    )))
}

/// Databases of the inventory for the filter boxes, by instance and name.
#[utoipa::path(
    tag = "instances",
    params(DatabaseOptionsQuery),
    responses(
        (status = 200, description = "The options", body = Envelope<Vec<DatabaseOption>>),
        (status = 400, description = "Invalid parameters", body = ErrorEnvelope),
        NotSignedIn,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/databases/options")]
pub async fn database_options(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut parameters = Parameters::of(&request);
    let ids: Vec<InstanceId> = parameters
        .many::<i64>("instance_id")
        .into_iter()
        .map(InstanceId)
        .collect();
    parameters.finish()?;
    let databases = capstats_store::run_blocking(&state.store, move |connection| {
        instances::inventory(connection, &ids)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "database options",
        databases
            .into_iter()
            .map(DatabaseOption::from)
            .collect::<Vec<_>>(),
    )))
}
