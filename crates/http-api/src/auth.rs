//! Who is calling and what they may do: sign-in sessions stored on the server (after
//! `POST /auth/login`) and bearer API tokens with an allowlist of scopes.
//!
//! Handlers declare what they need with an extractor: [`Viewer`] (scope `read`), [`Ingester`]
//! (`ingest`), [`Operator`] (`operate`), [`Admin`] (`admin`) or [`SignedIn`] (a sign-in
//! session, whatever the role: token management and the own password). The checks run in the
//! order DESIGN §8 prescribes: authentication, then CSRF (cookie sessions only: tokens are not
//! sent by browsers on their own), then the scope. A session's scopes follow its user's role; a
//! token's are those it was created with, never more than its user's role allows today.

use std::sync::Arc;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use sha2::{Digest, Sha256};

use capstats_store::accounts::{self, User};

pub use crate::hashing::{hash_password, verify_password};

use crate::error::ApiError;
use crate::state::{AppState, CachedToken};

/// Session key of the sign-in session's random id (its hash is the server-side row's key).
const SESSION_ID: &str = "session_id";
/// Session key of the CSRF token.
const SESSION_CSRF: &str = "csrf_token";
/// The header cookie-authenticated writes send the CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRFToken";
/// Prefix of API tokens, so that leaked ones are recognisable.
pub const TOKEN_PREFIX: &str = "cst_";

/// What a caller may do. Scopes are an allowlist: each route needs exactly one, and `admin`
/// includes the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every `GET` of the API.
    Read,
    /// `POST /capacity/stats` only.
    Ingest,
    /// Runs, schedules, partitions and collect now.
    Operate,
    /// Everything an admin session may do (instances, users, audit), except managing tokens.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Ingest, Scope::Operate, Scope::Admin];

    /// The scope's name in tokens and the OpenAPI description.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Ingest => "ingest",
            Self::Operate => "operate",
            Self::Admin => "admin",
        }
    }

    /// The scope named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    /// The scopes a user of `role` has: admins all, viewers `read`.
    pub fn granted_to_role(role: &str) -> &'static [Scope] {
        match role {
            "admin" => &Self::ALL,
            _ => &[Scope::Read],
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A sign-in session cookie.
    Session {
        /// SHA-256 of the session's id (the key of its row).
        session_hash: String,
    },
    /// A bearer token.
    Token {
        /// The token's id.
        id: i64,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: User,
    /// How they authenticated.
    pub credential: Credential,
    /// What they may do.
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// A caller signed in with a session: the scopes of the user's role.
    fn with_session(user: User, session_hash: String) -> Self {
        Self {
            scopes: Scope::granted_to_role(&user.role).to_vec(),
            user,
            credential: Credential::Session { session_hash },
        }
    }

    /// A caller with a token: its scopes, cut down to what the user's role allows now.
    fn with_token(user: User, id: i64, token_scopes: &[String]) -> Self {
        let granted = Scope::granted_to_role(&user.role);
        let scopes = token_scopes
            .iter()
            .filter_map(|name| Scope::parse(name))
            .filter(|scope| granted.contains(scope))
            .collect();
        Self {
            user,
            credential: Credential::Token { id },
            scopes,
        }
    }

    /// Whether the caller may do what `scope` covers (`admin` covers everything).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// Whether the user is an administrator.
    pub fn is_admin(&self) -> bool {
        self.user.role == "admin"
    }

    /// Whether the caller came with a sign-in session.
    pub fn is_session(&self) -> bool {
        matches!(self.credential, Credential::Session { .. })
    }

    /// The API token of the request, if it came with one.
    pub fn token_id(&self) -> Option<i64> {
        match self.credential {
            Credential::Token { id } => Some(id),
            Credential::Session { .. } => None,
        }
    }

    /// Who asked, as recorded in sessions (`api:<username>`).
    pub fn requested_by(&self) -> String {
        format!("api:{}", self.user.username)
    }

    /// The trigger of a run this caller asks for.
    pub fn trigger(&self) -> capstats_services::payloads::Trigger {
        capstats_services::payloads::Trigger::manual(self.requested_by(), self.token_id())
    }
}

/// SHA-256 of a secret (token or session id), hex-encoded: what is stored.
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

/// A hash to verify against when the user does not exist, so that unknown and known
/// usernames take the same time.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default())
}

/// Runs `work` (an Argon2 hash) on one of the `CAPSTATS_LOGIN_CONCURRENCY` hashing threads
/// (see [`crate::hashing`]); a caller that cannot get one within a few seconds gets `429`.
pub async fn with_hashing_slot<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    state.login_throttle.hashing.run(work).await
}

/// Checks a username and password.
pub async fn check_credentials(
    state: &AppState,
    username: String,
    password: String,
) -> Result<User, ApiError> {
    let user = capstats_store::run_blocking(&state.store, move |connection| {
        accounts::find_user_by_name(connection, &username)
    })
    .await?;
    let hash = user.as_ref().map(|user| user.password_hash.clone());
    // The decoy is made (once) on a hashing thread too, like every hash.
    let matches = with_hashing_slot(state, move || {
        verify_password(&password, hash.as_deref().unwrap_or_else(|| decoy_hash()))
    })
    .await?;
    match user {
        Some(user) if matches && user.is_active => Ok(user),
        _ => Err(ApiError::InvalidCredentials),
    }
}

/// Starts a sign-in session for `user`: a row on the server and its random id in the cookie.
/// Returns the session's CSRF token.
pub async fn start_session(
    state: &AppState,
    session: &Session,
    user: &User,
    client_address: Option<String>,
) -> Result<String, ApiError> {
    session.renew();
    session.clear();
    let id = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let hash = token_hash(&id);
    let expires =
        chrono::Utc::now() + chrono::Duration::hours(i64::from(state.settings.session_ttl_hours));
    let user_id = user.id;
    capstats_store::run_blocking(&state.store, move |connection| {
        accounts::create_session(
            connection,
            user_id,
            &hash,
            expires,
            client_address.as_deref(),
        )
    })
    .await?;
    let csrf = crate::ids::new_id();
    let insert = |key: &str, value: serde_json::Value| {
        session.insert(key, value).map_err(|error| {
            ApiError::Internal(format!("writing the session failed: {error}").into())
        })
    };
    insert(SESSION_ID, id.into())?;
    insert(SESSION_CSRF, csrf.clone().into())?;
    Ok(csrf)
}

/// Ends the caller's sign-in session on the server and removes the cookie.
pub async fn end_session(
    state: &AppState,
    session: &Session,
    caller: &Caller,
) -> Result<(), ApiError> {
    if let Credential::Session { session_hash } = &caller.credential {
        let hash = session_hash.clone();
        capstats_store::run_blocking(&state.store, move |connection| {
            accounts::end_session(connection, &hash, "signed out")
        })
        .await?;
    }
    session.purge();
    Ok(())
}

/// The session's CSRF token, created if the session has none yet.
pub fn csrf_token(session: &Session) -> Result<String, ApiError> {
    if let Ok(Some(token)) = session.get::<String>(SESSION_CSRF) {
        return Ok(token);
    }
    let token = crate::ids::new_id();
    session.insert(SESSION_CSRF, &token).map_err(|error| {
        ApiError::Internal(format!("writing the session failed: {error}").into())
    })?;
    Ok(token)
}

fn app_state(request: &HttpRequest) -> Result<Arc<AppState>, ApiError> {
    request
        .app_data::<web::Data<Arc<AppState>>>()
        .map(|state| state.get_ref().clone())
        .ok_or_else(|| ApiError::Internal("application state missing".into()))
}

/// Resolves the caller of `request`: a bearer token if one is sent, else the session. The
/// caller is also left in the request's extensions, for the audit trail.
pub(crate) async fn authenticate(request: &HttpRequest) -> Result<Caller, ApiError> {
    if let Some(caller) = request.extensions().get::<Caller>() {
        return Ok(caller.clone());
    }
    let state = app_state(request)?;
    let caller = match request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
    {
        Some(header) => {
            let token = header
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or(ApiError::AuthenticationRequired)?;
            authenticate_token(&state, token).await?
        }
        None => authenticate_session(&state, request).await?,
    };
    request.extensions_mut().insert(caller.clone());
    Ok(caller)
}

async fn authenticate_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let hash = token_hash(token);
    if let Some(cached) = state.token_cache.get(&hash) {
        return Ok(Caller::with_token(cached.user, cached.id, &cached.scopes));
    }
    let key = hash.clone();
    let found = capstats_store::run_blocking(&state.store, move |connection| {
        accounts::authenticate_token(connection, &key)
    })
    .await?;
    let (token, user) = found.ok_or(ApiError::AuthenticationRequired)?;
    let scopes: Vec<String> = token.scopes.into_iter().flatten().collect();
    state.token_cache.insert(
        hash,
        CachedToken {
            id: token.id,
            scopes: scopes.clone(),
            user: user.clone(),
        },
    );
    Ok(Caller::with_token(user, token.id, &scopes))
}

async fn authenticate_session(state: &AppState, request: &HttpRequest) -> Result<Caller, ApiError> {
    let session = request.get_session();
    let id = session
        .get::<String>(SESSION_ID)
        .ok()
        .flatten()
        .ok_or(ApiError::AuthenticationRequired)?;
    let hash = token_hash(&id);
    let key = hash.clone();
    let found = capstats_store::run_blocking(&state.store, move |connection| {
        accounts::find_session(connection, &key)
    })
    .await?;
    match found {
        Some((_, user)) => Ok(Caller::with_session(user, hash)),
        None => {
            // Ended, expired or never valid: the cookie is of no further use.
            session.purge();
            Err(ApiError::AuthenticationRequired)
        }
    }
}

/// For a cookie-authenticated caller: the request must carry the session's CSRF token.
fn check_csrf(request: &HttpRequest, caller: &Caller) -> Result<(), ApiError> {
    if !caller.is_session() {
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

/// What a route needs beyond authentication.
#[derive(Debug, Clone, Copy)]
enum Requirement {
    /// A scope; writes with a cookie also need the CSRF token.
    Scope(Scope),
    /// A sign-in session (no token) with its CSRF token.
    SignedIn,
}

/// Checks the caller the [`crate::middleware::authentication`] middleware resolved against
/// `requirement`. Synchronous on purpose: actix polls a handler's extractors in order and stops
/// at the first error, so with the caller extractor first, a refused request is answered
/// before its body is read or parsed.
fn authorize<T>(
    request: &HttpRequest,
    requirement: Requirement,
    wrap: fn(Caller) -> T,
) -> Result<T, ApiError> {
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or(ApiError::AuthenticationRequired)?;
    let is_write = !matches!(
        *request.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    );
    if is_write {
        check_csrf(request, &caller)?;
    }
    match requirement {
        Requirement::Scope(scope) if caller.allows(scope) => Ok(wrap(caller)),
        Requirement::Scope(scope) => Err(ApiError::PermissionRequired(format!(
            "this action needs the `{}` scope, which this {} does not have",
            scope.as_str(),
            if caller.is_session() {
                "user's role"
            } else {
                "token"
            }
        ))),
        Requirement::SignedIn if caller.is_session() => Ok(wrap(caller)),
        Requirement::SignedIn => Err(ApiError::PermissionRequired(
            "this action needs a signed-in session; API tokens cannot manage tokens or passwords"
                .into(),
        )),
    }
}

macro_rules! extractor {
    ($(#[$documentation:meta])* $name:ident, $requirement:expr) => {
        $(#[$documentation])*
        pub struct $name(pub Caller);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = std::future::Ready<Result<Self, ApiError>>;

            fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
                std::future::ready(authorize(request, $requirement, $name))
            }
        }
    };
}

extractor!(
    /// A caller with the `read` scope (every signed-in user).
    Viewer,
    Requirement::Scope(Scope::Read)
);
extractor!(
    /// A caller with the `ingest` scope: posts samples.
    Ingester,
    Requirement::Scope(Scope::Ingest)
);
extractor!(
    /// A caller with the `operate` scope: runs, schedules, partitions, collect now.
    Operator,
    Requirement::Scope(Scope::Operate)
);
extractor!(
    /// A caller with the `admin` scope: instances, users, the audit trail.
    Admin,
    Requirement::Scope(Scope::Admin)
);
extractor!(
    /// A signed-in session (never a token), whatever the role: signing out, managing the own
    /// API tokens and password.
    SignedIn,
    Requirement::SignedIn
);
