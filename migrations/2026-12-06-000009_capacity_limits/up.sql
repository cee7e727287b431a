-- Capacity limits: the size, in MB, at which an instance or a database is full. Forecasts
-- report the days until the projected size reaches it (`days_until_full`); without a limit
-- they project sizes only.
ALTER TABLE instances
    ADD COLUMN capacity_limit_mb bigint
        CONSTRAINT instances_capacity_limit_positive CHECK (capacity_limit_mb > 0);

ALTER TABLE instance_databases
    ADD COLUMN capacity_limit_mb bigint
        CONSTRAINT instance_databases_capacity_limit_positive CHECK (capacity_limit_mb > 0);
