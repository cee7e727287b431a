//! Who is calling: cookie sessions (after `POST /auth/login`) and bearer API tokens.
//!
//! Handlers declare what they need with an extractor: [`Viewer`] (any signed-in user) or
//! [`Admin`] (writes). The checks run in the order DESIGN §8 prescribes: authentication, then
//! CSRF (cookie sessions only: tokens are not sent by browsers on their own), then the role.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};

use store::accounts::{self, User};

use crate::error::ApiError;
use crate::state::AppState;

/// Session key of the signed-in user's id.
const SESSION_USER: &str = "user_id";
/// Session key of the session's end (unix seconds): cookie sessions carry no server-side
/// expiry, so the server checks its own.
const SESSION_EXPIRES: &str = "expires_at";
/// Session key of the CSRF token.
const SESSION_CSRF: &str = "csrf_token";
/// The header cookie-authenticated writes send the CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRFToken";
/// Prefix of API tokens, so that leaked ones are recognisable.
pub const TOKEN_PREFIX: &str = "cst_";
/// The API token scope that allows posting samples.
pub const INGEST_SCOPE: &str = "ingest";

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A session cookie.
    Session,
    /// A bearer token with these scopes.
    Token {
        /// The token's scopes.
        scopes: Vec<String>,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: User,
    /// How they authenticated.
    pub credential: Credential,
}

impl Caller {
    /// Whether the user is an administrator.
    pub fn is_admin(&self) -> bool {
        self.user.role == "admin"
    }

    /// Who asked, as recorded in sessions (`api:<username>`).
    pub fn requested_by(&self) -> String {
        format!("api:{}", self.user.username)
    }
}

/// SHA-256 of a token, hex-encoded: what is stored.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A new random token.
pub fn new_token() -> String {
    format!(
        "{TOKEN_PREFIX}{:032x}{:016x}",
        rand::random::<u128>(),
        rand::random::<u64>()
    )
}

/// Hashes a password (Argon2id with a random salt) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| ApiError::Internal(format!("hashing a password failed: {error}")))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that unknown and known
/// usernames take the same time.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default())
}

/// Checks a username and password (on the blocking pool: Argon2 is deliberately slow).
pub async fn check_credentials(
    state: &AppState,
    username: String,
    password: String,
) -> Result<User, ApiError> {
    let user = store::run_blocking(&state.store, move |connection| {
        accounts::find_user_by_name(connection, &username)
    })
    .await?;
    let hash = user.as_ref().map_or_else(
        || decoy_hash().to_owned(),
        |user| user.password_hash.clone(),
    );
    let matches = web::block(move || verify_password(&password, &hash)).await?;
    match user {
        Some(user) if matches && user.is_active => Ok(user),
        _ => Err(ApiError::InvalidCredentials),
    }
}

/// Starts a signed-in session for `user` and returns its CSRF token.
pub fn start_session(session: &Session, user: &User, ttl_hours: u32) -> Result<String, ApiError> {
    session.renew();
    let expires = chrono::Utc::now() + chrono::Duration::hours(i64::from(ttl_hours));
    let csrf = crate::ids::new_id();
    let insert = |key: &str, value: serde_json::Value| {
        session
            .insert(key, value)
            .map_err(|error| ApiError::Internal(format!("writing the session failed: {error}")))
    };
    insert(SESSION_USER, user.id.into())?;
    insert(SESSION_EXPIRES, expires.timestamp().into())?;
    insert(SESSION_CSRF, csrf.clone().into())?;
    Ok(csrf)
}

/// The session's CSRF token, created if the session has none yet.
pub fn csrf_token(session: &Session) -> Result<String, ApiError> {
    if let Ok(Some(token)) = session.get::<String>(SESSION_CSRF) {
        return Ok(token);
    }
    let token = crate::ids::new_id();
    session
        .insert(SESSION_CSRF, &token)
        .map_err(|error| ApiError::Internal(format!("writing the session failed: {error}")))?;
    Ok(token)
}

/// Resolves the caller of `request`: a bearer token if one is sent, else the session.
pub(crate) async fn authenticate(request: &HttpRequest) -> Result<Caller, ApiError> {
    let state = request
        .app_data::<web::Data<Arc<AppState>>>()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))?
        .clone();
    if let Some(header) = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
    {
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::AuthenticationRequired)?;
        let hash = token_hash(token);
        if let Some((scopes, user)) = state.token_cache.get(&hash) {
            return Ok(Caller {
                user,
                credential: Credential::Token { scopes },
            });
        }
        let key = hash.clone();
        let found = store::run_blocking(&state.store, move |connection| {
            accounts::authenticate_token(connection, &key)
        })
        .await?;
        let (token, user) = found.ok_or(ApiError::AuthenticationRequired)?;
        let scopes: Vec<String> = token.scopes.into_iter().flatten().collect();
        state
            .token_cache
            .insert(hash, (scopes.clone(), user.clone()));
        return Ok(Caller {
            user,
            credential: Credential::Token { scopes },
        });
    }
    let session = request.get_session();
    let user_id = session
        .get::<i64>(SESSION_USER)
        .ok()
        .flatten()
        .ok_or(ApiError::AuthenticationRequired)?;
    let expires = session
        .get::<i64>(SESSION_EXPIRES)
        .ok()
        .flatten()
        .unwrap_or(0);
    if expires < chrono::Utc::now().timestamp() {
        session.purge();
        return Err(ApiError::AuthenticationRequired);
    }
    let user = store::run_blocking(&state.store, move |connection| {
        accounts::find_user(connection, user_id)
    })
    .await?
    .filter(|user| user.is_active)
    .ok_or(ApiError::AuthenticationRequired)?;
    Ok(Caller {
        user,
        credential: Credential::Session,
    })
}

/// For a cookie-authenticated caller: the request must carry the session's CSRF token.
fn check_csrf(request: &HttpRequest, caller: &Caller) -> Result<(), ApiError> {
    if caller.credential != Credential::Session {
        return Ok(());
    }
    let sent = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .ok_or(ApiError::CsrfMissing)?;
    let expected = request
        .get_session()
        .get::<String>(SESSION_CSRF)
        .ok()
        .flatten()
        .ok_or(ApiError::CsrfInvalid)?;
    // Compare without an early exit, so timing does not reveal a matching prefix.
    let same = sent.len() == expected.len()
        && sent
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::CsrfInvalid)
    }
}

/// Any signed-in user (reads).
pub struct Viewer(pub Caller);

/// A signed-in administrator whose request passed the CSRF check (writes).
pub struct Admin(pub Caller);

/// A signed-in user whose request passed the CSRF check, whatever the role (own account
/// actions such as logging out).
pub struct Member(pub Caller);

type ExtractFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl FromRequest for Viewer {
    type Error = ApiError;
    type Future = ExtractFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move { authenticate(&request).await.map(Viewer) })
    }
}

/// Authenticates the request, checks its CSRF token (cookie sessions), then asks `allowed`
/// whether the caller may go on: the order every write extractor follows, so that a request
/// learns `401` before `403`.
fn authorize_write<T: 'static>(
    request: &HttpRequest,
    allowed: fn(&Caller) -> Result<(), ApiError>,
    wrap: fn(Caller) -> T,
) -> ExtractFuture<T> {
    let request = request.clone();
    Box::pin(async move {
        let caller = authenticate(&request).await?;
        check_csrf(&request, &caller)?;
        allowed(&caller)?;
        Ok(wrap(caller))
    })
}

impl FromRequest for Member {
    type Error = ApiError;
    type Future = ExtractFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        authorize_write(request, |_| Ok(()), Member)
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = ExtractFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        authorize_write(
            request,
            |caller| {
                if caller.is_admin() {
                    Ok(())
                } else {
                    Err(ApiError::PermissionRequired(
                        "this action needs the admin role".into(),
                    ))
                }
            },
            Admin,
        )
    }
}

/// A caller allowed to post samples: an admin signed in with a session (CSRF checked), or a
/// bearer token with the `ingest` scope.
pub struct Ingester(pub Caller);

impl FromRequest for Ingester {
    type Error = ApiError;
    type Future = ExtractFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        authorize_write(
            request,
            |caller| {
                let allowed = match &caller.credential {
                    Credential::Session => caller.is_admin(),
                    Credential::Token { scopes } => {
                        scopes.iter().any(|scope| scope == INGEST_SCOPE)
                    }
                };
                if allowed {
                    Ok(())
                } else {
                    Err(ApiError::PermissionRequired(format!(
                        "posting samples needs an admin session or an API token with the `{INGEST_SCOPE}` scope"
                    )))
                }
            },
            Ingester,
        )
    }
}
