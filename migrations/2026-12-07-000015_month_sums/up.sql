-- Exact sums of the samples per key and calendar month: what the monthly, quarterly and yearly
-- aggregation statements group instead of the samples themselves (a key's year is twelve rows
-- here, not 365 samples; docs/performance.md, "With month sums"). Counts, sums, maxima and minima
-- combine exactly, so a period's mean, change and year-over-year change computed from these
-- rows are the ones computed from the samples.
--
-- Kept equal to the samples by the statement-level triggers below, in the transaction that
-- changes the samples, whoever writes them (ingest, import, seed, collection, a test's DELETE).
-- Dropping a sample partition fires no trigger: retention deletes the dropped months' sums in
-- its own transaction (`capstats_store::partitions::drop_partitions_before`).
CREATE TABLE database_month_sums (
    instance_id bigint NOT NULL,
    database_name text COLLATE "C" NOT NULL,
    month_start date NOT NULL CHECK (month_start = date_trunc('month', month_start)),
    size_count bigint NOT NULL,
    size_sum numeric NOT NULL,
    size_max bigint NOT NULL,
    size_min bigint NOT NULL,
    data_count bigint NOT NULL,
    data_sum numeric,
    data_max bigint,
    data_min bigint,
    log_count bigint NOT NULL,
    log_sum numeric,
    log_max bigint,
    log_min bigint,
    -- Instance first: a chunk of instances finds its rows by seeking to each instance.
    PRIMARY KEY (instance_id, database_name, month_start)
);

CREATE TABLE instance_month_sums (
    instance_id bigint NOT NULL,
    month_start date NOT NULL CHECK (month_start = date_trunc('month', month_start)),
    day_count bigint NOT NULL,
    total_sum numeric NOT NULL,
    total_max bigint NOT NULL,
    total_min bigint NOT NULL,
    count_sum numeric NOT NULL,
    count_max bigint NOT NULL,
    count_min bigint NOT NULL,
    PRIMARY KEY (instance_id, month_start)
);

-- Recomputes the sums of every key and month that `touched` (a query of `instance_id`,
-- `database_name`, `collected_date` over a trigger's transition tables) names, from the
-- samples as they are now: a month whose samples are all gone loses its row. Two writers of
-- one month would each recompute from their own snapshot and the later one would lose the
-- other's samples, so a transaction-scoped advisory lock per instance is taken first, in one
-- order (bucketed by `instance_id % 256` to bound the locks a large import holds; the first
-- key is `MONTH_SUMS_LOCK_KEY` in crates/store/src/sql.rs); the recompute statement that
-- follows takes a fresh snapshot (read committed), which includes whatever the other writer
-- committed meanwhile.
CREATE FUNCTION refresh_database_month_sums() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT instance_id, database_name, collected_date FROM new_samples'
        WHEN 'DELETE' THEN 'SELECT instance_id, database_name, collected_date FROM old_samples'
        ELSE 'SELECT instance_id, database_name, collected_date FROM old_samples
              UNION ALL
              SELECT instance_id, database_name, collected_date FROM new_samples' END;
BEGIN
    EXECUTE format(
        'SELECT count(pg_advisory_xact_lock(1129512963, bucket))
         FROM (SELECT DISTINCT (instance_id %% 256)::integer AS bucket FROM (%s) t ORDER BY 1) b',
        touched);
    -- The deletion runs first (the insert waits for its count), so that a month recomputed
    -- to the same key does not collide with its old row.
    EXECUTE format(
        'WITH touched AS MATERIALIZED (
             SELECT DISTINCT instance_id, database_name,
                    date_trunc(''month'', collected_date)::date AS month_start
             FROM (%s) t),
         removed AS (
             DELETE FROM database_month_sums sums USING touched
             WHERE (sums.instance_id, sums.database_name, sums.month_start)
                 = (touched.instance_id, touched.database_name, touched.month_start)
             RETURNING 1)
         INSERT INTO database_month_sums
         SELECT s.instance_id, s.database_name, touched.month_start,
                count(*), sum(s.size_mb), max(s.size_mb), min(s.size_mb),
                count(s.data_size_mb), sum(s.data_size_mb), max(s.data_size_mb),
                min(s.data_size_mb),
                count(s.log_size_mb), sum(s.log_size_mb), max(s.log_size_mb),
                min(s.log_size_mb)
         FROM touched
         JOIN database_size_stats s
           ON s.instance_id = touched.instance_id
          AND s.database_name = touched.database_name
          AND s.collected_date >= touched.month_start
          AND s.collected_date < (touched.month_start + interval ''1 month'')::date
         WHERE (SELECT count(*) FROM removed) >= 0
         GROUP BY 1, 2, 3', touched);
    RETURN NULL;
END
$$;

-- The same for the instance days.
CREATE FUNCTION refresh_instance_month_sums() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT instance_id, collected_date FROM new_days'
        WHEN 'DELETE' THEN 'SELECT instance_id, collected_date FROM old_days'
        ELSE 'SELECT instance_id, collected_date FROM old_days
              UNION ALL
              SELECT instance_id, collected_date FROM new_days' END;
BEGIN
    EXECUTE format(
        'SELECT count(pg_advisory_xact_lock(1129512963, bucket))
         FROM (SELECT DISTINCT (instance_id %% 256)::integer AS bucket FROM (%s) t ORDER BY 1) b',
        touched);
    EXECUTE format(
        'WITH touched AS MATERIALIZED (
             SELECT DISTINCT instance_id, date_trunc(''month'', collected_date)::date AS month_start
             FROM (%s) t),
         removed AS (
             DELETE FROM instance_month_sums sums USING touched
             WHERE (sums.instance_id, sums.month_start)
                 = (touched.instance_id, touched.month_start)
             RETURNING 1)
         INSERT INTO instance_month_sums
         SELECT s.instance_id, touched.month_start,
                count(*), sum(s.total_size_mb), max(s.total_size_mb), min(s.total_size_mb),
                sum(s.database_count), max(s.database_count), min(s.database_count)
         FROM touched
         JOIN instance_size_stats s
           ON s.instance_id = touched.instance_id
          AND s.collected_date >= touched.month_start
          AND s.collected_date < (touched.month_start + interval ''1 month'')::date
         WHERE (SELECT count(*) FROM removed) >= 0
         GROUP BY 1, 2', touched);
    RETURN NULL;
END
$$;

-- PostgreSQL 15 allows transition tables only on triggers of a single event: one each.
CREATE TRIGGER database_month_sums_after_insert
AFTER INSERT ON database_size_stats REFERENCING NEW TABLE AS new_samples
FOR EACH STATEMENT EXECUTE FUNCTION refresh_database_month_sums();
CREATE TRIGGER database_month_sums_after_update
AFTER UPDATE ON database_size_stats REFERENCING OLD TABLE AS old_samples NEW TABLE AS new_samples
FOR EACH STATEMENT EXECUTE FUNCTION refresh_database_month_sums();
CREATE TRIGGER database_month_sums_after_delete
AFTER DELETE ON database_size_stats REFERENCING OLD TABLE AS old_samples
FOR EACH STATEMENT EXECUTE FUNCTION refresh_database_month_sums();

CREATE TRIGGER instance_month_sums_after_insert
AFTER INSERT ON instance_size_stats REFERENCING NEW TABLE AS new_days
FOR EACH STATEMENT EXECUTE FUNCTION refresh_instance_month_sums();
CREATE TRIGGER instance_month_sums_after_update
AFTER UPDATE ON instance_size_stats REFERENCING OLD TABLE AS old_days NEW TABLE AS new_days
FOR EACH STATEMENT EXECUTE FUNCTION refresh_instance_month_sums();
CREATE TRIGGER instance_month_sums_after_delete
AFTER DELETE ON instance_size_stats REFERENCING OLD TABLE AS old_days
FOR EACH STATEMENT EXECUTE FUNCTION refresh_instance_month_sums();

-- A truncated sample table has no months left.
CREATE FUNCTION empty_month_sums() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'database_size_stats' THEN
        DELETE FROM database_month_sums;
    ELSE
        DELETE FROM instance_month_sums;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER database_month_sums_after_truncate
AFTER TRUNCATE ON database_size_stats FOR EACH STATEMENT EXECUTE FUNCTION empty_month_sums();
CREATE TRIGGER instance_month_sums_after_truncate
AFTER TRUNCATE ON instance_size_stats FOR EACH STATEMENT EXECUTE FUNCTION empty_month_sums();

-- The months already stored.
INSERT INTO database_month_sums
SELECT instance_id, database_name, date_trunc('month', collected_date)::date,
       count(*), sum(size_mb), max(size_mb), min(size_mb),
       count(data_size_mb), sum(data_size_mb), max(data_size_mb), min(data_size_mb),
       count(log_size_mb), sum(log_size_mb), max(log_size_mb), min(log_size_mb)
FROM database_size_stats
GROUP BY 1, 2, 3;

INSERT INTO instance_month_sums
SELECT instance_id, date_trunc('month', collected_date)::date,
       count(*), sum(total_size_mb), max(total_size_mb), min(total_size_mb),
       sum(database_count), max(database_count), min(database_count)
FROM instance_size_stats
GROUP BY 1, 2;
