-- The token endpoint decides whether a use is due for recording (once per
-- API client, link and hour) from the link's row alone: used_by/used_at
-- hold the last recorded use, copied from link_usage when a batch is
-- written. One primary-key lookup per cache miss, not two (see
-- docs/architecture.md, "Token cache and usage").
ALTER TABLE links ADD COLUMN used_by bigint, ADD COLUMN used_at timestamptz;

-- A change to those two columns alone is not a change any instance must
-- hear about: no notification, so a usage batch never evicts cached links.
DROP TRIGGER links_changed ON links;
CREATE TRIGGER links_changed AFTER UPDATE ON links
    FOR EACH ROW WHEN ((to_jsonb(OLD) - 'used_by' - 'used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'used_by' - 'used_at'))
    EXECUTE FUNCTION teslalink_notify_link_change();
CREATE TRIGGER links_deleted AFTER DELETE ON links
    FOR EACH ROW EXECUTE FUNCTION teslalink_notify_link_change();
