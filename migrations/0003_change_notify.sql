-- Every change to a link or an API client is announced on the
-- teslalink_changes channel (at commit), so each instance can drop what it
-- cached about it at once. Payloads: "link:<uuid>", "client:<hex sha-256>".
CREATE FUNCTION teslalink_notify_link_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('teslalink_changes', 'link:' || OLD.id::text);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER links_changed AFTER UPDATE OR DELETE ON links
    FOR EACH ROW EXECUTE FUNCTION teslalink_notify_link_change();

CREATE FUNCTION teslalink_notify_client_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('teslalink_changes', 'client:' || encode(OLD.key_hash, 'hex'));
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_clients_changed AFTER UPDATE OR DELETE ON api_clients
    FOR EACH ROW EXECUTE FUNCTION teslalink_notify_client_change();
