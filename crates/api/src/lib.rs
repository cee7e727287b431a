#![doc = include_str!("../README.md")]

pub mod auth;
pub mod dto;
pub mod envelope;
pub mod error;
mod ids;
pub mod metrics;
pub mod middleware;
pub mod pages;
mod params;
pub mod routes;
pub mod state;

use std::num::NonZeroU32;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpResponse, web};
use governor::{Quota, RateLimiter};
use settings::Settings;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::error::ApiError;
use crate::state::AppState;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "capstats_session";

/// The base of the OpenAPI document; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "capstats API",
        version = "1",
        description = "Database capacity statistics: daily size samples of monitored database servers rolled up into daily, weekly, monthly, quarterly and yearly aggregates per database and per instance, the runs that compute them, and their schedules.\n\nEvery response is an envelope: `{\"success\": true, \"message\", \"data\"}` or `{\"success\": false, \"error\": true, \"message_code\", \"message\", \"error_id\", \"request_id\", \"errors\"?}`. Browsers sign in with `POST /auth/login` (session cookie) and send the CSRF token from the login or `GET /auth/csrf-token` as `X-CSRFToken` with writes; programs send `Authorization: Bearer <token>` and need no CSRF token. Viewers read; writes need the admin role."
    ),
    tags(
        (name = "capacity", description = "Aggregates, summaries, chart series and aggregate now"),
        (name = "sync-sessions", description = "Run history: sessions with per-instance records"),
        (name = "scheduler", description = "Schedules of the worker"),
        (name = "partitions", description = "Monthly partitions of the size tables"),
        (name = "instances", description = "Monitored instances and filter options"),
        (name = "auth", description = "Sessions, CSRF tokens and API tokens"),
        (name = "health", description = "Liveness and readiness"),
    ),
    components(schemas(error::ErrorEnvelope, error::FieldError)),
    modifiers(&SecuritySchemes),
)]
struct ApiDocument;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("capstats API token (cst_…)")
                    .description(Some("An API token from POST /api/v1/auth/tokens"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The session cookie set by POST /api/v1/auth/login; writes also need the X-CSRFToken header",
            ))),
        );
    }
}

/// The OpenAPI document of the API, built from the handlers without a server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, document) = App::new()
        .into_utoipa_app()
        .openapi(ApiDocument::openapi())
        .service(utoipa_actix_web::scope("/api/v1").configure(routes::configure))
        .split_for_parts();
    document
}

/// Builds the shared state: pools, limiter, metrics.
pub async fn build_state(settings: Settings) -> Result<Arc<AppState>, ApiError> {
    let time_zone = settings
        .time_zone()
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let store = store::build_pool(
        &settings.database_url,
        settings.database_pool_size,
        settings.database_connect_timeout(),
    )?;
    let job_store =
        jobs::job_store::connect(&settings.database_url, settings.job_store_pool_size).await?;
    let credential_key = settings
        .credential_key
        .as_deref()
        .map(collectors::credentials::CredentialKey::from_hex)
        .transpose()
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let attempts = NonZeroU32::new(settings.login_attempts_per_minute).unwrap_or(NonZeroU32::MIN);
    Ok(Arc::new(AppState {
        store,
        job_store,
        time_zone,
        login_limiter: RateLimiter::keyed(Quota::per_minute(attempts)),
        metrics: metrics::Metrics::new(),
        credential_key,
        token_cache: state::token_cache(),
        settings,
    }))
}

/// The session cookie key: from the settings, else random (sessions then last only as long as
/// this process).
pub fn session_key(settings: &Settings) -> Result<Key, ApiError> {
    match settings
        .session_key_bytes()
        .map_err(|error| ApiError::Internal(error.to_string()))?
    {
        Some(bytes) => {
            Key::try_from(bytes.as_slice()).map_err(|error| ApiError::Internal(error.to_string()))
        }
        None => {
            tracing::warn!(
                "CAPSTATS_SESSION_KEY is not set: using a random key; sessions end when this process stops"
            );
            Ok(Key::generate())
        }
    }
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(16 * 1024 * 1024)
        .error_handler(|error, _| {
            use actix_web::error::JsonPayloadError;
            let api_error = match &error {
                JsonPayloadError::ContentType => {
                    ApiError::field("body", "content_type", "send the body as application/json")
                }
                JsonPayloadError::Deserialize(inner) => {
                    ApiError::field("body", "invalid_json", inner.to_string())
                }
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => {
                    ApiError::field("body", "too_large", "the body is larger than 16 MiB")
                }
                other => ApiError::field("body", "invalid", other.to_string()),
            };
            api_error.into()
        })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, request| {
        ApiError::NotFound(format!("{} ({error})", request.path())).into()
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
        .cookie_name(SESSION_COOKIE.to_owned())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(settings.cookie_secure)
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(PersistentSession::default().session_ttl(
            actix_web::cookie::time::Duration::hours(i64::from(settings.session_ttl_hours)),
        ))
        .build();
    App::new()
        .app_data(web::Data::new(state))
        .app_data(json_config())
        .app_data(path_config())
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
        .default_service(web::to(|| async {
            HttpResponse::from_error(ApiError::NotFound("the requested resource".into()))
        }))
        .into_app()
}

/// Runs the API until SIGTERM (graceful) or SIGINT.
pub async fn serve(settings: Settings) -> Result<(), ApiError> {
    let bind = settings.api_bind.clone();
    let workers = settings.api_workers;
    let key = session_key(&settings)?;
    let state = build_state(settings).await?;
    store::run_blocking(&state.store, store::migrations::ensure_current).await?;
    let document = openapi();
    let shutdown = state.settings.shutdown_timeout_seconds;
    let mut server =
        actix_web::HttpServer::new(move || app(state.clone(), key.clone(), document.clone()))
            .shutdown_timeout(shutdown)
            .bind(&bind)
            .map_err(|error| ApiError::Unavailable(format!("cannot listen on {bind}: {error}")))?;
    if workers > 0 {
        server = server.workers(workers);
    }
    tracing::info!(address = %bind, "capstats API listening");
    server
        .run()
        .await
        .map_err(|error| ApiError::Internal(format!("the server stopped: {error}")))
}
