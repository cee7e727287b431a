ALTER TABLE instance_size_aggregations
    DROP COLUMN yoy_change_percent,
    DROP COLUMN yoy_change_mb;

ALTER TABLE database_size_aggregations
    DROP COLUMN yoy_log_change_percent,
    DROP COLUMN yoy_log_change_mb,
    DROP COLUMN yoy_data_change_percent,
    DROP COLUMN yoy_data_change_mb,
    DROP COLUMN yoy_change_percent,
    DROP COLUMN yoy_change_mb;
