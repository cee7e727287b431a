//! The one place errors become HTTP responses.
//!
//! Every error answers with the envelope of DESIGN §8:
//! `{"success": false, "error": true, "message_code", "message", "error_id", "request_id",
//! "errors": [{"field", "code", "message"}]?}`. Internal details (SQL, stack) go to the log
//! under the same `error_id`, never to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use capstats_capacity_model::ValidationError;
use capstats_services::ServiceError;
use capstats_store::StoreError;

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field (query parameter or body property).
    pub field: String,
    /// A stable code: `required`, `invalid`, `invalid_choice`, `too_long`, …
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<ValidationError> for FieldError {
    fn from(error: ValidationError) -> Self {
        Self::new(error.field(), error.code(), error.to_string())
    }
}

/// The error envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always false.
    pub success: bool,
    /// Always true.
    pub error: bool,
    /// Machine-readable code: `VALIDATION_ERROR`, `AUTHENTICATION_REQUIRED`,
    /// `INVALID_CREDENTIALS` (wrong user name or password at sign-in), `PERMISSION_REQUIRED`, `CSRF_MISSING`, `CSRF_INVALID`, `RESOURCE_NOT_FOUND`, `METHOD_NOT_ALLOWED`, `CONFLICT`,
    /// `RATE_LIMIT_EXCEEDED`, `DATABASE_QUERY_ERROR`, `TASK_EXECUTION_FAILED`, `INTERNAL_ERROR`,
    /// `SERVICE_UNAVAILABLE`.
    pub message_code: String,
    /// What went wrong, for people.
    pub message: String,
    /// Identifies this error in the server's log.
    pub error_id: String,
    /// The request's `X-Request-ID`.
    pub request_id: String,
    /// Field-level problems of a `VALIDATION_ERROR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// Every error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input is invalid; each bad field is listed.
    #[error("{message}")]
    Validation {
        /// Summary.
        message: String,
        /// The fields.
        errors: Vec<FieldError>,
    },
    /// No valid session or token.
    #[error("authentication required: log in or send a bearer token")]
    AuthenticationRequired,
    /// A login with a wrong username or password.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Authenticated, but not allowed.
    #[error("{0}")]
    PermissionRequired(String),
    /// A cookie-authenticated write without `X-CSRFToken`.
    #[error("the X-CSRFToken header is missing; get a token from GET /api/v1/auth/csrf-token")]
    CsrfMissing,
    /// A cookie-authenticated write with a wrong `X-CSRFToken`.
    #[error("the X-CSRFToken header does not match this session's token")]
    CsrfInvalid,
    /// The thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The path exists, but not with this method.
    #[error("{method} is not allowed here; allowed: {}", allowed.join(", "))]
    MethodNotAllowed {
        /// The method asked for.
        method: String,
        /// What the path accepts, for the `Allow` header.
        allowed: Vec<String>,
    },
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts.
    #[error("too many attempts; try again in {retry_after_seconds} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after_seconds: u64,
    },
    /// Too many exports are running at once (each holds a pooled connection).
    #[error("too many exports are running; try again in {retry_after_seconds} s")]
    ExportsBusy {
        /// Seconds to wait.
        retry_after_seconds: u64,
    },
    /// The database failed.
    #[error("the database query failed")]
    Database(#[source] Cause),
    /// A job could not be enqueued or run.
    #[error("the task could not be carried out")]
    Task(#[source] Cause),
    /// The service cannot answer now (database unreachable, schema outdated).
    #[error("the service is unavailable; try again later")]
    Unavailable(#[source] Cause),
    /// Anything else.
    #[error("an internal error occurred")]
    Internal(#[source] Cause),
}

/// The cause of a server fault: kept whole for the one log line, never shown to the client.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

impl ApiError {
    /// A validation error with a single field.
    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, code, message);
        Self::Validation {
            message: format!("invalid {}: {}", error.field, error.message),
            errors: vec![error],
        }
    }

    /// A validation error from several fields (at least one).
    pub fn fields(errors: Vec<FieldError>) -> Self {
        let message = match errors.as_slice() {
            [only] => format!("invalid {}: {}", only.field, only.message),
            many => format!(
                "invalid input: {}",
                many.iter()
                    .map(|error| error.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Self::Validation { message, errors }
    }

    /// The `message_code` of the envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "VALIDATION_ERROR",
            Self::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
            // The reference's code for a wrong user name or password; its clients tell it apart
            // from a missing sign-in.
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::PermissionRequired(_) => "PERMISSION_REQUIRED",
            Self::CsrfMissing => "CSRF_MISSING",
            Self::CsrfInvalid => "CSRF_INVALID",
            Self::NotFound(_) => "RESOURCE_NOT_FOUND",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::Conflict(_) => "CONFLICT",
            Self::RateLimited { .. } | Self::ExportsBusy { .. } => "RATE_LIMIT_EXCEEDED",
            Self::Database(_) => "DATABASE_QUERY_ERROR",
            Self::Task(_) => "TASK_EXECUTION_FAILED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The envelope response for this error in request `request_id`, logged once under a new
    /// `error_id`: server faults with their full cause at `error` level, refusals at `debug`.
    /// The client sees the code, a generic message and the ids, never the cause.
    pub fn to_response(&self, request_id: &str) -> HttpResponse {
        let error_id = crate::ids::new_id();
        let status = self.status_code();
        match self {
            Self::Database(_) | Self::Internal(_) | Self::Task(_) | Self::Unavailable(_) => {
                tracing::error!(
                    error_id,
                    request_id,
                    status = status.as_u16(),
                    error = %capstats_store::error_chain(self),
                    "request failed"
                );
            }
            _ => {
                tracing::debug!(error_id, request_id, status = status.as_u16(), %self, "request refused")
            }
        }
        let mut builder = HttpResponse::build(status);
        match self {
            Self::RateLimited {
                retry_after_seconds,
            }
            | Self::ExportsBusy {
                retry_after_seconds,
            } => {
                builder.insert_header((
                    actix_web::http::header::RETRY_AFTER,
                    retry_after_seconds.to_string(),
                ));
            }
            Self::MethodNotAllowed { allowed, .. } => {
                builder.insert_header((actix_web::http::header::ALLOW, allowed.join(", ")));
            }
            _ => {}
        }
        builder.json(ErrorEnvelope {
            success: false,
            error: true,
            message_code: self.code().into(),
            message: self.to_string(),
            error_id,
            request_id: request_id.to_owned(),
            errors: match self {
                Self::Validation { errors, .. } => Some(errors.clone()),
                _ => None,
            },
        })
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation { .. } => StatusCode::BAD_REQUEST,
            Self::AuthenticationRequired | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::PermissionRequired(_) | Self::CsrfMissing | Self::CsrfInvalid => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited { .. } | Self::ExportsBusy { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Database(_) | Self::Task(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The request-id middleware renders (and logs) every error with the request's id; this
        // response is replaced there, so it is built without logging, lest each error be
        // logged twice.
        HttpResponse::build(self.status_code()).finish()
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::fields(vec![error.into()])
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(message) => Self::Conflict(message),
            StoreError::Transition(transition) => Self::Conflict(transition.to_string()),
            StoreError::InvalidArgument(message) => {
                Self::fields(vec![FieldError::new("request", "invalid", message)])
            }
            StoreError::Connection(_)
            | StoreError::Pool(_)
            | StoreError::SchemaOutdated { .. }
            | StoreError::Migration(_) => Self::Unavailable(error.into()),
            StoreError::Query(_)
            | StoreError::Task(_)
            | StoreError::ThreadPanicked(_)
            | StoreError::Corrupt(_) => Self::Database(error.into()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Store(store) => store.into(),
            ServiceError::InvalidRequest(message) => {
                Self::fields(vec![FieldError::new("request", "invalid", message)])
            }
            ServiceError::NotFound(what) => Self::NotFound(what),
            ServiceError::Import(problems) => Self::fields(
                problems
                    .problems
                    .iter()
                    .map(|problem| {
                        FieldError::new(
                            format!("line {}", problem.line),
                            "invalid",
                            problem.reason.clone(),
                        )
                    })
                    .collect(),
            ),
            ServiceError::Rejected(rejected) if rejected.problems.is_empty() => Self::Validation {
                errors: vec![FieldError::new(
                    "items",
                    "invalid",
                    rejected.summary.clone(),
                )],
                message: rejected.summary,
            },
            ServiceError::Rejected(rejected) => Self::Validation {
                errors: rejected
                    .problems
                    .iter()
                    .map(|problem| {
                        FieldError::new(
                            format!("items[{}].{}", problem.index, problem.field),
                            problem.code,
                            problem.message.clone(),
                        )
                    })
                    .collect(),
                message: rejected.summary,
            },
            ServiceError::ExportTooLarge { .. } => Self::fields(vec![FieldError::new(
                "format",
                "too_many_rows",
                error.to_string(),
            )]),
            ServiceError::Queue(_)
            | ServiceError::Collector(_)
            | ServiceError::Task(_)
            | ServiceError::Notification(_) => Self::Task(error.into()),
            ServiceError::Output(_) => Self::Internal(error.into()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::Internal(error.into())
    }
}
