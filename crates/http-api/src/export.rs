//! CSV answers (`format=csv`, or `Accept: text/csv`): which requests ask for one, and the
//! body, written by `capstats_services::export` on a pooled connection in a blocking task and
//! streamed to the client as it is written, through a small bounded channel, so that an
//! export of millions of rows runs in flat memory and a slow client slows the writer down.

use std::io::Write;

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use tokio::sync::mpsc;
use tracing::Instrument;

use capstats_services::ServiceError;
use capstats_store::PgConnection;
use capstats_store::aggregates::PageRequest;

use crate::error::ApiError;
use crate::params::Parameters;
use crate::state::State;

/// How much of a file is sent at once.
const CHUNK_BYTES: usize = 64 * 1024;

/// Chunks written ahead of the client: the memory an export holds is about this many chunks,
/// however many rows it has.
const CHUNKS_AHEAD: usize = 4;

/// How long a client refused for too many exports at once is asked to wait.
const BUSY_RETRY_SECONDS: u64 = 5;

/// The `format` query parameter every exportable view declares.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the parameters for the OpenAPI description; `Parameters` reads them"
)]
pub struct FormatQuery {
    /// `json` (default) or `csv`: every row of the filter as a CSV file (UTF-8, a header row,
    /// ISO dates, whole MiB, two-decimal percents), streamed; a list holds at most
    /// `CAPSTATS_EXPORT_MAXIMUM_ROWS` rows (default 5,000,000; more answers 400 naming
    /// `format`). `Accept: text/csv` asks for CSV too. Paging does not apply to CSV: `page`
    /// with it answers 400. At most half the connection pool exports at once (429 past it).
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

/// Whether the request asks for CSV: `format=csv`, or no `format` and an `Accept` header
/// naming `text/csv`. Paging does not apply to CSV, so `page` with it is a problem.
pub fn wants_csv(parameters: &mut Parameters, request: &HttpRequest) -> bool {
    let csv = match parameters.one::<String>("format").as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            parameters.problem(
                "format",
                "invalid_choice",
                format!("unknown format `{other}`; expected json or csv"),
            );
            false
        }
        None => accepts_csv(request),
    };
    if csv {
        refuse_with_csv(parameters, &["page"]);
    }
    csv
}

/// Records each of `names` that is given as a problem: a parameter that shapes a JSON page
/// does not apply to a CSV answer, and is refused rather than ignored.
pub fn refuse_with_csv(parameters: &mut Parameters, names: &[&str]) {
    for name in names {
        if parameters.has(name) {
            parameters.problem(
                name,
                "conflict",
                "does not apply to CSV, which holds every row of the filter",
            );
        }
    }
}

/// The `limit` of a ranked view (growth, forecasts) answered as CSV: its first `limit` keys
/// (1–200) when given, every key otherwise.
pub fn ranked_limit(parameters: &mut Parameters) -> PageRequest {
    PageRequest {
        page: 1,
        limit: if parameters.has("limit") {
            parameters.bounded("limit", 1, 200, 200)
        } else {
            i64::MAX
        },
    }
}

/// Whether the `Accept` header names `text/csv` (with any parameters).
fn accepts_csv(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("text/csv"))
        })
}

/// Answers `200 text/csv` named `file_name`, its body what `write` writes on a pooled
/// connection. An error before the first bytes (a bound exceeded, an unknown session, the
/// database down) answers as every error does; one after them cuts the body short, so the
/// client sees an incomplete transfer, never a file that looks whole, and is logged once.
pub async fn streamed<F>(
    state: &State,
    file_name: String,
    write: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(&mut PgConnection, &mut dyn Write) -> Result<u64, ServiceError> + Send + 'static,
{
    // Each export holds a pooled connection for as long as its client reads; these permits
    // keep half the pool for everything else.
    let permit = state
        .exports
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::ExportsBusy {
            retry_after_seconds: BUSY_RETRY_SECONDS,
        })?;
    let (sender, mut receiver) = mpsc::channel::<Result<Bytes, ServiceError>>(CHUNKS_AHEAD);
    let pool = state.store.clone();
    let exported = async move {
        let _permit = permit;
        let failed = sender.clone();
        let outcome = capstats_store::run_blocking(&pool, move |connection| {
            let mut output = ChannelWriter {
                sender,
                buffer: Vec::with_capacity(CHUNK_BYTES),
                chunks_sent: 0,
            };
            let result = write(connection, &mut output).and_then(|rows| {
                output.flush().map_err(ServiceError::Output)?;
                Ok(rows)
            });
            Ok::<_, ServiceError>((result, output.chunks_sent > 0))
        })
        .await;
        match outcome {
            Ok((Ok(rows), _)) => tracing::info!(rows, "export written"),
            // The channel is closed when the client went away: nobody is left to tell.
            Ok((Err(ServiceError::Output(error)), _)) if failed.is_closed() => {
                tracing::info!(%error, "the client closed the export before its end");
            }
            // Past the first bytes the status has been sent: log the cause here (the only
            // place that sees it) and cut the body short.
            Ok((Err(error), true)) => {
                tracing::error!(
                    error = %capstats_store::error_chain(&error),
                    "the export failed after it started; its body was cut short"
                );
                let _ = failed.send(Err(error)).await;
            }
            // Before them, the handler answers with the error (and logs it).
            Ok((Err(error), false)) | Err(error) => {
                let _ = failed.send(Err(error)).await;
            }
        }
    };
    tokio::spawn(exported.instrument(tracing::info_span!("export", file = %file_name)));
    let first = match receiver.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(error)) => return Err(error.into()),
        None => return Err(ApiError::Internal("the export ended without a word".into())),
    };
    let rest = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let item = receiver.recv().await?;
        Some((item.map_err(std::io::Error::other), receiver))
    });
    let body = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(first) });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(file_name)],
        })
        .streaming(futures_util::StreamExt::chain(body, rest)))
}

/// Collects what an export writes into chunks and hands each to the response as it fills; a
/// full channel blocks the writer (the client is slower than the database), a closed one
/// (the client went away) fails the write.
struct ChannelWriter {
    sender: mpsc::Sender<Result<Bytes, ServiceError>>,
    buffer: Vec<u8>,
    /// Chunks handed to the response so far: after the first, an error can no longer
    /// change the answer's status.
    chunks_sent: u64,
}

impl ChannelWriter {
    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.sender.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })?;
        self.chunks_sent += 1;
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffer()
    }
}
