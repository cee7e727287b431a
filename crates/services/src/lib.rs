#![doc = include_str!("../README.md")]

pub mod alerts;
pub mod backfill;
pub mod collection;
pub mod control;
pub mod credentials;
pub mod enqueue;
mod error;
pub mod export;
pub mod import;
pub mod ingest;
pub mod maintenance;
pub mod metrics;
pub mod payloads;
pub mod planning;
mod progress;
mod records;
pub mod runs;
pub mod scheduling;
pub mod seed;
pub mod session_run;

pub use enqueue::{JobQueue, new_job_id};
pub use error::ServiceError;
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
