//! Chart series: the plotted lines of a metric over the last periods.

use capstats_aggregation_core::calendar::completeness;

use super::*;

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
    let end = parameters.date("end_date").unwrap_or_else(|| state.today());
    let labels = read_period_window(&mut parameters, end, period_type, 14);
    let top = parameters.bounded("top", 1, 100, 10);
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

    let filter = AggregateFilter {
        period_type,
        start: labels[0].start(),
        end: labels[labels.len() - 1].start(),
        instance_ids,
        db_types,
        database_name,
    };
    let ranked = capstats_store::run_blocking(&state.store, move |connection| {
        aggregates::series(connection, level, metric, &filter, top)
    })
    .await?;
    let today = state.today();
    // A point's completeness from the period's and its own sample count (the same rule as
    // `capstats_aggregation_core::calendar::completeness`).
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
            line.partial[*index] =
                point.data_count < expected_counts[*index] || labels[*index].end() >= today;
            line.data_counts[*index] = Some(point.data_count);
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
            expected_counts,
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
