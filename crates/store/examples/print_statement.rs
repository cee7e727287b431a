//! Prints the aggregation statement of a level and period type, for `EXPLAIN`.
//!
//! `cargo run -p store --example print_statement -- database daily`

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
    println!(
        "{}",
        store::aggregation::statement_text(
            level,
            period_type,
            if std::env::var("MODE").as_deref() == Ok("insert") {
                store::aggregation::WriteMode::Insert
            } else {
                store::aggregation::WriteMode::Upsert
            }
        )
    );
}
