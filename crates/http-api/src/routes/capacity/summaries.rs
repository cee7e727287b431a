//! The summary cards of the capacity pages.

use super::*;
use crate::remembered;
use capstats_store::PgConnection;

/// `numerator / denominator × 100` with two decimals, half away from zero.
fn percent(numerator: i128, denominator: i128) -> Option<Decimal> {
    (denominator != 0).then(|| {
        let hundredths =
            capstats_aggregation_core::metrics::divide_rounded(numerator * 10_000, denominator);
        Decimal::try_from_i128_with_scale(hundredths, 2).unwrap_or_default()
    })
}

/// Summary cards of the instances page: the latest daily sample of each instance in the
/// window (period_type is ignored), summed, and the growth since each instance's earliest
/// sample in the window.
#[utoipa::path(
    tag = "capacity",
    params(ScopeQuery, WindowQuery),
    responses(
        (status = 200, description = "The summary", body = Envelope<Summary<InstancesSummary>>),
        InvalidParameters,
        NotSignedIn,
        UnknownInstance,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/instances/summary")]
pub async fn instances_summary(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (filter, ()) = checked_filter(&state, &request, false, |_| ()).await?;
    let period_type = filter.period_type;
    let includes_partial_periods = filter.end >= state.today();
    let window = Window {
        start_date: filter.start,
        end_date: filter.end,
    };
    let key = remembered::key(&request, state.today(), &filter);
    let read =
        move |connection: &mut PgConnection| aggregates::instance_totals(connection, &filter);
    remembered::answer(&state, key, read, |totals| {
        instances_summary_of(&totals, period_type, window, includes_partial_periods)
    })
    .await
}

/// The instances summary of `totals`.
fn instances_summary_of(
    totals: &[aggregates::InstanceTotals],
    period_type: PeriodType,
    window: Window,
    includes_partial_periods: bool,
) -> Envelope<Summary<InstancesSummary>> {
    let latest: i128 = totals
        .iter()
        .map(|total| i128::from(total.latest_total_size_mb))
        .sum();
    let earliest: i128 = totals
        .iter()
        .map(|total| i128::from(total.earliest_total_size_mb))
        .sum();
    let largest = totals
        .iter()
        .max_by_key(|total| {
            (
                total.latest_total_size_mb,
                std::cmp::Reverse(total.instance.id),
            )
        })
        .map(|total| NamedSize {
            instance_id: total.instance.id.0,
            instance_name: total.instance.name.clone(),
            database_name: None,
            size_mb: total.latest_total_size_mb,
        });
    let instances = i128::try_from(totals.len()).unwrap_or(i128::MAX);
    Envelope::new(
        "instances summary",
        Summary {
            summary: InstancesSummary {
                total_instances: totals.len() as i64,
                total_databases: totals.iter().map(|total| total.latest_database_count).sum(),
                total_size_mb: i64::try_from(latest).unwrap_or(i64::MAX),
                avg_size_mb: percent(latest, instances * 100).unwrap_or_default(),
                max_size_mb: largest.as_ref().map_or(0, |largest| largest.size_mb),
                growth_rate: percent(latest - earliest, earliest),
                period_type,
                source: "instance_size_stats".into(),
                window,
                growth_mb: i64::try_from(latest - earliest).unwrap_or(i64::MAX),
                includes_partial_periods,
                largest,
            },
        },
    )
}

/// Summary cards of the databases page: the latest aggregate (of period_type) of each database
/// in the window, summed; growth is the sum of their size changes against the sizes before.
#[utoipa::path(
    tag = "capacity",
    params(ScopeQuery, WindowQuery, DatabaseQuery),
    responses(
        (status = 200, description = "The summary", body = Envelope<Summary<DatabasesSummary>>),
        InvalidParameters,
        NotSignedIn,
        UnknownInstance,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/databases/summary")]
pub async fn databases_summary(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (filter, ()) = checked_filter(&state, &request, true, |_| ()).await?;
    let window = Window {
        start_date: filter.start,
        end_date: filter.end,
    };
    let period_type = filter.period_type;
    let key = remembered::key(&request, state.today(), &filter);
    let read =
        move |connection: &mut PgConnection| aggregates::database_totals(connection, &filter);
    remembered::answer(&state, key, read, |totals| {
        databases_summary_of(totals, period_type, window)
    })
    .await
}

/// The databases summary of `totals`.
fn databases_summary_of(
    totals: aggregates::DatabaseTotals,
    period_type: PeriodType,
    window: Window,
) -> Envelope<Summary<DatabasesSummary>> {
    let largest = totals
        .largest
        .map(|(instance, database_name, size_mb)| NamedSize {
            instance_id: instance.id.0,
            instance_name: instance.name,
            database_name: Some(database_name),
            size_mb,
        });
    Envelope::new(
        "databases summary",
        Summary {
            summary: DatabasesSummary {
                total_databases: totals.database_count,
                total_instances: totals.instance_count,
                total_size_mb: i64::try_from(totals.total_size_mb).unwrap_or(i64::MAX),
                avg_size_mb: percent(
                    totals.total_size_mb,
                    i128::from(totals.database_count) * 100,
                )
                .unwrap_or_default(),
                max_size_mb: totals.max_size_mb.unwrap_or(0),
                growth_rate: percent(totals.size_change_mb, totals.size_before_mb),
                period_type,
                source: "database_size_aggregations".into(),
                window,
                size_change_mb: i64::try_from(totals.size_change_mb).unwrap_or(i64::MAX),
                includes_partial_periods: totals.includes_partial_periods,
                largest,
            },
        },
    )
}
