-- Webhook endpoints the operator registered (`web webhook add`). The secret
-- ("whsec_" + base64) signs every request; it is needed in clear to sign.
-- A removed endpoint is kept (removed_at) so its delivery history stays.
CREATE TABLE webhook_endpoints (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                   text NOT NULL,
    secret                text NOT NULL,
    event_types           text[] NOT NULL DEFAULT '{}', -- empty: every event
    created_at            timestamptz NOT NULL DEFAULT now(),
    removed_at            timestamptz,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    failing_since         timestamptz,
    last_success_at       timestamptz,
    last_failure_at       timestamptz
);

-- Every link event, written in the transaction of the change it reports.
-- body is the exact JSON that is signed and sent (never a token).
CREATE TABLE webhook_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id      text NOT NULL UNIQUE,
    type        text NOT NULL,
    link_id     uuid REFERENCES links(id),
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_link_id ON webhook_events (link_id, id);

-- One delivery per event and endpoint; a River job works each one.
CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         bigint NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    endpoint_id      bigint NOT NULL REFERENCES webhook_endpoints(id),
    link_id          uuid,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    last_attempt_at  timestamptz,
    next_attempt_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, link_id, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, id);

-- Every delivery attempt: when, what came back, how long it took.
CREATE TABLE webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    at           timestamptz NOT NULL DEFAULT now(),
    status_code  integer,          -- NULL: no HTTP response
    latency_ms   integer NOT NULL,
    error        text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

-- Keep-alive bookkeeping per link: a link whose background refresh keeps
-- failing backs off (keepalive_next_at) instead of being retried each round.
ALTER TABLE links
    ADD COLUMN keepalive_attempts  integer NOT NULL DEFAULT 0,
    ADD COLUMN keepalive_next_at   timestamptz,
    ADD COLUMN keepalive_error     text NOT NULL DEFAULT '';
CREATE INDEX links_keepalive_due ON links ((coalesce(refreshed_at, linked_at))) WHERE status = 'active';

-- The keep-alive's global pace: each refresh takes the next free time slot,
-- so KEEPALIVE_RATE holds across any number of instances.
CREATE TABLE keepalive_pace (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    next_slot  timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO keepalive_pace DEFAULT VALUES;
