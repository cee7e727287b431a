//! Accounts: users with hashed passwords and roles, their sign-in sessions and hashed API
//! tokens. Hashing itself is the API's business; this module stores and finds.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::StoreError;
use crate::schema::{api_tokens, user_sessions, users};

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

/// Replaces a user's password hash and role and reactivates it (a password reset); every
/// sign-in session of the user ends, since whoever knew the old password may hold one.
pub fn update_user(
    connection: &mut PgConnection,
    username: &str,
    password_hash: &str,
    role: &str,
) -> Result<User, StoreError> {
    connection.transaction(|connection| {
        let user = diesel::update(users::table.filter(users::username.eq(username)))
            .set((
                users::password_hash.eq(password_hash),
                users::role.eq(role),
                users::is_active.eq(true),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .returning(User::as_returning())
            .get_result(connection)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("user `{username}`")))?;
        end_user_sessions(connection, user.id, "password reset")?;
        Ok(user)
    })
}

/// Changes to one user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// A new role (`admin` or `viewer`).
    pub role: Option<String>,
    /// Activates or deactivates the user.
    pub is_active: Option<bool>,
    /// A new password hash.
    pub password_hash: Option<String>,
}

/// What [`change_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedUser {
    /// The user after the change.
    pub user: User,
    /// How many sign-in sessions ended because of it.
    pub sessions_ended: usize,
}

/// Applies `changes` to user `id`. A new password, a deactivation or a lower role end every
/// sign-in session of the user in the same transaction, so that no cookie outlives the
/// change.
pub fn change_user(
    connection: &mut PgConnection,
    id: i64,
    changes: &UserChanges,
) -> Result<ChangedUser, StoreError> {
    connection.transaction(|connection| {
        let before =
            find_user(connection, id)?.ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
        let user = diesel::update(users::table.find(id))
            .set((
                users::role.eq(changes.role.as_deref().unwrap_or(&before.role)),
                users::is_active.eq(changes.is_active.unwrap_or(before.is_active)),
                users::password_hash.eq(changes
                    .password_hash
                    .as_deref()
                    .unwrap_or(&before.password_hash)),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .returning(User::as_returning())
            .get_result(connection)?;
        let reason = if changes.password_hash.is_some() {
            Some("password changed")
        } else if before.is_active && !user.is_active {
            Some("user deactivated")
        } else if before.role != user.role {
            Some("role changed")
        } else {
            None
        };
        let sessions_ended = match reason {
            Some(reason) => end_user_sessions(connection, id, reason)?,
            None => 0,
        };
        Ok(ChangedUser {
            user,
            sessions_ended,
        })
    })
}

/// Every user, by name.
pub fn list_users(connection: &mut PgConnection) -> Result<Vec<User>, StoreError> {
    Ok(users::table
        .order(users::username.asc())
        .select(User::as_select())
        .load(connection)?)
}

/// A sign-in session as stored (its id is known only to the browser holding the cookie).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = user_sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UserSession {
    /// Its row id.
    pub id: i64,
    /// The signed-in user.
    pub user_id: i64,
    /// When it stops working unless ended earlier.
    pub expires_at: DateTime<Utc>,
    /// Last request made with it (refreshed at most once a minute).
    pub last_seen_at: DateTime<Utc>,
}

/// Stores a new sign-in session under the SHA-256 of its random id.
pub fn create_session(
    connection: &mut PgConnection,
    user_id: i64,
    session_hash: &str,
    expires_at: DateTime<Utc>,
    client_address: Option<&str>,
) -> Result<UserSession, StoreError> {
    Ok(diesel::insert_into(user_sessions::table)
        .values((
            user_sessions::user_id.eq(user_id),
            user_sessions::session_hash.eq(session_hash),
            user_sessions::expires_at.eq(expires_at),
            user_sessions::client_address.eq(client_address),
        ))
        .returning(UserSession::as_returning())
        .get_result(connection)?)
}

/// How stale `last_seen_at` may get before a request refreshes it: writing it on every request
/// would turn each read into a write.
const LAST_SEEN_RESOLUTION_SECONDS: i64 = 60;

/// The open session with this hash (not ended, not expired) and its active user.
pub fn find_session(
    connection: &mut PgConnection,
    session_hash: &str,
) -> Result<Option<(UserSession, User)>, StoreError> {
    let found: Option<(UserSession, User)> = user_sessions::table
        .inner_join(users::table)
        .filter(user_sessions::session_hash.eq(session_hash))
        .filter(user_sessions::ended_at.is_null())
        .filter(user_sessions::expires_at.gt(diesel::dsl::now))
        .filter(users::is_active.eq(true))
        .select((UserSession::as_select(), User::as_select()))
        .first(connection)
        .optional()?;
    if let Some((session, _)) = &found
        && Utc::now()
            .signed_duration_since(session.last_seen_at)
            .num_seconds()
            >= LAST_SEEN_RESOLUTION_SECONDS
    {
        diesel::update(user_sessions::table.find(session.id))
            .set(user_sessions::last_seen_at.eq(diesel::dsl::now))
            .execute(connection)?;
    }
    Ok(found)
}

/// Ends the session with this hash (logout); ending an ended one changes nothing.
pub fn end_session(
    connection: &mut PgConnection,
    session_hash: &str,
    reason: &str,
) -> Result<(), StoreError> {
    diesel::update(
        user_sessions::table
            .filter(user_sessions::session_hash.eq(session_hash))
            .filter(user_sessions::ended_at.is_null()),
    )
    .set((
        user_sessions::ended_at.eq(diesel::dsl::now),
        user_sessions::end_reason.eq(reason),
    ))
    .execute(connection)?;
    Ok(())
}

/// Ends every open session of a user; returns how many ended.
pub fn end_user_sessions(
    connection: &mut PgConnection,
    user_id: i64,
    reason: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        user_sessions::table
            .filter(user_sessions::user_id.eq(user_id))
            .filter(user_sessions::ended_at.is_null()),
    )
    .set((
        user_sessions::ended_at.eq(diesel::dsl::now),
        user_sessions::end_reason.eq(reason),
    ))
    .execute(connection)?)
}

/// Deletes sessions that ended or expired before `before` (they can never be used again).
pub fn prune_sessions(
    connection: &mut PgConnection,
    before: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        user_sessions::table.filter(
            user_sessions::expires_at
                .lt(before)
                .or(user_sessions::ended_at.lt(before)),
        ),
    )
    .execute(connection)?)
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
    /// What it may do (`read`, `ingest`, `operate`, `admin`), never more than its user's role.
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
