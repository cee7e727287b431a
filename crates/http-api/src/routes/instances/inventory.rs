//! The instance inventory: list, create, read, update and soft-delete monitored instances.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use serde::Deserialize;
use utoipa::IntoParams;

use capstats_capacity_model::{DbType, InstanceId};
use capstats_store::instances::{self, InstanceChanges, InstanceFilter, NewInstance};

use crate::auth::{Admin, Viewer};
use crate::dto::{InstanceInput, InstanceItem, UpdatedInstanceItem};
use crate::envelope::{Envelope, Paginated};
use crate::error::{ApiError, ErrorEnvelope};
use crate::error_responses::{InvalidParameters, NotAnAdmin, NotSignedIn};
use crate::params::Parameters;
use crate::state::State;

use super::input::{PasswordChange, note_password, read_input};

/// Filters of the instance list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct InstanceQuery {
    /// Only these engines (repeatable).
    #[param(style = Form, explode, value_type = Option<Vec<DbType>>)]
    db_type: Option<Vec<String>>,
    /// Only names containing this text (case-insensitive).
    #[param(min_length = 1, pattern = "^[^\\x00]+$")]
    search: Option<String>,
    /// Only active (true) or inactive (false) instances.
    is_active: Option<bool>,
    /// Page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    page: Option<i64>,
    /// Items per page, 1–200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Instances, by name (soft-deleted ones are not listed).
#[utoipa::path(
    tag = "instances",
    params(InstanceQuery),
    responses(
        (status = 200, description = "One page of instances", body = Envelope<Paginated<InstanceItem>>),
        InvalidParameters,
        NotSignedIn,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/instances")]
pub async fn list_instances(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut parameters = Parameters::of(&request);
    let filter = InstanceFilter {
        db_types: parameters.many::<DbType>("db_type"),
        search: parameters.one::<String>("search"),
        is_active: parameters.one::<bool>("is_active"),
        include_deleted: false,
    };
    let page = parameters.page();
    parameters.finish()?;
    let (items, total) = capstats_store::run_blocking(&state.store, move |connection| {
        instances::list_instances(connection, &filter, page.page, page.limit)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "instances",
        Paginated::new(
            items.into_iter().map(InstanceItem::from).collect(),
            total,
            page.page,
            page.limit,
        ),
    )))
}

/// Adds an instance to monitor.
#[utoipa::path(
    tag = "instances",
    request_body = InstanceInput,
    responses(
        (status = 201, description = "Created", body = Envelope<InstanceItem>),
        (status = 400, description = "Invalid fields, each listed in `errors`", body = ErrorEnvelope),
        NotSignedIn,
        NotAnAdmin,
        (status = 409, description = "The name is taken", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[post("/instances")]
pub async fn create_instance(
    state: State,
    _admin: Admin,
    request: HttpRequest,
    body: crate::extract::Json<InstanceInput>,
) -> Result<HttpResponse, ApiError> {
    let (changes, password) = read_input(body.into_inner(), true, state.credential_key.as_ref())?;
    if !matches!(password, PasswordChange::Keep) {
        note_password(&request, password.audit_word());
    }
    let key = state.credential_key.clone();
    let instance = capstats_store::run_blocking(&state.store, move |connection| {
        let created = instances::create_instance(
            connection,
            &NewInstance {
                name: changes.name.clone().unwrap_or_default(),
                db_type: changes.db_type.unwrap_or(DbType::Postgresql),
                host: changes.host.clone().flatten(),
                port: changes.port.flatten(),
                description: changes.description.clone().flatten(),
            },
        )?;
        // Everything else given (activity, capacity limit, collector settings) is an update
        // of the new row, so that no field of the input can be left out; the password is
        // sealed for the new id. `read_input` refused a password without a key.
        let connection_password = key
            .as_ref()
            .and_then(|key| password.sealed_for(created.id, key));
        instances::update_instance(
            connection,
            created.id,
            &InstanceChanges {
                // Written by the insert.
                name: None,
                db_type: None,
                host: None,
                port: None,
                description: None,
                connection_password,
                ..changes
            },
        )
        .map(|updated| updated.instance)
    })
    .await?;
    Ok(HttpResponse::Created().json(Envelope::new(
        "instance created",
        InstanceItem::from(instance),
    )))
}

/// One instance (also soft-deleted ones, whose history stays readable).
#[utoipa::path(
    tag = "instances",
    params(("id" = i64, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "The instance", body = Envelope<InstanceItem>),
        NotSignedIn,
        (status = 404, description = "No such instance", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/instances/{id}")]
pub async fn get_instance(
    state: State,
    _viewer: Viewer,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = InstanceId(path.into_inner());
    let instance = capstats_store::run_blocking(&state.store, move |connection| {
        instances::get_instance(connection, id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new("instance", InstanceItem::from(instance))))
}

/// Changes an instance; omitted fields stay as they are.
///
/// Changing `host`, `port`, `db_type`, `connection_user` or `connection_database`, or lowering
/// `tls_mode`, drops the stored collector password unless the same request sends a new
/// `connection_password`: a password is never sent to a server other than the one it was
/// given for. The answer then has `password_cleared: true` and says so in its message.
#[utoipa::path(
    tag = "instances",
    params(("id" = i64, Path, description = "The instance's id")),
    request_body = InstanceInput,
    responses(
        (status = 200, description = "Updated; `password_cleared` tells whether the stored password was dropped", body = Envelope<UpdatedInstanceItem>),
        (status = 400, description = "Invalid fields, each listed in `errors`", body = ErrorEnvelope),
        NotSignedIn,
        NotAnAdmin,
        (status = 404, description = "No such instance", body = ErrorEnvelope),
        (status = 409, description = "The name is taken", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[put("/instances/{id}")]
pub async fn update_instance(
    state: State,
    _admin: Admin,
    request: HttpRequest,
    path: web::Path<i64>,
    body: crate::extract::Json<InstanceInput>,
) -> Result<HttpResponse, ApiError> {
    let id = InstanceId(path.into_inner());
    let (mut changes, password) =
        read_input(body.into_inner(), false, state.credential_key.as_ref())?;
    let requested = password.audit_word();
    if let Some(key) = &state.credential_key {
        changes.connection_password = password.sealed_for(id, key);
    } else if matches!(password, PasswordChange::Clear) {
        changes.connection_password = Some(None);
    }
    let updated = capstats_store::run_blocking(&state.store, move |connection| {
        instances::update_instance(connection, id, &changes)
    })
    .await?;
    match (requested, updated.password_cleared) {
        ("kept", true) => note_password(&request, "cleared because the target changed"),
        ("kept", false) => {}
        (requested, _) => note_password(&request, requested),
    }
    let message = if updated.password_cleared {
        "instance updated; its stored collector password was cleared (the request cleared it, \
         or changed where or how collectors connect without a new connection_password); \
         send connection_password to set it again"
    } else {
        "instance updated"
    };
    Ok(HttpResponse::Ok().json(Envelope::new(
        message,
        UpdatedInstanceItem {
            instance: InstanceItem::from(updated.instance),
            password_cleared: updated.password_cleared,
        },
    )))
}

/// Soft-deletes an instance: no longer listed or aggregated; its history stays readable.
#[utoipa::path(
    tag = "instances",
    params(("id" = i64, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "Deleted", body = Envelope<bool>),
        NotSignedIn,
        NotAnAdmin,
        (status = 404, description = "No such instance", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[delete("/instances/{id}")]
pub async fn delete_instance(
    state: State,
    _admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = InstanceId(path.into_inner());
    capstats_store::run_blocking(&state.store, move |connection| {
        instances::delete_instance(connection, id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new("instance deleted", true)))
}
