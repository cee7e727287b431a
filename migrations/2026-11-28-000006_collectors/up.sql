-- Collectors: how capstats connects to a monitored instance to read its database sizes, and
-- the schedule that does it every night.

-- The password is sealed with AES-256-GCM under CAPSTATS_CREDENTIAL_KEY (version byte, nonce,
-- ciphertext and tag); it is never returned by the API.
ALTER TABLE instances
    ADD COLUMN connection_user text CHECK (char_length(connection_user) <= 255),
    ADD COLUMN connection_password bytea,
    ADD COLUMN connection_database text CHECK (char_length(connection_database) <= 255);

INSERT INTO schedules (name, job_name, cron_expression, misfire_policy, catch_up_limit, description)
VALUES
    ('collect_capacity', 'collect_capacity', '0 3 * * *', 'run_once', 1,
     'Read database sizes from every active instance with connection settings')
ON CONFLICT (name) DO NOTHING;
