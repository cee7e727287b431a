//! Aggregate now, and the run history (sync sessions).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use capstats_capacity_model::PeriodType;
use capstats_services::payloads::LevelScope;
use capstats_store::sessions::{self, SessionFilter};
use capstats_sync_session::{SessionStatus, SyncCategory, SyncType};

use crate::auth::{Operator, Viewer};
use crate::dto::{
    AggregateNowRequest, AggregationResult, AggregationStarted, BackfillRequest, LevelOfRun,
    RecordItem, RunSession, RunStarted, SessionDetail, SessionItem,
};
use crate::envelope::{Envelope, Paginated};
use crate::error::{ApiError, ErrorEnvelope, FieldError};
use crate::error_responses::{InvalidParameters, NotAnAdmin, NotSignedIn, TooManyExports};
use crate::export::FormatQuery;
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
        (status = 202, description = "Queued (or already queued); poll the session in the Location header", body = Envelope<AggregationStarted>,
         headers(("Location" = String, description = "The session's URL"))),
        (status = 400, description = "Invalid scope or period_type", body = ErrorEnvelope),
        NotSignedIn,
        NotAnAdmin,
        (status = 500, description = "The job could not be enqueued", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[post("/capacity/aggregations/current")]
pub async fn aggregate_now(
    state: State,
    Operator(caller): Operator,
    body: crate::extract::Json<AggregateNowRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut problems = Vec::new();
    let scope = parse_scope(body.scope.as_deref(), &mut problems);
    let period_type = match body.period_type.as_deref() {
        None => Some(PeriodType::Daily),
        Some(text) => parse_period_type(text, &mut problems),
    };
    let (Some(scope), Some(period_type)) = (scope, period_type) else {
        return Err(ApiError::fields(problems));
    };
    let today = state.today();
    let period = capstats_capacity_model::Period::containing(period_type, today);
    // A current period that starts before the sample retention (a year, with fewer than
    // twelve months kept) would be stored from part of its samples.
    let samples_kept_from =
        capstats_services::maintenance::Retention::of(&state.settings).samples_kept_from(today);
    if let Err(capstats_services::ServiceError::InvalidRequest(message)) =
        capstats_services::backfill::check_retention(&[period], samples_kept_from)
    {
        return Err(ApiError::field("period_type", "before_retention", message));
    }
    let started = capstats_services::control::aggregate_current(
        &state.store,
        state.queue.as_ref(),
        period_type,
        scope,
        caller.trigger(),
        today,
    )
    .await?;
    let session_id = started
        .session_id
        .ok_or_else(|| ApiError::Internal("aggregate now queued no session".into()))?;
    let session = capstats_store::run_blocking(&state.store, move |connection| {
        sessions::get_session(connection, session_id)
    })
    .await?;
    let level = |included: bool| LevelOfRun {
        included,
        instances: session.total_instances,
    };
    let message = queued_message(started.existing, "aggregation queued");
    let result = AggregationResult {
        status: session.status.as_str().to_owned(),
        message: message.to_owned(),
        period_type: period_type.as_str().to_owned(),
        period_start: period.start(),
        period_end: period.end(),
        // Checked by parse_scope above.
        scope: body.scope.unwrap_or_else(|| "all".into()),
        requested_period_type: period_type.as_str().to_owned(),
        effective_period_type: period_type.as_str().to_owned(),
        database_summary: level(scope != LevelScope::Instance),
        instance_summary: level(scope != LevelScope::Database),
        session: RunSession {
            id: session.id,
            status: session.status.as_str().to_owned(),
        },
    };
    Ok(accepted_with(
        started.session_id,
        Envelope::new(
            message,
            AggregationStarted {
                run: RunStarted::from(started),
                result,
            },
        ),
    ))
}

/// Queues a backfill: every `period_type` period starting between `from` and `to` at the
/// `scope` levels, computed by a worker in batches for every active instance. Answers at once
/// with the session to poll (its progress grows batch by batch; cancelling it stops the run
/// between batches); while an equal backfill is queued or running, its session is returned.
#[utoipa::path(
    tag = "capacity",
    request_body = BackfillRequest,
    responses(
        (status = 202, description = "Queued (or already queued); poll the session in the Location header", body = Envelope<RunStarted>,
         headers(("Location" = String, description = "The session's URL"))),
        (status = 400, description = "Invalid or missing fields, each named in `errors`", body = ErrorEnvelope),
        NotSignedIn,
        NotAnAdmin,
        (status = 500, description = "The job could not be enqueued", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[post("/capacity/aggregations/backfill")]
pub async fn backfill(
    state: State,
    Operator(caller): Operator,
    body: crate::extract::Json<BackfillRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut problems = Vec::new();
    let scope = parse_scope(body.scope.as_deref(), &mut problems);
    let period_type = match body.period_type.as_deref() {
        None => {
            problems.push(FieldError::new(
                "period_type",
                "required",
                "give the period type: daily, weekly, monthly, quarterly or yearly",
            ));
            None
        }
        Some(text) => parse_period_type(text, &mut problems),
    };
    let mut date = |field: &'static str, value: Option<&str>| match value {
        None => {
            problems.push(FieldError::new(
                field,
                "required",
                format!("give {field} as YYYY-MM-DD"),
            ));
            None
        }
        Some(text) => match text.parse::<chrono::NaiveDate>() {
            Ok(date) => match capstats_capacity_model::validate_supported_date(date) {
                Ok(date) => Some(date),
                Err(error) => {
                    problems.push(FieldError::new(
                        field,
                        "date_out_of_range",
                        error.to_string(),
                    ));
                    None
                }
            },
            Err(_) => {
                problems.push(FieldError::new(
                    field,
                    "invalid_date",
                    format!("`{text}` is not a date (YYYY-MM-DD)"),
                ));
                None
            }
        },
    };
    let from = date("from", body.from.as_deref());
    let to = date("to", body.to.as_deref());
    let (Some(scope), Some(period_type), Some(from), Some(to)) = (scope, period_type, from, to)
    else {
        return Err(ApiError::fields(problems));
    };
    let periods = match capstats_services::backfill::check_range(period_type, from, to) {
        Ok(periods) => periods,
        Err(capstats_services::ServiceError::InvalidRequest(message)) => {
            return Err(ApiError::field("to", "invalid_range", message));
        }
        Err(other) => return Err(other.into()),
    };
    let samples_kept_from = capstats_services::maintenance::Retention::of(&state.settings)
        .samples_kept_from(state.today());
    if let Err(capstats_services::ServiceError::InvalidRequest(message)) =
        capstats_services::backfill::check_retention(&periods, samples_kept_from)
    {
        return Err(ApiError::field("from", "before_retention", message));
    }
    let started = capstats_services::control::queue_backfill(
        &state.store,
        state.queue.as_ref(),
        capstats_services::control::BackfillOrder {
            period_type,
            from,
            to,
            scope,
        },
        caller.trigger(),
        samples_kept_from,
    )
    .await?;
    Ok(accepted(started, "backfill queued"))
}

/// The `scope` of a manual run (`all` when absent), or its problem.
fn parse_scope(text: Option<&str>, problems: &mut Vec<FieldError>) -> Option<LevelScope> {
    match text {
        None | Some("all") => Some(LevelScope::All),
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
    }
}

/// A period type, or its problem.
fn parse_period_type(text: &str, problems: &mut Vec<FieldError>) -> Option<PeriodType> {
    match text.parse::<PeriodType>() {
        Ok(period_type) => Some(period_type),
        Err(error) => {
            problems.push(error.into());
            None
        }
    }
}

/// The 202 of a queued run: the session to poll in `Location` and the body.
fn accepted(started: capstats_services::control::Enqueued, queued: &str) -> HttpResponse {
    let message = queued_message(started.existing, queued);
    accepted_with(
        started.session_id,
        Envelope::new(message, RunStarted::from(started)),
    )
}

/// What a request that queues a run says: `queued`, or that it found an equal run.
fn queued_message(existing: bool, queued: &str) -> &str {
    if existing {
        "an equal run is already queued or running"
    } else {
        queued
    }
}

/// `202 Accepted` with `body`, pointing at the session `session_id` to poll.
fn accepted_with(session_id: Option<i64>, body: impl serde::Serialize) -> HttpResponse {
    let location = session_id
        .map(|id| format!("/api/v1/sync-sessions/{id}"))
        .unwrap_or_default();
    HttpResponse::Accepted()
        .insert_header((actix_web::http::header::LOCATION, location))
        .json(body)
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
    #[param(style = Form, explode, value_type = Option<Vec<capstats_sync_session::SessionStatus>>)]
    status: Option<Vec<String>>,
    /// aggregation or capacity.
    #[param(value_type = Option<capstats_sync_session::SyncCategory>)]
    sync_category: Option<String>,
    /// scheduled_task or manual_task.
    #[param(value_type = Option<capstats_sync_session::SyncType>)]
    sync_type: Option<String>,
    /// Page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    page: Option<i64>,
    /// Items per page, 1–200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Runs, newest first.
#[utoipa::path(
    tag = "sync-sessions",
    params(SessionQuery, FormatQuery),
    responses(
        (status = 200, description = "One page of sessions, or every session of the filter as CSV", content(
            (Envelope<Paginated<SessionItem>> = "application/json"),
            (String = "text/csv"),
        )),
        InvalidParameters,
        NotSignedIn,
        TooManyExports,
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
    let csv = crate::export::wants_csv(&mut parameters, &request);
    if csv {
        crate::export::refuse_with_csv(&mut parameters, &["limit"]);
        parameters.finish()?;
        let name = capstats_services::export::sessions_file_name(state.today());
        let maximum_rows = state.settings.export_maximum_rows;
        return crate::export::streamed(&state, name, move |connection, output| {
            capstats_services::export::sessions(connection, &filter, maximum_rows, output)
        })
        .await;
    }
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
    params(("id" = i64, Path, description = "The session's id"), FormatQuery),
    responses(
        (status = 200, description = "The session, or its per-instance records as CSV", content(
            (Envelope<SessionDetail> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "An invalid format", body = ErrorEnvelope),
        NotSignedIn,
        (status = 404, description = "No such session", body = ErrorEnvelope),
        TooManyExports,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/sync-sessions/{id}")]
pub async fn get_session(
    state: State,
    _viewer: Viewer,
    path: web::Path<i64>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let mut parameters = Parameters::of(&request);
    let csv = crate::export::wants_csv(&mut parameters, &request);
    parameters.finish()?;
    if csv {
        let name = capstats_services::export::session_records_file_name(id);
        return crate::export::streamed(&state, name, move |connection, output| {
            capstats_services::export::session_records(connection, id, output)
        })
        .await;
    }
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
        NotSignedIn,
        NotAnAdmin,
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
