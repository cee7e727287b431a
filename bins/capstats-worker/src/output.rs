//! Printing results for people (tables) or scripts (`--json`).

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

/// Prints `value` as pretty JSON.
pub fn json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints rows under a header as a table.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// An optional value, or `-`.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// A timestamp to the second, or `-`.
pub fn time(value: Option<chrono::DateTime<chrono::Utc>>) -> String {
    or_dash(value.map(|at| at.format("%Y-%m-%d %H:%M:%S UTC")))
}

/// An instant as wall-clock time in `zone` with its offset (`2026-10-25 02:30:00 +02:00`), or
/// `-`: how a schedule read in that zone is shown.
pub fn zoned_time(value: Option<chrono::DateTime<chrono::Utc>>, zone: chrono_tz::Tz) -> String {
    or_dash(value.map(|at| at.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %:z")))
}
