-- Run history (sync sessions), persistent schedules with their claimed ticks, and accounts.

CREATE TABLE sync_sessions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sync_category text NOT NULL CHECK (sync_category IN ('aggregation', 'capacity')),
    sync_type text NOT NULL CHECK (sync_type IN ('scheduled_task', 'manual_task')),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    -- Who or what started the run: a schedule name, "cli", "api:<user>".
    triggered_by text NOT NULL,
    -- The run's parameters (scope, period types, periods) as versioned JSON.
    parameters jsonb NOT NULL DEFAULT '{}',
    total_instances bigint NOT NULL DEFAULT 0,
    successful_instances bigint NOT NULL DEFAULT 0,
    failed_instances bigint NOT NULL DEFAULT 0,
    cancelled_instances bigint NOT NULL DEFAULT 0,
    progress_percentage numeric(5, 2) NOT NULL DEFAULT 0
        CHECK (progress_percentage BETWEEN 0 AND 100),
    error_message text,
    worker_name text,
    job_id text,
    heartbeat_at timestamptz,
    cancel_requested_at timestamptz,
    started_at timestamptz,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (successful_instances + failed_instances + cancelled_instances <= total_instances)
);
CREATE INDEX sync_sessions_created_at_idx ON sync_sessions (created_at DESC);
CREATE INDEX sync_sessions_open_idx ON sync_sessions (status) WHERE status IN ('pending', 'running');

CREATE TABLE sync_instance_records (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id bigint NOT NULL REFERENCES sync_sessions (id) ON DELETE CASCADE,
    instance_id bigint NOT NULL REFERENCES instances (id),
    instance_name text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    items_synced bigint NOT NULL DEFAULT 0,
    error_message text,
    detail jsonb,
    started_at timestamptz,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, instance_id)
);

CREATE TABLE schedules (
    name text PRIMARY KEY,
    job_name text NOT NULL,
    cron_expression text NOT NULL,
    -- IANA zone the cron expression is read in; null means the business time zone.
    time_zone text,
    is_paused boolean NOT NULL DEFAULT false,
    misfire_policy text NOT NULL DEFAULT 'run_once'
        CHECK (misfire_policy IN ('skip', 'run_once', 'catch_up')),
    catch_up_limit integer NOT NULL DEFAULT 10 CHECK (catch_up_limit BETWEEN 1 AND 1000),
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per claimed tick: the unique key makes "one enqueue per tick" hold across workers.
CREATE TABLE schedule_ticks (
    schedule_name text NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
    tick_at timestamptz NOT NULL,
    session_id bigint REFERENCES sync_sessions (id) ON DELETE SET NULL,
    job_id text,
    claimed_by text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_name, tick_at)
);

CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text NOT NULL UNIQUE CHECK (btrim(username) <> '' AND char_length(username) <= 150),
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'viewer')),
    is_active boolean NOT NULL DEFAULT true,
    last_login_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    -- SHA-256 of the token; the token itself is shown once at creation and never stored.
    token_hash text NOT NULL UNIQUE,
    token_prefix text NOT NULL,
    scopes text[] NOT NULL DEFAULT '{}',
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
