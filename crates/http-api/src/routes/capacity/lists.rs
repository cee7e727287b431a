//! The capacity lists: one page of aggregates, or every row with `get_all=true`.

use super::*;
use crate::export::FormatQuery;
use crate::remembered;

/// Rows a `get_all=true` list answers at most.
const GET_ALL_LIMIT: i64 = 10_000;

/// How a list answers: one page of JSON (every row up to [`GET_ALL_LIMIT`] with
/// `get_all=true`, `true` second), or every row of the filter as CSV.
enum Listing {
    Page(PageRequest, bool),
    Csv,
}

/// Reads how a list answers (`format`, `page`, `limit`, `get_all`).
fn read_listing(parameters: &mut Parameters, request: &HttpRequest) -> Listing {
    if crate::export::wants_csv(parameters, request) {
        crate::export::refuse_with_csv(parameters, &["limit", "get_all"]);
        return Listing::Csv;
    }
    if parameters.one::<bool>("get_all") == Some(true) {
        for name in ["page", "limit"] {
            if parameters.one::<String>(name).is_some() {
                parameters.problem(name, "conflict", "cannot be combined with get_all=true");
            }
        }
        Listing::Page(
            PageRequest {
                page: 1,
                limit: GET_ALL_LIMIT,
            },
            true,
        )
    } else {
        Listing::Page(parameters.page(), false)
    }
}

/// Every row of `level`'s list matching `filter`, as a CSV file.
async fn export_list(
    state: &State,
    level: AggregationLevel,
    filter: AggregateFilter,
) -> Result<HttpResponse, ApiError> {
    let name = capstats_services::export::aggregates_file_name(level, &filter);
    let maximum_rows = state.settings.export_maximum_rows;
    crate::export::streamed(state, name, move |connection, output| {
        capstats_services::export::aggregates(connection, level, &filter, maximum_rows, output)
    })
    .await
}

/// The list answer of `items` out of `total` for `page`.
fn list_of<T>(items: Vec<T>, total: i64, (page, everything): (PageRequest, bool)) -> Paginated<T> {
    if everything {
        Paginated::everything(items, total)
    } else {
        Paginated::new(items, total, page.page, page.limit)
    }
}

/// A page of one level's rows in the store's order, each with its instance.
type ListedPage<Aggregate> = (Vec<(Aggregate, aggregates::InstanceLabel)>, i64);

/// The body of both lists: the filter of `level` checked, then every row as CSV, or one page
/// read by `read` (remembered) and answered as `item`s.
async fn list<Aggregate, Item>(
    state: State,
    request: HttpRequest,
    level: AggregationLevel,
    read: fn(
        &mut capstats_store::PgConnection,
        &AggregateFilter,
        PageRequest,
    ) -> Result<ListedPage<Aggregate>, capstats_store::StoreError>,
    item: fn(Aggregate, aggregates::InstanceLabel) -> Item,
) -> Result<HttpResponse, ApiError>
where
    Aggregate: Send + 'static,
    Item: serde::Serialize,
{
    let database_level = level == AggregationLevel::Database;
    let (filter, listing) = checked_filter(&state, &request, database_level, |parameters| {
        read_listing(parameters, &request)
    })
    .await?;
    let paging = match listing {
        Listing::Page(page, everything) => (page, everything),
        Listing::Csv => return export_list(&state, level, filter).await,
    };
    let page = paging.0;
    let key = remembered::key(&request, state.today(), &filter);
    let read = move |connection: &mut capstats_store::PgConnection| read(connection, &filter, page);
    remembered::answer(&state, key, read, |(rows, total)| {
        let items = rows
            .into_iter()
            .map(|(aggregate, instance)| item(aggregate, instance))
            .collect();
        Envelope::new(format!("{level} aggregates"), list_of(items, total, paging))
    })
    .await
}

/// Instance-level aggregates, newest first: by period start, then instance id, both
/// descending. `format=csv`: every row of the filter as a file.
#[utoipa::path(
    tag = "capacity",
    operation_id = "list_instance_aggregates",
    params(ScopeQuery, WindowQuery, ListQuery, FormatQuery),
    responses(
        (status = 200, description = "One page of aggregates, or every row as CSV", content(
            (Envelope<Paginated<InstanceAggregateItem>> = "application/json"),
            (String = "text/csv"),
        )),
        InvalidParameters,
        NotSignedIn,
        UnknownInstance,
        TooManyExports,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/instances")]
pub async fn list_instances(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list(
        state,
        request,
        AggregationLevel::Instance,
        aggregates::list_instance_aggregates,
        InstanceAggregateItem::new,
    )
    .await
}

/// Database-level aggregates, newest first: by period start, then instance id, then database
/// name, all descending. `format=csv`: every row of the filter as a file.
#[utoipa::path(
    tag = "capacity",
    operation_id = "list_database_aggregates",
    params(ScopeQuery, WindowQuery, DatabaseQuery, ListQuery, FormatQuery),
    responses(
        (status = 200, description = "One page of aggregates, or every row as CSV", content(
            (Envelope<Paginated<DatabaseAggregateItem>> = "application/json"),
            (String = "text/csv"),
        )),
        InvalidParameters,
        NotSignedIn,
        UnknownInstance,
        TooManyExports,
    ),
    security(("session_cookie" = []), ("bearer_token" = ["read"])),
)]
#[get("/capacity/databases")]
pub async fn list_databases(
    state: State,
    _viewer: Viewer,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list(
        state,
        request,
        AggregationLevel::Database,
        aggregates::list_database_aggregates,
        DatabaseAggregateItem::new,
    )
    .await
}
