DROP TABLE audit_events;
ALTER TABLE sync_sessions DROP COLUMN requested_by_token_id;
DROP TABLE user_sessions;
DROP INDEX api_tokens_user_idx;
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scopes_known;
