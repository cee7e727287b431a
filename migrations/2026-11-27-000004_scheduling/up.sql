-- Scheduling: where each schedule's ticks start counting, what happened to each claimed tick,
-- and the built-in schedules.

-- Ticks before this instant never count, not even as missed: set at creation, on resume and
-- when the cron expression changes.
ALTER TABLE schedules ADD COLUMN ticks_from timestamptz NOT NULL DEFAULT now();

-- 'enqueued': the tick's job was pushed in the same transaction as the claim.
-- 'skipped': the tick was missed and the misfire policy skipped it (only the latest skipped
-- tick is recorded: it moves the schedule's cursor).
ALTER TABLE schedule_ticks ADD COLUMN status text NOT NULL DEFAULT 'enqueued'
    CHECK (status IN ('enqueued', 'skipped'));
CREATE INDEX schedule_ticks_job_id_idx ON schedule_ticks (job_id) WHERE job_id IS NOT NULL;

INSERT INTO schedules (name, job_name, cron_expression, misfire_policy, catch_up_limit, description)
VALUES
    ('aggregate_capacity', 'aggregate_capacity', '0 4 * * *', 'run_once', 3,
     'Aggregate the last complete period of every type, catching up periods missing from the ledger'),
    ('refresh_stale_periods', 'refresh_stale_periods', '*/5 * * * *', 'skip', 1,
     'Recompute periods whose samples changed after they were aggregated'),
    ('maintain_partitions', 'maintain_partitions', '30 3 * * *', 'run_once', 1,
     'Create partitions ahead of time and drop those past the retention'),
    ('prune_job_store', 'prune_job_store', '45 3 * * *', 'run_once', 1,
     'Delete finished jobs, old ticks and gone workers past their retention')
ON CONFLICT (name) DO NOTHING;
