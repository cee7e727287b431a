DROP TABLE api_tokens;
DROP TABLE users;
DROP TABLE schedule_ticks;
DROP TABLE schedules;
DROP TABLE sync_instance_records;
DROP TABLE sync_sessions;
