-- StatementKey { level: Instance, form: Monthly, mode: Insert, filter: Early }
-- Rendered by crates/store/src/aggregation/statements/; `make sql-snapshots` rewrites it.
WITH grouped AS (
        SELECT s.instance_id, s.month_start AS period_start, s.day_count,
               s.total_sum, s.total_max, s.total_min,
               s.count_sum, s.count_max, s.count_min
        FROM instance_month_sums s
        WHERE (s.month_start BETWEEN $2 AND $5 OR s.month_start BETWEEN $11 AND $12) AND s.instance_id = ANY($6)
    ),
    paired AS (
        SELECT g.*, CASE WHEN lag(g.period_start) OVER w = g.previous_start THEN lag(g.day_count) OVER w END AS previous_day_count,
               CASE WHEN lag(g.period_start) OVER w = g.previous_start THEN lag(g.total_sum) OVER w END AS previous_total_sum,
               CASE WHEN lag(g.period_start) OVER w = g.previous_start THEN lag(g.count_sum) OVER w END AS previous_count_sum,
               first_value(g.day_count) OVER y AS yoy_day_count,
               first_value(g.total_sum) OVER y AS yoy_total_sum,
               first_value(g.count_sum) OVER y AS yoy_count_sum
        FROM (SELECT g.*, date_trunc($8, (g.period_start - 1)::timestamp)::date AS previous_start FROM grouped g OFFSET 0) g
        WINDOW w AS (PARTITION BY g.instance_id ORDER BY g.period_start),
               y AS (w RANGE BETWEEN $10::interval PRECEDING AND $10::interval PRECEDING)
    ),
    measured AS (
        SELECT g.*, CASE WHEN g.total_sum < 1000000000000 THEN g.total_sum::bigint END
             AS total_sum_small,
         CASE WHEN g.previous_total_sum < 1000000000000 THEN g.previous_total_sum::bigint END
             AS previous_total_sum_small,
         CASE WHEN g.total_sum < 1000000000000 AND g.previous_total_sum < 1000000000000
              THEN g.total_sum::bigint * g.previous_day_count
                   - g.previous_total_sum::bigint * g.day_count END
             AS total_delta_small, CASE WHEN g.count_sum < 1000000000000 THEN g.count_sum::bigint END
             AS count_sum_small,
         CASE WHEN g.previous_count_sum < 1000000000000 THEN g.previous_count_sum::bigint END
             AS previous_count_sum_small,
         CASE WHEN g.count_sum < 1000000000000 AND g.previous_count_sum < 1000000000000
              THEN g.count_sum::bigint * g.previous_day_count
                   - g.previous_count_sum::bigint * g.day_count END
             AS count_delta_small, CASE WHEN g.yoy_total_sum < 1000000000000 THEN g.yoy_total_sum::bigint END
             AS yoy_total_sum_small,
         CASE WHEN g.total_sum < 1000000000000 AND g.yoy_total_sum < 1000000000000
              THEN g.total_sum::bigint * g.yoy_day_count
                   - g.yoy_total_sum::bigint * g.day_count END
             AS total_yoy_delta_small
        FROM paired g
        WHERE g.period_start >= $3
        OFFSET 0
    ),
    removed AS (SELECT NULL::bigint AS instance_id WHERE false),
    written AS (
        INSERT INTO instance_size_aggregations AS target (instance_id, period_type, period_start, period_end, total_size_mb, avg_size_mb, max_size_mb, min_size_mb, data_count, database_count, avg_database_count, max_database_count, min_database_count, total_size_change_mb, total_size_change_percent, database_count_change, database_count_change_percent, calculated_at, yoy_change_mb, yoy_change_percent, expected_count, is_partial)
        SELECT instance_id,
               $1,
               period_start,
               (period_start + $9::interval)::date - 1,
               CASE WHEN day_count > 0 THEN
             CASE WHEN total_sum_small IS NOT NULL
                  THEN (2 * total_sum_small + day_count) / (2 * day_count)
                  ELSE (sign(total_sum) * div(2 * abs(total_sum) + day_count::numeric, 2 * day_count::numeric)) END END,
               CASE WHEN count_sum > 0 THEN
             CASE WHEN total_sum_small IS NOT NULL AND count_sum_small IS NOT NULL
                  THEN (2 * total_sum_small + count_sum_small) / (2 * count_sum_small)
                  ELSE (sign(total_sum) * div(2 * abs(total_sum) + count_sum, 2 * count_sum)) END END,
               total_max,
               total_min,
               day_count,
               CASE WHEN day_count > 0 THEN
             CASE WHEN count_sum_small IS NOT NULL
                  THEN (2 * count_sum_small + day_count) / (2 * day_count)
                  ELSE (sign(count_sum) * div(2 * abs(count_sum) + day_count::numeric, 2 * day_count::numeric)) END END,
               CASE WHEN count_sum_small IS NOT NULL
              THEN ((200 * count_sum_small + day_count) / (2 * day_count))::numeric * 0.01
              ELSE (sign(count_sum * 100) * div(2 * abs(count_sum * 100) + day_count::numeric, 2 * day_count::numeric)) * 0.01 END,
               count_max,
               count_min,
               CASE WHEN day_count > 0 AND previous_day_count > 0 THEN
                 CASE WHEN total_delta_small IS NOT NULL THEN ((2 * abs(total_delta_small) + day_count * previous_day_count) / (2 * (day_count * previous_day_count))
          * CASE WHEN total_delta_small < 0 THEN -1 ELSE 1 END)
                      ELSE (sign((total_sum * previous_day_count - previous_total_sum * day_count)) * div(2 * abs((total_sum * previous_day_count - previous_total_sum * day_count)) + (day_count * previous_day_count)::numeric, 2 * (day_count * previous_day_count)::numeric)) END END,
               CASE WHEN day_count > 0 AND previous_day_count > 0 AND previous_total_sum > 0 THEN
                 CASE WHEN total_delta_small IS NOT NULL THEN ((2 * abs(total_delta_small * 10000) + previous_total_sum_small * day_count) / (2 * (previous_total_sum_small * day_count))
          * CASE WHEN total_delta_small * 10000 < 0 THEN -1 ELSE 1 END)::numeric * 0.01
                      ELSE (sign((total_sum * previous_day_count - previous_total_sum * day_count) * 10000) * div(2 * abs((total_sum * previous_day_count - previous_total_sum * day_count) * 10000) + previous_total_sum * day_count, 2 * previous_total_sum * day_count)) * 0.01 END END,
               CASE WHEN day_count > 0 AND previous_day_count > 0 THEN
                 CASE WHEN count_delta_small IS NOT NULL THEN ((2 * abs(count_delta_small) + day_count * previous_day_count) / (2 * (day_count * previous_day_count))
          * CASE WHEN count_delta_small < 0 THEN -1 ELSE 1 END)
                      ELSE (sign((count_sum * previous_day_count - previous_count_sum * day_count)) * div(2 * abs((count_sum * previous_day_count - previous_count_sum * day_count)) + (day_count * previous_day_count)::numeric, 2 * (day_count * previous_day_count)::numeric)) END END,
               CASE WHEN day_count > 0 AND previous_day_count > 0 AND previous_count_sum > 0 THEN
                 CASE WHEN count_delta_small IS NOT NULL THEN ((2 * abs(count_delta_small * 10000) + previous_count_sum_small * day_count) / (2 * (previous_count_sum_small * day_count))
          * CASE WHEN count_delta_small * 10000 < 0 THEN -1 ELSE 1 END)::numeric * 0.01
                      ELSE (sign((count_sum * previous_day_count - previous_count_sum * day_count) * 10000) * div(2 * abs((count_sum * previous_day_count - previous_count_sum * day_count) * 10000) + previous_count_sum * day_count, 2 * previous_count_sum * day_count)) * 0.01 END END,
               now(),
               CASE WHEN day_count > 0 AND yoy_day_count > 0 THEN
                 CASE WHEN total_yoy_delta_small IS NOT NULL THEN ((2 * abs(total_yoy_delta_small) + day_count * yoy_day_count) / (2 * (day_count * yoy_day_count))
          * CASE WHEN total_yoy_delta_small < 0 THEN -1 ELSE 1 END)
                      ELSE (sign((total_sum * yoy_day_count - yoy_total_sum * day_count)) * div(2 * abs((total_sum * yoy_day_count - yoy_total_sum * day_count)) + (day_count * yoy_day_count)::numeric, 2 * (day_count * yoy_day_count)::numeric)) END END,
               CASE WHEN day_count > 0 AND yoy_day_count > 0 AND yoy_total_sum > 0 THEN
                 CASE WHEN total_yoy_delta_small IS NOT NULL THEN ((2 * abs(total_yoy_delta_small * 10000) + yoy_total_sum_small * day_count) / (2 * (yoy_total_sum_small * day_count))
          * CASE WHEN total_yoy_delta_small * 10000 < 0 THEN -1 ELSE 1 END)::numeric * 0.01
                      ELSE (sign((total_sum * yoy_day_count - yoy_total_sum * day_count) * 10000) * div(2 * abs((total_sum * yoy_day_count - yoy_total_sum * day_count) * 10000) + yoy_total_sum * day_count, 2 * yoy_total_sum * day_count)) * 0.01 END END,
               (CASE WHEN ((period_start + $9::interval)::date - 1) < $7::date THEN ((period_start + $9::interval)::date - 1) - period_start + 1
                  WHEN period_start > $7::date THEN 0
                  ELSE $7::date - period_start + 1 END)::bigint,
               (((period_start + $9::interval)::date - 1) >= $7::date OR day_count < ((period_start + $9::interval)::date - 1) - period_start + 1)
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
