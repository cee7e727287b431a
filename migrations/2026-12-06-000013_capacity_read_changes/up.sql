-- Which committed transactions changed what the capacity reads show (aggregates and their row
-- counts, instance totals, the inventory, instances and their limits). The API keeps the lists,
-- summaries, series, leaderboards and forecasts it computed with the snapshot it read them in,
-- and serves one again while no transaction outside that snapshot has committed a change here
-- (`capstats_store::read_changes`). A row per writing transaction, not per row written: a
-- statement-level trigger costs one insert per statement whatever the rows, and writers never
-- wait for each other on it (each inserts its own key).
CREATE TABLE capacity_read_changes (
    -- pg_current_xact_id() of the writing transaction (xid8, which never wraps around, as a
    -- bigint: it fits, and diesel knows the type).
    transaction_id bigint PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION record_capacity_read_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO capacity_read_changes (transaction_id)
    VALUES (pg_current_xact_id()::text::bigint)
    ON CONFLICT (transaction_id) DO NOTHING;
    RETURN NULL;
END
$$;

-- Statement-level, so a statement that writes no row records a change too (a reader then
-- recomputes once); row-level triggers or transition tables would cost every aggregation
-- statement a step per written row. The row counts behind the lists' totals change with the
-- aggregates, in the same transactions; their own triggers keep that true of any future writer.
DO $$
DECLARE
    watched text;
BEGIN
    FOREACH watched IN ARRAY ARRAY[
        'database_size_aggregations', 'instance_size_aggregations',
        'aggregate_period_counts', 'database_aggregate_counts',
        'instance_size_stats', 'instance_databases', 'instances'
    ] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I
             FOR EACH STATEMENT EXECUTE FUNCTION record_capacity_read_change()',
            watched || '_read_change', watched);
    END LOOP;
END
$$;
