-- API clients: a revoked client's name can be used again, a key can be
-- rotated with an overlap during which the old key still works, and the last
-- use of each key is kept.
ALTER TABLE api_clients DROP CONSTRAINT api_clients_name_key;
CREATE UNIQUE INDEX api_clients_active_name ON api_clients (name) WHERE revoked_at IS NULL;

ALTER TABLE api_clients
    ADD COLUMN old_key_prefix     text,
    ADD COLUMN old_key_hash       bytea UNIQUE,
    ADD COLUMN old_key_expires_at timestamptz;

-- Last use per key hash, written in batches; kept apart from api_clients so
-- that recording a use does not fire the change notification below.
CREATE TABLE api_key_usage (
    key_hash      bytea PRIMARY KEY,
    last_used_at  timestamptz NOT NULL
);

-- A change drops both keys of the client from every instance's cache.
CREATE OR REPLACE FUNCTION teslalink_notify_client_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('teslalink_changes', 'client:' || encode(OLD.key_hash, 'hex'));
    IF OLD.old_key_hash IS NOT NULL THEN
        PERFORM pg_notify('teslalink_changes', 'client:' || encode(OLD.old_key_hash, 'hex'));
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
