#![doc = include_str!("../README.md")]

pub mod backfill;
pub mod collection;
pub mod control;
pub mod credentials;
mod error;
pub mod import;
pub mod ingest;
pub mod job_store;
pub mod maintenance;
pub mod payloads;
mod progress;
mod records;
pub mod runs;
pub mod scheduler;
pub mod scheduling;
pub mod seed;
pub mod worker;

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
