-- Each key's row in its latest stored period, per period type: the capacity pages' summaries
-- and chart rankings read "every key's latest row in the window", which for a window reaching
-- the newest stored period is exactly this table (a few thousand narrow lookups instead of a
-- period of the partitioned table plus a probe per period for every key missing from it).
-- Maintained by the aggregation in the transaction that writes the rows
-- (`capstats_store::aggregation::latest`), by the completeness refresh and by retention; a
-- copy of the whole row (LIKE, without the generated columns' expressions, so that
-- `INSERT … SELECT *` copies them), so that any column a read needs is there. A column added to
-- an aggregation table must be added here too: the copy fails loudly otherwise.
CREATE TABLE database_latest_aggregations (
    LIKE database_size_aggregations,
    PRIMARY KEY (period_type, instance_id, database_name)
);

CREATE TABLE instance_latest_aggregations (
    LIKE instance_size_aggregations,
    PRIMARY KEY (period_type, instance_id)
);

INSERT INTO database_latest_aggregations
SELECT DISTINCT ON (period_type, instance_id, database_name) *
FROM database_size_aggregations
ORDER BY period_type, instance_id, database_name, period_start DESC;

INSERT INTO instance_latest_aggregations
SELECT DISTINCT ON (period_type, instance_id) *
FROM instance_size_aggregations
ORDER BY period_type, instance_id, period_start DESC;

-- What the remembered capacity reads are read from records its writers, like every such table.
CREATE TRIGGER database_latest_aggregations_read_change
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON database_latest_aggregations
FOR EACH STATEMENT EXECUTE FUNCTION record_capacity_read_change();

CREATE TRIGGER instance_latest_aggregations_read_change
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON instance_latest_aggregations
FOR EACH STATEMENT EXECUTE FUNCTION record_capacity_read_change();
