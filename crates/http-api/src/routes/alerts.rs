//! Alert rules (administrators) and the events their evaluations open and resolve.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};

use capstats_capacity_model::{AlertRuleInput, AlertRuleSpec, InstanceId, Severity};
use capstats_collectors::credentials::CredentialKey;
use capstats_services::alerts;
use capstats_store::alerts::EventFilter;

use crate::auth::{Admin, Viewer};
use crate::dto::{AlertEventItem, AlertRuleItem};
use crate::envelope::{Envelope, Paginated};
use crate::error::{ApiError, ErrorEnvelope, FieldError};
use crate::error_responses::{NotAnAdmin, NotSignedIn};
use crate::params::Parameters;
use crate::state::State;

/// Bytes a rule body may have: ten channels of the longest URLs and secrets fit.
const RULE_BODY_LIMIT: usize = 64 * 1024;

/// The checked rule of a body and the key its channels are sealed with.
fn read_rule(
    body: AlertRuleInput,
    key: Option<&CredentialKey>,
) -> Result<(AlertRuleSpec, CredentialKey), ApiError> {
    let spec = body.into_spec().map_err(|problems| {
        ApiError::fields(
            problems
                .into_iter()
                .map(|problem| FieldError::new(problem.field, problem.code, problem.message))
                .collect(),
        )
    })?;
    let key = key.cloned().ok_or_else(|| {
        ApiError::fields(vec![FieldError::new(
            "channels",
            "unavailable",
            "cannot store channels: the server has no CAPSTATS_CREDENTIAL_KEY to seal their URLs and secrets",
        )])
    })?;
    Ok((spec, key))
}

/// Every alert rule, by id. Channels show a mail address in full and a URL as its scheme and
/// host only; secrets never.
#[utoipa::path(
    tag = "alerts",
    responses(
        (status = 200, description = "The rules", body = Envelope<Vec<AlertRuleItem>>),
        NotSignedIn,
        (status = 403, description = "Needs the `admin` scope", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[get("/alerts/rules")]
pub async fn list_rules(state: State, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let rules =
        capstats_store::run_blocking(&state.store, capstats_store::alerts::list_rules).await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "alert rules",
        rules
            .into_iter()
            .map(AlertRuleItem::from)
            .collect::<Vec<_>>(),
    )))
}

/// Adds an alert rule. It is evaluated after the next aggregation run or stale refresh.
/// Channel URLs and secrets are sealed with `CAPSTATS_CREDENTIAL_KEY` (bound to their
/// channel) and never shown again.
#[utoipa::path(
    tag = "alerts",
    request_body = AlertRuleInput,
    responses(
        (status = 201, description = "Created", body = Envelope<AlertRuleItem>),
        (status = 400, description = "Invalid fields, each listed in `errors`", body = ErrorEnvelope),
        NotSignedIn,
        NotAnAdmin,
        (status = 409, description = "The name is taken", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[post("/alerts/rules")]
pub async fn create_rule(
    state: State,
    _admin: Admin,
    body: crate::extract::Json<AlertRuleInput, RULE_BODY_LIMIT>,
) -> Result<HttpResponse, ApiError> {
    let (spec, key) = read_rule(body.into_inner(), state.credential_key.as_ref())?;
    let rule = capstats_store::run_blocking(&state.store, move |connection| {
        alerts::create_rule(connection, &key, &spec)
    })
    .await?;
    Ok(HttpResponse::Created().json(Envelope::new(
        "alert rule created",
        AlertRuleItem::from(rule),
    )))
}

/// One alert rule.
#[utoipa::path(
    tag = "alerts",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "The rule", body = Envelope<AlertRuleItem>),
        NotSignedIn,
        (status = 403, description = "Needs the `admin` scope", body = ErrorEnvelope),
        (status = 404, description = "No such rule", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[get("/alerts/rules/{id}")]
pub async fn get_rule(
    state: State,
    _admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let rule = capstats_store::run_blocking(&state.store, move |connection| {
        capstats_store::alerts::find_rule(connection, id)
    })
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("alert rule {id}")))?;
    Ok(HttpResponse::Ok().json(Envelope::new("alert rule", AlertRuleItem::from(rule))))
}

/// Replaces an alert rule, channels included (their URLs and secrets are named again, since
/// they are never shown). Its open events stay open and are judged by the new condition
/// after the next run. The replaced channels are gone: notifications still pending for them
/// are not sent (they end `failed`, saying so); later ones go to the new channels.
#[utoipa::path(
    tag = "alerts",
    params(("id" = i64, Path, description = "The rule's id")),
    request_body = AlertRuleInput,
    responses(
        (status = 200, description = "Replaced", body = Envelope<AlertRuleItem>),
        (status = 400, description = "Invalid fields, each listed in `errors`", body = ErrorEnvelope),
        NotSignedIn,
        NotAnAdmin,
        (status = 404, description = "No such rule", body = ErrorEnvelope),
        (status = 409, description = "The name is taken", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[put("/alerts/rules/{id}")]
pub async fn replace_rule(
    state: State,
    _admin: Admin,
    path: web::Path<i64>,
    body: crate::extract::Json<AlertRuleInput, RULE_BODY_LIMIT>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (spec, key) = read_rule(body.into_inner(), state.credential_key.as_ref())?;
    let rule = capstats_store::run_blocking(&state.store, move |connection| {
        alerts::replace_rule(connection, &key, id, &spec)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "alert rule replaced",
        AlertRuleItem::from(rule),
    )))
}

/// Deletes an alert rule with its events and their notifications (pending ones are not
/// sent).
#[utoipa::path(
    tag = "alerts",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "Deleted", body = Envelope<bool>),
        NotSignedIn,
        NotAnAdmin,
        (status = 404, description = "No such rule", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["admin"])),
)]
#[delete("/alerts/rules/{id}")]
pub async fn delete_rule(
    state: State,
    _admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    capstats_store::run_blocking(&state.store, move |connection| {
        alerts::delete_rule(connection, id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new("alert rule deleted", true)))
}

/// Alert events, most recently seen first, each with its notifications (delivery attempts
/// and last error). Filters: `state` (`open`, `resolved`), `rule_id`, `instance_id`,
/// `severity`; `page`, `limit`.
#[utoipa::path(
    tag = "alerts",
    params(
        ("state" = Option<String>, Query, description = "`open` or `resolved`", pattern = "^(open|resolved)$"),
        ("rule_id" = Option<i64>, Query, description = "Events of this rule", minimum = 1),
        ("instance_id" = Option<i64>, Query, description = "Events of this instance", minimum = 1),
        ("severity" = Option<Severity>, Query, description = "Events of rules of this severity"),
        ("page" = Option<i64>, Query, description = "Page, from 1", minimum = 1, maximum = 1000000),
        ("limit" = Option<i64>, Query, description = "Events per page, 1–200 (default 20)", minimum = 1, maximum = 200),
    ),
    responses(
        (status = 200, description = "One page of events", body = Envelope<Paginated<AlertEventItem>>),
        (status = 400, description = "Invalid filter", body = ErrorEnvelope),
        NotSignedIn,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/alerts/events")]
pub async fn list_events(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut parameters = Parameters::of(&request);
    let event_state = parameters.one::<String>("state");
    if let Some(text) = &event_state
        && !["open", "resolved"].contains(&text.as_str())
    {
        parameters.problem(
            "state",
            "invalid_choice",
            format!("unknown state `{text}`; expected open or resolved"),
        );
    }
    let mut positive = |name: &str| {
        let value = parameters.one::<i64>(name);
        if let Some(value) = value
            && value < 1
        {
            parameters.problem(
                name,
                "out_of_range",
                format!("{value} is not an id (1 or more)"),
            );
        }
        value
    };
    let rule_id = positive("rule_id");
    let instance_id = positive("instance_id").map(InstanceId);
    let filter = EventFilter {
        state: event_state,
        rule_id,
        instance_id,
        severity: parameters.one::<Severity>("severity"),
    };
    let page = parameters.page();
    parameters.finish()?;
    let offset = (page.page - 1) * page.limit;
    let (items, total) = capstats_store::run_blocking(&state.store, move |connection| {
        let (events, total) =
            capstats_store::alerts::list_events(connection, &filter, page.limit, offset)?;
        let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
        let mut by_event = std::collections::BTreeMap::<i64, Vec<_>>::new();
        for (event_id, notification) in capstats_store::alerts::notifications_of(connection, &ids)?
        {
            by_event.entry(event_id).or_default().push(notification);
        }
        let items = events
            .into_iter()
            .map(|event| {
                let notifications = by_event.remove(&event.id).unwrap_or_default();
                AlertEventItem::new(event, notifications)
            })
            .collect::<Vec<_>>();
        Ok::<_, capstats_store::StoreError>((items, total))
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "alert events",
        Paginated::new(items, total, page.page, page.limit),
    )))
}
