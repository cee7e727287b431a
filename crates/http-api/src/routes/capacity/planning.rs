//! Capacity planning: forecasts of when keys fill up, and the growth leaderboard.

use capstats_services::planning::{self, ForecastOptions, GrowthSort, SortDirection};

use super::*;
use crate::dto::{ForecastItem, GrowthItem};
use crate::export::FormatQuery;
use crate::remembered;

/// The keys a forecast covers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct KeysQuery {
    /// Only these instances (repeatable). Unknown ids answer 404.
    #[param(style = Form, explode)]
    instance_id: Option<Vec<i64>>,
    /// Only instances of these engines (repeatable): mysql, postgresql, sqlserver, oracle.
    #[param(style = Form, explode, value_type = Option<Vec<DbType>>)]
    db_type: Option<Vec<String>>,
    /// `false`: only instances that are active (and not deleted).
    include_inactive: Option<bool>,
}

/// How far forecasts look, from when, and for which keys.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct ForecastQuery {
    /// Days ahead of `as_of` to project to, 1–3660 (default 30). A projection is published
    /// for at most half the days its points cover.
    #[param(minimum = 1, maximum = 3660)]
    horizon_days: Option<i64>,
    /// The day the forecasts are made on (default today): the line is fitted to the daily
    /// sizes of the `CAPSTATS_FORECAST_WINDOW_DAYS` days ending then.
    as_of: Option<NaiveDate>,
    /// `true`: only the keys with a capacity limit (on the instance, or on the database in
    /// the inventory), the only ones that can fill up; what "fewest days until full" asks
    /// for, at one fit per limited key instead of one per key. Default false: every key.
    with_capacity_limit: Option<bool>,
}

/// The window and order of the growth leaderboard.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct GrowthQuery {
    /// How many periods of `period_type` the window has, 1–366 (default 12), ending with the
    /// period containing end_date.
    #[param(minimum = 1, maximum = 366)]
    periods: Option<i64>,
    /// A day of the window's last period (default today); also the day the forecasts are
    /// made on.
    end_date: Option<NaiveDate>,
    /// growth_mb (default), growth_percent or days_until_full.
    #[param(pattern = "^(growth_mb|growth_percent|days_until_full)$")]
    sort: Option<String>,
    /// desc (top growers; the default, but asc for days_until_full) or asc (top shrinkers,
    /// fewest days left). Keys without a value for the sort come last either way; ties by
    /// instance id, then database name.
    #[param(pattern = "^(asc|desc)$")]
    order: Option<String>,
    /// Days ahead the items' forecasts project to, 1–3660 (default 30).
    #[param(minimum = 1, maximum = 3660)]
    horizon_days: Option<i64>,
}

/// Paging of the planning lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct PageQuery {
    /// Page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    page: Option<i64>,
    /// Items per page, 1–200 (default 20); with `format=csv`, the first `limit` keys of
    /// the ranking (every key without it).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// `horizon_days`, 1–3660 (default 30).
fn read_horizon(parameters: &mut Parameters) -> u32 {
    let days = parameters.bounded(
        "horizon_days",
        1,
        i64::from(planning::MAXIMUM_HORIZON_DAYS),
        30,
    );
    u32::try_from(days).unwrap_or(30)
}

/// How a planning list answers: one page of JSON, or its first `limit` keys (every key
/// without one) as CSV.
enum Paging {
    Page(aggregates::PageRequest),
    Csv(aggregates::PageRequest),
}

/// Reads how a planning list answers (`format`, `page`, `limit`).
fn read_paging(parameters: &mut Parameters, request: &HttpRequest) -> Paging {
    if crate::export::wants_csv(parameters, request) {
        Paging::Csv(crate::export::ranked_limit(parameters))
    } else {
        Paging::Page(parameters.page())
    }
}

/// One page of `items` out of all of them.
fn page_of<T>(items: Vec<T>, page: aggregates::PageRequest) -> Paginated<T> {
    let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
    Paginated::new(page.of(items), total, page.page, page.limit)
}

async fn forecasts(
    state: State,
    request: HttpRequest,
    level: AggregationLevel,
) -> Result<HttpResponse, ApiError> {
    let read_as_of = |parameters: &mut Parameters, today: NaiveDate, _| {
        let as_of = parameters.date("as_of").unwrap_or(today);
        (as_of, as_of)
    };
    let (filter, (horizon_days, paging, selection)) = checked_filter_over(
        &state,
        &request,
        level == AggregationLevel::Database,
        read_as_of,
        |parameters| {
            let selection = planning::KeySelection::of_capacity_limit(
                parameters.one::<bool>("with_capacity_limit") == Some(true),
            );
            (
                read_horizon(parameters),
                read_paging(parameters, &request),
                selection,
            )
        },
    )
    .await?;
    let options = ForecastOptions::new(&state.settings, filter.end, horizon_days);
    let as_of = options.as_of;
    let page = match paging {
        Paging::Page(page) => page,
        Paging::Csv(first) => {
            let name = capstats_services::export::forecast_file_name(level, as_of, horizon_days);
            return crate::export::streamed(&state, name, move |connection, output| {
                let found = planning::forecasts(connection, level, &filter, selection, &options)?;
                capstats_services::export::forecasts(first.of(found), as_of, horizon_days, output)
            })
            .await;
        }
    };
    let key = remembered::key(&request, state.today(), &(&filter, &options, &selection));
    let read = move |connection: &mut capstats_store::PgConnection| {
        planning::forecasts(connection, level, &filter, selection.clone(), &options)
    };
    remembered::answer(&state, key, read, |found| {
        let items = found
            .into_iter()
            .map(|found| ForecastItem::new(found, as_of, horizon_days))
            .collect();
        Envelope::new("forecasts", page_of(items, page))
    })
    .await
}

/// Forecasts per instance: a line fitted to each instance's daily total size over the
/// forecast window, its projection at `horizon_days` and the days until it reaches the
/// instance's `capacity_limit_mb`. Fewest days until full first (those that never fill up
/// last), then by instance id. A projection is withheld, with the reason, when the fit cannot
/// be trusted (docs/forecasting.md).
#[utoipa::path(
    tag = "capacity",
    params(KeysQuery, ForecastQuery, PageQuery, FormatQuery),
    responses(
        (status = 200, description = "One page of forecasts, or the first `limit` (every one without it) as CSV", content(
            (Envelope<Paginated<ForecastItem>> = "application/json"),
            (String = "text/csv"),
        )),
        InvalidParameters,
        NotSignedIn,
        UnknownInstance,
        TooManyExports,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/instances/forecast")]
pub async fn instances_forecast(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    forecasts(state, request, AggregationLevel::Instance).await
}

/// Forecasts per database: a line fitted to each database's daily size over the forecast
/// window, its projection at `horizon_days` and the days until it reaches the database's
/// `capacity_limit_mb`. Fewest days until full first, then by instance id and database name.
#[utoipa::path(
    tag = "capacity",
    params(KeysQuery, DatabaseQuery, ForecastQuery, PageQuery, FormatQuery),
    responses(
        (status = 200, description = "One page of forecasts, or the first `limit` (every one without it) as CSV", content(
            (Envelope<Paginated<ForecastItem>> = "application/json"),
            (String = "text/csv"),
        )),
        InvalidParameters,
        NotSignedIn,
        (status = 404, description = "An instance_id or database_id does not exist", body = ErrorEnvelope),
        TooManyExports,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/databases/forecast")]
pub async fn databases_forecast(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    forecasts(state, request, AggregationLevel::Database).await
}

/// `sort` and `order` of the growth leaderboard.
fn read_growth_order(parameters: &mut Parameters) -> (GrowthSort, SortDirection) {
    let sort = match parameters.one::<String>("sort").as_deref() {
        None | Some("growth_mb") => GrowthSort::GrowthMb,
        Some("growth_percent") => GrowthSort::GrowthPercent,
        Some("days_until_full") => GrowthSort::DaysUntilFull,
        Some(other) => {
            parameters.problem(
                "sort",
                "invalid_choice",
                format!(
                    "unknown sort `{other}`; expected growth_mb, growth_percent or days_until_full"
                ),
            );
            GrowthSort::GrowthMb
        }
    };
    let direction = match parameters.one::<String>("order").as_deref() {
        None => sort.default_direction(),
        Some("desc") => SortDirection::Descending,
        Some("asc") => SortDirection::Ascending,
        Some(other) => {
            parameters.problem(
                "order",
                "invalid_choice",
                format!("unknown order `{other}`; expected asc or desc"),
            );
            SortDirection::Descending
        }
    };
    (sort, direction)
}

async fn growth(
    state: State,
    request: HttpRequest,
    level: AggregationLevel,
) -> Result<HttpResponse, ApiError> {
    // The forecasts are made on the window's last day asked for.
    let mut as_of = state.today();
    let read_window = |parameters: &mut Parameters, today: NaiveDate, period_type| {
        let window = PeriodWindow::read(parameters, today, period_type, 12);
        as_of = window.end;
        window.starts()
    };
    let (filter, (order, horizon_days, paging)) = checked_filter_over(
        &state,
        &request,
        level == AggregationLevel::Database,
        read_window,
        |parameters| {
            (
                read_growth_order(parameters),
                read_horizon(parameters),
                read_paging(parameters, &request),
            )
        },
    )
    .await?;
    let options = ForecastOptions::new(&state.settings, as_of, horizon_days);
    let as_of = options.as_of;
    let page = match paging {
        Paging::Page(page) => page,
        Paging::Csv(first) => {
            let name = capstats_services::export::growth_file_name(level, &filter);
            return crate::export::streamed(&state, name, move |connection, output| {
                let ranked = planning::growth_leaderboard(
                    connection, level, &filter, order, &options, first,
                )?;
                capstats_services::export::growth(ranked.entries, as_of, horizon_days, output)
            })
            .await;
        }
    };
    let key = remembered::key(&request, state.today(), &(&filter, &options));
    let read = move |connection: &mut capstats_store::PgConnection| {
        planning::growth_leaderboard(connection, level, &filter, order, &options, page)
    };
    remembered::answer(&state, key, read, |ranked| {
        let items = ranked
            .entries
            .into_iter()
            .map(|entry| GrowthItem::new(entry, as_of, horizon_days))
            .collect();
        Envelope::new(
            "growth",
            Paginated::new(items, ranked.total, page.page, page.limit),
        )
    })
    .await
}

/// The growth leaderboard per instance: every instance of the filter with an aggregate in
/// the window (the last `periods` periods), ranked by growth of its total size from its first
/// to its last period in the window (MB or percent) or by days until full, either way, each
/// with its forecast and whether its last period is partial.
#[utoipa::path(
    tag = "capacity",
    params(ScopeQuery, GrowthQuery, PageQuery, FormatQuery),
    responses(
        (status = 200, description = "One page of the leaderboard, or its first `limit` keys (every key without it) as CSV", content(
            (Envelope<Paginated<GrowthItem>> = "application/json"),
            (String = "text/csv"),
        )),
        InvalidParameters,
        NotSignedIn,
        UnknownInstance,
        TooManyExports,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/instances/growth")]
pub async fn instances_growth(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    growth(state, request, AggregationLevel::Instance).await
}

/// The growth leaderboard per database: every database of the filter with an aggregate in
/// the window, ranked by growth of its average size (MB or percent) or by days until full,
/// either way, each with its forecast and whether its last period is partial.
#[utoipa::path(
    tag = "capacity",
    params(ScopeQuery, DatabaseQuery, GrowthQuery, PageQuery, FormatQuery),
    responses(
        (status = 200, description = "One page of the leaderboard, or its first `limit` keys (every key without it) as CSV", content(
            (Envelope<Paginated<GrowthItem>> = "application/json"),
            (String = "text/csv"),
        )),
        InvalidParameters,
        NotSignedIn,
        (status = 404, description = "An instance_id or database_id does not exist", body = ErrorEnvelope),
        TooManyExports,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/databases/growth")]
pub async fn databases_growth(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    growth(state, request, AggregationLevel::Database).await
}
