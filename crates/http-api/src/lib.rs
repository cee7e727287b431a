#![doc = include_str!("../README.md")]

pub mod audit;
pub mod auth;
pub mod dto;
pub mod envelope;
pub mod error;
pub mod error_responses;
pub mod export;
pub mod extract;
pub mod hashing;
mod ids;
pub mod metrics;
pub mod middleware;
pub mod pages;
mod params;
pub mod remembered;
pub mod route_table;
pub mod routes;
pub mod state;
pub mod throttle;

use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, web};
use capstats_settings::Settings;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::error::ApiError;
use crate::state::AppState;

/// The name of the session cookie over plain HTTP (loopback only).
pub const SESSION_COOKIE: &str = "capstats_session";
/// The name of the session cookie when it is `Secure`: browsers accept a `__Host-` cookie only
/// from HTTPS, for the exact host and path `/`, so no sibling domain can plant or overwrite it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-capstats_session";

/// The session cookie's name under `settings`.
pub fn session_cookie_name(settings: &Settings) -> &'static str {
    if settings.cookie_is_secure() {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The base of the OpenAPI document; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "capstats API",
        version = "1",
        description = "Database capacity statistics: daily size samples of monitored database servers rolled up into daily, weekly, monthly, quarterly and yearly aggregates per database and per instance, the runs that compute them, and their schedules.\n\nEvery response is an envelope: `{\"success\": true, \"message\", \"data\"}` or `{\"success\": false, \"error\": true, \"message_code\", \"message\", \"error_id\", \"request_id\", \"errors\"?}`. Browsers sign in with `POST /auth/login` (session cookie) and send the CSRF token from the login or `GET /auth/csrf-token` as `X-CSRFToken` with writes; programs send `Authorization: Bearer <token>` and need no CSRF token. Tokens carry an allowlist of scopes — `read` (every GET), `ingest` (`POST /capacity/stats`), `operate` (runs, schedules, partitions, collect now), `admin` (everything an admin session may do) — and never more than their user's role; each operation's description names what it needs. Viewer sessions read; admin sessions do everything.\n\nNumbers: sizes in MB are JSON integers; percentages and other decimals are JSON numbers with at most two decimals, written from the exact stored decimal without trailing zeros (`0`, `50`, `12.3`, `12.34`). Input is strict: a query parameter an operation does not declare, or a JSON field a request body does not have, answers `400 VALIDATION_ERROR` naming each one; an operation without a request body refuses one (`body`, `unexpected_body`) unless it is empty, `{}` or `null`. Every GET route answers HEAD; a method a path does not declare answers `405` with `Allow`."
    ),
    tags(
        (name = "capacity", description = "Aggregates, summaries, chart series and aggregate now"),
        (name = "sync-sessions", description = "Run history: sessions with per-instance records"),
        (name = "scheduler", description = "Schedules of the worker"),
        (name = "partitions", description = "Monthly partitions of the size tables"),
        (name = "instances", description = "Monitored instances and filter options"),
        (name = "auth", description = "Sign-in sessions, CSRF tokens, the own password and API tokens"),
        (name = "users", description = "User accounts and the audit trail (administrators)"),
        (name = "alerts", description = "Alert rules (administrators) and the events their evaluations open and resolve; the `Notice` schema is the JSON body of the generic webhook channel"),
        (name = "health", description = "Liveness and readiness"),
    ),
    components(schemas(
        error::ErrorEnvelope,
        error::FieldError,
        capstats_sync_session::SessionStatus,
        capstats_sync_session::SyncType,
        capstats_sync_session::SyncCategory,
        capstats_capacity_model::DbType,
        capstats_capacity_model::PeriodType,
        capstats_capacity_model::TlsMode,
        capstats_notifications::Notice,
    )),
    modifiers(&SecuritySchemes),
)]
struct ApiDocument;

struct SecuritySchemes;

/// The access rule of one operation, from its `security` requirements: which scope a token
/// needs (`None`: no token is accepted), whether a sign-in session is accepted, or nothing
/// (public). Written into each operation's description, and read by the authorisation matrix
/// test, so the spec states every route's decision.
pub fn access_of(operation: &utoipa::openapi::path::Operation) -> Option<(bool, Option<String>)> {
    let requirements = serde_json::to_value(operation.security.as_ref()?).ok()?;
    let mut session = false;
    let mut token_scope = None;
    for requirement in requirements.as_array()? {
        let requirement = requirement.as_object()?;
        session |= requirement.contains_key("session_cookie");
        if let Some(scopes) = requirement
            .get("bearer_token")
            .and_then(|scopes| scopes.as_array())
        {
            token_scope = scopes
                .first()
                .and_then(|scope| scope.as_str())
                .map(str::to_owned);
        }
    }
    Some((session, token_scope))
}

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("capstats API token (cst_…)")
                    .description(Some("An API token from POST /api/v1/auth/tokens; each route names the scope it needs (`read`, `ingest`, `operate`, `admin`; `admin` covers all)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SECURE_SESSION_COOKIE,
                "The session cookie set by POST /api/v1/auth/login (`__Host-capstats_session` over HTTPS, `capstats_session` when the API listens on loopback without CAPSTATS_COOKIE_SECURE); writes also need the X-CSRFToken header",
            ))),
        );
    }
}

/// Appends each operation's access rule to its description.
fn describe_access(openapi: &mut utoipa::openapi::OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            let rule = match access_of(operation) {
                None => "**Access:** public.".to_owned(),
                Some((_, Some(scope))) => format!(
                    "**Access:** scope `{scope}`: an API token with it, or a sign-in session of a user whose role grants it{}.",
                    if scope == "read" {
                        " (every user)"
                    } else {
                        " (admins)"
                    }
                ),
                Some((_, None)) => {
                    "**Access:** a sign-in session only (any role); API tokens are refused."
                        .to_owned()
                }
            };
            let description = operation.description.get_or_insert_with(String::new);
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&rule);
        }
    }
}

/// The OpenAPI document of the API, built from the handlers without a server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, document) = App::new()
        .into_utoipa_app()
        .openapi(ApiDocument::openapi())
        .service(utoipa_actix_web::scope("/api/v1").configure(routes::configure))
        .split_for_parts();
    let mut document = document;
    describe_access(&mut document);
    forbid_unknown_fields(document)
}

/// Years 1900 to 9998 in a `YYYY-MM-DD` date: the dates capstats accepts
/// (`capstats_capacity_model::validate_supported_date`).
const SUPPORTED_DATE_PATTERN: &str =
    "^(19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-[0-9]{2}-[0-9]{2}$";

/// States the rules every input shares, in one place: every object a request body can contain
/// is `additionalProperties: false`, every free-text string of a body or query is free of NUL
/// (the JSON extractor, [`extract::parse_strictly`], and [`params::Parameters`] refuse both),
/// every date they take lies in the supported years, and names and other plain text carry the
/// domain's patterns (`capstats_capacity_model::NAME_PATTERN`, `PLAIN_TEXT_PATTERN`).
fn forbid_unknown_fields(document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use serde_json::Value;
    fn close(
        schema: &mut Value,
        components: &mut serde_json::Map<String, Value>,
        seen: &mut Vec<String>,
    ) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference
                .trim_start_matches("#/components/schemas/")
                .to_owned();
            if !seen.contains(&name) {
                seen.push(name.clone());
                if let Some(mut target) = components.remove(&name) {
                    close(&mut target, components, seen);
                    components.insert(name, target);
                }
            }
            return;
        }
        let Some(object) = schema.as_object_mut() else {
            return;
        };
        if object.contains_key("properties") {
            object.insert("additionalProperties".into(), Value::Bool(false));
        }
        let is_string = match object.get("type") {
            Some(Value::String(kind)) => kind == "string",
            Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "string"),
            _ => false,
        };
        // The text rules live in the domain: DTOs name them, as `{name}` or `{plain_text}`.
        if let Some(Value::String(pattern)) = object.get_mut("pattern") {
            match pattern.as_str() {
                "{name}" => *pattern = capstats_capacity_model::NAME_PATTERN.into(),
                "{plain_text}" => *pattern = capstats_capacity_model::PLAIN_TEXT_PATTERN.into(),
                _ => {}
            }
        }
        if is_string
            && !["pattern", "enum"]
                .iter()
                .any(|key| object.contains_key(*key))
        {
            match object.get("format").and_then(Value::as_str) {
                None => {
                    object.insert("pattern".into(), Value::String("^[^\\x00]*$".into()));
                }
                Some("date") => {
                    object.insert("pattern".into(), SUPPORTED_DATE_PATTERN.into());
                }
                Some(_) => {}
            }
        }
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            for property in properties.values_mut() {
                close(property, components, seen);
            }
        }
        if let Some(items) = object.get_mut("items") {
            close(items, components, seen);
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            if let Some(Value::Array(parts)) = object.get_mut(key) {
                for part in parts {
                    close(part, components, seen);
                }
            }
        }
    }
    let mut value = serde_json::to_value(&document).expect("the document serialises");
    let mut components = value["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut seen = Vec::new();
    if let Some(paths) = value["paths"].as_object_mut() {
        for item in paths.values_mut() {
            for operation in item
                .as_object_mut()
                .into_iter()
                .flat_map(|item| item.values_mut())
            {
                if let Some(Value::Array(parameters)) = operation.get_mut("parameters") {
                    for parameter in parameters
                        .iter_mut()
                        .filter(|parameter| parameter["in"] == "query")
                    {
                        if let Some(schema) = parameter.get_mut("schema") {
                            close(schema, &mut components, &mut seen);
                        }
                    }
                }
                if let Some(Value::Object(content)) = operation.pointer_mut("/requestBody/content")
                {
                    for media in content.values_mut() {
                        if let Some(schema) = media.get_mut("schema") {
                            close(schema, &mut components, &mut seen);
                        }
                    }
                }
            }
        }
    }
    value["components"]["schemas"] = Value::Object(components);
    serde_json::from_value(value).expect("the document deserialises")
}

/// Builds the shared state: pools, limiter, metrics.
pub async fn build_state(
    settings: Settings,
    queue: Arc<dyn capstats_services::JobQueue>,
) -> Result<Arc<AppState>, ApiError> {
    let store = capstats_store::build_pool(
        &settings.database_url,
        settings.database_pool_size,
        settings.database_connect_timeout(),
    )?;
    let credential_key = settings
        .credential_key
        .as_deref()
        .map(capstats_collectors::credentials::CredentialKey::from_hex)
        .transpose()
        .map_err(|error| ApiError::Internal(error.into()))?;
    let trusted_proxies = throttle::parse_trusted_proxies(&settings.trusted_proxies)
        .map_err(|error| ApiError::Internal(error.into()))?;
    Ok(Arc::new(AppState {
        store,
        queue,
        login_throttle: throttle::LoginThrottle::new(
            settings.login_attempts_per_minute,
            settings.login_concurrency,
        ),
        trusted_proxies,
        metrics: metrics::Metrics::new(),
        credential_key,
        token_cache: state::token_cache(),
        remembered: remembered::RememberedReads::new(settings.remembered_reads_mb),
        exports: Arc::new(tokio::sync::Semaphore::new(
            usize::try_from(settings.database_pool_size / 2)
                .unwrap_or(1)
                .max(1),
        )),
        settings,
    }))
}

/// The session cookie key: from the settings, else random (sessions then last only as long as
/// this process).
pub fn session_key(settings: &Settings) -> Result<Key, ApiError> {
    match settings
        .session_key_bytes()
        .map_err(|error| ApiError::Internal(error.into()))?
    {
        Some(bytes) => {
            Key::try_from(bytes.as_slice()).map_err(|error| ApiError::Internal(error.into()))
        }
        None => {
            tracing::warn!(
                "CAPSTATS_SESSION_KEY is not set: using a random key; sessions end when this process stops"
            );
            Ok(Key::generate())
        }
    }
}

fn path_config() -> web::PathConfig {
    // A path parameter that does not parse is a resource that does not exist, unless the
    // path is a fixed route's asked with a method it lacks (`PUT /instances/options`).
    web::PathConfig::default().error_handler(|error, request| {
        route_table::refusal_of(request)
            .unwrap_or_else(|| ApiError::NotFound(format!("{} ({error})", request.path())))
            .into()
    })
}

/// The application: middleware, Swagger UI, the `/api/v1` handlers, `/metrics` and the web
/// UI's pages.
pub fn app(
    state: Arc<AppState>,
    key: Key,
    document: utoipa::openapi::OpenApi,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let settings = &state.settings;
    let sessions = SessionMiddleware::builder(CookieSessionStore::default(), key)
        .cookie_name(session_cookie_name(settings).to_owned())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(settings.cookie_is_secure())
        .cookie_path("/".to_owned())
        .cookie_domain(None)
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(PersistentSession::default().session_ttl(
            actix_web::cookie::time::Duration::hours(i64::from(settings.session_ttl_hours)),
        ))
        .build();
    let route_table = web::Data::new(route_table::RouteTable::from_document(&document));
    App::new()
        .app_data(web::Data::new(state))
        .app_data(route_table)
        .app_data(path_config())
        // Innermost first: authentication needs the session, and its errors get the envelope.
        .wrap(actix_web::middleware::from_fn(middleware::authentication))
        .wrap(sessions)
        .wrap(actix_web::middleware::from_fn(middleware::request_context))
        .service(web::redirect("/api/v1/docs", "/api/v1/docs/"))
        .service(
            SwaggerUi::new("/api/v1/docs/{_:.*}")
                .url("/api/v1/openapi.json", document)
                .config(SwaggerConfig::default().validator_url("none")),
        )
        .route("/metrics", web::get().to(metrics::scrape))
        .configure(pages::configure)
        .into_utoipa_app()
        .service(utoipa_actix_web::scope("/api/v1").configure(routes::configure))
        .default_service(web::to(route_table::unmatched))
        .into_app()
}

/// Starts what runs beside the request handlers for as long as the process lives: the refresh
/// of the run gauges of `/metrics` (read from the database every 15 s, never per scrape, so
/// scrapes cost no query).
pub fn start_background_tasks(state: &Arc<AppState>) {
    tokio::spawn(metrics::refresh_periodically(state.clone()));
}

/// Runs the API until SIGTERM (graceful) or SIGINT.
pub async fn serve(
    settings: Settings,
    queue: Arc<dyn capstats_services::JobQueue>,
) -> Result<(), ApiError> {
    let bind = settings.api_bind.clone();
    let workers = settings.api_workers;
    let key = session_key(&settings)?;
    if !settings.cookie_is_secure() {
        tracing::warn!(
            bind = %bind,
            "the session cookie is not Secure: CAPSTATS_API_BIND is a loopback address (or CAPSTATS_COOKIE_SECURE=false), so sign-ins work over plain HTTP; serve through HTTPS and leave CAPSTATS_COOKIE_SECURE unset or true in production"
        );
    }
    let state = build_state(settings, queue).await?;
    capstats_store::run_blocking(&state.store, capstats_store::migrations::ensure_current).await?;
    start_background_tasks(&state);
    let document = openapi();
    let shutdown = state.settings.shutdown_timeout_seconds;
    let mut server =
        actix_web::HttpServer::new(move || app(state.clone(), key.clone(), document.clone()))
            .shutdown_timeout(shutdown)
            .bind(&bind)
            .map_err(|error| {
                ApiError::Unavailable(format!("cannot listen on {bind}: {error}").into())
            })?;
    if workers > 0 {
        server = server.workers(workers);
    }
    tracing::info!(address = %bind, "capstats API listening");
    server
        .run()
        .await
        .map_err(|error| ApiError::Internal(format!("the server stopped: {error}").into()))
}
