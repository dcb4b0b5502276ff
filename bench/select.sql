\set n random(1, 100000)
SELECT l.id, l.status, l.region, l.granted_scopes, l.access_token_sealed, l.access_token_expires_at
  FROM links l WHERE l.id = (SELECT id FROM bench_ids WHERE n = :n);
