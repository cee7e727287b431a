//! The capacity lists: one page of aggregates, or every row with `get_all=true`.

use super::*;

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
    let today = state.today();
    let items = rows
        .into_iter()
        .map(|(aggregate, instance)| InstanceAggregateItem::new(aggregate, instance, today))
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
    let today = state.today();
    let items = rows
        .into_iter()
        .map(|(aggregate, instance)| DatabaseAggregateItem::new(aggregate, instance, today))
        .collect();
    Ok(HttpResponse::Ok().json(Envelope::new(
        "database aggregates",
        list_of(items, total, paging),
    )))
}
