//! The web UI's bundled scripts and styles (`web/dist`, built by `make web`) are embedded in
//! the binary; fail early with the command to run when they are missing, and rebuild when they
//! change.

use std::path::Path;

const ASSETS: [&str; 2] = ["app.js", "app.css"];

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    for asset in ASSETS {
        let path = dist.join(asset);
        println!("cargo:rerun-if-changed={}", path.display());
        assert!(
            path.exists(),
            "{} is missing: build the web UI first with `make web` (npm ci && npm run build in web/)",
            path.display()
        );
    }
}
