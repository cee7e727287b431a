//! Monthly partitions of the size tables: list, status and cleanup.

use std::collections::BTreeSet;

use actix_web::{HttpResponse, get, post};
use chrono::{Months, NaiveDate};

use capstats_store::partitions::{self, PartitionedTable};

use crate::auth::{Operator, Viewer};
use crate::dto::{CleanupResult, PartitionItem, PartitionStatus, PartitionTableStatus};
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorEnvelope};
use crate::state::State;

/// Every partition with its size and row estimate.
#[utoipa::path(
    tag = "partitions",
    responses(
        (status = 200, description = "The partitions, by table and month", body = Envelope<Vec<PartitionItem>>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/partitions")]
pub async fn list_partitions(state: State, _viewer: Viewer) -> Result<HttpResponse, ApiError> {
    let list = capstats_store::run_blocking(&state.store, partitions::list_partitions).await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "partitions",
        list.into_iter()
            .map(|partition| PartitionItem {
                table_name: partition.table_name,
                partition_name: partition.partition_name,
                range_start: partition.range_start,
                range_end: partition.range_end,
                total_bytes: partition.total_bytes,
                estimated_rows: partition.estimated_rows,
            })
            .collect::<Vec<_>>(),
    )))
}

/// Per table: partitions, size, months covered and months ahead still missing; and the
/// partitions past the retention that cleanup would drop.
#[utoipa::path(
    tag = "partitions",
    responses(
        (status = 200, description = "The status", body = Envelope<PartitionStatus>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/partitions/status")]
pub async fn partition_status(state: State, _viewer: Viewer) -> Result<HttpResponse, ApiError> {
    let list = capstats_store::run_blocking(&state.store, partitions::list_partitions).await?;
    let today = state.today();
    let retention = state.settings.retention_months;
    let keep_from = partitions::retention_start(today, retention);
    let ahead_until = today
        .checked_add_months(Months::new(state.settings.partitions_ahead_months))
        .unwrap_or(today);
    let wanted = partitions::months_between(today, ahead_until);
    let tables = PartitionedTable::ALL
        .iter()
        .map(|table| {
            let own: Vec<_> = list
                .iter()
                .filter(|partition| partition.table_name == table.name())
                .collect();
            let months: BTreeSet<NaiveDate> =
                own.iter().map(|partition| partition.range_start).collect();
            PartitionTableStatus {
                table_name: table.name().to_owned(),
                partitions: own.len() as i64,
                total_bytes: own.iter().map(|partition| partition.total_bytes).sum(),
                estimated_rows: own
                    .iter()
                    .filter_map(|partition| partition.estimated_rows)
                    .sum(),
                oldest_month: months.first().copied(),
                newest_month: months.last().copied(),
                missing_ahead: wanted
                    .iter()
                    .copied()
                    .filter(|month| !months.contains(month))
                    .collect(),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(Envelope::new(
        "partition status",
        PartitionStatus {
            retention_months: retention,
            keep_from,
            past_retention: list
                .iter()
                .filter(|partition| keep_from.is_some_and(|keep| partition.range_end <= keep))
                .map(|partition| partition.partition_name.clone())
                .collect(),
            tables,
        },
    )))
}

/// Creates the partitions ahead and drops those past the retention (what the daily
/// `maintain_partitions` job does), now.
#[utoipa::path(
    tag = "partitions",
    responses(
        (status = 200, description = "What was created and dropped", body = Envelope<CleanupResult>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an admin, or CSRF token missing or wrong", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[post("/partitions/actions/cleanup")]
pub async fn cleanup(state: State, _operator: Operator) -> Result<HttpResponse, ApiError> {
    let today = state.today();
    let ahead = state.settings.partitions_ahead_months;
    let retention = state.settings.retention_months;
    let report = capstats_store::run_blocking(&state.store, move |connection| {
        capstats_services::maintenance::maintain_partitions(connection, today, ahead, retention)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "partitions maintained",
        CleanupResult {
            created: report.created,
            dropped: report.dropped,
        },
    )))
}
