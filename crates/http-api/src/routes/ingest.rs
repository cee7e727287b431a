//! Ingesting samples: `POST /capacity/stats`.

use actix_web::{HttpResponse, post};

use capstats_capacity_model::{DatabaseSizeSample, InstanceId};
use capstats_services::ingest::IngestItem;

use crate::auth::Ingester;
use crate::dto::{IngestRequest, IngestResult};
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorEnvelope};
use crate::error_responses::NotSignedIn;
use crate::state::State;

/// Writes a batch of database samples (at most 10,000): one per instance, database and
/// business date; a sample for a key already stored replaces it. Every item is checked first
/// (the instance exists and is active, the database name has 1–255 characters, sizes are not
/// negative and data/log are not larger than the total, the date is not after today in the
/// business time zone nor before the first day the sample retention keeps — `before_retention`
/// — no key twice); a batch with any bad item is rejected whole, with one
/// entry per problem in `errors` (`field` = `items[INDEX].FIELD`), and nothing is written.
/// A valid batch also refreshes the instance totals and the inventory of the touched days, and
/// marks every already-aggregated period containing a touched date as stale for the touched
/// instances, so that `refresh_stale_periods` recomputes exactly those periods.
#[utoipa::path(
    tag = "capacity",
    request_body = IngestRequest,
    responses(
        (status = 200, description = "Written", body = Envelope<IngestResult>),
        (status = 400, description = "Rejected whole; every bad item is listed in `errors`", body = ErrorEnvelope),
        NotSignedIn,
        (status = 403, description = "Neither an admin session (with CSRF token) nor a token with the `ingest` scope", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["ingest"])),
)]
#[post("/capacity/stats")]
pub async fn ingest_stats(
    state: State,
    _caller: Ingester,
    body: crate::extract::Json<IngestRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let items: Vec<IngestItem> = request
        .items
        .into_iter()
        .map(|item| IngestItem {
            sample: DatabaseSizeSample {
                instance_id: InstanceId(item.instance_id),
                database_name: item.database_name,
                collected_date: item.collected_date,
                size_mb: item.size_mb,
                data_size_mb: item.data_size_mb,
                log_size_mb: item.log_size_mb,
            },
            collected_at: item.collected_at,
        })
        .collect();
    let count = items.len();
    let dates =
        capstats_services::maintenance::Retention::of(&state.settings).sample_dates(state.today());
    let written = capstats_store::run_blocking(&state.store, move |connection| {
        capstats_services::ingest::ingest_samples(connection, &items, dates, chrono::Utc::now())
            .map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        format!("{count} samples written"),
        IngestResult {
            items: count as i64,
            samples_written: written.samples_written as i64,
            instance_days_refreshed: written.instance_days_refreshed as i64,
            databases_recorded: written.databases_recorded as i64,
            periods_marked_stale: written.ledger_entries_marked as i64,
        },
    )))
}
