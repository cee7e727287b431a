//! Accounts: users with hashed passwords and roles, and hashed API tokens. Hashing itself is
//! the API's business; this module stores and finds.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::StoreError;
use crate::schema::{api_tokens, users};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct User {
    /// Its id.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// PHC string of the password hash.
    #[serde(skip)]
    pub password_hash: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// Inactive users cannot log in.
    pub is_active: bool,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Creates a user; a taken username is a conflict.
pub fn create_user(
    connection: &mut PgConnection,
    username: &str,
    password_hash: &str,
    role: &str,
) -> Result<User, StoreError> {
    let created = diesel::insert_into(users::table)
        .values((
            users::username.eq(username),
            users::password_hash.eq(password_hash),
            users::role.eq(role),
        ))
        .returning(User::as_returning())
        .get_result(connection)
        .map_err(StoreError::from);
    match created {
        Err(error) if error.is_unique_violation() => Err(StoreError::Conflict(format!(
            "a user named `{username}` already exists"
        ))),
        other => other,
    }
}

/// Replaces a user's password hash and role (used to reset a demo account).
pub fn update_user(
    connection: &mut PgConnection,
    username: &str,
    password_hash: &str,
    role: &str,
) -> Result<User, StoreError> {
    diesel::update(users::table.filter(users::username.eq(username)))
        .set((
            users::password_hash.eq(password_hash),
            users::role.eq(role),
            users::is_active.eq(true),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .returning(User::as_returning())
        .get_result(connection)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("user `{username}`")))
}

/// The user named `username`.
pub fn find_user_by_name(
    connection: &mut PgConnection,
    username: &str,
) -> Result<Option<User>, StoreError> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(connection)
        .optional()?)
}

/// The user with `id`.
pub fn find_user(connection: &mut PgConnection, id: i64) -> Result<Option<User>, StoreError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(connection)
        .optional()?)
}

/// Records a successful login.
pub fn record_login(connection: &mut PgConnection, id: i64) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(diesel::dsl::now))
        .execute(connection)?;
    Ok(())
}

/// An API token as stored (never the token itself, only its hash).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = api_tokens)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ApiToken {
    /// Its id.
    pub id: i64,
    /// The user it acts as.
    pub user_id: i64,
    /// A label.
    pub name: String,
    /// SHA-256 of the token.
    #[serde(skip)]
    pub token_hash: String,
    /// The first characters of the token, to recognise it.
    pub token_prefix: String,
    /// What it may do beyond its user's role (`ingest`).
    pub scopes: Vec<Option<String>>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A new token's stored parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// The user it acts as.
    pub user_id: i64,
    /// A label.
    pub name: String,
    /// SHA-256 of the token.
    pub token_hash: String,
    /// The first characters of the token.
    pub token_prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Stores a token.
pub fn create_token(
    connection: &mut PgConnection,
    new: &NewApiToken,
) -> Result<ApiToken, StoreError> {
    Ok(diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(new.user_id),
            api_tokens::name.eq(&new.name),
            api_tokens::token_hash.eq(&new.token_hash),
            api_tokens::token_prefix.eq(&new.token_prefix),
            api_tokens::scopes.eq(&new.scopes),
            api_tokens::expires_at.eq(new.expires_at),
        ))
        .returning(ApiToken::as_returning())
        .get_result(connection)?)
}

/// How stale `last_used_at` may get before a request refreshes it. Writing it on every request
/// would turn each authenticated read into a write (and a WAL flush); a minute is precise enough
/// for "when was this token last used".
const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

/// The usable token with this hash (not revoked, not expired) and its active user, marking it
/// used (at most once per [`LAST_USED_RESOLUTION_SECONDS`]).
pub fn authenticate_token(
    connection: &mut PgConnection,
    token_hash: &str,
) -> Result<Option<(ApiToken, User)>, StoreError> {
    let found: Option<(ApiToken, User)> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(token_hash))
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(diesel::dsl::now)),
        )
        .filter(users::is_active.eq(true))
        .select((ApiToken::as_select(), User::as_select()))
        .first(connection)
        .optional()?;
    if let Some((token, _)) = &found {
        let fresh_enough = token.last_used_at.is_some_and(|used| {
            Utc::now().signed_duration_since(used).num_seconds() < LAST_USED_RESOLUTION_SECONDS
        });
        if !fresh_enough {
            diesel::update(api_tokens::table.find(token.id))
                .set(api_tokens::last_used_at.eq(diesel::dsl::now))
                .execute(connection)?;
        }
    }
    Ok(found)
}

/// The tokens of a user, newest first.
pub fn list_tokens(
    connection: &mut PgConnection,
    user_id: i64,
) -> Result<Vec<ApiToken>, StoreError> {
    Ok(api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .order(api_tokens::id.desc())
        .select(ApiToken::as_select())
        .load(connection)?)
}

/// Revokes a token of a user.
pub fn revoke_token(
    connection: &mut PgConnection,
    user_id: i64,
    id: i64,
) -> Result<(), StoreError> {
    let updated = diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::user_id.eq(user_id)),
    )
    .set(api_tokens::revoked_at.eq(diesel::dsl::now))
    .execute(connection)?;
    if updated == 0 {
        return Err(StoreError::NotFound(format!("token {id}")));
    }
    Ok(())
}
