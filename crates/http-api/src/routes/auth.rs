//! Sign-in and sign-out, the current user, CSRF tokens, the own password and API tokens.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};

use capstats_store::accounts::{self, User};

use crate::audit::{self, SIGN_IN};
use crate::auth::{Caller, Credential, Scope, SignedIn, Viewer, new_token, token_hash};
use crate::dto::{
    CreatedToken, CsrfToken, LoginRequest, LoginResult, PasswordChange, TokenItem, TokenRequest,
    UserItem,
};
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorEnvelope, FieldError};
use crate::error_responses::NotSignedIn;
use crate::extract::SmallJson;
use crate::state::State;

fn user_item(caller: &Caller) -> UserItem {
    UserItem {
        id: caller.user.id,
        username: caller.user.username.clone(),
        role: caller.user.role.clone(),
        authenticated_by: match caller.credential {
            Credential::Session { .. } => "session".into(),
            Credential::Token { .. } => "token".into(),
        },
        scopes: Scope::ALL
            .into_iter()
            .filter(|scope| caller.allows(*scope))
            .map(|scope| scope.as_str().to_owned())
            .collect(),
        token_id: caller.token_id(),
    }
}

fn retry_after(wait: std::time::Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// Longest password accepted: Argon2 hashes any length, but a megabyte-long one is only a way
/// to make the server work.
const MAX_PASSWORD_CHARACTERS: usize = 1024;

/// Problems of a new password, named after `field`.
pub(crate) fn password_problems(field: &str, password: &str) -> Option<FieldError> {
    let length = password.chars().count();
    (!(8..=MAX_PASSWORD_CHARACTERS).contains(&length)).then(|| {
        FieldError::new(
            field,
            "invalid",
            format!("must have 8 to {MAX_PASSWORD_CHARACTERS} characters"),
        )
    })
}

/// Signs in with a username and password: starts a session stored on the server, sets its
/// cookie (HttpOnly, SameSite=Lax, Secure and `__Host-` unless the API listens on loopback
/// only) and returns the CSRF token writes must send. Attempts are limited per client address
/// and per account (exponential backoff after repeated failures); the body may have at most
/// 32 KiB.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = Envelope<LoginResult>),
        (status = 400, description = "Missing username or password, or a body over 32 KiB", body = ErrorEnvelope),
        (status = 401, description = "Wrong username or password", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts from this address or for this account; see `Retry-After`", body = ErrorEnvelope),
    ),
)]
#[post("/auth/login")]
pub async fn login(
    state: State,
    request: HttpRequest,
    session: Session,
    body: SmallJson<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    audit::note(&request, |note| note.action = Some(SIGN_IN));
    let address = state.client_address(&request);
    state
        .login_throttle
        .check_address(address)
        .map_err(retry_after)?;
    let body = body.into_inner();
    let username = body.username.trim().to_owned();
    audit::note(&request, |note| {
        note.username = Some(username.chars().take(150).collect());
    });
    let mut problems = Vec::new();
    if username.is_empty() {
        problems.push(FieldError::new("username", "required", "must not be empty"));
    }
    if body.password.is_empty() {
        problems.push(FieldError::new("password", "required", "must not be empty"));
    } else if body.password.chars().count() > MAX_PASSWORD_CHARACTERS {
        problems.push(FieldError::new(
            "password",
            "too_long",
            format!("must have at most {MAX_PASSWORD_CHARACTERS} characters"),
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields(problems));
    }
    state
        .login_throttle
        .check_account(&username)
        .map_err(retry_after)?;
    let user = match crate::auth::check_credentials(&state, username.clone(), body.password).await {
        Ok(user) => user,
        Err(ApiError::InvalidCredentials) => {
            state.login_throttle.record_failure(address, &username);
            return Err(ApiError::InvalidCredentials);
        }
        Err(other) => return Err(other),
    };
    state.login_throttle.record_success(&username);
    let token =
        crate::auth::start_session(&state, &session, &user, Some(address.to_string())).await?;
    let user_id = user.id;
    capstats_store::run_blocking(&state.store, move |connection| {
        accounts::record_login(connection, user_id)
    })
    .await?;
    Ok(session_started("signed in", user, token))
}

/// The answer to a request that started a session for `user`: `message`, the user as the
/// session will see it, and the session's CSRF token.
fn session_started(message: &str, user: User, csrf: String) -> HttpResponse {
    let caller = Caller {
        scopes: Scope::granted_to_role(&user.role).to_vec(),
        user,
        credential: Credential::Session {
            session_hash: String::new(),
        },
    };
    HttpResponse::Ok().json(Envelope::new(
        message,
        LoginResult {
            user: user_item(&caller),
            csrf_token: csrf,
        },
    ))
}

/// Signs out: the session ends on the server (a copy of the cookie no longer works) and the
/// cookie is removed.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 200, description = "Signed out", body = Envelope<bool>),
        NotSignedIn,
        (status = 403, description = "CSRF token missing or wrong, or not a sign-in session", body = ErrorEnvelope),
    ),
    security(("session_cookie" = [])),
)]
#[post("/auth/logout")]
pub async fn logout(
    state: State,
    SignedIn(caller): SignedIn,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    crate::auth::end_session(&state, &session, &caller).await?;
    Ok(HttpResponse::Ok().json(Envelope::new("signed out", true)))
}

/// The caller: user, how they authenticated and the scopes they have now.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 200, description = "The caller", body = Envelope<UserItem>),
        NotSignedIn,
        (status = 403, description = "A token without the `read` scope", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
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

/// Changes the signed-in user's password. Every session of the user ends, this one included,
/// and a new session starts for this browser (its CSRF token is in the response).
#[utoipa::path(
    tag = "auth",
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed; signed in again", body = Envelope<LoginResult>),
        (status = 400, description = "Wrong current password or invalid new one", body = ErrorEnvelope),
        NotSignedIn,
        (status = 403, description = "CSRF token missing or wrong, or not a sign-in session", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts from this address or for this account (wrong current passwords count as failed sign-ins); see `Retry-After`", body = ErrorEnvelope),
    ),
    security(("session_cookie" = [])),
)]
#[put("/auth/password")]
pub async fn change_password(
    state: State,
    request: HttpRequest,
    SignedIn(caller): SignedIn,
    session: Session,
    body: SmallJson<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if let Some(problem) = password_problems("new_password", &body.new_password) {
        return Err(ApiError::fields(vec![problem]));
    }
    // The current password is guessed here as at sign-in (a copied cookie suffices), and each
    // guess costs two hashes: the same limits per address and per account apply, and a wrong
    // one counts as a failed sign-in.
    let address = state.client_address(&request);
    let username = caller.user.username.clone();
    state
        .login_throttle
        .check_address(address)
        .map_err(retry_after)?;
    state
        .login_throttle
        .check_account(&username)
        .map_err(retry_after)?;
    let stored = caller.user.password_hash.clone();
    let current = body.current_password;
    let new_password = body.new_password;
    let (matches, hash) = crate::auth::with_hashing_slot(&state, move || {
        (
            crate::auth::verify_password(&current, &stored),
            crate::auth::hash_password(&new_password),
        )
    })
    .await?;
    if !matches {
        state.login_throttle.record_failure(address, &username);
        return Err(ApiError::field(
            "current_password",
            "invalid",
            "is not the current password",
        ));
    }
    state.login_throttle.record_success(&username);
    let changes = accounts::UserChanges {
        password_hash: Some(hash?),
        ..accounts::UserChanges::default()
    };
    let user_id = caller.user.id;
    let changed = capstats_store::run_blocking(&state.store, move |connection| {
        accounts::change_user(connection, user_id, &changes)
    })
    .await?;
    state.token_cache.invalidate_all();
    audit::note(&request, |note| {
        note.detail
            .insert("sessions_ended".into(), changed.sessions_ended.into());
    });
    let token =
        crate::auth::start_session(&state, &session, &changed.user, Some(address.to_string()))
            .await?;
    Ok(session_started(
        "password changed; every other session has ended",
        changed.user,
        token,
    ))
}

/// The caller's API tokens with their scopes, expiry and last use (secrets are never shown
/// again).
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 200, description = "The tokens", body = Envelope<Vec<TokenItem>>),
        NotSignedIn,
        (status = 403, description = "A token without the `read` scope", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/auth/tokens")]
pub async fn list_tokens(state: State, Viewer(caller): Viewer) -> Result<HttpResponse, ApiError> {
    let user_id = caller.user.id;
    let tokens = capstats_store::run_blocking(&state.store, move |connection| {
        accounts::list_tokens(connection, user_id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "tokens",
        tokens.into_iter().map(TokenItem::from).collect::<Vec<_>>(),
    )))
}

/// Creates an API token acting as the caller with the given scopes (never more than the
/// caller's role: viewers may create `read` tokens only). Only a signed-in session can create
/// tokens, so a token can never mint another. The secret is in this response only.
#[utoipa::path(
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 201, description = "Created", body = Envelope<CreatedToken>),
        (status = 400, description = "Invalid name, scopes or expiry, or scopes beyond the caller's role", body = ErrorEnvelope),
        NotSignedIn,
        (status = 403, description = "CSRF token missing or wrong, or not a sign-in session", body = ErrorEnvelope),
    ),
    security(("session_cookie" = [])),
)]
#[post("/auth/tokens")]
pub async fn create_token(
    state: State,
    request: HttpRequest,
    SignedIn(caller): SignedIn,
    body: SmallJson<TokenRequest>,
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
    } else if let Err(error) = capstats_capacity_model::validate_plain_text("name", &name) {
        problems.push(error.into());
    }
    let known = Scope::ALL.map(Scope::as_str).join(", ");
    let mut scopes: Vec<Scope> = Vec::new();
    if body.scopes.is_empty() {
        problems.push(FieldError::new(
            "scopes",
            "required",
            format!("name at least one scope: {known}"),
        ));
    }
    let granted = Scope::granted_to_role(&caller.user.role);
    for name in &body.scopes {
        match Scope::parse(name) {
            None => problems.push(FieldError::new(
                "scopes",
                "invalid_choice",
                format!("unknown scope `{name}`; known: {known}"),
            )),
            Some(scope) if !granted.contains(&scope) => problems.push(FieldError::new(
                "scopes",
                "beyond_role",
                format!(
                    "a {} may not create a token with the `{name}` scope",
                    caller.user.role
                ),
            )),
            Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Some(_) => {}
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
    scopes.sort();
    let days = body
        .expires_in_days
        .unwrap_or_else(|| i64::from(state.settings.token_expiry_days));
    let token = new_token();
    let new = accounts::NewApiToken {
        user_id: caller.user.id,
        name,
        token_hash: token_hash(&token),
        token_prefix: token.chars().take(12).collect(),
        scopes: scopes
            .iter()
            .map(|scope| scope.as_str().to_owned())
            .collect(),
        expires_at: Some(chrono::Utc::now() + chrono::Duration::days(days)),
    };
    let stored = capstats_store::run_blocking(&state.store, move |connection| {
        accounts::create_token(connection, &new)
    })
    .await?;
    audit::note(&request, |note| {
        note.detail.insert("token_id".into(), stored.id.into());
        note.detail.insert(
            "scopes".into(),
            scopes
                .iter()
                .map(|scope| scope.as_str())
                .collect::<Vec<_>>()
                .into(),
        );
    });
    Ok(HttpResponse::Created().json(Envelope::new(
        "token created; it is shown only now",
        CreatedToken {
            token,
            details: stored.into(),
        },
    )))
}

/// Revokes one of the caller's API tokens (signed-in session only).
///
/// This API process refuses the token at once; other API processes trust a token they have
/// checked for up to 5 seconds, so there it stops working within 5 seconds.
#[utoipa::path(
    tag = "auth",
    params(("id" = i64, Path, description = "The token's id")),
    responses(
        (status = 200, description = "Revoked", body = Envelope<bool>),
        NotSignedIn,
        (status = 403, description = "CSRF token missing or wrong, or not a sign-in session", body = ErrorEnvelope),
        (status = 404, description = "No such token of the caller", body = ErrorEnvelope),
    ),
    security(("session_cookie" = [])),
)]
#[delete("/auth/tokens/{id}")]
pub async fn revoke_token(
    state: State,
    SignedIn(caller): SignedIn,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let user_id = caller.user.id;
    capstats_store::run_blocking(&state.store, move |connection| {
        accounts::revoke_token(connection, user_id, id)
    })
    .await?;
    // The cache is keyed by the token's hash, which is not at hand here; revocations are
    // rare, so forget every cached token of this process (others forget within
    // TOKEN_CACHE_SECONDS).
    state.token_cache.invalidate_all();
    Ok(HttpResponse::Ok().json(Envelope::new("token revoked", true)))
}
