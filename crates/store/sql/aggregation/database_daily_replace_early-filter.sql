-- StatementKey { level: Database, form: Daily, mode: Replace, filter: Early }
-- Rendered by crates/store/src/aggregation/statements/; `make sql-snapshots` rewrites it.
WITH paired AS (
        SELECT s.instance_id, s.database_name, s.collected_date AS period_start,
               s.size_mb, s.data_size_mb, s.log_size_mb,
               lag(s.collected_date) OVER w AS previous_date,
               lag(s.size_mb) OVER w AS lag_size_mb,
               lag(s.data_size_mb) OVER w AS lag_data_size_mb,
               lag(s.log_size_mb) OVER w AS lag_log_size_mb
        FROM database_size_stats s
        WHERE s.collected_date BETWEEN $2 AND $5 AND s.instance_id = ANY($6)
        WINDOW w AS (PARTITION BY s.instance_id, s.database_name ORDER BY s.collected_date)
    ),
    measured AS (
        SELECT p.instance_id, p.database_name, p.period_start,
               p.size_mb, p.data_size_mb, p.log_size_mb,
               CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_size_mb END AS previous_size,
               CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_data_size_mb END AS previous_data,
               CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_log_size_mb END AS previous_log,
               p.size_mb - CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_size_mb END AS size_delta,
               p.data_size_mb - CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_data_size_mb END AS data_delta,
               p.log_size_mb - CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_log_size_mb END AS log_delta
        FROM paired p
        WHERE p.period_start >= $3
        OFFSET 0
    ),
    removed AS (
        DELETE FROM database_size_aggregations stored
        WHERE stored.period_type = $1 AND stored.period_start BETWEEN $3 AND $4
          AND stored.period_start = ANY($8::date[])
          AND stored.instance_id = ANY($6)
        RETURNING instance_id, database_name, period_start
    ),
    written AS (
        INSERT INTO database_size_aggregations AS target (instance_id, database_name, period_type, period_start, period_end, avg_size_mb, max_size_mb, min_size_mb, data_count, avg_data_size_mb, max_data_size_mb, min_data_size_mb, avg_log_size_mb, max_log_size_mb, min_log_size_mb, size_change_mb, size_change_percent, data_size_change_mb, data_size_change_percent, log_size_change_mb, log_size_change_percent, calculated_at, yoy_change_mb, yoy_change_percent, yoy_data_change_mb, yoy_data_change_percent, yoy_log_change_mb, yoy_log_change_percent, expected_count, is_partial)
        SELECT instance_id,
               database_name,
               $1,
               period_start,
               period_start,
               size_mb,
               size_mb,
               size_mb,
               1,
               data_size_mb,
               data_size_mb,
               data_size_mb,
               log_size_mb,
               log_size_mb,
               log_size_mb,
               size_delta,
               CASE WHEN previous_size > 0 THEN CASE WHEN abs(size_delta) < 400000000000000 AND previous_size < 1000000000000000000
              THEN ((2 * abs(size_delta) * 10000 + previous_size) / (2 * previous_size)
                    * CASE WHEN size_delta < 0 THEN -1 ELSE 1 END)::numeric * 0.01
              ELSE (sign((size_delta)::numeric * 10000) * div(2 * abs((size_delta)::numeric * 10000) + (previous_size)::numeric, 2 * (previous_size)::numeric)) * 0.01 END END,
               data_delta,
               CASE WHEN previous_data > 0 THEN CASE WHEN abs(data_delta) < 400000000000000 AND previous_data < 1000000000000000000
              THEN ((2 * abs(data_delta) * 10000 + previous_data) / (2 * previous_data)
                    * CASE WHEN data_delta < 0 THEN -1 ELSE 1 END)::numeric * 0.01
              ELSE (sign((data_delta)::numeric * 10000) * div(2 * abs((data_delta)::numeric * 10000) + (previous_data)::numeric, 2 * (previous_data)::numeric)) * 0.01 END END,
               log_delta,
               CASE WHEN previous_log > 0 THEN CASE WHEN abs(log_delta) < 400000000000000 AND previous_log < 1000000000000000000
              THEN ((2 * abs(log_delta) * 10000 + previous_log) / (2 * previous_log)
                    * CASE WHEN log_delta < 0 THEN -1 ELSE 1 END)::numeric * 0.01
              ELSE (sign((log_delta)::numeric * 10000) * div(2 * abs((log_delta)::numeric * 10000) + (previous_log)::numeric, 2 * (previous_log)::numeric)) * 0.01 END END,
               now(),
               NULL,
               NULL,
               NULL,
               NULL,
               NULL,
               NULL,
               (CASE WHEN (period_start) < $7::date THEN (period_start) - period_start + 1
                  WHEN period_start > $7::date THEN 0
                  ELSE $7::date - period_start + 1 END)::bigint,
               ((period_start) >= $7::date OR 1 < (period_start) - period_start + 1)
        FROM measured
        WHERE (SELECT count(*) FROM removed) >= 0
        ORDER BY period_start, instance_id, database_name
    ),
    counted AS (
        INSERT INTO database_aggregate_counts (period_type, period_start, instance_id, row_count)
        SELECT $1, period_start, instance_id, count(*)
        FROM measured
        GROUP BY period_start, instance_id
        RETURNING instance_id, row_count
    )
    SELECT instance_id, sum(rows_written)::bigint AS rows_written,
           sum(rows_deleted)::bigint AS rows_deleted
    FROM (SELECT instance_id, row_count AS rows_written, 0 AS rows_deleted FROM counted
          UNION ALL
          SELECT instance_id, 0, 1
          FROM (SELECT instance_id, database_name, period_start, true AS was_stored FROM removed
                UNION ALL
                SELECT instance_id, database_name, period_start, false FROM measured) keys
          GROUP BY instance_id, database_name, period_start
          HAVING bool_and(was_stored)) outcome
    GROUP BY instance_id
