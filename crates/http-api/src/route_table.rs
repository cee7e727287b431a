//! What every route shares, read from the OpenAPI document so the spec and the server cannot
//! disagree: `HEAD` is answered like `GET` (headers, no body), a known path asked with a
//! method it does not accept answers `405` with `Allow`, and a query parameter the operation
//! does not declare, or a body sent to an operation that takes none, answers `400` naming it.

use actix_web::dev::ResourceDef;
use actix_web::http::Method;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::error::{ApiError, FieldError};

/// Marks a request that came in as `HEAD` and is routed as `GET`.
#[derive(Debug, Clone, Copy)]
pub struct HeadRequest;

/// Paths outside the spec, all `GET`: the scrape endpoint, the spec itself and the pages
/// (`pages::configure` registers the handlers; these are their patterns).
const UNDOCUMENTED_GET_PATHS: &[&str] = &[
    "/metrics",
    "/api/v1/openapi.json",
    "/",
    "/login",
    "/assets/{name}",
    "/capacity/instances",
    "/capacity/databases",
    "/sync-sessions",
    "/sync-sessions/{id}",
    "/scheduler",
    "/alerts",
];

/// One operation: its method and, for a documented one, the query parameters it declares
/// (`None`: outside the spec, not checked).
#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    query_parameters: Option<Vec<String>>,
    /// Whether it declares a request body (undocumented operations: not checked).
    takes_body: bool,
}

/// The routes: each path pattern with its operations, from the OpenAPI document and the
/// undocumented `GET` paths.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<(ResourceDef, Vec<Operation>)>,
}

impl RouteTable {
    /// The table of `document`'s operations and the undocumented paths.
    pub fn from_document(document: &utoipa::openapi::OpenApi) -> Self {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::path::ParameterIn;
        let mut routes: Vec<(ResourceDef, Vec<Operation>)> = document
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let operations = [
                    (&item.get, Method::GET),
                    (&item.post, Method::POST),
                    (&item.put, Method::PUT),
                    (&item.patch, Method::PATCH),
                    (&item.delete, Method::DELETE),
                ]
                .into_iter()
                .filter_map(|(operation, method)| {
                    let operation = operation.as_ref()?;
                    let query_parameters = operation
                        .parameters
                        .iter()
                        .flatten()
                        .filter_map(|parameter| match parameter {
                            RefOr::T(parameter) if parameter.parameter_in == ParameterIn::Query => {
                                Some(parameter.name.clone())
                            }
                            _ => None,
                        })
                        .collect();
                    Some(Operation {
                        method,
                        query_parameters: Some(query_parameters),
                        takes_body: operation.request_body.is_some(),
                    })
                })
                .collect();
                (ResourceDef::new(path.as_str()), operations)
            })
            .collect();
        routes.extend(UNDOCUMENTED_GET_PATHS.iter().map(|path| {
            (
                ResourceDef::new(*path),
                vec![Operation {
                    method: Method::GET,
                    query_parameters: None,
                    takes_body: true,
                }],
            )
        }));
        Self { routes }
    }

    /// The routes whose pattern `path` belongs to: a path a fixed pattern matches
    /// (`/instances/options`) is that route's alone, not also a parameter's value
    /// (`/instances/{id}`).
    fn routes_of(&self, path: &str) -> Vec<&(ResourceDef, Vec<Operation>)> {
        let matching: Vec<&(ResourceDef, Vec<Operation>)> = self
            .routes
            .iter()
            .filter(|(pattern, _)| pattern.is_match(path))
            .collect();
        let fixed: Vec<&(ResourceDef, Vec<Operation>)> = matching
            .iter()
            .copied()
            .filter(|(pattern, _)| pattern.pattern().is_some_and(|text| !text.contains('{')))
            .collect();
        if fixed.is_empty() { matching } else { fixed }
    }

    /// The methods `path` accepts (`HEAD` wherever `GET` is), in a stable order; empty for a
    /// path no route has.
    pub fn allowed(&self, path: &str) -> Vec<Method> {
        let mut allowed: Vec<Method> = Vec::new();
        for (_, operations) in self.routes_of(path) {
            for operation in operations {
                if !allowed.contains(&operation.method) {
                    allowed.push(operation.method.clone());
                }
            }
        }
        if allowed.contains(&Method::GET) {
            allowed.push(Method::HEAD);
        }
        let order = |method: &Method| {
            ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
                .iter()
                .position(|name| *name == method.as_str())
        };
        allowed.sort_by_key(order);
        allowed
    }

    /// The `400` for a request to a documented operation with query parameters it does not
    /// declare, naming each of them once.
    pub fn unknown_parameters(&self, method: &Method, path: &str, query: &str) -> Option<ApiError> {
        let declared = self
            .routes_of(path)
            .into_iter()
            .flat_map(|(_, operations)| operations)
            .find(|operation| operation.method == *method)?
            .query_parameters
            .as_ref()?;
        let mut unknown: Vec<String> = Vec::new();
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            if !declared.iter().any(|known| *known == name)
                && !unknown.iter().any(|seen| *seen == name)
            {
                unknown.push(name.into_owned());
            }
        }
        if unknown.is_empty() {
            return None;
        }
        let message = if declared.is_empty() {
            "this operation takes no query parameters".to_owned()
        } else {
            format!(
                "is not a parameter of this operation, which takes {}",
                declared.join(", ")
            )
        };
        Some(ApiError::fields(
            unknown
                .into_iter()
                .map(|name| FieldError::new(name, "unknown_parameter", message.clone()))
                .collect(),
        ))
    }

    /// Whether `method` on `path` is a documented operation that declares no request body.
    pub fn takes_no_body(&self, method: &Method, path: &str) -> bool {
        self.routes_of(path)
            .into_iter()
            .flat_map(|(_, operations)| operations)
            .find(|operation| operation.method == *method)
            .is_some_and(|operation| !operation.takes_body)
    }

    /// The `405` for `request` when its path exists but does not accept its method.
    pub fn refusal(&self, request: &HttpRequest) -> Option<ApiError> {
        let allowed = self.allowed(request.path());
        let method = if request.extensions().contains::<HeadRequest>() {
            Method::HEAD
        } else {
            request.method().clone()
        };
        (!allowed.is_empty() && !allowed.contains(&method)).then(|| ApiError::MethodNotAllowed {
            method: method.to_string(),
            allowed: allowed.iter().map(ToString::to_string).collect(),
        })
    }
}

/// The `400` for `body`, sent to an operation that takes no body, unless it says nothing:
/// empty, white space, `{}` or `null` (what clients send by habit with a `POST`). Anything
/// else would be read by nobody, so it is refused rather than silently dropped.
pub fn unexpected_body(body: &[u8]) -> Option<ApiError> {
    let says_nothing = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Null) => true,
        Ok(serde_json::Value::Object(fields)) => fields.is_empty(),
        Ok(_) => false,
        Err(_) => body.iter().all(u8::is_ascii_whitespace),
    };
    (!says_nothing).then(|| {
        ApiError::fields(vec![FieldError::new(
            "body",
            "unexpected_body",
            "this operation takes no request body".to_owned(),
        )])
    })
}

/// The `405` for `request` under the application's route table, if it is one.
pub fn refusal_of(request: &HttpRequest) -> Option<ApiError> {
    request
        .app_data::<web::Data<RouteTable>>()
        .and_then(|routes| routes.refusal(request))
}

/// Routes a `HEAD` request as `GET`, remembering it was `HEAD`: the HTTP layer then sends the
/// `GET` answer's status and headers without its body.
pub fn route_head_as_get(request: &mut actix_web::dev::ServiceRequest) {
    if request.method() == Method::HEAD {
        request.head_mut().method = Method::GET;
        request.extensions_mut().insert(HeadRequest);
    }
}

/// The answer for a request no route took: `405` with `Allow` when its path exists with other
/// methods, else `404`.
pub async fn unmatched(request: HttpRequest) -> HttpResponse {
    HttpResponse::from_error(
        refusal_of(&request).unwrap_or_else(|| ApiError::NotFound("the requested resource".into())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(pattern: &str, method: Method, parameters: &[&str]) -> (ResourceDef, Vec<Operation>) {
        (
            ResourceDef::new(pattern),
            vec![Operation {
                method,
                query_parameters: Some(parameters.iter().map(|name| (*name).to_owned()).collect()),
                takes_body: false,
            }],
        )
    }

    #[test]
    fn a_body_to_an_operation_without_one_is_refused_unless_it_says_nothing() {
        for nothing in ["", " \n", "{}", " { } ", "null"] {
            assert!(unexpected_body(nothing.as_bytes()).is_none(), "{nothing:?}");
        }
        for something in [r#"{"retention_months": 12}"#, "[]", "1", "x", r#""""#] {
            let Some(ApiError::Validation { errors, .. }) = unexpected_body(something.as_bytes())
            else {
                panic!("{something:?} was let through");
            };
            assert_eq!(errors[0].field, "body");
            assert_eq!(errors[0].code, "unexpected_body");
        }
        let routes = RouteTable {
            routes: vec![route("/api/v1/things/{id}/actions/run", Method::POST, &[])],
        };
        assert!(routes.takes_no_body(&Method::POST, "/api/v1/things/7/actions/run"));
        assert!(!routes.takes_no_body(&Method::PUT, "/api/v1/things/7/actions/run"));
    }

    #[test]
    fn a_query_parameter_the_operation_does_not_declare_is_named_once() {
        let routes = RouteTable {
            routes: vec![route("/api/v1/items", Method::GET, &["page", "limit"])],
        };
        assert!(
            routes
                .unknown_parameters(&Method::GET, "/api/v1/items", "page=2&limit=5")
                .is_none()
        );
        let Some(ApiError::Validation { errors, .. }) = routes.unknown_parameters(
            &Method::GET,
            "/api/v1/items",
            "page=2&pgae=3&get_al=1&pgae=4",
        ) else {
            panic!("not refused");
        };
        let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(fields, ["pgae", "get_al"]);
        assert_eq!(errors[0].code, "unknown_parameter");
        // Outside the table: nothing to check against.
        assert!(
            routes
                .unknown_parameters(&Method::GET, "/other", "x=1")
                .is_none()
        );
    }

    #[test]
    fn a_path_with_a_parameter_lists_the_methods_of_its_pattern_and_head_with_get() {
        let routes = RouteTable {
            routes: vec![
                route("/api/v1/items/{id}", Method::PUT, &[]),
                route("/api/v1/items/{id}", Method::GET, &[]),
                route("/api/v1/items", Method::POST, &[]),
            ],
        };
        assert_eq!(
            routes.allowed("/api/v1/items/7"),
            [Method::GET, Method::HEAD, Method::PUT]
        );
        assert_eq!(routes.allowed("/api/v1/items"), [Method::POST]);
        // A fixed path is not a parameter's value.
        let routes = RouteTable {
            routes: vec![
                route("/api/v1/items/{id}", Method::PUT, &[]),
                route("/api/v1/items/options", Method::GET, &[]),
            ],
        };
        assert_eq!(
            routes.allowed("/api/v1/items/options"),
            [Method::GET, Method::HEAD]
        );
        assert!(routes.allowed("/api/v1/items/7/more").is_empty());
    }
}
