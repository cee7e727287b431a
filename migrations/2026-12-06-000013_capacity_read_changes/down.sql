-- Dropping the function drops the triggers that call it.
DROP FUNCTION record_capacity_read_change() CASCADE;
DROP TABLE capacity_read_changes;
