-- Row counts of the aggregation tables, maintained in the same transaction as every
-- aggregation write (store::aggregation recounts the periods it wrote), so that a list page
-- reports its exact total by adding up a few dozen (unfiltered) or a few thousand (filtered by
-- instance or engine) small rows instead of counting every matching aggregate row on each
-- request.

-- Rows per level and period.
CREATE TABLE aggregate_period_counts (
    level text NOT NULL CHECK (level IN ('database', 'instance')),
    period_type text NOT NULL CHECK (period_type IN ('daily', 'weekly', 'monthly', 'quarterly', 'yearly')),
    period_start date NOT NULL,
    row_count bigint NOT NULL CHECK (row_count > 0),
    PRIMARY KEY (level, period_type, period_start)
);

-- Database-level rows per period and instance.
CREATE TABLE database_aggregate_counts (
    period_type text NOT NULL CHECK (period_type IN ('daily', 'weekly', 'monthly', 'quarterly', 'yearly')),
    period_start date NOT NULL,
    instance_id bigint NOT NULL,
    row_count bigint NOT NULL CHECK (row_count > 0),
    PRIMARY KEY (period_type, period_start, instance_id)
);

INSERT INTO database_aggregate_counts (period_type, period_start, instance_id, row_count)
SELECT period_type, period_start, instance_id, count(*)
FROM database_size_aggregations
GROUP BY period_type, period_start, instance_id;

INSERT INTO aggregate_period_counts (level, period_type, period_start, row_count)
SELECT 'database', period_type, period_start, sum(row_count)
FROM database_aggregate_counts
GROUP BY period_type, period_start
UNION ALL
SELECT 'instance', period_type, period_start, count(*)
FROM instance_size_aggregations
GROUP BY period_type, period_start;
