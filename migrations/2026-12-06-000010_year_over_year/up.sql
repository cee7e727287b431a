-- Year over year: weekly and longer rows store the change against the same period one year
-- earlier (the week 52 weeks before, the month, quarter or year twelve months before), from the
-- exact means as the other changes are; NULL for daily rows and when that period has no
-- samples. Rows written before this migration have NULL until their periods are computed
-- again (`capstats-worker aggregate`, or a backfill from the sessions page).
ALTER TABLE database_size_aggregations
    ADD COLUMN yoy_change_mb bigint,
    ADD COLUMN yoy_change_percent numeric(28, 2),
    ADD COLUMN yoy_data_change_mb bigint,
    ADD COLUMN yoy_data_change_percent numeric(28, 2),
    ADD COLUMN yoy_log_change_mb bigint,
    ADD COLUMN yoy_log_change_percent numeric(28, 2);

ALTER TABLE instance_size_aggregations
    ADD COLUMN yoy_change_mb bigint,
    ADD COLUMN yoy_change_percent numeric(28, 2);
