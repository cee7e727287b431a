//! Middleware: request ids and error envelopes on every response, HTTP metrics, and who the
//! caller of an API request is.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, web};

use crate::error::ApiError;
use crate::ids::{is_acceptable_request_id, new_id};
use crate::state::AppState;

/// The request's id, as handlers and the error envelope see it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an id (the client's `X-Request-ID` when it sends a sane one), renders
/// every error — from handlers, extractors or inner middleware — as the envelope carrying that
/// id, sets `X-Request-ID` on every response, and records HTTP metrics.
pub async fn request_context(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    // Before anything reads the method: the metric label keeps `HEAD`, routing sees `GET`.
    let method = metric_method(request.method());
    crate::route_table::route_head_as_get(&mut request);
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_acceptable_request_id(value))
        .map_or_else(new_id, str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    // No clone of the HttpRequest may be held across `next.call`: routing needs it unshared.
    let audited = crate::audit::is_audited(request.method()) && request.path().starts_with("/api/");
    let state = request.app_data::<web::Data<Arc<AppState>>>().cloned();
    let mut response = match next.call(request).await {
        Ok(response) => {
            let rendered =
                response
                    .response()
                    .error()
                    .map(|error| match error.as_error::<ApiError>() {
                        Some(api_error) => api_error.to_response(&id),
                        None => {
                            let status = error.as_response_error().status_code();
                            let api_error = match status.as_u16() {
                                404 => ApiError::NotFound("the requested resource".into()),
                                405 => crate::route_table::refusal_of(response.request())
                                    .unwrap_or_else(|| {
                                        ApiError::NotFound("this method on the resource".into())
                                    }),
                                413 => {
                                    ApiError::field("body", "too_large", "the body is too large")
                                }
                                code if code < 500 => {
                                    ApiError::fields(vec![crate::error::FieldError::new(
                                        "request",
                                        "invalid",
                                        error.to_string(),
                                    )])
                                }
                                _ => ApiError::Internal(error.to_string().into()),
                            };
                            api_error.to_response(&id)
                        }
                    });
            match rendered {
                Some(rendered) => response.into_response(rendered),
                None => response.map_into_boxed_body(),
            }
        }
        // Only inner middleware fails this way (the session cookie could not be written); the
        // request is gone, so actix renders the error, without our header.
        Err(error) => {
            tracing::error!(request_id = id, %error, "middleware failed");
            return Err(error);
        }
    };
    response.headers_mut().insert(
        X_REQUEST_ID,
        HeaderValue::from_str(&id).expect("request ids are header-safe"),
    );
    if let Some(state) = state {
        if audited {
            crate::audit::record(&state, &response, &id).await;
        }
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let status = response.status().as_u16().to_string();
        state
            .metrics
            .http_requests
            .with_label_values(&[method, route.as_str(), status.as_str()])
            .inc();
        state
            .metrics
            .http_duration
            .with_label_values(&[method, route.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

/// The method as a metric label: the standard methods by name, anything else as `other`, so
/// that a client sending made-up methods cannot create unbounded label values.
fn metric_method(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Refuses an `/api/` request with a query parameter its operation does not declare, or with a
/// body its operation would not read (anything but empty, `{}` or `null`), then
/// resolves the caller of every `/api/` request (bearer token or sign-in session) before any
/// handler or extractor runs, and leaves it in the request's extensions for the scope
/// extractors of [`crate::auth`] and the audit trail. A request without valid credentials goes
/// on as anonymous (sign-in, the CSRF token and the spec need none; every other route answers
/// `401`); only a failure to look the credentials up (the database) answers here.
pub async fn authentication(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if request.path().starts_with("/api/") {
        // Before the credentials are looked up: a misspelt parameter is refused whoever sends
        // it, without a query, and the spec it is checked against is public.
        if let Some(error) = request
            .app_data::<web::Data<crate::route_table::RouteTable>>()
            .and_then(|routes| {
                routes.unknown_parameters(request.method(), request.path(), request.query_string())
            })
        {
            return Ok(request.error_response(error).map_into_right_body());
        }
        let routes = request.app_data::<web::Data<crate::route_table::RouteTable>>();
        if routes.is_some_and(|routes| routes.takes_no_body(request.method(), request.path()))
            && has_body(&request)
        {
            let (http_request, mut payload) = request.into_parts();
            // Small: only bodies that say nothing are let through.
            let body = match web::Bytes::from_request(&http_request, &mut payload).await {
                Ok(body) => body,
                Err(error) => {
                    let response = ServiceResponse::from_err(error, http_request);
                    return Ok(response.map_into_right_body());
                }
            };
            if let Some(error) = crate::route_table::unexpected_body(&body) {
                let response = ServiceResponse::from_err(error, http_request);
                return Ok(response.map_into_right_body());
            }
            request = ServiceRequest::from_parts(http_request, actix_web::dev::Payload::None);
        }
        match crate::auth::authenticate(request.request()).await {
            Ok(_) | Err(ApiError::AuthenticationRequired) => {}
            Err(error) => return Ok(request.error_response(error).map_into_right_body()),
        }
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Whether `request` announces a body: a non-zero `Content-Length` or a chunked one.
fn has_body(request: &ServiceRequest) -> bool {
    use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let headers = request.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|length| length.trim() != "0")
}
