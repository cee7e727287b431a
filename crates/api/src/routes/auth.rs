//! Login, logout, the current user, CSRF tokens and API tokens.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use governor::clock::Clock;

use store::accounts;

use crate::auth::{Admin, Caller, Credential, INGEST_SCOPE, Member, Viewer, new_token, token_hash};
use crate::dto::{
    CreatedToken, CsrfToken, LoginRequest, LoginResult, TokenItem, TokenRequest, UserItem,
};
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorEnvelope, FieldError};
use crate::state::State;

fn user_item(caller: &Caller) -> UserItem {
    UserItem {
        id: caller.user.id,
        username: caller.user.username.clone(),
        role: caller.user.role.clone(),
        authenticated_by: match caller.credential {
            Credential::Session => "session".into(),
            Credential::Token { .. } => "token".into(),
        },
    }
}

/// Signs in with a username and password: sets the session cookie (HttpOnly, SameSite=Lax)
/// and returns the CSRF token writes must send. Attempts are rate limited per client address.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = Envelope<LoginResult>),
        (status = 400, description = "Missing username or password", body = ErrorEnvelope),
        (status = 401, description = "Wrong username or password", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts from this address", body = ErrorEnvelope),
    ),
)]
#[post("/auth/login")]
pub async fn login(
    state: State,
    request: HttpRequest,
    session: Session,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let address = request
        .connection_info()
        .realip_remote_addr()
        .unwrap_or("unknown")
        .to_owned();
    if let Err(not_until) = state.login_limiter.check_key(&address) {
        let wait = not_until.wait_time_from(state.login_limiter.clock().now());
        return Err(ApiError::RateLimited {
            retry_after_seconds: wait.as_secs().max(1),
        });
    }
    let body = body.into_inner();
    let mut problems = Vec::new();
    if body.username.trim().is_empty() {
        problems.push(FieldError::new("username", "required", "must not be empty"));
    }
    if body.password.is_empty() {
        problems.push(FieldError::new("password", "required", "must not be empty"));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields(problems));
    }
    let user =
        crate::auth::check_credentials(&state, body.username.trim().to_owned(), body.password)
            .await?;
    let token = crate::auth::start_session(&session, &user, state.settings.session_ttl_hours)?;
    let user_id = user.id;
    store::run_blocking(&state.store, move |connection| {
        accounts::record_login(connection, user_id)
    })
    .await?;
    let caller = Caller {
        user,
        credential: Credential::Session,
    };
    Ok(HttpResponse::Ok().json(Envelope::new(
        "signed in",
        LoginResult {
            user: user_item(&caller),
            csrf_token: token,
        },
    )))
}

/// Signs out: the session cookie is removed.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 200, description = "Signed out", body = Envelope<bool>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "CSRF token missing or wrong", body = ErrorEnvelope),
    ),
    security(("session_cookie" = [])),
)]
#[post("/auth/logout")]
pub async fn logout(_member: Member, session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::Ok().json(Envelope::new("signed out", true))
}

/// The signed-in user.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 200, description = "The caller", body = Envelope<UserItem>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = [])),
)]
#[get("/auth/me")]
pub async fn me(Viewer(caller): Viewer) -> HttpResponse {
    HttpResponse::Ok().json(Envelope::new("current user", user_item(&caller)))
}

/// The CSRF token of this browser session (created if needed). Cookie-authenticated writes send
/// it as `X-CSRFToken`.
#[utoipa::path(
    tag = "auth",
    responses((status = 200, description = "The token", body = Envelope<CsrfToken>)),
)]
#[get("/auth/csrf-token")]
pub async fn csrf_token(session: Session) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(Envelope::new(
        "csrf token",
        CsrfToken {
            csrf_token: crate::auth::csrf_token(&session)?,
        },
    )))
}

/// The caller's API tokens (secrets are never shown again).
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 200, description = "The tokens", body = Envelope<Vec<TokenItem>>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = [])),
)]
#[get("/auth/tokens")]
pub async fn list_tokens(state: State, Viewer(caller): Viewer) -> Result<HttpResponse, ApiError> {
    let user_id = caller.user.id;
    let tokens = store::run_blocking(&state.store, move |connection| {
        accounts::list_tokens(connection, user_id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "tokens",
        tokens.into_iter().map(TokenItem::from).collect::<Vec<_>>(),
    )))
}

/// Creates an API token acting as the caller; the secret is in this response only.
#[utoipa::path(
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 201, description = "Created", body = Envelope<CreatedToken>),
        (status = 400, description = "Invalid name, scope or expiry", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an admin, or CSRF token missing or wrong", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = [])),
)]
#[post("/auth/tokens")]
pub async fn create_token(
    state: State,
    Admin(caller): Admin,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut problems = Vec::new();
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        problems.push(FieldError::new(
            "name",
            "invalid",
            "must have 1 to 100 characters",
        ));
    }
    for scope in &body.scopes {
        if scope != INGEST_SCOPE {
            problems.push(FieldError::new(
                "scopes",
                "invalid_choice",
                format!("unknown scope `{scope}`; known: {INGEST_SCOPE}"),
            ));
        }
    }
    if let Some(days) = body.expires_in_days
        && !(1..=3650).contains(&days)
    {
        problems.push(FieldError::new(
            "expires_in_days",
            "out_of_range",
            "must be between 1 and 3650",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields(problems));
    }
    let token = new_token();
    let new = accounts::NewApiToken {
        user_id: caller.user.id,
        name,
        token_hash: token_hash(&token),
        token_prefix: token.chars().take(12).collect(),
        scopes: body.scopes,
        expires_at: body
            .expires_in_days
            .map(|days| chrono::Utc::now() + chrono::Duration::days(days)),
    };
    let stored = store::run_blocking(&state.store, move |connection| {
        accounts::create_token(connection, &new)
    })
    .await?;
    Ok(HttpResponse::Created().json(Envelope::new(
        "token created; it is shown only now",
        CreatedToken {
            token,
            details: stored.into(),
        },
    )))
}

/// Revokes one of the caller's API tokens.
///
/// This API process refuses the token at once; other API processes trust a token they have
/// checked for up to 5 seconds, so there it stops working within 5 seconds.
#[utoipa::path(
    tag = "auth",
    params(("id" = i64, Path, description = "The token's id")),
    responses(
        (status = 200, description = "Revoked", body = Envelope<bool>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an admin, or CSRF token missing or wrong", body = ErrorEnvelope),
        (status = 404, description = "No such token of the caller", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = [])),
)]
#[delete("/auth/tokens/{id}")]
pub async fn revoke_token(
    state: State,
    Admin(caller): Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let user_id = caller.user.id;
    store::run_blocking(&state.store, move |connection| {
        accounts::revoke_token(connection, user_id, id)
    })
    .await?;
    // The cache is keyed by the token's hash, which is not at hand here; revocations are
    // rare, so forget every cached token of this process (others forget within
    // TOKEN_CACHE_SECONDS).
    state.token_cache.invalidate_all();
    Ok(HttpResponse::Ok().json(Envelope::new("token revoked", true)))
}
