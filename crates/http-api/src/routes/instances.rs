//! Monitored instances and the options of the filter boxes.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use serde::Deserialize;
use utoipa::IntoParams;

use capstats_capacity_model::{DbType, InstanceId, TlsMode};
use capstats_collectors::credentials::CredentialKey;
use capstats_store::instances::{self, InstanceChanges, InstanceFilter, NewInstance};

use crate::auth::{Admin, Operator, Viewer};
use crate::dto::{
    CapacityLimitInput, DatabaseOption, InstanceInput, InstanceItem, InstanceOption, RunStarted,
    UpdatedInstanceItem,
};
use crate::envelope::{Envelope, Paginated};
use crate::error::{ApiError, ErrorEnvelope, FieldError};
use crate::error_responses::{InvalidParameters, NotAnAdmin, NotSignedIn};
use crate::params::Parameters;
use crate::state::State;

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

/// What a request does to the stored collector password.
enum PasswordChange {
    /// Leaves it (unless the store drops it because the target changed).
    Keep,
    /// Removes it.
    Clear,
    /// Replaces it with this password, sealed for the instance once its id is known.
    Set(String),
}

impl PasswordChange {
    /// What the audit trail records of it (never the password).
    fn audit_word(&self) -> &'static str {
        match self {
            Self::Keep => "kept",
            Self::Clear => "cleared",
            Self::Set(_) => "set",
        }
    }
}

/// Records in the request's audit event what happened to the stored collector password.
fn note_password(request: &HttpRequest, outcome: &'static str) {
    crate::audit::note(request, |note| {
        note.detail
            .insert("connection_password".into(), outcome.into());
    });
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password itself.
        formatter.write_str(match self {
            Self::Keep => "Keep",
            Self::Clear => "Clear",
            Self::Set(_) => "Set(..)",
        })
    }
}

impl PasswordChange {
    /// The store's form for `instance`: sealed with `key` and bound to the instance's id, so
    /// that the sealed value opens for this instance only.
    fn sealed_for(&self, instance: InstanceId, key: &CredentialKey) -> Option<Option<Vec<u8>>> {
        match self {
            Self::Keep => None,
            Self::Clear => Some(None),
            Self::Set(password) => Some(Some(key.seal(instance, password))),
        }
    }
}

/// Checks an instance body; `creating` requires the name and engine.
fn read_input(
    input: InstanceInput,
    creating: bool,
    key: Option<&CredentialKey>,
) -> Result<(InstanceChanges, PasswordChange), ApiError> {
    let mut problems = Vec::new();
    let name = input.name.map(|name| name.trim().to_owned());
    match &name {
        None if creating => problems.push(FieldError::new("name", "required", "is required")),
        Some(name) if name.is_empty() || name.chars().count() > 255 => {
            problems.push(FieldError::new(
                "name",
                "invalid",
                "must have 1 to 255 characters",
            ));
        }
        _ => {}
    }
    let db_type = match input.db_type.as_deref() {
        None if creating => {
            problems.push(FieldError::new("db_type", "required", "is required"));
            None
        }
        None => None,
        Some(text) => match text.parse::<DbType>() {
            Ok(db_type) => Some(db_type),
            Err(error) => {
                problems.push(error.into());
                None
            }
        },
    };
    if let Some(port) = input.port
        && !(1..=65535).contains(&port)
    {
        problems.push(FieldError::new(
            "port",
            "out_of_range",
            "must be between 1 and 65535",
        ));
    }
    for (field, value) in [
        ("connection_user", &input.connection_user),
        ("connection_database", &input.connection_database),
    ] {
        if value
            .as_ref()
            .is_some_and(|value| value.chars().count() > 255)
        {
            problems.push(FieldError::new(
                field,
                "too_long",
                "must have at most 255 characters",
            ));
        }
    }
    // Control and bidi characters in names end up in logs, CSV exports and the UI.
    for (field, value) in [
        ("name", &name),
        ("host", &input.host),
        ("description", &input.description),
        ("connection_user", &input.connection_user),
        ("connection_database", &input.connection_database),
    ] {
        if let Some(Err(error)) = value
            .as_deref()
            .map(|value| capstats_capacity_model::validate_plain_text(field, value))
        {
            problems.push(error.into());
        }
    }
    let tls_mode = match input.tls_mode.as_deref() {
        None => None,
        Some(text) => match text.parse::<TlsMode>() {
            Ok(mode) => Some(mode),
            Err(error) => {
                problems.push(error.into());
                None
            }
        },
    };
    if let Some(Some(limit)) = input.capacity_limit_mb
        && limit < 1
    {
        problems.push(capacity_limit_problem(limit));
    }
    // An empty password clears the stored one; any other needs the key to be sealed.
    let password = match input.connection_password {
        None => PasswordChange::Keep,
        Some(password) if password.is_empty() => PasswordChange::Clear,
        Some(password) => {
            if key.is_none() {
                problems.push(FieldError::new(
                    "connection_password",
                    "unavailable",
                    "cannot store a password: the server has no CAPSTATS_CREDENTIAL_KEY",
                ));
            }
            PasswordChange::Set(password)
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::fields(problems));
    }
    let text = |value: Option<String>| {
        value.map(|value| Some(value.trim().to_owned()).filter(|value| !value.is_empty()))
    };
    let changes = InstanceChanges {
        name,
        db_type,
        host: text(input.host),
        port: input.port.map(Some),
        description: text(input.description),
        connection_user: text(input.connection_user),
        // Sealed once the instance id is known (see `PasswordChange::sealed_for`).
        connection_password: None,
        connection_database: text(input.connection_database),
        tls_mode,
        is_active: input.is_active,
        capacity_limit_mb: input.capacity_limit_mb,
    };
    Ok((changes, password))
}

/// A capacity limit below 1 MB.
fn capacity_limit_problem(limit: i64) -> FieldError {
    FieldError::new(
        "capacity_limit_mb",
        "out_of_range",
        format!("{limit} is not a size: a limit is at least 1 MB (null removes it)"),
    )
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
