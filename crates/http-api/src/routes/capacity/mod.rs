//! Capacity reads: aggregates per instance and per database (`lists`), their summaries
//! (`summaries`), chart series (`series`), and the growth leaderboard and forecasts
//! (`planning`); here, the parameters they share and the filter they read from them.

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
use crate::error_responses::{InvalidParameters, NotSignedIn, TooManyExports, UnknownInstance};
use crate::params::Parameters;
use crate::state::State;

/// Which instances and period type every capacity read covers (lists, summaries, series,
/// growth).
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
    /// database_count, avg_size_mb, yoy_change_mb or yoy_change_percent (against the same
    /// period a year earlier; weekly and longer periods).
    #[param(
        pattern = "^(total_size_mb|total_size_change_mb|total_size_change_percent|database_count|avg_size_mb|yoy_change_mb|yoy_change_percent)$"
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
    /// avg_data_size_mb, avg_log_size_mb, yoy_change_mb or yoy_change_percent (against the
    /// same period a year earlier; weekly and longer periods).
    #[param(
        pattern = "^(avg_size_mb|max_size_mb|size_change_mb|size_change_percent|avg_data_size_mb|avg_log_size_mb|yoy_change_mb|yoy_change_percent)$"
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

/// Reads the window of lists and summaries: `start_date`, `end_date` and `time_range`,
/// problems included.
fn read_date_window(
    parameters: &mut Parameters,
    today: NaiveDate,
    period_type: PeriodType,
) -> (NaiveDate, NaiveDate) {
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
    (start, end)
}

/// The window of the series and the growth leaderboard: the last `periods` periods (1–366,
/// default `default_periods`) of `period_type`, ending with the one containing `end_date`
/// (default `today`).
struct PeriodWindow {
    /// The periods, oldest first.
    periods: Vec<Period>,
    /// The day asked for (`end_date`, or today).
    end: NaiveDate,
}

impl PeriodWindow {
    fn read(
        parameters: &mut Parameters,
        today: NaiveDate,
        period_type: PeriodType,
        default_periods: i64,
    ) -> Self {
        let end = parameters.date("end_date").unwrap_or(today);
        let count = parameters.bounded("periods", 1, 366, default_periods);
        Self {
            periods: Period::ending_with(period_type, end, usize::try_from(count).unwrap_or(1)),
            end,
        }
    }

    /// The first and last period start, as an [`AggregateFilter`] takes them.
    fn starts(&self) -> (NaiveDate, NaiveDate) {
        (
            self.periods[0].start(),
            self.periods[self.periods.len() - 1].start(),
        )
    }
}

/// The filter of a capacity request, checked: its keys (instances, engines, one database,
/// active or not) and the window `window` reads for the period type; every invalid
/// parameter (those `window` and `more` read included) answers at once, then unknown
/// instance or database ids answer 404.
async fn checked_filter_over<T>(
    state: &State,
    request: &HttpRequest,
    database_level: bool,
    window: impl FnOnce(&mut Parameters, NaiveDate, PeriodType) -> (NaiveDate, NaiveDate),
    more: impl FnOnce(&mut Parameters) -> T,
) -> Result<(AggregateFilter, T), ApiError> {
    let mut parameters = Parameters::of(request);
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
        read_database_name(&mut parameters)
    } else {
        None
    };
    let (start, end) = window(&mut parameters, state.today(), period_type);
    let database_id = if database_level {
        parameters.one::<i64>("database_id")
    } else {
        None
    };
    let include_inactive = parameters.one::<bool>("include_inactive").unwrap_or(true);
    let extra = more(&mut parameters);
    parameters.finish()?;
    let mut filter = AggregateFilter {
        period_type,
        start,
        end,
        instance_ids,
        db_types,
        database_name,
    };
    require_instances(state, &filter.instance_ids).await?;
    if !include_inactive {
        keep_active_instances(state, &mut filter.instance_ids).await?;
    }
    if let Some(id) = database_id {
        restrict_to_database(state, &mut filter, id).await?;
    }
    Ok((filter, extra))
}

/// The filter of a list or summary request (its window of dates), checked as
/// [`checked_filter_over`] does.
async fn checked_filter<T>(
    state: &State,
    request: &HttpRequest,
    database_level: bool,
    more: impl FnOnce(&mut Parameters) -> T,
) -> Result<(AggregateFilter, T), ApiError> {
    checked_filter_over(state, request, database_level, read_date_window, more).await
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

mod lists;
mod planning;
mod series;
mod summaries;

pub use lists::{list_databases, list_instances};
pub use planning::{databases_forecast, databases_growth, instances_forecast, instances_growth};
pub use series::{databases_series, instances_series};
pub use summaries::{databases_summary, instances_summary};
