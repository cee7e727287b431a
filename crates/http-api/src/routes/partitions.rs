//! Monthly partitions of the size tables: the paged list, the overview, statistics, the
//! samples-per-day chart, status, creating a month's partitions, and cleanup.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{HttpRequest, HttpResponse, get, post};
use chrono::{Days, Months, NaiveDate};
use serde::Deserialize;
use utoipa::IntoParams;

use capstats_capacity_model::{Period, PeriodType};
use capstats_store::partitions::{self, PartitionInfo, PartitionedTable};

use crate::auth::{Operator, Viewer};
use crate::dto::{
    CleanupResult, CoreMetrics, CreatedPartitions, MetricDataset, PartitionItem, PartitionOverview,
    PartitionRequest, PartitionStatistics, PartitionStatus, PartitionTableStatus,
};
use crate::envelope::{Envelope, Paginated};
use crate::error::{ApiError, ErrorEnvelope};
use crate::error_responses::{InvalidParameters, NotAnAdmin, NotSignedIn};
use crate::params::Parameters;
use crate::state::State;

/// The partitions as they are now, with what the retention and the look-ahead make of them.
struct Snapshot {
    partitions: Vec<PartitionInfo>,
    /// First month of samples kept; older sample partitions are past the retention.
    samples_kept_from: Option<NaiveDate>,
    /// First month of aggregates kept; older aggregation partitions are past the retention.
    aggregates_kept_from: Option<NaiveDate>,
    /// The months from this one to the end of the look-ahead.
    wanted: Vec<NaiveDate>,
}

impl Snapshot {
    async fn read(state: &State) -> Result<Self, ApiError> {
        let partitions =
            capstats_store::run_blocking(&state.store, partitions::list_partitions).await?;
        let today = state.today();
        let ahead_until = today
            .checked_add_months(Months::new(state.settings.partitions_ahead_months))
            .unwrap_or(today);
        let retention = capstats_services::maintenance::Retention::of(&state.settings);
        Ok(Self {
            partitions,
            samples_kept_from: retention.samples_kept_from(today),
            aggregates_kept_from: retention.aggregates_kept_from(today),
            wanted: partitions::months_between(today, ahead_until),
        })
    }

    fn is_past_retention(&self, partition: &PartitionInfo) -> bool {
        let keep_from = match PartitionedTable::named(&partition.table_name) {
            Some(table) if table.holds_aggregates() => self.aggregates_kept_from,
            _ => self.samples_kept_from,
        };
        keep_from.is_some_and(|keep| partition.range_end <= keep)
    }

    fn item(&self, partition: &PartitionInfo) -> PartitionItem {
        let table_type = if PartitionedTable::SAMPLES
            .iter()
            .any(|table| table.name() == partition.table_name)
        {
            "stats"
        } else {
            "aggregations"
        };
        PartitionItem {
            name: partition.partition_name.clone(),
            table: partition.table_name.clone(),
            table_type: table_type.to_owned(),
            display_name: format!(
                "{} {}",
                partition.table_name,
                partition.range_start.format("%Y-%m")
            ),
            size: human_size(partition.total_bytes),
            size_bytes: partition.total_bytes,
            record_count: partition.estimated_rows.unwrap_or(0),
            date: partition.range_start,
            status: if self.is_past_retention(partition) {
                "past_retention"
            } else {
                "healthy"
            }
            .to_owned(),
            table_name: partition.table_name.clone(),
            partition_name: partition.partition_name.clone(),
            range_start: partition.range_start,
            range_end: partition.range_end,
            total_bytes: partition.total_bytes,
            estimated_rows: partition.estimated_rows,
        }
    }

    /// The partitions of the look-ahead months that do not exist yet.
    fn missing(&self) -> Vec<String> {
        let existing: BTreeSet<&str> = self
            .partitions
            .iter()
            .map(|partition| partition.partition_name.as_str())
            .collect();
        PartitionedTable::ALL
            .iter()
            .flat_map(|table| self.wanted.iter().map(|month| table.partition_name(*month)))
            .filter(|name| !existing.contains(name.as_str()))
            .collect()
    }

    fn total_bytes(&self) -> i64 {
        self.partitions
            .iter()
            .map(|partition| partition.total_bytes)
            .sum()
    }

    fn total_records(&self) -> i64 {
        self.partitions
            .iter()
            .filter_map(|partition| partition.estimated_rows)
            .sum()
    }

    fn tables(&self) -> Vec<PartitionTableStatus> {
        PartitionedTable::ALL
            .iter()
            .map(|table| {
                let own: Vec<_> = self
                    .partitions
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
                    missing_ahead: self
                        .wanted
                        .iter()
                        .copied()
                        .filter(|month| !months.contains(month))
                        .collect(),
                }
            })
            .collect()
    }
}

/// Bytes for people, in decimal units (`1.05 MB`).
fn human_size(bytes: i64) -> String {
    humansize::format_size(u64::try_from(bytes).unwrap_or(0), humansize::DECIMAL)
}

/// Parameters of the partition list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct PartitionQuery {
    /// Only partitions whose name contains this text.
    #[param(min_length = 1, pattern = "^[^\\x00]+$")]
    search: Option<String>,
    /// Only `stats` (sample tables), `aggregations`, or one table by name.
    #[param(
        pattern = "^(stats|aggregations|database_size_stats|instance_size_stats|database_size_aggregations|instance_size_aggregations)$"
    )]
    table_type: Option<String>,
    /// Only `healthy` or `past_retention` partitions.
    #[param(pattern = "^(healthy|past_retention)$")]
    status: Option<String>,
    /// `name` (default), `table`, `date`, `size` or `records`.
    #[param(pattern = "^(name|table|date|size|records)$")]
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    #[param(pattern = "^(asc|desc)$")]
    order: Option<String>,
    /// Page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    page: Option<i64>,
    /// Items per page, 1–200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// One page of the partitions, filtered and sorted.
#[utoipa::path(
    tag = "partitions",
    params(PartitionQuery),
    responses(
        (status = 200, description = "One page of partitions", body = Envelope<Paginated<PartitionItem>>),
        InvalidParameters,
        NotSignedIn,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/partitions")]
pub async fn list_partitions(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut parameters = Parameters::of(&request);
    let search = parameters.one::<String>("search");
    let table_type = parameters.one::<String>("table_type");
    if let Some(kind) = &table_type
        && !["stats", "aggregations"].contains(&kind.as_str())
        && !PartitionedTable::ALL
            .iter()
            .any(|table| table.name() == kind)
    {
        parameters.problem(
            "table_type",
            "invalid",
            format!("`{kind}`: use stats, aggregations or a table name"),
        );
    }
    let status = parameters.one::<String>("status");
    if let Some(status) = &status
        && !["healthy", "past_retention"].contains(&status.as_str())
    {
        parameters.problem(
            "status",
            "invalid",
            format!("`{status}`: use healthy or past_retention"),
        );
    }
    let sort = parameters
        .one::<String>("sort")
        .unwrap_or_else(|| "name".into());
    if !["name", "table", "date", "size", "records"].contains(&sort.as_str()) {
        parameters.problem(
            "sort",
            "invalid",
            format!("`{sort}`: use name, table, date, size or records"),
        );
    }
    let order = parameters
        .one::<String>("order")
        .unwrap_or_else(|| "asc".into());
    if !["asc", "desc"].contains(&order.as_str()) {
        parameters.problem("order", "invalid", format!("`{order}`: use asc or desc"));
    }
    let page = parameters.page();
    parameters.finish()?;
    let snapshot = Snapshot::read(&state).await?;
    let mut items: Vec<PartitionItem> = snapshot
        .partitions
        .iter()
        .map(|partition| snapshot.item(partition))
        .filter(|item| {
            search
                .as_ref()
                .is_none_or(|text| item.name.contains(text.as_str()))
        })
        .filter(|item| {
            table_type
                .as_ref()
                .is_none_or(|kind| item.table_type == *kind || item.table == *kind)
        })
        .filter(|item| status.as_ref().is_none_or(|status| item.status == *status))
        .collect();
    items.sort_by(|a, b| match sort.as_str() {
        "table" => (&a.table, a.date).cmp(&(&b.table, b.date)),
        "date" => (a.date, &a.table).cmp(&(b.date, &b.table)),
        "size" => (a.size_bytes, &a.name).cmp(&(b.size_bytes, &b.name)),
        "records" => (a.record_count, &a.name).cmp(&(b.record_count, &b.name)),
        _ => a.name.cmp(&b.name),
    });
    if order == "desc" {
        items.reverse();
    }
    let total = items.len() as i64;
    let start = usize::try_from((page.page - 1) * page.limit).unwrap_or(usize::MAX);
    let items = items
        .into_iter()
        .skip(start)
        .take(usize::try_from(page.limit).unwrap_or(0))
        .collect();
    Ok(HttpResponse::Ok().json(Envelope::new(
        "partitions",
        Paginated::new(items, total, page.page, page.limit),
    )))
}

/// Every partition with the totals, the missing partitions of the look-ahead and an overall
/// status (the reference's overview).
#[utoipa::path(
    tag = "partitions",
    responses(
        (status = 200, description = "The overview", body = Envelope<PartitionOverview>),
        NotSignedIn,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/partitions/info")]
pub async fn partition_info(state: State, _viewer: Viewer) -> Result<HttpResponse, ApiError> {
    let snapshot = Snapshot::read(&state).await?;
    let missing_partitions = snapshot.missing();
    let past_retention = snapshot
        .partitions
        .iter()
        .any(|partition| snapshot.is_past_retention(partition));
    Ok(HttpResponse::Ok().json(Envelope::new(
        "partition overview",
        PartitionOverview {
            partitions: snapshot
                .partitions
                .iter()
                .map(|partition| snapshot.item(partition))
                .collect(),
            total_partitions: snapshot.partitions.len() as i64,
            total_size_bytes: snapshot.total_bytes(),
            total_size: human_size(snapshot.total_bytes()),
            total_records: snapshot.total_records(),
            tables: PartitionedTable::ALL
                .iter()
                .map(|table| table.name().to_owned())
                .collect(),
            status: if missing_partitions.is_empty() && !past_retention {
                "healthy"
            } else {
                "warning"
            }
            .to_owned(),
            missing_partitions,
        },
    )))
}

/// The totals and each table's partitions, size, rows and months.
#[utoipa::path(
    tag = "partitions",
    responses(
        (status = 200, description = "The statistics", body = Envelope<PartitionStatistics>),
        NotSignedIn,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/partitions/statistics")]
pub async fn partition_statistics(state: State, _viewer: Viewer) -> Result<HttpResponse, ApiError> {
    let snapshot = Snapshot::read(&state).await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "partition statistics",
        PartitionStatistics {
            total_partitions: snapshot.partitions.len() as i64,
            total_size_bytes: snapshot.total_bytes(),
            total_size: human_size(snapshot.total_bytes()),
            total_records: snapshot.total_records(),
            tables: snapshot.tables(),
        },
    )))
}

/// Parameters of the core-metrics chart.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct CoreMetricsQuery {
    /// `daily` (default), `weekly`, `monthly`, `quarterly` or `yearly`: how the days are grouped.
    #[param(value_type = Option<PeriodType>)]
    period_type: Option<String>,
    /// Days back from today, 1–3660 (default 7).
    #[param(minimum = 1, maximum = 3660)]
    days: Option<i64>,
}

/// Samples stored per period over the last `days` days: database samples and instance totals
/// (the reference's core-metrics chart).
#[utoipa::path(
    tag = "partitions",
    params(CoreMetricsQuery),
    responses(
        (status = 200, description = "The chart", body = Envelope<CoreMetrics>),
        InvalidParameters,
        NotSignedIn,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/partitions/core-metrics")]
pub async fn core_metrics(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut parameters = Parameters::of(&request);
    let period_type = parameters
        .one::<PeriodType>("period_type")
        .unwrap_or(PeriodType::Daily);
    let days = parameters.bounded("days", 1, 3660, 7);
    parameters.finish()?;
    let to = state.today();
    let from = to - Days::new(u64::try_from(days - 1).unwrap_or(0));
    let counts = capstats_store::run_blocking(&state.store, move |connection| {
        capstats_store::samples::daily_sample_counts(connection, from, to)
    })
    .await?;
    let mut periods: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    for count in counts {
        let period = periods
            .entry(Period::containing(period_type, count.collected_date).start())
            .or_default();
        period.0 += count.database_samples;
        period.1 += count.instance_samples;
    }
    Ok(HttpResponse::Ok().json(Envelope::new(
        "core metrics",
        CoreMetrics {
            data_point_count: periods.len(),
            labels: periods.keys().copied().collect(),
            datasets: vec![
                MetricDataset {
                    label: "database samples".into(),
                    data: periods.values().map(|(databases, _)| *databases).collect(),
                },
                MetricDataset {
                    label: "instance totals".into(),
                    data: periods.values().map(|(_, instances)| *instances).collect(),
                },
            ],
            time_range: format!("{days}d"),
            y_axis_label: "samples".into(),
            chart_title: "Samples stored".into(),
            period_type: period_type.as_str().to_owned(),
        },
    )))
}

/// Creates the partitions of a month (every partitioned table) that do not exist yet.
#[utoipa::path(
    tag = "partitions",
    request_body = PartitionRequest,
    responses(
        (status = 200, description = "The month's partitions exist", body = Envelope<CreatedPartitions>),
        (status = 400, description = "A date before this month, or an invalid body", body = ErrorEnvelope),
        NotSignedIn,
        NotAnAdmin,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[post("/partitions")]
pub async fn create_partitions(
    state: State,
    _operator: Operator,
    body: crate::extract::Json<PartitionRequest>,
) -> Result<HttpResponse, ApiError> {
    let date = body.into_inner().date;
    let month = partitions::month_of(date);
    let this_month = partitions::month_of(state.today());
    if month < this_month {
        return Err(ApiError::field(
            "date",
            "in_the_past",
            format!(
                "{date} lies before this month ({this_month}); partitions are created for this month or later"
            ),
        ));
    }
    capstats_capacity_model::validate_supported_date(date)?;
    let created = capstats_store::run_blocking(&state.store, move |connection| {
        partitions::ensure_partitions(connection, &PartitionedTable::ALL, [month])
    })
    .await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        if created.is_empty() {
            "the month's partitions exist already"
        } else {
            "partitions created"
        },
        CreatedPartitions { month, created },
    )))
}

/// Per table: partitions, size, months covered and months ahead still missing; and the
/// partitions past the retention that cleanup would drop.
#[utoipa::path(
    tag = "partitions",
    responses(
        (status = 200, description = "The status", body = Envelope<PartitionStatus>),
        NotSignedIn,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/partitions/status")]
pub async fn partition_status(state: State, _viewer: Viewer) -> Result<HttpResponse, ApiError> {
    let snapshot = Snapshot::read(&state).await?;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "partition status",
        PartitionStatus {
            retention_months: state.settings.sample_retention_months,
            keep_from: snapshot.samples_kept_from,
            aggregate_retention_months: state.settings.aggregate_retention_months,
            aggregates_kept_from: snapshot.aggregates_kept_from,
            past_retention: snapshot
                .partitions
                .iter()
                .filter(|partition| snapshot.is_past_retention(partition))
                .map(|partition| partition.partition_name.clone())
                .collect(),
            tables: snapshot.tables(),
        },
    )))
}

/// Creates the partitions ahead and drops those past the retention (what the daily
/// `maintain_partitions` job does), now.
#[utoipa::path(
    tag = "partitions",
    responses(
        (status = 200, description = "What was created and dropped", body = Envelope<CleanupResult>),
        NotSignedIn,
        NotAnAdmin,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["operate"])),
)]
#[post("/partitions/actions/cleanup")]
pub async fn cleanup(state: State, _operator: Operator) -> Result<HttpResponse, ApiError> {
    let today = state.today();
    let ahead = state.settings.partitions_ahead_months;
    let retention = capstats_services::maintenance::Retention::of(&state.settings);
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
