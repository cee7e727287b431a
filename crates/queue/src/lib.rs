#![doc = include_str!("../README.md")]

mod error;
pub mod job_store;
pub mod jobs;
pub mod metrics;
pub mod scheduler;
mod wakeups;
pub mod worker;

pub use error::QueueError;
pub use job_store::PostgresQueue;
pub use jobs::{BackgroundJob, JobOutcome};
