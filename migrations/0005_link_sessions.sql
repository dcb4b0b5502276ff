-- Link sessions: a team's backend starts a link for one of its users.
-- The session id (in the owner's URL) and the claim code are stored only as
-- SHA-256 hashes.
ALTER TABLE api_clients ADD COLUMN display_name text NOT NULL DEFAULT '';

-- A link is bound to the team's user (external_ref) only by a claim; the
-- newest claim wins. api_client_id is the client whose session was claimed.
ALTER TABLE links ADD COLUMN external_ref text;
ALTER TABLE links ADD COLUMN api_client_id bigint REFERENCES api_clients(id);
CREATE INDEX links_external_ref ON links (external_ref, id) WHERE external_ref IS NOT NULL;

CREATE TABLE link_sessions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id_hash          bytea NOT NULL UNIQUE,
    api_client_id    bigint NOT NULL REFERENCES api_clients(id) ON DELETE CASCADE,
    external_ref     text NOT NULL,
    return_url       text NOT NULL,
    scopes           text[] NOT NULL,
    state            text NOT NULL DEFAULT '',
    -- pending: created; started: the owner went to Tesla; then the outcome.
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'started', 'linked', 'denied', 'error')),
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    started_at       timestamptz,
    completed_at     timestamptz,
    link_id          uuid REFERENCES links(id) ON DELETE SET NULL,
    code_hash        bytea,
    code_expires_at  timestamptz,
    code_spent_at    timestamptz,
    claimed_at       timestamptz,
    CHECK (status <> 'linked' OR (link_id IS NOT NULL AND code_hash IS NOT NULL))
);
CREATE INDEX link_sessions_expires_at ON link_sessions (expires_at);
