//! The error answers many endpoints share, declared once for their OpenAPI descriptions
//! (`responses(…)` of `#[utoipa::path]` takes these beside its own tuples).

use utoipa::IntoResponses;

use crate::error::ErrorEnvelope;

/// 401: every endpoint behind a sign-in or a token.
#[derive(IntoResponses)]
#[response(status = 401, description = "Not signed in")]
pub struct NotSignedIn(pub ErrorEnvelope);

/// 401 and 403: an admin's write with a session (CSRF token) or an `admin` token.
#[derive(IntoResponses)]
pub enum AdminWriteRefused {
    /// No session or token.
    #[response(status = 401, description = "Not signed in")]
    NotSignedIn(ErrorEnvelope),
    /// Not allowed.
    #[response(
        status = 403,
        description = "Not an admin, or CSRF token missing or wrong"
    )]
    Forbidden(ErrorEnvelope),
}

/// 400, 401, 404 and 429: a capacity read of instances' data, which may stream a CSV file.
#[derive(IntoResponses)]
pub enum InstanceReadRefused {
    /// Bad parameters.
    #[response(
        status = 400,
        description = "Invalid parameters, each listed in `errors`"
    )]
    Invalid(ErrorEnvelope),
    /// No session or token.
    #[response(status = 401, description = "Not signed in")]
    NotSignedIn(ErrorEnvelope),
    /// A named instance is unknown.
    #[response(status = 404, description = "An instance_id does not exist")]
    UnknownInstance(ErrorEnvelope),
    /// Too many exports at once.
    #[response(
        status = 429,
        description = "Too many exports running; retry after Retry-After seconds"
    )]
    TooManyExports(ErrorEnvelope),
}
