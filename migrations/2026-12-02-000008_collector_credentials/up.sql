-- Collector credentials: how a collector protects its connection to each monitored server.
--
-- `verify-full` (TLS, certificate checked against the trusted roots and the host name) is the
-- default, existing instances included: a server without TLS must now be marked `disable`
-- explicitly (PUT /api/v1/instances/{id} with "tls_mode": "disable"), so that no instance is
-- read over an unprotected connection without an operator having said so.
ALTER TABLE instances
    ADD COLUMN tls_mode text NOT NULL DEFAULT 'verify-full'
        CONSTRAINT instances_tls_mode_known CHECK (tls_mode IN ('disable', 'require', 'verify-full'));

-- Sealed passwords change format in the application (scheme 2: key id, bound to the instance
-- id); the column stays `bytea`. Values of the first format keep opening until
-- `capstats-worker credentials rotate-key` re-seals them.
COMMENT ON COLUMN instances.connection_password IS
    'Collector password sealed with AES-256-GCM: scheme byte, key id, nonce, ciphertext; bound to the instance id. Dropped when host, port, engine, login, database or a weaker tls_mode is set without a new password.';
