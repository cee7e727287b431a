DELETE FROM schedule_ticks WHERE schedule_name = 'collect_capacity';
DELETE FROM schedules WHERE name = 'collect_capacity';
ALTER TABLE instances
    DROP COLUMN connection_user,
    DROP COLUMN connection_password,
    DROP COLUMN connection_database;
