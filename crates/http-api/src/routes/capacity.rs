//! Capacity reads: aggregates per instance and per database, their summaries, and chart
//! series.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, get};
use chrono::{Days, NaiveDate};
use serde::Deserialize;
use utoipa::IntoParams;

use capstats_capacity_model::{AggregationLevel, DbType, Decimal, InstanceId, Period, PeriodType};
use capstats_store::aggregates::{self, AggregateFilter, MetricColumn, PageRequest};

use crate::auth::Viewer;
use crate::dto::{
    DatabaseAggregateItem, DatabasesSummary, InstanceAggregateItem, InstancesSummary, NamedSize,
    Series, SeriesLine, Summary, Window,
};
use crate::envelope::{Envelope, Paginated};
use crate::error::{ApiError, ErrorEnvelope};
use crate::params::Parameters;
use crate::state::State;

/// Which instances and period type every capacity read covers (lists, summaries, series).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct ScopeQuery {
    /// Only these instances (repeatable). Unknown ids answer 404.
    #[param(style = Form, explode)]
    instance_id: Option<Vec<i64>>,
    /// Only instances of these engines (repeatable): mysql, postgresql, sqlserver, oracle.
    #[param(style = Form, explode, value_type = Option<Vec<DbType>>)]
    db_type: Option<Vec<String>>,
    /// daily (default), weekly, monthly, quarterly or yearly.
    #[param(value_type = Option<PeriodType>)]
    period_type: Option<String>,
    /// `false`: only instances that are active (and not deleted). By default deactivated and
    /// deleted instances count as well, in lists, summaries and series alike: their history
    /// stays readable, as in the reference.
    include_inactive: Option<bool>,
}

/// The window of the capacity lists and summaries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct WindowQuery {
    /// First day of the window (YYYY-MM-DD, 1900-01-01 to 9998-12-31): periods starting on or
    /// after it.
    start_date: Option<NaiveDate>,
    /// Last day of the window (YYYY-MM-DD, default today): periods starting on or before it.
    end_date: Option<NaiveDate>,
    /// Days of the window when one of start_date and end_date is missing (1–3660; default 31
    /// days for daily, 84 weekly, 365 monthly, 730 quarterly, 1826 yearly). Cannot be combined
    /// with both dates.
    #[param(minimum = 1, maximum = 3660)]
    time_range: Option<i64>,
}

/// The database filters of the database endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct DatabaseQuery {
    /// Only databases of this name (1–255 characters).
    #[param(min_length = 1, max_length = 255, pattern = "^[^\\x00]+$")]
    database_name: Option<String>,
    /// Only this database of the inventory (`id` of `GET /databases/options`); unknown ids
    /// answer 404. With database_name, both must name the same database.
    database_id: Option<i64>,
}

/// Paging of the lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct ListQuery {
    /// Page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    page: Option<i64>,
    /// Items per page, 1–200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `true`: every matching row on one page, at most 10,000 (then `truncated` is true);
    /// page and limit cannot be given with it (400).
    get_all: Option<bool>,
}

/// The periods and lines of both chart series.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct SeriesQuery {
    /// How many periods, 1–366 (default 14), ending with the period containing end_date.
    #[param(minimum = 1, maximum = 366)]
    periods: Option<i64>,
    /// The day whose period is the last one shown (default today).
    end_date: Option<NaiveDate>,
    /// How many lines, 1–100 (default 10): the largest by their latest value.
    #[param(minimum = 1, maximum = 100)]
    top: Option<i64>,
}

/// What the instance series plots.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct InstanceMetricQuery {
    /// total_size_mb (default), total_size_change_mb, total_size_change_percent,
    /// database_count or avg_size_mb.
    #[param(
        pattern = "^(total_size_mb|total_size_change_mb|total_size_change_percent|database_count|avg_size_mb)$"
    )]
    metric: Option<String>,
}

/// What the database series plots, and of which databases.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct DatabaseMetricQuery {
    /// Only databases of this name (1–255 characters).
    #[param(min_length = 1, max_length = 255, pattern = "^[^\\x00]+$")]
    database_name: Option<String>,
    /// avg_size_mb (default), max_size_mb, size_change_mb, size_change_percent,
    /// avg_data_size_mb or avg_log_size_mb.
    #[param(
        pattern = "^(avg_size_mb|max_size_mb|size_change_mb|size_change_percent|avg_data_size_mb|avg_log_size_mb)$"
    )]
    metric: Option<String>,
}

/// Default window length in days by period type.
fn default_days(period_type: PeriodType) -> i64 {
    match period_type {
        PeriodType::Daily => 31,
        PeriodType::Weekly => 84,
        PeriodType::Monthly => 365,
        PeriodType::Quarterly => 730,
        PeriodType::Yearly => 1826,
    }
}

/// The `database_name` filter: at most 255 characters, like the names stored.
fn read_database_name(parameters: &mut Parameters) -> Option<String> {
    let name = parameters.one::<String>("database_name")?;
    if name.chars().count() > capstats_capacity_model::DATABASE_NAME_MAX_CHARACTERS {
        parameters.problem("database_name", "too_long", "at most 255 characters");
    }
    Some(name)
}

/// Reads the filters shared by lists and summaries, problems included.
fn read_filter(
    parameters: &mut Parameters,
    today: NaiveDate,
    database_level: bool,
) -> AggregateFilter {
    let period_type = parameters
        .one::<PeriodType>("period_type")
        .unwrap_or(PeriodType::Daily);
    let instance_ids: Vec<InstanceId> = parameters
        .many::<i64>("instance_id")
        .into_iter()
        .map(InstanceId)
        .collect();
    let db_types: Vec<DbType> = parameters.many::<DbType>("db_type");
    let database_name = if database_level {
        read_database_name(parameters)
    } else {
        None
    };
    let start = parameters.date("start_date");
    let end = parameters.date("end_date");
    let time_range = parameters.one::<i64>("time_range");
    if let Some(days) = time_range
        && !(1..=3660).contains(&days)
    {
        parameters.problem(
            "time_range",
            "out_of_range",
            format!("{days} is not between 1 and 3660 days"),
        );
    }
    let days = time_range
        .filter(|days| (1..=3660).contains(days))
        .unwrap_or_else(|| default_days(period_type));
    let span = Days::new(u64::try_from(days - 1).unwrap_or_default());
    let (start, end) = match (start, end) {
        (Some(start), Some(end)) => {
            if time_range.is_some() {
                parameters.problem(
                    "time_range",
                    "conflict",
                    "cannot be combined with both start_date and end_date",
                );
            }
            (start, end)
        }
        (Some(start), None) => (
            start,
            if time_range.is_some() {
                start + span
            } else {
                today
            },
        ),
        (None, Some(end)) => (end - span, end),
        (None, None) => (today - span, today),
    };
    if start > end {
        parameters.problem(
            "start_date",
            "start_after_end",
            format!("the start {start} lies after the end {end}"),
        );
    }
    AggregateFilter {
        period_type,
        start,
        end,
        instance_ids,
        db_types,
        database_name,
    }
}

/// The filter of a list or summary request, checked: every invalid parameter (those `more`
/// reads included) answers at once, then unknown instance ids answer 404.
async fn checked_filter<T>(
    state: &State,
    request: &HttpRequest,
    database_level: bool,
    more: impl FnOnce(&mut Parameters) -> T,
) -> Result<(AggregateFilter, T), ApiError> {
    let mut parameters = Parameters::of(request);
    let mut filter = read_filter(&mut parameters, state.today(), database_level);
    let database_id = if database_level {
        parameters.one::<i64>("database_id")
    } else {
        None
    };
    let include_inactive = parameters.one::<bool>("include_inactive").unwrap_or(true);
    let extra = more(&mut parameters);
    parameters.finish()?;
    require_instances(state, &filter.instance_ids).await?;
    if !include_inactive {
        keep_active_instances(state, &mut filter.instance_ids).await?;
    }
    if let Some(id) = database_id {
        restrict_to_database(state, &mut filter, id).await?;
    }
    Ok((filter, extra))
}

/// Narrows `filter` to the inventory's database `id` (the reference's `database_id`): its
/// instance and name. An unknown id answers 404; an instance_id or database_name naming
/// another database answers 400.
async fn restrict_to_database(
    state: &State,
    filter: &mut AggregateFilter,
    id: i64,
) -> Result<(), ApiError> {
    let database = capstats_store::run_blocking(&state.store, move |connection| {
        capstats_store::instances::find_database(connection, id)
    })
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("database {id}")))?;
    let instance = InstanceId(database.instance_id);
    if !filter.instance_ids.is_empty() && !filter.instance_ids.contains(&instance) {
        return Err(ApiError::field(
            "database_id",
            "conflict",
            format!(
                "database {id} is on instance {}, which instance_id leaves out",
                database.instance_id
            ),
        ));
    }
    if filter
        .database_name
        .as_ref()
        .is_some_and(|name| *name != database.database_name)
    {
        return Err(ApiError::field(
            "database_id",
            "conflict",
            format!(
                "database {id} is `{}`, not the database_name asked for",
                database.database_name
            ),
        ));
    }
    filter.instance_ids = vec![instance];
    filter.database_name = Some(database.database_name);
    Ok(())
}

/// Rows a `get_all=true` list answers at most.
const GET_ALL_LIMIT: i64 = 10_000;

/// A list's page, or every row up to [`GET_ALL_LIMIT`] with `get_all=true` (`true` second).
fn page_or_everything(parameters: &mut Parameters) -> (PageRequest, bool) {
    if parameters.one::<bool>("get_all") == Some(true) {
        for name in ["page", "limit"] {
            if parameters.one::<String>(name).is_some() {
                parameters.problem(name, "conflict", "cannot be combined with get_all=true");
            }
        }
        (
            PageRequest {
                page: 1,
                limit: GET_ALL_LIMIT,
            },
            true,
        )
    } else {
        (parameters.page(), false)
    }
}

/// The list answer of `items` out of `total` for `page`.
fn list_of<T>(items: Vec<T>, total: i64, (page, everything): (PageRequest, bool)) -> Paginated<T> {
    if everything {
        Paginated::everything(items, total)
    } else {
        Paginated::new(items, total, page.page, page.limit)
    }
}

/// Unknown instance ids answer 404.
async fn require_instances(state: &State, ids: &[InstanceId]) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids = ids.to_vec();
    let missing = capstats_store::run_blocking(&state.store, move |connection| {
        capstats_store::instances::missing_ids(connection, &ids)
    })
    .await?;
    match missing.first() {
        None => Ok(()),
        Some(id) => Err(ApiError::NotFound(format!("instance {id}"))),
    }
}

/// `include_inactive=false`: narrows `instance_ids` to the active, non-deleted instances
/// among them, or to every such instance when none were asked for. An empty list means every
/// instance to the filter, so when no active instance is left it holds the id 0, which no
/// instance has (ids start at 1).
async fn keep_active_instances(
    state: &State,
    instance_ids: &mut Vec<InstanceId>,
) -> Result<(), ApiError> {
    let active: std::collections::BTreeSet<InstanceId> =
        capstats_store::run_blocking(&state.store, capstats_store::instances::active_instances)
            .await?
            .into_iter()
            .map(|instance| instance.id)
            .collect();
    let kept: Vec<InstanceId> = if instance_ids.is_empty() {
        active.into_iter().collect()
    } else {
        instance_ids
            .iter()
            .copied()
            .filter(|id| active.contains(id))
            .collect()
    };
    *instance_ids = if kept.is_empty() {
        vec![InstanceId(0)]
    } else {
        kept
    };
    Ok(())
}

/// Instance-level aggregates, newest first: by period start, then instance id, both
/// descending.
#[utoipa::path(
    tag = "capacity",
    operation_id = "list_instance_aggregates",
    params(ScopeQuery, WindowQuery, ListQuery),
    responses(
        (status = 200, description = "One page of aggregates", body = Envelope<Paginated<InstanceAggregateItem>>),
        (status = 400, description = "Invalid parameters, each listed in `errors`", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "An instance_id does not exist", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/instances")]
pub async fn list_instances(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (filter, paging) = checked_filter(&state, &request, false, page_or_everything).await?;
    let page = paging.0;
    let (rows, total) = capstats_store::run_blocking(&state.store, move |connection| {
        aggregates::list_instance_aggregates(connection, &filter, page)
    })
    .await?;
    let items = rows
        .into_iter()
        .map(|(aggregate, instance)| InstanceAggregateItem::new(aggregate, instance))
        .collect();
    Ok(HttpResponse::Ok().json(Envelope::new(
        "instance aggregates",
        list_of(items, total, paging),
    )))
}

/// Database-level aggregates, newest first: by period start, then instance id, then database
/// name, all descending.
#[utoipa::path(
    tag = "capacity",
    operation_id = "list_database_aggregates",
    params(ScopeQuery, WindowQuery, DatabaseQuery, ListQuery),
    responses(
        (status = 200, description = "One page of aggregates", body = Envelope<Paginated<DatabaseAggregateItem>>),
        (status = 400, description = "Invalid parameters, each listed in `errors`", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "An instance_id does not exist", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/databases")]
pub async fn list_databases(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (filter, paging) = checked_filter(&state, &request, true, page_or_everything).await?;
    let page = paging.0;
    let (rows, total) = capstats_store::run_blocking(&state.store, move |connection| {
        aggregates::list_database_aggregates(connection, &filter, page)
    })
    .await?;
    let items = rows
        .into_iter()
        .map(|(aggregate, instance)| DatabaseAggregateItem::new(aggregate, instance))
        .collect();
    Ok(HttpResponse::Ok().json(Envelope::new(
        "database aggregates",
        list_of(items, total, paging),
    )))
}

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
        (status = 400, description = "Invalid parameters, each listed in `errors`", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "An instance_id does not exist", body = ErrorEnvelope),
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
    let window = Window {
        start_date: filter.start,
        end_date: filter.end,
    };
    let totals = capstats_store::run_blocking(&state.store, move |connection| {
        aggregates::instance_totals(connection, &filter)
    })
    .await?;
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
    Ok(HttpResponse::Ok().json(Envelope::new(
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
                largest,
            },
        },
    )))
}

/// Summary cards of the databases page: the latest aggregate (of period_type) of each database
/// in the window, summed; growth is the sum of their size changes against the sizes before.
#[utoipa::path(
    tag = "capacity",
    params(ScopeQuery, WindowQuery, DatabaseQuery),
    responses(
        (status = 200, description = "The summary", body = Envelope<Summary<DatabasesSummary>>),
        (status = 400, description = "Invalid parameters, each listed in `errors`", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "An instance_id does not exist", body = ErrorEnvelope),
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
    let totals = capstats_store::run_blocking(&state.store, move |connection| {
        aggregates::database_totals(connection, &filter)
    })
    .await?;
    let largest = totals
        .largest
        .map(|(instance, database_name, size_mb)| NamedSize {
            instance_id: instance.id.0,
            instance_name: instance.name,
            database_name: Some(database_name),
            size_mb,
        });
    Ok(HttpResponse::Ok().json(Envelope::new(
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
                largest,
            },
        },
    )))
}

async fn series(
    state: State,
    request: HttpRequest,
    level: AggregationLevel,
) -> Result<HttpResponse, ApiError> {
    let mut parameters = Parameters::of(&request);
    let database_level = level == AggregationLevel::Database;
    let period_type = parameters
        .one::<PeriodType>("period_type")
        .unwrap_or(PeriodType::Daily);
    let periods = parameters.bounded("periods", 1, 366, 14);
    let top = parameters.bounded("top", 1, 100, 10);
    let end = parameters.date("end_date").unwrap_or_else(|| state.today());
    let metrics = MetricColumn::of_level(level);
    let metric_name = parameters
        .one::<String>("metric")
        .unwrap_or_else(|| metrics[0].name().to_owned());
    let metric = MetricColumn::parse(level, &metric_name);
    if metric.is_none() {
        let known: Vec<&str> = metrics.iter().map(|metric| metric.name()).collect();
        parameters.problem(
            "metric",
            "invalid_choice",
            format!(
                "unknown metric `{metric_name}`; expected one of {}",
                known.join(", ")
            ),
        );
    }
    let instance_ids: Vec<InstanceId> = parameters
        .many::<i64>("instance_id")
        .into_iter()
        .map(InstanceId)
        .collect();
    let db_types: Vec<DbType> = parameters.many::<DbType>("db_type");
    let database_name = if database_level {
        read_database_name(&mut parameters)
    } else {
        None
    };
    let include_inactive = parameters.one::<bool>("include_inactive").unwrap_or(true);
    parameters.finish()?;
    let metric = metric.expect("checked above");
    let mut instance_ids = instance_ids;
    require_instances(&state, &instance_ids).await?;
    if !include_inactive {
        keep_active_instances(&state, &mut instance_ids).await?;
    }

    let last = Period::containing(period_type, end);
    let mut labels = vec![last];
    while labels.len() < periods as usize {
        let earlier = labels[labels.len() - 1].previous();
        labels.push(earlier);
    }
    labels.reverse();
    let filter = AggregateFilter {
        period_type,
        start: labels[0].start(),
        end: last.start(),
        instance_ids,
        db_types,
        database_name,
    };
    let ranked = capstats_store::run_blocking(&state.store, move |connection| {
        aggregates::series(connection, level, metric, &filter, top)
    })
    .await?;
    let position: BTreeMap<NaiveDate, usize> = labels
        .iter()
        .enumerate()
        .map(|(index, period)| (period.start(), index))
        .collect();
    // The points arrive line by line in rank order.
    let mut lines: Vec<SeriesLine> = Vec::new();
    for point in ranked.points {
        let same_line = lines.last().is_some_and(|line| {
            line.instance_id == point.instance.id.0 && line.database_name == point.database_name
        });
        if !same_line {
            lines.push(SeriesLine {
                instance_id: point.instance.id.0,
                instance_name: point.instance.name,
                db_type: point.instance.db_type,
                database_name: point.database_name,
                values: vec![None; labels.len()],
            });
        }
        let line = lines.last_mut().expect("pushed above");
        if let Some(index) = position.get(&point.period_start) {
            line.values[*index] = point.value;
        }
    }
    let total_series = ranked.total_lines;
    Ok(HttpResponse::Ok().json(Envelope::new(
        "series",
        Series {
            period_type,
            metric: metric_name,
            unit: metric.unit().to_owned(),
            labels: labels.iter().map(Period::start).collect(),
            series: lines,
            top,
            total_series,
            truncated: total_series > top,
        },
    )))
}

/// Chart data per instance: the last `periods` periods, one line per instance (the `top`
/// largest), gaps where a period has no aggregate.
#[utoipa::path(
    tag = "capacity",
    params(ScopeQuery, SeriesQuery, InstanceMetricQuery),
    responses(
        (status = 200, description = "The series", body = Envelope<Series>),
        (status = 400, description = "Invalid parameters (an unknown metric, more than 366 periods, …)", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "An instance_id does not exist", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/instances/series")]
pub async fn instances_series(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    series(state, request, AggregationLevel::Instance).await
}

/// Chart data per database: the last `periods` periods, one line per database (the `top`
/// largest), gaps where a period has no aggregate.
#[utoipa::path(
    tag = "capacity",
    params(ScopeQuery, SeriesQuery, DatabaseMetricQuery),
    responses(
        (status = 200, description = "The series", body = Envelope<Series>),
        (status = 400, description = "Invalid parameters (an unknown metric, more than 366 periods, …)", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "An instance_id does not exist", body = ErrorEnvelope),
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/databases/series")]
pub async fn databases_series(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    series(state, request, AggregationLevel::Database).await
}
