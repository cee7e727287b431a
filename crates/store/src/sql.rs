//! Small pieces of SQL text shared by the statements of this crate, and the row of an
//! `EXISTS` question, and the keys of the advisory locks.

use capstats_capacity_model::{AggregationLevel, PeriodType};

/// The row of `SELECT EXISTS (…) AS found`.
#[derive(diesel::QueryableByName)]
pub(crate) struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub(crate) found: bool,
}

/// SQL for `numerator / denominator` rounded half away from zero, exactly, for a positive
/// `denominator`: `sign(n) · floor((2|n| + d) / 2d)`. Both operands must be `numeric`
/// expressions without side effects (`sign` of a `bigint` would resolve to the
/// double-precision overload); they are repeated in the output, so pass column names rather
/// than large expressions.
///
/// `div` truncates exactly on integers of any size, so the result equals
/// `capstats_aggregation_core::metrics::divide_rounded`. Dividing with `/` and then rounding would depend
/// on how many digits PostgreSQL keeps.
pub(crate) fn divide_rounded(numerator: &str, denominator: &str) -> String {
    format!("(sign({numerator}) * div(2 * abs({numerator}) + {denominator}, 2 * {denominator}))")
}

/// SQL for the first day of the period of the type named by `unit_parameter` (a bound
/// `date_trunc` unit such as `'week'`) that contains `date_expression`. Truncating a
/// `timestamp` (without time zone) keeps the session time zone out of the calculation.
pub(crate) fn period_start(unit_parameter: &str, date_expression: &str) -> String {
    format!("date_trunc({unit_parameter}, ({date_expression})::timestamp)::date")
}

/// First key of the advisory lock that serialises partition creation and removal ("CS" and 1).
pub(crate) const PARTITION_LOCK_KEY: i32 = 0x4353_0001;

/// First key of the advisory lock that serialises requests for a run of the same work ("CS"
/// and 2); the second key is a hash of the work, so different requests do not wait for each
/// other.
pub(crate) const RUN_REQUEST_LOCK_KEY: i32 = 0x4353_0002;

/// First key of the advisory locks the month-sum triggers take per instance ("CS" and 3; the
/// second key is the instance id modulo 256). Written as a literal in the migration
/// `month_sums`; a test holds the two equal.
#[cfg(test)]
pub(crate) const MONTH_SUMS_LOCK_KEY: i32 = 0x4353_0003;

/// First key of the advisory lock that serialises the upkeep of the latest rows of one level
/// and period type ("CS" and 4; the second key is the pair's position, as for
/// [`PERIOD_LOCK_KEY_BASE`]). Two batches of different periods of one type (a parallel
/// backfill) replace the same keys' latest rows: without it each could delete and insert rows
/// the other holds, in its own order, and deadlock — or the later period's batch could leave
/// the earlier one's row as the latest.
pub(crate) const LATEST_ROWS_LOCK_KEY: i32 = 0x4353_0004;

/// Base of the first advisory-lock key of a `(level, period_type)` pair; the pair's position
/// is added to it and the period start (days since 1970-01-01) is the second key, so that
/// `pg_locks` shows which period is being written.
pub(crate) const PERIOD_LOCK_KEY_BASE: i32 = 0x4353_1000;

/// The position of a level and period type among all pairs (0 to 15): the part of an
/// advisory-lock key that names the pair ([`PERIOD_LOCK_KEY_BASE`], [`LATEST_ROWS_LOCK_KEY`]).
pub(crate) fn level_and_type_position(level: AggregationLevel, period_type: PeriodType) -> i32 {
    let level_index = AggregationLevel::ALL
        .iter()
        .position(|candidate| *candidate == level)
        .expect("level is listed");
    let type_index = PeriodType::ALL
        .iter()
        .position(|candidate| *candidate == period_type)
        .expect("period type is listed");
    i32::try_from(level_index * 8 + type_index).expect("small index")
}

/// The stored rows whose completeness can still change as the days pass: partial rows judged
/// before their period ended. A row judged after its end is partial for good (fewer samples
/// than its expected count, which is all its days); one judged on its last day expects all its
/// days and changes only if it has them all. The partial indexes of migration
/// `2026-12-06-000012_stored_completeness` have exactly this predicate, so that the refresh
/// reads these rows only.
pub const CHANGEABLE_COMPLETENESS: &str = "is_partial AND (expected_count < period_end - period_start + 1 OR data_count >= expected_count)";

/// SQL for the completeness of a row of a period from `period_start` to `period_end` with
/// `data_count` daily samples, as of the business date `today` (a `date` expression):
/// `[expected_count, is_partial]` by the rule of
/// `capstats_aggregation_core::calendar::completeness`. A period ending today has not ended.
pub(crate) fn completeness(
    period_start: &str,
    period_end: &str,
    data_count: &str,
    today: &str,
) -> [String; 2] {
    let days = format!("({period_end}) - {period_start} + 1");
    [
        format!(
            "(CASE WHEN ({period_end}) < {today} THEN {days}
                  WHEN {period_start} > {today} THEN 0
                  ELSE {today} - {period_start} + 1 END)::bigint"
        ),
        format!("(({period_end}) >= {today} OR {data_count} < {days})"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_reads_the_rows_the_partial_indexes_hold() {
        let migration =
            include_str!("../../../migrations/2026-12-06-000012_stored_completeness/up.sql");
        let indexed = migration
            .lines()
            .filter(|line| line.trim() == format!("WHERE {CHANGEABLE_COMPLETENESS};"))
            .count();
        assert_eq!(indexed, 2, "both indexes have the refresh's predicate");
    }

    #[test]
    fn the_month_sum_triggers_lock_under_their_own_key() {
        let migration = include_str!("../../../migrations/2026-12-07-000015_month_sums/up.sql");
        let lock = format!("pg_advisory_xact_lock({MONTH_SUMS_LOCK_KEY}, bucket)");
        assert_eq!(
            migration.matches(&lock).count(),
            2,
            "both triggers use {lock}"
        );
        assert!(
            ![
                PARTITION_LOCK_KEY,
                RUN_REQUEST_LOCK_KEY,
                LATEST_ROWS_LOCK_KEY
            ]
            .contains(&MONTH_SUMS_LOCK_KEY)
                && !(PERIOD_LOCK_KEY_BASE..PERIOD_LOCK_KEY_BASE + 16)
                    .contains(&MONTH_SUMS_LOCK_KEY)
        );
    }

    #[test]
    fn divide_rounded_repeats_only_names() {
        assert_eq!(
            divide_rounded("a", "b"),
            "(sign(a) * div(2 * abs(a) + b, 2 * b))"
        );
    }
}
