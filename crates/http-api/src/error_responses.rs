//! The error answers many endpoints share, each declared once for their OpenAPI descriptions
//! (`responses(…)` of `#[utoipa::path]` lists these beside its own tuples).

use utoipa::IntoResponses;

use crate::error::ErrorEnvelope;

/// 400: a read's query parameters, each problem listed in `errors`.
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "Invalid parameters, each listed in `errors`"
)]
pub struct InvalidParameters(pub ErrorEnvelope);

/// 401: every endpoint behind a sign-in or a token.
#[derive(IntoResponses)]
#[response(status = 401, description = "Not signed in")]
pub struct NotSignedIn(pub ErrorEnvelope);

/// 403: an admin's write without the role, or a session's without its CSRF token.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "Not an admin, or CSRF token missing or wrong"
)]
pub struct NotAnAdmin(pub ErrorEnvelope);

/// 404: a read naming an instance that does not exist.
#[derive(IntoResponses)]
#[response(status = 404, description = "An instance_id does not exist")]
pub struct UnknownInstance(pub ErrorEnvelope);

/// 429: a CSV export while too many run.
#[derive(IntoResponses)]
#[response(
    status = 429,
    description = "Too many exports running; retry after Retry-After seconds"
)]
pub struct TooManyExports(pub ErrorEnvelope);
