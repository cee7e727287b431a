-- Rollups of the size samples per database and per instance, and the ledger of computed
-- periods. The rollups are derived data written only by the aggregation statements, which take
-- their instance ids from `instances`; they carry no foreign key, whose per-row check would
-- dominate the cost of writing them, and only the primary key as index. Megabyte values are whole numbers; percentages have two decimals and 26 integer
-- digits, more than the largest possible value (a mean of 2^63 - 1 against a previous mean of
-- 1/366 is about 3.4e23 %).

CREATE TABLE database_size_aggregations (
    instance_id bigint NOT NULL,
    database_name text COLLATE "C" NOT NULL,
    period_type text NOT NULL CHECK (period_type IN ('daily', 'weekly', 'monthly', 'quarterly', 'yearly')),
    period_start date NOT NULL,
    period_end date NOT NULL,
    avg_size_mb bigint NOT NULL,
    max_size_mb bigint NOT NULL,
    min_size_mb bigint NOT NULL,
    data_count bigint NOT NULL CHECK (data_count > 0),
    avg_data_size_mb bigint,
    max_data_size_mb bigint,
    min_data_size_mb bigint,
    avg_log_size_mb bigint,
    max_log_size_mb bigint,
    min_log_size_mb bigint,
    size_change_mb bigint,
    size_change_percent numeric(28, 2),
    data_size_change_mb bigint,
    data_size_change_percent numeric(28, 2),
    log_size_change_mb bigint,
    log_size_change_percent numeric(28, 2),
    -- Defined as the size change in percent; generated so that it can never disagree.
    growth_rate numeric(28, 2) GENERATED ALWAYS AS (size_change_percent) STORED,
    calculated_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Keyed by period first: the API reads date windows of one period type across instances,
    -- and instance filters narrow that range.
    PRIMARY KEY (period_type, period_start, instance_id, database_name),
    CHECK (period_start <= period_end)
) PARTITION BY RANGE (period_start);

CREATE TABLE instance_size_aggregations (
    instance_id bigint NOT NULL,
    period_type text NOT NULL CHECK (period_type IN ('daily', 'weekly', 'monthly', 'quarterly', 'yearly')),
    period_start date NOT NULL,
    period_end date NOT NULL,
    total_size_mb bigint NOT NULL,
    avg_size_mb bigint,
    max_size_mb bigint NOT NULL,
    min_size_mb bigint NOT NULL,
    data_count bigint NOT NULL CHECK (data_count > 0),
    database_count bigint NOT NULL,
    avg_database_count numeric(28, 2) NOT NULL,
    max_database_count bigint NOT NULL,
    min_database_count bigint NOT NULL,
    total_size_change_mb bigint,
    total_size_change_percent numeric(28, 2),
    database_count_change bigint,
    database_count_change_percent numeric(28, 2),
    -- Defined from the total size change in percent; generated so that they can never disagree.
    growth_rate numeric(28, 2) GENERATED ALWAYS AS (total_size_change_percent) STORED,
    trend_direction text GENERATED ALWAYS AS (
        CASE WHEN total_size_change_percent > 5 THEN 'growing'
             WHEN total_size_change_percent < -5 THEN 'shrinking'
             WHEN total_size_change_percent IS NOT NULL THEN 'stable' END) STORED,
    calculated_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period_type, period_start, instance_id),
    CHECK (period_start <= period_end)
) PARTITION BY RANGE (period_start);

-- One row per (level, period type, period start) that has been computed or whose samples
-- changed. written_at is set when any aggregation statement first writes rows of the period
-- (until then the first computation can insert without conflict checks); computed_at is null
-- until every active instance has been aggregated for the period; stale_instance_ids lists
-- instances whose samples changed after their last computation. A period is up to date when
-- computed_at is set and the list is empty.
CREATE TABLE aggregation_ledger (
    level text NOT NULL CHECK (level IN ('database', 'instance')),
    period_type text NOT NULL CHECK (period_type IN ('daily', 'weekly', 'monthly', 'quarterly', 'yearly')),
    period_start date NOT NULL,
    period_end date NOT NULL,
    written_at timestamptz,
    computed_at timestamptz,
    computed_by_session_id bigint,
    stale_instance_ids bigint[] NOT NULL DEFAULT '{}',
    stale_since timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (level, period_type, period_start),
    CHECK ((cardinality(stale_instance_ids) = 0) = (stale_since IS NULL))
);
-- refresh_stale_periods looks for stale entries.
CREATE INDEX aggregation_ledger_stale_idx ON aggregation_ledger (stale_since)
    WHERE stale_since IS NOT NULL;
