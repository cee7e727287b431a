//! Extractors of our own: a JSON body read with a small size limit, for the unauthenticated
//! sign-in and the account routes, so that a huge body is refused before anything parses it.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Bytes a [`SmallJson`] body may have.
pub const SMALL_BODY_LIMIT: usize = 4 * 1024;

/// A JSON body of at most [`SMALL_BODY_LIMIT`] bytes.
pub struct SmallJson<T>(pub T);

impl<T> SmallJson<T> {
    /// The parsed body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn too_large() -> ApiError {
    ApiError::field(
        "body",
        "too_large",
        format!("the body is larger than {SMALL_BODY_LIMIT} bytes"),
    )
}

impl<T: DeserializeOwned + 'static> FromRequest for SmallJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = request.mime_type().ok().flatten().is_some_and(|mime| {
            mime.subtype() == "json" || mime.suffix().is_some_and(|suffix| suffix == "json")
        });
        let declared_length = request
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::field(
                    "body",
                    "content_type",
                    "send the body as application/json",
                ));
            }
            if declared_length.is_some_and(|length| length > SMALL_BODY_LIMIT) {
                return Err(too_large());
            }
            let mut body = Vec::with_capacity(declared_length.unwrap_or(256).min(SMALL_BODY_LIMIT));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|error| {
                    ApiError::field(
                        "body",
                        "invalid",
                        format!("the body could not be read: {error}"),
                    )
                })?;
                if body.len() + chunk.len() > SMALL_BODY_LIMIT {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            serde_json::from_slice(&body)
                .map(SmallJson)
                .map_err(|error| ApiError::field("body", "invalid_json", error.to_string()))
        })
    }
}
