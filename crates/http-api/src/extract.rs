//! The JSON body extractor of every route: read up to a size limit (a small one for the
//! unauthenticated sign-in and the account routes, so a huge body is refused before anything
//! parses it), parsed strictly — every field the request type does not have is refused by
//! name, and a field of the wrong type is named by its path.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// Bytes a [`SmallJson`] body may have: the longest valid one, a password change with two
/// passwords of 1,024 characters each written as JSON escapes of surrogate pairs (12 bytes a
/// character), is about 24.6 KiB.
pub const SMALL_BODY_LIMIT: usize = 32 * 1024;

/// Bytes any other JSON body may have (an ingest batch of 10,000 samples fits).
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// A JSON body of at most `LIMIT` bytes, with no field its type does not have.
pub struct Json<T, const LIMIT: usize = BODY_LIMIT>(pub T);

/// A JSON body of at most [`SMALL_BODY_LIMIT`] bytes.
pub type SmallJson<T> = Json<T, SMALL_BODY_LIMIT>;

impl<T, const LIMIT: usize> Json<T, LIMIT> {
    /// The parsed body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn too_large(limit: usize) -> ApiError {
    let size = if limit >= 1024 * 1024 {
        format!("{} MiB", limit / (1024 * 1024))
    } else {
        format!("{limit} bytes")
    };
    ApiError::field(
        "body",
        "too_large",
        format!("the body is larger than {size}"),
    )
}

/// Parses `body` as a `T`, refusing every field `T` does not have (each named by its path,
/// such as `items[3].log_size_mbb`) and naming the path of a value that does not fit.
pub fn parse_strictly<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // PostgreSQL text cannot hold NUL, which JSON can only carry escaped: each string that
    // has one is refused by its path before anything reads the values.
    if body
        .windows(6)
        .any(|window| window.eq_ignore_ascii_case(b"\\u0000"))
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
    {
        let mut paths = Vec::new();
        strings_with_nul(&value, String::new(), &mut paths);
        if !paths.is_empty() {
            return Err(ApiError::fields(
                paths
                    .into_iter()
                    .map(|path| {
                        FieldError::new(path, "invalid", "must not contain a NUL character")
                    })
                    .collect(),
            ));
        }
    }
    // Every request body is an object; serde would also read a struct from an array.
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::field(
            "body",
            "invalid_json",
            "send a JSON object",
        ));
    }
    let mut unknown = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut record_unknown = |path: serde_ignored::Path<'_>| unknown.push(field_path(&path));
    let parsed = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        &mut deserializer,
        &mut record_unknown,
    ))
    .map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        FieldError::new(field, "invalid_json", error.into_inner().to_string())
    })
    .and_then(|parsed| {
        deserializer
            .end()
            .map(|()| parsed)
            .map_err(|error| FieldError::new("body", "invalid_json", error.to_string()))
    });
    let mut problems: Vec<FieldError> = unknown
        .into_iter()
        .map(|path| FieldError::new(path, "unknown_field", "is not a field of this request"))
        .collect();
    match parsed {
        Ok(parsed) if problems.is_empty() => Ok(parsed),
        Ok(_) => Err(ApiError::fields(problems)),
        Err(problem) => {
            problems.push(problem);
            Err(ApiError::fields(problems))
        }
    }
}

/// The paths of the strings in `value` that contain NUL, keys included.
fn strings_with_nul(value: &serde_json::Value, path: String, found: &mut Vec<String>) {
    use serde_json::Value;
    match value {
        Value::String(text) if text.contains('\0') => found.push(path),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                strings_with_nul(item, format!("{path}[{index}]"), found);
            }
        }
        Value::Object(fields) => {
            for (key, field) in fields {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if key.contains('\0') {
                    found.push(child.clone());
                }
                strings_with_nul(field, child, found);
            }
        }
        _ => {}
    }
}

/// A field's path as the error names it: `items[3].log_size_mbb`.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let parent = field_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

impl<T: DeserializeOwned + 'static, const LIMIT: usize> FromRequest for Json<T, LIMIT> {
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
            if declared_length.is_some_and(|length| length > LIMIT) {
                return Err(too_large(LIMIT));
            }
            let mut body = Vec::with_capacity(declared_length.unwrap_or(256).min(LIMIT));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|error| {
                    ApiError::field(
                        "body",
                        "invalid",
                        format!("the body could not be read: {error}"),
                    )
                })?;
                if body.len() + chunk.len() > LIMIT {
                    return Err(too_large(LIMIT));
                }
                body.extend_from_slice(&chunk);
            }
            parse_strictly(&body).map(Json)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Batch {
        items: Vec<Sample>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        size_mb: i64,
        #[serde(default)]
        log_size_mb: Option<i64>,
    }

    fn problems(body: &str) -> Vec<(String, String)> {
        match parse_strictly::<Batch>(body.as_bytes()) {
            Err(ApiError::Validation { errors, .. }) => errors
                .into_iter()
                .map(|error| (error.field, error.code))
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_unknown_field_is_named_by_its_path() {
        assert_eq!(
            problems(
                r#"{"items": [{"size_mb": 1}, {"size_mb": 2, "log_size_mbb": 3}], "extra": 1}"#
            ),
            [
                (
                    "items[1].log_size_mbb".to_owned(),
                    "unknown_field".to_owned()
                ),
                ("extra".to_owned(), "unknown_field".to_owned()),
            ]
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_its_path() {
        assert_eq!(
            problems(r#"{"items": [{"size_mb": 1}, {"size_mb": "two"}]}"#),
            [("items[1].size_mb".to_owned(), "invalid_json".to_owned())]
        );
        assert_eq!(
            problems(r#"{"items": []} trailing"#),
            [("body".to_owned(), "invalid_json".to_owned())]
        );
    }

    #[test]
    fn a_nul_character_is_refused_before_it_reaches_the_database() {
        assert_eq!(
            problems(r#"{"items": [{"size_mb": 1}, {"size_mb": 2, "name": "a\u0000b"}]}"#),
            [("items[1].name".to_owned(), "invalid".to_owned())]
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        assert_eq!(
            problems("[null, null]"),
            [("body".to_owned(), "invalid_json".to_owned())]
        );
        assert_eq!(
            problems(" 7"),
            [("body".to_owned(), "invalid_json".to_owned())]
        );
    }

    #[test]
    fn a_known_body_parses() {
        let batch = parse_strictly::<Batch>(br#"{"items": [{"size_mb": 1, "log_size_mb": null}]}"#)
            .unwrap();
        assert_eq!(batch.items[0].size_mb, 1);
        assert_eq!(batch.items[0].log_size_mb, None);
    }
}
