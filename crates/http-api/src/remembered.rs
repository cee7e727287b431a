//! Capacity reads remembered between requests: a page or a dashboard asks for the same lists,
//! summaries, series, leaderboards and forecasts again and again, and they change only when a
//! run, an ingest or an edit of an instance commits.
//!
//! An answer is computed in one database snapshot and kept with it
//! ([`capstats_store::read_changes`]). A later request with the same key gets the same bytes
//! after one indexed query tells that no transaction outside that snapshot has committed a
//! change to the data behind it; otherwise it is computed again. Answers are kept 10 minutes at
//! most, far less than the day the worker keeps the change records, and within the memory of
//! `CAPSTATS_REMEMBERED_READS_MB`.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use serde::Serialize;

use capstats_store::PgConnection;
use capstats_store::read_changes::{ReadSnapshot, changed_since, consistent_read};

use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::state::State;

/// The longest an answer is remembered, whatever happens.
pub const REMEMBERED_SECONDS: u64 = 600;

/// An answer and the snapshot it was read in.
struct Remembered {
    snapshot: ReadSnapshot,
    body: Bytes,
}

/// Answers remembered by request, weighed by their size.
pub struct RememberedReads {
    answers: Option<moka::sync::Cache<String, Arc<Remembered>>>,
    /// One lock per key being read: when a change makes an answer old, the requests waiting
    /// for it take turns, and all but the first find it read again instead of each reading it.
    reading: moka::sync::Cache<String, Arc<tokio::sync::Mutex<()>>>,
}

impl RememberedReads {
    /// Remembers answers up to `megabytes` MiB in all; 0 remembers nothing.
    pub fn new(megabytes: u64) -> Self {
        let answers = (megabytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(megabytes.saturating_mul(1024 * 1024))
                .weigher(|key: &String, answer: &Arc<Remembered>| {
                    let size = key.len() + answer.body.len() + answer.snapshot.as_str().len();
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                .time_to_live(Duration::from_secs(REMEMBERED_SECONDS))
                .build()
        });
        let reading = moka::sync::Cache::builder()
            .max_capacity(10_000)
            .time_to_idle(Duration::from_secs(60))
            .build();
        Self { answers, reading }
    }

    /// The remembered answer of `key` if no change has committed since it was read.
    async fn current(&self, state: &State, key: &str) -> Result<Option<Bytes>, ApiError> {
        let Some(remembered) = self.answers.as_ref().and_then(|answers| answers.get(key)) else {
            return Ok(None);
        };
        let snapshot = remembered.snapshot.clone();
        let changed = capstats_store::run_blocking(&state.store, move |connection| {
            changed_since(connection, &snapshot)
        })
        .await?;
        Ok((!changed).then(|| remembered.body.clone()))
    }
}

/// What identifies an answer: the route and query as sent, today (defaults and completeness
/// depend on it), and what the handler resolved from the database before reading (which
/// instances a filter covers), so that two requests share an answer only when they read the
/// same thing.
pub fn key(
    request: &actix_web::HttpRequest,
    today: chrono::NaiveDate,
    resolved: &impl Debug,
) -> String {
    format!(
        "{} {}?{} {resolved:?}",
        today,
        request.path(),
        request.query_string()
    )
}

fn json(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body)
}

/// Answers with what is remembered under `key` while it is current; otherwise runs `read` in
/// one snapshot, answers with `respond` of its result and remembers that.
pub async fn answer<T, E, D>(
    state: &State,
    key: String,
    read: impl FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    respond: impl FnOnce(T) -> Envelope<D>,
) -> Result<HttpResponse, ApiError>
where
    T: Send + 'static,
    E: From<capstats_store::StoreError> + Send + 'static,
    ApiError: From<E>,
    D: Serialize,
{
    let Some(answers) = &state.remembered.answers else {
        let found = capstats_store::run_blocking(&state.store, read).await?;
        return Ok(HttpResponse::Ok().json(respond(found)));
    };
    let remembered = &state.remembered;
    let count = |outcome: &str| {
        state
            .metrics
            .remembered_reads
            .with_label_values(&[outcome])
            .inc();
    };
    if let Some(body) = remembered.current(state, &key).await? {
        count("hit");
        return Ok(json(body));
    }
    let lock = remembered
        .reading
        .get_with_by_ref(&key, || Arc::new(tokio::sync::Mutex::new(())));
    let _reading = lock.lock().await;
    // Whoever held the lock before may have read it again meanwhile.
    if let Some(body) = remembered.current(state, &key).await? {
        count("hit");
        return Ok(json(body));
    }
    count(if answers.contains_key(&key) {
        "changed"
    } else {
        "miss"
    });
    let (snapshot, found) = capstats_store::run_blocking(&state.store, move |connection| {
        consistent_read(connection, read)
    })
    .await?;
    let body = Bytes::from(
        serde_json::to_vec(&respond(found)).map_err(|error| ApiError::Internal(error.into()))?,
    );
    answers.insert(
        key,
        Arc::new(Remembered {
            snapshot,
            body: body.clone(),
        }),
    );
    Ok(json(body))
}
