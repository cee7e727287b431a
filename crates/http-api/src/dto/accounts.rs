//! Sign-in, users, API tokens, the audit trail and health.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /auth/login`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Username.
    #[schema(min_length = 1)]
    pub username: String,
    /// Password.
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
}

/// The signed-in user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserItem {
    /// Id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// `session` or `token`.
    pub authenticated_by: String,
    /// What this caller may do now: `read`, `ingest`, `operate`, `admin`.
    pub scopes: Vec<String>,
    /// The API token of this request, when it came with one.
    pub token_id: Option<i64>,
}

/// The result of a login.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoginResult {
    /// The user.
    pub user: UserItem,
    /// The token cookie-authenticated writes send as `X-CSRFToken`.
    pub csrf_token: String,
}

/// The CSRF token of the session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CsrfToken {
    /// Send it as `X-CSRFToken` with writes.
    pub csrf_token: String,
}

/// `POST /auth/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// A label (1–100 characters).
    #[schema(min_length = 1, max_length = 100, pattern = "{name}")]
    pub name: String,
    /// What the token may do, at least one and never more than the caller's role: `read`
    /// (every GET), `ingest` (`POST /capacity/stats` only), `operate` (runs, schedules,
    /// partitions, collect now), `admin` (everything an admin session may do except managing
    /// tokens).
    #[schema(min_items = 1, value_type = Vec<TokenScope>)]
    pub scopes: Vec<String>,
    /// Days until it expires, 1–3650 (absent: `CAPSTATS_TOKEN_EXPIRY_DAYS`, 90 by default).
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
}

/// A token scope (the schema of `TokenRequest.scopes`).
#[derive(Debug, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Every GET.
    Read,
    /// `POST /capacity/stats`.
    Ingest,
    /// Runs, schedules, partitions, collect now.
    Operate,
    /// Everything an admin session may do except managing tokens.
    Admin,
}

/// `PUT /auth/password`: the signed-in user's new password.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PasswordChange {
    /// The current password.
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: String,
    /// The new password (8 to 1024 characters).
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// A user account, for administrators.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountItem {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// Inactive users cannot sign in, and their tokens do not work.
    pub is_active: bool,
    /// Last successful sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Creation.
    pub created_at: DateTime<Utc>,
}

impl From<capstats_store::accounts::User> for AccountItem {
    fn from(user: capstats_store::accounts::User) -> Self {
        Self {
            id: user.id,
            username: user.username,
            role: user.role,
            is_active: user.is_active,
            last_login_at: user.last_login_at,
            created_at: user.created_at,
        }
    }
}

/// `POST /users`: a new account.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewAccount {
    /// Login name (1–150 characters).
    #[schema(min_length = 1, max_length = 150, pattern = "{name}")]
    pub username: String,
    /// Password (8 to 1024 characters).
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// `admin` or `viewer`.
    #[schema(pattern = "^(admin|viewer)$")]
    pub role: String,
}

/// `PUT /users/{id}`: changes to an account; absent fields stay. A new password, a
/// deactivation or a role change end all of the user's sign-in sessions.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AccountChanges {
    /// `admin` or `viewer`.
    #[schema(pattern = "^(admin|viewer)$")]
    pub role: Option<String>,
    /// `false` deactivates the account.
    pub is_active: Option<bool>,
    /// A new password (8 to 1024 characters): a reset by an administrator.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}

/// An account after a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangedAccount {
    /// The account.
    #[serde(flatten)]
    pub account: AccountItem,
    /// Sign-in sessions the change ended.
    pub sessions_ended: usize,
}

/// Sessions an action ended.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndedSessions {
    /// How many.
    pub sessions_ended: usize,
}

/// One audit event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEventItem {
    /// Id (increasing).
    pub id: i64,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// What: `auth.login`, `auth.tokens.create`, `instances.update`, `scheduler.jobs.pause`, ….
    pub action: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// The acting user.
    pub user_id: Option<i64>,
    /// The acting user's name, or the name a failed sign-in tried.
    pub username: Option<String>,
    /// The API token used.
    pub token_id: Option<i64>,
    /// The client's address.
    pub client_address: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// HTTP method.
    pub http_method: Option<String>,
    /// Route template.
    pub http_route: Option<String>,
    /// Response status.
    pub http_status: Option<i32>,
    /// What was acted on (`id=12`).
    pub target: Option<String>,
    /// More detail.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<capstats_store::audit::AuditEvent> for AuditEventItem {
    fn from(recorded: capstats_store::audit::AuditEvent) -> Self {
        let event = recorded.event;
        Self {
            id: recorded.id,
            occurred_at: recorded.occurred_at,
            action: event.action,
            outcome: event.outcome,
            user_id: event.user_id,
            username: event.username,
            token_id: event.token_id,
            client_address: event.client_address,
            request_id: event.request_id,
            http_method: event.http_method,
            http_route: event.http_route,
            http_status: event.http_status,
            target: event.target,
            detail: event.detail,
        }
    }
}

/// An API token (without its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenItem {
    /// Id.
    pub id: i64,
    /// Label.
    pub name: String,
    /// The first characters, to recognise it.
    pub token_prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Creation.
    pub created_at: DateTime<Utc>,
}

impl From<capstats_store::accounts::ApiToken> for TokenItem {
    fn from(token: capstats_store::accounts::ApiToken) -> Self {
        Self {
            id: token.id,
            name: token.name,
            token_prefix: token.token_prefix,
            scopes: token.scopes.into_iter().flatten().collect(),
            expires_at: token.expires_at,
            last_used_at: token.last_used_at,
            revoked_at: token.revoked_at,
            created_at: token.created_at,
        }
    }
}

/// A new token: the secret is shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// The stored token.
    #[serde(flatten)]
    pub details: TokenItem,
}

/// Health.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok`.
    pub status: String,
    /// The database, for readiness.
    pub database: Option<String>,
}
