-- Owners are Tesla accounts, one per Tesla `sub`.
CREATE TABLE owners (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sub         text NOT NULL UNIQUE,
    email       text NOT NULL DEFAULT '',
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One link per owner: the grant this service holds for that Tesla account.
-- Tokens are sealed (AES-256-GCM); token_key_id names the key that sealed them.
CREATE TABLE links (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id                 bigint NOT NULL UNIQUE REFERENCES owners(id),
    status                   text NOT NULL CHECK (status IN ('active', 'needs_reauth', 'revoked')),
    status_reason            text NOT NULL DEFAULT '',
    status_changed_at        timestamptz NOT NULL DEFAULT now(),
    region                   text NOT NULL DEFAULT '',
    id_token_issuer          text NOT NULL DEFAULT '',
    requested_scopes         text[] NOT NULL DEFAULT '{}',
    granted_scopes           text[] NOT NULL DEFAULT '{}',
    token_key_id             text,
    refresh_token_sealed     bytea,
    access_token_sealed      bytea,
    access_token_expires_at  timestamptz,
    linked_at                timestamptz NOT NULL DEFAULT now(),
    refreshed_at             timestamptz,
    revoked_at               timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    -- a revoked link holds no token material at all
    CHECK (status <> 'revoked' OR (refresh_token_sealed IS NULL AND access_token_sealed IS NULL))
);
CREATE INDEX links_status_id ON links (status, id);
CREATE INDEX links_token_key_id ON links (token_key_id) WHERE token_key_id IS NOT NULL;

-- Server-side sessions; the cookie holds a random id, the table its SHA-256.
CREATE TABLE sessions (
    id_hash       bytea PRIMARY KEY,
    owner_id      bigint REFERENCES owners(id) ON DELETE CASCADE,
    data          bytea NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX sessions_owner_id ON sessions (owner_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Login `state` values already consumed by a callback (replay defence).
CREATE TABLE used_login_states (
    state_hash  bytea PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);

-- What happened to whom, never with token material.
CREATE TABLE audit_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    owner_id    bigint REFERENCES owners(id),
    link_id     uuid REFERENCES links(id),
    actor       text NOT NULL,
    action      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_link_id ON audit_events (link_id, at);
