//! Chart series: the plotted lines of a metric over the last periods.

use capstats_aggregation_core::calendar::completeness;

use super::*;
use crate::export::FormatQuery;
use crate::remembered;

/// The `metric` of `level` (its first by default) and its name; an unknown one is recorded
/// as a problem.
fn read_metric(
    parameters: &mut Parameters,
    level: AggregationLevel,
) -> Option<(MetricColumn, String)> {
    let metrics = MetricColumn::of_level(level);
    let name = parameters
        .one::<String>("metric")
        .unwrap_or_else(|| metrics[0].name().to_owned());
    let metric = MetricColumn::parse(level, &name);
    if metric.is_none() {
        let known: Vec<&str> = metrics.iter().map(|metric| metric.name()).collect();
        parameters.problem(
            "metric",
            "invalid_choice",
            format!(
                "unknown metric `{name}`; expected one of {}",
                known.join(", ")
            ),
        );
    }
    metric.map(|metric| (metric, name))
}

async fn series(
    state: State,
    request: HttpRequest,
    level: AggregationLevel,
) -> Result<HttpResponse, ApiError> {
    let mut window = None;
    let read_window = |parameters: &mut Parameters, today: NaiveDate, period_type| {
        let read = PeriodWindow::read(parameters, today, period_type, 14);
        let starts = read.starts();
        window = Some(read);
        starts
    };
    let (filter, (top, metric, csv)) = checked_filter_over(
        &state,
        &request,
        level == AggregationLevel::Database,
        read_window,
        |parameters| {
            (
                parameters.bounded("top", 1, 100, 10),
                read_metric(parameters, level),
                crate::export::wants_csv(parameters, &request),
            )
        },
    )
    .await?;
    let labels = window.expect("read by checked_filter_over").periods;
    let (metric, metric_name) = metric.expect("checked_filter_over refused an unknown metric");
    let period_type = filter.period_type;
    let today = state.today();
    if csv {
        let name = capstats_services::export::series_file_name(level, metric, &filter);
        return crate::export::streamed(&state, name, move |connection, output| {
            let ranked = aggregates::series(connection, level, metric, &filter, top)?;
            capstats_services::export::series(ranked, metric, period_type, output)
        })
        .await;
    }
    let key = remembered::key(&request, today, &filter);
    let read = move |connection: &mut capstats_store::PgConnection| {
        aggregates::series(connection, level, metric, &filter, top)
    };
    remembered::answer(&state, key, read, |ranked| {
        series_of(
            ranked,
            &labels,
            today,
            period_type,
            metric,
            metric_name,
            top,
        )
    })
    .await
}

/// The chart of `ranked` over the periods `labels`, as of `today`.
fn series_of(
    ranked: aggregates::RankedSeries,
    labels: &[Period],
    today: NaiveDate,
    period_type: PeriodType,
    metric: MetricColumn,
    metric_name: String,
    top: i64,
) -> Envelope<Series> {
    // A label's expected days, as of today: the days the rows of its period are judged on.
    let expected_counts: Vec<i64> = labels
        .iter()
        .map(|period| completeness(period, 0, today).expected_count)
        .collect();
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
                partial: vec![false; labels.len()],
                data_counts: vec![None; labels.len()],
            });
        }
        let line = lines.last_mut().expect("pushed above");
        if let Some(index) = position.get(&point.period_start) {
            line.values[*index] = point.value;
            line.partial[*index] = point.completeness.is_partial;
            line.data_counts[*index] = Some(point.data_count);
        }
    }
    let total_series = ranked.total_lines;
    Envelope::new(
        "series",
        Series {
            period_type,
            metric: metric_name,
            unit: metric.unit().to_owned(),
            labels: labels.iter().map(Period::start).collect(),
            expected_counts,
            series: lines,
            top,
            total_series,
            truncated: total_series > top,
        },
    )
}

/// Chart data per instance: the last `periods` periods, one line per instance (the `top`
/// largest), gaps where a period has no aggregate.
#[utoipa::path(
    tag = "capacity",
    params(ScopeQuery, SeriesQuery, InstanceMetricQuery, FormatQuery),
    responses(
        (status = 200, description = "The series, or its points as CSV (one row per line and period, in rank order)", content(
            (Envelope<Series> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Invalid parameters (an unknown metric, more than 366 periods, …)", body = ErrorEnvelope),
        NotSignedIn,
        UnknownInstance,
        TooManyExports,
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
    params(ScopeQuery, SeriesQuery, DatabaseMetricQuery, FormatQuery),
    responses(
        (status = 200, description = "The series, or its points as CSV (one row per line and period, in rank order)", content(
            (Envelope<Series> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Invalid parameters (an unknown metric, more than 366 periods, …)", body = ErrorEnvelope),
        NotSignedIn,
        UnknownInstance,
        TooManyExports,
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
