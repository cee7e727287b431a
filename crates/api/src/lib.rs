//! The capstats HTTP API (actix-web handlers, DTOs, the error envelope, the OpenAPI
//! description). The API is built in its own issue; until then this crate only holds its place
//! in the workspace so that the layering rules and the build cover it.
