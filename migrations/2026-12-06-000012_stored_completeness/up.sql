-- Completeness is stored with every aggregate (issue 16): `expected_count`, the days a
-- complete period has samples for (all of its days once it has ended, its days up to the
-- business date while it runs), and `is_partial` (the period has not ended, or it has fewer
-- daily samples than expected). The aggregation statements write both as of the day they run;
-- the scheduled runs refresh the partial rows as the days pass
-- (`capstats_store::aggregation::refresh_completeness`).
--
-- Existing rows are judged as of the day before the server's date: the business time zone is
-- not known here, and a day early errs towards "partial", which the first refresh corrects
-- (a row wrongly judged complete would never be looked at again).
ALTER TABLE database_size_aggregations
    ADD COLUMN expected_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN is_partial boolean NOT NULL DEFAULT true;

ALTER TABLE instance_size_aggregations
    ADD COLUMN expected_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN is_partial boolean NOT NULL DEFAULT true;

UPDATE database_size_aggregations
SET expected_count = CASE
        WHEN period_end < current_date - 1 THEN period_end - period_start + 1
        WHEN period_start > current_date - 1 THEN 0
        ELSE (current_date - 1) - period_start + 1 END,
    is_partial = period_end >= current_date - 1 OR data_count < period_end - period_start + 1;

UPDATE instance_size_aggregations
SET expected_count = CASE
        WHEN period_end < current_date - 1 THEN period_end - period_start + 1
        WHEN period_start > current_date - 1 THEN 0
        ELSE (current_date - 1) - period_start + 1 END,
    is_partial = period_end >= current_date - 1 OR data_count < period_end - period_start + 1;

ALTER TABLE database_size_aggregations
    ALTER COLUMN expected_count DROP DEFAULT,
    ALTER COLUMN is_partial DROP DEFAULT;

ALTER TABLE instance_size_aggregations
    ALTER COLUMN expected_count DROP DEFAULT,
    ALTER COLUMN is_partial DROP DEFAULT;

-- The refresh reads only the rows whose figures can still change as the days pass: partial
-- rows that were judged before their period ended. A row judged after its end is partial for
-- good (it misses days: fewer samples than its expected count, which is all its days); a row
-- judged on its last day expects all its days and changes only if it has them all. The
-- predicate is `capstats_store::aggregation::CHANGEABLE_COMPLETENESS`, which the refresh repeats so
-- that the planner uses these indexes (a test holds the two equal).
CREATE INDEX database_size_aggregations_changeable
    ON database_size_aggregations (period_end)
    WHERE is_partial AND (expected_count < period_end - period_start + 1 OR data_count >= expected_count);
CREATE INDEX instance_size_aggregations_changeable
    ON instance_size_aggregations (period_end)
    WHERE is_partial AND (expected_count < period_end - period_start + 1 OR data_count >= expected_count);
