//! The one thing the use cases need of the job runtime: putting a job on its queue.
//!
//! `capstats-queue` implements [`JobQueue`] on the apalis job store. The API and the
//! command-line tools hold it as `Arc<dyn JobQueue>`, so that only the worker binary and the
//! binaries' wiring link the queue runtime.

use std::future::Future;
use std::pin::Pin;

use crate::payloads::Job;

/// Why a queue did not take a job, with its cause.
pub type QueueFailure = Box<dyn std::error::Error + Send + Sync>;

/// What [`JobQueue::enqueue`] returns.
pub type EnqueueFuture<'a> = Pin<Box<dyn Future<Output = Result<(), QueueFailure>> + Send + 'a>>;

/// Puts jobs on their queues, each to run exactly once.
pub trait JobQueue: Send + Sync {
    /// Pushes `job` under the id `job_id` (from [`new_job_id`]).
    fn enqueue<'a>(&'a self, job: &'a Job, job_id: &'a str) -> EnqueueFuture<'a>;
}

/// A new job id: a ULID, as the job store requires, made before the job is pushed so that the
/// session a job runs as can name it.
pub fn new_job_id() -> String {
    ulid::Ulid::generate().to_string()
}
