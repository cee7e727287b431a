-- StatementKey { level: Database, form: Monthly, mode: Replace, filter: Early }
-- Rendered by crates/store/src/aggregation/statements/; `make sql-snapshots` rewrites it.
WITH grouped AS (
        SELECT s.instance_id, s.database_name, s.month_start AS period_start,
               s.size_count, s.size_sum, s.size_max, s.size_min,
               s.data_count, s.data_sum, s.data_max, s.data_min,
               s.log_count, s.log_sum, s.log_max, s.log_min
        FROM database_month_sums s
        WHERE (s.month_start BETWEEN $2 AND $5 OR s.month_start BETWEEN $11 AND $12) AND s.instance_id = ANY($6)
    ),
    paired AS (
        SELECT g.*, CASE WHEN lag(g.period_start) OVER w = g.previous_start THEN lag(g.size_count) OVER w END AS previous_size_count,
               CASE WHEN lag(g.period_start) OVER w = g.previous_start THEN lag(g.size_sum) OVER w END AS previous_size_sum,
               CASE WHEN lag(g.period_start) OVER w = g.previous_start THEN lag(g.data_count) OVER w END AS previous_data_count,
               CASE WHEN lag(g.period_start) OVER w = g.previous_start THEN lag(g.data_sum) OVER w END AS previous_data_sum,
               CASE WHEN lag(g.period_start) OVER w = g.previous_start THEN lag(g.log_count) OVER w END AS previous_log_count,
               CASE WHEN lag(g.period_start) OVER w = g.previous_start THEN lag(g.log_sum) OVER w END AS previous_log_sum,
               first_value(g.size_count) OVER y AS yoy_size_count,
               first_value(g.size_sum) OVER y AS yoy_size_sum,
               first_value(g.data_count) OVER y AS yoy_data_count,
               first_value(g.data_sum) OVER y AS yoy_data_sum,
               first_value(g.log_count) OVER y AS yoy_log_count,
               first_value(g.log_sum) OVER y AS yoy_log_sum
        FROM (SELECT g.*, date_trunc($8, (g.period_start - 1)::timestamp)::date AS previous_start FROM grouped g OFFSET 0) g
        WINDOW w AS (PARTITION BY g.instance_id, g.database_name ORDER BY g.period_start),
               y AS (w RANGE BETWEEN $10::interval PRECEDING AND $10::interval PRECEDING)
    ),
    measured AS (
        SELECT g.*, CASE WHEN g.size_sum < 1000000000000 THEN g.size_sum::bigint END
             AS size_sum_small,
         CASE WHEN g.previous_size_sum < 1000000000000 THEN g.previous_size_sum::bigint END
             AS previous_size_sum_small,
         CASE WHEN g.size_sum < 1000000000000 AND g.previous_size_sum < 1000000000000
              THEN g.size_sum::bigint * g.previous_size_count
                   - g.previous_size_sum::bigint * g.size_count END
             AS size_delta_small, CASE WHEN g.data_sum < 1000000000000 THEN g.data_sum::bigint END
             AS data_sum_small,
         CASE WHEN g.previous_data_sum < 1000000000000 THEN g.previous_data_sum::bigint END
             AS previous_data_sum_small,
         CASE WHEN g.data_sum < 1000000000000 AND g.previous_data_sum < 1000000000000
              THEN g.data_sum::bigint * g.previous_data_count
                   - g.previous_data_sum::bigint * g.data_count END
             AS data_delta_small, CASE WHEN g.log_sum < 1000000000000 THEN g.log_sum::bigint END
             AS log_sum_small,
         CASE WHEN g.previous_log_sum < 1000000000000 THEN g.previous_log_sum::bigint END
             AS previous_log_sum_small,
         CASE WHEN g.log_sum < 1000000000000 AND g.previous_log_sum < 1000000000000
              THEN g.log_sum::bigint * g.previous_log_count
                   - g.previous_log_sum::bigint * g.log_count END
             AS log_delta_small,
               CASE WHEN g.yoy_size_sum < 1000000000000 THEN g.yoy_size_sum::bigint END
             AS yoy_size_sum_small,
         CASE WHEN g.size_sum < 1000000000000 AND g.yoy_size_sum < 1000000000000
              THEN g.size_sum::bigint * g.yoy_size_count
                   - g.yoy_size_sum::bigint * g.size_count END
             AS size_yoy_delta_small, CASE WHEN g.yoy_data_sum < 1000000000000 THEN g.yoy_data_sum::bigint END
             AS yoy_data_sum_small,
         CASE WHEN g.data_sum < 1000000000000 AND g.yoy_data_sum < 1000000000000
              THEN g.data_sum::bigint * g.yoy_data_count
                   - g.yoy_data_sum::bigint * g.data_count END
             AS data_yoy_delta_small, CASE WHEN g.yoy_log_sum < 1000000000000 THEN g.yoy_log_sum::bigint END
             AS yoy_log_sum_small,
         CASE WHEN g.log_sum < 1000000000000 AND g.yoy_log_sum < 1000000000000
              THEN g.log_sum::bigint * g.yoy_log_count
                   - g.yoy_log_sum::bigint * g.log_count END
             AS log_yoy_delta_small
        FROM paired g
        WHERE g.period_start >= $3
        OFFSET 0
    ),
    removed AS (
        DELETE FROM database_size_aggregations stored
        WHERE stored.period_type = $1 AND stored.period_start BETWEEN $3 AND $4
          AND stored.period_start = ANY($13::date[])
          AND stored.instance_id = ANY($6)
        RETURNING instance_id, database_name, period_start
    ),
    written AS (
        INSERT INTO database_size_aggregations AS target (instance_id, database_name, period_type, period_start, period_end, avg_size_mb, max_size_mb, min_size_mb, data_count, avg_data_size_mb, max_data_size_mb, min_data_size_mb, avg_log_size_mb, max_log_size_mb, min_log_size_mb, size_change_mb, size_change_percent, data_size_change_mb, data_size_change_percent, log_size_change_mb, log_size_change_percent, calculated_at, yoy_change_mb, yoy_change_percent, yoy_data_change_mb, yoy_data_change_percent, yoy_log_change_mb, yoy_log_change_percent, expected_count, is_partial)
        SELECT instance_id,
               database_name,
               $1,
               period_start,
               (period_start + $9::interval)::date - 1,
               CASE WHEN size_count > 0 THEN
             CASE WHEN size_sum_small IS NOT NULL
                  THEN (2 * size_sum_small + size_count) / (2 * size_count)
                  ELSE (sign(size_sum) * div(2 * abs(size_sum) + size_count::numeric, 2 * size_count::numeric)) END END,
               size_max,
               size_min,
               size_count,
               CASE WHEN data_count > 0 THEN
             CASE WHEN data_sum_small IS NOT NULL
                  THEN (2 * data_sum_small + data_count) / (2 * data_count)
                  ELSE (sign(data_sum) * div(2 * abs(data_sum) + data_count::numeric, 2 * data_count::numeric)) END END,
               data_max,
               data_min,
               CASE WHEN log_count > 0 THEN
             CASE WHEN log_sum_small IS NOT NULL
                  THEN (2 * log_sum_small + log_count) / (2 * log_count)
                  ELSE (sign(log_sum) * div(2 * abs(log_sum) + log_count::numeric, 2 * log_count::numeric)) END END,
               log_max,
               log_min,
               CASE WHEN size_count > 0 AND previous_size_count > 0 THEN
                 CASE WHEN size_delta_small IS NOT NULL THEN ((2 * abs(size_delta_small) + size_count * previous_size_count) / (2 * (size_count * previous_size_count))
          * CASE WHEN size_delta_small < 0 THEN -1 ELSE 1 END)
                      ELSE (sign((size_sum * previous_size_count - previous_size_sum * size_count)) * div(2 * abs((size_sum * previous_size_count - previous_size_sum * size_count)) + (size_count * previous_size_count)::numeric, 2 * (size_count * previous_size_count)::numeric)) END END,
               CASE WHEN size_count > 0 AND previous_size_count > 0 AND previous_size_sum > 0 THEN
                 CASE WHEN size_delta_small IS NOT NULL THEN ((2 * abs(size_delta_small * 10000) + previous_size_sum_small * size_count) / (2 * (previous_size_sum_small * size_count))
          * CASE WHEN size_delta_small * 10000 < 0 THEN -1 ELSE 1 END)::numeric * 0.01
                      ELSE (sign((size_sum * previous_size_count - previous_size_sum * size_count) * 10000) * div(2 * abs((size_sum * previous_size_count - previous_size_sum * size_count) * 10000) + previous_size_sum * size_count, 2 * previous_size_sum * size_count)) * 0.01 END END,
               CASE WHEN data_count > 0 AND previous_data_count > 0 THEN
                 CASE WHEN data_delta_small IS NOT NULL THEN ((2 * abs(data_delta_small) + data_count * previous_data_count) / (2 * (data_count * previous_data_count))
          * CASE WHEN data_delta_small < 0 THEN -1 ELSE 1 END)
                      ELSE (sign((data_sum * previous_data_count - previous_data_sum * data_count)) * div(2 * abs((data_sum * previous_data_count - previous_data_sum * data_count)) + (data_count * previous_data_count)::numeric, 2 * (data_count * previous_data_count)::numeric)) END END,
               CASE WHEN data_count > 0 AND previous_data_count > 0 AND previous_data_sum > 0 THEN
                 CASE WHEN data_delta_small IS NOT NULL THEN ((2 * abs(data_delta_small * 10000) + previous_data_sum_small * data_count) / (2 * (previous_data_sum_small * data_count))
          * CASE WHEN data_delta_small * 10000 < 0 THEN -1 ELSE 1 END)::numeric * 0.01
                      ELSE (sign((data_sum * previous_data_count - previous_data_sum * data_count) * 10000) * div(2 * abs((data_sum * previous_data_count - previous_data_sum * data_count) * 10000) + previous_data_sum * data_count, 2 * previous_data_sum * data_count)) * 0.01 END END,
               CASE WHEN log_count > 0 AND previous_log_count > 0 THEN
                 CASE WHEN log_delta_small IS NOT NULL THEN ((2 * abs(log_delta_small) + log_count * previous_log_count) / (2 * (log_count * previous_log_count))
          * CASE WHEN log_delta_small < 0 THEN -1 ELSE 1 END)
                      ELSE (sign((log_sum * previous_log_count - previous_log_sum * log_count)) * div(2 * abs((log_sum * previous_log_count - previous_log_sum * log_count)) + (log_count * previous_log_count)::numeric, 2 * (log_count * previous_log_count)::numeric)) END END,
               CASE WHEN log_count > 0 AND previous_log_count > 0 AND previous_log_sum > 0 THEN
                 CASE WHEN log_delta_small IS NOT NULL THEN ((2 * abs(log_delta_small * 10000) + previous_log_sum_small * log_count) / (2 * (previous_log_sum_small * log_count))
          * CASE WHEN log_delta_small * 10000 < 0 THEN -1 ELSE 1 END)::numeric * 0.01
                      ELSE (sign((log_sum * previous_log_count - previous_log_sum * log_count) * 10000) * div(2 * abs((log_sum * previous_log_count - previous_log_sum * log_count) * 10000) + previous_log_sum * log_count, 2 * previous_log_sum * log_count)) * 0.01 END END,
               now(),
               CASE WHEN size_count > 0 AND yoy_size_count > 0 THEN
                 CASE WHEN size_yoy_delta_small IS NOT NULL THEN ((2 * abs(size_yoy_delta_small) + size_count * yoy_size_count) / (2 * (size_count * yoy_size_count))
          * CASE WHEN size_yoy_delta_small < 0 THEN -1 ELSE 1 END)
                      ELSE (sign((size_sum * yoy_size_count - yoy_size_sum * size_count)) * div(2 * abs((size_sum * yoy_size_count - yoy_size_sum * size_count)) + (size_count * yoy_size_count)::numeric, 2 * (size_count * yoy_size_count)::numeric)) END END,
               CASE WHEN size_count > 0 AND yoy_size_count > 0 AND yoy_size_sum > 0 THEN
                 CASE WHEN size_yoy_delta_small IS NOT NULL THEN ((2 * abs(size_yoy_delta_small * 10000) + yoy_size_sum_small * size_count) / (2 * (yoy_size_sum_small * size_count))
          * CASE WHEN size_yoy_delta_small * 10000 < 0 THEN -1 ELSE 1 END)::numeric * 0.01
                      ELSE (sign((size_sum * yoy_size_count - yoy_size_sum * size_count) * 10000) * div(2 * abs((size_sum * yoy_size_count - yoy_size_sum * size_count) * 10000) + yoy_size_sum * size_count, 2 * yoy_size_sum * size_count)) * 0.01 END END,
               CASE WHEN data_count > 0 AND yoy_data_count > 0 THEN
                 CASE WHEN data_yoy_delta_small IS NOT NULL THEN ((2 * abs(data_yoy_delta_small) + data_count * yoy_data_count) / (2 * (data_count * yoy_data_count))
          * CASE WHEN data_yoy_delta_small < 0 THEN -1 ELSE 1 END)
                      ELSE (sign((data_sum * yoy_data_count - yoy_data_sum * data_count)) * div(2 * abs((data_sum * yoy_data_count - yoy_data_sum * data_count)) + (data_count * yoy_data_count)::numeric, 2 * (data_count * yoy_data_count)::numeric)) END END,
               CASE WHEN data_count > 0 AND yoy_data_count > 0 AND yoy_data_sum > 0 THEN
                 CASE WHEN data_yoy_delta_small IS NOT NULL THEN ((2 * abs(data_yoy_delta_small * 10000) + yoy_data_sum_small * data_count) / (2 * (yoy_data_sum_small * data_count))
          * CASE WHEN data_yoy_delta_small * 10000 < 0 THEN -1 ELSE 1 END)::numeric * 0.01
                      ELSE (sign((data_sum * yoy_data_count - yoy_data_sum * data_count) * 10000) * div(2 * abs((data_sum * yoy_data_count - yoy_data_sum * data_count) * 10000) + yoy_data_sum * data_count, 2 * yoy_data_sum * data_count)) * 0.01 END END,
               CASE WHEN log_count > 0 AND yoy_log_count > 0 THEN
                 CASE WHEN log_yoy_delta_small IS NOT NULL THEN ((2 * abs(log_yoy_delta_small) + log_count * yoy_log_count) / (2 * (log_count * yoy_log_count))
          * CASE WHEN log_yoy_delta_small < 0 THEN -1 ELSE 1 END)
                      ELSE (sign((log_sum * yoy_log_count - yoy_log_sum * log_count)) * div(2 * abs((log_sum * yoy_log_count - yoy_log_sum * log_count)) + (log_count * yoy_log_count)::numeric, 2 * (log_count * yoy_log_count)::numeric)) END END,
               CASE WHEN log_count > 0 AND yoy_log_count > 0 AND yoy_log_sum > 0 THEN
                 CASE WHEN log_yoy_delta_small IS NOT NULL THEN ((2 * abs(log_yoy_delta_small * 10000) + yoy_log_sum_small * log_count) / (2 * (yoy_log_sum_small * log_count))
          * CASE WHEN log_yoy_delta_small * 10000 < 0 THEN -1 ELSE 1 END)::numeric * 0.01
                      ELSE (sign((log_sum * yoy_log_count - yoy_log_sum * log_count) * 10000) * div(2 * abs((log_sum * yoy_log_count - yoy_log_sum * log_count) * 10000) + yoy_log_sum * log_count, 2 * yoy_log_sum * log_count)) * 0.01 END END,
               (CASE WHEN ((period_start + $9::interval)::date - 1) < $7::date THEN ((period_start + $9::interval)::date - 1) - period_start + 1
                  WHEN period_start > $7::date THEN 0
                  ELSE $7::date - period_start + 1 END)::bigint,
               (((period_start + $9::interval)::date - 1) >= $7::date OR size_count < ((period_start + $9::interval)::date - 1) - period_start + 1)
        FROM measured
        WHERE (SELECT count(*) FROM removed) >= 0
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
