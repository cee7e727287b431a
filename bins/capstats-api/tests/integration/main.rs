//! The integration tests of `capstats-api`, one test binary with a module per area (one link
//! instead of one per file): the contract over HTTP, data in (ingest and import), security,
//! capacity planning (forecasts, growth), remembered capacity reads, CSV exports, the browser UI, the generated client, HTTP semantics across the spec, the reference's contract
//! replayed, and `migrate`.

mod alerts;
mod browser;
mod common;
mod contract;
mod data_in;
mod export;
mod generated_client;
mod http_semantics;
mod migrate;
mod planning;
mod reference_contract;
mod remembered;
mod security;
