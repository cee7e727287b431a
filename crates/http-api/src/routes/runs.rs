//! Aggregate now, and the run history (sync sessions).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use capstats_capacity_model::PeriodType;
use capstats_services::payloads::LevelScope;
use capstats_store::sessions::{self, SessionFilter};
use capstats_sync_session::{SessionStatus, SyncCategory, SyncType};

use crate::auth::{Operator, Viewer};
use crate::dto::{AggregateNowRequest, RecordItem, RunStarted, SessionDetail, SessionItem};
use crate::envelope::{Envelope, Paginated};
use crate::error::{ApiError, ErrorEnvelope, FieldError};
use crate::params::Parameters;
use crate::state::State;

/// Aggregates the current period (containing today) of `period_type` for every active
/// instance, at the levels of `scope`, on a worker. Answers at once with the session to poll;
/// while an equal request is queued or running, that request's session is returned instead of
/// starting another run.
#[utoipa::path(
    tag = "capacity",
    request_body = AggregateNowRequest,
    responses(
        (status = 202, description = "Queued (or already queued); poll the session in the Location header", body = Envelope<RunStarted>,
         headers(("Location" = String, description = "The session's URL"))),
        (status = 400, description = "Invalid scope or period_type", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an admin, or CSRF token missing or wrong", body = ErrorEnvelope),
        (status = 500, description = "The job could not be enqueued", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[post("/capacity/aggregations/current")]
pub async fn aggregate_now(
    state: State,
    Operator(caller): Operator,
    body: web::Json<AggregateNowRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut problems = Vec::new();
    let scope = match body.scope.as_deref().map(str::trim) {
        None | Some("") | Some("all") => Some(LevelScope::All),
        Some("instance") => Some(LevelScope::Instance),
        Some("database") => Some(LevelScope::Database),
        Some(other) => {
            problems.push(FieldError::new(
                "scope",
                "invalid_choice",
                format!("unknown scope `{other}`; expected instance, database or all"),
            ));
            None
        }
    };
    let period_type = match body.period_type.as_deref() {
        None | Some("") => Some(PeriodType::Daily),
        Some(text) => match text.parse::<PeriodType>() {
            Ok(period_type) => Some(period_type),
            Err(error) => {
                problems.push(error.into());
                None
            }
        },
    };
    let (Some(scope), Some(period_type)) = (scope, period_type) else {
        return Err(ApiError::fields(problems));
    };
    let started = capstats_services::control::aggregate_current(
        &state.store,
        state.queue.as_ref(),
        period_type,
        scope,
        caller.trigger(),
        state.today(),
    )
    .await?;
    let location = started
        .session_id
        .map(|id| format!("/api/v1/sync-sessions/{id}"))
        .unwrap_or_default();
    Ok(HttpResponse::Accepted()
        .insert_header((actix_web::http::header::LOCATION, location))
        .json(Envelope::new(
            if started.existing {
                "an equal run is already queued or running"
            } else {
                "aggregation queued"
            },
            RunStarted {
                session_id: started.session_id,
                job_id: started.job_id,
                existing: started.existing,
            },
        )))
}

/// Filters of the session list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct SessionQuery {
    /// Only these statuses (repeatable): pending, running, completed, failed, cancelled.
    #[param(style = Form, explode)]
    status: Option<Vec<String>>,
    /// aggregation or capacity.
    sync_category: Option<String>,
    /// scheduled_task or manual_task.
    sync_type: Option<String>,
    /// Page, from 1.
    page: Option<i64>,
    /// Items per page, 1–200 (default 20).
    limit: Option<i64>,
}

/// Runs, newest first.
#[utoipa::path(
    tag = "sync-sessions",
    params(SessionQuery),
    responses(
        (status = 200, description = "One page of sessions", body = Envelope<Paginated<SessionItem>>),
        (status = 400, description = "Invalid parameters, each listed in `errors`", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/sync-sessions")]
pub async fn list_sessions(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut parameters = Parameters::of(&request);
    let filter = SessionFilter {
        statuses: parameters.many::<SessionStatus>("status"),
        sync_category: parameters.one::<SyncCategory>("sync_category"),
        sync_type: parameters.one::<SyncType>("sync_type"),
    };
    let page = parameters.page();
    parameters.finish()?;
    let (items, total) = capstats_store::run_blocking(&state.store, move |connection| {
        sessions::list_sessions_page(connection, &filter, page.page, page.limit)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "sync sessions",
        Paginated::new(
            items.into_iter().map(SessionItem::from).collect(),
            total,
            page.page,
            page.limit,
        ),
    )))
}

/// One run with its per-instance records.
#[utoipa::path(
    tag = "sync-sessions",
    params(("id" = i64, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session", body = Envelope<SessionDetail>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No such session", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/sync-sessions/{id}")]
pub async fn get_session(
    state: State,
    _viewer: Viewer,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (session, records) = capstats_store::run_blocking(&state.store, move |connection| {
        Ok::<_, ApiError>((
            sessions::get_session(connection, id)?,
            sessions::session_records(connection, id)?,
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "sync session",
        SessionDetail {
            session: session.into(),
            records: records.into_iter().map(RecordItem::from).collect(),
        },
    )))
}

/// Asks a run to stop: a queued run is cancelled at once, a running one between chunks.
/// Cancelling a finished run changes nothing.
#[utoipa::path(
    tag = "sync-sessions",
    params(("id" = i64, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session after the request", body = Envelope<SessionItem>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an admin, or CSRF token missing or wrong", body = ErrorEnvelope),
        (status = 404, description = "No such session", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[post("/sync-sessions/{id}/actions/cancel")]
pub async fn cancel_session(
    state: State,
    _operator: Operator,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let session = capstats_store::run_blocking(&state.store, move |connection| {
        sessions::request_cancel(connection, id)?;
        sessions::get_session(connection, id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "cancellation requested",
        SessionItem::from(session),
    )))
}
