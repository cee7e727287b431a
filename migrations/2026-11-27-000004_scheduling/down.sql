DELETE FROM schedules WHERE name IN
    ('aggregate_capacity', 'refresh_stale_periods', 'maintain_partitions', 'prune_job_store');
DROP INDEX schedule_ticks_job_id_idx;
ALTER TABLE schedule_ticks DROP COLUMN status;
ALTER TABLE schedules DROP COLUMN ticks_from;
