ALTER TABLE instance_databases DROP COLUMN capacity_limit_mb;
ALTER TABLE instances DROP COLUMN capacity_limit_mb;
