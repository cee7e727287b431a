-- Alerts: rules that watch a metric of instances or databases, the events their evaluations
-- open and resolve, and the notifications each change of an event's state sends to the rule's
-- channels. Channel targets and secrets are sealed under the credential key (robot URLs carry
-- their access token), so the database alone never reveals where alerts go.

CREATE TABLE alert_rules (
    id bigserial PRIMARY KEY,
    name text NOT NULL CONSTRAINT alert_rules_name_unique UNIQUE,
    level text NOT NULL CHECK (level IN ('instance', 'database')),
    metric text NOT NULL
        CHECK (metric IN ('growth_percent', 'days_until_full', 'size_mb', 'no_samples_days')),
    comparison text NOT NULL CHECK (comparison IN ('above', 'below')),
    threshold numeric NOT NULL,
    period_type text NOT NULL,
    periods integer NOT NULL CHECK (periods BETWEEN 1 AND 366),
    scope_db_types text[] NOT NULL DEFAULT '{}',
    scope_instance_ids bigint[] NOT NULL DEFAULT '{}',
    scope_database_names text[] NOT NULL DEFAULT '{}',
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A rule's destinations, in order. `target` is the sealed URL (robots, webhooks) or mail
-- address; `display_target` is what the API shows (a URL's scheme and host, a full address).
CREATE TABLE alert_channels (
    id bigserial PRIMARY KEY,
    rule_id bigint NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    position integer NOT NULL,
    kind text NOT NULL CHECK (kind IN ('webhook', 'dingtalk', 'wecom', 'feishu', 'email')),
    sealed_target bytea NOT NULL,
    display_target text NOT NULL,
    sealed_secret bytea,
    UNIQUE (rule_id, position)
);

-- Every session after which the rules were evaluated: an evaluation runs once per session,
-- however often its job is delivered.
CREATE TABLE alert_evaluations (
    session_id bigint PRIMARY KEY,
    evaluated_at timestamptz NOT NULL DEFAULT now(),
    rules integer NOT NULL,
    opened integer NOT NULL,
    updated integer NOT NULL,
    resolved integer NOT NULL
);

-- One event per (rule, key) and episode: open while the key trips the rule's condition.
-- The key is an instance (database_name '') or one of its databases.
CREATE TABLE alert_events (
    id bigserial PRIMARY KEY,
    rule_id bigint NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    instance_id bigint NOT NULL,
    database_name text NOT NULL DEFAULT '',
    state text NOT NULL CHECK (state IN ('open', 'resolved')),
    value numeric NOT NULL,
    period_type text,
    period_start date,
    first_seen_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    resolved_at timestamptz,
    opened_by_session_id bigint,
    last_session_id bigint,
    -- What a notification tells besides the value: the window's sizes and the forecast.
    detail jsonb NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX alert_events_one_open_per_key
    ON alert_events (rule_id, instance_id, database_name) WHERE state = 'open';
CREATE INDEX alert_events_recent ON alert_events (last_seen_at DESC, id DESC);

-- What each change of an event's state sends to each channel of its rule. The idempotency key
-- (event, state, channel) is unique: a change is notified once per channel, and receivers see
-- the key in every attempt (header `Idempotency-Key`) to drop repeats after a crash mid-send.
CREATE TABLE alert_notifications (
    id bigserial PRIMARY KEY,
    event_id bigint NOT NULL REFERENCES alert_events (id) ON DELETE CASCADE,
    channel_id bigint REFERENCES alert_channels (id) ON DELETE SET NULL,
    channel_kind text NOT NULL,
    event_state text NOT NULL CHECK (event_state IN ('open', 'resolved')),
    idempotency_key text NOT NULL CONSTRAINT alert_notifications_idempotency_key_unique UNIQUE,
    status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    job_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);

CREATE INDEX alert_notifications_of_event ON alert_notifications (event_id);
CREATE INDEX alert_notifications_undispatched ON alert_notifications (id)
    WHERE status = 'pending' AND job_id IS NULL;
