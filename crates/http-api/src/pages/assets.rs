//! The web UI's bundled script and stylesheet, embedded at compile time so that the binary
//! serves its own UI with nothing loaded from elsewhere.

use std::sync::OnceLock;

use actix_web::http::header::{self, CacheDirective, ContentType};
use actix_web::{HttpResponse, get, web};
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: [Asset; 2] = [
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../web/dist/app.js"
        )),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../web/dist/app.css"
        )),
    },
];

/// A short hash of every embedded file: pages link `?v=VERSION`, so browsers may cache the
/// assets for a year and still pick up a new build at once.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = Sha256::new();
        for asset in &ASSETS {
            hasher.update(asset.bytes);
        }
        hasher.finalize()[..6]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    })
}

/// `GET /assets/{name}`.
#[get("/assets/{name}")]
pub async fn embedded_asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|asset| asset.name == name.as_str()) {
        Some(asset) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header(header::CacheControl(vec![
                CacheDirective::Public,
                CacheDirective::MaxAge(31_536_000),
            ]))
            .body(asset.bytes),
        None => HttpResponse::NotFound()
            .content_type(ContentType::plaintext())
            .body("no such asset"),
    }
}
