-- Monitored instances, their database inventory and the daily size samples.
-- Business dates (collected_date, period_start, period_end) are calendar dates in the business
-- time zone (CAPSTATS_TIMEZONE); timestamps are timestamptz. Database names compare bytewise
-- (COLLATE "C"): they are identifiers, and bytewise keys make the sorts and index look-ups of
-- aggregation cheaper than locale-aware comparison.

CREATE TABLE instances (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (btrim(name) <> '' AND char_length(name) <= 255),
    db_type text NOT NULL CHECK (db_type IN ('mysql', 'postgresql', 'sqlserver', 'oracle')),
    host text,
    port integer CHECK (port BETWEEN 1 AND 65535),
    description text,
    -- Name of the connection settings a collector uses for this instance (issue: collectors).
    connection_reference text,
    is_active boolean NOT NULL DEFAULT true,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Names are unique among instances that are not soft-deleted, so a name can be reused after
-- its instance is deleted while the old history stays readable.
CREATE UNIQUE INDEX instances_name_key ON instances (name) WHERE deleted_at IS NULL;

CREATE TABLE instance_databases (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id bigint NOT NULL REFERENCES instances (id),
    database_name text COLLATE "C" NOT NULL
        CHECK (database_name <> '' AND char_length(database_name) <= 255),
    first_seen_date date NOT NULL,
    last_seen_date date NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (instance_id, database_name),
    CHECK (first_seen_date <= last_seen_date)
);

-- One row per instance, database and business date. Range-partitioned by month; partitions
-- are named database_size_stats_YYYY_MM and created by capstats before any write needs them.
CREATE TABLE database_size_stats (
    instance_id bigint NOT NULL REFERENCES instances (id),
    database_name text COLLATE "C" NOT NULL
        CHECK (database_name <> '' AND char_length(database_name) <= 255),
    collected_date date NOT NULL,
    size_mb bigint NOT NULL CHECK (size_mb >= 0),
    data_size_mb bigint CHECK (data_size_mb BETWEEN 0 AND size_mb),
    log_size_mb bigint CHECK (log_size_mb BETWEEN 0 AND size_mb),
    collected_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, database_name, collected_date)
) PARTITION BY RANGE (collected_date);
-- Aggregation scans one date window for all instances.
CREATE INDEX database_size_stats_collected_date_idx ON database_size_stats (collected_date);

-- One row per instance and business date: the sum of that day's size_mb and the number of
-- databases sampled that day, derived whenever samples are written.
CREATE TABLE instance_size_stats (
    instance_id bigint NOT NULL REFERENCES instances (id),
    collected_date date NOT NULL,
    total_size_mb bigint NOT NULL CHECK (total_size_mb >= 0),
    database_count bigint NOT NULL CHECK (database_count >= 0),
    collected_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, collected_date)
) PARTITION BY RANGE (collected_date);
CREATE INDEX instance_size_stats_collected_date_idx ON instance_size_stats (collected_date);
