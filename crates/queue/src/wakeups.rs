//! Wakes a queue's workers the moment a job is pushed onto it: one `LISTEN` connection per
//! worker process on the channel apalis' insert trigger notifies, routed to each queue by the
//! notification's `job_type`.
//!
//! The notification is only a hint that makes the poller look now; the poll interval stays
//! beside it, since a notification is not sent for a job whose `run_at` lies ahead (a
//! retry's backoff) and is lost while the listening connection is down. apalis-postgres'
//! own `with_pubsub` takes a connection out of the job store's pool for every queue and its
//! factory panics when the database is unreachable, hence this module.

use std::collections::HashMap;
use std::time::Duration;

use futures_channel::mpsc;
use sqlx::postgres::PgListener;

/// The channel apalis' `notify_new_jobs` trigger notifies for every job inserted to run now.
const INSERT_CHANNEL: &str = "apalis::job::insert";

/// The part of the trigger's payload that names the queue.
#[derive(serde::Deserialize)]
struct Inserted {
    job_type: String,
}

/// A queue's wake-ups: one item per burst of pushes (they coalesce while the worker has not
/// looked yet).
pub(crate) type Wakeups = mpsc::Receiver<()>;

/// The listener's side: where each queue's wake-ups go.
pub(crate) struct WakeupRoutes {
    routes: HashMap<String, mpsc::Sender<()>>,
}

impl WakeupRoutes {
    /// Routes for `queues`, and the wake-ups of each.
    pub(crate) fn new(queues: &[&str]) -> (Self, HashMap<String, Wakeups>) {
        let mut routes = HashMap::new();
        let mut receivers = HashMap::new();
        for queue in queues {
            // Capacity one: a wake-up that is already waiting covers every later push.
            let (sender, receiver) = mpsc::channel(0);
            routes.insert((*queue).to_owned(), sender);
            receivers.insert((*queue).to_owned(), receiver);
        }
        (Self { routes }, receivers)
    }

    fn wake(&mut self, payload: &str) {
        let Ok(inserted) = serde_json::from_str::<Inserted>(payload) else {
            tracing::debug!(
                payload,
                "a job-insert notification this build does not read"
            );
            return;
        };
        if let Some(route) = self.routes.get_mut(&inserted.job_type) {
            // Full means a wake-up is already waiting; closed means the queue's worker is gone.
            let _ = route.try_send(());
        }
    }

    /// Listens on its own connection to `database_url` (outside the job store's pool) until
    /// `stop` turns true. When the connection cannot be made or re-made, the error is logged
    /// and listening is tried again after `retry`; meanwhile the workers poll.
    pub(crate) async fn listen(
        mut self,
        database_url: String,
        retry: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                error = self.listen_until_error(&database_url) => tracing::warn!(
                    %error,
                    retry_in_ms = retry.as_millis() as u64,
                    "not listening for pushed jobs; the workers poll until it is back"
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }

    async fn listen_until_error(&mut self, database_url: &str) -> sqlx::Error {
        let mut listener = match PgListener::connect(database_url).await {
            Ok(listener) => listener,
            Err(error) => return error,
        };
        if let Err(error) = listener.listen(INSERT_CHANNEL).await {
            return error;
        }
        tracing::debug!("listening for pushed jobs");
        loop {
            // `try_recv` reports a lost connection (`None`) before it reconnects and listens
            // again on the next call, so that the gap, in which pushes wake nobody, shows.
            match listener.try_recv().await {
                Ok(Some(notification)) => self.wake(notification.payload()),
                Ok(None) => tracing::warn!(
                    "the connection listening for pushed jobs was lost; reconnecting (the \
                     workers poll meanwhile)"
                ),
                Err(error) => return error,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_wakes_only_its_queue_and_bursts_coalesce() {
        let (mut routes, mut wakeups) = WakeupRoutes::new(&["aggregation", "maintenance"]);
        let payload = r#"{"job_type":"aggregation","id":"01J","run_at":"2026-12-03T00:00:00Z"}"#;
        routes.wake(payload);
        routes.wake(payload);
        routes.wake("not json");
        routes.wake(r#"{"job_type":"someone else's queue"}"#);
        let aggregation = wakeups.get_mut("aggregation").unwrap();
        assert_eq!(aggregation.try_recv(), Ok(()));
        assert!(aggregation.try_recv().is_err(), "the burst was one wake-up");
        assert!(wakeups.get_mut("maintenance").unwrap().try_recv().is_err());
    }
}
