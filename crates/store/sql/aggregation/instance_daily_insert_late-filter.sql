-- StatementKey { level: Instance, form: Daily, mode: Insert, filter: Late }
-- Rendered by crates/store/src/aggregation/statements/; `make sql-snapshots` rewrites it.
WITH paired AS (
        SELECT s.instance_id, s.collected_date AS period_start,
               s.total_size_mb, s.database_count,
               lag(s.collected_date) OVER w AS previous_date,
               lag(s.total_size_mb) OVER w AS lag_total_size_mb,
               lag(s.database_count) OVER w AS lag_database_count
        FROM instance_size_stats s
        WHERE s.collected_date BETWEEN $2 AND $5
        WINDOW w AS (PARTITION BY s.instance_id ORDER BY s.collected_date)
    ),
    measured AS (
        SELECT p.instance_id, p.period_start, p.total_size_mb, p.database_count,
               CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_total_size_mb END AS previous_total,
               CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_database_count END AS previous_count,
               p.total_size_mb - CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_total_size_mb END AS total_delta,
               p.database_count - CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_database_count END AS count_delta
        FROM paired p
        WHERE p.period_start >= $3 AND p.instance_id = ANY($6)
        OFFSET 0
    ),
    removed AS (SELECT NULL::bigint AS instance_id WHERE false),
    written AS (
        INSERT INTO instance_size_aggregations AS target (instance_id, period_type, period_start, period_end, total_size_mb, avg_size_mb, max_size_mb, min_size_mb, data_count, database_count, avg_database_count, max_database_count, min_database_count, total_size_change_mb, total_size_change_percent, database_count_change, database_count_change_percent, calculated_at, yoy_change_mb, yoy_change_percent, expected_count, is_partial)
        SELECT instance_id,
               $1,
               period_start,
               period_start,
               total_size_mb,
               CASE WHEN database_count > 0 THEN
             CASE WHEN total_size_mb < 4000000000000000000
                       AND database_count < 1000000000000000000
                  THEN (2 * total_size_mb + database_count) / (2 * database_count)
                  ELSE (sign(total_size_mb::numeric) * div(2 * abs(total_size_mb::numeric) + database_count::numeric, 2 * database_count::numeric)) END END,
               total_size_mb,
               total_size_mb,
               1,
               database_count,
               database_count,
               database_count,
               database_count,
               total_delta,
               CASE WHEN previous_total > 0 THEN CASE WHEN abs(total_delta) < 400000000000000 AND previous_total < 1000000000000000000
              THEN ((2 * abs(total_delta) * 10000 + previous_total) / (2 * previous_total)
                    * CASE WHEN total_delta < 0 THEN -1 ELSE 1 END)::numeric * 0.01
              ELSE (sign((total_delta)::numeric * 10000) * div(2 * abs((total_delta)::numeric * 10000) + (previous_total)::numeric, 2 * (previous_total)::numeric)) * 0.01 END END,
               count_delta,
               CASE WHEN previous_count > 0 THEN CASE WHEN abs(count_delta) < 400000000000000 AND previous_count < 1000000000000000000
              THEN ((2 * abs(count_delta) * 10000 + previous_count) / (2 * previous_count)
                    * CASE WHEN count_delta < 0 THEN -1 ELSE 1 END)::numeric * 0.01
              ELSE (sign((count_delta)::numeric * 10000) * div(2 * abs((count_delta)::numeric * 10000) + (previous_count)::numeric, 2 * (previous_count)::numeric)) * 0.01 END END,
               now(),
               NULL,
               NULL,
               (CASE WHEN (period_start) < $7::date THEN (period_start) - period_start + 1
                  WHEN period_start > $7::date THEN 0
                  ELSE $7::date - period_start + 1 END)::bigint,
               ((period_start) >= $7::date OR 1 < (period_start) - period_start + 1)
        FROM measured
    ),
    counted AS (
        SELECT instance_id, count(*) AS row_count
        FROM measured
        GROUP BY instance_id
    )
    SELECT instance_id, sum(row_count)::bigint AS rows_written,
           0::bigint AS rows_deleted
    FROM counted
    GROUP BY instance_id
