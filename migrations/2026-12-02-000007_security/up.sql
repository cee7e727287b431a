-- Security: API tokens with an explicit allowlist of scopes, sign-in sessions stored on the
-- server (so that logout, a password change and a deactivation end them), and an audit trail.

-- Before this migration a token without scopes acted with its owner's whole role. Such tokens
-- keep working with the scope their owner's role gave them, now written out so that
-- GET /auth/tokens shows it; tokens named `ingest` keep exactly that.
UPDATE api_tokens
SET scopes = CASE (SELECT role FROM users WHERE users.id = api_tokens.user_id)
                 WHEN 'admin' THEN ARRAY['admin']
                 ELSE ARRAY['read']
             END
WHERE cardinality(scopes) = 0;
ALTER TABLE api_tokens
    ADD CONSTRAINT api_tokens_scopes_known
        CHECK (cardinality(scopes) > 0
               AND scopes <@ ARRAY['read', 'ingest', 'operate', 'admin']::text[]);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- One row per sign-in. The cookie carries only the random session id; the row stores its
-- SHA-256, so a copy of the table cannot be replayed as cookies.
CREATE TABLE user_sessions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_hash text NOT NULL UNIQUE,
    client_address text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    -- Set when the session ends (logout, password change, deactivation, admin action).
    ended_at timestamptz,
    end_reason text
);
CREATE INDEX user_sessions_open_idx ON user_sessions (user_id) WHERE ended_at IS NULL;

-- Runs record the API token they were requested with, not only the user.
ALTER TABLE sync_sessions ADD COLUMN requested_by_token_id bigint
    REFERENCES api_tokens (id) ON DELETE SET NULL;

-- Who did what through the API: sign-ins (also failed ones), token changes, every write and
-- credential changes. Kept for CAPSTATS_AUDIT_RETENTION_DAYS.
CREATE TABLE audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    -- e.g. `auth.login`, `auth.token.create`, `instance.update`, `api.write`.
    action text NOT NULL CHECK (char_length(action) <= 100),
    -- `success`, `failure` (the action failed or was refused) or `denied` (not allowed).
    outcome text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    -- The name the actor signed in with, or tried to (kept when the user is deleted).
    username text CHECK (char_length(username) <= 150),
    token_id bigint REFERENCES api_tokens (id) ON DELETE SET NULL,
    client_address text,
    request_id text,
    http_method text,
    http_route text,
    http_status integer,
    -- What was acted on, e.g. `instance 12`, `token 4`.
    target text,
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at DESC, id DESC);
CREATE INDEX audit_events_action_idx ON audit_events (action, occurred_at DESC);
