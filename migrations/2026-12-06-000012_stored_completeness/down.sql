DROP INDEX instance_size_aggregations_changeable;
DROP INDEX database_size_aggregations_changeable;

ALTER TABLE instance_size_aggregations
    DROP COLUMN is_partial,
    DROP COLUMN expected_count;

ALTER TABLE database_size_aggregations
    DROP COLUMN is_partial,
    DROP COLUMN expected_count;
