#![doc = include_str!("../README.md")]

pub mod backfill;
mod error;
pub mod import;
pub mod job_store;
mod progress;
pub mod seed;

pub use error::JobError;
pub use progress::{NoProgress, Progress};

/// The name this process uses when it claims work: host name and process id, unique per
/// process as the job store requires.
pub fn worker_name() -> String {
    format!(
        "{}:{}",
        gethostname::gethostname().to_string_lossy(),
        std::process::id()
    )
}
