-- The team's backends; only a SHA-256 of each API key is stored.
CREATE TABLE api_clients (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    key_prefix  text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Which API client last obtained a token for which link (written in batches).
CREATE TABLE link_usage (
    link_id        uuid NOT NULL REFERENCES links(id) ON DELETE CASCADE,
    api_client_id  bigint NOT NULL REFERENCES api_clients(id) ON DELETE CASCADE,
    last_used_at   timestamptz NOT NULL,
    uses           bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (link_id, api_client_id)
);
