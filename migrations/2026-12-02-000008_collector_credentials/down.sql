COMMENT ON COLUMN instances.connection_password IS NULL;
ALTER TABLE instances DROP COLUMN tls_mode;
