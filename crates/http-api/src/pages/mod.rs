//! The web UI (DESIGN §9): server-rendered page shells — navigation, filter forms, the
//! signed-in user and, for admins only, the write controls — that the bundled script
//! (`web/src`, embedded by [`assets`]) fills from the JSON API.
//!
//! Pages are for people in a browser: a visitor without a session is redirected to the login
//! page and brought back afterwards, and write controls are left out of the markup for
//! viewers rather than hidden by the script.

pub mod assets;
mod layout;
mod views;

use actix_session::SessionExt;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use maud::Markup;

use crate::auth::{self, Caller};
use crate::error::ApiError;
use layout::Section;

/// Registers the pages and the assets (outside `/api/v1`).
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(assets::embedded_asset)
        .service(home)
        .service(login)
        .service(capacity_instances)
        .service(capacity_databases)
        .service(sync_sessions)
        .service(sync_session)
        .service(scheduler)
        .service(alerts);
}

/// Where a page may send the browser after login: a path on this site only, so that the
/// login page cannot be used to redirect elsewhere (`//host` and `/\host` are other sites to
/// a browser).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.starts_with("/login")
                && !next.chars().any(char::is_control) =>
        {
            next
        }
        _ => "/capacity/instances",
    }
}

/// The page's own path and query, for the `next` of a login redirect.
fn requested_target(request: &HttpRequest) -> String {
    match request.query_string() {
        "" => request.path().to_owned(),
        query => format!("{}?{query}", request.path()),
    }
}

/// A `303 See Other` to `location`.
fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// An HTML response with the headers every page carries: no caching of personalised pages,
/// and a content security policy that allows this origin only (the UI loads nothing from
/// elsewhere, and this keeps it that way).
fn html(status: actix_web::http::StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .body(markup.into_string())
}

/// Renders a signed-in page, or redirects an anonymous visitor to the login page.
async fn signed_in_page(
    request: &HttpRequest,
    section: Section,
    body: impl FnOnce(&Caller) -> Markup,
) -> HttpResponse {
    match auth::authenticate(request).await {
        Ok(caller) => match auth::csrf_token(&request.get_session()) {
            Ok(csrf) => html(
                actix_web::http::StatusCode::OK,
                layout::page(section, Some((&caller, &csrf)), body(&caller)),
            ),
            Err(error) => error_page(&error),
        },
        Err(ApiError::AuthenticationRequired) => {
            let next: String =
                form_urlencoded::byte_serialize(requested_target(request).as_bytes()).collect();
            redirect(&format!("/login?next={next}"))
        }
        Err(error) => error_page(&error),
    }
}

/// A page for a failure before the page could be built (the database is down, say).
fn error_page(error: &ApiError) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(error);
    html(
        status,
        layout::page(Section::Error, None, views::failure(&error.to_string())),
    )
}

/// `GET /`: the instance capacity page.
#[get("/")]
pub async fn home() -> HttpResponse {
    redirect("/capacity/instances")
}

/// The query of the login page.
#[derive(serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: the sign-in form; a signed-in visitor goes straight on.
#[get("/login")]
pub async fn login(request: HttpRequest, query: web::Query<LoginQuery>) -> HttpResponse {
    let next = safe_next(query.next.as_deref()).to_owned();
    if auth::authenticate(&request).await.is_ok() {
        return redirect(&next);
    }
    html(
        actix_web::http::StatusCode::OK,
        layout::page(Section::Login, None, views::login(&next)),
    )
}

/// `GET /capacity/instances`: instance capacity charts.
#[get("/capacity/instances")]
pub async fn capacity_instances(request: HttpRequest) -> HttpResponse {
    signed_in_page(&request, Section::Instances, |caller| {
        views::capacity(views::Level::Instance, caller.is_admin())
    })
    .await
}

/// `GET /capacity/databases`: database capacity charts.
#[get("/capacity/databases")]
pub async fn capacity_databases(request: HttpRequest) -> HttpResponse {
    signed_in_page(&request, Section::Databases, |caller| {
        views::capacity(views::Level::Database, caller.is_admin())
    })
    .await
}

/// `GET /sync-sessions`: run history.
#[get("/sync-sessions")]
pub async fn sync_sessions(request: HttpRequest) -> HttpResponse {
    signed_in_page(&request, Section::Sessions, |caller| {
        views::sessions(caller.is_admin())
    })
    .await
}

/// `GET /sync-sessions/{id}`: one run with its per-instance records.
#[get("/sync-sessions/{id}")]
pub async fn sync_session(request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    match id.parse::<i64>() {
        Ok(id) if id > 0 => {
            signed_in_page(&request, Section::Sessions, |caller| {
                views::session(id, caller.is_admin())
            })
            .await
        }
        _ => error_page(&ApiError::NotFound(format!("sync session `{id}`"))),
    }
}

/// `GET /scheduler`: schedules.
#[get("/scheduler")]
pub async fn scheduler(request: HttpRequest) -> HttpResponse {
    signed_in_page(&request, Section::Scheduler, |caller| {
        views::scheduler(caller.is_admin())
    })
    .await
}

/// `GET /alerts`: alert events, and for admins the rules.
#[get("/alerts")]
pub async fn alerts(request: HttpRequest) -> HttpResponse {
    signed_in_page(&request, Section::Alerts, |caller| {
        views::alerts(caller.is_admin())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn login_sends_browsers_to_local_paths_only() {
        assert_eq!(
            safe_next(Some("/scheduler?x=1")),
            "/scheduler?x=1",
            "a local path with a query is kept"
        );
        for outside in [
            "https://example.com/",
            "//example.com/",
            "/\\example.com",
            "javascript:alert(1)",
            "/login?next=/",
            "/sync\n",
        ] {
            assert_eq!(safe_next(Some(outside)), "/capacity/instances", "{outside}");
        }
        assert_eq!(safe_next(None), "/capacity/instances");
    }
}
