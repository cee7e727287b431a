//! The statements' parameters and their committed snapshots.

use super::*;

#[test]
fn statements_use_exactly_their_parameters() {
    for key in StatementKey::all() {
        let statement = text(key);
        let shared = if key.form == PeriodForm::Daily { 7 } else { 12 };
        let used = shared + usize::from(key.takes_period_starts());
        // Only the removal, absent from a plain insert, needs the last start.
        let unused = (key.mode == WriteMode::Insert).then_some(4);
        for parameter in (1..=used).filter(|parameter| Some(*parameter) != unused) {
            assert!(
                statement.contains(&format!("${parameter}")),
                "{key:?}: ${parameter} unused"
            );
        }
        assert!(!statement.contains(&format!("${}", used + 1)));
    }
}

/// The rendered statements are committed, one file per key, so that a reviewer reads
/// the SQL a change produces in its diff. `make sql-snapshots` rewrites them.
#[test]
fn statements_match_their_committed_snapshots() {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/aggregation");
    let bless = std::env::var_os("CAPSTATS_BLESS_SQL").is_some();
    let mut expected_files = std::collections::BTreeSet::new();
    for key in StatementKey::all() {
        let path = directory.join(key.file_name());
        let rendered = format!(
            "-- {key:?}\n-- Rendered by crates/store/src/aggregation/statements/; `make sql-snapshots` rewrites it.\n{}\n",
            text(key).trim()
        );
        if bless {
            std::fs::create_dir_all(&directory).unwrap();
            std::fs::write(&path, &rendered).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("{}: {error}; run `make sql-snapshots`", path.display())
        });
        assert!(
            committed == rendered,
            "{} differs from what the builder renders; run `make sql-snapshots` and review the diff",
            path.display()
        );
        expected_files.insert(key.file_name());
    }
    let present: std::collections::BTreeSet<String> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(present, expected_files, "stale or unknown snapshot files");
}
