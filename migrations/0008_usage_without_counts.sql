-- Token use is recorded at most once per API client, link and hour (see
-- docs/architecture.md, "Usage"), so a per-request count would be wrong:
-- link_usage keeps the last use, and the owner's activity one entry per
-- client and day.
ALTER TABLE link_usage DROP COLUMN uses;
UPDATE activity SET detail = detail - 'count' WHERE action = 'link.used';
