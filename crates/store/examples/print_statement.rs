//! Prints an aggregation statement, for `EXPLAIN ANALYZE` and the performance notes.
//!
//! `cargo run -p capstats-store --example print_statement -- database daily`; `MODE=insert` and
//! `FILTER=early` select the other statement shapes.

use capstats_store::aggregation::{InstanceFilter, WriteMode, statement_text};

fn main() {
    let mut arguments = std::env::args().skip(1);
    let level = arguments
        .next()
        .unwrap_or_else(|| "database".into())
        .parse()
        .expect("database or instance");
    let period_type = arguments
        .next()
        .unwrap_or_else(|| "daily".into())
        .parse()
        .expect("a period type");
    let mode = match std::env::var("MODE").as_deref() {
        Ok("insert") => WriteMode::Insert,
        _ => WriteMode::Replace,
    };
    let filter = match std::env::var("FILTER").as_deref() {
        Ok("early") => InstanceFilter::Early,
        _ => InstanceFilter::Late,
    };
    println!("{}", statement_text(level, period_type, mode, filter));
}
