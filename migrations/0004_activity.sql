-- The record of what happened to each owner's link, shown on the account
-- page and included in the owner's data export. It never holds token
-- material: only kinds of event, scope names, reasons and API client ids.
-- It grows out of audit_events, which recorded the same things.
ALTER TABLE audit_events RENAME TO activity;
ALTER INDEX audit_events_link_id RENAME TO activity_link_id;
ALTER TABLE activity RENAME CONSTRAINT audit_events_pkey TO activity_pkey;

-- Erasing an owner removes their activity with them.
ALTER TABLE activity DROP CONSTRAINT audit_events_owner_id_fkey,
    ADD CONSTRAINT activity_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES owners(id) ON DELETE CASCADE;
ALTER TABLE activity DROP CONSTRAINT audit_events_link_id_fkey,
    ADD CONSTRAINT activity_link_id_fkey FOREIGN KEY (link_id) REFERENCES links(id) ON DELETE CASCADE;

-- Frequent events (a refresh, an API client's use) are kept as one entry
-- per link, kind, API client and UTC day; `day` is set only for those.
ALTER TABLE activity
    ADD COLUMN api_client_id bigint NOT NULL DEFAULT 0,
    ADD COLUMN day date;
CREATE UNIQUE INDEX activity_daily ON activity (link_id, action, api_client_id, day) WHERE day IS NOT NULL;

-- The account page lists an owner's activity newest first (by id: the order
-- it was recorded in, whatever the clocks of the instances said); the retention
-- cleanup deletes by age.
CREATE INDEX activity_owner_id ON activity (owner_id, id DESC);
CREATE INDEX activity_at ON activity (at);
