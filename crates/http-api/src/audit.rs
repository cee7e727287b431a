//! The audit trail of the API: every write request (sign-ins, failed ones included, token and
//! credential changes, runs, schedules, instances, users) is recorded once it is answered, with
//! the caller, the token, the client's address and the outcome.
//!
//! The middleware records; handlers may add what only they know (the user name a sign-in
//! tried, whether a password was set or cleared) with [`note`].

use actix_web::dev::ServiceResponse;
use actix_web::{HttpMessage, HttpRequest};

use capstats_store::audit::{NewAuditEvent, Outcome};

use crate::auth::Caller;
use crate::state::AppState;

/// What a handler adds to the audit event of its request.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    /// An action name instead of the one derived from the route.
    pub action: Option<&'static str>,
    /// The user name a sign-in tried.
    pub username: Option<String>,
    /// Details worth keeping (never a secret).
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// Adds to the audit note of `request`.
pub fn note(request: &HttpRequest, change: impl FnOnce(&mut AuditNote)) {
    let mut extensions = request.extensions_mut();
    if extensions.get::<AuditNote>().is_none() {
        extensions.insert(AuditNote::default());
    }
    if let Some(note) = extensions.get_mut::<AuditNote>() {
        change(note);
    }
}

/// Whether a request with `method` is audited: everything but reads.
pub fn is_audited(method: &actix_web::http::Method) -> bool {
    !matches!(
        *method,
        actix_web::http::Method::GET
            | actix_web::http::Method::HEAD
            | actix_web::http::Method::OPTIONS
    )
}

/// The action a route stands for: the route's segments without `/api/v1` and parameters,
/// joined by dots, then what the method does (`POST /api/v1/instances` →
/// `instances.create`, `DELETE /api/v1/auth/tokens/{id}` → `auth.tokens.delete`,
/// `POST /api/v1/scheduler/jobs/{id}/actions/{action}` with `pause` → `scheduler.jobs.pause`).
pub fn action_of(method: &str, route: &str, request: &HttpRequest) -> String {
    let route = route.strip_prefix("/api/v1/").unwrap_or(route);
    let mut names = Vec::new();
    let mut verb = None;
    let mut segments = route.split('/').filter(|segment| !segment.is_empty());
    while let Some(segment) = segments.next() {
        if segment == "actions" {
            verb = segments.next().map(|action| {
                match action
                    .strip_prefix('{')
                    .and_then(|name| name.strip_suffix('}'))
                {
                    Some(parameter) => request
                        .match_info()
                        .get(parameter)
                        .unwrap_or(parameter)
                        .to_owned(),
                    None => action.to_owned(),
                }
            });
            break;
        }
        if !segment.starts_with('{') {
            names.push(segment);
        }
    }
    let verb = verb.unwrap_or_else(|| {
        match method {
            "POST" => "create",
            "PUT" | "PATCH" => "update",
            "DELETE" => "delete",
            other => other,
        }
        .to_owned()
    });
    format!("{}.{verb}", names.join("."))
}

/// Records the audit event of an answered write request. A failure to record is logged, not
/// answered: the request itself is done.
pub async fn record(state: &AppState, response: &ServiceResponse, request_id: &str) {
    let request = response.request();
    let method = request.method().as_str().to_owned();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let note = request
        .extensions()
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default();
    // A sign-in is recorded under the account it tried, never under a credential the request
    // happened to carry (a cookie of another account, a token): the trail of attempts on an
    // account must find them all.
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .filter(|_| note.action != Some(SIGN_IN));
    let status = response.status().as_u16();
    let action = note
        .action
        .map_or_else(|| action_of(&method, &route, request), str::to_owned);
    // A refused sign-in is a failed attempt, not a denied permission.
    let outcome = match Outcome::from_http_status(status) {
        Outcome::Denied if note.action == Some(SIGN_IN) => Outcome::Failure,
        outcome => outcome,
    };
    let target = {
        let parameters: Vec<String> = request
            .match_info()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        (!parameters.is_empty()).then(|| parameters.join(" "))
    };
    let event = NewAuditEvent {
        action,
        outcome: outcome.as_str().to_owned(),
        user_id: caller.as_ref().map(|caller| caller.user.id),
        username: caller
            .as_ref()
            .map(|caller| caller.user.username.clone())
            .or(note.username),
        token_id: caller.as_ref().and_then(Caller::token_id),
        client_address: Some(state.client_address(request).to_string()),
        request_id: Some(request_id.to_owned()),
        http_method: Some(method),
        http_route: Some(route),
        http_status: Some(i32::from(status)),
        target,
        detail: serde_json::Value::Object(note.detail),
    };
    if let Err(error) = capstats_store::run_blocking(&state.store, move |connection| {
        capstats_store::audit::record(connection, &event)
    })
    .await
    {
        tracing::error!(request_id, error = %error, "recording the audit event failed");
    }
}

/// The action name of sign-ins.
pub const SIGN_IN: &str = "auth.login";
