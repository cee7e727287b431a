//! User accounts (administrators): list, create, change role, activation or password, and end
//! all sessions of a user; the audit trail.

use actix_web::{HttpRequest, HttpResponse, get, post, put, web};

use capstats_store::accounts;
use capstats_store::audit::AuditFilter;

use crate::audit;
use crate::auth::Admin;
use crate::dto::{
    AccountChanges, AccountItem, AuditEventItem, ChangedAccount, EndedSessions, NewAccount,
};
use crate::envelope::{Envelope, Paginated};
use crate::error::{ApiError, ErrorEnvelope, FieldError};
use crate::error_responses::NotSignedIn;
use crate::extract::SmallJson;
use crate::params::Parameters;
use crate::routes::auth::password_problems;
use crate::state::State;

const ROLES: [&str; 2] = ["admin", "viewer"];

fn role_problem(role: &str) -> Option<FieldError> {
    (!ROLES.contains(&role)).then(|| {
        FieldError::new(
            "role",
            "invalid_choice",
            format!("unknown role `{role}`; expected admin or viewer"),
        )
    })
}

/// Every user account.
#[utoipa::path(
    tag = "users",
    responses(
        (status = 200, description = "The accounts, by name", body = Envelope<Vec<AccountItem>>),
        NotSignedIn,
        (status = 403, description = "Needs the `admin` scope", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[get("/users")]
pub async fn list_users(state: State, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let users = capstats_store::run_blocking(&state.store, accounts::list_users).await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "users",
        users.into_iter().map(AccountItem::from).collect::<Vec<_>>(),
    )))
}

/// Creates a user account.
#[utoipa::path(
    tag = "users",
    request_body = NewAccount,
    responses(
        (status = 201, description = "Created", body = Envelope<AccountItem>),
        (status = 400, description = "Invalid name, password or role", body = ErrorEnvelope),
        NotSignedIn,
        (status = 403, description = "Needs the `admin` scope, or CSRF token missing or wrong", body = ErrorEnvelope),
        (status = 409, description = "The name is taken", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[post("/users")]
pub async fn create_user(
    state: State,
    _admin: Admin,
    body: SmallJson<NewAccount>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let username = body.username.trim().to_owned();
    let mut problems = Vec::new();
    if username.is_empty() || username.chars().count() > 150 {
        problems.push(FieldError::new(
            "username",
            "invalid",
            "must have 1 to 150 characters",
        ));
    } else if let Err(error) = capstats_capacity_model::validate_plain_text("username", &username) {
        problems.push(error.into());
    }
    problems.extend(password_problems("password", &body.password));
    problems.extend(role_problem(&body.role));
    if !problems.is_empty() {
        return Err(ApiError::fields(problems));
    }
    let password = body.password;
    let hash =
        crate::auth::with_hashing_slot(&state, move || crate::auth::hash_password(&password))
            .await??;
    let role = body.role;
    let user = capstats_store::run_blocking(&state.store, move |connection| {
        accounts::create_user(connection, &username, &hash, &role)
    })
    .await?;
    Ok(HttpResponse::Created().json(Envelope::new("user created", AccountItem::from(user))))
}

/// Changes a user's role, activation or password. A new password (a reset), a deactivation or
/// a role change end every sign-in session of the user at once; tokens of a deactivated user
/// stop working within 5 seconds.
#[utoipa::path(
    tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = AccountChanges,
    responses(
        (status = 200, description = "Changed", body = Envelope<ChangedAccount>),
        (status = 400, description = "Invalid role or password", body = ErrorEnvelope),
        NotSignedIn,
        (status = 403, description = "Needs the `admin` scope, or CSRF token missing or wrong", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[put("/users/{id}")]
pub async fn update_user(
    state: State,
    request: HttpRequest,
    _admin: Admin,
    path: web::Path<i64>,
    body: SmallJson<AccountChanges>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.into_inner();
    let mut problems = Vec::new();
    if let Some(role) = &body.role {
        problems.extend(role_problem(role));
    }
    if let Some(password) = &body.password {
        problems.extend(password_problems("password", password));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields(problems));
    }
    let password_hash = match body.password {
        Some(password) => Some(
            crate::auth::with_hashing_slot(&state, move || crate::auth::hash_password(&password))
                .await??,
        ),
        None => None,
    };
    audit::note(&request, |note| {
        note.detail
            .insert("password_reset".into(), password_hash.is_some().into());
    });
    let changes = accounts::UserChanges {
        role: body.role,
        is_active: body.is_active,
        password_hash,
    };
    let changed = capstats_store::run_blocking(&state.store, move |connection| {
        accounts::change_user(connection, id, &changes)
    })
    .await?;
    // A deactivated user's or a lowered role's cached tokens must not keep their old powers.
    state.token_cache.invalidate_all();
    Ok(HttpResponse::Ok().json(Envelope::new(
        "user changed",
        ChangedAccount {
            account: changed.user.into(),
            sessions_ended: changed.sessions_ended,
        },
    )))
}

/// Ends every sign-in session of a user (a lost laptop, a shared screen): their cookies stop
/// working at once. Their API tokens are not affected; revoke those separately.
#[utoipa::path(
    tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Ended", body = Envelope<EndedSessions>),
        NotSignedIn,
        (status = 403, description = "Needs the `admin` scope, or CSRF token missing or wrong", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[post("/users/{id}/actions/end-sessions")]
pub async fn end_sessions(
    state: State,
    _admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let ended = capstats_store::run_blocking(&state.store, move |connection| {
        accounts::find_user(connection, id)?
            .ok_or_else(|| capstats_store::StoreError::NotFound(format!("user {id}")))?;
        accounts::end_user_sessions(connection, id, "ended by an administrator")
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "sessions ended",
        EndedSessions {
            sessions_ended: ended,
        },
    )))
}

/// The audit trail, newest first: sign-ins (failed ones too), token changes, every write
/// through the API and credential changes. Filters: `action` (a prefix such as `auth.`),
/// `username`, `outcome` (`success`, `failure`, `denied`), `since` and `until` (RFC 3339);
/// `page`, `limit`.
#[utoipa::path(
    tag = "users",
    params(
        ("action" = Option<String>, Query, description = "Actions starting with this text, e.g. `auth.` or `instances.update`", min_length = 1, pattern = "^[^\\x00]+$"),
        ("username" = Option<String>, Query, description = "Events of this user name (or tried name)", min_length = 1, pattern = "^[^\\x00]+$"),
        ("outcome" = Option<String>, Query, description = "`success`, `failure` or `denied`", pattern = "^(success|failure|denied)$"),
        ("since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Events at or after this time (RFC 3339)"),
        ("until" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Events before this time (RFC 3339)"),
        ("page" = Option<i64>, Query, description = "Page, from 1", minimum = 1, maximum = 1000000),
        ("limit" = Option<i64>, Query, description = "Events per page, 1–200 (default 20)", minimum = 1, maximum = 200),
    ),
    responses(
        (status = 200, description = "One page of events", body = Envelope<Paginated<AuditEventItem>>),
        (status = 400, description = "Invalid filter", body = ErrorEnvelope),
        NotSignedIn,
        (status = 403, description = "Needs the `admin` scope", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[get("/audit-events")]
pub async fn list_audit_events(
    state: State,
    _admin: Admin,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut parameters = Parameters::of(&request);
    let outcome = parameters.one::<String>("outcome");
    if let Some(outcome) = &outcome
        && !["success", "failure", "denied"].contains(&outcome.as_str())
    {
        parameters.problem(
            "outcome",
            "invalid_choice",
            format!("unknown outcome `{outcome}`; expected success, failure or denied"),
        );
    }
    let filter = AuditFilter {
        action_prefix: parameters.one::<String>("action"),
        username: parameters.one::<String>("username"),
        outcome,
        since: parameters.one::<chrono::DateTime<chrono::Utc>>("since"),
        until: parameters.one::<chrono::DateTime<chrono::Utc>>("until"),
    };
    let page = parameters.page();
    parameters.finish()?;
    let offset = (page.page - 1) * page.limit;
    let (events, total) = capstats_store::run_blocking(&state.store, move |connection| {
        capstats_store::audit::list(connection, &filter, offset, page.limit)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "audit events",
        Paginated::new(
            events.into_iter().map(AuditEventItem::from).collect(),
            total,
            page.page,
            page.limit,
        ),
    )))
}
