//! Schedules: list, detail, edit the cron expression, pause, resume, run now, reload.

use actix_web::{HttpResponse, get, post, put, web};

use crate::auth::{Operator, Viewer};
use crate::dto::{ReloadedSchedules, RunStarted, ScheduleItem, ScheduleUpdate};
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorEnvelope, FieldError};
use crate::error_responses::{NotAnAdmin, NotSignedIn};
use crate::state::State;

// Only describes the path parameter in the spec: the handler matches the segment itself, so
// that any other action answers 404 in the error envelope.
/// A schedule action: `pause`, `resume` or `run` (now).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[expect(
    dead_code,
    reason = "documents the path parameter for the OpenAPI description"
)]
enum ScheduleAction {
    Pause,
    Resume,
    Run,
}

async fn view(state: &State, name: &str) -> Result<ScheduleItem, ApiError> {
    capstats_services::control::list_schedules(&state.store, state.settings.time_zone())
        .await?
        .into_iter()
        .find(|view| view.schedule.name == name)
        .map(ScheduleItem::from)
        .ok_or_else(|| ApiError::NotFound(format!("schedule `{name}`")))
}

/// Every schedule with its next and last run.
#[utoipa::path(
    tag = "scheduler",
    responses(
        (status = 200, description = "The schedules", body = Envelope<Vec<ScheduleItem>>),
        NotSignedIn,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/scheduler/jobs")]
pub async fn list_schedules(state: State, _viewer: Viewer) -> Result<HttpResponse, ApiError> {
    let views =
        capstats_services::control::list_schedules(&state.store, state.settings.time_zone())
            .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "schedules",
        views
            .into_iter()
            .map(ScheduleItem::from)
            .collect::<Vec<_>>(),
    )))
}

/// One schedule.
#[utoipa::path(
    tag = "scheduler",
    params(("id" = String, Path, description = "The schedule's name")),
    responses(
        (status = 200, description = "The schedule", body = Envelope<ScheduleItem>),
        NotSignedIn,
        (status = 404, description = "No such schedule", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/scheduler/jobs/{id}")]
pub async fn get_schedule(
    state: State,
    _viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(Envelope::new("schedule", view(&state, &path).await?)))
}

/// Changes a schedule's cron expression, time zone, misfire policy or catch-up limit (each
/// validated; unknown fields are refused); schedulers pick the change up within a second. A
/// new expression or zone counts ticks from now on.
#[utoipa::path(
    tag = "scheduler",
    params(("id" = String, Path, description = "The schedule's name")),
    request_body = ScheduleUpdate,
    responses(
        (status = 200, description = "The updated schedule", body = Envelope<ScheduleItem>),
        (status = 400, description = "A setting is invalid (each named in `errors`), nothing to change, or an unknown field", body = ErrorEnvelope),
        NotSignedIn,
        NotAnAdmin,
        (status = 404, description = "No such schedule", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[put("/scheduler/jobs/{id}")]
pub async fn update_schedule(
    state: State,
    _operator: Operator,
    path: web::Path<String>,
    body: crate::extract::Json<ScheduleUpdate>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let update = body.into_inner();
    let mut problems = Vec::new();
    if let Some(trigger) = &update.trigger_type
        && trigger != "cron"
    {
        problems.push(FieldError::new(
            "trigger_type",
            "invalid",
            format!(
                "`{trigger}`: capstats schedules are cron schedules; send `cron` or leave it out"
            ),
        ));
    }
    let edit = capstats_services::control::ScheduleEdit::from(update);
    if let Err(invalid) = edit.validate() {
        problems.extend(
            invalid
                .into_iter()
                .map(|problem| FieldError::new(problem.field, "invalid", problem.message)),
        );
    }
    if !problems.is_empty() {
        return Err(ApiError::fields(problems));
    }
    capstats_services::control::update_schedule(&state.store, &name, &edit).await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "schedule updated",
        view(&state, &name).await?,
    )))
}

/// Pauses, resumes or runs a schedule now. `run` enqueues the schedule's job without the skip
/// rule and returns its session.
#[utoipa::path(
    tag = "scheduler",
    params(
        ("id" = String, Path, description = "The schedule's name"),
        ("action" = inline(ScheduleAction), Path, description = "pause, resume or run"),
    ),
    responses(
        (status = 200, description = "Paused or resumed", body = Envelope<ScheduleItem>),
        (status = 202, description = "Run enqueued", body = Envelope<RunStarted>),
        NotSignedIn,
        NotAnAdmin,
        (status = 404, description = "No such schedule or action", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[post("/scheduler/jobs/{id}/actions/{action}")]
pub async fn schedule_action(
    state: State,
    Operator(caller): Operator,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, action) = path.into_inner();
    match action.as_str() {
        "pause" | "resume" => {
            capstats_services::control::set_paused(&state.store, &name, action == "pause").await?;
            let message = if action == "pause" {
                "schedule paused"
            } else {
                "schedule resumed"
            };
            Ok(HttpResponse::Ok().json(Envelope::new(message, view(&state, &name).await?)))
        }
        "run" => {
            let started = capstats_services::control::run_schedule_now(
                &state.store,
                state.queue.as_ref(),
                &name,
                caller.trigger(),
                state.today(),
            )
            .await?;
            let mut response = HttpResponse::Accepted();
            if let Some(id) = started.session_id {
                response.insert_header((
                    actix_web::http::header::LOCATION,
                    format!("/api/v1/sync-sessions/{id}"),
                ));
            }
            Ok(response.json(Envelope::new(
                "schedule enqueued",
                RunStarted::from(started),
            )))
        }
        other => Err(ApiError::NotFound(format!(
            "action `{other}` (expected pause, resume or run)"
        ))),
    }
}

/// Reloads the schedules: the reference's action, kept for its clients. capstats' schedulers
/// read the schedules from the database every second, so nothing is reloaded by hand and
/// nothing is deleted; the answer lists the schedules in force.
#[utoipa::path(
    tag = "scheduler",
    responses(
        (status = 200, description = "The schedules in force", body = Envelope<ReloadedSchedules>),
        NotSignedIn,
        NotAnAdmin,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[post("/scheduler/jobs/actions/reload")]
pub async fn reload_schedules(state: State, _operator: Operator) -> Result<HttpResponse, ApiError> {
    let reloaded: Vec<String> =
        capstats_services::control::list_schedules(&state.store, state.settings.time_zone())
            .await?
            .into_iter()
            .map(|view| view.schedule.name)
            .collect();
    Ok(HttpResponse::Ok().json(Envelope::new(
        "schedules are read from the database every second; nothing to reload",
        ReloadedSchedules {
            reloaded_count: reloaded.len(),
            reloaded,
            deleted: Vec::new(),
            deleted_count: 0,
        },
    )))
}
